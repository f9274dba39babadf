"""Perception with ultralytics YOLO pose (``--detector yolo``, the ``yolo`` extra).

YOLO pose finds every person of a frame in one pass, boxes and COCO-17 keypoints, on a
CPU or a CUDA GPU, down to players 30-60 px tall in a wide shot (at ``imgsz`` 1280).
The estimator reads more than that: relative 3D landmarks. Where a person is at least
``landmarks_min_px`` tall, BlazePose on that person's crop gives them (with its 33
keypoints), as in the default path; smaller people, and those whose crop BlazePose
reads as someone else, get the keypoint lifter's 3D pose from their 2D keypoints
(:class:`~meshstream.models.lifter.LandmarkLifter` with ``keypoints`` inputs). Each
detection says which in ``Detections.lifted``. No masks (the silhouette term is off).

ultralytics is AGPL-3.0 and downloads its weights on first use; the default install
never imports it. Weights: a name ultralytics knows (``yolo11n-pose.pt``, fetched to its
weights folder once), a local ``.pt`` file, or a model ``.yaml`` (an untrained network:
for tests, or training your own).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from meshstream.stream.errors import ConfigError, MissingExtraError, ModelFileError
from meshstream.stream.messages import Detections, Frame

from .keypoints import coco23_to_blazepose33

INSTALL = "pip install -e '.[yolo]' (ultralytics, AGPL-3.0; torch 2.14.1 with torchvision 0.29.1)"
_TORSO_COCO = [5, 6, 11, 12]  # shoulders, hips
_TORSO_BLAZE = [11, 12, 23, 24]


def _import_yolo():
    try:
        from ultralytics import YOLO
    except ImportError as exc:
        raise MissingExtraError(f"--detector yolo needs ultralytics, which is not installed ({exc.name or exc}): "
                                f"{INSTALL}") from None
    return YOLO


def resolve_device(device: str) -> str:
    """``"auto"`` to ``"cuda:0"`` where CUDA is available, else ``"cpu"``; others as given.

    Raises:
        ConfigError: CUDA asked for where torch sees none, or an unknown device.
    """
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:") and device[5:].isdigit():
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: torch {torch.__version__} sees no CUDA GPU here; use --device cpu")
        return device
    raise ConfigError(f"--device {device}: give auto, cpu, cuda or cuda:N")


def load_pose_model(weights: str):
    """The ultralytics model of ``weights``, checked to be a pose model.

    Raises:
        ModelFileError: a path that does not exist, a download that cannot happen
            (offline, ``YOLO_OFFLINE``), a file that is not a YOLO model, or a model of
            another task (a detector, a segmenter).
        MissingExtraError: ultralytics is not installed.
    """
    yolo = _import_yolo()
    path = Path(weights).expanduser()
    local = path.exists() or path.parent != Path(".") or path.suffix not in (".pt", ".yaml", ".yml")
    if local and not path.is_file():
        raise ModelFileError(f"--weights {weights}: no such file; give a YOLO pose .pt file, or a name such as "
                             "yolo11n-pose.pt that ultralytics downloads on first use")
    if path.suffix not in (".pt", ".yaml", ".yml"):
        raise ModelFileError(f"--weights {weights}: not a YOLO model file; give PyTorch weights (.pt) or a model "
                             ".yaml")
    if not local and path.suffix == ".pt" and os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true"):
        cached = _cached_weights(path.name)
        if cached is None:
            raise ModelFileError(f"--weights {weights}: not downloaded yet and YOLO_OFFLINE is set; download it once "
                                 "online (unset YOLO_OFFLINE) or give the path of a local .pt file")
        path, local = cached, True
    try:
        model = yolo(str(path if local else weights))
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise ModelFileError(f"--weights {weights}: could not be downloaded ({type(exc).__name__}); connect once "
                             "to fetch it, or give the path of a local .pt file") from None
    except Exception as exc:  # noqa: BLE001 - ultralytics raises many kinds on a bad file
        raise ModelFileError(f"--weights {weights}: not a YOLO model ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if model.task != "pose":
        raise ModelFileError(f"--weights {weights}: a {model.task} model; --detector yolo needs a pose model, "
                             "such as yolo11n-pose.pt")
    return model


def _cached_weights(name: str) -> Path | None:
    """Where ultralytics keeps downloaded weights, if ``name`` is there."""
    from ultralytics.utils import SETTINGS

    for folder in (Path(SETTINGS.get("weights_dir", "")), Path.cwd()):
        if (folder / name).is_file():
            return folder / name
    return None


class YoloPoseDetector:
    """ultralytics YOLO pose on whole frames: ``rgb -> (boxes, scores, keypoints)``.

    Args:
        weights: See :func:`load_pose_model`.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        imgsz: Inference size, pixels (the longer side).
        conf: Minimum detection confidence.
        max_persons: Most persons returned, best first.
    """

    def __init__(self, weights: str = "yolo11n-pose.pt", *, device: str = "auto", imgsz: int = 640,
                 conf: float = 0.25, max_persons: int = 50) -> None:
        self.device = resolve_device(device)
        self.model = load_pose_model(weights)
        self.imgsz, self.conf, self.max_persons = imgsz, conf, max_persons

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """People in one frame.

        Args:
            rgb: (H, W, 3) uint8 image.

        Returns:
            boxes: (N, 4) float32 xyxy pixels.
            scores: (N,) float32 confidence.
            keypoints: (N, 17, 3) float32 COCO-17 x, y pixels and visibility.
        """
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # ultralytics reads numpy images as OpenCV's BGR
        result = self.model.predict(bgr, imgsz=self.imgsz, conf=self.conf, device=self.device,
                                    max_det=self.max_persons, classes=[0], verbose=False)[0]
        boxes = result.boxes.xyxy.cpu().numpy().astype(np.float32).reshape(-1, 4)
        scores = result.boxes.conf.cpu().numpy().astype(np.float32).reshape(-1)
        if result.keypoints is None or len(boxes) == 0:
            return boxes, scores, np.zeros((len(boxes), 17, 3), np.float32)
        kps = result.keypoints.data.cpu().numpy().astype(np.float32).reshape(len(boxes), 17, -1)
        if kps.shape[-1] == 2:  # a model trained without visibility
            kps = np.concatenate([kps, np.ones_like(kps[..., :1])], -1)
        return boxes, scores, kps


class YoloPerceiver:
    """Perception stage: ``Frame -> Detections`` in the ``blazepose33`` layout, from YOLO.

    Args:
        detector: Boxes and COCO-17 keypoints per frame (:class:`YoloPoseDetector`).
        landmarker: BlazePose on a person's crop, ``(rgb, box) -> Detections | None``
            (:class:`~meshstream.models.perception.CropLandmarker`), or ``None``: every
            person gets the keypoint lifter's pose.
        lifter: The keypoint lifter (``keypoints`` inputs).
        landmarks_min_px: Box height from which the crop landmarker is asked, pixels.
        agree: A crop's BlazePose torso must lie within this fraction of the box
            height of YOLO's to be taken as the same person.
    """

    layout = "blazepose33"

    def __init__(self, detector, landmarker, lifter, *, landmarks_min_px: float = 100.0, agree: float = 0.15) -> None:
        if lifter.inputs != "keypoints":
            raise ValueError(f"YoloPerceiver needs a keypoint lifter, not one with {lifter.inputs!r} inputs")
        self.detector, self.landmarker, self.lifter = detector, landmarker, lifter
        self.landmarks_min_px, self.agree = landmarks_min_px, agree

    def reset(self) -> None:
        """Nothing is carried between frames."""

    def close(self) -> None:
        if self.landmarker is not None:
            self.landmarker.close()

    def __call__(self, frame: Frame) -> Detections:
        boxes, scores, kps = self.detector(frame.rgb)
        return self.assemble(frame.rgb, boxes, scores, kps)

    def assemble(self, rgb: np.ndarray, boxes: np.ndarray, scores: np.ndarray, kps: np.ndarray) -> Detections:
        """Detections from YOLO's people of one frame (see the class).

        Args:
            rgb: (H, W, 3) uint8 frame.
            boxes: (N, 4) xyxy pixels.
            scores: (N,) confidence.
            kps: (N, 17, 3) COCO-17 pixels and visibility.
        """
        n = len(boxes)
        keypoints = coco23_to_blazepose33(kps.astype(np.float32))
        landmarks = np.zeros((n, 33, 3), np.float32)
        from_lifter = np.ones(n, bool)
        heights = boxes[:, 3] - boxes[:, 1]
        for i in np.nonzero(heights >= self.landmarks_min_px)[0] if self.landmarker is not None else []:
            dets = self.landmarker(rgb, boxes[i])
            if dets is None:
                continue
            torso = dets.keypoints[0, _TORSO_BLAZE, :2]
            if np.linalg.norm(torso - kps[i, _TORSO_COCO, :2], axis=1).mean() > self.agree * heights[i]:
                continue  # BlazePose found someone else in the crop (a neighbour in front)
            keypoints[i], landmarks[i], from_lifter[i] = dets.keypoints[0], dets.landmarks3d[0], False
        if from_lifter.any():
            small = kps[from_lifter].astype(np.float32)
            pose = self.lifter.correct(np.concatenate([small, np.zeros((len(small), 6, 3), np.float32)], 1),
                                       boxes[from_lifter], np.zeros((len(small), 23, 3), np.float32))
            pose -= 0.5 * (pose[:, 11] + pose[:, 12])[:, None]  # hip-centred, as a landmarker's
            landmarks[from_lifter] = coco23_to_blazepose33(pose)
        return Detections(xyxy=boxes.astype(np.float32), score=scores.astype(np.float32), keypoints=keypoints,
                          keypoint_layout=self.layout, landmarks3d=landmarks, lifted=from_lifter)
