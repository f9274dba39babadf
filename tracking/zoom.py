"""Zoom detection: how much the camera's focal length changed since the shot began.

A camera that zooms scales the whole image about its principal point; people move on
their own, the background does not. So ORB features of the background (people masked
out) are matched between consecutive frames, a similarity transform is fitted with
RANSAC, and its scale is the frame-to-frame zoom. The product over the shot is the zoom
relative to the shot's first frame. (Panning and tilting translate the image and leave
the scale at 1; a camera moving forward also scales it and is read as zoom.)
"""

from __future__ import annotations

import numpy as np

from meshstream.stream.frames import Frame


class ZoomTracker:
    """Stage: ``(Frame, person boxes) -> cumulative zoom`` since the shot's first frame.

    Args:
        max_side: Frames are downscaled so their longer side is at most this, pixels.
        features: ORB features per frame.
        min_inliers: Fewer RANSAC inliers than this: no estimate (scale 1).
        threshold: A shot counts as zooming once its cumulative zoom leaves
            ``[1 - threshold, 1 + threshold]``; below that the focal stays constant.
    """

    def __init__(self, *, max_side: int = 480, features: int = 800, min_inliers: int = 25,
                 threshold: float = 0.03) -> None:
        import cv2

        self._orb = cv2.ORB_create(nfeatures=features)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self.max_side = max_side
        self.min_inliers = min_inliers
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        """New shot: zoom 1."""
        self._prev: tuple[list, np.ndarray] | None = None
        self.zoom = 1.0
        self.zooming = False

    def __call__(self, frame: Frame, boxes: np.ndarray) -> float:
        """Cumulative zoom at ``frame`` (1 at the shot's first frame).

        Args:
            frame: The frame.
            boxes: (N, 4) xyxy pixel boxes of the people, masked out.
        """
        import cv2

        h, w = frame.height, frame.width
        s = min(1.0, self.max_side / max(h, w))
        grey = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY)
        if s < 1:
            grey = cv2.resize(grey, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        mask = np.full(grey.shape, 255, np.uint8)
        for x0, y0, x1, y1 in (np.asarray(boxes, np.float64).reshape(-1, 4) * s).astype(int):
            mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 0
        kps, desc = self._orb.detectAndCompute(grey, mask)
        prev, self._prev = self._prev, (kps, desc)
        if prev is None or desc is None or prev[1] is None or len(kps) < self.min_inliers:
            return self.zoom
        scale = self._scale(prev, (kps, desc), np.array(grey.shape[::-1], np.float64) / 2)
        if scale is not None:
            self.zoom *= scale
            self.zooming = self.zooming or abs(np.log(self.zoom)) > np.log1p(self.threshold)
        return self.zoom

    def _scale(self, prev, cur, centre: np.ndarray) -> float | None:
        import cv2

        pairs = self._matcher.knnMatch(prev[1], cur[1], k=2)
        good = [m for m, *rest in pairs if rest and m.distance < 0.75 * rest[0].distance]
        if len(good) < self.min_inliers:
            return None
        a = np.array([prev[0][m.queryIdx].pt for m in good]) - centre
        b = np.array([cur[0][m.trainIdx].pt for m in good]) - centre
        model, inliers = cv2.estimateAffinePartial2D(a, b, method=cv2.RANSAC, ransacReprojThreshold=2.0)
        if model is None or inliers is None or int(inliers.sum()) < self.min_inliers:
            return None
        scale = float(np.hypot(model[0, 0], model[1, 0]))
        return scale if 0.8 < scale < 1.25 else None
