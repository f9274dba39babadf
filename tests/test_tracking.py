"""Tracker on hand-made detections; temporal filters on noisy signals with known truth."""

import numpy as np

from meshstream.models.detections import Detections
from meshstream.tracking.filters import TranslationSmoother, robust_focal
from meshstream.tracking.tracker import IoUTracker


def _dets(boxes):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    return Detections(xyxy=boxes, score=np.ones(n), keypoints=np.zeros((n, 33, 3)), keypoint_layout="blazepose33")


def _box(cx, cy, w=40, h=100):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def test_two_people_walking_past_each_other_keep_their_ids():
    tracker = IoUTracker()
    ids_a, ids_b = [], []
    for t in range(30):
        a = _box(100 + 8 * t, 200)  # walks right
        b = _box(340 - 8 * t, 215)  # walks left, slightly lower
        order = [a, b] if t % 2 else [b, a]  # detection order must not matter
        out = tracker(_dets(order), t / 10)
        got = {tuple(np.round(out.xyxy[i], 1)): out.track_id[i] for i in range(2)}
        ids_a.append(got[tuple(np.round(np.float32(a), 1))])
        ids_b.append(got[tuple(np.round(np.float32(b), 1))])
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]


def test_short_gap_keeps_id_long_gap_starts_new_track():
    tracker = IoUTracker(max_age_s=1.0)
    first = tracker(_dets([_box(100, 100)]), 0.0).track_id[0]
    for t in range(1, 5):
        tracker(_dets([_box(100 + 2 * t, 100)]), t / 10)
    # 0.5 s without detections, then the person is back where the motion predicts.
    back = tracker(_dets([_box(120, 100)]), 0.9).track_id[0]
    assert back == first
    later = tracker(_dets([_box(122, 100)]), 3.0).track_id[0]
    assert later != first


def test_min_hits_hides_new_tracks_until_confirmed():
    tracker = IoUTracker(min_hits=3)
    ids = [tracker(_dets([_box(50, 50)]), t / 10).track_id[0] for t in range(4)]
    assert ids[:2] == [-1, -1] and ids[2] == ids[3] > 0


def test_rts_smoother_reduces_error_of_noisy_depth():
    rng = np.random.default_rng(0)
    t = np.arange(100) / 25.0
    truth = np.c_[0.5 * t, np.full_like(t, 0.2), 3.0 + 0.4 * t]
    noisy = truth + rng.normal(0, [0.02, 0.02, 0.15], truth.shape)
    smooth = TranslationSmoother()(1, t, noisy)
    err_raw = np.abs(noisy[:, 2] - truth[:, 2]).mean()
    err_smooth = np.abs(smooth[:, 2] - truth[:, 2]).mean()
    assert err_smooth < 0.5 * err_raw


def test_causal_filter_state_carries_across_chunks_with_bounded_lag():
    t = np.arange(60) / 30.0
    truth = np.c_[np.zeros_like(t), np.zeros_like(t), 2.0 + 1.0 * t]  # 1 m/s away from camera
    f = TranslationSmoother(causal=True)
    out = np.concatenate([f(7, t[:30], truth[:30]), f(7, t[30:], truth[30:])])
    lag = np.abs(out[-10:, 2] - truth[-10:, 2]).max()
    assert lag < 0.03  # under 1 frame of motion (3.3 cm at 30 fps)


def test_invalid_measurements_are_bridged():
    t = np.arange(20) / 10.0
    truth = np.c_[0.1 * t, np.zeros_like(t), np.full_like(t, 4.0)]
    meas = truth.copy()
    valid = np.ones(20, bool)
    meas[8:12] = [5.0, 5.0, 40.0]
    valid[8:12] = False
    out = TranslationSmoother()(1, t, meas, valid)
    assert np.abs(out - truth).max() < 0.05


def test_robust_focal_ignores_outliers_and_nans():
    v = np.array([500, 510, 490, 505, np.nan, 3000, 495], float)
    assert abs(robust_focal(v) - 502) < 10
    assert np.isnan(robust_focal(np.array([np.nan])))
