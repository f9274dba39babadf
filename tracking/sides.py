"""Left and right labels kept true to each tracked person's facing.

BlazePose now and then reads a person seen from behind as facing the camera: it gives
their left side the right side's labels, and its 3D landmarks face the camera. Fitted as
given, such a body faces the camera and walks backwards. It does so in runs of frames
within a track, and mostly not the other way: on the close-range validation scenes of
``bench/accuracy.py --close`` 9 % of person-frames are swapped, all of them of people
facing away, none of the 261 frames of people facing the camera (``bench/sides.py``).

The labels say which way a person faces: an upright person facing the camera shows
their left shoulder and hip to the right of the right ones in the image. A swap flips
that at once, where a real turn passes through side-on over a few frames. So, per
track and causally (offline and live alike):

1. A frame whose labels say, confidently, that the person faces away is taken as given,
   and ends any exchange.
2. A frame whose labels say, confidently, that the person faces the camera, within
   ``max_gap_s`` of the track's last confident frame that (as corrected) faced away, is
   a swap where the person moves away (the torso shrinks over the last ``history_s``:
   people walk the way they face), or where the track's labels said "away" more often
   than "toward" over that time and changed their mind at most ``max_flips`` times in
   it: from it on the track's labels are exchanged, until a frame of rule 1. (BlazePose
   reads a walker's back as a front in most frames now and then, so no count of the
   labels tells; and it reads a front as a back now and then: for a frame, which the
   count outvotes, or back and forth for a while, as on the bundled sample's person
   raising their arms, who stands still.)
3. Side-on frames, and frames whose torso is not seen, keep the track's state.

What it cannot see: a track that is swapped from its first frame stays so until the
person shows their back as such; a person who turns to face the camera while their
labels are exchanged stays exchanged until a frame of rule 1.

An exchange swaps every left and right keypoint and landmark and negates the landmarks'
depth (the body mirrored front to back, seen at the same places in the image).

Conventions: keypoints are pixels with a confidence, x to the right; landmarks are
hip-centred metres, z away from the camera; times are seconds.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from meshstream.models.keypoints import LAYOUTS, mirror_index
from meshstream.stream.messages import Detections


def exchange_sides(keypoints: np.ndarray, landmarks3d: np.ndarray | None, mirror: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Persons' labels with left and right exchanged.

    Args:
        keypoints: (..., K, C) keypoints (pixels, and a confidence).
        landmarks3d: (..., K, 3) hip-centred landmarks, metres; or ``None``.
        mirror: (K,) each point's other-side twin (:func:`~meshstream.models.keypoints.mirror_index`).

    Returns:
        The keypoints relabelled, and the landmarks relabelled with their depth negated.
    """
    lm = None
    if landmarks3d is not None:
        lm = landmarks3d[..., mirror, :].copy()
        lm[..., 2] = -lm[..., 2]
    return keypoints[..., mirror, :].copy(), lm


