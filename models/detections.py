"""Per-frame person detections, the container between perception and tracking."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .keypoints import LAYOUTS


@dataclass
class Detections:
    """The persons found in one frame.

    Attributes:
        xyxy: (N, 4) float32 boxes, pixels, (x0, y0, x1, y1).
        score: (N,) float32 detection confidence in [0, 1].
        keypoints: (N, K, 3) float32 keypoints: x, y in pixels and a confidence in
            [0, 1], in the order of ``keypoint_layout``.
        keypoint_layout: Name of the keypoint order (see ``models.keypoints.LAYOUTS``).
        landmarks3d: (N, K, 3) float32 relative 3D landmarks in metres, origin at the
            hip midpoint, axes parallel to the OpenCV camera (x right, y down, z away
            from the camera); or ``None`` when the backend gives none.
        masks: (N, H, W) bool person masks, or ``None``.
        track_id: (N,) int64 track ids; -1 until the tracker assigns them.
    """

    xyxy: np.ndarray
    score: np.ndarray
    keypoints: np.ndarray
    keypoint_layout: str
    landmarks3d: np.ndarray | None = None
    masks: np.ndarray | None = None
    track_id: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(self.xyxy)
        self.score = np.asarray(self.score, dtype=np.float32).reshape(n)
        if self.keypoint_layout not in LAYOUTS:
            raise ValueError(
                f"unknown keypoint layout {self.keypoint_layout!r}; known: {sorted(LAYOUTS)}"
            )
        k = len(LAYOUTS[self.keypoint_layout])
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(n, k, 3)
        if self.landmarks3d is not None:
            self.landmarks3d = np.asarray(self.landmarks3d, dtype=np.float32)
            _check_shape("landmarks3d", self.landmarks3d, (n, k, 3))
        if self.masks is not None:
            self.masks = np.asarray(self.masks, dtype=bool)
            if self.masks.ndim != 3 or len(self.masks) != n:
                raise ValueError(f"masks must be (N={n}, H, W), got {self.masks.shape}")
        if self.track_id is None:
            self.track_id = np.full(n, -1, dtype=np.int64)
        self.track_id = np.asarray(self.track_id, dtype=np.int64)
        _check_shape("track_id", self.track_id, (n,))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | list[int] | int) -> "Detections":
        """Selects persons by boolean mask, index array, slice or integer."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            xyxy=self.xyxy[index],
            score=self.score[index],
            keypoints=self.keypoints[index],
            keypoint_layout=self.keypoint_layout,
            landmarks3d=None if self.landmarks3d is None else self.landmarks3d[index],
            masks=None if self.masks is None else self.masks[index],
            track_id=self.track_id[index],
        )

    @classmethod
    def empty(cls, keypoint_layout: str, with_landmarks: bool = True) -> "Detections":
        k = len(LAYOUTS[keypoint_layout])
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            score=np.zeros(0, np.float32),
            keypoints=np.zeros((0, k, 3), np.float32),
            keypoint_layout=keypoint_layout,
            landmarks3d=np.zeros((0, k, 3), np.float32) if with_landmarks else None,
        )

    @classmethod
    def concatenate(cls, parts: list["Detections"]) -> "Detections":
        """Joins detections of the same frame (same layout)."""
        if not parts:
            raise ValueError("concatenate needs at least one Detections")
        layout = parts[0].keypoint_layout
        if any(p.keypoint_layout != layout for p in parts):
            raise ValueError("cannot concatenate detections with different keypoint layouts")
        has_lm = all(p.landmarks3d is not None for p in parts)
        has_masks = all(p.masks is not None for p in parts)
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            score=np.concatenate([p.score for p in parts]),
            keypoints=np.concatenate([p.keypoints for p in parts]),
            keypoint_layout=layout,
            landmarks3d=np.concatenate([p.landmarks3d for p in parts]) if has_lm else None,
            masks=np.concatenate([p.masks for p in parts]) if has_masks else None,
            track_id=np.concatenate([p.track_id for p in parts]),
        )


def _check_shape(name: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    if array.shape != expected:
        raise ValueError(f"{name} must have shape {expected}, got {array.shape}")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of boxes.

    Args:
        a: (N, 4) boxes, xyxy pixels.
        b: (M, 4) boxes, xyxy pixels.

    Returns:
        (N, M) IoU in [0, 1].
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
