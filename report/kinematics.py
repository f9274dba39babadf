"""Motion measures of one track: pure functions on arrays.

Conventions: the levelled world of the exports (:func:`meshstream.export.animation.level_frame`):
metres, **Y up**, the floor at y = 0; times in seconds; angles in degrees; keypoints in
the COCO-17 order. Samples need not be evenly spaced: a track has gaps where the person
was not seen, and each stretch between gaps (a *run*) is smoothed and differentiated on
its own.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

# COCO-17 indices.
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16
UP = np.array([0.0, 1.0, 0.0])


def runs(times: np.ndarray, max_gap_s: float) -> list[slice]:
    """Stretches of samples with no gap longer than ``max_gap_s`` between neighbours.

    Args:
        times: (N,) increasing sample times, seconds.
        max_gap_s: Longest interval inside a run, seconds.

    Returns:
        Slices into the samples, in order, covering all of them.
    """
    if len(times) == 0:
        return []
    cuts = np.nonzero(np.diff(times) > max_gap_s)[0] + 1
    edges = [0, *cuts.tolist(), len(times)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def smooth(values: np.ndarray, times: np.ndarray, window_s: float, max_gap_s: float,
           deriv: int = 0) -> np.ndarray:
    """Savitzky-Golay smoothing (quadratic) or its first derivative, run by run.

    A run with uneven sampling (a few missed frames) is put on an even clock at its
    median interval by linear interpolation, smoothed there and read back at its own
    times, so a short gap neither speeds nor slows the motion.

    Args:
        values: (N, ...) samples.
        times: (N,) their times, seconds, increasing.
        window_s: Width of the fitting window, seconds (rounded to an odd sample count of
            at least 5, at most the run's length).
        max_gap_s: Gaps longer than this split the track into runs.
        deriv: 0 for smoothed values, 1 for their rate of change per second.

    Returns:
        (N, ...) smoothed values or derivatives; runs of fewer than 3 samples are
        returned as they are (``deriv=0``) or NaN (``deriv=1``).
    """
    values = np.asarray(values, np.float64)
    out = np.full_like(values, np.nan) if deriv else values.copy()
    for run in runs(times, max_gap_s):
        t, v = times[run], values[run]
        dt = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
        if len(t) < 3 or dt <= 0:
            continue
        even = np.abs(np.diff(t) - dt).max() <= 0.25 * dt
        grid = t if even else np.arange(t[0], t[-1] + 0.5 * dt, dt)
        flat = v.reshape(len(t), -1)
        on_grid = flat if even else np.stack([np.interp(grid, t, c) for c in flat.T], 1)
        n = len(grid)
        window = max(5, int(round(window_s / dt)) | 1)
        window = min(window, n if n % 2 else n - 1)
        if window < 3:
            continue
        done = savgol_filter(on_grid, window, min(2, window - 1), deriv=deriv, delta=dt, axis=0, mode="interp")
        if not even:
            done = np.stack([np.interp(t, grid, c) for c in done.T], 1)
        out[run] = done.reshape(v.shape)
    return out


def path_length(xz: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """Cumulative distance along a path on the floor, metres, counting only the steps
    taken while moving (a person standing still does not walk off the depth's noise).

    Args:
        xz: (N, 2) smoothed floor positions, metres. Across a gap where the person was
            not seen, the straight line between the positions either side is counted.
        moving: (N,) bool: a step from sample i-1 to i counts where either is moving.

    Returns:
        (N,) distance travelled from the first sample, metres.
    """
    steps = np.linalg.norm(np.diff(xz, axis=0), axis=1)
    moving = np.asarray(moving, bool)
    steps = np.where(moving[1:] | moving[:-1], steps, 0.0)
    return np.concatenate([[0.0], np.cumsum(steps)])


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle between vectors (..., 3), degrees."""
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1), (u * v).sum(-1)))


def flexion(proximal: np.ndarray, joint: np.ndarray, distal: np.ndarray) -> np.ndarray:
    """Flexion of a hinge joint, degrees: 0 when the two segments are in line (a straight
    knee or elbow), 90 at a right angle.

    Args:
        proximal: (N, 3) the joint above (hip for the knee, shoulder for the elbow).
        joint: (N, 3) the joint.
        distal: (N, 3) the joint below (ankle, wrist).
    """
    return _angle(joint - proximal, distal - joint)


