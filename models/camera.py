"""Pinhole camera maths (OpenCV convention: x right, y down, z forward; pixels; metres).

All functions are pure and batched; they accept NumPy arrays or torch tensors where
noted and never hold state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch


def focal_from_fov(fov_deg: float, width: int) -> float:
    """Focal length in pixels of a camera whose horizontal field of view is ``fov_deg``."""
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
    return 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)


def fov_from_focal(focal_px: float, width: int) -> float:
    """Horizontal field of view in degrees of a focal length in pixels."""
    return math.degrees(2.0 * math.atan(0.5 * width / focal_px))


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics with optional OpenCV lens distortion.

    Attributes:
        fx: Horizontal focal length, pixels.
        fy: Vertical focal length, pixels (differs from ``fx`` for non-square pixels).
        cx: Principal point x, pixels (OpenCV: pixel centres at integer coordinates).
        cy: Principal point y, pixels.
        distortion: OpenCV distortion coefficients ``(k1, k2, p1, p2[, k3[, k4, k5, k6]])``;
            empty for none.
        image_size: (width, height) of the frames these values were calibrated on, or
            ``None`` when not stated (then they are taken to be the video's).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = ()
    image_size: tuple[int, int] | None = None

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def principal_point(self) -> np.ndarray:
        """(2,) float32 principal point, pixels."""
        return np.array([self.cx, self.cy], np.float32)

    @property
    def is_ideal(self) -> bool:
        """True for square pixels and no distortion (frames need no resampling)."""
        return self.fx == self.fy and not any(self.distortion)

    def ideal(self) -> "Intrinsics":
        """The undistorted square-pixel camera the frames are resampled to: focal ``fx``
        on both axes, the same principal point, no distortion."""
        return replace(self, fy=self.fx, distortion=())

    def scaled_to(self, width: int, height: int) -> "Intrinsics":
        """These intrinsics for frames of ``width`` x ``height`` (a resized video).

        Raises:
            ValueError: The calibration's aspect ratio differs (a crop, not a resize).
        """
        if self.image_size is None or tuple(self.image_size) == (width, height):
            return replace(self, image_size=(width, height))
        w0, h0 = self.image_size
        sx, sy = width / w0, height / h0
        if abs(sx / sy - 1.0) > 0.01:
            raise ValueError(f"calibrated on {w0}x{h0} frames but the video is {width}x{height}: "
                             "the aspect ratio differs, so the frames were cropped")
        return Intrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
                          self.distortion, (width, height))


def project(points: torch.Tensor, focal: torch.Tensor | float, principal_point: torch.Tensor) -> torch.Tensor:
    """Projects camera-space points to pixels.

    Args:
        points: (..., 3) camera-space points, metres, z > 0 in front of the camera.
        focal: focal length in pixels, scalar or broadcastable to (...,).
        principal_point: (2,) or broadcastable (..., 2) principal point, pixels.

    Returns:
        (..., 2) pixel coordinates.
    """
    z = points[..., 2:3].clamp(min=1e-6)
    f = torch.as_tensor(focal, dtype=points.dtype, device=points.device)
    if f.ndim > 0:
        f = f[..., None]
    return f * points[..., :2] / z + principal_point


def solve_translation(
    points: torch.Tensor,
    uv: torch.Tensor,
    weights: torch.Tensor,
    focal: torch.Tensor,
    principal_point: torch.Tensor,
    min_depth: float = 0.1,
) -> torch.Tensor:
    """Camera-space translation that best projects rotated body points onto 2D keypoints.

    Solves, for each body and each focal, the linear least-squares problem
    ``f (X + Tx) - u' (Z + Tz) = 0`` and ``f (Y + Ty) - v' (Z + Tz) = 0`` with
    ``u' = u - cx``, ``v' = v - cy``, weighted by ``weights`` (the algebraic form of
    the reprojection error; exact for noiseless points).

    Args:
        points: (M, K, 3) body points already rotated into camera axes, metres, relative
            to the body's root; or (M, F, K, 3), one set per candidate focal.
        uv: (M, K, 2) observed keypoints, pixels.
        weights: (M, K) non-negative weights (0 ignores a point).
        focal: (F,) candidate focal lengths, pixels, or (M, F): one set per body (a
            zooming camera).
        principal_point: (2,) pixels.
        min_depth: Smallest root depth returned, metres.

    Returns:
        (M, F, 3) translations, metres. Bodies with fewer than two weighted points get
        a translation from the others' mean (caller should not trust them).
    """
    m, k = uv.shape[:2]
    du = (uv[..., 0] - principal_point[0])[:, None, :]  # (M, 1, K)
    dv = (uv[..., 1] - principal_point[1])[:, None, :]
    f = _focal_mf(focal)  # (1 or M, F, 1)
    if points.ndim == 3:
        points = points[:, None]
    x, y, z = (points[..., i] for i in range(3))
    zeros = torch.zeros_like(du).expand(m, f.shape[1], k)
    fk = f.expand(m, -1, k)
    # Rows for u: [f, 0, -u'] T = u' Z - f X ; rows for v: [0, f, -v'] T = v' Z - f Y
    a_u = torch.stack([fk, zeros, -du.expand_as(fk)], dim=-1)
    a_v = torch.stack([zeros, fk, -dv.expand_as(fk)], dim=-1)
    b_u = du * z - f * x
    b_v = dv * z - f * y
    a = torch.cat([a_u, a_v], dim=2)  # (M, F, 2K, 3)
    b = torch.cat([b_u, b_v], dim=2)  # (M, F, 2K)
    w = torch.cat([weights, weights], dim=1)[:, None, :].sqrt()
    aw = a * w[..., None]
    bw = b * w
    ata = aw.transpose(-1, -2) @ aw + 1e-9 * torch.eye(3, dtype=a.dtype, device=a.device)
    atb = (aw.transpose(-1, -2) @ bw[..., None])[..., 0]
    t = torch.linalg.solve(ata, atb)
    t = torch.cat([t[..., :2], t[..., 2:].clamp(min=min_depth)], dim=-1)
    return t


def _focal_mf(focal: torch.Tensor) -> torch.Tensor:
    """(F,) or (M, F) focal lengths as a (1 or M, F, 1) tensor."""
    return focal[None, :, None] if focal.ndim == 1 else focal[:, :, None]


def focal_grid(width: int, height: int, fov_min_deg: float = 15.0, fov_max_deg: float = 130.0, n: int = 64) -> np.ndarray:
    """Log-spaced candidate focal lengths (pixels) spanning a horizontal FOV range."""
    f_lo = focal_from_fov(fov_max_deg, width)
    f_hi = focal_from_fov(fov_min_deg, width)
    return np.geomspace(f_lo, f_hi, n)


@dataclass(frozen=True)
class FocalPrior:
    """A log-normal prior over the horizontal fields of view cameras have, for a focal
    search whose evidence does not fix the focal.

    The evidence is the mean of the person-frames' cost curves (each scaled to [0, 1]).
    It does not fix the focal when its minimum lies at the edge of the searched range,
    or when the mean cost rises by less than ``flat_rise`` within an octave of its
    minimum on either side. Then the prior's cost is added to it.

    Attributes:
        fov_deg: The prior's mode, a horizontal field of view, degrees.
        spread: One standard deviation as a factor on the focal (1.5: a focal 1.5x or
            1/1.5x the mode's is one standard deviation away).
        weight: The cost of one standard deviation (0: no prior).
        flat_rise: Least rise of the mean cost within an octave of its minimum, on both
            sides, for the evidence to fix the focal alone.
    """

    fov_deg: float = 65.0
    spread: float = 1.5
    weight: float = 0.3
    flat_rise: float = 0.01

    def cost(self, grid: np.ndarray, width: int) -> np.ndarray:
        """(F,) the prior's cost at each candidate focal of ``grid`` (pixels) for
        frames ``width`` pixels wide: ``weight * (ln(f / f_mode) / ln(spread))**2``."""
        f_mode = focal_from_fov(self.fov_deg, width)
        return self.weight * (np.log(np.asarray(grid, np.float64) / f_mode) / math.log(self.spread)) ** 2

    def fixes(self, grid: np.ndarray, mean_cost: np.ndarray) -> bool:
        """Whether the evidence ``mean_cost`` ((F,) on the log-spaced ``grid``) fixes the
        focal alone: a minimum inside the range that the cost rises from by at least
        ``flat_rise`` within an octave on both sides (or up to the range's edge)."""
        i = int(np.nanargmin(mean_cost))
        if i == 0 or i == len(grid) - 1:
            return False
        log_f = np.log(np.asarray(grid, np.float64))
        rises = [np.interp(log_f[i] + step, log_f, mean_cost) - mean_cost[i] for step in (-math.log(2), math.log(2))]
        return min(rises) >= self.flat_rise


def focal_with_prior(grid: np.ndarray, votes: np.ndarray, width: int, prior: FocalPrior | None
                     ) -> tuple[float, bool]:
    """The focal search's answer from person-frames' votes, and a prior over views
    where they do not fix the focal.

    Args:
        grid: (F,) candidate focals, pixels (log-spaced).
        votes: (M, F) each person-frame's cost curve, scaled to [0, 1]
            (:func:`normalise_costs`).
        width: Frame width, pixels.
        prior: The prior, or ``None`` (the votes alone).

    Returns:
        The focal, pixels: the minimum of the mean vote, or where that does not fix the
        focal (:meth:`FocalPrior.fixes`), of the mean vote plus the prior's cost; and
        whether the prior was used. The prior weighs as much on many votes as on few:
        their errors (the detector's 3D) repeat from frame to frame rather than average
        out.
    """
    pooled = votes.mean(0)
    if prior is None or prior.weight == 0 or prior.fixes(grid, pooled):
        return refine_minimum(grid, pooled), False
    return refine_minimum(grid, pooled + prior.cost(grid, width)), True


def refine_minimum(grid: np.ndarray, cost: np.ndarray) -> float:
    """Minimum of a cost sampled on a log grid, refined by a parabola through the
    best sample and its neighbours (in log space)."""
    i = int(np.nanargmin(cost))
    if i == 0 or i == len(grid) - 1:
        return float(grid[i])
    x = np.log(grid[i - 1 : i + 2])
    y = cost[i - 1 : i + 2]
    denom = (x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2])
    a = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / denom
    b = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0]) + x[0] ** 2 * (y[1] - y[2])) / denom
    if a <= 0:
        return float(grid[i])
    xv = float(np.clip(-b / (2 * a), x[0], x[2]))
    return float(math.exp(xv))


