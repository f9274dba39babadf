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
    faces = np.asarray(faces)
    if len(faces) == 0:
        return Raster(depth, face_map, bary_map)
    v = np.asarray(vertices_px, np.float64)
    # Per-corner 1D arrays: reductions over a length-3 axis are slow in NumPy.
    (xa, xb, xc), (ya, yb, yc), (za, zb, zc) = ([v[faces[:, i], c] for i in range(3)] for c in range(3))
    x_lo, x_hi = np.minimum(np.minimum(xa, xb), xc), np.maximum(np.maximum(xa, xb), xc)
    y_lo, y_hi = np.minimum(np.minimum(ya, yb), yc), np.maximum(np.maximum(ya, yb), yc)
    area2 = (xb - xa) * (yc - ya) - (xc - xa) * (yb - ya)
    visible = (
        (np.minimum(np.minimum(za, zb), zc) > near)
        & ((area2 < -1e-12) if cull_back_faces else (np.abs(area2) > 1e-12))
        & (x_hi >= 0) & (x_lo <= width) & (y_hi >= 0) & (y_lo <= height)
    )
    ids = np.nonzero(visible)[0]
    if len(ids) == 0:
        return Raster(depth, face_map, bary_map)
    x0 = np.clip(np.floor(x_lo[ids] - 0.5), 0, width - 1).astype(np.int64)
    x1 = np.clip(np.ceil(x_hi[ids] - 0.5), 0, width - 1).astype(np.int64)
    y0 = np.clip(np.floor(y_lo[ids] - 0.5), 0, height - 1).astype(np.int64)
    y1 = np.clip(np.ceil(y_hi[ids] - 0.5), 0, height - 1).astype(np.int64)
    counts = (x1 - x0 + 1) * (y1 - y0 + 1)
    # Per-candidate arithmetic in float32 (pixel coordinates need no more), on the
    # visible faces only (index j into ``ids``).
    tx = [c[ids].astype(np.float32) for c in (xa, xb, xc)]
    ty = [c[ids].astype(np.float32) for c in (ya, yb, yc)]
    tz = [c[ids].astype(np.float32) for c in (za, zb, zc)]
    area32 = area2[ids].astype(np.float32)
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
        j = np.arange(start, end)
        cnt = counts[start:end]
        start = end
        jj = np.repeat(j, cnt)
        offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        w_box = np.repeat(x1[j] - x0[j] + 1, cnt)
        px = np.repeat(x0[j], cnt) + offs % w_box
        py = np.repeat(y0[j], cnt) + offs // w_box
        cx = (px + 0.5).astype(np.float32)
        cy = (py + 0.5).astype(np.float32)
        x_0, x_1, x_2 = (c[jj] - cx for c in tx)
        y_0, y_1, y_2 = (c[jj] - cy for c in ty)
        a2 = area32[jj]
        b0 = (x_1 * y_2 - x_2 * y_1) / a2
        b1 = (x_2 * y_0 - x_0 * y_2) / a2
        b2 = 1.0 - b0 - b1
        inside = np.nonzero((b0 >= 0) & (b1 >= 0) & (b2 >= 0))[0]
        if len(inside) == 0:
            continue
        b0, b1, b2, jj = b0[inside], b1[inside], b2[inside], jj[inside]
        inv_z = b0 / tz[0][jj] + b1 / tz[1][jj] + b2 / tz[2][jj]
        best_pix.append(py[inside] * width + px[inside])
        best_z.append(1.0 / inv_z)
        best_f.append(ids[jj])
        best_b.append(np.stack([b0, b1, b2], 1))
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
    return np.stack(_unit(*_face_normal_xyz(np.asarray(vertices), np.asarray(faces))), 1)


def _face_normal_xyz(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Components of the (unnormalised) face normals, (F,) each: per-component arrays
    avoid NumPy's slow reductions over a length-3 axis."""
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = ([vertices[faces[:, i], c] for c in range(3)] for i in range(3))
    ux, uy, uz = bx - ax, by - ay, bz - az
    vx, vy, vz = cx - ax, cy - ay, cz - az
    return uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx


def _unit(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    norm = np.maximum(np.sqrt(x * x + y * y + z * z), 1e-12)
    return x / norm, y / norm, z / norm


def shade_faces(vertices_cam: np.ndarray, faces: np.ndarray, ambient: float = 0.35) -> np.ndarray:
    """Lambert shading of each face lit from the camera (headlight), two-sided.

    Args:
        vertices_cam: (V, 3) camera-space vertices, metres.
        faces: (F, 3) vertex indices.
        ambient: Ambient light fraction in [0, 1].

    Returns:
        (F,) float32 intensity in [ambient, 1].
    """
    v, f = np.asarray(vertices_cam), np.asarray(faces)
    nx, ny, nz = _unit(*_face_normal_xyz(v, f))
    centre = [(v[f[:, 0], c] + v[f[:, 1], c] + v[f[:, 2], c]) / 3 for c in range(3)]
    wx, wy, wz = _unit(*centre)  # towards the face; the light comes the other way
    lam = np.abs(-(nx * wx + ny * wy + nz * wz))
    return (ambient + (1 - ambient) * lam).astype(np.float32)
