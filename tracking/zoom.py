"""Zoom detection: how much the camera's focal length changed since the shot began.

A camera that zooms scales the whole image about its principal point; people move on
their own, the background does not. So ORB features of the background (people masked
out) are matched between each frame and an anchor frame (the shot's first, then the
first that no longer matches it), and a homography is fitted with RANSAC. A camera
that turns by ``R`` and zooms by ``z`` about its centre maps the anchor's pixels to the
frame's by ``K2 R K⁻¹`` (``K2``'s focal ``z`` times ``K``'s):
:func:`~meshstream.models.camera.zoom_between` reads ``z`` from it, so a pan or tilt
is not read as zoom. (Before, a similarity fitted between consecutive frames read an
8° pan at 60° as a 4 % zoom-out, and its frame-to-frame errors added up.) The zoom
relative to the shot's first frame is the anchor's times ``z``. A camera moving forward
also scales the image and is read as zoom.

A frame whose matches stay put nearly as well as a homography explains them (within 24
matches, 3 per parameter) is taken as unmoved: otherwise a person the boxes missed,
over a smooth background, can pull a zoom of several %.

The anchor-to-frame homographies are kept, with each anchor's zoom: a camera that pans
or tilts about its centre maps frames by ``K₂ R K⁻¹``, which fixes the focal, also while
it zooms (:func:`~meshstream.models.camera.focal_from_rotation`). Once the focal is
known, the same homographies give each frame's turn since the shot's first frame
(:meth:`ZoomTracker.turns`), chained through the anchors. A homography that is not a
turn at that focal (``‖AAᵀ − I‖`` over ``max_turn_residual``: a 35° view panned by a few
degrees over a blurry background read turns up to 4° off there, and no more than 0.35°
under 0.03) is not read, nor is a frame the background could not be matched in: their
turns are interpolated between the frames on either side, or the last one is kept.
"""

from __future__ import annotations

import math

import numpy as np

from meshstream.models.camera import fill_rotations, focal_from_fov, focal_from_rotation, rotation_between, zoom_between
from meshstream.stream.messages import Frame


