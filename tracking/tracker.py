"""A first multi-person tracker: Kalman-predicted boxes matched by IoU (Hungarian).

Each track is a filterpy Kalman filter on the box centre and size with a constant
velocity model whose time step is the real time between frames (``pts_seconds``), so
variable frame rates and skipped frames predict correctly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment

from meshstream.models.detections import Detections, box_iou


@dataclass
class _Track:
    track_id: int
    kf: KalmanFilter
    last_seen_s: float
    hits: int


def _box_to_z(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]], float)


def _x_to_box(x: np.ndarray) -> np.ndarray:
    cx, cy, w, h = x[:4]
    w, h = max(w, 1.0), max(h, 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


class IoUTracker:
    """Tracking stage: ``Detections -> Detections`` with ``track_id`` set.

    Args:
        iou_threshold: Minimum IoU between a predicted track box and a detection to
            match them.
        max_age_s: A track unseen for longer than this (seconds) is ended.
        min_hits: Detections of a new track before it is reported (its earlier frames
            are reported with id -1 and dropped downstream).
    """

    def __init__(self, *, iou_threshold: float = 0.2, max_age_s: float = 1.0, min_hits: int = 1) -> None:
        self.iou_threshold = iou_threshold
        self.max_age_s = max_age_s
        self.min_hits = min_hits
        self.reset()

    def reset(self) -> None:
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_t: float | None = None

    def _new_track(self, box: np.ndarray, t: float) -> _Track:
        kf = KalmanFilter(dim_x=8, dim_z=4)
        kf.H = np.eye(4, 8)
        kf.x[:4, 0] = _box_to_z(box)
        scale = max(box[3] - box[1], 1.0)
        kf.P = np.diag([0.1 * scale] * 4 + [2.0 * scale] * 4) ** 2
        kf.R = np.diag([0.05 * scale] * 4) ** 2
        track = _Track(self._next_id, kf, t, 1)
        self._next_id += 1
        return track

    def _predict(self, track: _Track, dt: float) -> np.ndarray:
        kf = track.kf
        kf.F = np.eye(8)
        kf.F[:4, 4:] = dt * np.eye(4)
        scale = max(kf.x[3, 0], 1.0)
        q = (0.5 * scale) ** 2  # acceleration noise, pixels/s^2 scaled by box height
        g = np.concatenate([0.5 * dt**2 * np.eye(4), dt * np.eye(4)])
        kf.Q = q * g @ g.T + 1e-6 * np.eye(8)
        kf.predict()
        return _x_to_box(kf.x[:, 0])

    def __call__(self, dets: Detections, pts_seconds: float) -> Detections:
        """Assigns track ids to the detections of the frame at ``pts_seconds``."""
        dt = 0.0 if self._last_t is None else max(pts_seconds - self._last_t, 0.0)
        self._last_t = pts_seconds
        self._tracks = [t for t in self._tracks if pts_seconds - t.last_seen_s <= self.max_age_s]
        predicted = np.array([self._predict(t, dt) for t in self._tracks], np.float32).reshape(-1, 4)
        ids = np.full(len(dets), -1, np.int64)
        matched_det: set[int] = set()
        if len(predicted) and len(dets):
            iou = box_iou(predicted, dets.xyxy)
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] < self.iou_threshold:
                    continue
                track = self._tracks[r]
                track.kf.update(_box_to_z(dets.xyxy[c]))
                track.last_seen_s = pts_seconds
                track.hits += 1
                matched_det.add(int(c))
                ids[c] = track.track_id if track.hits >= self.min_hits else -1
        for c in range(len(dets)):
            if c not in matched_det:
                track = self._new_track(dets.xyxy[c], pts_seconds)
                self._tracks.append(track)
                ids[c] = track.track_id if track.hits >= self.min_hits else -1
        out = dets[np.arange(len(dets))]
        out.track_id = ids
        return out
