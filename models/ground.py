"""People share one ground: a multi-person cue to each body's metric size.

A monocular fit places a person at the depth where a body of the fitted size covers its
image: a child fitted with an adult's size lands too far away, in proportion. When three
or more people stand on one floor, the floor tells them apart. Seen from each person's
fit, the camera stands at some height above the floor where that person's feet are;
scaling a person (body size and distance together, about the camera centre) scales that
height too. The camera has one height, so the persons whose fits disagree with the
others' are rescaled to agree (Ugrinovic et al., "Body Size and Depth Disambiguation in
Multi-Person Reconstruction from Single Images", 3DV 2021, use the same idea).

Conventions: OpenCV camera (x right, y down, z forward), metres. ``down`` is the unit
normal of the floor pointing from the camera towards it: the floor is the plane
``{p : down . p = h}`` with ``h > 0`` the camera's height above it. A track's *scale* is
the factor by which its body size and distance are to be multiplied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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
    """

    down: np.ndarray
    camera_height_m: float
    scales: dict[int, float]
    tracks: int


class SharedGround:
    """Running estimate of the floor and of each track's size from it (one per shot).

    Feed it each chunk's fitted person-frames with :meth:`add`; :meth:`estimate` returns
    the scales once ``min_tracks`` tracks have each shown their feet in ``min_frames``
    frames. Heights are kept at each track's unit scale (divided by the scale its fit
    used), so a rescaled track keeps voting consistently.

    Args:
        min_tracks: Tracks needed before any is rescaled (with two, the floor cannot
            tell which of them is off).
        min_frames: Person-frames with visible feet a track needs to vote.
        noise: Noise of a track's median camera height, log units.
        typical_sd: Prior spread of a typical person's log size error.
        outlier_sd: Prior spread of an outlier's (children, very tall people).
        outlier_prob: Prior share of outliers.
        max_scale: Scales are clipped to ``[1 / max_scale, max_scale]``.
    """

    def __init__(self, min_tracks: int = 3, min_frames: int = 8, noise: float = 0.05, typical_sd: float = 0.04,
                 outlier_sd: float = 0.3, outlier_prob: float = 0.1, max_scale: float = 1.6) -> None:
        if min_tracks < 2:
            raise ValueError(f"SharedGround needs min_tracks >= 2, got {min_tracks}")
        self.min_tracks = min_tracks
        self.min_frames = min_frames
        self.noise = noise
        self.typical_sd = typical_sd
        self.outlier_sd = outlier_sd
        self.outlier_prob = outlier_prob
        self.max_scale = max_scale
        self.reset()

    def reset(self) -> None:
        """Forgets every track (a new shot)."""
        self._up: list[np.ndarray] = []
        self._feet: dict[int, list[np.ndarray]] = {}

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

    def estimate(self) -> GroundEstimate | None:
        """The floor and the tracks' scales, or ``None`` while too few tracks voted."""
        voters = {t: np.concatenate(f) for t, f in self._feet.items() if sum(len(x) for x in f) >= self.min_frames}
        if len(voters) < self.min_tracks:
            return None
        down = floor_normal(np.concatenate(self._up))
        heights = {t: float(np.median(camera_heights(f, down))) for t, f in voters.items()}
        if min(heights.values()) <= 0:
            return None  # feet above the camera's horizon plane: not a floor seen from above
        h = float(np.median(list(heights.values())))
        tids = list(heights)
        log_ratio = np.log(h / np.array([heights[t] for t in tids]))
        log_scale = size_posterior(log_ratio, self.noise, self.typical_sd, self.outlier_sd, self.outlier_prob)
        bound = math.log(self.max_scale)
        scales = {t: float(math.exp(np.clip(s, -bound, bound))) for t, s in zip(tids, log_scale)}
        return GroundEstimate(down, h, scales, len(voters))
