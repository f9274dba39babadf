"""The silhouette term of the refinement: a coarse body mesh, skinned on the fitted
bones, rendered softly into each person's mask grid and compared by soft IoU; and the
mask grids themselves (:func:`mask_grid`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from meshstream.stream.messages import PersonFrames

from .camera import project
from .reduced_rig import FoldedRest, ReducedRig
from .soft_rasterizer import nearest_faces, soft_iou, soft_silhouette


@dataclass
class SilhouetteTargets:
    """What the silhouette term needs for the U person-frames with a usable mask.

    Attributes:
        rows: (U,) their rows in the chunk's ``PersonFrames``.
        points: (U, Vc, A, 4) the coarse mesh's vertices in their track's shape, folded
            onto the A fitted bones (:meth:`ReducedRig.fold_points`).
        fixed_points: (U, Vc, 3) their part carried by bones with no fitted ancestor.
        faces: (Fc, 3) coarse-mesh triangles.
        target: (U, R, R) person-mask coverage.
        valid: (U, R, R) 0 where a cell lies outside the frame.
        origin: (U, 2) top-left pixel of each grid.
        cell: (U,) grid cell size, pixels.
    """

    rows: torch.Tensor
    points: torch.Tensor
    fixed_points: torch.Tensor
    faces: torch.Tensor
    target: torch.Tensor
    valid: torch.Tensor
    origin: torch.Tensor
    cell: torch.Tensor


def silhouette_iou(sil: SilhouetteTargets, transforms: torch.Tensor, rot: torch.Tensor, transl: torch.Tensor,
                    focal: torch.Tensor, pp: torch.Tensor, candidates: torch.Tensor | None = None,
                    nearest: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """(U,) soft IoU with the masks of the coarse bodies, skinned by the chunk's
    (M, A, 4, 4) transforms of the fitted bones (:meth:`ReducedRig.transforms`) and
    placed by ``rot`` (M, 3, 3) and ``transl`` (M, 3),
    and each mask cell's candidate faces: its ``4 * nearest`` nearest, searched here when
    ``candidates`` is ``None``; each cell renders the ``nearest`` among them."""
    rows = sil.rows
    verts = ReducedRig.apply(transforms[rows], sil.points, sil.fixed_points)  # (U, Vc, 3) model frame
    cam = verts @ rot[rows].transpose(-1, -2) + transl[rows, None]
    uv = project(cam, focal[rows], pp)
    size = sil.target.shape[-1]
    if candidates is None:
        candidates = nearest_faces(uv, sil.faces, sil.origin, sil.cell, size, nearest=4 * nearest)
    index = nearest_faces(uv, sil.faces, sil.origin, sil.cell, size, nearest=nearest, candidates=candidates)
    rendered = soft_silhouette(uv, sil.faces, sil.origin, sil.cell, size, nearest=nearest, face_index=index)
    return soft_iou(rendered, sil.target, sil.valid), candidates


def silhouette_targets(body, rig: ReducedRig, coarse, obs: PersonFrames, shape: torch.Tensor, folded: FoldedRest,
                       group_of: torch.Tensor) -> SilhouetteTargets | None:
    """The coarse mesh's vertices (``coarse``: :func:`coarse_mesh` of the body's rest
    mesh) folded onto the fitted bones and the mask grids of the person-frames that have
    a usable mask (``None`` when there is none)."""
    usable = np.nonzero((obs.masks * obs.mask_valid).sum((1, 2)) >= 8)[0]
    if len(usable) == 0:
        return None
    dt = body.dtype
    index = torch.as_tensor(coarse.vertex_index)
    groups = group_of[torch.as_tensor(usable)]
    used, inverse = torch.unique(groups, return_inverse=True)
    first = [int(usable[(groups == g).nonzero()[0, 0]]) for g in used]
    with torch.no_grad():
        rest_v = body.vertices(torch.zeros(len(first), body.num_bones, 3, dtype=dt), body.rest(shape[first]))[:, index]
        homog = torch.cat([rest_v, torch.ones_like(rest_v[..., :1])], -1)  # (G, Vc, 4)
        bone_points = body.skin_weights[index][None, :, :, None] * homog[:, :, None]  # (G, Vc, J, 4)
        sub = folded.select(used)
        points, fixed = rig.fold_points(sub, bone_points)
    return SilhouetteTargets(
        rows=torch.as_tensor(usable),
        points=points[inverse],
        fixed_points=fixed[inverse],
        faces=torch.as_tensor(coarse.faces),
        target=torch.as_tensor(obs.masks[usable], dtype=dt),
        valid=torch.as_tensor(obs.mask_valid[usable], dtype=dt),
        origin=torch.as_tensor(obs.mask_origin[usable], dtype=dt),
        cell=torch.as_tensor(obs.mask_cell[usable], dtype=dt),
    )


def mask_grid(mask: np.ndarray, box_xyxy: np.ndarray, size: int, margin: float = 1.25
              ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Samples a full-frame person mask on a square grid around the person's box.

    Args:
        mask: (H, W) bool person mask.
        box_xyxy: (4,) the person's box, pixels.
        size: Cells per side.
        margin: Grid side as a multiple of the box's longer side.

    Returns:
        coverage: (size, size) float32 fraction of each cell covered by the mask.
        origin: (2,) float32 top-left pixel of the grid.
        cell: Cell size, pixels.
        valid: (size, size) float32, 1 where the cell lies inside the frame.
    """
    import cv2

    h, w = mask.shape
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    side = max(margin * max(x1 - x0, y1 - y0), float(size))
    origin = np.array([(x0 + x1 - side) / 2, (y0 + y1 - side) / 2], np.float32)
    cell = side / size
    # Sample the grid 4x finer (cells outside the frame read 0), then average down.
    fine = 4 * size
    warp = np.array([[cell / 4, 0, origin[0]], [0, cell / 4, origin[1]]], np.float32)
    sampled = cv2.warpAffine(mask.astype(np.float32), warp, (fine, fine), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    coverage = cv2.resize(sampled, (size, size), interpolation=cv2.INTER_AREA)
    centres = origin[None] + (np.arange(size)[:, None] + 0.5) * cell  # (size, 2): x, y of column/row centres
    inside_x = (centres[:, 0] >= 0) & (centres[:, 0] < w)
    inside_y = (centres[:, 1] >= 0) & (centres[:, 1] < h)
    valid = (inside_y[:, None] & inside_x[None, :]).astype(np.float32)
    return coverage.astype(np.float32), origin, float(cell), valid
