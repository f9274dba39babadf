"""Person perception: boxes, BlazePose-33 keypoints, relative 3D landmarks and masks.

Backend (offline, CPU, shipped in packages): MediaPipe's PoseLandmarker (BlazePose GHUM
"full", bundled from the ``mediapipe`` wheel) on the whole frame finds large people;
OpenCV's HOG people detector proposes boxes for small or far people, and each box not
already explained is cropped, resized and sent through the landmarker on its own
(the landmarker's detector misses people under ~1/4 of the frame height). Boxes of the
previous frame are re-used as crops between HOG runs, as BlazePose itself does. With
``small_people``, contrast blobs are searched with BlazePose's landmark network alone
(:mod:`~meshstream.models.landmark_net`), which also follows people between HOG runs.
"""

from __future__ import annotations

import contextlib

import numpy as np

from meshstream.stream.messages import Detections, Frame

from .detections import box_iou, keypoints_box, square_crop
from .landmark_net import PoseLandmarkNet, contrast_blobs
from .mediapipe_bundle import pose_landmarker_bundle


def _quiet_mediapipe_logs() -> None:
    import os
    import warnings

    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)


@contextlib.contextmanager
def native_stderr_silenced():
    """Silences native (C++) logging on file descriptor 2 while MediaPipe builds its
    graphs: it prints EGL and TFLite notices that are not errors. Python-level errors
    still raise normally."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class HogPeopleDetector:
    """OpenCV's HOG + linear SVM pedestrian detector (ships inside OpenCV).

    Args:
        max_side: Frames are downscaled so that their longer side is at most this
            (pixels) before detection, for speed.
        min_score: Minimum SVM score to keep a box.
    """

    def __init__(self, max_side: int = 800, min_score: float = 0.3) -> None:
        import cv2

        if not hasattr(cv2, "HOGDescriptor"):
            raise RuntimeError(
                "this OpenCV build has no HOGDescriptor; install opencv-contrib-python==4.14.0.94"
            )
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.max_side = max_side
        self.min_score = min_score

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detects people.

        Args:
            rgb: (H, W, 3) uint8 image.

        Returns:
            boxes: (N, 4) float32 xyxy pixels in the input image.
            scores: (N,) float32 SVM scores.
        """
        import cv2

        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        # OpenCV's HOG crashes on images smaller than its 64x128 window (plus padding).
        scale = max(scale, 144 / h, 80 / w)
        if scale != 1.0:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            img = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=interp)
        else:
            img = rgb
        rects, weights = self._hog.detectMultiScale(img, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        rects = np.asarray(rects, np.float32) / scale
        weights = np.asarray(weights, np.float32).reshape(-1)
        keep = weights >= self.min_score
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], 1)[keep]
        return boxes, weights[keep]


