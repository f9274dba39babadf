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
