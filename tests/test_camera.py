"""Camera conventions and the focal/translation maths, on exact synthetic points."""

import math

import numpy as np
import pytest
import torch

from meshstream.models.camera import (
    FocalPrior,
    focal_from_fov,
    focal_from_rotation,
    focal_grid,
    focal_with_prior,
    fov_from_focal,
    optical_axis_turn_deg,
    project,
    ray_rotation,
    refine_minimum,
    reprojection_nll,
    rotation_residual,
    solve_translation,
    zoom_between,
)

PP = torch.tensor([320.0, 240.0], dtype=torch.float64)


def test_opencv_convention_x_right_y_down():
    pts = torch.tensor([[0.5, 0.0, 2.0], [0.0, 0.5, 2.0], [0.0, 0.0, 2.0]], dtype=torch.float64)
    uv = project(pts, 500.0, PP)
    assert uv[0, 0] > PP[0] and torch.isclose(uv[0, 1], PP[1])  # +x is image right
    assert uv[1, 1] > PP[1] and torch.isclose(uv[1, 0], PP[0])  # +y is image down
    assert torch.allclose(uv[2], PP)
    assert torch.isclose(uv[0, 0], torch.tensor(320.0 + 500 * 0.25, dtype=torch.float64))


def test_fov_focal_round_trip():
    f = focal_from_fov(60.0, 640)
    assert math.isclose(f, 320 / math.tan(math.radians(30)))
    assert math.isclose(fov_from_focal(f, 640), 60.0)
    with pytest.raises(ValueError):
        focal_from_fov(180.0, 640)