class PersonPerceiver:
    """Perception stage: ``Frame -> Detections`` in the ``blazepose33`` layout.

    Args:
        max_persons: Most persons the whole-frame landmarker returns.
        detect_every: Run the HOG detector on every n-th frame (1 = every frame); in
            between, the previous frame's boxes are the crop proposals.
        use_hog: Whether to look for small people with HOG at all.
        crop_size: Side of the square crop sent to the landmarker, pixels.
        min_pose_score: Minimum landmark presence to accept a pose.
        masks: Whether to return segmentation masks.
        cache_dir: Where the MediaPipe bundle is built (see ``mediapipe_bundle``).
        tile_px: On the frames HOG runs on, also look for people in overlapping square
            tiles of this side, and of twice, four times... it up to the frame's
            shorter side (stride two thirds of a side), each resized to ``crop_size``:
            the landmarker's detector finds people down to about a quarter of its
            input's height, so tiles find people down to about ``tile_px / 4`` tall,
            and the larger ones those the small tiles cut (0: no tiles).
        small_people: Whether to look for people too small for BlazePose's detector
            (under about 90 px tall): on the frames HOG runs on, contrast blobs not
            already explained are searched with BlazePose's landmark network alone
            (:class:`~meshstream.models.landmark_net.PoseLandmarkNet`), which also
            follows every person between those frames, the PoseLandmarker trying a
            crop only where the network finds nobody.
    """

    layout = "blazepose33"

    def __init__(
        self,
        *,
        max_persons: int = 4,
        detect_every: int = 5,
        use_hog: bool = True,
        crop_size: int = 256,
        min_pose_score: float = 0.2,
        masks: bool = True,
        cache_dir: str | None = None,
        tile_px: int = 0,
        small_people: bool = False,
    ) -> None:
        _quiet_mediapipe_logs()
        from mediapipe.tasks.python import BaseOptions, vision

        bundle = str(pose_landmarker_bundle(cache_dir))

        def make(mode, num_poses: int):
            opts = vision.PoseLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=bundle),
                running_mode=mode,
                num_poses=num_poses,
                min_pose_detection_confidence=0.5,
                min_pose_presence_confidence=min_pose_score,
                output_segmentation_masks=masks,
            )
            with native_stderr_silenced():
                return vision.PoseLandmarker.create_from_options(opts)

        self._make = make
        self._vision = vision
        self._full = None  # VIDEO mode, made by reset()
        self._image = make(vision.RunningMode.IMAGE, max_persons)
        self._crop = CropLandmarker(crop_size=crop_size, min_pose_score=min_pose_score, masks=masks,
                                    cache_dir=cache_dir)
        self._hog = HogPeopleDetector() if use_hog else None
        self._net = PoseLandmarkNet(min_pose_score=min_pose_score, masks=masks) if small_people else None
        self.max_persons = max_persons
        self.detect_every = max(1, int(detect_every))
        self.crop_size = crop_size
        self.min_pose_score = min_pose_score
        self.masks = masks
        self.tile_px = int(tile_px)
        self.reset()

    def reset(self) -> None:
        """Forgets the previous frames (new clip or shot): VIDEO mode keeps its own
        tracking state and needs increasing timestamps, so it starts afresh."""
        self._regions = np.zeros((0, 4), np.float32)
        self._frames_seen = 0
        self._last_ts_ms = -1
        if self._full is not None:
            self._full.close()
        self._full = self._make(self._vision.RunningMode.VIDEO, self.max_persons)

    def close(self) -> None:
        self._full.close()
        self._image.close()
        self._crop.close()

    def __call__(self, frame: Frame) -> Detections:
        import mediapipe as mp

        h, w = frame.height, frame.width
        ts_ms = max(int(round(frame.pts_seconds * 1000)), self._last_ts_ms + 1)
        self._last_ts_ms = ts_ms
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame.rgb))
        result = self._full.detect_for_video(image, ts_ms)
        parts = [self._to_detections(result, (h, w))]
        proposals = [self._regions]
        # Search on every ``detect_every``-th frame, and on any frame where neither the whole
        # frame nor the previous frame's people give anyone: the whole-frame detector misses
        # some poses for many frames on end.
        searching = self._frames_seen % self.detect_every == 0 or not (len(parts[0]) or len(self._regions))
        if searching:
            if len(parts[0]):
                # MediaPipe's detector returns the most salient person; paint the ones
                # found over and look again, for people beside or behind them.
                again = self._detect_painted_out(frame.rgb, parts[0].xyxy)
                if len(again):
                    parts.append(again)
            if self._hog is not None:
                proposals.append(self._hog(frame.rgb)[0])
            if self.tile_px:
                parts.extend(self._detect_in_tiles(frame.rgb))
        self._frames_seen += 1
        candidates = np.concatenate(proposals) if proposals else np.zeros((0, 4), np.float32)
        candidates = _nms_boxes(candidates, 0.5)
        for box in candidates:
            taken = np.concatenate([p.xyxy for p in parts])
            if len(taken) and box_iou(box[None], taken).max() > 0.6:
                continue  # already explained; a neighbour beside someone is still looked at
            dets = None
            if self._net is not None and len(self._regions) and box_iou(box[None], self._regions).max() > 0.9:
                dets = self._net(frame.rgb, box)  # a person followed from the previous frame
            if dets is None:
                dets = self._crop(frame.rgb, box)
            if dets is not None:
                parts.append(dets)
        if searching and self._net is not None:
            parts.extend(self._find_small_people(frame.rgb, parts))
        dets = Detections.concatenate(parts)
        dets = dets[_same_person_suppression(dets)]
        self._regions = _expand(dets.xyxy, 1.1, w, h)
        return dets

    def _find_small_people(self, rgb: np.ndarray, parts: list[Detections]) -> list[Detections]:
        """People at contrast blobs whose centre no detection's box holds yet."""
        taken = [p.xyxy for p in parts if len(p)]
        found = []
        for box in contrast_blobs(rgb):
            cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
            if any(((b[:, 0] <= cx) & (cx <= b[:, 2]) & (b[:, 1] <= cy) & (cy <= b[:, 3])).any() for b in taken):
                continue
            dets = self._net.search(rgb, box)
            if dets is not None:
                found.append(dets)
                taken.append(dets.xyxy)
        return found

    def _detect_painted_out(self, rgb: np.ndarray, boxes: np.ndarray) -> Detections:
        import mediapipe as mp

        painted = rgb.copy()
        fill = rgb.reshape(-1, 3).mean(0).astype(np.uint8)
        h, w = rgb.shape[:2]
        for x0, y0, x1, y1 in _expand(boxes, 0.9, w, h).astype(int):
            painted[y0:y1, x0:x1] = fill
        result = self._image.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=painted))
        return self._to_detections(result, (h, w))

    def _detect_in_tiles(self, rgb: np.ndarray) -> list[Detections]:
        """People in overlapping square tiles of ``tile_px``, twice that, four times...
        up to the frame's shorter side (see the class); a pose that reaches a tile's inner
        edge is left to the tile beside it or the next size up."""
        import cv2
        import mediapipe as mp

        h, w = rgb.shape[:2]
        found = []
        sides = [self.tile_px * 2**k for k in range(8) if self.tile_px * 2**k < min(h, w)]
        for side in sides:
            s = self.crop_size / side
            margin = 0.02 * side
            for y0, x0 in _tile_origins(side, h, w):
                affine = np.array([[s, 0, -s * x0], [0, s, -s * y0]], np.float64)
                tile = cv2.resize(np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side]),
                                  (self.crop_size, self.crop_size), interpolation=cv2.INTER_LINEAR)
                result = self._image.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=tile))
                dets = landmarker_detections(result, affine, s, (self.crop_size, self.crop_size), (h, w),
                                             masks=self.masks, min_pose_score=self.min_pose_score)
                box = dets.xyxy
                inner = (((box[:, 0] > x0 + margin) | (x0 == 0)) & ((box[:, 1] > y0 + margin) | (y0 == 0))
                         & ((box[:, 2] < x0 + side - margin) | (x0 + side >= w))
                         & ((box[:, 3] < y0 + side - margin) | (y0 + side >= h)))
                if inner.any():
                    found.append(dets[inner])
        return found

    def _to_detections(self, result, frame_hw: tuple[int, int]) -> Detections:
        return landmarker_detections(result, np.eye(2, 3, dtype=np.float64), 1.0, frame_hw, frame_hw,
                                     masks=self.masks, min_pose_score=self.min_pose_score)


