"""Tracker on hand-made detections; temporal filters on noisy signals with known truth."""

import numpy as np
import pytest

from meshstream.stream.messages import Detections, Frame
from meshstream.tracking.filters import TranslationSmoother, robust_focal
from meshstream.tracking.tracker import _COCO_FROM_BLAZE, PersonTracker


def _dets(boxes, scores=None, kps=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    if kps is None:
        # A rough standing skeleton filling each box, so that OKS is meaningful.
        rel = np.array([[0.5, 0.08], [0.47, 0.06], [0.53, 0.06], [0.44, 0.07], [0.56, 0.07], [0.35, 0.2],
                        [0.65, 0.2], [0.3, 0.35], [0.7, 0.35], [0.28, 0.5], [0.72, 0.5], [0.4, 0.5], [0.6, 0.5],
                        [0.4, 0.72], [0.6, 0.72], [0.4, 0.95], [0.6, 0.95]])
        kps = np.zeros((n, 33, 3), np.float32)
        for i, b in enumerate(boxes):
            pts = b[:2] + rel * (b[2:] - b[:2])
            kps[i, _COCO_FROM_BLAZE, :2] = pts
            kps[i, _COCO_FROM_BLAZE, 2] = 1.0
    return Detections(xyxy=boxes, score=np.ones(n) if scores is None else scores, keypoints=kps,
                      keypoint_layout="blazepose33")


def _box(cx, cy, w=40, h=100):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _frame(t, boxes=(), colours=(), size=(240, 480)):
    """A grey frame with each box filled by a colour (the person's appearance)."""
    rgb = np.full((*size, 3), 100, np.uint8)
    for b, c in zip(boxes, colours):
        x0, y0, x1, y1 = (int(round(v)) for v in b)
        rgb[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = c
    return Frame(index=int(round(t * 10)), pts_seconds=t, rgb=rgb)


RED, BLUE = (200, 40, 40), (40, 60, 200)


def _ids_of(out, box):
    for i in range(len(out)):
        if np.allclose(out.xyxy[i], np.float32(box), atol=0.05):
            return int(out.track_id[i])
    raise AssertionError("box not found")


@pytest.mark.parametrize("colours", [(RED, BLUE), (RED, RED)])
def test_two_people_crossing_keep_their_ids(colours):
    """Two people walk through each other (boxes overlap for several frames); ids hold,
    with different clothes and with identical ones (then motion decides)."""
    tracker = PersonTracker(min_hits=1)
    ids_a, ids_b = [], []
    for k in range(40):
        t = k / 10
        a, b = _box(100 + 7 * k, 120), _box(380 - 7 * k, 125)
        order = [a, b] if k % 2 else [b, a]  # detection order must not matter
        cols = [colours[0], colours[1]] if k % 2 else [colours[1], colours[0]]
        out = tracker(_dets(order), _frame(t, order, cols))
        ids_a.append(_ids_of(out, a))
        ids_b.append(_ids_of(out, b))
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]


def test_occlusion_gap_keeps_id_and_long_absence_starts_new_track():
    tracker = PersonTracker(min_hits=1, reid_s=2.0)
    first = None
    for k in range(10):
        out = tracker(_dets([_box(100 + 4 * k, 120)]), _frame(k / 10, [_box(100 + 4 * k, 120)], [RED]))
        first = first or int(out.track_id[0])
    for k in range(10, 20):  # 1 s fully occluded: no detection
        tracker(_dets([]), _frame(k / 10))
    back = tracker(_dets([_box(180, 120)]), _frame(2.0, [_box(180, 120)], [RED]))
    assert int(back.track_id[0]) == first
    for k in range(21, 50):  # gone for 2.9 s, longer than reid_s
        tracker(_dets([]), _frame(k / 10))
    later = tracker(_dets([_box(184, 120)]), _frame(5.0, [_box(184, 120)], [RED]))
    assert int(later.track_id[0]) != first


def test_reentry_is_reidentified_by_appearance():
    """A person leaves on the right and re-enters 1.5 s later elsewhere; a differently
    dressed newcomer at the same time must not take the id."""
    tracker = PersonTracker(min_hits=1, reid_s=2.0)
    red_id = None
    for k in range(8):
        box = _box(300 + 10 * k, 120)
        red_id = int(tracker(_dets([box]), _frame(k / 10, [box], [RED])).track_id[0])
    for k in range(8, 23):
        tracker(_dets([]), _frame(k / 10))
    red, blue = _box(330, 125), _box(150, 120)
    out = tracker(_dets([blue, red]), _frame(2.3, [blue, red], [BLUE, RED]))
    assert _ids_of(out, red) == red_id and _ids_of(out, blue) != red_id


def test_min_hits_hides_new_tracks_until_confirmed_except_on_the_first_frame():
    tracker = PersonTracker(min_hits=3)
    first = tracker(_dets([_box(50, 50)]), _frame(0.0, [_box(50, 50)], [RED]))
    assert int(first.track_id[0]) > 0  # the clip's first frame has its bodies (ByteTrack)
    boxes = [_box(50, 50), _box(300, 50)]
    ids = [tracker(_dets(boxes), _frame(k / 10, boxes, [RED, BLUE])).track_id.tolist() for k in range(1, 5)]
    assert [i[0] for i in ids] == [int(first.track_id[0])] * 4
    assert [i[1] for i in ids[:2]] == [-1, -1] and ids[2][1] == ids[3][1] > 0  # someone who walks in later
    tracker.reset()  # a new shot: its first frame is a first frame again
    assert int(tracker(_dets([_box(300, 50)]), _frame(1.0, [_box(300, 50)], [BLUE])).track_id[0]) > 0


def test_low_confidence_detections_extend_but_do_not_start_tracks():
    tracker = PersonTracker(min_hits=1, high_score=0.6, low_score=0.2)
    tid = int(tracker(_dets([_box(100, 100)]), _frame(0.0, [_box(100, 100)], [RED])).track_id[0])
    out = tracker(_dets([_box(103, 100)], scores=[0.3]), _frame(0.1, [_box(103, 100)], [RED]))
    assert int(out.track_id[0]) == tid  # stage 2 keeps the partly occluded person
    out = tracker(_dets([_box(300, 100)], scores=[0.3]), _frame(0.2, [_box(300, 100)], [BLUE]))
    assert int(out.track_id[0]) == -1  # a low-confidence stranger starts nothing


def test_oks_and_histograms():
    from meshstream.tracking.tracker import colour_histogram, hellinger, oks

    k = _dets([_box(100, 100)]).keypoints[:, _COCO_FROM_BLAZE]
    assert np.isclose(oks(k, k, np.array([4000.0]))[0, 0], 1.0)
    shifted = k.copy()
    shifted[..., 0] += 15
    assert 0.0 < oks(k, shifted, np.array([4000.0]))[0, 0] < 0.7
    f = _frame(0, [_box(100, 100), _box(300, 100)], [RED, BLUE])
    h_red = colour_histogram(f.rgb, np.float32(_box(100, 100)), None)
    h_blue = colour_histogram(f.rgb, np.float32(_box(300, 100)), None)
    assert np.isclose(h_red.sum(), 1.0) and hellinger(h_red[None], h_red[None])[0, 0] < 1e-3
    assert hellinger(h_red[None], h_blue[None])[0, 0] > 0.9


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


# ------------------------------------------------------------- rotations
def _rotvec_ramp(n, rate_rad_s, fps):
    t = np.arange(n) / fps
    rv = np.zeros((n, 1, 3))
    rv[:, 0, 2] = rate_rad_s * t
    return t, rv


def test_quaternion_smoothing_reduces_jitter_and_handles_the_pi_wrap():
    from meshstream.tracking.filters import smooth_rotations

    rng = np.random.default_rng(0)
    t, truth = _rotvec_ramp(60, 2.0, 25.0)  # crosses pi: axis-angle components jump there
    truth[:, 0, 2] += 2.0
    noisy = truth + rng.normal(0, 0.05, truth.shape)
    smooth = smooth_rotations(noisy, t, sigma_s=0.06)

    def angle(a, b):
        import roma
        import torch

        ra, rb = roma.rotvec_to_rotmat(torch.as_tensor(a)), roma.rotvec_to_rotmat(torch.as_tensor(b))
        return roma.rotmat_geodesic_distance(ra, rb).numpy()

    inner = slice(5, -5)
    assert angle(smooth, truth)[inner].mean() < 0.6 * angle(noisy, truth)[inner].mean()
    assert angle(smooth, truth).max() < 0.1  # no blow-up where the axis-angle wraps


def test_pose_smoother_chunks_match_one_pass():
    from meshstream.tracking.filters import PoseSmoother, smooth_rotations

    rng = np.random.default_rng(1)
    t, truth = _rotvec_ramp(48, 1.0, 25.0)
    noisy = truth + rng.normal(0, 0.03, truth.shape)
    whole = smooth_rotations(noisy, t, 0.06)
    s = PoseSmoother(sigma_s=0.06)
    chunked = np.concatenate([s(3, t[:24], noisy[:24]), s(3, t[24:], noisy[24:])])
    # Frames after the boundary see the previous chunk as context: identical to one pass.
    assert np.allclose(chunked[24:40], whole[24:40], atol=1e-6)


def test_one_euro_live_lag_under_one_frame_at_30fps():
    from meshstream.tracking.filters import PoseSmoother

    import roma
    import torch

    t, truth = _rotvec_ramp(60, 3.0, 30.0)  # a fast 3 rad/s limb swing
    s = PoseSmoother(causal=True)
    out = np.concatenate([s(1, t[i : i + 1], truth[i : i + 1]) for i in range(60)])
    lag_rad = roma.rotmat_geodesic_distance(roma.rotvec_to_rotmat(torch.as_tensor(out[-15:])),
                                            roma.rotvec_to_rotmat(torch.as_tensor(truth[-15:]))).max().item()
    assert lag_rad < 3.0 / 30.0  # less than one frame of motion
    rng = np.random.default_rng(2)
    still = np.zeros((60, 1, 3)) + rng.normal(0, 0.02, (60, 1, 3))
    s.reset()
    out = np.concatenate([s(1, t[i : i + 1], still[i : i + 1]) for i in range(60)])
    assert np.abs(out[20:]).std() < 0.5 * np.abs(still[20:]).std()  # jitter at rest is damped


# ----------------------------------------------------------------- shots
def test_shot_detector_finds_cuts_not_motion():
    from meshstream.tracking.shots import ShotDetector

    rng = np.random.default_rng(0)
    scene_a = np.repeat(np.repeat(rng.integers(0, 255, (6, 8, 3)), 10, 0), 10, 1).astype(np.uint8)
    scene_b = np.full((60, 80, 3), (30, 160, 40), np.uint8)
    scene_c = np.ascontiguousarray(scene_a[::-1, ::-1])  # same colours, another layout
    det = ShotDetector()
    cuts = []
    for k in range(60):
        base = scene_a if k < 25 else scene_b if k < 45 else scene_c
        img = np.roll(base, k, axis=1).copy()  # camera pan: motion, no cut
        x = int(30 + 25 * np.sin(k / 4))
        img[10:40, x : x + 15] = 250  # a person-sized object moving back and forth
        cuts.append(det(Frame(k, k / 25, img)))
    assert [k for k, c in enumerate(cuts) if c] == [0, 25, 45]


# --------------------------------------------------------------- metrics
def test_tracking_metrics_on_hand_made_cases():
    from meshstream.tracking.metrics import FrameBoxes, evaluate_tracking

    def fb(ids, boxes):
        return FrameBoxes(np.array(ids), np.array(boxes, float).reshape(-1, 4))

    a, b = [0, 0, 10, 10], [20, 0, 30, 10]
    gt = [fb([1, 2], [a, b])] * 4
    perfect = evaluate_tracking(gt, [fb([7, 8], [a, b])] * 4)
    assert perfect.mota == 1.0 and perfect.idf1 == 1.0 and perfect.id_switches == 0
    # Identities swap after two frames: two switches, IDF1 = 0.5.
    swapped = evaluate_tracking(gt, [fb([7, 8], [a, b])] * 2 + [fb([8, 7], [a, b])] * 2)
    assert swapped.id_switches == 2 and np.isclose(swapped.idf1, 0.5) and np.isclose(swapped.mota, 1 - 2 / 8)
    # Person 1 missed in frame 2, one false positive in frame 3: fragmentation, MOTA.
    hyp = [fb([7, 8], [a, b]), fb([8], [b]), fb([7, 8, 9], [a, b, [50, 50, 60, 60]]), fb([7, 8], [a, b])]
    s = evaluate_tracking(gt, hyp)
    assert (s.misses, s.false_positives, s.fragmentations, s.id_switches) == (1, 1, 1, 0)
    assert np.isclose(s.mota, 1 - 2 / 8)
    assert np.isclose(s.idf1, 2 * 7 / (8 + 8))


def _photo_view(photo: np.ndarray, h: np.ndarray) -> np.ndarray:
    """A 640x480 view of a photo at infinity through the homography ``h`` (photo -> frame)."""
    import cv2

    return cv2.warpPerspective(photo, h, (640, 480), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def test_zoom_tracker_reads_a_pan_as_a_turn_and_skips_a_one_frame_jump():
    """Frames of a camera panning 10 degrees about its centre (a photo at infinity): no
    zoom is read, and the anchor homographies give the focal; a single frame scaled by
    14 % in a still shot (what a bad homography reads) does not count as a zoom."""
    import cv2

    from conftest import DATA
    from meshstream.models.camera import focal_from_rotation
    from meshstream.tracking.zoom import ZoomTracker

    photo = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    photo = cv2.resize(photo, (1280, 960), interpolation=cv2.INTER_CUBIC)
    f = 420.0
    k = np.array([[f, 0, 320], [0, f, 240], [0, 0, 1.0]])
    k_photo_inv = np.linalg.inv(np.array([[f, 0, 640], [0, f, 480], [0, 0, 1.0]]))
    tracker = ZoomTracker()
    for i, a in enumerate(np.radians(np.linspace(0, 10, 25))):
        turn = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
        zoom = tracker(Frame(index=i, pts_seconds=i / 25, rgb=_photo_view(photo, k @ turn @ k_photo_inv)), np.zeros((0, 4)))
        assert abs(zoom - 1) < 0.01, (i, zoom)
    assert not tracker.zooming
    found = focal_from_rotation(np.array(tracker.homographies), 640, 480)
    assert found is not None and abs(found.focal_px / f - 1) < 0.02 and found.turn_deg > 8

    # A still shot with one frame magnified 14 % about the centre: read only with the
    # per-frame limit lifted.
    still = k @ k_photo_inv
    centre = np.array([[1, 0, 320], [0, 1, 240], [0, 0, 1.0]])
    jump = centre @ np.diag([1.14, 1.14, 1.0]) @ np.linalg.inv(centre) @ still
    for max_step, expected in ((1.05, 1.0), (2.0, 1.14)):
        tracker = ZoomTracker(max_step=max_step)
        zooms = [tracker(Frame(index=i, pts_seconds=i / 25, rgb=_photo_view(photo, jump if i == 6 else still)),
                         np.zeros((0, 4))) for i in range(8)]
        assert abs(zooms[6] - expected) < 0.01, (max_step, zooms)
        assert abs(zooms[7] - 1) < 0.01 and not tracker.zooming


def test_zoom_tracker_turns_follow_a_camera_that_pans_and_zooms(measured):
    """A camera panning 12 degrees right and tilting 3 down while it zooms 1.0 -> 1.3
    (so the anchor moves on past each 10 % of zoom), with one blank frame (no features):
    every frame's turn since the first, chained through the anchors, is within 0.5
    degrees (measured: 0.26), the blank frame's interpolated between its neighbours."""
    import cv2
    import roma
    import torch

    from conftest import DATA
    from meshstream.tracking.zoom import ZoomTracker

    photo = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    photo = cv2.resize(photo, (1280, 960), interpolation=cv2.INTER_CUBIC)
    f, n, blank = 420.0, 30, 17
    k_photo_inv = np.linalg.inv(np.array([[f, 0, 640], [0, f, 480], [0, 0, 1.0]]))
    tracker, truth = ZoomTracker(), []
    for i in range(n):
        pan, tilt, zoom = np.radians(12.0 * i / (n - 1)), np.radians(3.0 * i / (n - 1)), 1.0 + 0.3 * i / (n - 1)
        turn = roma.euler_to_rotmat("XY", torch.tensor([-tilt, -pan], dtype=torch.float64)).numpy()
        truth.append(turn)
        k = np.array([[zoom * f, 0, 320], [0, zoom * f, 240], [0, 0, 1.0]])
        rgb = np.full((480, 640, 3), 128, np.uint8) if i == blank else _photo_view(photo, k @ turn @ k_photo_inv)
        tracker(Frame(index=i, pts_seconds=i / 25, rgb=rgb), np.zeros((0, 4)))
    assert abs(tracker.zoom / 1.3 - 1) < 0.02
    turns = np.concatenate([tracker.turns(range(0, 10), f, np.array([320.0, 240.0])),
                            tracker.turns(range(10, n), f, np.array([320.0, 240.0]))])  # in two calls, as chunks come
    error = np.degrees(roma.rotmat_geodesic_distance(torch.as_tensor(turns), torch.as_tensor(np.array(truth)))).numpy()
    assert measured("turn_err_max_deg", error.max()) < 0.4, error  # measured 0.26
    assert tracker.unread == 1
    # the optical axis turned
    assert measured("axis_turn_err_deg", abs(np.degrees(np.arccos(turns[-1][2, 2])) - np.hypot(12.0, 3.0))) < 0.11


@pytest.mark.slow
def test_zoom_tracker_keeps_a_still_camera_still_when_a_walker_goes_unmasked(body, measured):
    """A still camera over a smooth procedural background, two people walking, the far
    one missed by the detector (not masked): its features must not read as a zoom (they
    did: down to 0.936 and a zooming shot)."""
    from meshstream.models.synthetic import PersonSpec, render_frames
    from meshstream.models.synthetic_scenes import random_background
    from meshstream.tracking.zoom import ZoomTracker

    background = random_background(np.random.default_rng(1), 640, 480)
    walkers = [PersonSpec((-0.8, 3.0), (0.9, 0.0), yaw_deg=90), PersonSpec((0.8, 6.0), (0.0, -0.8), yaw_deg=0)]
    frames, gt = render_frames(walkers, fov_deg=70, n_frames=30, background=background, body=body)
    tracker = ZoomTracker()
    zooms = [tracker(Frame(index=i, pts_seconds=i / 25, rgb=rgb), gt.boxes[:1, i]) for i, rgb in enumerate(frames)]
    assert measured("zoom_dev_max", np.abs(np.array(zooms) - 1).max()) < 0.01
    assert not tracker.zooming
