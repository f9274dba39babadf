"""People share one ground: a multi-person cue to each body's metric size, and a still
camera's focal length when it looks down at people walking on it.

A monocular fit places a person at the depth where a body of the fitted size covers its
image: a child fitted with an adult's size lands too far away, in proportion. When three
or more people stand on one floor, the floor tells them apart. Seen from each person's
fit, the camera stands at some height above the floor where that person's feet are;
scaling a person (body size and distance together, about the camera centre) scales that
height too. The camera has one height, so the persons whose fits disagree with the
others' are rescaled to agree (Ugrinovic et al., "Body Size and Depth Disambiguation in
Multi-Person Reconstruction from Single Images", 3DV 2021, use the same idea).

The floor also gives a still camera that looks down (or up) at people walking on it its
focal length: :func:`focal_from_floor` and the note above it.

Conventions: OpenCV camera (x right, y down, z forward), metres. ``down`` is the unit
normal of the floor pointing from the camera towards it: the floor is the plane
``{p : down . p = h}`` with ``h > 0`` the camera's height above it. A track's *scale* is
the factor by which its body size and distance are to be multiplied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from meshstream.models.camera import focal_grid, refine_minimum


def floor_normal(up: np.ndarray) -> np.ndarray:
    """The floor's downward normal from the bodies' up directions (people stand upright).

    Args:
        up: (M, 3) each body's up axis in camera space (unit vectors).

    Returns:
        (3,) unit vector: the per-axis median of ``-up``, normalised.
    """
    down = -np.median(np.asarray(up, np.float64), axis=0)
    norm = np.linalg.norm(down)
    if not np.isfinite(norm) or norm < 1e-6:
        raise ValueError("floor_normal needs up vectors that agree on a direction")
    return down / norm


def camera_heights(feet: np.ndarray, down: np.ndarray) -> np.ndarray:
    """The camera's height above the floor as each person-frame's lowest foot point sees it.

    Args:
        feet: (M, K, 3) camera-space foot points (ankles, heels, toes), metres.
        down: (3,) the floor's downward unit normal.

    Returns:
        (M,) metres: the largest ``down . p`` over each person-frame's foot points.
    """
    return (np.asarray(feet, np.float64) @ np.asarray(down, np.float64)).max(axis=1)


def size_posterior(log_ratio: np.ndarray, noise: float, typical_sd: float, outlier_sd: float,
                   outlier_prob: float) -> np.ndarray:
    """Posterior mean of a track's log scale given the floor's vote for it.

    The prior says most people's fitted size is about right (normal, ``typical_sd``) and
    a few are far off (children, very tall people: normal, ``outlier_sd``, with
    probability ``outlier_prob``); the floor votes ``log_ratio`` with Gaussian ``noise``.
    Small disagreements are mostly noise and move a track little; large ones move it
    almost all the way.

    Args:
        log_ratio: (N,) log of the scale the floor asks for.
        noise: Standard deviation of that vote, log units.
        typical_sd: Prior standard deviation of a typical track's log scale.
        outlier_sd: Prior standard deviation of an outlier's.
        outlier_prob: Prior probability of an outlier.

    Returns:
        (N,) posterior mean log scale.
    """
    x = np.asarray(log_ratio, np.float64)
    out = np.zeros_like(x)
    weights = np.zeros_like(x)
    for prob, sd in ((1.0 - outlier_prob, typical_sd), (outlier_prob, outlier_sd)):
        var = sd**2 + noise**2
        evidence = prob * np.exp(-0.5 * x**2 / var) / math.sqrt(var)
        out += evidence * x * sd**2 / var
        weights += evidence
    return out / np.maximum(weights, 1e-300)


@dataclass
class GroundEstimate:
    """The shared floor as the persons seen so far place it.

    Attributes:
        down: (3,) the floor's downward unit normal in camera space.
        camera_height_m: The camera's height above the floor, metres, at the scale where
            the median track keeps its fitted size.
        scales: Track id -> scale of its body size and distance (1: unchanged).
        tracks: Number of tracks that voted.
        down_cue: What gave ``down``: ``"scene lines"`` (:meth:`SharedGround.set_down`),
            ``"torsos"`` (the torsos' image lines about the bodies' mean up axis) or
            ``"bodies"`` (the fitted bodies' mean up axis alone).
    """

    down: np.ndarray
    camera_height_m: float
    scales: dict[int, float]
    tracks: int
    down_cue: str = "bodies"


class SharedGround:
    """Running estimate of the floor and of each track's size from it (one per shot).

    Feed it each chunk's fitted person-frames with :meth:`add` (and their torsos with
    :meth:`add_torsos`); :meth:`estimate` returns the scales once ``min_tracks`` tracks
    have each shown their feet in ``min_frames`` frames. Heights are kept at each
    track's unit scale (divided by the scale its fit used), so a rescaled track keeps
    voting consistently.

    The floor's normal is the scene's where :meth:`set_down` gave it. Else it is the
    fitted bodies' mean down axis refined by the torsos' image lines
    (:func:`down_from_torsos`): the bodies' axes alone lean by the fits' root-orientation
    bias, a few degrees (more for a camera looking down), and a degree of error in the
    normal moves the height a person two metres to the side sees by 3-4 %.

    Args:
        min_tracks: Tracks needed before any is rescaled (with two, the floor cannot
            tell which of them is off).
        min_frames: Person-frames with visible feet a track needs to vote.
        noise: Noise of a track's median camera height, log units.
        typical_sd: Prior spread of a typical person's log size error.
        outlier_sd: Prior spread of an outlier's (children, very tall people).
        outlier_prob: Prior share of outliers.
        max_scale: Scales are clipped to ``[1 / max_scale, max_scale]``.
        up_sd_deg: Scale of the bodies' mean down axis's error as the torsos' prior,
            degrees; 0 takes the bodies' axis alone.
        line_sigma: Scale of a torso's miss of the vertical (sine of the angle).
    """

    def __init__(self, min_tracks: int = 3, min_frames: int = 8, noise: float = 0.05, typical_sd: float = 0.04,
                 outlier_sd: float = 0.3, outlier_prob: float = 0.1, max_scale: float = 1.6, up_sd_deg: float = 3.0,
                 line_sigma: float = 0.05) -> None:
        if min_tracks < 2:
            raise ValueError(f"SharedGround needs min_tracks >= 2, got {min_tracks}")
        self.min_tracks = min_tracks
        self.min_frames = min_frames
        self.noise = noise
        self.typical_sd = typical_sd
        self.outlier_sd = outlier_sd
        self.outlier_prob = outlier_prob
        self.max_scale = max_scale
        self.up_sd_deg = up_sd_deg
        self.line_sigma = line_sigma
        self.reset()

    def reset(self) -> None:
        """Forgets every track and the scene's vertical (a new shot)."""
        self._up: list[np.ndarray] = []
        self._feet: dict[int, list[np.ndarray]] = {}
        self._torsos: list[np.ndarray] = []
        self.down: np.ndarray | None = None  # (3,) the floor's downward normal when the scene gives it

    def set_down(self, down: np.ndarray) -> None:
        """Takes the floor's normal from the scene (e.g. the vertical of its straight
        lines, :class:`~meshstream.models.vanishing.LinesFocal`) instead of the bodies'
        mean down axis.

        Args:
            down: (3,) direction in camera axes; flipped to point down (+y) if needed.
        """
        d = np.asarray(down, np.float64)
        d = d / np.linalg.norm(d)
        self.down = d if d[1] >= 0 else -d

    def add(self, track_id: np.ndarray, feet: np.ndarray, up: np.ndarray, scale: np.ndarray,
            usable: np.ndarray) -> None:
        """Adds fitted person-frames.

        Args:
            track_id: (M,) int.
            feet: (M, K, 3) camera-space foot points of each fit, metres.
            up: (M, 3) each body's up axis in camera space.
            scale: (M,) the scale each fit was made with (its track's at the time).
            usable: (M,) bool: the fit is good and its feet are seen.
        """
        usable = np.asarray(usable, bool)
        if not usable.any():
            return
        self._up.append(np.asarray(up, np.float64)[usable])
        unit = np.asarray(feet, np.float64)[usable] / np.asarray(scale, np.float64)[usable, None, None]
        for tid in np.unique(track_id[usable]):
            self._feet.setdefault(int(tid), []).append(unit[track_id[usable] == tid])

    def add_torsos(self, planes: np.ndarray) -> None:
        """Adds upright person-frames' torsos.

        Args:
            planes: (M, 3) unit normals of the planes through the camera centre and each
                torso's image line (:func:`line_planes` of :func:`torso_lines`).
        """
        planes = np.asarray(planes, np.float64).reshape(-1, 3)
        if len(planes):
            self._torsos.append(planes)

    def estimate(self) -> GroundEstimate | None:
        """The floor and the tracks' scales, or ``None`` while too few tracks voted."""
        voters = {t: np.concatenate(f) for t, f in self._feet.items() if sum(len(x) for x in f) >= self.min_frames}
        if len(voters) < self.min_tracks:
            return None
        down, cue = self.down, "scene lines"
        if down is None:
            down, cue = floor_normal(np.concatenate(self._up)), "bodies"
            torsos = np.concatenate(self._torsos) if self._torsos else np.zeros((0, 3))
            if self.up_sd_deg > 0 and len(torsos) >= self.min_tracks * self.min_frames:
                down, cue = down_from_torsos(torsos, down, self.up_sd_deg, self.line_sigma), "torsos"
        heights = {t: float(np.median(camera_heights(f, down))) for t, f in voters.items()}
        if min(heights.values()) <= 0:
            return None  # feet above the camera's horizon plane: not a floor seen from above
        h = float(np.median(list(heights.values())))
        tids = list(heights)
        log_ratio = np.log(h / np.array([heights[t] for t in tids]))
        log_scale = size_posterior(log_ratio, self.noise, self.typical_sd, self.outlier_sd, self.outlier_prob)
        bound = math.log(self.max_scale)
        scales = {t: float(math.exp(np.clip(s, -bound, bound))) for t, s in zip(tids, log_scale)}
        return GroundEstimate(down, h, scales, len(voters), cue)


