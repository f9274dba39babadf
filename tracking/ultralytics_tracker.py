"""Ultralytics' ByteTrack and BoT-SORT as tracking stages (``--tracker bytetrack|botsort``).

The ``yolo`` extra (``pip install -e '.[yolo]'``, AGPL-3.0) brings ultralytics; its
trackers run here on any perceiver's detections, with the settings of ultralytics' own
``bytetrack.yaml`` / ``botsort.yaml`` (BoT-SORT adds global motion compensation by
sparse optical flow, no re-identification network). The stage has the interface of
:class:`~meshstream.tracking.tracker.PersonTracker`: detections in, the same detections
out with ``track_id`` set (-1 while a track is not yet confirmed), ids that keep
increasing across :meth:`reset` (a new shot) and that start at ``first_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meshstream.stream.messages import Detections, Frame

KINDS = ("bytetrack", "botsort")


@dataclass
class _Boxes:
    """The part of ultralytics' ``Boxes`` its trackers read: (N,) ``conf`` and ``cls``,
    (N, 4) ``xywh`` (centre and size, pixels), and boolean indexing."""

    conf: np.ndarray
    cls: np.ndarray
    xywh: np.ndarray

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index) -> "_Boxes":
        return _Boxes(self.conf[index], self.cls[index], self.xywh[index])


def _tracker_settings(kind: str):
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    return IterableSimpleNamespace(**YAML.load(check_yaml(f"{kind}.yaml")))


class UltralyticsTracker:
    """Tracking stage: ``(Detections, Frame) -> Detections`` with ultralytics' tracker.

    Args:
        kind: ``"bytetrack"`` or ``"botsort"``.
        first_id: Id of the first track (a resumed run continues after the stored ones).

    Raises:
        ValueError: An unknown ``kind``.
        MissingExtraError: ultralytics is not installed (the ``yolo`` extra).
    """

    def __init__(self, kind: str = "bytetrack", *, first_id: int = 1) -> None:
        if kind not in KINDS:
            raise ValueError(f"tracker must be one of {KINDS}, not {kind!r}")
        try:
            from ultralytics.trackers.bot_sort import BOTSORT
            from ultralytics.trackers.byte_tracker import BYTETracker
        except ImportError as exc:
            from meshstream.models.yolo_perception import INSTALL
            from meshstream.stream.errors import MissingExtraError

            raise MissingExtraError(f"--tracker {kind} is ultralytics' and needs it ({exc.name or exc} is missing): "
                                    f"{INSTALL}") from None

        self.kind = kind
        self._make = {"bytetrack": BYTETracker, "botsort": BOTSORT}[kind]
        self._settings = _tracker_settings(kind)
        self._next_id = first_id  # ids this stage hands out continue from here after a reset
        self.reset()

    def reset(self) -> None:
        """Ends all tracks (new clip or new shot); ids keep increasing."""
        self._offset = self._next_id - 1
        self._tracker = self._make(args=self._settings)

    def __call__(self, dets: Detections, frame: Frame) -> Detections:
        """Assigns track ids to the detections of ``frame``."""
        n = len(dets)
        xyxy = dets.xyxy.astype(np.float32)
        boxes = _Boxes(dets.score.astype(np.float32), np.zeros(n, np.float32),
                       np.concatenate([0.5 * (xyxy[:, :2] + xyxy[:, 2:]), xyxy[:, 2:] - xyxy[:, :2]], 1))
        bgr = np.ascontiguousarray(frame.rgb[..., ::-1])  # BoT-SORT's motion compensation reads the image
        rows = self._tracker.update(boxes, bgr)
        ids = np.full(n, -1, np.int64)
        for row in rows.reshape(-1, 8):
            track_id = int(row[4]) + self._offset
            ids[int(row[7])] = track_id
            self._next_id = max(self._next_id, track_id + 1)
        out = dets[np.arange(n)]
        out.track_id = ids
        return out
