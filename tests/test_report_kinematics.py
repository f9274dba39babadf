"""The report's maths on hand-made motion: angles of known geometry, speeds of known
paths, contacts, steps and jumps."""

import numpy as np

from meshstream.report import kinematics as km
from meshstream.report.motion import _jumps


def _standing(n: int = 1) -> np.ndarray:
    """(n, 17, 3) COCO-17 keypoints of a person standing straight, facing +Z, Y up
    (their left is +X)."""
    kp = np.zeros((17, 3))
    for side, x in ((0, 0.15), (1, -0.15)):  # 0 left, 1 right
        kp[km.L_SHOULDER + side] = [x + 0.05 * np.sign(x), 1.45, 0]
        kp[km.L_ELBOW + side] = [x + 0.05 * np.sign(x), 1.15, 0]
        kp[km.L_WRIST + side] = [x + 0.05 * np.sign(x), 0.9, 0]
        kp[km.L_HIP + side] = [x * 0.6, 0.95, 0]
        kp[km.L_KNEE + side] = [x * 0.6, 0.5, 0]
        kp[km.L_ANKLE + side] = [x * 0.6, 0.08, 0]
    return np.repeat(kp[None], n, axis=0)


def test_standing_straight_reads_zero_everywhere():
    a = km.joint_angles(_standing())
    for name, value in a.items():
        assert abs(value[0]) < 1e-6, name


def test_known_flexions_and_their_signs():
    kp = _standing(3)
    # Frame 0: left knee bent to a right angle (shank pointing backwards, -Z).
    kp[0, km.L_ANKLE] = kp[0, km.L_KNEE] + [0, 0, -0.42]
    # Frame 1: left thigh raised level in front (+Z), right thigh 30 degrees behind.
    kp[1, km.L_KNEE] = kp[1, km.L_HIP] + [0, 0, 0.45]
    kp[1, km.R_KNEE] = kp[1, km.R_HIP] + 0.45 * np.array([0, -np.cos(np.radians(30)), -np.sin(np.radians(30))])
    # Frame 0 too: right elbow bent 60 degrees. Frame 2: trunk leaning 20 degrees forward.
    kp[0, km.R_WRIST] = kp[0, km.R_ELBOW] + 0.25 * np.array([0, -np.cos(np.radians(60)), np.sin(np.radians(60))])
    lean = np.radians(20)
    for j in (km.L_SHOULDER, km.R_SHOULDER):
        kp[2, j, 1:] = [0.95 + 0.5 * np.cos(lean), 0.5 * np.sin(lean)]
    a = km.joint_angles(kp)
    np.testing.assert_allclose(a["knee_flexion_left"][0], 90.0, atol=1e-6)
    np.testing.assert_allclose(a["knee_flexion_right"][0], 0.0, atol=1e-6)
    np.testing.assert_allclose(a["hip_flexion_left"][1], 90.0, atol=1e-6)
    np.testing.assert_allclose(a["hip_flexion_right"][1], -30.0, atol=1e-6)  # extension
    np.testing.assert_allclose(a["elbow_flexion_right"][0], 60.0, atol=1e-6)
    np.testing.assert_allclose(a["trunk_lean"][2], 20.0, atol=1e-6)
    # Hip flexion is measured against the trunk: leaning forward with vertical thighs flexes both hips.
    np.testing.assert_allclose(a["hip_flexion_left"][2], 20.0, atol=1e-6)


def test_smoothed_speed_and_distance_of_a_known_path():
    """A walk at 1.5 m/s along a diagonal with 1 cm noise, a 0.3 s gap, then standing still."""
    rng = np.random.default_rng(0)
    t = np.concatenate([np.arange(0, 2, 0.04), np.arange(2.3, 4, 0.04)])
    direction = np.array([0.6, 0.8])
    xz = np.where(t[:, None] < 3.0, 1.5 * t[:, None] * direction, 4.5 * direction)
    noisy = xz + rng.normal(0, 0.01, xz.shape)
    assert [(r.start, r.stop) for r in km.runs(t, 0.1)] == [(0, 50), (50, len(t))]
    v = km.smooth(noisy, t, 0.5, 0.1, deriv=1)
    speed = np.linalg.norm(v, axis=1)
    walking = (t > 0.3) & (t < 2.7) & ((t < 1.7) | (t > 2.6))
    assert np.abs(speed[walking] - 1.5).max() < 0.1
    # Missed frames inside a run (dropped samples, not a split) do not change the speed.
    kept = np.ones(len(t), bool)
    kept[[10, 11, 12, 13, 14, 30, 31]] = False
    v_gappy = km.smooth(noisy[kept], t[kept], 0.5, 0.5, deriv=1)
    inner = walking[kept] & (np.abs(t[kept] - 1.0) > 0.01)
    assert np.abs(np.linalg.norm(v_gappy, axis=1)[inner] - 1.5).max() < 0.1
    smooth = km.smooth(noisy, t, 0.5, 0.1)
    distance = km.path_length(smooth, speed >= 0.3)
    assert abs(distance[-1] - 4.5) < 0.1  # standing still adds nothing
    still = km.path_length(smooth[t > 3.3], np.zeros((t > 3.3).sum(), bool))
    assert still[-1] == 0.0


def test_contacts_debounce_and_steps():
    height = np.array([0, 0, 0, .2, .2, .2, 0, .2, 0, 0, 0, .3, .3, .3, 0, 0], float)
    speed = np.zeros_like(height)
    c = km.foot_contacts(height, speed, min_frames=2)
    # The one-frame touch at index 6 is noise: one long swing from 3 to 7.
    assert c.tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1]
    assert km.onsets(c).tolist() == [8, 14]
    assert not km.foot_contacts(np.zeros(4), np.full(4, 2.0)).any()  # a fast foot is not planted


def test_jumps_are_free_falls_above_standing():
    t = np.arange(0, 4, 0.04)
    rise = np.zeros_like(t)
    flight = (t > 1.0) & (t < 1.4)  # 0.4 s of flight: 19.6 cm at 1 g
    s = (t[flight] - 1.0) / 0.4
    rise[flight] = 4 * 0.196 * s * (1 - s)
    rise[40] = 0.2  # one frame: noise, not a jump
    slow = (t > 2.5) & (t < 3.5)  # a slow 15 cm bump over 1 s (0.3 g): not a jump either
    rise[slow] = 0.15 * np.sin(np.pi * (t[slow] - 2.5))
    rise[60:63] = [0.06, 0.079, 0.062]  # three frames (a walker's fitted height): any parabola fits three
    jumps = _jumps(rise, t)
    assert len(jumps) == 1 and abs(jumps[0] - 0.196) < 0.01


def test_window_mean_needs_half_a_window():
    t = np.arange(0, 2, 0.1)
    m = km.window_mean(t.copy(), t, 1.0)
    assert np.isnan(m[:5]).all() and np.isfinite(m[5:]).all()
    np.testing.assert_allclose(m[-1], t[10:].mean())
