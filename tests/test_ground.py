"""The shared floor (models/ground.py): its maths on exact synthetic points, the store's
rescaling of rows fitted earlier, and the CLI on a rendered clip with a child among
adults."""

import math

import numpy as np
import pytest
import zarr

from conftest import DATA, run_cli, tz_errors
from meshstream.models.ground import (SharedGround, camera_heights, down_from_torsos, floor_down, floor_normal,
                                      focal_from_floor, line_planes, size_posterior, torso_lines)


def _down(pitch_deg: float) -> np.ndarray:
    """The floor's downward normal for a camera pitched down by ``pitch_deg``."""
    p = math.radians(pitch_deg)
    return np.array([0.0, math.cos(p), -math.sin(p)])


def _track_feet(rng, down, height_m, n, depth_m):
    """(n, 8, 3) foot points of a person walking on the floor ``down . p = height_m``
    around ``depth_m`` metres away: the lowest point of each frame on the floor, the
    others up to 12 cm above it."""
    e1 = np.cross(down, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(down, e1)
    xs = rng.uniform(-1.0, 1.0, n)
    zs = depth_m + rng.uniform(-0.3, 0.3, n)
    base = height_m * down + xs[:, None] * e2 + zs[:, None] * e1 * np.sign(e1[2])
    lift = np.concatenate([np.zeros((n, 1)), rng.uniform(0.01, 0.12, (n, 7))], 1)
    return base[:, None, :] - lift[..., None] * down


def test_floor_normal_and_camera_heights_on_a_tilted_floor():
    rng = np.random.default_rng(0)
    down = _down(12.0)
    up = -down + rng.normal(0, 0.03, (200, 3))
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    est = floor_normal(up)
    assert math.degrees(math.acos(np.clip(est @ down, -1, 1))) < 1.0
    feet = _track_feet(rng, down, 1.3, 20, 3.0)
    assert np.allclose(camera_heights(feet, down), 1.3, atol=1e-9)
    with pytest.raises(ValueError):
        floor_normal(np.zeros((3, 3)))


def test_size_posterior_moves_small_votes_little_and_large_ones_most_of_the_way():
    x = np.array([-0.3, -0.2, -0.05, -0.03, 0.0, 0.03, 0.05, 0.2, 0.3])
    post = size_posterior(x, noise=0.05, typical_sd=0.04, outlier_sd=0.3, outlier_prob=0.1)
    assert np.allclose(post, -post[::-1])  # symmetric
    assert np.all(np.diff(post) > 0)  # monotonic
    assert abs(post[5]) < 0.5 * 0.03 and abs(post[6]) < 0.5 * 0.05  # noise-sized votes: less than half
    assert post[0] < -0.8 * 0.3 and post[1] < -0.7 * 0.2  # an outlier's vote: most of it


def test_shared_ground_rescales_the_one_person_whose_size_disagrees():
    rng = np.random.default_rng(1)
    down, h = _down(8.0), 1.25
    ground = SharedGround()
    fitted_at = {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}
    too_big = {1: 1.0, 2: 1.02, 3: 1.35, 4: 0.98}  # track 3: a child fitted with an adult's size
    for tid, depth in zip(fitted_at, (2.0, 3.5, 3.0, 5.0)):
        feet = _track_feet(rng, down, h, 12, depth) * too_big[tid]
        up = np.broadcast_to(-down, (12, 3)) + rng.normal(0, 0.02, (12, 3))
        usable = np.ones(12, bool)
        usable[:2] = False  # e.g. ankles not seen: ignored
        feet[:2] += 5.0
        ground.add(np.full(12, tid), feet, up, np.full(12, fitted_at[tid]), usable)
        if tid == 2:
            assert ground.estimate() is None  # two tracks: the floor cannot tell which is off
    est = ground.estimate()
    assert est is not None and est.tracks == 4
    assert abs(est.scales[3] - 1 / 1.35) < 0.02
    for tid in (1, 2, 4):
        assert abs(est.scales[tid] - 1.0) < 0.02  # within noise: left nearly alone
    assert abs(est.camera_height_m - h) < 0.05
    assert math.degrees(math.acos(est.down @ down)) < 1.0

    # A track fitted again at its new scale votes the same (heights are kept per unit scale).
    again = SharedGround()
    for tid, depth in zip(fitted_at, (2.0, 3.5, 3.0, 5.0)):
        s = est.scales[3] if tid == 3 else 1.0
        feet = _track_feet(np.random.default_rng(tid), down, h, 12, depth) * too_big[tid] * s
        again.add(np.full(12, tid), feet, np.broadcast_to(-down, (12, 3)), np.full(12, s), np.ones(12, bool))
    assert abs(again.estimate().scales[3] - est.scales[3]) < 0.01


def test_rows_fitted_before_a_rescale_move_with_it(tmp_path, body):
    from meshstream.export.zarr_store import ZarrWriter
    from meshstream.models.placement import BodyPlacer
    from meshstream.stream.messages import BodyFit
    from meshstream.stream.sinks import Finalizer, ZarrSink

    est = BodyPlacer(body)
    n = 6
    pose = np.zeros((n, body.num_bones, 3), np.float32)
    orient = np.tile(np.array([math.pi / 2, 0, 0], np.float32), (n, 1))
    transl = np.stack([np.linspace(-0.5, 0.5, n), np.full(n, 0.2), np.full(n, 4.0)], 1).astype(np.float32)
    shape = np.tile(body.default_shape(1).numpy().astype(np.float32), (n, 1))
    pelvis, joints, kp = est.placement(pose, orient, transl, shape)
    fit = BodyFit("anny", np.arange(n), np.ones(n, np.int64), orient, pose, shape, transl, pelvis, joints, kp, 500.0,
                  np.array([320.0, 240.0], np.float32), np.zeros(n, np.float32), np.ones(n, np.float32), np.ones(n, bool))
    w = ZarrWriter(tmp_path / "s.zarr", attrs={}, principal_point=np.array([320.0, 240.0]), num_joints=body.num_bones)
    w.append_frames(np.arange(n), np.arange(n) / 25.0, np.full(n, np.nan, np.float32), shot=0, zoom=np.ones(n, np.float32))
    w.append_fits(fit, np.zeros((n, 4)), np.zeros((n, 33, 3)), transl)
    factor = np.array([0.8, 0.8, 0.8, 1.0, 1.0, 1.0], np.float32)
    with pytest.raises(ValueError):
        w.set_track_shape(1, shape[0], transl_scale=factor[:4])
    sink = ZarrSink(path=tmp_path / "s.zarr", attrs={}, principal_point=np.zeros(2), num_joints=body.num_bones)
    sink.writer = w
    # Three rows fitted at size 1.25, then three at 1 (the final): the first rows move by 1 / 1.25 = 0.8.
    Finalizer(placer=est)(sink, {1: shape[0]}, {1: [(3, 1.25), (3, 1.0)]})
    w.close()
    t = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")["tracks/1"]
    assert np.allclose(t["transl"][:], transl * factor[:, None], atol=1e-6)
    assert np.allclose(t["transl_raw"][:], transl * factor[:, None], atol=1e-6)
    again = est.placement(pose, orient, transl * factor[:, None], shape[0])[0]
    assert np.allclose(t["pelvis"][:], again, atol=1e-6)


@pytest.mark.slow
def test_a_child_among_adults_gets_its_size_and_depth_from_the_shared_floor(tmp_path, body, measured):
    """Three people at the true focal: the child's fitted adult size puts it too far away
    unless the floor the three stand on rescales it (opt-in; the default leaves it)."""
    import cv2

    from meshstream.models.synthetic import PersonSpec, render_clip

    background = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    persons = [PersonSpec((-1.0, 2.4), (0.3, 0.0), yaw_deg=60),
               PersonSpec((1.0, 3.6), motion="arms", shirt_rgb=(200, 60, 40), yaw_deg=-20),
               PersonSpec((0.1, 3.0), (0.0, -0.3), yaw_deg=10, shirt_rgb=(200, 200, 40), shape={"age": 0.25})]
    gt = render_clip(tmp_path / "three.mp4", persons, fov_deg=60, n_frames=30, background=background, body=body)
    tz = {}
    for name, extra in (("floor", ["--set", "estimation.shared_ground=true"]), ("none", [])):
        res = run_cli(str(tmp_path / "three.mp4"), "-o", str(tmp_path / name), "-q", "--no-overlay",
                      "--focal-px", f"{gt.focal_px:.3f}", *extra)
        assert res.returncode == 0, res.stderr
        store = zarr.open_group(str(tmp_path / name / "three.zarr"), mode="r")
        tz[name] = tz_errors(store, gt)
        assert len(tz[name]) == 3
        grounds = store.attrs["shared_ground"]
        if name == "floor":
            g = grounds[0]
            assert g is not None and g["tracks"] == 3
            assert g["down_cue"] == "torsos"
            assert measured("child_scale", min(g["size_scale"].values())) < 0.93  # the child, shrunk (measured 0.894)
            # the adults keep their size (measured 1.000 and 1.004)
            assert measured("adult_scale_err_max", sorted(abs(v - 1.0) for v in g["size_scale"].values())[1]) < 0.006
            # the renderer's camera is 1.1 m up (measured 0.071 m off)
            assert measured("camera_height_err_m", abs(g["camera_height_m"] - 1.1)) < 0.11
        else:
            assert grounds == [None]
    child = 2
    # Metres. Measured: the child 0.55 without the floor, 0.26 with it; the adults 0.081
    # and 0.032 either way (the floor's vote is shrunk toward 1, so the child's size
    # moves part of the way: its scale is 0.89).
    assert measured("child_tz_err_no_floor_m", tz["none"][child]) > 0.37  # an adult's size puts the child too deep
    assert measured("child_tz_err_floor_m", tz["floor"][child]) < 0.7 * tz["none"][child]
    # The floor leaves the adults' depth where it was (measured 0.000 and 0.000 m moved).
    moved = max(abs(tz["floor"][a] - tz["none"][a]) for a in range(child))
    assert measured("adult_tz_moved_max_m", moved) < 0.015


def _camera_to(tilt_deg: float, roll_deg: float) -> np.ndarray:
    """Rotation from the level world (y down) to a camera pitched ``tilt_deg`` down and
    rolled ``roll_deg``: its floor normal is ``floor_down``'s."""
    t, r = math.radians(tilt_deg), math.radians(roll_deg)
    pitch = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    roll = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return roll @ pitch


def _walkers(focal, tilt_deg, roll_deg, fit_focal, rng, *, pixel_noise=0.0, depth_noise=0.0, camera_height=3.0,
             speed=1.0):
    """Three people walking 48 frames on the floor under a still camera (``speed`` times
    1.1-1.2 m/s), as the pipeline hands them to ``focal_from_floor``: COCO-17 keypoints
    (hips and shoulders) at the true focal, and hips fitted at ``fit_focal`` by bodies of
    the wrong size (each track's depth off by its own factor, the pixels kept)."""
    to_cam = _camera_to(tilt_deg, roll_deg)
    pp = np.array([320.0, 240.0])
    keypoints, pelvis, track, frame = [], [], [], []
    starts = [((-1.5, 6.0), (1.0, 0.6)), ((1.0, 9.0), (-0.2, -1.2)), ((0.5, 5.0), (0.3, 1.1))]
    for tid, ((x0, z0), (vx, vz)) in enumerate(starts):
        size_error = (0.92, 1.0, 1.07)[tid]
        for i in range(48):
            ground = np.array([x0 + speed * vx * i / 25, camera_height, z0 + speed * vz * i / 25])  # y down
            sway = 0.03 * math.sin(i / 25 * 2 * math.pi)  # the hips bob 3 cm as people walk
            hips = to_cam @ (ground - [0, 0.95 + sway, 0])
            shoulders = to_cam @ (ground - [0, 1.45 + sway, 0])
            kp = np.zeros((17, 3))
            for index, point in ((11, hips), (12, hips), (5, shoulders), (6, shoulders)):
                kp[index, :2] = focal * point[:2] / point[2] + pp + rng.normal(0, pixel_noise, 2)
                kp[index, 2] = 1.0
            u = focal * hips[:2] / hips[2]  # the hips' pixel, centred
            z = hips[2] * fit_focal / focal * size_error * (1 + rng.normal(0, depth_noise))
            keypoints.append(kp)
            pelvis.append([u[0] * z / fit_focal, u[1] * z / fit_focal, z])
            track.append(tid)
            frame.append(i)
    return np.array(keypoints), np.array(pelvis), np.array(track), np.array(frame)


@pytest.mark.parametrize("fit_ratio", [0.7, 1.4])
def test_focal_from_floor_recovers_a_tilted_cameras_focal(fit_ratio, measured):
    rng = np.random.default_rng(3)
    kp, pelvis, track, frame = _walkers(520.0, 22.0, 1.5, 520.0 * fit_ratio, rng)
    found = focal_from_floor(kp, pelvis, track, frame, 520.0 * fit_ratio, 640, 480)
    assert found is not None
    measured("f_rel_err", abs(found.focal_px / 520.0 - 1))
    measured("tilt_err_deg", abs(found.tilt_deg - 22.0))
    measured("roll_err_deg", abs(found.roll_deg - 1.5))
    # Measured: focal 0.49 % off, tilt 0.02 degrees, roll 0.001 degrees.
    assert found.focal_px == pytest.approx(520.0, rel=0.0075)
    assert found.tilt_deg == pytest.approx(22.0, abs=0.05)
    assert found.roll_deg == pytest.approx(1.5, abs=0.01)
    assert (found.person_frames, found.tracks) == (144, 3)
    # Noisy keypoints (0.7 px) and fitted depths (2 % per frame) still fix it.
    kp, pelvis, track, frame = _walkers(520.0, 22.0, 1.5, 520.0 * fit_ratio, rng, pixel_noise=0.7, depth_noise=0.02)
    found = focal_from_floor(kp, pelvis, track, frame, 520.0 * fit_ratio, 640, 480)
    if found is not None:
        measured("noisy_f_rel_err", abs(found.focal_px / 520.0 - 1))
    assert found is not None and found.focal_px == pytest.approx(520.0, rel=0.014)  # measured 0.91 %


def test_focal_from_floor_declines_a_level_camera_and_unseen_torsos():
    rng = np.random.default_rng(4)
    # A level camera: the torsos stay parallel and the hips level at every focal.
    kp, pelvis, track, frame = _walkers(520.0, 0.0, 0.0, 600.0, rng, pixel_noise=0.3, depth_noise=0.01,
                                        camera_height=1.0)
    assert focal_from_floor(kp, pelvis, track, frame, 600.0, 640, 480) is None
    # People who stay at one depth (here: standing, the hips bobbing): their hips' height
    # cannot show the focal.
    kp, pelvis, track, frame = _walkers(520.0, 22.0, 0.0, 600.0, rng, speed=0.05)
    assert focal_from_floor(kp, pelvis, track, frame, 600.0, 640, 480) is None
    # Hips and shoulders below the confidence threshold: nothing to use.
    kp, pelvis, track, frame = _walkers(520.0, 22.0, 0.0, 600.0, rng)
    kp[:, :, 2] = 0.3
    assert focal_from_floor(kp, pelvis, track, frame, 600.0, 640, 480) is None


def _upright_torsos(rng, down, camera_height, focal, n, pixel_noise=1.0, centred=False):
    """COCO-17 keypoints (n, 17, 3) of n upright people standing on the floor ``down . p =
    camera_height`` 3-9 m away (on the image's centre column if ``centred``): hips 0.9 m
    and shoulders 1.4 m above their feet, seen at ``focal`` with ``pixel_noise`` px noise."""
    e1 = np.cross(down, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e1 *= np.sign(e1[2])  # forward along the floor
    e2 = np.cross(down, e1)  # sideways along the floor
    kp = np.zeros((n, 17, 3))
    for i in range(n):
        side = 0.0 if centred else rng.uniform(-2.5, 2.5)
        foot = camera_height * down + rng.uniform(3.0, 9.0) * e1 + side * e2
        for idx, rise, lateral in ((11, 0.9, -0.15), (12, 0.9, 0.15), (5, 1.4, -0.2), (6, 1.4, 0.2)):
            x = foot - rise * down + lateral * e2
            kp[i, idx, :2] = focal * x[:2] / x[2] + rng.normal(0, pixel_noise, 2)
            kp[i, idx, 2] = 1.0
    return kp


def test_torsos_set_the_floor_normal_the_bodies_lean_off():
    """Upright torsos seen at the right focal give the floor's normal within a fraction of
    a degree from a prior 6 degrees off; where everyone stands on the image's centre
    column the tilt is unobserved and the prior keeps it."""
    rng = np.random.default_rng(4)
    focal = 500.0
    for tilt, roll in ((0.0, 0.0), (20.0, 3.0)):
        down = floor_down(math.radians(tilt), math.radians(roll))
        prior = floor_down(math.radians(tilt + 5.0), math.radians(roll - 3.0))
        lines, ok = torso_lines(_upright_torsos(rng, down, 3.0, focal, 60), np.zeros(2))
        assert ok.all()
        est = down_from_torsos(line_planes(lines, focal), prior)
        # measured 0.43 and 0.54 degrees (1 px noise); the prior is 5.8 and 5.7 degrees off
        assert math.degrees(math.acos(min(est @ down, 1.0))) < 0.8
    down = floor_down(math.radians(10.0), 0.0)
    prior = floor_down(math.radians(14.0), math.radians(2.0))
    lines, _ = torso_lines(_upright_torsos(rng, down, 3.0, focal, 40, pixel_noise=0.0, centred=True), np.zeros(2))
    est = down_from_torsos(line_planes(lines, focal), prior)
    assert abs(math.degrees(math.asin(est[2])) - 14.0) < 0.1  # the prior's tilt (measured 0.01 degrees off)
    assert abs(math.degrees(math.atan2(-est[0], est[1]))) < 0.1  # the torsos' roll, 0 (measured 0.02)


def test_shared_ground_takes_the_torsos_normal_over_leaning_bodies(measured):
    """Bodies whose up axes lean 4 degrees (a walk, a fit's root bias) put the camera at
    different heights for people to either side; their torsos' lines restore the normal
    and the adults keep their size."""
    rng = np.random.default_rng(5)
    down, h, focal = floor_down(math.radians(12.0), 0.0), 3.0, 500.0
    leaning = floor_down(math.radians(12.0), math.radians(4.0))
    sides = {1: -2.0, 2: 0.0, 3: 2.0}

    def fill(ground, torsos):
        for tid, side in sides.items():
            feet = _track_feet(rng, down, h, 12, 5.0) + side * np.cross(down, [0.0, 0.0, 1.0])
            ground.add(np.full(12, tid), feet, np.broadcast_to(-leaning, (12, 3)), np.ones(12), np.ones(12, bool))
        if torsos:
            lines, _ = torso_lines(_upright_torsos(rng, down, h, focal, 36), np.zeros(2))
            ground.add_torsos(line_planes(lines, focal))
        return ground.estimate()

    bodies = fill(SharedGround(), torsos=False)
    assert bodies.down_cue == "bodies"
    # the people to either side see heights 9 % apart, and one is rescaled (measured 1.8 %)
    assert measured("bodies_log_scale_max", max(abs(math.log(s)) for s in bodies.scales.values())) > 0.012
    est = fill(SharedGround(), torsos=True)
    assert est.down_cue == "torsos"
    assert measured("torsos_down_err_deg", math.degrees(math.acos(min(est.down @ down, 1.0)))) < 0.75  # measured 0.49
    # measured 0.22 %: within noise, left alone
    assert measured("torsos_log_scale_max", max(abs(math.log(s)) for s in est.scales.values())) < 0.0035


def test_shared_ground_takes_the_scene_vertical_over_biased_bodies(measured):
    """Bodies whose up axes lean 15 degrees off the floor's normal (as BlazePose's did on
    real vtest) make tracks at different depths disagree on the camera's height, and
    adults get rescaled; with the normal from the scene's lines (``set_down``, any sign)
    every track agrees and keeps its size."""
    rng = np.random.default_rng(3)
    down, h = _down(15.0), 6.0
    leaning = _down(0.0)
    tracks = {1: 8.0, 2: 12.0, 3: 18.0}  # depths, metres: three adults of the right size

    def fill(ground):
        for tid, depth in tracks.items():
            feet = _track_feet(rng, down, h, 12, depth)
            ground.add(np.full(12, tid), feet, np.broadcast_to(-leaning, (12, 3)), np.ones(12), np.ones(12, bool))
        return ground.estimate()

    biased = fill(SharedGround())
    # someone rescaled by > 6 % (measured 9.2 %)
    assert measured("biased_log_scale_max", max(abs(math.log(s)) for s in biased.scales.values())) > 0.06
    ground = SharedGround()
    ground.set_down(-down)  # the lines' axis may come either way up
    est = fill(ground)
    assert np.allclose(est.down, down)
    measured("down_diff_max", np.abs(est.down - down).max())
    for tid, s in est.scales.items():
        measured(f"scale_err_t{tid}_rel", abs(s - 1.0))
    assert all(abs(s - 1.0) < 1e-3 for s in est.scales.values())  # measured exactly 1
    assert measured("camera_height_err_m", abs(est.camera_height_m - h)) < 1e-3  # measured exact
    ground.reset()
    assert ground.down is None  # a new shot forgets it
