"""Accuracy metrics of fitted bodies and cameras, with BLADE's (CVPR 2025) definitions.

All functions are pure and vectorised over person-frames; inputs are camera-space
metres (OpenCV axes) unless stated, outputs are per person-frame so callers choose
mean or median. Keypoints are COCO-17 (hips at 11 and 12); "hip-aligned" means both
sets are translated so that their hip midpoints coincide.
"""

from __future__ import annotations

import numpy as np
import roma
import torch

from .keypoints import LEFT_HIP, RIGHT_HIP


def hip_midpoint(points: np.ndarray) -> np.ndarray:
    """(..., 3) midpoint of the COCO hips of (..., K, 3) keypoints."""
    return 0.5 * (points[..., LEFT_HIP, :] + points[..., RIGHT_HIP, :])


def tz_error(pelvis: np.ndarray, pelvis_gt: np.ndarray) -> np.ndarray:
    """(N,) |z - z_gt| of the hip midpoint, metres. Args: (N, 3) each."""
    return np.abs(pelvis[:, 2] - pelvis_gt[:, 2])


def inverse_tz_error(pelvis: np.ndarray, pelvis_gt: np.ndarray) -> np.ndarray:
    """(N,) |1/z - 1/z_gt| of the hip midpoint, 1/metres (weighs near people more)."""
    return np.abs(1.0 / pelvis[:, 2] - 1.0 / pelvis_gt[:, 2])


def txy_error(pelvis: np.ndarray, pelvis_gt: np.ndarray) -> np.ndarray:
    """(N,) L2 error of the hip midpoint's x, y, metres."""
    return np.linalg.norm(pelvis[:, :2] - pelvis_gt[:, :2], axis=1)


def focal_error(focal: np.ndarray | float, focal_gt: np.ndarray | float) -> np.ndarray:
    """|f - f_gt| / f_gt (a fraction; multiply by 100 for f%)."""
    return np.abs(np.asarray(focal, np.float64) - focal_gt) / np.asarray(focal_gt, np.float64)


def mpjpe(points: np.ndarray, points_gt: np.ndarray) -> np.ndarray:
    """(N,) mean per-joint position error after hip alignment, millimetres.

    Args:
        points: (N, 17, 3) COCO-17 keypoints, metres.
        points_gt: (N, 17, 3) ground truth.
    """
    a = points - hip_midpoint(points)[:, None]
    b = points_gt - hip_midpoint(points_gt)[:, None]
    return 1000.0 * np.linalg.norm(a - b, axis=-1).mean(-1)


def procrustes_align(points: np.ndarray, points_gt: np.ndarray) -> np.ndarray:
    """(N, K, 3) ``points`` moved by the similarity transform (rotation, translation,
    scale) that best fits each set onto ``points_gt`` in least squares."""
    src = torch.as_tensor(points, dtype=torch.float64)
    dst = torch.as_tensor(points_gt, dtype=torch.float64)
    rot, trans, scale = roma.rigid_points_registration(src, dst, compute_scaling=True)
    out = scale[:, None, None] * src @ rot.transpose(-1, -2) + trans[:, None]
    return out.numpy()


def pa_mpjpe(points: np.ndarray, points_gt: np.ndarray) -> np.ndarray:
    """(N,) MPJPE after similarity Procrustes alignment, millimetres."""
    aligned = procrustes_align(points, points_gt)
    return 1000.0 * np.linalg.norm(aligned - points_gt, axis=-1).mean(-1)


def pve(vertices: np.ndarray, vertices_gt: np.ndarray, hips: np.ndarray, hips_gt: np.ndarray) -> np.ndarray:
    """(N,) per-vertex error of hip-centred meshes of the same topology, millimetres.

    Args:
        vertices: (N, V, 3) metres.
        vertices_gt: (N, V, 3).
        hips: (N, 3) hip midpoint of each predicted body.
        hips_gt: (N, 3) of each ground-truth body.
    """
    a = vertices - hips[:, None]
    b = vertices_gt - hips_gt[:, None]
    return 1000.0 * np.linalg.norm(a - b, axis=-1).mean(-1)


def silhouette_iou(mask: np.ndarray, mask_gt: np.ndarray) -> np.ndarray:
    """(N,) intersection over union of (N, H, W) boolean silhouettes (1 when both empty)."""
    inter = np.logical_and(mask, mask_gt).sum((1, 2))
    union = np.logical_or(mask, mask_gt).sum((1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def accel_error(points: np.ndarray, points_gt: np.ndarray) -> np.ndarray:
    """(T-2,) acceleration error of a hip-aligned keypoint sequence, mm/frame².

    The mean over joints of ``|a - a_gt|`` with ``a[t] = x[t+1] - 2 x[t] + x[t-1]``
    (HMR/VIBE's definition; consecutive frames of one track).

    Args:
        points: (T, K, 3) metres.
        points_gt: (T, K, 3).
    """
    a = points - hip_midpoint(points)[:, None]
    b = points_gt - hip_midpoint(points_gt)[:, None]
    acc = a[2:] - 2 * a[1:-1] + a[:-2]
    acc_gt = b[2:] - 2 * b[1:-1] + b[:-2]
    return 1000.0 * np.linalg.norm(acc - acc_gt, axis=-1).mean(-1)


def sides_swapped(keypoints2d: np.ndarray, keypoints2d_gt: np.ndarray, min_conf: float = 0.5,
                  ratio: float = 0.7) -> np.ndarray:
    """(N,) bool: each person-frame's left and right labels are swapped.

    They are when the detected left/right keypoints lie nearer the true projections of
    the other side's (summed over the side points seen at ``min_conf``) by the factor
    ``ratio``.

    Args:
        keypoints2d: (N, 17, 3) detected COCO-17 keypoints: pixels and a confidence.
        keypoints2d_gt: (N, 17, 2) the true keypoints projected, pixels.
    """
    from .keypoints import mirror_index

    mirror = mirror_index("coco17")
    sides = np.nonzero(mirror != np.arange(17))[0]
    seen = keypoints2d[:, sides, 2] >= min_conf
    true = keypoints2d_gt[:, sides]
    as_given = np.where(seen, np.linalg.norm(keypoints2d[:, sides, :2] - true, axis=-1), 0.0).sum(1)
    exchanged = np.where(seen, np.linalg.norm(keypoints2d[:, mirror[sides], :2] - true, axis=-1), 0.0).sum(1)
    return exchanged < ratio * as_given
