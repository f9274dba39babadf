"""A vectorised CPU z-buffer rasterizer for triangle meshes (NumPy).

Used for overlays and for rendering the synthetic clips with ground truth. Pixel
centres are at integer + 0.5 (OpenCV/PyTorch3D convention); depth is interpolated
perspective-correctly (1/z is linear in screen space).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MAX_CANDIDATES = 4_000_000  # pixel candidates processed at once (bounds memory)


@dataclass
class Raster:
    """Result of rasterizing a mesh.

    Attributes:
        depth: (H, W) float32 camera depth z of the nearest surface, metres; inf where empty.
        face: (H, W) int64 index of the visible triangle, -1 where empty.
        bary: (H, W, 3) float32 screen-space barycentric weights of the visible triangle.
    """

    depth: np.ndarray
    face: np.ndarray
    bary: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool coverage."""
        return self.face >= 0


def rasterize(vertices_px: np.ndarray, faces: np.ndarray, height: int, width: int, near: float = 1e-3,
              cull_back_faces: bool = False) -> Raster:
    """Rasterizes triangles given in pixel coordinates with their camera depth.

    Args:
        vertices_px: (V, 3) float: x, y in pixels and z the camera depth in metres.
        faces: (F, 3) int vertex indices.
        height: Image height in pixels.
        width: Image width in pixels.
        near: Triangles with a vertex closer than this depth are dropped.
        cull_back_faces: Drop triangles facing away from the camera: front faces are
            counter-clockwise as the camera sees them (OpenGL convention, the winding of
            the Anny and SMPL-X meshes), i.e. negative signed area in y-down pixels.
            Halves the work for closed meshes.

    Returns:
        The :class:`Raster` of the nearest triangle at each pixel centre.
    """
    depth = np.full((height, width), np.inf, np.float32)
    face_map = np.full((height, width), -1, np.int64)
    bary_map = np.zeros((height, width, 3), np.float32)
    tri = np.asarray(vertices_px, np.float64)[np.asarray(faces)]  # (F, 3, 3)
    if len(tri) == 0:
        return Raster(depth, face_map, bary_map)
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
    x0 = np.clip(np.floor(x.min(1) - 0.5), 0, width - 1).astype(np.int64)
    x1 = np.clip(np.ceil(x.max(1) - 0.5), 0, width - 1).astype(np.int64)
    y0 = np.clip(np.floor(y.min(1) - 0.5), 0, height - 1).astype(np.int64)
    y1 = np.clip(np.ceil(y.max(1) - 0.5), 0, height - 1).astype(np.int64)
    area2 = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    visible = (
        (z.min(1) > near)
        & ((area2 < -1e-12) if cull_back_faces else (np.abs(area2) > 1e-12))
        & (x.max(1) >= 0) & (x.min(1) <= width) & (y.max(1) >= 0) & (y.min(1) <= height)
    )
    ids = np.nonzero(visible)[0]
    if len(ids) == 0:
        return Raster(depth, face_map, bary_map)
    counts = (x1[ids] - x0[ids] + 1) * (y1[ids] - y0[ids] + 1)
    # Per-candidate arithmetic in float32 (pixel coordinates need no more).
    x32, y32, z32 = x.astype(np.float32), y.astype(np.float32), z.astype(np.float32)
    area32 = area2.astype(np.float32)
    # Process faces in groups that keep the candidate-pixel count bounded.
    cum = np.cumsum(counts)
    best_pix: list[np.ndarray] = []
    best_z: list[np.ndarray] = []
    best_f: list[np.ndarray] = []
    best_b: list[np.ndarray] = []
    start = 0
    while start < len(ids):
        budget = cum[start] - counts[start] + _MAX_CANDIDATES
        end = max(int(np.searchsorted(cum, budget, side="right")), start + 1)
        sel = ids[start:end]
        cnt = counts[start:end]
        start = end
        fid = np.repeat(sel, cnt)
        offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        w_box = np.repeat(x1[sel] - x0[sel] + 1, cnt)
        px = np.repeat(x0[sel], cnt) + offs % w_box
        py = np.repeat(y0[sel], cnt) + offs // w_box
        cx = (px + 0.5).astype(np.float32)
        cy = (py + 0.5).astype(np.float32)
        tx, ty, tz = x32[fid], y32[fid], z32[fid]
        a2 = area32[fid]
        b0 = ((tx[:, 1] - cx) * (ty[:, 2] - cy) - (tx[:, 2] - cx) * (ty[:, 1] - cy)) / a2
        b1 = ((tx[:, 2] - cx) * (ty[:, 0] - cy) - (tx[:, 0] - cx) * (ty[:, 2] - cy)) / a2
        b2 = 1.0 - b0 - b1
        inside = (b0 >= 0) & (b1 >= 0) & (b2 >= 0)
        if not inside.any():
            continue
        b = np.stack([b0, b1, b2], 1)[inside]
        inv_z = (b / tz[inside]).sum(1)
        zz = 1.0 / inv_z
        best_pix.append(py[inside] * width + px[inside])
        best_z.append(zz)
        best_f.append(fid[inside])
        best_b.append(b)
    if not best_pix:
        return Raster(depth, face_map, bary_map)
    pix = np.concatenate(best_pix)
    zz = np.concatenate(best_z)
    order = np.lexsort((zz, pix))
    pix_sorted = pix[order]
    first = np.ones(len(order), bool)
    first[1:] = pix_sorted[1:] != pix_sorted[:-1]
    keep = order[first]
    flat = pix[keep]
    depth.reshape(-1)[flat] = zz[keep]
    face_map.reshape(-1)[flat] = np.concatenate(best_f)[keep]
    bary_map.reshape(-1, 3)[flat] = np.concatenate(best_b)[keep]
    return Raster(depth, face_map, bary_map)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) unit normals of triangles given (V, 3) camera-space vertices."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def shade_faces(vertices_cam: np.ndarray, faces: np.ndarray, ambient: float = 0.35) -> np.ndarray:
    """Lambert shading of each face lit from the camera (headlight), two-sided.

    Args:
        vertices_cam: (V, 3) camera-space vertices, metres.
        faces: (F, 3) vertex indices.
        ambient: Ambient light fraction in [0, 1].

    Returns:
        (F,) float32 intensity in [ambient, 1].
    """
    n = face_normals(vertices_cam, faces)
    centre = vertices_cam[faces].mean(1)
    view = -centre / np.maximum(np.linalg.norm(centre, axis=1, keepdims=True), 1e-12)
    lam = np.abs((n * view).sum(1))
    return (ambient + (1 - ambient) * lam).astype(np.float32)
