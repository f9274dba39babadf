"""Geometry of person detections (the :class:`~meshstream.stream.messages.Detections` message lives with the others)."""

from __future__ import annotations

import numpy as np


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


def keypoints_box(xy: np.ndarray, confidence: np.ndarray, width: int, height: int) -> np.ndarray:
    """A person's box from their 2D keypoints: the confident ones (> 0.3; all where fewer
    than two are), padded by a tenth of the larger side (one and a half tenths above, for
    the top of the head), clipped to the frame.

    Args:
        xy: (K, 2) keypoints, pixels.
        confidence: (K,) keypoint confidence in [0, 1].
        width: Frame width, pixels.
        height: Frame height, pixels.

    Returns:
        (4,) float32 box, xyxy pixels.
    """
    good = confidence > 0.3
    pts = xy[good] if good.sum() >= 2 else xy
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    pad = 0.1 * max(x1 - x0, y1 - y0)
    return np.array([max(0, x0 - pad), max(0, y0 - 1.5 * pad), min(width, x1 + pad), min(height, y1 + pad)],
                    np.float32)


def square_crop(rgb: np.ndarray, cx: float, cy: float, side: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The square of ``side`` pixels centred on (``cx``, ``cy``), resized to ``size``
    pixels (bilinear, black beyond the frame).

    Args:
        rgb: (H, W, 3) uint8 frame.
        cx: Centre x, frame pixels.
        cy: Centre y, frame pixels.
        side: Side of the square, frame pixels.
        size: Side of the crop, pixels.

    Returns:
        The (size, size, 3) crop and the (2, 3) affine taking frame pixels to crop
        pixels: crop = s * (frame - (centre - side / 2)), s = size / side.
    """
    import cv2

    s = size / side
    affine = np.array([[s, 0, -s * (cx - side / 2)], [0, s, -s * (cy - side / 2)]], np.float64)
    crop = cv2.warpAffine(rgb, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))
    return crop, affine
