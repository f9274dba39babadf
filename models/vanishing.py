"""The focal length from the scene's straight lines: vanishing points of orthogonal directions.

Rooms, courts, streets and buildings are full of straight edges along three orthogonal
directions (a "Manhattan world"). Parallel 3D lines meet in the image at their
direction's vanishing point ``v = K d``. Two orthogonal directions ``d1 . d2 = 0`` with
vanishing points ``u1, u2`` (pixels relative to the principal point, square pixels)
give the focal directly (Caprile and Torre, IJCV 1990)::

    f^2 = -(u1 . u2)

It is observable when both vanishing points are finite: the camera sees the scene's
axes obliquely (a room seen toward a corner, a court from its side, a camera looking
down at a floor grid). A camera square on to a wall sees one axis head-on and the other
two at infinity, and the lines then say nothing about the focal.

Conventions: pixels, OpenCV camera (x right, y down, z forward); vanishing points are
homogeneous 3-vectors in coordinates centred on the principal point and divided by
``scale`` (half the image width), so that their last entry is 0 at infinity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .camera import focal_from_fov


@dataclass(frozen=True)
class Segments:
    """Straight line segments of an image.

    Attributes:
        xyxy: (N, 4) endpoints x1, y1, x2, y2, pixels.
    """

    xyxy: np.ndarray

    def __post_init__(self) -> None:
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"Segments.xyxy must be (N, 4), got {self.xyxy.shape}")

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def length(self) -> np.ndarray:
        """(N,) length, pixels."""
        return np.hypot(self.xyxy[:, 2] - self.xyxy[:, 0], self.xyxy[:, 3] - self.xyxy[:, 1])


@dataclass(frozen=True)
class VanishingPoint:
    """One direction's vanishing point and the segments that meet in it.

    Attributes:
        point: (3,) unit homogeneous point in normalised coordinates (centred on the
            principal point, divided by ``scale``); ``point[2] == 0`` at infinity.
        inliers: (K,) indices of its segments.
        support: Their summed length, pixels.
    """

    point: np.ndarray
    inliers: np.ndarray
    support: float


@dataclass(frozen=True)
class LinesFocal:
    """The focal from two orthogonal vanishing points.

    Attributes:
        focal_px: Focal length, pixels.
        axes: (3, 3) the scene's three orthogonal directions in camera axes, one per
            column: the two measured ones, then their cross product.
        vanishing_points: (2, 2) the two measured vanishing points, pixels.
        segments: (3,) segments supporting each axis (the third: those that meet in its
            predicted vanishing point).
        log_std: Bootstrap standard deviation of ln(focal) over the segments.
    """

    focal_px: float
    axes: np.ndarray
    vanishing_points: np.ndarray
    segments: np.ndarray
    log_std: float

    def nearest_axis(self, direction: np.ndarray) -> np.ndarray:
        """(3,) the scene's axis nearest to ``direction`` (3,), signed to agree with it."""
        d = np.asarray(direction, np.float64)
        dots = self.axes.T @ d
        k = int(np.argmax(np.abs(dots)))
        return self.axes[:, k] * np.sign(dots[k])

    def angle_to_deg(self, direction: np.ndarray) -> float:
        """Angle, degrees, between ``direction`` (3,) in camera axes and the nearest of
        the scene's axes (either sign)."""
        d = np.asarray(direction, np.float64)
        cos = np.abs(self.axes.T @ (d / np.linalg.norm(d)))
        return float(np.degrees(np.arccos(np.clip(cos.max(), 0.0, 1.0))))