def normalise_costs(cost: np.ndarray) -> np.ndarray:
    """Rescales each row of per-observation cost curves to [0, 1].

    Summed afterwards, every observation votes with the same weight: one whose inputs are
    badly off, with a steep curve around a wrong minimum, cannot outweigh the others.

    Args:
        cost: (M, F) cost of M observations over F candidate values.

    Returns:
        (M, F) with each row's minimum at 0 and maximum at 1. Non-finite entries (no
        solution at that value) become 1, the worst; flat rows and rows without a finite
        entry become 0 (no vote).
    """
    finite = np.isfinite(cost)
    low = np.where(finite, cost, np.inf).min(1, keepdims=True)
    high = np.where(finite, cost, -np.inf).max(1, keepdims=True)
    with np.errstate(invalid="ignore"):
        span = np.where(np.isfinite(high - low), high - low, 0.0)
        out = np.where(finite, (cost - low) / np.maximum(span, 1e-12), 1.0)
    return np.where(finite.any(1, keepdims=True), out, 0.0)


def ray_rotation(uv: torch.Tensor, focal: torch.Tensor, principal_point: torch.Tensor) -> torch.Tensor:
    """Smallest rotation taking the optical axis onto the viewing ray through a pixel.

    A detector that sees a person through a crop predicts the body's 3D orientation
    relative to the crop's viewing ray; rotating by this matrix expresses it in the
    camera frame. The angle grows as the focal shortens, which makes it a focal cue.

    Args:
        uv: (..., 2) pixel the ray passes through.
        focal: focal length(s), pixels, broadcastable to (...,).
        principal_point: (2,) pixels.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    f = torch.as_tensor(focal, dtype=uv.dtype, device=uv.device)
    xy = (uv - principal_point) / f[..., None]
    d = torch.cat([xy, torch.ones_like(xy[..., :1])], -1)
    d = d / d.norm(dim=-1, keepdim=True)
    z = torch.zeros_like(d)
    z[..., 2] = 1.0
    axis = torch.linalg.cross(z, d)
    sin = axis.norm(dim=-1, keepdim=True)
    angle = torch.atan2(sin, d[..., 2:3])
    rotvec = axis / sin.clamp(min=1e-12) * angle
    import roma

    return roma.rotvec_to_rotmat(rotvec)


def reprojection_nll(
    points: torch.Tensor,
    translation: torch.Tensor,
    uv: torch.Tensor,
    weights: torch.Tensor,
    focal: torch.Tensor,
    principal_point: torch.Tensor,
    pixel_std: torch.Tensor,
    depth_std: float,
    robust: float = 3.0,
) -> torch.Tensor:
    """Errors-in-variables reprojection cost: the body's depth relief is uncertain.

    Each point may move along its depth by ``delta`` at a Gaussian cost
    ``(delta / depth_std)²``; minimising over ``delta`` in closed form (linearised
    projection, image motion ``g = -(proj - c) / Z`` pixels per metre) gives the
    profile cost ``rᵀ S⁻¹ r`` with ``S = s² I + d² g gᵀ``, robustified with
    Geman-McClure at ``robust`` standard deviations. Without it, a search over f
    drifts to long focals, where errors in the body's depth relief stop mattering.

    Args:
        points: (M, K, 3) or (M, F, K, 3) rotated body points, metres.
        translation: (M, F, 3) translations, metres.
        uv: (M, K, 2) keypoints, pixels.
        weights: (M, K) weights.
        focal: (F,) or (M, F) focal lengths, pixels.
        principal_point: (2,) pixels.
        pixel_std: (M,) keypoint noise per body, pixels.
        depth_std: Depth noise of the body points, metres.
        robust: Geman-McClure scale, in standard deviations.

    Returns:
        (M, F) weighted mean robust cost per point (dimensionless).
    """
    if points.ndim == 3:
        points = points[:, None]
    cam = points + translation[:, :, None, :]  # (M, F, K, 3)
    proj = project(cam, _focal_mf(focal), principal_point)
    r = proj - uv[:, None]
    g = -(proj - principal_point) / cam[..., 2:3].clamp(min=1e-6)  # (M, F, K, 2)
    s2 = (pixel_std**2)[:, None, None]
    d2 = depth_std**2
    maha = ((r**2).sum(-1) - d2 * (g * r).sum(-1) ** 2 / (s2 + d2 * (g**2).sum(-1))) / s2
    c2 = robust**2
    cost = c2 * maha / (maha + c2)
    w = weights[:, None, :]
    return (cost * w).sum(-1) / w.sum(-1).clamp(min=1e-9)


def _rotation_parts(homographies: np.ndarray, focals: np.ndarray,
                    principal_point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``A = K2⁻¹ H K`` scaled to unit rows, and the zoom ``z`` (``K2 = K`` with ``z f``)
    that makes its rows equally long, for each homography and candidate focal.

    In pixels centred on the principal point, ``B = diag(1/f, 1/f, 1) H diag(f, f, 1)``
    of a camera that turned by ``R`` and zoomed by ``z`` is ``λ diag(z, z, 1) R``: its
    first two rows are ``z`` times as long as the third.

    Args:
        homographies: (N, 3, 3) pixel homographies.
        focals: (F,) candidate focals of each pair's first frame, or (N, F) per pair, pixels.
        principal_point: (2,) pixels.

    Returns:
        (N, F, 3, 3) ``A`` (a rotation when ``f`` is right) and (N, F) ``z``.
    """
    cx, cy = np.asarray(principal_point, np.float64)
    shift = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    hc = shift @ np.asarray(homographies, np.float64) @ np.linalg.inv(shift)  # (N, 3, 3)
    f = np.asarray(focals, np.float64)
    f = f[None, :] if f.ndim == 1 else f
    b = np.broadcast_to(hc[:, None], (len(hc), f.shape[1], 3, 3)).copy()
    b[..., :2, 2] /= f[..., None]  # diag(1/f, 1/f, 1) @ H @ diag(f, f, 1)
    b[..., 2, :2] *= f[..., None]
    rows = np.linalg.norm(b, axis=-1)  # (N, F, 3)
    zoom = np.sqrt(0.5 * (rows[..., 0] ** 2 + rows[..., 1] ** 2)) / rows[..., 2]
    a = b / rows[..., 2, None, None]
    a[..., :2, :] /= zoom[..., None, None]
    return a * np.sign(np.linalg.det(a))[..., None, None], zoom