# --------------------------------------------------------------------------- the focal from the floor
# A still camera that looks down (or up) at people walking on a level floor sees two
# things that agree only at its true focal length. The torsos of upright people are
# vertical, so their image lines meet at the vertical vanishing point, and the back-
# projection of that point through the candidate intrinsics is the floor's normal; and
# each person's hips keep one height above the floor as they walk. Changing the focal
# rescales every fitted depth (a body of fixed size covering the same pixels) but leaves
# the vanishing point where it is, so a wrong focal tilts the normal one way and the walk
# the other: hips that walk towards or away from the camera then climb or sink. Lv, Zhao
# and Nevatia (PAMI 2006) and Krahnstoever and Mendonca (ICCV 2005) calibrate
# surveillance cameras from walking people in this spirit. A level camera (tilt near 0)
# makes the vanishing point recede to infinity and leaves the focal unobserved.

#: Tilt offsets (radians) each tilt-and-roll fit starts from; the best end wins.
_TILT_STARTS = (0.0, 0.15, -0.15)

#: COCO-17 indices of the hips and shoulders: the torso's ends.
COCO_HIPS = (11, 12)
COCO_SHOULDERS = (5, 6)


@dataclass
class FloorFocal:
    """A still camera's focal from people walking upright on one floor (:func:`focal_from_floor`).

    Attributes:
        focal_px: Focal length at zoom 1, pixels.
        tilt_deg: The camera's pitch at that focal: how far its optical axis looks below
            the horizon, degrees (negative: above it).
        roll_deg: Its roll about the optical axis, degrees.
        spread: Jackknife standard error of ln(focal) over blocks of frames: about the
            relative error that the footage's noise alone leaves.
        person_frames: Person-frames used.
        tracks: Tracks used.
    """

    focal_px: float
    tilt_deg: float
    roll_deg: float
    spread: float
    person_frames: int
    tracks: int