def detect_segments(gray: np.ndarray, *, min_length_px: float = 20.0, exclude_xyxy: np.ndarray | None = None
                    ) -> Segments:
    """Straight segments of an image (OpenCV's LSD, von Gioi et al. PAMI 2010).

    Args:
        gray: (H, W) uint8 image.
        min_length_px: Shorter segments are dropped (their direction is too uncertain).
        exclude_xyxy: (B, 4) boxes, pixels (people): segments with a point inside one are
            dropped.

    Returns:
        The segments.
    """
    import cv2

    found = cv2.createLineSegmentDetector(cv2.LSD_REFINE_STD).detect(gray)[0]
    xyxy = np.zeros((0, 4)) if found is None else found.reshape(-1, 4).astype(np.float64)
    seg = Segments(xyxy)
    keep = seg.length >= min_length_px
    if exclude_xyxy is not None and len(exclude_xyxy) and len(xyxy):
        boxes = np.asarray(exclude_xyxy, np.float64)
        for t in (0.0, 0.5, 1.0):  # both ends and the middle
            p = xyxy[:, :2] * (1 - t) + xyxy[:, 2:] * t
            inside = ((p[:, None, 0] >= boxes[None, :, 0]) & (p[:, None, 0] <= boxes[None, :, 2])
                      & (p[:, None, 1] >= boxes[None, :, 1]) & (p[:, None, 1] <= boxes[None, :, 3])).any(1)
            keep &= ~inside
    return Segments(xyxy[keep])