class ZoomTracker:
    """Stage: ``(Frame, person boxes) -> cumulative zoom`` since the shot's first frame.

    Args:
        max_side: Frames are downscaled so their longer side is at most this, pixels.
        features: ORB features per frame.
        min_inliers: Fewer matches or homography inliers than this: no homography (the
            frame becomes the anchor).
        threshold: A shot counts as zooming once its cumulative zoom stays out of
            ``[1 - threshold, 1 + threshold]`` for ``sustain`` frames in a row; until
            then the focal stays constant.
        sustain: Frames in a row (one bad homography reads as a jump in zoom).
        max_step: A frame whose zoom differs from the previous frame's by more than this
            factor is not read (a zoom lens moves about 1 % per frame; with a person
            filling the frame, the few background features left can give a 14 % jump).
        max_homographies: Anchor-to-frame homographies kept per shot (the focal is set
            early in a shot; this bounds memory and time on long ones).
        max_turn_residual: A homography further than this from a turn at the shot's
            focal (:func:`~meshstream.models.camera.rotation_residual`) gives no turn.

    Attributes:
        focal_px: The shot's focal at zoom 1 where known (set by the pipeline), pixels.
            Until then the zoom is read at the focal the camera's turn gives, or at a
            60° view's.
    """

    def __init__(self, *, max_side: int = 480, features: int = 800, min_inliers: int = 25,
                 threshold: float = 0.03, sustain: int = 3, max_step: float = 1.05,
                 max_homographies: int = 900, max_turn_residual: float = 0.03) -> None:
        import cv2

        self._orb = cv2.ORB_create(nfeatures=features)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self.max_side = max_side
        self.min_inliers = min_inliers
        self.threshold = threshold
        self.sustain = sustain
        self.max_step = max_step
        self.max_homographies = max_homographies
        self.max_turn_residual = max_turn_residual
        self.focal_px: float | None = None
        self.reset()

    def reset(self) -> None:
        """New shot: zoom 1, no anchor, no homographies; the focal hint is kept."""
        self._anchor: tuple[list, np.ndarray, float, int] | None = None  # keypoints, descriptors, zoom, frame index
        # Per frame not yet given its turn: (anchor frame, anchor -> frame homography, anchor's zoom),
        # or None where no homography was read (the turn is interpolated).
        self._links: dict[int, tuple[int, np.ndarray, float] | None] = {}
        self._anchors: set[int] = set()  # anchor frames whose turn is still to be found
        self._anchor_turns: dict[int, np.ndarray] = {}  # turn of each anchor frame since the shot began
        self._last_turn = np.eye(3)
        self.unread = 0  # frames whose turn was interpolated or carried on, not read
        self.zoom = 1.0
        self.zooming = False
        self._outside = 0  # frames in a row with the zoom outside the threshold
        self.homographies: list[np.ndarray] = []  # (3, 3) anchor frame -> later frame, full-size pixels
        self.anchor_zooms: list[float] = []  # zoom of each homography's anchor frame
        self._turn_focal: float | None = None  # the focal the turn so far gives

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
        self._links[frame.index] = None
        if desc is None or len(kps) < self.min_inliers:
            return self.zoom
        homography = None
        if self._anchor is None:
            self._links[frame.index] = (frame.index, np.eye(3), self.zoom)  # the shot's first turn: none
        else:
            matched = self._matches(self._anchor, (kps, desc))
            homography = None if matched is None else self._homography(*matched, s)
        if homography is None:
            self._anchor = (kps, desc, self.zoom, frame.index)
            self._anchors.add(frame.index)
            return self.zoom
        self._links[frame.index] = (self._anchor[3], homography, self._anchor[2])
        if len(self.homographies) < self.max_homographies:
            self.homographies.append(homography)
            self.anchor_zooms.append(self._anchor[2])
            if self.focal_px is None and len(self.homographies) % 8 == 0:
                found = focal_from_rotation(np.array(self.homographies[-64:]), w, h,
                                            anchor_zoom=np.array(self.anchor_zooms[-64:]))
                self._turn_focal = found.focal_px if found is not None else self._turn_focal
        # Without a focal a 60 degree view's: a turn of 5 degrees then errs by about
        # 0.4 % per 30 % of focal error.
        focal = (self.focal_px or self._turn_focal or focal_from_fov(60.0, w)) * self._anchor[2]
        step = float(zoom_between(homography[None], focal, np.array([w / 2.0, h / 2.0]))[0])
        if 0 < step < math.inf and abs(math.log(self._anchor[2] * step / self.zoom)) <= math.log(self.max_step):
            self.zoom = self._anchor[2] * step
            self._outside = self._outside + 1 if abs(math.log(self.zoom)) > math.log1p(self.threshold) else 0
            self.zooming = self.zooming or self._outside >= self.sustain
            if abs(math.log(step)) > math.log(1.1):
                self._anchor = (kps, desc, self.zoom, frame.index)  # zoomed 10 % past the anchor: its features shrink away
                self._anchors.add(frame.index)
        else:
            self._links[frame.index] = None  # a jump no lens makes: a bad homography, its turn too
        return self.zoom

    def turns(self, frame_indices: np.ndarray | list[int], focal_px: float, principal_point: np.ndarray) -> np.ndarray:
        """Each frame's turn since the shot's first frame, ``C`` with ``d_frame = C d_first``
        for a direction ``d`` in OpenCV camera axes (so ``Cᵀ`` maps the frame's camera axes
        into the first frame's), from the homographies at ``focal_px``.

        Frames must be asked for in order, each once, after they were seen, all with the
        same focal. A frame without a turn read (no homography: too few features, no match
        with its anchor; or one that is no turn at this focal) gets one interpolated
        between the frames read on either side among those asked for, or keeps the last
        one read; it counts in :attr:`unread`. An anchor frame without a turn read keeps
        the last one, for the frames that follow from it.

        Args:
            frame_indices: (T,) frames, in order.
            focal_px: The focal at the shot's first frame (zoom 1), pixels.
            principal_point: (2,) pixels.

        Returns:
            (T, 3, 3) rotations (identity for a frame this tracker never saw).
        """
        read: list[np.ndarray | None] = []
        last = self._last_turn
        for index in (int(k) for k in frame_indices):
            link = self._links.pop(index, None)
            turn = None
            if link is not None and link[0] == index:  # the shot's first frame
                turn = np.eye(3)
            elif link is not None and link[0] in self._anchor_turns:
                rotation, residual = rotation_between(link[1], focal_px * link[2], principal_point)
                if residual[0] <= self.max_turn_residual:
                    turn = rotation[0] @ self._anchor_turns[link[0]]
            last = turn if turn is not None else last
            if index in self._anchors:
                self._anchors.discard(index)
                self._anchor_turns[index] = last
            read.append(turn)
        out, unread = fill_rotations(read, self._last_turn)
        self.unread += unread
        if len(out):
            self._last_turn = out[-1]
        return out

    def _matches(self, first, second) -> tuple[np.ndarray, np.ndarray] | None:
        """(K, 2) pixel positions of matched features in the first and the second frame."""
        pairs = self._matcher.knnMatch(first[1], second[1], k=2)
        good = [m for m, *rest in pairs if rest and m.distance < 0.75 * rest[0].distance]
        if len(good) < self.min_inliers:
            return None
        a = np.array([first[0][m.queryIdx].pt for m in good])
        b = np.array([second[0][m.trainIdx].pt for m in good])
        return a, b

    def _homography(self, a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray | None:
        """Homography between matched positions, in full-size pixels (``s``: the downscale)."""
        import cv2

        h, inliers = cv2.findHomography(a, b, cv2.USAC_MAGSAC, 2.0)  # MAGSAC++: RANSAC left 1 in 15 far off
        if h is None or inliers is None or int(inliers.sum()) < self.min_inliers or abs(h[2, 2]) < 1e-12:
            return None
        # A still camera: no motion at all explains the matches nearly as well as the
        # homography (it must win by 3 matches per parameter, 24). Else people the boxes
        # missed, the most textured things over a smooth background, pull a 2-7 % zoom.
        still = int((np.linalg.norm(b - a, axis=1) <= 2.0).sum())
        if still >= int(inliers.sum()) - 3 * 8:
            return np.eye(3)
        down = np.diag([s, s, 1.0])
        return np.linalg.inv(down) @ h @ down
