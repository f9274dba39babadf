"""Small people offline: BlazePose's landmark network run directly on a person's crop,
and contrast blobs to propose where those crops go.

MediaPipe's PoseLandmarker first finds a person with its detector, which keys on the
face, and only then runs its landmark network on that person's region. On people under
about 90 px tall the detector fails even on a crop centred on them: on three validation
wide shots (``bench/sports.py`` seeds 996000-996002, every 8th frame) a crop around the
true box of each person found 9 % of those 40-60 px tall and 33 % of those 60-90 px
tall. The landmark network alone, on the same crops, placed every one of them (its
keypoints' box overlapping the true box by IoU >= 0.5), with a pose flag of at least
0.93 for nine in ten, and 0.00 on crops of empty grass. MediaPipe itself runs the
network alone between frames, on the region of the previous frame's landmarks; this
module does the same on any region: a tracked person's box, or a blob of contrast.

Conventions: images (H, W, 3) uint8 RGB; boxes xyxy pixels; keypoints in the
``blazepose33`` layout; world landmarks in metres, hip-centred, axes as MediaPipe's
(x right, y down, z away from the camera).
"""

from __future__ import annotations

import numpy as np

from meshstream.stream.messages import Detections

from .detections import keypoints_box, square_crop
from .mediapipe_bundle import pose_landmark_model

_INPUT_PX = 256  # the network's input side
_N_POSE = 33  # BlazePose's landmarks; the network's last 6 of 39 describe the region
_CROP_SCALE = 1.25  # crop side over the box's longer side (MediaPipe's region scale)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


class PoseLandmarkNet:
    """BlazePose GHUM "full" landmark network on one person's square crop, through
    LiteRT: ``(rgb, box) -> Detections | None``.

    The crop is axis-aligned (MediaPipe turns it so that the hips lie below the
    shoulders; here a person is taken to be upright), centred on the box, of side 1.25
    times the box's longer side, resized to 256 x 256 with values in [0, 1]. The network
    gives 39 landmarks (x, y in crop pixels, z, visibility and presence logits), a pose
    flag (the probability that the crop holds a person), a 256 x 256 segmentation logit
    map and 39 world landmarks. MediaPipe also sharpens the landmarks with the network's
    heatmap; that step is left out (on a 334 px tall person the landmarks come within
    2.3 px of the PoseLandmarker's, median).

    Args:
        min_flag: Least pose flag to accept a person a proposal found.
        track_flag: Least pose flag to accept a person in a region given as theirs (a
            tracked person's box; MediaPipe keeps tracking at 0.5).
        min_pose_score: Least landmark presence (median of shoulders and hips) to accept.
        masks: Whether to return segmentation masks.
        max_drift: Most a proposal's keypoints may move, over the person's height, when
            the network looks again centred on them (see :meth:`search`).
        num_threads: LiteRT CPU threads.

    Raises:
        ModelFileError: The mediapipe wheel lacks the landmark model.
    """

    def __init__(self, *, min_flag: float = 0.8, track_flag: float = 0.5, min_pose_score: float = 0.2,
                 masks: bool = True, max_drift: float = 0.035, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._net = Interpreter(model_path=str(pose_landmark_model()), num_threads=num_threads)
        self._net.allocate_tensors()
        self._input = self._net.get_input_details()[0]["index"]
        out = {d["name"]: d["index"] for d in self._net.get_output_details()}
        self._landmarks, self._flag = out["Identity"], out["Identity_1"]
        self._segmentation, self._world = out["Identity_2"], out["Identity_4"]
        self.min_flag = min_flag
        self.track_flag = track_flag
        self.min_pose_score = min_pose_score
        self.masks = masks
        self.max_drift = max_drift

    def __call__(self, rgb: np.ndarray, box: np.ndarray) -> Detections | None:
        """The person in the crop around ``box`` ((4,) xyxy pixels), in frame pixels, or
        ``None`` where the crop holds nobody (pose flag under ``track_flag``, or presence
        too low)."""
        cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
        side = _CROP_SCALE * max(box[2] - box[0], box[3] - box[1])
        return self._accepted(rgb, self._infer(rgb, cx, cy, side))

    def search(self, rgb: np.ndarray, box: np.ndarray) -> Detections | None:
        """The person a proposal ``box`` ((4,) xyxy pixels) belongs to, or ``None``.

        A proposal may be a whole person or only their upper half (a shirt and head over
        legs the colour of the ground): the network looks at both crops, keeps the one
        it is surer of, and looks again around the keypoints it found there. A person's
        keypoints stay where they were when the crop is centred on them; on texture the
        network took for a person (its pose flag alone is no person detector: on crops of
        an ornate façade it passed 0.8 on one crop in eight) they move: the second
        look must move them by at most ``max_drift`` of the person's height (median over
        the keypoints; people of validation wide shots 0.010, 0.021 at the 90th
        percentile; the façade's false people 0.091, 0.049 at the 10th).
        """
        x0, y0, x1, y1 = (float(v) for v in box)
        w, h = x1 - x0, y1 - y0
        whole = self._infer(rgb, 0.5 * (x0 + x1), 0.5 * (y0 + y1), _CROP_SCALE * max(w, h))
        upper = self._infer(rgb, 0.5 * (x0 + x1), y0 + h, _CROP_SCALE * 2.0 * h)
        best = max(whole, upper, key=lambda r: r["flag"])
        if best["flag"] < self.min_flag:
            return None
        box = keypoints_box(best["xy"], best["visibility"], rgb.shape[1], rgb.shape[0])
        again = self._infer(rgb, 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3]),
                            _CROP_SCALE * max(box[2] - box[0], box[3] - box[1]))
        drift = float(np.median(np.linalg.norm(again["xy"] - best["xy"], axis=1))) / max(box[3] - box[1], 1.0)
        if again["flag"] < self.min_flag or drift > self.max_drift:
            return None
        return self._accepted(rgb, again)

    def _infer(self, rgb: np.ndarray, cx: float, cy: float, side: float) -> dict:
        side = max(side, 8.0)
        s = _INPUT_PX / side
        crop, affine = square_crop(rgb, cx, cy, side, _INPUT_PX)
        self._net.set_tensor(self._input, (crop[None].astype(np.float32) / 255.0))
        self._net.invoke()
        raw = self._net.get_tensor(self._landmarks).reshape(-1, 5)[:_N_POSE]
        xy = (raw[:, :2] - affine[:, 2]) / s
        return {"affine": affine, "scale": s, "xy": xy, "visibility": _sigmoid(raw[:, 3]),
                "presence": _sigmoid(raw[:, 4]), "flag": float(self._net.get_tensor(self._flag).reshape(-1)[0]),
                "world": self._net.get_tensor(self._world).reshape(-1, 3)[:_N_POSE].copy()}

    def _accepted(self, rgb: np.ndarray, r: dict) -> Detections | None:
        import cv2

        h, w = rgb.shape[:2]
        score = float(np.median(r["presence"][[11, 12, 23, 24]]))
        if r["flag"] < self.track_flag or score < self.min_pose_score:
            return None
        xy = r["xy"]
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
        conf = np.where(inside, r["visibility"], 0.0)
        kps = np.concatenate([xy, conf[:, None]], 1)[None]
        mask = None
        if self.masks:
            logits = self._net.get_tensor(self._segmentation).reshape(_INPUT_PX, _INPUT_PX).astype(np.float32)
            inv = cv2.invertAffineTransform(r["affine"])
            mask = (cv2.warpAffine(logits, inv, (w, h), flags=cv2.INTER_LINEAR, borderValue=-1.0) > 0.0)[None]
        return Detections(xyxy=keypoints_box(xy, conf, w, h)[None], score=np.array([score]), keypoints=kps,
                          keypoint_layout="blazepose33", landmarks3d=r["world"][None], masks=mask)