class CropLandmarker:
    """The BlazePose landmarker on one person's square crop: ``(rgb, box) -> Detections``.

    Args:
        crop_size: Side of the square crop sent to the landmarker, pixels.
        min_pose_score: Minimum landmark presence to accept a pose.
        masks: Whether to return segmentation masks.
        cache_dir: Where the MediaPipe bundle is built (see ``mediapipe_bundle``).
    """

    def __init__(self, *, crop_size: int = 256, min_pose_score: float = 0.2, masks: bool = True,
                 cache_dir: str | None = None) -> None:
        _quiet_mediapipe_logs()
        from mediapipe.tasks.python import BaseOptions, vision

        opts = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(pose_landmarker_bundle(cache_dir))),
            running_mode=vision.RunningMode.IMAGE, num_poses=1, min_pose_detection_confidence=0.5,
            min_pose_presence_confidence=min_pose_score, output_segmentation_masks=masks)
        with native_stderr_silenced():
            self._landmarker = vision.PoseLandmarker.create_from_options(opts)
        self.crop_size = crop_size
        self.min_pose_score = min_pose_score
        self.masks = masks

    def close(self) -> None:
        self._landmarker.close()

    def __call__(self, rgb: np.ndarray, box: np.ndarray) -> Detections | None:
        """The person around ``box`` ((4,) xyxy pixels) of the (H, W, 3) uint8 frame, in
        frame pixels and the ``blazepose33`` layout, or ``None`` where none was found."""
        import mediapipe as mp

        h, w = rgb.shape[:2]
        cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
        side = 1.25 * max(box[2] - box[0], box[3] - box[1])
        if side < 16:
            return None
        s = self.crop_size / side
        crop, affine = square_crop(rgb, cx, cy, side, self.crop_size)
        result = self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=crop))
        dets = landmarker_detections(result, affine, s, (self.crop_size, self.crop_size), (h, w),
                                     masks=self.masks, min_pose_score=self.min_pose_score)
        return dets if len(dets) else None


