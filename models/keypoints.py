"""Keypoint layouts and the mappings between them.

Layouts are named so that every keypoint array in the project says which order it is in:

- ``blazepose33``: MediaPipe BlazePose GHUM 3D, 33 points.
- ``coco17``: the 17 COCO keypoints.
- ``coco23``: COCO-17 then left/right big toe, small toe, heel (the order of
  ``anny.KeypointsRegressor.coco``).
"""

from __future__ import annotations

import numpy as np

BLAZEPOSE33_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb",
    "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)

COCO23_NAMES: tuple[str, ...] = COCO17_NAMES + (
    "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe", "left_heel",
    "right_heel",
)

LAYOUTS: dict[str, tuple[str, ...]] = {
    "blazepose33": BLAZEPOSE33_NAMES,
    "coco17": COCO17_NAMES,
    "coco23": COCO23_NAMES,
}

# For each COCO-23 point, the BlazePose point that measures it (-1: none). BlazePose's
# "foot_index" is the tip of the foot, the closest it has to the big toe.
_BLAZE_FOR_COCO23 = np.array(
    [BLAZEPOSE33_NAMES.index(n) for n in COCO17_NAMES]
    + [BLAZEPOSE33_NAMES.index("left_foot_index"), BLAZEPOSE33_NAMES.index("right_foot_index")]
    + [-1, -1]
    + [BLAZEPOSE33_NAMES.index("left_heel"), BLAZEPOSE33_NAMES.index("right_heel")],
    dtype=np.int64,
)

LEFT_HIP, RIGHT_HIP = 11, 12  # in coco17 and coco23
LEFT_SHOULDER, RIGHT_SHOULDER = 5, 6


def mirror_index(layout: str) -> np.ndarray:
    """(K,) for each point of ``layout``, the index of its other-side twin (itself for a
    point on the midline): ``points[mirror_index(layout)]`` exchanges left and right."""
    names = LAYOUTS[layout]
    twin = {"left": "right", "right": "left"}
    out = []
    for name in names:
        other = "_".join(twin.get(part, part) for part in name.split("_"))
        out.append(names.index(other) if other in names else names.index(name))
    return np.asarray(out, dtype=np.int64)


def blazepose33_to_coco23(points: np.ndarray) -> np.ndarray:
    """Reorders BlazePose-33 points into the COCO-23 layout.

    Args:
        points: (..., 33, C) array; the last channel, if C == 3 and it holds a
            confidence, is copied like the others.

    Returns:
        (..., 23, C) array; the two small-toe points, which BlazePose lacks, are zeros
        (so their confidence is 0).
    """
    if points.shape[-2] != 33:
        raise ValueError(f"expected 33 BlazePose points on axis -2, got shape {points.shape}")
    out = points[..., np.maximum(_BLAZE_FOR_COCO23, 0), :].copy()
    out[..., _BLAZE_FOR_COCO23 < 0, :] = 0
    return out


def coco23_to_blazepose33(points: np.ndarray) -> np.ndarray:
    """Places COCO-23 (or COCO-17) points into the BlazePose-33 layout, the inverse of
    :func:`blazepose33_to_coco23` where BlazePose has the point.

    Args:
        points: (..., 23, C) or (..., 17, C) array.

    Returns:
        (..., 33, C) array; BlazePose points the input does not measure (eyes' corners,
        mouth, hands, and the feet of COCO-17) are zeros (so their confidence is 0).
    """
    k = points.shape[-2]
    if k not in (17, 23):
        raise ValueError(f"expected 17 or 23 COCO points on axis -2, got shape {points.shape}")
    out = np.zeros(points.shape[:-2] + (33, points.shape[-1]), points.dtype)
    src = np.nonzero(_BLAZE_FOR_COCO23[:k] >= 0)[0]
    out[..., _BLAZE_FOR_COCO23[src], :] = points[..., src, :]
    return out
