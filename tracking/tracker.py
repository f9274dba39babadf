"""Multi-person tracker: ByteTrack-style two-stage association on Kalman-predicted boxes.

Each track is a filterpy Kalman filter on the box centre and size with a constant
velocity model stepped by the real time between frames (``pts_seconds``), so variable
frame rates and skipped frames predict correctly. Association per frame:

1. Confirmed and lost tracks against confident detections (score >= ``high_score``),
   with a cost that mixes box IoU, keypoint similarity (COCO OKS), appearance (colour
   histogram inside the person's mask) and scale consistency (box height, a proxy of
   depth: a person cannot halve their distance between two frames).
2. Confirmed tracks left over against low-confidence detections, by IoU alone (ByteTrack:
   partly occluded people still extend their tracks).
3. Tentative tracks against the remaining confident detections, by IoU.

Unmatched confident detections start tentative tracks, which are confirmed after
``min_hits`` detections; those of the first frame after a reset (a clip's or a shot's
first frame) are confirmed at once, as ByteTrack does, so that frame has its bodies. A
confirmed track that misses is *lost*: kept, predicted, and re-identified (appearance
and keypoints weigh more) for ``reid_s`` seconds, then ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment

from meshstream.models.detections import box_iou
from meshstream.models.keypoints import BLAZEPOSE33_NAMES, COCO17_NAMES
from meshstream.stream.messages import Detections, Frame

# COCO keypoint sigmas (Ronchi & Perona), in COCO-17 order.
_OKS_SIGMAS = np.array([0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
                        0.107, 0.107, 0.087, 0.087, 0.089, 0.089])
_COCO_FROM_BLAZE = np.array([BLAZEPOSE33_NAMES.index(n) for n in COCO17_NAMES])
_INF = 1e6


def oks(kp_a: np.ndarray, kp_b: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Pairwise object keypoint similarity (COCO definition).

    Args:
        kp_a: (N, 17, 3) COCO-17 keypoints (x, y pixels, confidence).
        kp_b: (M, 17, 3) COCO-17 keypoints.
        area: (N,) object areas in pixels² (of ``kp_a``'s boxes).

    Returns:
        (N, M) OKS in [0, 1]; keypoints with confidence < 0.5 in either set are skipped.
    """
    d2 = ((kp_a[:, None, :, :2] - kp_b[None, :, :, :2]) ** 2).sum(-1)  # (N, M, 17)
    var = (2 * _OKS_SIGMAS) ** 2
    e = d2 / (2 * np.maximum(area, 1.0)[:, None, None] * var)
    vis = (kp_a[:, None, :, 2] >= 0.5) & (kp_b[None, :, :, 2] >= 0.5)
    n = vis.sum(-1)
    return np.where(n > 0, (np.exp(-e) * vis).sum(-1) / np.maximum(n, 1), 0.0)


def colour_histogram(rgb: np.ndarray, box: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Normalised hue-saturation histogram (16 x 8 bins) of a person.

    Args:
        rgb: (H, W, 3) uint8 frame.
        box: (4,) xyxy pixels.
        mask: (H, W) bool person mask or None (then the inner half of the box).

    Returns:
        (128,) float32 histogram summing to 1 (uniform if the region is empty).
    """
    import cv2

    h, w = rgb.shape[:2]
    x0, y0 = int(max(0, np.floor(box[0]))), int(max(0, np.floor(box[1])))
    x1, y1 = int(min(w, np.ceil(box[2]))), int(min(h, np.ceil(box[3])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.full(128, 1 / 128, np.float32)
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2HSV)
    if mask is not None:
        m = mask[y0:y1, x0:x1].astype(np.uint8)
    else:
        m = np.zeros(hsv.shape[:2], np.uint8)
        bh, bw = m.shape
        m[bh // 4 : 3 * bh // 4, bw // 4 : 3 * bw // 4] = 1
    hist = cv2.calcHist([hsv], [0, 1], m, [16, 8], [0, 180, 0, 256]).reshape(-1)
    total = hist.sum()
    return (hist / total).astype(np.float32) if total > 0 else np.full(128, 1 / 128, np.float32)


def hellinger(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hellinger distance in [0, 1] between (N, B) and (M, B) histograms."""
    bc = np.sqrt(a[:, None, :] * b[None, :, :]).sum(-1)
    return np.sqrt(np.clip(1.0 - bc, 0.0, 1.0))


@dataclass
class _Track:
    track_id: int
    kf: KalmanFilter
    last_seen_s: float
    hits: int
    keypoints: np.ndarray  # (17, 3) COCO-17 at the last detection
    appearance: np.ndarray  # (128,) running histogram
    height: float  # box height at the last detection, pixels
    confirmed: bool = False
    lost: bool = False
    box: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))  # predicted box this frame


def _box_to_z(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]], float)


