"""Differentiable soft silhouettes of triangle meshes in PyTorch (CPU or GPU).

A triangle covers a pixel with probability ``D = sigmoid(s * d / sigma)``, with ``d``
the pixel's distance to the triangle's boundary and ``s`` = +1 inside, -1 outside
(SoftRas' probability map, with a distance instead of a squared distance). Inside the
mesh's projection the coverage is SoftRas' union ``1 - prod_f (1 - D_f)`` over the faces
near the pixel (close to 1); outside it is the nearest face's ``D`` alone, so the soft
silhouette crosses 0.5 exactly on the hard silhouette's edge instead of being dilated
by the union of the many faces that meet there. Gradients reach the vertices through
``d``, so silhouettes can pull a body's pose and translation onto a person mask.

Silhouettes are rendered on a small square grid per body (a crop around the person),
described by its top-left pixel and its cell size. Cost is batch x cells x (a few
nearest faces), plus a gradient-free nearest-face search over all faces, so bodies are
rendered with a coarse version of their mesh (:func:`coarse_mesh`).

Conventions: pixel coordinates (x right, y down), grid cell centres at
``origin + (index + 0.5) * cell``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class CoarseMesh:
    """A mesh made of a subset of another mesh's vertices.

    Attributes:
        vertex_index: (Vc,) int64 indices of the kept vertices in the full mesh.
        faces: (Fc, 3) int64 triangles over the kept vertices (0..Vc-1).
    """

    vertex_index: np.ndarray
    faces: np.ndarray


def coarse_mesh(vertices: np.ndarray, faces: np.ndarray, cell_m: float = 0.05) -> CoarseMesh:
    """Vertex-clustering decimation: one vertex per occupied cube of side ``cell_m``.

    Each cluster keeps its member vertex closest to the cluster mean (so the coarse mesh
    can be skinned with the full mesh's weights); faces are remapped and degenerate or
    duplicate ones dropped.

    Args:
        vertices: (V, 3) rest vertices, metres.
        faces: (F, 3) triangles.
        cell_m: Cluster size, metres.
    """
    keys = np.floor(vertices / cell_m).astype(np.int64)
    _, cluster, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    cluster = cluster.reshape(-1)
    n = len(counts)
    mean = np.zeros((n, 3))
    np.add.at(mean, cluster, vertices)
    mean /= counts[:, None]
    dist = np.linalg.norm(vertices - mean[cluster], axis=1)
    order = np.lexsort((dist, cluster))  # by cluster, closest first
    first = np.ones(len(order), bool)
    first[1:] = cluster[order][1:] != cluster[order][:-1]
    rep = order[first]  # representative vertex of each cluster, in cluster order
    f = cluster[faces]
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    _, unique = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    return CoarseMesh(rep.astype(np.int64), f[np.sort(unique)].astype(np.int64))


def pixel_grid(origin: torch.Tensor, cell: torch.Tensor, size: int) -> torch.Tensor:
    """(B, size*size, 2) pixel centres of square grids, row-major (y then x).

    Args:
        origin: (B, 2) top-left corner of each grid, pixels.
        cell: (B,) cell size, pixels.
        size: Cells per side.
    """
    r = torch.arange(size, dtype=origin.dtype, device=origin.device) + 0.5
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    local = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)  # (P, 2)
    return origin[:, None] + cell[:, None, None] * local[None]


def _segment_sq_distance(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distance from points ``p`` to segments ``a``-``b`` (broadcast, last dim 2)."""
    ab = b - a
    t = (((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-12)).clamp(0.0, 1.0)
    closest = a + t[..., None] * ab
    return ((p - closest) ** 2).sum(-1)


@torch.no_grad()
def nearest_faces(vertices_px: torch.Tensor, faces: torch.Tensor, origin: torch.Tensor, cell: torch.Tensor,
                  size: int, nearest: int = 8, candidates: torch.Tensor | None = None) -> torch.Tensor:
    """The faces each grid cell of :func:`soft_silhouette` accumulates: the ``nearest``
    by centroid distance (no gradient).

    The search over all faces is most of the silhouette's cost. An optimiser whose mesh
    moves by a fraction of a cell per step can search a wider set once and pass it as
    ``candidates`` on the following steps, which then choose among those only: with 32
    candidates for 8 faces, a mesh moved by a fifth of a cell renders as after a fresh
    search (IoU within 0.002, tested).

    Args:
        vertices_px: (B, V, 2) projected vertices, pixels.
        faces: (F, 3) int64 triangles.
        origin: (B, 2) top-left pixel of each body's grid.
        cell: (B,) grid cell size, pixels.
        size: Grid cells per side.
        nearest: Faces per cell.
        candidates: (B, size * size, C) face indices to choose from (``None``: all).

    Returns:
        (B, size * size, k) int64 face indices, cells row-major, k = ``nearest`` or
        fewer when there are fewer faces (or candidates).
    """
    p = pixel_grid(origin, cell, size)  # (B, P, 2)
    if candidates is None:
        centroids = vertices_px[:, faces].mean(2)  # (B, F, 2)
        k = min(nearest, len(faces))
        return torch.cdist(p, centroids).topk(k, dim=-1, largest=False, sorted=False).indices
    b, n_p, c = candidates.shape
    tri = torch.gather(vertices_px[:, faces].mean(2), 1, candidates.reshape(b, n_p * c, 1).expand(-1, -1, 2))
    d2 = ((tri.reshape(b, n_p, c, 2) - p[:, :, None]) ** 2).sum(-1)  # (B, P, C)
    pick = d2.topk(min(nearest, c), dim=-1, largest=False, sorted=False).indices
    return torch.gather(candidates, 2, pick)


def soft_silhouette(vertices_px: torch.Tensor, faces: torch.Tensor, origin: torch.Tensor, cell: torch.Tensor,
                    size: int, sigma_cells: float = 0.5, nearest: int = 8,
                    face_index: torch.Tensor | None = None) -> torch.Tensor:
    """Soft silhouettes of a batch of projected meshes on per-body grids.

    Each cell accumulates the ``nearest`` faces by centroid distance (chosen without
    gradient, :func:`nearest_faces`), as SoftRas skips faces beyond a distance
    threshold: the cost is B x cells x nearest instead of B x cells x faces, with the
    same value wherever the farther faces' coverage is negligible (all but the blur's
    outer edge). ``face_index`` passes the faces in (see :func:`nearest_faces`).

    Args:
        vertices_px: (B, V, 2) projected vertices, pixels (vertices behind the camera
            must be excluded by the caller).
        faces: (F, 3) int64 triangles (either winding).
        origin: (B, 2) top-left pixel of each body's grid.
        cell: (B,) grid cell size, pixels.
        size: Grid cells per side.
        sigma_cells: Edge softness (sigmoid scale) in grid cells.
        nearest: Faces considered per cell.
        face_index: (B, size * size, k) faces per cell from :func:`nearest_faces`
            (``None``: searched now).

    Returns:
        (B, size, size) coverage in [0, 1].
    """
    b = len(vertices_px)
    p = pixel_grid(origin, cell, size)  # (B, P, 2)
    tri = vertices_px[:, faces]  # (B, F, 3, 2)
    idx = nearest_faces(vertices_px, faces, origin, cell, size, nearest) if face_index is None else face_index
    k = idx.shape[-1]
    n_p = p.shape[1]
    sel = torch.gather(tri, 1, idx.reshape(b, n_p * k, 1, 1).expand(-1, -1, 3, 2)).reshape(b, n_p, k, 3, 2)
    a, bb, c = sel[..., 0, :], sel[..., 1, :], sel[..., 2, :]  # (B, P, k, 2)
    q = p[:, :, None]
    d2 = torch.minimum(torch.minimum(_segment_sq_distance(q, a, bb), _segment_sq_distance(q, bb, c)),
                       _segment_sq_distance(q, c, a))
    # Inside when the three edge functions share a sign (either winding).
    e0, e1, e2 = _cross(bb - a, q - a), _cross(c - bb, q - bb), _cross(a - c, q - c)
    inside = ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))
    signed = torch.where(inside, 1.0, -1.0).to(d2.dtype) * (d2 + 1e-12).sqrt()  # + inside a face
    cover = torch.sigmoid(signed / (sigma_cells * cell)[:, None, None])  # (B, P, k)
    union = 1.0 - torch.log1p(-cover.clamp(max=1 - 1e-6)).sum(-1).exp()
    outside = cover.max(-1).values  # sigmoid of minus the distance to the nearest face
    return torch.where(inside.any(-1), union, outside).reshape(b, size, size)


def _cross(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def soft_iou(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) soft intersection over union of (B, H, W) maps in [0, 1].

    Args:
        pred: Rendered coverage.
        target: Person mask (0/1 or soft).
        weight: Optional (B, H, W) per-cell weight (0 ignores a cell, e.g. outside the frame).
    """
    w = torch.ones_like(pred) if weight is None else weight
    inter = (pred * target * w).sum((1, 2))
    union = ((pred + target - pred * target) * w).sum((1, 2))
    return inter / union.clamp(min=1e-6)
