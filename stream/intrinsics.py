"""Camera intrinsics files (``--intrinsics``) and frame undistortion.

Three layouts are read:

- YAML or JSON with ``fx``, ``fy``, ``cx``, ``cy`` (pixels), optional ``fy`` (default ``fx``), ``distortion``
  (OpenCV order ``k1, k2, p1, p2[, k3[, k4, k5, k6]]``) and optional ``width`` and
  ``height`` (the calibration's frame size);
- YAML or JSON with ``camera_matrix`` (3x3, row-major, nested or flat) and optional
  ``dist_coeffs`` / ``distortion_coefficients``, ``image_width``, ``image_height``;
- OpenCV ``FileStorage`` files (``%YAML:1.0`` or XML) as written by OpenCV's
  calibration sample: ``camera_matrix``, ``distortion_coefficients``, ``image_width``,
  ``image_height``.

Frames with distortion or non-square pixels are resampled once per frame to the ideal
camera (:meth:`Intrinsics.ideal`); everything downstream sees a plain pinhole.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from meshstream.models.camera import Intrinsics
from meshstream.stream.errors import ConfigError
from meshstream.stream.messages import Frame

_HINT = ("give fx, fy, cx, cy in pixels (and optionally distortion, width, height), or OpenCV's "
         "camera_matrix and distortion_coefficients")


def load_intrinsics(path: str | Path, width: int, height: int) -> Intrinsics:
    """Reads an intrinsics file and scales it to the video's frame size.

    Args:
        path: The file.
        width: Video frame width, pixels (after rotation metadata).
        height: Video frame height, pixels.

    Returns:
        Intrinsics for ``width`` x ``height`` frames.

    Raises:
        ConfigError: Missing, unreadable or invalid file (one line saying what to fix).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"intrinsics file {path} does not exist; {_HINT}")
    try:
        head = path.read_text(errors="replace")[:64].lstrip()
    except OSError as exc:
        raise ConfigError(f"cannot read intrinsics file {path}: {exc.strerror}") from None
    if head.startswith("%YAML") or head.startswith("<?xml") or head.startswith("<opencv_storage"):
        data = _read_opencv(path)
    else:
        data = _read_yaml_or_json(path)
    intr = _from_mapping(data, path)
    try:
        intr = intr.scaled_to(width, height)
    except ValueError as exc:
        raise ConfigError(f"intrinsics file {path}: {exc}; calibrate at the video's framing") from None
    if not (0.0 <= intr.cx <= width and 0.0 <= intr.cy <= height):
        raise ConfigError(f"intrinsics file {path}: principal point ({intr.cx:g}, {intr.cy:g}) lies outside the "
                          f"{width}x{height} frame; add width/height if it was calibrated at another resolution")
    return intr


def _read_yaml_or_json(path: Path) -> Any:
    import yaml

    text = path.read_text(errors="replace")
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"intrinsics file {path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}"
                          f" ({str(exc).splitlines()[0]}); {_HINT}") from None


def _read_opencv(path: Path) -> dict[str, Any]:
    import cv2

    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except cv2.error:
        raise ConfigError(f"intrinsics file {path} is not a readable OpenCV FileStorage file; {_HINT}") from None
    try:
        out: dict[str, Any] = {}
        for key in ("camera_matrix", "distortion_coefficients", "dist_coeffs"):
            node = fs.getNode(key)
            if not node.empty():
                out[key] = node.mat()
        for key in ("image_width", "image_height"):
            node = fs.getNode(key)
            if not node.empty():
                out[key] = node.real()
        return out
    finally:
        fs.release()


def _from_mapping(data: Any, path: Path) -> Intrinsics:
    if not isinstance(data, dict):
        raise ConfigError(f"intrinsics file {path} holds no key/value mapping; {_HINT}")
    try:
        if "camera_matrix" in data:
            k = np.asarray(data["camera_matrix"], np.float64)
            if k.size != 9:
                raise ConfigError(f"intrinsics file {path}: camera_matrix must have 9 values, got {k.size}")
            k = k.reshape(3, 3)
            fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
        else:
            missing = [key for key in ("fx", "cx", "cy") if key not in data]
            if missing:
                raise ConfigError(f"intrinsics file {path} lacks {', '.join(missing)}; {_HINT}")
            fx = float(data["fx"])
            fy = float(data.get("fy", fx))
            cx, cy = float(data["cx"]), float(data["cy"])
        dist = next((data[k] for k in ("distortion", "dist_coeffs", "distortion_coefficients") if k in data), None)
        dist = () if dist is None else tuple(float(x) for x in np.asarray(dist, np.float64).ravel())
        w = data.get("width", data.get("image_width"))
        h = data.get("height", data.get("image_height"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"intrinsics file {path}: values must be numbers ({exc}); {_HINT}") from None
    if not all(math.isfinite(v) for v in (fx, fy, cx, cy, *dist)):
        raise ConfigError(f"intrinsics file {path}: values must be finite numbers")
    if fx <= 0 or fy <= 0:
        raise ConfigError(f"intrinsics file {path}: fx and fy must be positive pixels, got {fx:g}, {fy:g}")
    if len(dist) not in (0, 4, 5, 8, 12, 14):
        raise ConfigError(f"intrinsics file {path}: distortion needs 4, 5, 8, 12 or 14 OpenCV coefficients "
                          f"(k1, k2, p1, p2[, k3, ...]), got {len(dist)}")
    if (w is None) != (h is None):
        raise ConfigError(f"intrinsics file {path}: give both width and height of the calibration frames, or neither")
    size = None
    if w is not None:
        if float(w) <= 0 or float(h) <= 0:
            raise ConfigError(f"intrinsics file {path}: width and height must be positive, got {w}, {h}")
        size = (int(round(float(w))), int(round(float(h))))
    return Intrinsics(float(fx), float(fy), float(cx), float(cy), dist, size)


class FrameUndistorter:
    """Resamples frames from the calibrated camera to its ideal pinhole
    (:meth:`Intrinsics.ideal`: square pixels, focal ``fx``, same principal point, no
    distortion), with maps built once.

    Args:
        intrinsics: The camera, already scaled to the frame size.
    """

    def __init__(self, intrinsics: Intrinsics) -> None:
        import cv2

        self.intrinsics = intrinsics
        width, height = intrinsics.image_size
        dist = np.asarray(intrinsics.distortion or (0.0, 0.0, 0.0, 0.0), np.float64)
        self._maps = cv2.initUndistortRectifyMap(intrinsics.matrix, dist, None, intrinsics.ideal().matrix,
                                                 (width, height), cv2.CV_16SC2)

    def __call__(self, frame: Frame) -> Frame:
        import cv2

        rgb = cv2.remap(frame.rgb, self._maps[0], self._maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return Frame(frame.index, frame.pts_seconds, rgb)
