"""Small pure helpers of the body fitter (:mod:`meshstream.models.estimator`): index
pairs, fold groups and pose assembly (torch tensors, the body model's dtype)."""

from __future__ import annotations

import numpy as np
import torch


def principal_point_or_centre(image_size: tuple[int, int], principal_point: np.ndarray | None, dtype) -> torch.Tensor:
    """(2,) principal point, pixels: the given one or the image centre."""
    if principal_point is None:
        return torch.tensor([image_size[0] / 2.0, image_size[1] / 2.0], dtype=dtype)
    return torch.as_tensor(np.asarray(principal_point, np.float64), dtype=dtype)


def consecutive_pairs(track_id: np.ndarray, frame_index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs (i, j) of the same track in consecutive observed frames."""
    order = np.lexsort((frame_index, track_id))
    same = track_id[order][1:] == track_id[order][:-1]
    return torch.as_tensor(order[:-1][same]), torch.as_tensor(order[1:][same])


def fold_groups(pose: torch.Tensor, free: torch.Tensor, track_of: np.ndarray,
                 shape: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows that :meth:`ReducedRig.fold` can share: one per track when the bones that are
    not fitted hold the same pose in all of the track's rows (the fitter never moves
    them, so always in practice) and, where given, the shape is the track's in all of
    them; else one per row.

    Args:
        pose: (M, J, 3) pose of each row.
        free: (A,) the fitted bones.
        track_of: (M,) track index of each row (0..T-1).
        shape: (M, S) shape of each row, or ``None``.

    Returns:
        (G,) a representative row of each group and (M,) each row's group.
    """
    held = torch.ones(pose.shape[1], dtype=torch.bool)
    held[free] = False
    track_of = torch.as_tensor(track_of)
    first = torch.as_tensor([int((track_of == t).nonzero()[0, 0]) for t in range(int(track_of.max()) + 1)])
    same_shape = shape is None or torch.equal(shape, shape[first[track_of]])
    if same_shape and torch.equal(pose[:, held], pose[first[track_of]][:, held]):
        return first, track_of
    return torch.arange(len(pose)), torch.arange(len(pose))


def with_free(pose: torch.Tensor, free: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(M, J, 3) pose with the bones ``free`` replaced by ``theta`` (M, len(free), 3)."""
    full = pose.clone()
    full[:, free] = theta
    return full