def _body_points(m: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(1, 20, 3, generator=g, dtype=torch.float64) * torch.tensor([0.25, 0.6, 0.15], dtype=torch.float64)
    return base + 0.01 * torch.randn(m, 20, 3, generator=g, dtype=torch.float64)


def test_solve_translation_recovers_exact_translation():
    pts = _body_points(4)
    t_true = torch.tensor([[0.3, -0.2, 2.5], [-1.0, 0.4, 4.0], [0.0, 0.0, 1.2], [2.0, 0.5, 7.0]], dtype=torch.float64)
    f = torch.tensor([600.0], dtype=torch.float64)
    uv = project(pts + t_true[:, None], f, PP)
    t = solve_translation(pts, uv, torch.ones(4, 20, dtype=torch.float64), f, PP)
    assert t.shape == (4, 1, 3)
    assert torch.allclose(t[:, 0], t_true, atol=1e-6)


def test_focal_search_with_exact_structure_finds_true_focal():
    pts = _body_points(30, seed=3)
    rng = np.random.default_rng(1)
    t_true = torch.tensor(np.c_[rng.uniform(-0.8, 0.8, 30), rng.uniform(-0.3, 0.3, 30), rng.uniform(1.2, 3.0, 30)])
    f_true = 420.0
    uv = project(pts + t_true[:, None], f_true, PP)
    uv = uv + torch.as_tensor(rng.normal(0, 1.0, uv.shape))  # 1 px noise
    grid = focal_grid(640, 480)
    f = torch.as_tensor(grid)
    w = torch.ones(30, 20, dtype=torch.float64)
    t = solve_translation(pts, uv, w, f, PP)
    cost = reprojection_nll(pts, t, uv, w, f, PP, torch.full((30,), 2.0, dtype=torch.float64), 0.0).sum(0).numpy()
    f_hat = refine_minimum(grid, cost)
    assert abs(f_hat - f_true) / f_true < 0.05
    # The minimum is inside the range; a range that excludes the true focal ends at its edge.
    from meshstream.stream.messages import FocalEstimate

    assert not FocalEstimate(f_hat, {}, grid, cost).at_range_edge
    narrow = focal_grid(640, 480, 100.0, 120.0)  # wider than the true 74 degrees
    t = solve_translation(pts, uv, w, torch.as_tensor(narrow), PP)
    cost = reprojection_nll(pts, t, uv, w, torch.as_tensor(narrow), PP, torch.full((30,), 2.0, dtype=torch.float64),
                            0.0).sum(0).numpy()
    assert FocalEstimate(refine_minimum(narrow, cost), {}, narrow, cost).at_range_edge


def test_ray_rotation_maps_optical_axis_to_ray():
    uv = torch.tensor([[500.0, 100.0], [320.0, 240.0]], dtype=torch.float64)
    r = ray_rotation(uv, torch.tensor(400.0, dtype=torch.float64), PP)
    z = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    d = r @ z
    ray = torch.cat([(uv - PP) / 400.0, torch.ones(2, 1, dtype=torch.float64)], 1)
    ray = ray / ray.norm(dim=1, keepdim=True)
    assert torch.allclose(d, ray, atol=1e-9)
    assert torch.allclose(r[1], torch.eye(3, dtype=torch.float64))
    assert torch.allclose(r @ r.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(2, 3, 3), atol=1e-9)


def test_refine_minimum_parabola():
    grid = np.geomspace(100, 1000, 30)
    cost = (np.log(grid) - np.log(377.0)) ** 2
    assert abs(refine_minimum(grid, cost) - 377.0) < 1.0


def test_normalised_costs_give_every_observation_one_vote():
    from meshstream.models.camera import normalise_costs

    grid = np.geomspace(200.0, 2000.0, 41)
    x = np.log(grid)
    agree = [(x - np.log(500.0)) ** 2 * s for s in (1.0, 2.0, 0.5, 1.5)]  # four frames: 500 px
    outlier = 200.0 * (x - np.log(1500.0)) ** 2  # one frame, badly off and steep: 1500 px
    cost = np.stack(agree + [outlier])
    assert refine_minimum(grid, cost.sum(0)) > 1000.0  # a plain sum follows the outlier
    norm = normalise_costs(cost)
    np.testing.assert_allclose(norm.min(1), 0.0)
    np.testing.assert_allclose(norm.max(1), 1.0)
    assert abs(refine_minimum(grid, norm.sum(0)) / 500.0 - 1) < 0.15
    assert not normalise_costs(np.ones((1, 5))).any()  # a flat curve casts no vote
    gaps = normalise_costs(np.array([[np.nan, 3.0, 1.0, 2.0], [np.nan, np.nan, np.nan, np.nan]]))
    np.testing.assert_allclose(gaps, [[1.0, 1.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]])  # no solution: worst


def _turn(pan_deg: float, tilt_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    import roma

    angles = torch.tensor([tilt_deg, pan_deg, roll_deg], dtype=torch.float64).deg2rad()
    return roma.euler_to_rotmat("XYZ", angles).numpy()


def _camera(focal: float) -> np.ndarray:
    return np.array([[focal, 0.0, 320.0], [0.0, focal, 240.0], [0.0, 0.0, 1.0]])


def _measured(h: np.ndarray, rng: np.random.Generator, noise_px: float) -> np.ndarray:
    """The homography as RANSAC fits it from 200 matched points with pixel noise."""
    import cv2

    a = rng.uniform([0, 0], [640, 480], (200, 2))
    b = cv2.perspectiveTransform(a[None], h)[0] + rng.normal(0, noise_px, (200, 2))
    return cv2.findHomography(a, b, cv2.RANSAC, 2.0)[0]


def test_focal_from_a_camera_that_turns_and_zooms():
    f = 420.0
    rng = np.random.default_rng(0)
    exact, zooms = [], np.linspace(1.0, 1.2, 30)
    for t, z in enumerate(zooms):
        turn = _turn(8.0 * t / 29, 2.0 * np.sin(t / 5), 1.0)
        exact.append(_camera(z * f) @ turn @ np.linalg.inv(_camera(f)))
    exact = np.array(exact)
    pp = np.array([320.0, 240.0])
    # K2^-1 H K is a rotation at the true focal only; the zoom is read from it.
    res = rotation_residual(exact, np.array([0.8 * f, f, 1.25 * f]), pp)
    assert res[:, 1].max() < 1e-9 and (res[1:, [0, 2]] > 1e-4).all()
    assert np.allclose(zoom_between(exact, f, pp), zooms, atol=1e-9)
    assert np.allclose(optical_axis_turn_deg(exact[-1:], f, pp), np.hypot(8.0, 2.0 * np.sin(29 / 5)), atol=0.05)
    found = focal_from_rotation(exact, 640, 480)
    assert found is not None and found.focal_px == pytest.approx(f, rel=2e-3) and found.frames == 30
    measured = np.array([_measured(h, rng, 0.5) for h in exact])
    found = focal_from_rotation(measured, 640, 480)
    assert found is not None and found.focal_px == pytest.approx(f, rel=0.01)
    assert found.turn_deg > 7 and found.contrast > 10
    # A pure zoom is exact at any focal, and a 5 degree pan errs by < 0.5 % with a focal 30 % off.
    zoom_only = np.array([_camera(1.1 * f) @ np.linalg.inv(_camera(f))])
    assert zoom_between(zoom_only, 2 * f, pp)[0] == pytest.approx(1.1, abs=1e-9)
    pan = np.array([_camera(f) @ _turn(5.0) @ np.linalg.inv(_camera(f))])
    assert abs(zoom_between(pan, 1.3 * f, pp)[0] - 1) < 0.005


@pytest.mark.parametrize("motion", ["still", "roll", "zoom", "slide", "small turn"])
def test_no_focal_from_motion_that_does_not_fix_it(motion):
    f = 500.0
    rng = np.random.default_rng(1)
    k, k_inv = _camera(f), np.linalg.inv(_camera(f))
    hs = []
    for t in range(1, 31):
        h = {"still": np.eye(3),
             "roll": k @ _turn(0.0, 0.0, 0.5 * t) @ k_inv,
             "zoom": _camera(f * (1 + 0.01 * t)) @ k_inv,
             "slide": np.array([[1.0, 0.0, 2.0 * t], [0.0, 1.0, 0.3 * t], [0.0, 0.0, 1.0]]),  # a camera moving sideways
             "small turn": k @ _turn(1.5 * t / 30) @ k_inv}[motion]
        hs.append(_measured(h, rng, 0.5))
    assert focal_from_rotation(np.array(hs), 640, 480) is None


def test_focal_from_a_camera_that_turns_while_it_zooms_between_anchors():
    """Pairs from anchor frames already zoomed (1.0, 1.15, 1.3): each pair is searched at
    its anchor's zoom times the candidate, and the focal at zoom 1 comes back."""
    f = 500.0
    hs, anchor_zoom = [], []
    for anchor, (z0, pan0) in enumerate(((1.0, 0.0), (1.15, 4.0), (1.3, 8.0))):
        for t in range(1, 11):
            z1, pan1 = z0 * (1 + 0.013 * t), pan0 + 0.4 * t
            hs.append(_camera(z1 * f) @ _turn(pan1, 1.0) @ _turn(pan0, 1.0).T @ np.linalg.inv(_camera(z0 * f)))
            anchor_zoom.append(z0)
    found = focal_from_rotation(np.array(hs), 640, 480, anchor_zoom=np.array(anchor_zoom))
    assert found is not None and found.focal_px == pytest.approx(f, rel=2e-3)
    # Ignoring the anchors' zoom mixes three focals: the estimate lands elsewhere or nowhere.
    wrong = focal_from_rotation(np.array(hs), 640, 480)
    assert wrong is None or abs(wrong.focal_px / f - 1) > 0.05


def test_fill_rotations_interpolates_gaps_and_keeps_the_last_at_the_end():
    from meshstream.models.camera import fill_rotations

    truth = [_turn(0.5 * t, 0.1 * t) for t in range(1, 11)]  # a steady pan and tilt
    seen = [None if t in (0, 3, 4, 5, 9) else r for t, r in enumerate(truth)]
    filled, n = fill_rotations(seen, _turn(0.0))  # the frame before: unturned
    assert n == 5
    assert np.abs(filled[:9] - np.array(truth[:9])).max() < 1e-3  # slerp of a steady turn is the turn
    assert np.array_equal(filled[9], truth[8])  # nothing follows: the last one is kept
    empty, n = fill_rotations([], np.eye(3))
    assert empty.shape == (0, 3, 3) and n == 0


def test_the_focal_prior_is_log_normal_around_its_field_of_view():
    prior = FocalPrior(fov_deg=65.0, spread=1.5, weight=0.3)
    mode = focal_from_fov(65.0, 640)
    cost = prior.cost(np.array([mode / 1.5, mode, mode * 1.5, mode * 2.25]), 640)
    # Zero at the mode, the weight one spread away on either side, four times it at two.
    assert cost == pytest.approx([0.3, 0.0, 0.3, 1.2])


def _votes(grid: np.ndarray, minimum: float, depth: float, n: int = 30) -> np.ndarray:
    """n identical person-frame curves in [0, 1]: a parabola in log f of ``depth``
    over one octave, with its minimum at ``minimum``."""
    curve = np.minimum(depth * (np.log(grid / minimum) / math.log(2.0)) ** 2, 1.0)
    return np.repeat(curve[None], n, 0)


def test_the_prior_decides_only_where_the_votes_do_not_fix_the_focal():
    grid = focal_grid(640, 480, 15.0, 130.0)
    prior = FocalPrior(fov_deg=65.0, spread=1.5, weight=0.3, flat_rise=0.01)
    mode = focal_from_fov(65.0, 640)
    # Flat votes: the prior's mode.
    focal, used = focal_with_prior(grid, np.zeros((30, len(grid))), 640, prior)
    assert used and focal == pytest.approx(mode, rel=0.02)
    # Votes ending at the range's edge (the widest view) are pulled inside it.
    edge = np.repeat(np.linspace(0.0, 1.0, len(grid))[None], 30, 0)
    assert refine_minimum(grid, edge.mean(0)) == grid[0]
    focal, used = focal_with_prior(grid, edge, 640, prior)
    assert used and 0.85 * mode < focal < mode  # measured 0.906 of the mode
    # A minimum at 40 degrees rising by 0.02 within an octave (twice flat_rise; the
    # validation scenes' mean votes rise by a median 0.03-0.16) is the evidence's alone.
    f40 = focal_from_fov(40.0, 640)
    focal, used = focal_with_prior(grid, _votes(grid, f40, 0.02), 640, prior)
    assert not used and focal == pytest.approx(f40, rel=0.01)
    # Rising by 0.005: flat; the prior takes it most of the way to its mode.
    focal, used = focal_with_prior(grid, _votes(grid, f40, 0.005), 640, prior)
    assert used and mode < focal < 0.65 * f40
    # The mean, not the sum, of the votes meets the prior (30 votes weigh as much as 3).
    assert focal_with_prior(grid, _votes(grid, f40, 0.005, n=3), 640, prior)[0] == pytest.approx(focal)
    # No prior, or a zero weight: the votes' own minimum, flat or not.
    for none in (None, FocalPrior(weight=0.0)):
        assert focal_with_prior(grid, _votes(grid, f40, 0.005), 640, none) == (pytest.approx(f40, rel=0.01), False)
