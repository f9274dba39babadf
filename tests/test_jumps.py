"""Jumps between consecutive windows of one shot (stream/jumps.py)."""

from __future__ import annotations

import numpy as np

from meshstream.stream.jumps import Jump, JumpCheck
from meshstream.stream.messages import BodyFit


def _fit(frames: list[int], tracks: list[int], depth: list[float]) -> BodyFit:
    m = len(frames)
    pelvis = np.zeros((m, 3), np.float32)
    pelvis[:, 2] = depth
    return BodyFit("anny", np.asarray(frames, np.int64), np.asarray(tracks, np.int64), np.zeros((m, 3)),
                   np.zeros((m, 1, 3)), np.zeros((m, 1)), pelvis.copy(), pelvis, np.zeros((m, 1, 3)),
                   np.zeros((m, 17, 3)), 500.0, np.zeros(2), np.zeros(m), np.ones(m), np.ones(m, bool))


def test_a_focal_that_moves_between_windows_of_a_still_shot_is_a_jump():
    check = JumpCheck(focal_factor=1.5, depth_factor=1.25, min_person_frames=24)
    assert check(0, 0, 500.0, 48, False, None) == []  # the shot's first window: nothing to compare
    assert check(0, 48, 650.0, 48, False, None) == []  # 1.3x: within the factor
    jumps = check(0, 96, 1000.0, 48, False, None)  # 1.54x the previous window's
    assert [(j.kind, j.shot, j.frame_index, j.before, j.after) for j in jumps] == [("focal", 0, 96, 650.0, 1000.0)]
    assert abs(jumps[0].factor - 1000 / 650) < 1e-9
    record = jumps[0].record()
    assert record["kind"] == "focal" and record["factor"] == 1.538 and record["track_id"] is None
    assert "1.54x" in jumps[0].note() and "--fov-deg" in jumps[0].note()


def test_no_focal_jump_across_a_cut_a_zoom_or_a_window_with_few_people():
    check = JumpCheck(focal_factor=1.5, depth_factor=1.25, min_person_frames=24)
    check(0, 0, 500.0, 48, False, None)
    assert check(0, 48, 1500.0, 10, False, None) == []  # too few person-frames to count
    assert check(1, 96, 1500.0, 48, False, None) == []  # a new shot may have another focal
    assert check(1, 144, 3000.0, 48, True, None) == []  # zooming: the focal may change
    assert check(1, 192, 300.0, 48, False, None) == []  # the zoom left nothing to compare with
    assert len(check(1, 240, 150.0, 48, False, None)) == 1  # 2x: a jump


def test_a_depth_that_jumps_across_a_window_boundary_is_a_jump_per_track():
    check = JumpCheck(focal_factor=1.5, depth_factor=1.25, max_gap_frames=2)
    assert check(0, 0, None, 8, False, _fit([0, 1, 2, 3, 2, 3], [1, 1, 1, 1, 2, 2], [2.0, 2.0, 2.1, 2.1, 3, 3])) == []
    # Track 1 goes from 2.1 to 3.0 m between frames 3 and 4 (1.43x); track 2 moves 3 -> 3.3 m (1.1x).
    jumps = check(0, 4, None, 4, False, _fit([4, 5, 4, 5], [1, 1, 2, 2], [3.0, 3.0, 3.3, 3.3]))
    assert len(jumps) == 1
    j = jumps[0]
    assert (j.kind, j.track_id, j.frame_index) == ("depth", 1, 4) and abs(j.before - 2.1) < 1e-6 and j.after == 3.0
    assert "track 1" in j.note() and "2.10 m to 3.00 m" in j.note()
    # A track lost for longer than max_gap_frames may have moved: no comparison.
    assert check(0, 9, None, 1, False, _fit([9], [2], [6.0])) == []
    # Rows out of frame order within a window are read in frame order.
    assert len(check(0, 10, None, 2, False, _fit([11, 10], [2, 2], [6.0, 9.0]))) == 1


def test_jump_factor_is_symmetric():
    assert Jump("focal", 0, 0, 400.0, 800.0).factor == Jump("focal", 0, 0, 800.0, 400.0).factor == 2.0


def _window(shot: int, first: int, n_frames: int = 4):
    from meshstream.stream.messages import PersonFrames, Window

    m = n_frames
    obs = PersonFrames(np.arange(first, first + m, dtype=np.int64), np.ones(m, np.int64),
                       np.tile(np.array([[100, 50, 200, 400]], np.float32), (m, 1)),
                       np.zeros((m, 23, 3), np.float32), np.zeros((m, 23, 3), np.float32))
    return Window(shot, np.arange(first, first + m, dtype=np.int64), np.arange(m) / 30.0, np.ones(m, np.float32), obs,
                  np.zeros((m, 33, 3), np.float32))


def _solver():
    from meshstream.stream.shot_solver import ShotSolver

    solver = ShotSolver(image_size=(640, 480), principal_point=np.array([320.0, 240.0]), user_focal=None, cues=[],
                        fov_range_deg=(15.0, 130.0))
    solver.start_shot()
    return solver


def _fitter(focal_px: float, evidence_px: float | None, cost_minimum_at: int = 10):
    """A fitter whose focal search found ``focal_px`` (``evidence_px`` from the votes alone)."""
    from meshstream.stream.messages import FitResult, FocalEstimate

    grid = np.geomspace(150.0, 2400.0, 64)
    cost = (np.arange(64) - cost_minimum_at) ** 2.0

    def fit(window, camera, priors):
        m = len(window.obs)
        return FitResult(_fit(window.obs.frame_index.tolist(), [1] * m, [2.0] * m), {},
                         FocalEstimate(focal_px, {}, grid, cost, evidence_px), None, None)
    return fit


def test_the_shot_notes_a_focal_the_prior_set_or_the_evidence_left_at_the_range_edge():
    solver = _solver()
    solved = solver.solve(_window(0, 0), [], np.zeros((0, 4)), _fitter(500.0, 300.0), False)
    assert solved.focal_px == 500.0 and solved.window_focal_px == 500.0
    assert len(solver.notes) == 1
    assert "flat around its minimum (300 px)" in solver.notes[0] and "set it to 500 px" in solver.notes[0]
    solver = _solver()  # the evidence fixed it (no prior used): no note
    solver.solve(_window(0, 0), [], np.zeros((0, 4)), _fitter(550.0, None), False)
    assert solver.notes == []
    solver = _solver()  # the votes' minimum at the range's edge: the note says the prior set it
    solver.solve(_window(0, 0), [], np.zeros((0, 4)), _fitter(480.0, 150.0, cost_minimum_at=0), False)
    assert len(solver.notes) == 1
    assert "edge of its range (150 px" in solver.notes[0] and "the prior over cameras' views set it to 480 px" in \
        solver.notes[0]