def contrast_blobs(rgb: np.ndarray, *, contrast: float = 8.0, max_blobs: int = 32) -> np.ndarray:
    """Proposals for small upright people: blobs where a frame stands out from its local
    background (a player on grass, a walker on a square). Only proposals: many are parts
    of people or no people at all; :meth:`PoseLandmarkNet.search` decides.

    At 360 rows (frames taller are shrunk): the Lab colour distance of each pixel to
    the median of a 41 px window around it (wider than a small person), blurred; pixels
    more than ``contrast`` robust standard deviations above the frame's median distance;
    an opening with a vertical line of 7 rows removes thin, near-horizontal marks (pitch
    lines), a closing with 9 rows joins head, shirt and legs; connected components at
    least 8 rows tall, taller than 0.8 of their width and at most six times it, filled at
    least 15 %. On three validation wide shots (seeds 996000-996002) a blob's centre lay
    in 90-97 % of the people 40-130 px tall, with 15 blobs a frame.

    Args:
        rgb: (H, W, 3) uint8 RGB frame.
        contrast: Threshold over the median distance, in robust standard deviations.
        max_blobs: Most proposals returned, largest first.

    Returns:
        (N, 4) float32 boxes, xyxy frame pixels.
    """
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, 360.0 / h)
    small = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    lab = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2Lab)
    background = np.stack([cv2.medianBlur(np.ascontiguousarray(lab[..., c]), 41) for c in range(3)], -1)
    dist = np.sqrt(((lab.astype(np.float32) - background.astype(np.float32)) ** 2).sum(-1))
    dist = cv2.GaussianBlur(dist, (3, 3), 0)
    med = float(np.median(dist))
    sigma = 1.4826 * float(np.median(np.abs(dist - med))) + 1e-3
    fg = (dist > med + contrast * sigma).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((7, 1), np.uint8))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((9, 3), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    x, y, bw, bh, area = (stats[1:, i].astype(np.float64) for i in range(5))
    keep = (bh >= 8) & (bh <= 0.6 * small.shape[0]) & (bh >= 0.8 * bw) & (bh <= 6 * bw) & (area >= 0.15 * bw * bh)
    order = np.argsort(-area[keep], kind="stable")[:max_blobs]
    boxes = np.stack([x, y, x + bw, y + bh], 1)[keep][order] / scale
    return boxes.astype(np.float32).reshape(-1, 4)