def floor_down(tilt: float, roll: float) -> np.ndarray:
    """The floor's downward unit normal in camera axes (OpenCV: x right, y down, z forward).

    Args:
        tilt: The camera's pitch below the horizon, radians (0: level, looking along the floor).
        roll: Its roll about the optical axis, radians.

    Returns:
        (3,) unit vector; ``(0, 1, 0)`` for a level, unrolled camera.
    """
    return np.array([-math.sin(roll) * math.cos(tilt), math.cos(roll) * math.cos(tilt), math.sin(tilt)])


def torso_lines(keypoints2d: np.ndarray, principal_point: np.ndarray, min_conf: float = 0.5
                ) -> tuple[np.ndarray, np.ndarray]:
    """Image lines through each person-frame's hip and shoulder midpoints.

    Args:
        keypoints2d: (M, 17, 3) COCO-17 keypoints: x, y in pixels and a confidence.
        principal_point: (2,) pixels.
        min_conf: Hips and shoulders count when all four are seen at least this confidently.

    Returns:
        (M, 3) homogeneous lines ``l`` (``l . (x, y, 1) = 0``) in pixels relative to the
        principal point, and (M,) bool: the line is usable.
    """
    kp = np.asarray(keypoints2d, np.float64)
    pp = np.asarray(principal_point, np.float64)
    hips = kp[:, COCO_HIPS, :2].mean(1) - pp
    shoulders = kp[:, COCO_SHOULDERS, :2].mean(1) - pp
    ones = np.ones((len(kp), 1))
    lines = np.cross(np.hstack([hips, ones]), np.hstack([shoulders, ones]))
    seen = (kp[:, COCO_HIPS + COCO_SHOULDERS, 2] >= min_conf).all(1)
    return lines, seen & (np.linalg.norm(shoulders - hips, axis=1) >= 2.0)