def rotation_residual(homographies: np.ndarray, focals: np.ndarray, principal_point: np.ndarray) -> np.ndarray:
    """How far each homography is from a camera turning about its centre (and zooming),
    at each candidate focal.

    A camera that turns by ``R`` with a fixed focal maps the pixels of one frame to
    another's by ``H = K R K⁻¹`` (Hartley, "Self-calibration from multiple views with a
    rotating camera", ECCV 1994); zooming by ``z`` makes it ``K2 R K⁻¹`` with ``K2``'s
    focal ``z f``. At the true focal, and the zoom fitted by :func:`_rotation_parts`,
    ``K2⁻¹ H K`` is a rotation; at a wrong focal it is not, the more so the more the
    optical axis turned. (A pure zoom is a rotation at every focal: it does not fix one.)

    Args:
        homographies: (N, 3, 3) pixel-to-pixel homographies between frames.
        focals: (F,) candidate focal lengths of the first frame of each pair, or (N, F)
            per pair, pixels.
        principal_point: (2,) pixels.

    Returns:
        (N, F) ``‖A Aᵀ − I‖`` (Frobenius; 0 for an exact rotation).
    """
    a, _ = _rotation_parts(homographies, focals, principal_point)
    return np.linalg.norm(a @ np.swapaxes(a, -1, -2) - np.eye(3), axis=(-2, -1))