def _normalised(seg: Segments, principal_point: np.ndarray, scale: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Homogeneous lines (N, 3) with unit normals, midpoints (N, 2) and unit directions
    (N, 2) of the segments in normalised coordinates."""
    a = (seg.xyxy[:, :2] - principal_point) / scale
    b = (seg.xyxy[:, 2:] - principal_point) / scale
    ones = np.ones((len(a), 1))
    lines = np.cross(np.hstack([a, ones]), np.hstack([b, ones]))
    lines /= np.linalg.norm(lines[:, :2], axis=1, keepdims=True)
    direction = (b - a) / np.linalg.norm(b - a, axis=1, keepdims=True)
    return lines, 0.5 * (a + b), direction


def _consistent(points: np.ndarray, mid: np.ndarray, direction: np.ndarray, sin_tol: np.ndarray) -> np.ndarray:
    """(P, N) bool: segment n points at vanishing point p (the angle between the segment
    and the line from its midpoint to p is within ``sin_tol`` (N,))."""
    to_vp = points[:, None, :2] - mid[None] * points[:, None, 2:3]  # (P, N, 2), homogeneous direction
    cross = np.abs(direction[None, :, 0] * to_vp[..., 1] - direction[None, :, 1] * to_vp[..., 0])
    return cross <= sin_tol[None] * np.linalg.norm(to_vp, axis=-1) + 1e-12


def _sin_tolerance(length: np.ndarray, tolerance_deg: float) -> np.ndarray:
    """(N,) sine of the angle within which a segment of ``length`` (N,) pixels points
    at a vanishing point: ``tolerance_deg``, widened for short segments, whose endpoints
    are about 1 px uncertain."""
    return np.sin(np.maximum(np.radians(tolerance_deg), np.arctan(1.5 / np.maximum(length, 1.0))))


def _refine(lines: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The point (3,) nearest to the lines in the weighted least-squares sense (unit norm)."""
    m = (lines * weight[:, None]).T @ lines
    return np.linalg.eigh(m)[1][:, 0]


def find_vanishing_points(seg: Segments, principal_point: np.ndarray, scale: float, *, max_points: int = 4,
                          tolerance_deg: float = 1.0, min_segments: int = 8, min_support_px: float = 300.0,
                          hypotheses: int = 600, seed: int = 0) -> list[VanishingPoint]:
    """The dominant vanishing points, strongest first (RANSAC on pairs of segments, then
    a weighted least-squares refinement, one point at a time on what is left).

    Args:
        seg: The image's segments.
        principal_point: (2,) pixels.
        scale: Normalising length, pixels (half the image width).
        max_points: At most this many points.
        tolerance_deg: A segment meets a point when its direction is within this angle
            of the line from its midpoint to the point (widened for short segments,
            whose endpoints are about 1 px uncertain).
        min_segments: A point needs at least this many segments ...
        min_support_px: ... of at least this summed length.
        hypotheses: Pairs drawn per point.
        seed: Random seed (the result is deterministic).

    Returns:
        The vanishing points.
    """
    if len(seg) < 2:
        return []
    lines, mid, direction = _normalised(seg, np.asarray(principal_point, np.float64), scale)
    length = seg.length
    sin_tol = _sin_tolerance(length, tolerance_deg)
    rng = np.random.default_rng(seed)
    free = np.ones(len(seg), bool)
    found: list[VanishingPoint] = []
    while len(found) < max_points and free.sum() >= min_segments:
        idx = np.flatnonzero(free)
        p = length[idx] / length[idx].sum()
        pairs = rng.choice(idx, size=(hypotheses, 2), p=p)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        points = np.cross(lines[pairs[:, 0]], lines[pairs[:, 1]])
        norm = np.linalg.norm(points, axis=1)
        points = points[norm > 1e-12] / norm[norm > 1e-12, None]
        if not len(points):
            break
        score = (_consistent(points, mid[idx], direction[idx], sin_tol[idx]) * length[idx]).sum(1)
        best = points[int(np.argmax(score))]
        for _ in range(3):
            inl = idx[_consistent(best[None], mid[idx], direction[idx], sin_tol[idx])[0]]
            if len(inl) < 2:
                break
            best = _refine(lines[inl], length[inl])
        inl = idx[_consistent(best[None], mid[idx], direction[idx], sin_tol[idx])[0]]
        if len(inl) < min_segments or length[inl].sum() < min_support_px:
            break
        found.append(VanishingPoint(best, inl, float(length[inl].sum())))
        free[inl] = False
    return found


def _pair_focal(p1: np.ndarray, p2: np.ndarray) -> float | None:
    """Normalised focal from two orthogonal directions' vanishing points, or ``None``
    where they do not fix one (either at infinity, or the product is not negative)."""
    if abs(p1[2]) < 1e-9 or abs(p2[2]) < 1e-9:
        return None
    f2 = -float(p1[:2] @ p2[:2]) / float(p1[2] * p2[2])
    return math.sqrt(f2) if f2 > 0 else None


def _direction(point: np.ndarray, f: float) -> np.ndarray:
    """Unit 3D direction (camera axes) of a normalised vanishing point at focal ``f``."""
    d = np.array([point[0], point[1], point[2] * f])
    return d / np.linalg.norm(d) * (1.0 if d[2] >= 0 else -1.0)


def focal_from_vanishing_points(seg: Segments, points: list[VanishingPoint], principal_point: np.ndarray,
                                scale: float, *, fov_range_deg: tuple[float, float] = (15.0, 130.0),
                                width: int | None = None, tolerance_deg: float = 1.0, bootstrap: int = 40,
                                seed: int = 0) -> LinesFocal | None:
    """The focal from the best orthogonal pair of vanishing points.

    Each pair of finite points whose ``-(u1 . u2)`` is positive and gives a focal inside
    ``fov_range_deg`` is a candidate; it also predicts the third axis (their cross
    product). The candidate whose two points and predicted third point gather the most
    segment length wins. Its spread is measured by refitting both points on bootstrap
    resamples of their segments.

    Args:
        seg: The segments the points were found from.
        points: :func:`find_vanishing_points`' result.
        principal_point: (2,) pixels.
        scale: The normalising length used for ``points``, pixels.
        fov_range_deg: Horizontal field of view range accepted, degrees.
        width: Image width, pixels, for that range (default ``2 * scale``).
        tolerance_deg: As in :func:`find_vanishing_points`, for the third axis' segments.
        bootstrap: Resamples for ``log_std``.
        seed: Random seed.

    Returns:
        The focal, or ``None`` when no pair fixes one.
    """
    if len(points) < 2:
        return None
    width = 2.0 * scale if width is None else width
    lo = focal_from_fov(fov_range_deg[1], width) / scale
    hi = focal_from_fov(fov_range_deg[0], width) / scale
    lines, mid, direction = _normalised(seg, np.asarray(principal_point, np.float64), scale)
    length = seg.length
    sin_tol = _sin_tolerance(length, tolerance_deg)
    best = None
    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            f = _pair_focal(points[i].point, points[j].point)
            if f is None or not lo <= f <= hi:
                continue
            d1, d2 = _direction(points[i].point, f), _direction(points[j].point, f)
            d3 = np.cross(d1, d2)
            d3 /= np.linalg.norm(d3)
            third = np.array([d3[0] * f, d3[1] * f, d3[2]])
            free = np.setdiff1d(np.arange(len(seg)), np.concatenate([points[i].inliers, points[j].inliers]))
            on3 = free[_consistent(third[None] / np.linalg.norm(third), mid[free], direction[free], sin_tol[free])[0]]
            score = points[i].support + points[j].support + 0.5 * float(length[on3].sum())
            if best is None or score > best[0]:
                best = (score, i, j, f, np.stack([d1, d2, d3], 1), len(on3))
    if best is None:
        return None
    _, i, j, f, axes, n3 = best
    rng = np.random.default_rng(seed)
    logs = []
    for _ in range(bootstrap):
        p = []
        for k in (i, j):
            inl = points[k].inliers
            pick = inl[rng.integers(0, len(inl), len(inl))]
            p.append(_refine(lines[pick], length[pick]))
        fb = _pair_focal(p[0], p[1])
        logs.append(math.log(fb) if fb else math.inf)
    logs = np.array(logs)
    log_std = float(np.std(logs)) if np.isfinite(logs).all() else math.inf
    vp = np.array([points[k].point[:2] / points[k].point[2] * scale + principal_point for k in (i, j)])
    return LinesFocal(focal_px=f * scale, axes=axes, vanishing_points=vp,
                      segments=np.array([len(points[i].inliers), len(points[j].inliers), n3]), log_std=log_std)


def focal_from_lines(gray: np.ndarray, principal_point: np.ndarray | None = None, *,
                     exclude_xyxy: np.ndarray | None = None, fov_range_deg: tuple[float, float] = (15.0, 130.0),
                     max_log_std: float = 0.05, min_third_segments: int = 8) -> LinesFocal | None:
    """The focal of a still image from the vanishing points of its straight lines.

    Args:
        gray: (H, W) uint8 image (for video: a still camera's background, e.g. the median
            of frames, with ``exclude_xyxy`` covering the people).
        principal_point: (2,) pixels; the image centre by default.
        exclude_xyxy: (B, 4) boxes, pixels, whose segments are ignored.
        fov_range_deg: Horizontal field of view range accepted, degrees.
        max_log_std: The estimate is returned only when its bootstrap standard deviation
            of ln(focal) is at most this ...
        min_third_segments: ... and at least this many segments meet in the third
            axis' predicted vanishing point: a scene of three orthogonal directions (the
            verticals of walls, posts and buildings) confirms the pair. Lines bent by
            lens distortion, and pairs of directions that are not orthogonal, predict
            it where no segment meets it. 0 for a single plane (a chessboard).

    Returns:
        The focal and the scene's axes, or ``None`` when the lines do not fix it.
    """
    h, w = gray.shape[:2]
    pp = np.array([w / 2.0, h / 2.0]) if principal_point is None else np.asarray(principal_point, np.float64)
    scale = w / 2.0
    seg = detect_segments(gray, min_length_px=max(20.0, 0.03 * w), exclude_xyxy=exclude_xyxy)
    points = find_vanishing_points(seg, pp, scale)
    found = focal_from_vanishing_points(seg, points, pp, scale, fov_range_deg=fov_range_deg, width=w)
    if found is None or not found.log_std <= max_log_std or found.segments[2] < min_third_segments:
        return None
    return found