def facing(keypoints: np.ndarray, torso: tuple[int, int, int, int], min_conf: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """Which way the labels say each person faces.

    Args:
        keypoints: (N, K, 3) keypoints: x, y pixels and a confidence.
        torso: Indices of the left shoulder, right shoulder, left hip and right hip.
        min_conf: All four must be seen at least this confidently.

    Returns:
        (N,) the horizontal offset of the left shoulder and hip from the right ones over
        twice the torso's length: positive where the labels say the person faces the
        camera, negative away, about 0.7 at most for an upright adult; and (N,) the
        torso's length (shoulder midpoint to hip midpoint), pixels. Both NaN where the
        torso is not seen.
    """
    ls, rs, lh, rh = (keypoints[:, i] for i in torso)
    offset = (ls[:, 0] - rs[:, 0]) + (lh[:, 0] - rh[:, 0])
    length = np.linalg.norm(0.5 * (ls[:, :2] + rs[:, :2]) - 0.5 * (lh[:, :2] + rh[:, :2]), axis=1)
    seen = (np.stack([ls[:, 2], rs[:, 2], lh[:, 2], rh[:, 2]], 1) >= min_conf).all(1) & (length >= 2.0)
    return np.where(seen, offset / np.maximum(2.0 * length, 1e-9), np.nan), np.where(seen, length, np.nan)


@dataclass
class _TrackSides:
    """What one track carries from frame to frame."""

    exchanged: bool = False
    last_sign: float = 0.0  # the last confident frame's facing, as corrected: +1 the camera, -1 away
    last_time: float = -np.inf
    # (time, +1 toward / -1 away as given, log torso length) of confident frames
    history: deque = field(default_factory=deque)


class SideKeeper:
    """Per clip: exchanges left and right where a track's labels flip to facing the camera.

    Works on any keypoint layout of ``models.keypoints.LAYOUTS`` (the detections say theirs).

    Args:
        min_conf: Least confidence of the shoulders and hips read.
        min_facing: Least :func:`facing` magnitude that says which way a person faces.
        max_facing: Larger magnitudes are not an upright torso (bent over, cut by the
            frame) and say nothing.
        max_gap_s: A flip to facing the camera counts as a swap within this many seconds
            of the last confident frame that faced away ...
        history_s: ... where, over this many seconds, the person moves away ...
        min_recede: ... (their torso shrinks by at least this much per second: log of
            its length at zoom 1, a straight-line fit over the history, 0.1: about 0.3 m
            a second at 3 m), or the labels said "away" more often than "toward" ...
        max_flips: ... and changed between the two at most this many times.
    """

    def __init__(self, *, min_conf: float = 0.5, min_facing: float = 0.3, max_facing: float = 1.0,
                 max_gap_s: float = 0.15, history_s: float = 1.0, max_flips: int = 2,
                 min_recede: float = 0.1) -> None:
        self.min_conf, self.min_facing, self.max_facing = min_conf, min_facing, max_facing
        self.max_gap_s, self.history_s, self.max_flips, self.min_recede = max_gap_s, history_s, max_flips, min_recede
        self._layouts: dict[str, tuple[np.ndarray, tuple[int, int, int, int]]] = {}
        self._tracks: dict[int, _TrackSides] = {}
        self.exchanged_frames = 0  # person-frames whose labels were exchanged

    def _indices(self, layout: str) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """The layout's mirror index and its shoulders' and hips' indices."""
        if layout not in self._layouts:
            names = LAYOUTS[layout]
            torso = tuple(names.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
            self._layouts[layout] = (mirror_index(layout), torso)
        return self._layouts[layout]

    def _backs_hold(self, history: deque) -> bool:
        """The person moves away over the history, or their labels said "away" more often
        than "toward" in it and changed between the two at most ``max_flips`` times."""
        if not history:
            return False
        times, signs, sizes = (np.asarray(x, np.float64) for x in zip(*history))
        if (len(times) >= 4 and np.ptp(times) >= 0.5 * self.history_s
                and float(np.polyfit(times, sizes, 1)[0]) <= -self.min_recede):
            return True
        return signs.sum() < 0 and int((signs[1:] != signs[:-1]).sum()) <= self.max_flips

    def reset(self) -> None:
        """A new shot: tracks start again."""
        self._tracks = {}

    def __call__(self, dets: Detections, time_s: float, zoom: float = 1.0) -> Detections:
        """One frame's tracked detections with their labels made true to their facing.

        Args:
            dets: Tracked detections (``track_id`` set) of one frame.
            time_s: The frame's time, seconds.
            zoom: The frame's zoom since the shot began (sizes are compared at zoom 1).
        """
        if len(dets) == 0:
            return dets
        mirror, torso = self._indices(dets.keypoint_layout)
        raw, length = facing(dets.keypoints, torso, self.min_conf)
        exchange = np.zeros(len(dets), bool)
        for i, tid in enumerate(dets.track_id.tolist()):
            state = self._tracks.setdefault(int(tid), _TrackSides())
            f = float(raw[i])
            confident = np.isfinite(f) and self.min_facing <= abs(f) <= self.max_facing
            while state.history and state.history[0][0] < time_s - self.history_s:
                state.history.popleft()
            if confident and f < 0:
                state.exchanged = False
            elif confident and not state.exchanged and state.last_sign < 0 \
                    and time_s - state.last_time <= self.max_gap_s and self._backs_hold(state.history):
                state.exchanged = True
            if confident:
                state.last_sign = -1.0 if state.exchanged or f < 0 else 1.0
                state.last_time = time_s
                state.history.append((time_s, 1 if f > 0 else -1, float(np.log(length[i] / zoom))))
            exchange[i] = state.exchanged
        if not exchange.any():
            return dets
        self.exchanged_frames += int(exchange.sum())
        kps, lms = dets.keypoints.copy(), None if dets.landmarks3d is None else dets.landmarks3d.copy()
        kp, lm = exchange_sides(kps[exchange], None if lms is None else lms[exchange], mirror)
        kps[exchange] = kp
        if lms is not None:
            lms[exchange] = lm
        return dataclasses.replace(dets, keypoints=kps, landmarks3d=lms)