def line_planes(lines: np.ndarray, focal_px: np.ndarray | float) -> np.ndarray:
    """Unit normals of the planes through the camera centre and each image line.

    Args:
        lines: (M, 3) homogeneous lines in pixels relative to the principal point
            (:func:`torso_lines`).
        focal_px: Each line's focal length (scalar or (M,)), pixels.

    Returns:
        (M, 3) unit vectors in camera axes (zero rows stay zero).
    """
    f = np.broadcast_to(np.asarray(focal_px, np.float64), (len(lines),))
    normals = np.asarray(lines, np.float64) * np.stack([f, f, np.ones_like(f)], 1)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)


def down_from_torsos(planes: np.ndarray, prior_down: np.ndarray, prior_sd_deg: float = 3.0,
                     line_sigma: float = 0.05) -> np.ndarray:
    """The floor's downward normal that upright torsos show, near a prior direction.

    An upright torso is vertical, so the plane through the camera centre and its image
    line holds the floor's normal. Each plane's miss (the sine of the angle between it
    and the candidate normal) counts with a Cauchy cost of scale ``line_sigma``; the
    angle from ``prior_down`` (the fitted bodies' mean down axis) with a Gaussian of
    ``prior_sd_deg``. Where the torsos leave a direction unobserved (everyone near the
    image's centre line leaves the tilt free), the prior keeps it.

    Args:
        planes: (M, 3) unit normals of the torsos' planes (:func:`line_planes`).
        prior_down: (3,) unit vector pointing down (+y side), camera axes.
        prior_sd_deg: Scale of the prior's error, degrees.
        line_sigma: Scale of a torso's miss of the vertical (sine of the angle).

    Returns:
        (3,) unit vector: the floor's downward normal in camera axes.
    """
    planes = np.asarray(planes, np.float64)
    prior = np.asarray(prior_down, np.float64) / np.linalg.norm(prior_down)
    sd = math.radians(prior_sd_deg)

    def cost(p: np.ndarray) -> float:
        down = floor_down(p[0], p[1])
        angle = math.acos(min(max(float(down @ prior), -1.0), 1.0))
        return torso_miss_cost(planes, down, line_sigma) + 0.5 * (angle / sd) ** 2

    start = np.array([math.asin(np.clip(prior[2], -1.0, 1.0)), math.atan2(-prior[0], prior[1])])
    best = _minimise_tilt_roll(cost, start, _TILT_STARTS, xatol=1e-6, fatol=1e-8)
    return floor_down(best.x[0], best.x[1])


