"""Landmark lifter: a small network that corrects the detector's relative 3D landmarks.

BlazePose's world landmarks are hip-centred metric points whose depth relief is off by
40-100 mm per keypoint. The focal search reads perspective from that relief (near and
far body parts project with different magnification), so their error becomes focal
error. The lifter maps, per person-frame, the landmarks together with the 2D keypoints
(in the box's frame) to a residual on the 17 COCO body keypoints. It is trained on
synthetic renders with the real detector in the loop (``train/train_lifter.py``); its
weights ship with the package (``models/data/lifter.npz``, float16).

Two networks ship. The pose lifter (``lifter.npz``, on by default) sees the landmarks
and the 2D keypoints; the body is fitted to its output. The 2D keypoints carry the
perspective of the training cameras, so its output carries their focal prior, and the
focal search reads the detector's landmarks. The relief lifter (``relief_lifter.npz``,
opt-in for the focal search) is the same network over the landmarks alone: it corrects
BlazePose's relief without seeing the 2D perspective the search measures. The keypoint
lifter (``keypoint_lifter.npz``) sees the 17 COCO body keypoints in 2D alone and gives
the whole relative 3D pose: it stands in for the landmarks of people too small for
BlazePose (``--detector yolo``), whose base landmarks are zero.

Conventions: landmarks are hip-centred, metres, in the axes of the ray through the
person (x right, y down, z away from the camera); 2D keypoints are pixels with a
confidence; layouts are COCO-23 in and COCO-17 corrected (the feet follow their ankle).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .camera import ray_rotation
from .keypoints import LEFT_HIP, RIGHT_HIP

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "data" / "lifter.npz"
RELIEF_WEIGHTS = Path(__file__).resolve().parent / "data" / "relief_lifter.npz"
KEYPOINT_WEIGHTS = Path(__file__).resolve().parent / "data" / "keypoint_lifter.npz"
INPUTS = ("landmarks+keypoints", "landmarks", "keypoints")
"""What a lifter sees: per COCO-23 keypoint the landmark, the 2D keypoint and its
confidence (6 values), or the landmark alone (3 values); or per COCO-17 body keypoint
the 2D keypoint and its confidence (3 values)."""
_IN_DIMS = {"landmarks+keypoints": 23 * 6, "landmarks": 23 * 3, "keypoints": 17 * 3}

COCO17_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
COCO23_FLIP = COCO17_FLIP + [18, 17, 20, 19, 22, 21]
_LEFT_FOOT, _RIGHT_FOOT = [17, 19, 21], [18, 20, 22]
_LEFT_ANKLE, _RIGHT_ANKLE = 15, 16
_K = 23


def detector_centre(keypoints2d: np.ndarray, bbox_xyxy: np.ndarray) -> np.ndarray:
    """(M, 2) pixel through which the detector looked at each person: the hip midpoint
    (BlazePose centres its region of interest there), else the box centre.

    Args:
        keypoints2d: (M, 23, 3) COCO-23 keypoints, pixels and confidence.
        bbox_xyxy: (M, 4) boxes, pixels.
    """
    hips = 0.5 * (keypoints2d[:, LEFT_HIP, :2] + keypoints2d[:, RIGHT_HIP, :2])
    centre = 0.5 * (bbox_xyxy[:, :2] + bbox_xyxy[:, 2:])
    ok = keypoints2d[:, [LEFT_HIP, RIGHT_HIP], 2].min(1) > 0.3
    return np.where(ok[:, None], hips, centre)


def ray_frame_points(points: np.ndarray, centre: np.ndarray, focal_px: np.ndarray | float,
                     principal_point: np.ndarray) -> np.ndarray:
    """Camera-space points, hip-centred and rotated into the axes of the ray through the
    person (the frame in which the detector reports its landmarks).

    Args:
        points: (M, K, 3) camera-space COCO keypoints (hips at 11, 12), metres.
        centre: (M, 2) pixel the detector looked through (:func:`detector_centre`).
        focal_px: Focal length, pixels: a scalar or (M,).
        principal_point: (2,) or (M, 2) pixels.

    Returns:
        (M, K, 3) float32, metres.
    """
    dt = torch.float64
    pts = torch.as_tensor(points, dtype=dt)
    pts = pts - 0.5 * (pts[:, LEFT_HIP] + pts[:, RIGHT_HIP])[:, None]
    f = torch.as_tensor(np.broadcast_to(np.asarray(focal_px, np.float64), (len(pts),)).copy(), dtype=dt)
    pp = torch.as_tensor(np.broadcast_to(np.asarray(principal_point, np.float64), (len(pts), 2)).copy(), dtype=dt)
    ray = ray_rotation(torch.as_tensor(centre, dtype=dt), f, pp)  # ray axes -> camera axes
    return (pts @ ray).numpy().astype(np.float32)  # rows: p_ray = R^T p_cam


def lifter_features(keypoints2d: np.ndarray, bbox_xyxy: np.ndarray, landmarks3d: np.ndarray,
                    inputs: str = "landmarks+keypoints") -> np.ndarray:
    """Network input per person-frame, (M, 23 * 6) float32, (M, 23 * 3) for
    ``inputs="landmarks"`` or (M, 17 * 3) for ``inputs="keypoints"``.

    Per keypoint: the hip-centred landmark (metres), then (``"landmarks+keypoints"``)
    the 2D keypoint relative to the detector's centre in units of the box height, and
    its confidence. ``"keypoints"``: the 2D keypoint and confidence of the 17 body
    keypoints alone (``landmarks3d`` is not read).

    Args:
        keypoints2d: (M, 23, 3) pixels and confidence.
        bbox_xyxy: (M, 4) pixels.
        landmarks3d: (M, 23, 3) metres.
        inputs: One of :data:`INPUTS`.
    """
    if inputs not in INPUTS:
        raise ValueError(f"lifter inputs must be one of {INPUTS}, not {inputs!r}")
    if inputs != "keypoints":
        lm = landmarks3d - 0.5 * (landmarks3d[:, LEFT_HIP] + landmarks3d[:, RIGHT_HIP])[:, None]
    if inputs == "landmarks":
        return lm.reshape(len(lm), -1).astype(np.float32)
    box_h = np.maximum(bbox_xyxy[:, 3] - bbox_xyxy[:, 1], 1.0)
    uv = (keypoints2d[..., :2] - detector_centre(keypoints2d, bbox_xyxy)[:, None]) / box_h[:, None, None]
    conf = keypoints2d[..., 2:3]
    if inputs == "keypoints":
        return np.concatenate([uv, conf], -1)[:, :17].reshape(len(uv), -1).astype(np.float32)
    return np.concatenate([lm, uv, conf], -1).reshape(len(lm), -1).astype(np.float32)


_BONES = [(5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16), (5, 11), (6, 12), (5, 6), (11, 12)]


def body_size(points: np.ndarray) -> np.ndarray:
    """(M,) sum of the limb, trunk, shoulder and hip lengths of (M, >=17, 3) COCO
    points, metres."""
    a, b = zip(*_BONES)
    return np.linalg.norm(points[:, list(a)] - points[:, list(b)], axis=-1).sum(-1)


def mirror_features(x: torch.Tensor) -> torch.Tensor:
    """Features of the mirror image (x -> -x, left and right swapped), for any of
    :data:`INPUTS` ((M, 23 * 6), (M, 23 * 3) or (M, 17 * 3))."""
    if x.shape[1] == _IN_DIMS["keypoints"]:
        x = x.view(len(x), 17, 3)[:, COCO17_FLIP].clone()
        x[..., 0] = -x[..., 0]
        return x.view(len(x), -1)
    channels = x.shape[1] // _K
    x = x.view(len(x), _K, channels)[:, COCO23_FLIP].clone()
    x[..., 0] = -x[..., 0]
    if channels == 6:
        x[..., 3] = -x[..., 3]
    return x.view(len(x), -1)


class LandmarkLifter(nn.Module):
    """MLP with residual blocks: features -> (M, 17, 3) residual on the landmarks, metres.

    Args:
        in_dim: Feature size (``23 * 6``; ``23 * 3`` for the landmarks alone, ``17 * 3``
            for the 2D keypoints alone).
        width: Hidden width.
        blocks: Residual blocks.
        dropout: Dropout in training.
    """

    def __init__(self, in_dim: int = _K * 6, width: int = 256, blocks: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        inputs = {d: name for name, d in _IN_DIMS.items()}
        if in_dim not in inputs:
            raise ValueError(f"lifter input size must be one of {sorted(inputs)}, not {in_dim}")
        self.in_dim, self.width, self.blocks = in_dim, width, blocks
        self.inputs = inputs[in_dim]
        self.inp = nn.Linear(in_dim, width)
        self.hidden = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, width), nn.ReLU(),
                          nn.Dropout(dropout)) for _ in range(blocks))
        self.out = nn.Linear(width, 17 * 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        for block in self.hidden:
            h = h + block(h)
        return self.out(h).view(len(x), 17, 3)

    keep_size: bool = False
    """Rescale each corrected pose to the size of the landmarks it corrects (the sum of
    its bone lengths, :func:`body_size`): the correction then moves the parts relative
    to each other and leaves the detector's metric size. For real footage unlike the
    training renders (people seen from above at about 100 px), whose corrected poses
    come out about a quarter smaller than BlazePose's (docs/yolo.md)."""

    def correct(self, keypoints2d: np.ndarray, bbox_xyxy: np.ndarray, landmarks3d: np.ndarray) -> np.ndarray:
        """Corrected hip-centred landmarks, (M, 23, 3) float32 metres (feet moved with
        their ankle; sized as the landmarks given with :attr:`keep_size`). A keypoint
        lifter is given zero landmarks: its output is the pose."""
        lm = landmarks3d - 0.5 * (landmarks3d[:, LEFT_HIP] + landmarks3d[:, RIGHT_HIP])[:, None]
        if len(lm) == 0:
            return lm.astype(np.float32)
        self.eval()
        with torch.no_grad():
            delta = self(torch.as_tensor(lifter_features(keypoints2d, bbox_xyxy, landmarks3d, self.inputs))).numpy()
        out = lm.astype(np.float32).copy()
        out[:, :17] += delta
        out[:, _LEFT_FOOT] += delta[:, None, _LEFT_ANKLE]
        out[:, _RIGHT_FOOT] += delta[:, None, _RIGHT_ANKLE]
        if self.keep_size and self.inputs != "keypoints":
            out *= (body_size(lm) / np.maximum(body_size(out), 1e-6))[:, None, None]
        return out

    def save(self, path: str | Path) -> None:
        """Writes the weights as float16 with the architecture, npz."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: v.detach().numpy().astype(np.float16) for k, v in self.state_dict().items()}
        np.savez_compressed(path, _arch=np.array([self.in_dim, self.width, self.blocks]), **arrays)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_WEIGHTS) -> "LandmarkLifter":
        """Reads weights written by :meth:`save`.

        Raises:
            FileNotFoundError: No such file.
            ValueError: The file is not lifter weights.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"lifter weights not found: {path}")
        with np.load(path) as data:
            if "_arch" not in data.files:
                raise ValueError(f"{path} is not a landmark lifter file (no _arch entry)")
            in_dim, width, blocks = (int(v) for v in data["_arch"])
            model = cls(in_dim, width, blocks)
            state = {k: torch.as_tensor(data[k].astype(np.float32)) for k in data.files if k != "_arch"}
        model.load_state_dict(state)
        return model.eval()
