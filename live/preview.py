"""The preview: each processed frame drawn (meshes or fitted skeletons, ids and Tz) and
encoded as JPEG on its own thread, newest first, for the page's stream."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from meshstream.export.overlay import draw_keypoints, render_overlay, track_colour
from meshstream.stream.messages import BodyFit, Frame

from .stats import LiveStats

log = logging.getLogger(__name__)

# COCO-17 limbs of the page's 3D view and the skeleton preview.
COCO_LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14),
              (14, 16), (0, 5), (0, 6))


@dataclass
class Shown:
    """One processed frame on its way to the page.

    Attributes:
        frame: The frame.
        captured_s: When it was decoded (``time.monotonic()``), seconds.
        fit: Its fitted bodies (filtered), or ``None`` (none, or the focal not yet known).
        keypoints: (M, 33, 3) BlazePose keypoints of persons not yet fitted, pixels, or ``None``.
        focal_px: The focal the bodies were fitted at, or ``None``.
    """

    frame: Frame
    captured_s: float
    fit: BodyFit | None = None
    keypoints: np.ndarray | None = None
    focal_px: float | None = None


@dataclass
class PreviewFrame:
    """An encoded preview frame.

    Attributes:
        seq: Its number (increasing).
        jpeg: The JPEG bytes.
        captured_s: When its frame was decoded (``time.monotonic()``), seconds.
        meta: What the page's numbers and 3D view read: the camera and each body's
            COCO-17 keypoints in camera space, metres.
    """

    seq: int
    jpeg: bytes
    captured_s: float
    meta: dict


class Preview:
    """Draws and encodes frames on a thread; only the newest waiting frame is drawn.

    Args:
        mesher: Each fit's meshes (``Mesher``), or ``None``: skeletons only.
        faces: (F, 3) the body model's triangles.
        principal_point: (2,) pixels.
        quality: JPEG quality.
        stats: The run's counters (latency to a ready frame).
        overlay: Writer of the preview's frames as a video while recording (an
            ``OverlayWriter``), or ``None``.
    """

    def __init__(self, *, mesher, faces: np.ndarray, principal_point: np.ndarray, quality: int, stats: LiveStats,
                 overlay=None) -> None:
        self.mesher = mesher
        self.faces = faces
        self.principal_point = np.asarray(principal_point, np.float64)
        self.quality = quality
        self.stats = stats
        self.overlay = overlay
        self._cond = threading.Condition()
        self._waiting: Shown | None = None
        self._latest: PreviewFrame | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-preview", daemon=True)
        self.error: BaseException | None = None
        self._listeners: list = []

    def listen(self, callback) -> None:
        """Calls ``callback()`` (from the preview's thread) after each new frame."""
        with self._cond:
            self._listeners.append(callback)

    def unlisten(self, callback) -> None:
        with self._cond:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def start(self) -> None:
        self._thread.start()

    def submit(self, shown: Shown) -> None:
        """Queues a frame to draw, replacing one not yet drawn."""
        with self._cond:
            self._waiting = shown
            self._cond.notify_all()

    def latest(self) -> PreviewFrame | None:
        """The newest encoded frame."""
        with self._cond:
            return self._latest

    def _run(self) -> None:
        seq = 0
        try:
            while not self._stop.is_set():
                with self._cond:
                    if self._waiting is None:
                        self._cond.wait(0.1)
                    shown, self._waiting = self._waiting, None
                if shown is None:
                    continue
                t0 = time.perf_counter()
                rgb = self.draw(shown)
                if self.overlay is not None and self.stats.recording:
                    self.overlay.write(shown.frame, rgb)
                seq += 1
                done = PreviewFrame(seq, encode_jpeg(rgb, self.quality), shown.captured_s, self._meta(shown))
                self.stats.ready(time.monotonic() - shown.captured_s)
                self.stats.timed("preview", time.perf_counter() - t0)
                with self._cond:
                    self._latest = done
                    self._cond.notify_all()
                    listeners = list(self._listeners)
                for callback in listeners:
                    callback()
        except BaseException as exc:  # reported by the run
            self.error = exc
            log.exception("the preview stopped")

    def draw(self, shown: Shown) -> np.ndarray:
        """The frame with its bodies (meshes or skeletons), ids and depths, or its
        persons' keypoints while the focal is estimated."""
        import cv2

        fit, rgb = shown.fit, shown.frame.rgb
        if fit is not None and len(fit):
            labels = [f"id {t}  Tz {z:.2f} m" for t, z in zip(fit.track_id.tolist(), fit.pelvis[:, 2].tolist())]
            if self.mesher is not None:
                verts = self.mesher(fit)
                return render_overlay(rgb, [(int(t), v) for t, v in zip(fit.track_id, verts)], self.faces,
                                      float(shown.focal_px), self.principal_point, labels=labels)
            out = rgb.copy()
            for t, kp, label in zip(fit.track_id, fit.keypoints3d, labels):
                uv = shown.focal_px * kp[:, :2] / np.maximum(kp[:, 2:3], 1e-3) + self.principal_point
                c = tuple(int(v) for v in track_colour(int(t)))
                for a, b in COCO_LIMBS:
                    cv2.line(out, tuple(np.round(uv[a]).astype(int)), tuple(np.round(uv[b]).astype(int)), c, 3,
                             cv2.LINE_AA)
                x, y = np.round(uv[[5, 6]].mean(0)).astype(int)
                cv2.putText(out, label, (int(x) - 40, int(y) - 60), cv2.FONT_HERSHEY_SIMPLEX, 0.5, c, 1,
                            cv2.LINE_AA)
            return out
        out = rgb.copy()
        for i, kp in enumerate(shown.keypoints if shown.keypoints is not None else []):
            draw_keypoints(out, kp, track_colour(i + 1))
        return out

    def _meta(self, shown: Shown) -> dict:
        h, w = shown.frame.rgb.shape[:2]
        bodies = []
        if shown.fit is not None:
            for t, kp in zip(shown.fit.track_id.tolist(), shown.fit.keypoints3d):
                bodies.append({"id": int(t), "keypoints3d": np.round(kp, 3).tolist()})
        return {"width": w, "height": h, "focal_px": shown.focal_px,
                "principal_point": self.principal_point.round(1).tolist(), "bodies": bodies,
                "limbs": COCO_LIMBS, "pts_seconds": round(shown.frame.pts_seconds, 3)}

    def close(self) -> None:
        """Stops the thread and finishes the overlay video."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=10.0)
        if self.overlay is not None:
            self.overlay.close()


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 RGB image."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