def torso_miss_cost(planes: np.ndarray, down: np.ndarray, line_sigma: float) -> float:
    """Cauchy cost of the torsos' planes missing the vertical ``down``: the sum of
    ``log(1 + (n . down / line_sigma)^2)`` over the planes' unit normals ``n`` (M, 3)."""
    return float(np.log1p(((planes @ down) / line_sigma) ** 2).sum())


def _minimise_tilt_roll(cost, start: np.ndarray, tries: tuple[float, ...], xatol: float, fatol: float):
    """Nelder-Mead on ``cost((tilt, roll))`` from ``start`` offset in tilt by each of
    ``tries`` (radians); the best end's ``OptimizeResult``."""
    from scipy.optimize import minimize

    best = None
    for step in tries:
        res = minimize(cost, start + np.array([step, 0.0]), method="Nelder-Mead",
                       options={"xatol": xatol, "fatol": fatol})
        if best is None or res.fun < best.fun:
            best = res
    return best


def _track_smooth(values: np.ndarray, track_id: np.ndarray, frame_index: np.ndarray, window: int) -> np.ndarray:
    """Moving average of ``values`` (M, D) over ``window`` frames within each track."""
    from scipy.ndimage import uniform_filter1d

    out = np.array(values, np.float64)
    for tid in np.unique(track_id):
        rows = np.nonzero(track_id == tid)[0]
        rows = rows[np.argsort(frame_index[rows])]
        out[rows] = uniform_filter1d(out[rows], min(window, len(rows)), axis=0, mode="nearest")
    return out


class _FloorCost:
    """Profile cost of candidate focals for :func:`focal_from_floor` (its inputs fixed;
    ``walks``: the rows whose hips' height counts)."""

    def __init__(self, lines: np.ndarray, pelvis: np.ndarray, track_id: np.ndarray, walks: np.ndarray,
                 zoom: np.ndarray, fit_focal_px: float, line_sigma: float, height_sigma_m: float,
                 roll_sigma_deg: float) -> None:
        self.lines, self.pelvis, self.zoom = lines, pelvis, zoom
        self.groups = [(track_id == t) & walks for t in np.unique(track_id[walks])]
        self.fit_focal = fit_focal_px
        self.line_sigma, self.height_sigma, self.roll_sigma = line_sigma, height_sigma_m, math.radians(roll_sigma_deg)

    def _normals(self, focal_px: float) -> np.ndarray:
        """(M, 3) unit normals of the planes through the camera centre and each torso line."""
        return line_planes(self.lines, focal_px * self.zoom)

    def _line_cost(self, normals: np.ndarray, p: np.ndarray) -> float:
        return torso_miss_cost(normals, floor_down(p[0], p[1]), self.line_sigma) + (p[1] / self.roll_sigma) ** 2

    @staticmethod
    def _minimise(cost, start: np.ndarray, tries: tuple[float, ...]):
        return _minimise_tilt_roll(cost, start, tries, xatol=1e-4, fatol=1e-5)

    def __call__(self, focal_px: float, start: np.ndarray, tries: tuple[float, ...] = _TILT_STARTS
                 ) -> tuple[float, np.ndarray]:
        """Cost at ``focal_px`` minimised over the camera's tilt and roll from ``start``;
        returns it and the (tilt, roll) found, radians. ``tries``: tilt offsets from
        ``start`` to begin from (the best end wins)."""
        normals = self._normals(focal_px)
        # The same pixels at another focal: every depth scales with the focal.
        pelvis = self.pelvis * np.array([1.0, 1.0, focal_px / self.fit_focal])

        def cost(p: np.ndarray) -> float:
            c = self._line_cost(normals, p)
            height = pelvis @ floor_down(p[0], p[1])
            for g in self.groups:
                c += np.log1p(((height[g] - np.median(height[g])) / self.height_sigma) ** 2).sum()
            return float(c)

        best = self._minimise(cost, start, tries)
        return float(best.fun), best.x

    def lines_tilt(self, focal_px: float, start: np.ndarray) -> float:
        """The camera's tilt that the torso lines alone give at ``focal_px``, radians."""
        normals = self._normals(focal_px)
        return float(self._minimise(lambda p: self._line_cost(normals, p), start, _TILT_STARTS).x[0])


