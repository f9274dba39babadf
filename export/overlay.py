"""Overlay video: fitted meshes rendered over the source frames (H.264 via PyAV)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from meshstream.models.rasterizer import rasterize, shade_faces
from meshstream.stream.errors import OutputError
from meshstream.stream.messages import Frame

_PALETTE = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
     [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40]],
    np.float32,
)


def track_colour(track_id: int) -> np.ndarray:
    """(3,) RGB colour of a track id (stable across runs)."""
    return _PALETTE[(int(track_id) - 1) % len(_PALETTE)]


def render_overlay(rgb: np.ndarray, meshes: list[tuple[int, np.ndarray]], faces: np.ndarray, focal_px: float,
                   principal_point: np.ndarray, alpha: float = 0.7, labels: list[str] | None = None) -> np.ndarray:
    """Draws shaded meshes over a frame, one colour per track, with a label each.

    Args:
        rgb: (H, W, 3) uint8 frame.
        meshes: (track_id, (V, 3) camera-space vertices in metres) per person.
        faces: (F, 3) triangle indices shared by all meshes.
        focal_px: Focal length, pixels.
        principal_point: (2,) pixels.
        alpha: Mesh opacity.
        labels: Text per mesh (default ``"id N"``).

    Returns:
        (H, W, 3) uint8 image.
    """
    import cv2

    out = rgb.copy()
    if not meshes:
        return out
    h, w = rgb.shape[:2]
    verts, tris, colours = [], [], []
    offset = 0
    for tid, v in meshes:
        z = np.maximum(v[:, 2:3], 1e-6)
        verts.append(np.concatenate([focal_px * v[:, :2] / z + principal_point, v[:, 2:3]], 1))
        tris.append(faces + offset)
        colours.append(track_colour(tid)[None] * shade_faces(v, faces)[:, None])
        offset += len(v)
    raster = rasterize(np.concatenate(verts), np.concatenate(tris), h, w, cull_back_faces=True)
    m = raster.mask
    col = np.concatenate(colours)[raster.face[m]]
    out[m] = np.clip((1 - alpha) * out[m] + alpha * col, 0, 255).astype(np.uint8)
    for i, (tid, v) in enumerate(meshes):
        z = np.maximum(v[:, 2], 1e-6)
        uv = focal_px * v[:, :2] / z[:, None] + principal_point
        x, y = int(np.clip(uv[:, 0].mean(), 0, w - 1)), int(np.clip(uv[:, 1].min() - 8, 12, h - 1))
        text = labels[i] if labels else f"id {tid}"
        colour = tuple(int(c) for c in track_colour(tid))
        cv2.putText(out, text, (x - 20, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, (x - 20, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return out


# BlazePose-33 limbs drawn by the keypoints toggle.
_LIMBS = [(11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24), (23, 25), (25, 27),
          (24, 26), (26, 28), (27, 31), (28, 32), (0, 11), (0, 12)]


def draw_keypoints(rgb: np.ndarray, keypoints: np.ndarray, colour: np.ndarray, min_conf: float = 0.5) -> None:
    """Draws BlazePose-33 keypoints and limbs in place.

    Args:
        rgb: (H, W, 3) uint8 image, modified.
        keypoints: (33, 3) x, y pixels and confidence.
        colour: (3,) RGB.
        min_conf: Keypoints below this confidence are not drawn.
    """
    import cv2

    c = tuple(int(v) for v in colour)
    ok = keypoints[:, 2] >= min_conf
    pts = np.round(keypoints[:, :2]).astype(int)
    for a, b in _LIMBS:
        if ok[a] and ok[b]:
            cv2.line(rgb, tuple(pts[a]), tuple(pts[b]), c, 2, cv2.LINE_AA)
    for i in np.nonzero(ok)[0]:
        cv2.circle(rgb, tuple(pts[i]), 3, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(rgb, tuple(pts[i]), 3, c, 1, cv2.LINE_AA)


def draw_inset(rgb: np.ndarray, persons: list[tuple[int, np.ndarray]], view: str = "top",
               size_frac: float = 0.25, extent_m: tuple[float, float] = (-3.0, 3.0),
               depth_m: tuple[float, float] = (0.0, 8.0)) -> None:
    """Draws a metric view of everyone in a corner of the frame, in place.

    ``top``: looking down, x to the right and depth up; ``side``: depth to the right and
    height up. A 1 m grid, the camera at the origin, each person's COCO-17 skeleton in
    their track colour.

    Args:
        rgb: (H, W, 3) uint8 image, modified.
        persons: (track_id, (17, 3) camera-space COCO-17 keypoints in metres) per person.
        view: ``"top"`` or ``"side"``.
        size_frac: Inset width as a fraction of the frame width.
        extent_m: Lateral range shown (x for top, height for side), metres.
        depth_m: Depth range shown, metres.
    """
    import cv2

    h, w = rgb.shape[:2]
    pw = max(int(size_frac * w), 80)
    lat, dep = extent_m[1] - extent_m[0], depth_m[1] - depth_m[0]
    ph = int(pw * (dep / lat if view == "top" else lat / dep))
    ph = min(ph, h - 10)
    x0, y0 = w - pw - 5, 5
    panel = rgb[y0 : y0 + ph, x0 : x0 + pw]
    panel[:] = (0.35 * panel).astype(np.uint8)

    def to_px(points: np.ndarray) -> np.ndarray:
        if view == "top":
            u = (points[:, 0] - extent_m[0]) / lat * pw
            v = ph - (points[:, 2] - depth_m[0]) / dep * ph
        else:
            u = (points[:, 2] - depth_m[0]) / dep * pw
            v = ph - (-points[:, 1] - extent_m[0]) / lat * ph
        return np.stack([u, v], 1).round().astype(int)

    grid = (200, 200, 200)
    for m in range(int(np.ceil(depth_m[0])), int(depth_m[1]) + 1):
        p = to_px(np.array([[0.0, 0.0, m]]))[0]
        if view == "top":
            cv2.line(panel, (0, p[1]), (pw, p[1]), grid, 1)
        else:
            cv2.line(panel, (p[0], 0), (p[0], ph), grid, 1)
    for m in range(int(np.ceil(extent_m[0])), int(extent_m[1]) + 1):
        p = to_px(np.array([[m, -m, 0.0]]))[0]
        if view == "top":
            cv2.line(panel, (p[0], 0), (p[0], ph), grid, 1)
        else:
            cv2.line(panel, (0, p[1]), (pw, p[1]), grid, 1)
    cam = to_px(np.zeros((1, 3)))[0]
    cv2.circle(panel, (int(cam[0]), int(np.clip(cam[1], 3, ph - 3))), 4, (255, 255, 255), -1)
    coco_limbs = [(5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15),
                  (12, 14), (14, 16)]
    for tid, kp in persons:
        c = tuple(int(v) for v in track_colour(tid))
        px = to_px(kp)
        for a, b in coco_limbs:
            cv2.line(panel, tuple(px[a]), tuple(px[b]), c, 2, cv2.LINE_AA)
        hip = to_px(0.5 * (kp[11:12] + kp[12:13]))[0]
        cv2.circle(panel, tuple(hip), 4, c, -1, cv2.LINE_AA)
    cv2.putText(panel, f"{view} view, 1 m grid", (4, ph - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1,
                cv2.LINE_AA)


class OverlayWriter:
    """Sink that encodes overlay frames to an H.264 MP4 with the source's timestamps.

    Args:
        path: Output ``.mp4``.
        width, height: Frame size, pixels (odd sizes are padded by one pixel).
        fps: Nominal frame rate (container metadata); each frame keeps its own pts.
        crf: x264 quality (lower is better).
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float, crf: int = 23) -> None:
        import av

        self.path = Path(path)
        try:
            self._container = av.open(str(self.path), mode="w")
        except (OSError, av.error.FFmpegError) as exc:
            raise OutputError(f"cannot write {self.path} ({exc}); choose a writable folder with -o") from exc
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._w, self._h = width + width % 2, height + height % 2
        self._stream.width, self._stream.height = self._w, self._h
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self._stream.codec_context.time_base = Fraction(1, 1000)
        self._last_pts = -1
        self.frames_written = 0

    def write(self, frame: Frame, rgb: np.ndarray) -> None:
        """Encodes ``rgb`` (the overlay of ``frame``) at ``frame.pts_seconds``."""
        import av

        if rgb.shape[:2] != (self._h, self._w):
            rgb = np.pad(rgb, ((0, self._h - rgb.shape[0]), (0, self._w - rgb.shape[1]), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        pts = max(int(round(frame.pts_seconds * 1000)), self._last_pts + 1)
        self._last_pts = pts
        vf.pts, vf.time_base = pts, Fraction(1, 1000)
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