def landmarker_detections(result, affine: np.ndarray, scale: float, in_hw: tuple[int, int],
                          frame_hw: tuple[int, int], *, masks: bool, min_pose_score: float) -> Detections:
    """Converts a MediaPipe landmarker result on an image that is ``affine(frame)`` to
    frame pixels (``blazepose33`` layout); poses under ``min_pose_score`` are dropped."""
    import cv2

    ih, iw = in_hw
    fh, fw = frame_hw
    n = len(result.pose_landmarks)
    kps = np.zeros((n, 33, 3), np.float32)
    world = np.zeros((n, 33, 3), np.float32)
    scores = np.zeros(n, np.float32)
    out_masks = np.zeros((n, fh, fw), bool) if masks else None
    keep = np.ones(n, bool)
    for i in range(n):
        lms = result.pose_landmarks[i]
        arr = np.array([[p.x * iw, p.y * ih, p.visibility, p.presence] for p in lms], np.float64)
        kps[i, :, 0] = (arr[:, 0] - affine[0, 2]) / scale
        kps[i, :, 1] = (arr[:, 1] - affine[1, 2]) / scale
        inside = (kps[i, :, 0] >= 0) & (kps[i, :, 0] < fw) & (kps[i, :, 1] >= 0) & (kps[i, :, 1] < fh)
        kps[i, :, 2] = np.where(inside, arr[:, 2], 0.0)
        scores[i] = float(np.median(arr[[11, 12, 23, 24], 3]))
        keep[i] = scores[i] >= min_pose_score
        world[i] = np.array([[p.x, p.y, p.z] for p in result.pose_world_landmarks[i]], np.float32)
        if out_masks is not None and result.segmentation_masks:
            m = result.segmentation_masks[i].numpy_view()
            m = m.reshape(m.shape[0], m.shape[1])
            if scale == 1.0 and m.shape == (fh, fw):
                out_masks[i] = m > 0.5
            else:
                inv = cv2.invertAffineTransform(affine)
                out_masks[i] = cv2.warpAffine(m.astype(np.float32), inv, (fw, fh), flags=cv2.INTER_LINEAR) > 0.5
    xyxy = np.zeros((n, 4), np.float32)
    for i in range(n):
        xyxy[i] = keypoints_box(kps[i, :, :2], kps[i, :, 2], fw, fh)
    dets = Detections(xyxy=xyxy, score=scores, keypoints=kps, keypoint_layout="blazepose33",
                      landmarks3d=world, masks=out_masks)
    return dets[keep]


def _tile_origins(side: int, height: int, width: int) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of square tiles of ``side`` covering the frame, two thirds
    of a side apart."""
    stride = max(1, (2 * side) // 3)
    ys = list(range(0, height - side, stride)) + [height - side]
    xs = list(range(0, width - side, stride)) + [width - side]
    return [(y, x) for y in ys for x in xs]


def _expand(boxes: np.ndarray, factor: float, width: int, height: int) -> np.ndarray:
    c = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    half = 0.5 * factor * (boxes[:, 2:] - boxes[:, :2])
    out = np.concatenate([c - half, c + half], 1)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out.astype(np.float32)


def _same_person_suppression(dets: Detections, tol: float = 0.1) -> np.ndarray:
    """Indices of detections to keep when several found the same person (a crop and the
    whole-frame pass, say): two are the same person when their shoulders and hips lie
    within ``tol`` of the body height of each other. Unlike box NMS this keeps two
    people whose boxes overlap while they cross."""
    torso = [11, 12, 23, 24]  # BlazePose shoulders and hips
    order = np.argsort(-dets.score, kind="stable")
    keep: list[int] = []
    for i in order:
        pts = dets.keypoints[i, torso, :2]
        height = max(float(dets.xyxy[i, 3] - dets.xyxy[i, 1]), 1.0)
        duplicate = any(
            np.linalg.norm(pts - dets.keypoints[j, torso, :2], axis=1).mean() < tol * height for j in keep
        )
        if not duplicate:
            keep.append(int(i))
    return np.array(sorted(keep), dtype=np.int64)


def _nms_boxes_index(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores)
    keep: list[int] = []
    for i in order:
        if not keep or box_iou(boxes[i][None], boxes[keep]).max() <= iou:
            keep.append(int(i))
    return np.array(sorted(keep), dtype=np.int64)


def _nms_boxes(boxes: np.ndarray, iou: float) -> np.ndarray:
    if len(boxes) == 0:
        return boxes
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[_nms_boxes_index(boxes, area, iou)]