def zoom_between(homographies: np.ndarray, focal: float, principal_point: np.ndarray) -> np.ndarray:
    """Focal of the second frame over the first's, for each homography between two frames
    of a camera that turns and zooms about its centre.

    Exact for a pure zoom at any ``focal``; with a turn, a focal 30 % off errs by about
    0.4 % per 5° of turn.

    Args:
        homographies: (N, 3, 3) pixel homographies.
        focal: The first frame's focal, pixels.
        principal_point: (2,) pixels.

    Returns:
        (N,) zoom factors.
    """
    return _rotation_parts(homographies, np.array([focal]), principal_point)[1][:, 0]


def optical_axis_turn_deg(homographies: np.ndarray, focal: float | np.ndarray,
                          principal_point: np.ndarray) -> np.ndarray:
    """Angle by which the optical axis turned between the frames of each homography
    (pan and tilt; a roll about the axis does not count), degrees, at ``focal``.

    Args:
        homographies: (N, 3, 3) pixel homographies.
        focal: Focal length of the first frame of each pair: one, or (N,), pixels.
        principal_point: (2,) pixels.

    Returns:
        (N,) degrees, from the rotation nearest to ``A`` of :func:`rotation_residual`.
    """
    r, _ = rotation_between(homographies, focal, principal_point)
    return np.degrees(np.arccos(np.clip(r[:, 2, 2], -1.0, 1.0)))