def _x_to_box(x: np.ndarray) -> np.ndarray:
    cx, cy, w, h = x[:4]
    w, h = max(w, 1.0), max(h, 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


class PersonTracker:
    """Tracking stage: ``(Detections, Frame) -> Detections`` with ``track_id`` set.

    Detections of tentative (not yet confirmed) tracks get id -1.

    Args:
        high_score: Detections at or above this score are confident.
        low_score: Detections below this score are ignored.
        min_hits: Detections before a new track is confirmed.
        reid_s: How long a lost track is kept for re-identification, seconds.
        iou_gate: Minimum IoU to match a visible track (stage 1 and 2).
        max_cost: Matches costing more than this are refused (cost in [0, 1]).
        appearance_momentum: Weight of the old histogram in the running appearance.
        appearance_gate: Hellinger distance above which a detection cannot extend a
            track seen at least 3 times (different clothes).
        first_id: Id of the first track (a resumed run continues after the stored ones).
    """

    def __init__(self, *, high_score: float = 0.6, low_score: float = 0.2, min_hits: int = 2, reid_s: float = 2.0,
                 iou_gate: float = 0.1, max_cost: float = 0.75, appearance_momentum: float = 0.9,
                 appearance_gate: float = 0.6, first_id: int = 1) -> None:
        self._next_id = first_id
        self.appearance_gate = appearance_gate
        self.high_score = high_score
        self.low_score = low_score
        self.min_hits = min_hits
        self.reid_s = reid_s
        self.iou_gate = iou_gate
        self.max_cost = max_cost
        self.appearance_momentum = appearance_momentum
        self.reset()

    def reset(self) -> None:
        """Ends all tracks (new clip or new shot); ids keep increasing."""
        self._tracks: list[_Track] = []
        self._last_t: float | None = None

    @property
    def active_ids(self) -> list[int]:
        return [t.track_id for t in self._tracks if t.confirmed and not t.lost]

    # ------------------------------------------------------------------ steps
    def _predict(self, track: _Track, dt: float) -> None:
        kf = track.kf
        kf.F = np.eye(8)
        kf.F[:4, 4:] = dt * np.eye(4)
        scale = max(kf.x[3, 0], 1.0)
        g = np.concatenate([0.5 * dt**2 * np.eye(4), dt * np.eye(4)])
        kf.Q = (0.5 * scale) ** 2 * g @ g.T + 1e-6 * np.eye(8)
        kf.predict()
        # Size may not collapse or explode while a track is unseen.
        kf.x[2:4, 0] = np.maximum(kf.x[2:4, 0], 1.0)
        track.box = _x_to_box(kf.x[:, 0])

    def _new_track(self, box: np.ndarray, kp: np.ndarray, hist: np.ndarray, t: float, first: bool) -> _Track:
        kf = KalmanFilter(dim_x=8, dim_z=4)
        kf.H = np.eye(4, 8)
        kf.x[:4, 0] = _box_to_z(box)
        h = max(float(box[3] - box[1]), 1.0)
        kf.P = np.diag([0.1 * h] * 4 + [2.0 * h] * 4) ** 2
        kf.R = np.diag([0.05 * h] * 4) ** 2
        track = _Track(self._next_id, kf, t, 1, kp, hist, h, box=box.astype(np.float32))
        self._next_id += 1
        track.confirmed = first or self.min_hits <= 1
        return track

    def _update(self, track: _Track, box: np.ndarray, kp: np.ndarray, hist: np.ndarray, t: float) -> None:
        track.kf.R = np.diag([0.05 * max(float(box[3] - box[1]), 1.0)] * 4) ** 2
        track.kf.update(_box_to_z(box))
        track.last_seen_s = t
        track.hits += 1
        track.keypoints = kp
        m = self.appearance_momentum
        track.appearance = m * track.appearance + (1 - m) * hist
        track.height = max(float(box[3] - box[1]), 1.0)
        track.lost = False
        if track.hits >= self.min_hits:
            track.confirmed = True

    def _cost(self, tracks: list[_Track], boxes: np.ndarray, kps: np.ndarray, hists: np.ndarray,
              t: float, crowded: np.ndarray) -> np.ndarray:
        """(T, D) association cost in [0, 1], ``_INF`` where gated out. ``crowded`` (D,)
        marks detections overlapping another one, whose colours mix two people."""
        if not tracks or not len(boxes):
            return np.zeros((len(tracks), len(boxes)))
        pred = np.array([tr.box for tr in tracks])
        iou = box_iou(pred, boxes)
        area = np.array([(b[2] - b[0]) * (b[3] - b[1]) for b in pred])
        sim_kp = oks(np.array([tr.keypoints for tr in tracks]), kps, area)
        app = hellinger(np.array([tr.appearance for tr in tracks]), hists)
        heights = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
        scale = np.abs(np.log(heights[None, :] / np.array([tr.height for tr in tracks])[:, None]))
        cost = np.empty_like(iou)
        for i, tr in enumerate(tracks):
            if tr.lost:
                # Re-identification: motion is uncertain after a gap, so look and pose weigh more.
                gap = max(t - tr.last_seen_s, 0.0)
                centre_t = 0.5 * (tr.box[:2] + tr.box[2:])
                centre_d = 0.5 * (boxes[:, :2] + boxes[:, 2:])
                dist = np.linalg.norm(centre_d - centre_t, axis=1) / tr.height
                gate = (dist < 1.0 + 2.0 * gap) & (scale[i] < 0.5) & (app[i] < 0.5)
                c = 0.5 * app[i] + 0.2 * (1 - sim_kp[i]) + 0.2 * np.minimum(dist / (1.0 + 2.0 * gap), 1) + 0.1 * (1 - iou[i])
            else:
                gate = (iou[i] >= self.iou_gate) & (scale[i] < 0.4)
                if tr.hits >= 3:
                    # An established look vetoes a swap to someone dressed differently
                    # (not judged while two people overlap: their colours mix).
                    gate &= crowded | (app[i] < self.appearance_gate)
                c = 0.5 * (1 - iou[i]) + 0.2 * (1 - sim_kp[i]) + 0.2 * app[i] + 0.1 * np.minimum(scale[i] / 0.4, 1)
            cost[i] = np.where(gate, c, _INF)
        return cost

    def _assign(self, cost: np.ndarray) -> list[tuple[int, int]]:
        if cost.size == 0:
            return []
        rows, cols = linear_sum_assignment(np.minimum(cost, _INF))
        return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] <= self.max_cost]

    def __call__(self, dets: Detections, frame: Frame) -> Detections:
        """Assigns track ids to the detections of ``frame``."""
        t = frame.pts_seconds
        first = self._last_t is None  # nothing to confirm a person against: ByteTrack's first frame
        dt = 0.0 if first else max(t - self._last_t, 0.0)
        self._last_t = t
        self._tracks = [tr for tr in self._tracks
                        if (tr.confirmed and t - tr.last_seen_s <= self.reid_s) or (not tr.confirmed and t - tr.last_seen_s <= 0.3)]
        for tr in self._tracks:
            self._predict(tr, dt)
        n = len(dets)
        kps = dets.keypoints[:, _COCO_FROM_BLAZE] if dets.keypoint_layout == "blazepose33" else dets.keypoints[:, :17]
        hists = np.array([colour_histogram(frame.rgb, dets.xyxy[j], None if dets.masks is None else dets.masks[j])
                          for j in range(n)]).reshape(n, 128)
        ids = np.full(n, -1, np.int64)
        overlap = box_iou(dets.xyxy, dets.xyxy) if n else np.zeros((0, 0))
        np.fill_diagonal(overlap, 0.0)
        crowded = overlap.max(1) > 0.3 if n else np.zeros(0, bool)
        high = np.nonzero(dets.score >= self.high_score)[0]
        low = np.nonzero((dets.score >= self.low_score) & (dets.score < self.high_score))[0]
        matched_tracks: set[int] = set()

        def match(track_idx: list[int], det_idx: np.ndarray, iou_only: bool) -> np.ndarray:
            tracks = [self._tracks[i] for i in track_idx]
            if iou_only:
                iou = box_iou(np.array([tr.box for tr in tracks]).reshape(-1, 4), dets.xyxy[det_idx])
                cost = np.where(iou >= self.iou_gate, 1 - iou, _INF)
            else:
                cost = self._cost(tracks, dets.xyxy[det_idx], kps[det_idx], hists[det_idx], t, crowded[det_idx])
            used = []
            for r, c in self._assign(cost):
                tr, j = tracks[r], det_idx[c]
                self._update(tr, dets.xyxy[j], kps[j], hists[j], t)
                matched_tracks.add(id(tr))
                if tr.confirmed:
                    ids[j] = tr.track_id
                used.append(c)
            return np.delete(det_idx, used)

        confirmed = [i for i, tr in enumerate(self._tracks) if tr.confirmed]
        high = match(confirmed, high, iou_only=False)
        left = [i for i in confirmed if id(self._tracks[i]) not in matched_tracks and not self._tracks[i].lost]
        match(left, low, iou_only=True)
        tentative = [i for i, tr in enumerate(self._tracks) if not tr.confirmed]
        high = match(tentative, high, iou_only=True)
        for j in high:
            tr = self._new_track(dets.xyxy[j], kps[j], hists[j], t, first)
            self._tracks.append(tr)
            if tr.confirmed:
                ids[j] = tr.track_id
        for tr in self._tracks:
            if tr.confirmed and id(tr) not in matched_tracks and tr.last_seen_s < t:
                tr.lost = True
        out = dets[np.arange(n)]
        out.track_id = ids
        return out