def body_axes(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pelvis's axes from COCO-17 keypoints: left, up (along the trunk) and forward.

    Args:
        kp: (N, 17, 3) keypoints, metres.

    Returns:
        Three (N, 3) unit vectors: ``left`` (right hip to left hip), ``up`` (the hip
        midpoint to the shoulder midpoint, made perpendicular to ``left``) and
        ``forward`` = left × up, where the person faces.
    """
    left = kp[:, L_HIP] - kp[:, R_HIP]
    left /= np.linalg.norm(left, axis=1, keepdims=True) + 1e-12
    trunk = 0.5 * (kp[:, L_SHOULDER] + kp[:, R_SHOULDER]) - 0.5 * (kp[:, L_HIP] + kp[:, R_HIP])
    up = trunk - (trunk * left).sum(1, keepdims=True) * left
    up /= np.linalg.norm(up, axis=1, keepdims=True) + 1e-12
    return left, up, np.cross(left, up)


def hip_flexion(kp: np.ndarray, side: str) -> np.ndarray:
    """Hip flexion in the body's sagittal plane, degrees: the thigh (hip to knee) against
    the trunk's downward line, about the left-right hip axis; 0 when standing straight,
    positive with the thigh in front of the trunk (90 with the thigh level under an
    upright trunk), negative behind it (extension).

    Args:
        kp: (N, 17, 3) keypoints, metres.
        side: ``"left"`` or ``"right"``.
    """
    hip, knee = (L_HIP, L_KNEE) if side == "left" else (R_HIP, R_KNEE)
    _, up, forward = body_axes(kp)
    thigh = kp[:, knee] - kp[:, hip]
    return np.degrees(np.arctan2((thigh * forward).sum(1), -(thigh * up).sum(1)))


def trunk_lean(kp: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    """Lean of the trunk (hip midpoint to shoulder midpoint) from the vertical, degrees,
    in any direction: 0 upright, 90 lying.

    Args:
        kp: (N, 17, 3) keypoints, metres.
        up: (3,) the world's up direction.
    """
    trunk = 0.5 * (kp[:, L_SHOULDER] + kp[:, R_SHOULDER]) - 0.5 * (kp[:, L_HIP] + kp[:, R_HIP])
    return _angle(trunk, np.broadcast_to(up, trunk.shape))


def joint_angles(kp: np.ndarray, up: np.ndarray = UP) -> dict[str, np.ndarray]:
    """Every joint angle of the report, degrees, per frame.

    Args:
        kp: (N, 17, 3) COCO-17 keypoints, metres.
        up: (3,) the world's up direction.

    Returns:
        ``knee_flexion_left`` ... ``elbow_flexion_right``, ``hip_flexion_left/right`` and
        ``trunk_lean``, each (N,).
    """
    return {
        "knee_flexion_left": flexion(kp[:, L_HIP], kp[:, L_KNEE], kp[:, L_ANKLE]),
        "knee_flexion_right": flexion(kp[:, R_HIP], kp[:, R_KNEE], kp[:, R_ANKLE]),
        "hip_flexion_left": hip_flexion(kp, "left"),
        "hip_flexion_right": hip_flexion(kp, "right"),
        "elbow_flexion_left": flexion(kp[:, L_SHOULDER], kp[:, L_ELBOW], kp[:, L_WRIST]),
        "elbow_flexion_right": flexion(kp[:, R_SHOULDER], kp[:, R_ELBOW], kp[:, R_WRIST]),
        "trunk_lean": trunk_lean(kp, up),
    }


def stretches(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of every stretch of True samples, in order."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(flags, bool).astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def drop_short(flags: np.ndarray, min_len: int) -> np.ndarray:
    """A boolean series with every run (of True or of False) shorter than ``min_len``
    samples flipped to its neighbours' value (debounces contact flicker). Runs at the
    series' ends are kept: what came before or after them is not known."""
    flags = np.asarray(flags, bool).copy()
    for value in (True, False):  # short blips first, then short gaps between contacts
        for a, b in stretches(flags == value):
            if b - a < min_len and a > 0 and b < len(flags):
                flags[a:b] = not value
    return flags


def foot_contacts(height: np.ndarray, speed: np.ndarray, max_height_m: float = 0.08,
                  max_speed_mps: float = 1.0, min_frames: int = 2) -> np.ndarray:
    """Whether a foot is on the floor: low and nearly still.

    Args:
        height: (N,) height of the foot's lowest joint above that foot's own floor level
            (its usual height while still), metres.
        speed: (N,) its speed, m/s.
        max_height_m: Highest a planted foot's lowest joint sits above that level.
        max_speed_mps: Fastest a planted foot moves (estimation noise and heel-to-toe
            roll move it a little).
        min_frames: Shorter contacts or lifts are taken as noise.

    Returns:
        (N,) bool.
    """
    on = (height <= max_height_m) & (np.nan_to_num(speed, nan=np.inf) <= max_speed_mps)
    return drop_short(on, min_frames)


def onsets(contact: np.ndarray) -> np.ndarray:
    """Indices where a contact starts after a lift (a step lands); a contact already
    under way at the first sample is not counted."""
    c = np.asarray(contact, bool)
    return np.flatnonzero(c[1:] & ~c[:-1]) + 1


def window_mean(values: np.ndarray, times: np.ndarray, window_s: float) -> np.ndarray:
    """Mean of ``values`` over the ``window_s`` seconds ending at each sample (NaN where
    less than half a window of samples precedes it)."""
    out = np.full(len(values), np.nan)
    start = 0
    for i, t in enumerate(times):
        while times[start] <= t - window_s:
            start += 1
        if t - times[start] >= 0.5 * window_s:
            seg = values[start:i + 1]
            seg = seg[np.isfinite(seg)]
            if len(seg):
                out[i] = seg.mean()
    return out