def focal_from_floor(keypoints2d: np.ndarray, pelvis: np.ndarray, track_id: np.ndarray, frame_index: np.ndarray,
                     fit_focal_px: float, width: int, height: int, *, principal_point: np.ndarray | None = None,
                     zoom: np.ndarray | None = None, fov_range_deg: tuple[float, float] = (15.0, 130.0),
                     min_conf: float = 0.5, min_tilt_deg: float = 8.0, max_spread: float = 0.25,
                     max_tilt_gap_deg: float = 4.0, min_depth_change: float = 0.15,
                     min_track_frames: int = 8, block_frames: int = 12, smooth_frames: int = 9,
                     line_sigma: float = 0.05, height_sigma_m: float = 0.04,
                     roll_sigma_deg: float = 3.0) -> FloorFocal | None:
    """A still camera's focal length from people walking upright on a level floor.

    At a candidate focal the torsos' image lines give the floor's normal (their
    vanishing point back-projected), and the fitted hips, their depths rescaled to that
    focal, must keep one height above the floor per track. The cost (Cauchy on both)
    is minimised over the camera's tilt and roll at each focal of a log grid; its
    minimum is the estimate. The spread is the jackknife's over blocks of
    ``block_frames`` frames of each track.

    Args:
        keypoints2d: (M, 17, 3) COCO-17 keypoints of the person-frames, pixels and confidence.
        pelvis: (M, 3) their fitted hip midpoints in camera space at ``fit_focal_px``, metres.
        track_id: (M,) track of each person-frame.
        frame_index: (M,) frame of each.
        fit_focal_px: The focal (at zoom 1) the hips were fitted at, pixels.
        width, height: Frame size, pixels.
        principal_point: (2,) pixels (``None``: the image centre).
        zoom: (M,) each frame's zoom (its focal over the focal at zoom 1); ``None``: 1.
        fov_range_deg: Horizontal field-of-view range searched, degrees.
        min_conf: Least confidence of the hips and shoulders used.
        min_tilt_deg: The camera must look at least this far down (or up) at the
            estimate: a level camera leaves the focal unobserved.
        max_spread: Largest jackknife standard error of ln(focal) accepted.
        max_tilt_gap_deg: The torso lines alone must put the camera's tilt within this of
            the estimate's, degrees (a squat or a kick in place can pass for a walk on a
            tilted floor, at a tilt the torsos do not show).
        min_depth_change: A track's hips count when its depth (averaged as below)
            varies by at least this fraction of its median: the focal shows in the
            height of hips that walk toward or away from the camera. Every track's
            torsos count.
        min_track_frames: Tracks with fewer usable person-frames are left out.
        block_frames: Frames per jackknife block.
        smooth_frames: The hips are averaged over this many frames per track first
            (each frame's fitted depth jitters by a few percent).
        line_sigma: Scale of a torso line's miss of the vertical (sine of the angle).
        height_sigma_m: Scale of the hips' height changes, metres.
        roll_sigma_deg: Prior scale of the camera's roll, degrees.

    Returns:
        The estimate, or ``None`` when too few people were seen, nobody walked toward or
        away from the camera, the camera looks about level, the minimum lies at the edge
        of the range (or of a jackknife's), the spread exceeds ``max_spread`` or the torso
        lines disagree on the tilt.
    """
    pp = np.array([width / 2.0, height / 2.0]) if principal_point is None else np.asarray(principal_point, np.float64)
    lines, ok = torso_lines(keypoints2d, pp, min_conf)
    track_id = np.asarray(track_id)
    frame_index = np.asarray(frame_index)
    zoom = np.ones(len(lines)) if zoom is None else np.asarray(zoom, np.float64)
    ok &= np.isfinite(np.asarray(pelvis, np.float64)).all(1)
    for tid in np.unique(track_id[ok]):
        if (ok & (track_id == tid)).sum() < min_track_frames:
            ok &= track_id != tid
    if not ok.any():
        return None
    lines, track_id, frame_index, zoom = lines[ok], track_id[ok], frame_index[ok], zoom[ok]
    hips = _track_smooth(np.asarray(pelvis, np.float64)[ok], track_id, frame_index, smooth_frames)
    walks = np.zeros(len(lines), bool)
    for tid in np.unique(track_id):
        rows = track_id == tid
        walks[rows] = np.ptp(hips[rows, 2]) >= min_depth_change * np.median(hips[rows, 2])
    if not walks.any():
        return None
    blocks = np.unique(np.stack([track_id, frame_index // block_frames], 1), axis=0, return_inverse=True)[1].ravel()
    if blocks.max() < 2:  # fewer than three blocks: no spread to measure
        return None

    def profile(rows: np.ndarray, focals: np.ndarray, starts: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray, _FloorCost]:
        """Cost (F,) and (tilt, roll) (F, 2) over ``focals`` of the rows selected, and the cost."""
        cost = _FloorCost(lines[rows], hips[rows], track_id[rows], walks[rows], zoom[rows], fit_focal_px, line_sigma,
                          height_sigma_m, roll_sigma_deg)
        values, params, start = [], [], np.array([0.2, 0.0])
        for i, f in enumerate(focals):
            v, start = cost(f, start) if starts is None else cost(f, starts[i], (0.0,))
            values.append(v)
            params.append(start)
        return np.array(values), np.array(params), cost

    grid = focal_grid(width, height, *fov_range_deg, n=48)
    everyone = np.ones(len(lines), bool)
    cost, params, floor_cost = profile(everyone, grid, None)
    best = int(np.argmin(cost))
    if best == 0 or best == len(grid) - 1:
        return None
    focal = refine_minimum(grid, cost)
    tilt, roll = params[best]
    if abs(math.degrees(tilt)) < min_tilt_deg:
        return None
    if abs(math.degrees(floor_cost.lines_tilt(focal, params[best]) - tilt)) > max_tilt_gap_deg:
        return None
    # Jackknife over blocks, on the grid near the minimum, each focal from its full-data tilt and roll.
    near = slice(max(best - 6, 0), min(best + 7, len(grid)))
    estimates = []
    for b in range(blocks.max() + 1):
        c, _, _ = profile(blocks != b, grid[near], params[near])
        if int(np.argmin(c)) in (0, len(c) - 1):  # no minimum near the full data's
            return None
        estimates.append(math.log(refine_minimum(grid[near], c)))
    estimates = np.array(estimates)
    spread = float(math.sqrt((len(estimates) - 1) / len(estimates) * ((estimates - estimates.mean()) ** 2).sum()))
    if spread > max_spread:
        return None
    return FloorFocal(focal, math.degrees(tilt), math.degrees(roll), spread, int(len(lines)),
                      int(len(np.unique(track_id))))
