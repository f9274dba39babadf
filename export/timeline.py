"""A track's samples on the video's regular frame clock, for fixed-rate animation files.

BVH, SMPL-X ``.npz`` and ``.smpl`` store one pose per frame at one frame rate, so a
track that was not seen in some frames (occluded, missed, out of view) would play
short and drift out of sync with the video. Such gaps are filled on the clock of the
stored frames: a gap up to ``max_gap_s`` is interpolated (translation linearly,
rotations along the geodesic between the poses on either side), a longer one holds the
last pose seen before it. Every output frame says which it is
(:data:`SEEN`, :data:`INTERPOLATED`, :data:`HELD`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch

SEEN, INTERPOLATED, HELD = 0, 1, 2
MAX_GAP_S = 0.5  # longer gaps hold the last pose instead of inventing half a second of motion


@dataclass
class Resampling:
    """Where each frame of the regular clock takes its pose from.

    Attributes:
        times: (M,) seconds, ``times[0]`` + k x period: the track's first to last sample.
        lower: (M,) index of the sample at or before each time.
        upper: (M,) index of the sample after it (``lower`` where none is needed).
        weight: (M,) share of ``upper``, in [0, 1] (0: ``lower`` alone).
        filled: (M,) uint8: :data:`SEEN`, :data:`INTERPOLATED` or :data:`HELD`.
    """

    times: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    weight: np.ndarray
    filled: np.ndarray

    def vectors(self, x: np.ndarray) -> np.ndarray:
        """(N, ...) samples -> (M, ...) linearly interpolated (translations, metres)."""
        w = self.weight.reshape(-1, *([1] * (x.ndim - 1)))
        return (1.0 - w) * x[self.lower] + w * x[self.upper]

    def rotations(self, rotmats: np.ndarray) -> np.ndarray:
        """(N, ..., 3, 3) rotation matrices -> (M, ..., 3, 3) along the geodesic
        ``R0 exp(w log(R0ᵀ R1))`` between the samples on either side."""
        r0 = torch.as_tensor(rotmats[self.lower], dtype=torch.float64)
        r1 = torch.as_tensor(rotmats[self.upper], dtype=torch.float64)
        step = roma.rotmat_to_rotvec(r0.transpose(-1, -2) @ r1)
        w = torch.as_tensor(self.weight, dtype=torch.float64).reshape(-1, *([1] * (step.ndim - 1)))
        return (r0 @ roma.rotvec_to_rotmat(w * step)).numpy()

    def rotvecs(self, rotvecs: np.ndarray) -> np.ndarray:
        """(N, ..., 3) axis-angle, radians -> (M, ..., 3), as :meth:`rotations`."""
        mats = roma.rotvec_to_rotmat(torch.as_tensor(rotvecs, dtype=torch.float64)).numpy()
        return roma.rotmat_to_rotvec(torch.as_tensor(self.rotations(mats))).numpy().astype(rotvecs.dtype)


def frame_period(pts_seconds: np.ndarray, fps: float) -> float:
    """The stored frames' clock, seconds: their median interval (a run with ``--every 2``
    stores every second frame), or ``1 / fps`` with fewer than two frames."""
    steps = np.diff(np.asarray(pts_seconds, np.float64))
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else 1.0 / fps


def regular_clock(times: np.ndarray, period: float, max_gap_s: float = MAX_GAP_S) -> Resampling:
    """Puts a track's samples on a regular clock of ``period`` seconds.

    Args:
        times: (N,) increasing sample times of the track, seconds (N >= 1).
        period: The clock's interval, seconds (> 0).
        max_gap_s: Gaps up to this long are interpolated; longer ones hold the last
            sample seen before them.

    Returns:
        The :class:`Resampling`; a sample within half a period of a clock tick is that
        tick's pose as it is.
    """
    times = np.asarray(times, np.float64)
    if times.ndim != 1 or len(times) == 0 or np.any(np.diff(times) <= 0):
        raise ValueError(f"times must be (N,) increasing with N >= 1, got shape {times.shape}")
    if not period > 0:
        raise ValueError(f"period must be > 0 seconds, got {period}")
    m = int(round((times[-1] - times[0]) / period)) + 1
    clock = times[0] + period * np.arange(m)
    n = len(times)
    right = np.clip(np.searchsorted(times, clock), 0, n - 1)
    left = np.clip(right - 1, 0, n - 1)
    nearest = np.where(np.abs(times[left] - clock) <= np.abs(times[right] - clock), left, right)
    seen = np.abs(times[nearest] - clock) <= 0.5 * period
    lower = np.clip(np.searchsorted(times, clock, side="right") - 1, 0, n - 1)
    upper = np.minimum(lower + 1, n - 1)
    span = times[upper] - times[lower]
    weight = np.where(span > 0, (clock - times[lower]) / np.where(span > 0, span, 1.0), 0.0).clip(0.0, 1.0)
    short = span <= max_gap_s + 1e-9
    filled = np.where(seen, SEEN, np.where(short, INTERPOLATED, HELD)).astype(np.uint8)
    lower = np.where(seen, nearest, lower)
    weight = np.where(filled == INTERPOLATED, weight, 0.0)
    upper = np.where(filled == INTERPOLATED, upper, lower)
    return Resampling(times=clock, lower=lower, upper=upper, weight=weight, filled=filled)