def rotation_between(homographies: np.ndarray, focal: float | np.ndarray,
                     principal_point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How a camera that turns (and zooms) about its centre turned between two frames.

    ``H = K₂ R K⁻¹`` maps the first frame's pixels to the second's; ``R`` maps a ray's
    direction in the first frame's camera axes to the second's (``d₂ = R d₁``, OpenCV
    axes). It is the rotation nearest to ``A = K₂⁻¹ H K`` (:func:`_rotation_parts`, with
    the zoom read from ``H``).

    Args:
        homographies: (N, 3, 3) pixel homographies.
        focal: Focal length of the first frame of each pair: one, or (N,), pixels.
        principal_point: (2,) pixels.

    Returns:
        (N, 3, 3) rotations, and (N,) ``‖A Aᵀ − I‖`` (:func:`rotation_residual` at
        ``focal``: how far each homography is from a turn).
    """
    h = np.asarray(homographies, np.float64).reshape(-1, 3, 3)
    focals = np.broadcast_to(np.asarray(focal, np.float64), (len(h),))[:, None]
    a = _rotation_parts(h, focals, principal_point)[0][:, 0]
    u, _, vt = np.linalg.svd(a)
    return u @ vt, np.linalg.norm(a @ np.swapaxes(a, -1, -2) - np.eye(3), axis=(-2, -1))


def fill_rotations(rotations: list[np.ndarray | None], before: np.ndarray) -> tuple[np.ndarray, int]:
    """A sequence of rotations with gaps filled: each run of missing ones is
    interpolated (slerp, evenly in frames) between the known rotations on either side,
    or keeps the one before it where none follows.

    Args:
        rotations: (3, 3) rotation per frame, ``None`` where not known.
        before: (3, 3) the rotation of the frame before the first.

    Returns:
        (T, 3, 3) rotations, and how many were filled.
    """
    import roma

    out = np.empty((len(rotations), 3, 3))
    last, gap = np.asarray(before, np.float64), []
    for i, r in enumerate(rotations):
        if r is None:
            gap.append(i)
            continue
        if gap:
            steps = torch.arange(1, len(gap) + 1, dtype=torch.float64) / (len(gap) + 1)
            out[gap] = roma.rotmat_slerp(torch.as_tensor(last), torch.as_tensor(r, dtype=torch.float64), steps).numpy()
            gap = []
        out[i] = last = np.asarray(r, np.float64)
    out[gap] = last
    return out, sum(r is None for r in rotations)


@dataclass(frozen=True)
class RotationFocal:
    """The focal length that makes a turning camera's frame-to-frame motion a rotation.

    Attributes:
        focal_px: Pixels.
        turn_deg: Turn of the optical axis among the frames used (90th percentile),
            degrees.
        frames: Frames whose motion was used (those far off a rotation are dropped).
        contrast: Cost at 0.8× and 1.25× the focal over the cost at it (the smaller of
            the two): how sharply the frames fix it.
    """

    focal_px: float
    turn_deg: float
    frames: int
    contrast: float


def focal_from_rotation(homographies: np.ndarray, width: int, height: int, principal_point: np.ndarray | None = None,
                        fov_range_deg: tuple[float, float] = (15.0, 130.0), min_turn_deg: float = 3.0,
                        min_contrast: float = 1.5, anchor_zoom: np.ndarray | None = None) -> RotationFocal | None:
    """The focal length of a camera that turns about its centre (pans, tilts), from
    homographies between its frames (each from an anchor frame to a later one).

    Args:
        homographies: (N, 3, 3) pixel homographies from an anchor frame to later frames
            (background only: people move on their own).
        width, height: Frame size, pixels.
        principal_point: (2,) pixels (``None``: the image centre).
        fov_range_deg: Horizontal field-of-view range searched, degrees.
        min_turn_deg: The optical axis must turn at least this much, degrees: a still
            camera's homographies are rotations at every focal.
        min_contrast: Least ratio of the cost 25 % off the minimum to the minimum's (a
            still camera's is about 1; a 35 degree view panned 8 degrees, 3.0; a 100
            degree view mostly hidden by a person 0.9 m away, 1.2).
        anchor_zoom: (N,) zoom of each pair's first frame relative to the focal sought
            (a camera that zooms as it turns); ``None``: 1.

    Returns:
        The estimate (the focal at zoom 1), or ``None`` when the camera did not turn
        enough, the minimum lies at the edge of the range, or is not sharp (a moving
        camera, a zoom, roll only).
    """
    h = np.asarray(homographies, np.float64).reshape(-1, 3, 3)
    if len(h) == 0 or not np.isfinite(h).all():
        return None
    zoom = np.ones(len(h)) if anchor_zoom is None else np.asarray(anchor_zoom, np.float64).reshape(len(h))
    pp = np.array([width / 2.0, height / 2.0]) if principal_point is None else np.asarray(principal_point, np.float64)
    grid = focal_grid(width, height, *fov_range_deg, n=96)
    residual = rotation_residual(h, grid[None, :] * zoom[:, None], pp) ** 2  # (N, F)
    # Homographies far off a rotation at the first minimum (a bad fit, a mover taken for
    # background) are dropped: one of them can outweigh all the others.
    first = int(np.argmin(residual.sum(0)))
    keep = residual[:, first] <= 9.0 * np.median(residual[:, first])
    h, zoom, cost = h[keep], zoom[keep], residual[keep].sum(0)
    i = int(np.argmin(cost))
    if i == 0 or i == len(grid) - 1:
        return None
    focal = refine_minimum(grid, cost)
    turn = float(np.percentile(optical_axis_turn_deg(h, focal * zoom, pp), 90))
    around = (rotation_residual(h, np.array([0.8, 1.0, 1.25])[None, :] * focal * zoom[:, None], pp) ** 2).sum(0)
    contrast = float(min(around[0], around[2]) / max(around[1], 1e-18))
    if turn < min_turn_deg or contrast < min_contrast:
        return None
    return RotationFocal(focal, turn, len(h), contrast)
