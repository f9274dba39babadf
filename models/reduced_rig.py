"""Keypoints of a body posed by its free bones only, the other bones held fixed.

The fitter moves a few bones (``BodyModel.fit_bone_index``: 19 of Anny's 104, 21 of
SMPL-X's 55). Every other bone keeps one pose, so it is rigidly attached to its nearest
free ancestor. The keypoints are linear in the bone transforms under linear blend
skinning, so their skinning can be folded onto the free bones once per body shape, and
forward kinematics then runs over the free bones only: the same keypoints as the full
rig (to float precision, tested) at a fraction of the cost, gradients included.

Conventions: 4x4 affine transforms acting on column vectors. As in
``BodyModel.bone_transforms``, a bone's transform is ``T_j = W_j P_j^-1`` (its posed
frame times the inverse of its rest frame). Both rigs chain ``W_j = W_p B_j D_j C_j``
with constant ``B_j``, ``C_j`` and the bone's delta rotation ``D_j``, so the delta acts
in the frame ``E_j = P_j C_j^-1`` (``BodyModel.delta_frames``). For a free bone ``b``
whose nearest free ancestor is ``a`` this gives ``T_b = T_a M_ab (E_b D_b E_b^-1)``, with
``M_ab = (T_a^0)^-1 T_b^0`` taken at the fixed pose with every free delta the identity
(``T^0``); a bone with no free ancestor has ``T_a = I`` and ``M_ab = T_b^0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch


@dataclass
class FoldedRest:
    """What :class:`ReducedRig` needs of a batch of B shapes at their fixed poses.

    Attributes:
        offset: (B, A, 4, 4) ``M_ab`` of each free bone (see the module docstring).
        frame: (B, A, 4, 4) the frame ``E_b`` each free bone's delta acts in.
        frame_inv: (B, A, 4, 4) its inverse.
        owner_local: (B, J, 4, 4) each bone's transform relative to its nearest free
            ancestor-or-self, ``(T_a^0)^-1 T_j^0`` (``T_j^0`` for a bone without one).
        points: (B, K, A, 4) the keypoints' skinning points folded onto the free bones.
        fixed_points: (B, K, 3) the keypoints' part carried by bones with no free
            ancestor (already posed), metres.
    """

    offset: torch.Tensor
    frame: torch.Tensor
    frame_inv: torch.Tensor
    owner_local: torch.Tensor
    points: torch.Tensor
    fixed_points: torch.Tensor

    def select(self, rows: torch.Tensor) -> "FoldedRest":
        """The folds of ``rows`` (a (B',) index or mask into the batch)."""
        return FoldedRest(self.offset[rows], self.frame[rows], self.frame_inv[rows], self.owner_local[rows],
                          self.points[rows], self.fixed_points[rows])


class ReducedRig:
    """Forward kinematics over the free bones of a rig.

    Args:
        bone_parents: (J,) parent index of each bone, negative for the root.
        free: (A,) indices of the free bones; the order of the poses passed to
            :meth:`transforms`.
    """

    def __init__(self, bone_parents: np.ndarray, free: np.ndarray) -> None:
        parents = np.asarray(bone_parents, np.int64)
        self.free = np.asarray(free, np.int64)
        slot = {int(b): i for i, b in enumerate(self.free)}
        # Nearest free ancestor-or-self of every bone, as a slot in ``free`` (-1: none).
        owner = np.full(len(parents), -1, np.int64)
        depth = np.zeros(len(self.free), np.int64)
        for j in _topological(parents):
            p = int(parents[j])
            above = owner[p] if p >= 0 else -1
            owner[j] = slot.get(j, above)
            if j in slot:
                depth[slot[j]] = depth[above] + 1 if above >= 0 else 0
        self.owner = owner
        self.free_parent = np.array([owner[parents[b]] if parents[b] >= 0 else -1 for b in self.free], np.int64)
        self.levels = [np.nonzero(depth == d)[0] for d in range(int(depth.max()) + 1)]

    def fold(self, body, rest, fixed_pose: torch.Tensor) -> FoldedRest:
        """Folds a batch of shapes at their fixed poses (differentiable in the rest data).

        Args:
            body: The ``BodyModel`` (its ``bone_transforms`` gives ``T^0``, its
                ``delta_frames`` the frames ``E``).
            rest: ``BodyRest`` of batch size B.
            fixed_pose: (B, J, 3) axis-angle per bone; the free bones' entries are
                ignored (taken as zero).
        """
        pose0 = fixed_pose.clone()
        pose0[:, self.free] = 0.0
        t0, _ = body.bone_transforms(pose0, rest)  # (B, J, 4, 4)
        free = torch.as_tensor(self.free)
        inv_free = torch.linalg.inv(t0[:, free])
        eye = torch.eye(4, dtype=t0.dtype, device=t0.device)
        has_parent = torch.as_tensor(self.free_parent >= 0)
        parent_inv = _take(inv_free, 1, np.maximum(self.free_parent, 0))
        offset = torch.where(has_parent[None, :, None, None], parent_inv, eye) @ t0[:, free]
        owned = torch.as_tensor(self.owner >= 0)
        owner_inv = _take(inv_free, 1, np.maximum(self.owner, 0))
        owner_local = torch.where(owned[None, :, None, None], owner_inv, eye) @ t0
        frame = body.delta_frames(rest).expand(len(t0), -1, -1, -1)[:, free]
        folded = FoldedRest(offset, frame, torch.linalg.inv(frame), owner_local, t0.new_zeros(0), t0.new_zeros(0))
        folded.points, folded.fixed_points = self.fold_points(folded, rest.keypoint_bone_points)
        return folded

    def fold_points(self, folded: FoldedRest, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Folds skinning points (e.g. a mesh's vertices) onto the free bones.

        Args:
            folded: :meth:`fold` output of batch size B.
            points: (B or 1, N, J, 4) homogeneous points whose skinning by the bone
                transforms, summed over J, gives N points (``BodyRest.keypoint_bone_points``).

        Returns:
            (B, N, A, 4) folded points and (B, N, 3) the part carried by bones with no
            free ancestor, metres.
        """
        b = len(folded.owner_local)
        moved = torch.einsum("bjxy,bnjy->bnjx", folded.owner_local, points.expand(b, -1, -1, -1))
        owned = torch.as_tensor(self.owner >= 0)
        out = moved.new_zeros(b, moved.shape[1], len(self.free), 4)
        out = out.index_add(2, torch.as_tensor(self.owner[self.owner >= 0]), moved[:, :, owned])
        return out, moved[:, :, ~owned, :3].sum(2)

    def transforms(self, pose: torch.Tensor, folded: FoldedRest, rows: torch.Tensor | None = None) -> torch.Tensor:
        """(M, A, 4, 4) transforms ``T_b`` of the free bones.

        Args:
            pose: (M, A, 3) axis-angle of the free bones, radians, in ``free``'s order.
            folded: :meth:`fold` output of batch size B.
            rows: (M,) the row of ``folded`` each pose uses (``None``: B == M).
        """
        pick = (lambda x: x) if rows is None else (lambda x: _take(x, 0, rows))
        rot = roma.rotvec_to_rotmat(pose)  # (M, A, 3, 3)
        delta = torch.zeros(*rot.shape[:-2], 4, 4, dtype=rot.dtype, device=rot.device)
        delta[..., :3, :3] = rot
        delta[..., 3, 3] = 1.0
        local = pick(folded.offset) @ pick(folded.frame) @ delta @ pick(folded.frame_inv)
        t = local  # right for the bones without a free ancestor (level 0)
        for level in self.levels[1:]:  # parents first
            idx = torch.as_tensor(level)
            t = t.index_copy(1, idx, _take(t, 1, self.free_parent[level]) @ local[:, idx])
        return t

    @staticmethod
    def apply(transforms: torch.Tensor, points: torch.Tensor, fixed_points: torch.Tensor) -> torch.Tensor:
        """(M, N, 3) skinned points, metres, from (M, A, 4, 4) :meth:`transforms` and
        (M, N, A, 4), (M, N, 3) folded points (:meth:`fold_points`)."""
        return torch.einsum("majy,mnay->mnj", transforms[..., :3, :], points) + fixed_points

    def keypoints(self, pose: torch.Tensor, folded: FoldedRest, rows: torch.Tensor | None = None) -> torch.Tensor:
        """(M, K, 3) keypoints in the model frame, metres (arguments as :meth:`transforms`)."""
        t = self.transforms(pose, folded, rows)
        pts, fixed = ((folded.points, folded.fixed_points) if rows is None
                      else (_take(folded.points, 0, rows), _take(folded.fixed_points, 0, rows)))
        return self.apply(t, pts, fixed)


def _take(x: torch.Tensor, dim: int, index) -> torch.Tensor:
    """``x`` gathered along ``dim`` with ``torch.index_select``: indices repeat here, and
    the backward pass of plain indexing then accumulates in a thread-dependent order on
    CPU (runs differed in the 6th digit), where ``index_select``'s is deterministic."""
    return torch.index_select(x, dim, torch.as_tensor(index, dtype=torch.long, device=x.device))


def _topological(parents: np.ndarray) -> list[int]:
    """Bone indices with every parent before its children."""
    children: dict[int, list[int]] = {}
    roots = []
    for j, p in enumerate(parents):
        (roots if p < 0 else children.setdefault(int(p), [])).append(j)
    order, stack = [], list(reversed(roots))
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children.get(j, [])))
    return order
