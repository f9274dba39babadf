"""Builds MediaPipe's PoseLandmarker ``.task`` bundle from the models inside the wheel.

``mediapipe==0.10.14`` ships the BlazePose GHUM "full" detector and landmark models as
plain tflite files (for its legacy solution API). The Tasks ``PoseLandmarker`` wants a
``.task`` zip whose landmark model carries image-normalisation metadata. This module
adds that metadata and zips both models, once, into a cache directory. Nothing is
downloaded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from meshstream.stream.errors import ModelFileError

_DETECTOR = "modules/pose_detection/pose_detection.tflite"
_LANDMARKER = "modules/pose_landmark/pose_landmark_full.tflite"


def default_cache_dir() -> Path:
    """``$MESHSTREAM_CACHE`` or ``~/.cache/meshstream``."""
    return Path(os.environ.get("MESHSTREAM_CACHE", Path.home() / ".cache" / "meshstream"))


def _model_file(relative: str) -> Path:
    import mediapipe

    path = Path(mediapipe.__file__).parent / relative
    if not path.is_file():
        raise ModelFileError(
            f"MediaPipe model {path} is missing; reinstall with: pip install --force-reinstall mediapipe==0.10.14"
        )
    return path


def pose_landmark_model() -> Path:
    """Path of BlazePose's "full" landmark network (``pose_landmark_full.tflite``) inside
    the mediapipe wheel, for running it directly (:mod:`~meshstream.models.landmark_net`).

    Raises:
        ModelFileError: The wheel lacks the file.
    """
    return _model_file(_LANDMARKER)


def pose_landmarker_bundle(cache_dir: str | Path | None = None) -> Path:
    """Path of the PoseLandmarker bundle, building it if needed.

    Args:
        cache_dir: Where to keep the bundle (default :func:`default_cache_dir`).

    Returns:
        Path to ``pose_landmarker_full_<hash>.task``.

    Raises:
        ModelFileError: The wheel lacks the tflite files, or the cache is not writable.
    """
    det_path, lm_path = _model_file(_DETECTOR), _model_file(_LANDMARKER)
    detector = det_path.read_bytes()
    landmarker = lm_path.read_bytes()
    digest = hashlib.sha1(detector + landmarker).hexdigest()[:12]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = cache / f"pose_landmarker_full_{digest}.task"
    if out.is_file():
        return out
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, model_asset_bundle_utils

    writer = metadata_writer.MetadataWriter.create(bytearray(landmarker))
    writer.add_image_input(norm_mean=[0.0], norm_std=[255.0])
    for name in ("landmarks", "presence", "segmentation", "heatmap", "world_landmarks"):
        writer.add_feature_output(name=name)
    landmarker_with_metadata, _ = writer.populate()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        model_asset_bundle_utils.create_model_asset_bundle(
            {"pose_detector.tflite": detector, "pose_landmarks_detector.tflite": bytes(landmarker_with_metadata)},
            str(tmp),
        )
        os.replace(tmp, out)
    except OSError as exc:
        raise ModelFileError(
            f"cannot write the MediaPipe bundle to {cache} ({exc.strerror}); set MESHSTREAM_CACHE to a writable folder"
        ) from exc
    return out
