"""Temporal filters: one focal per shot, smoothed translation per track."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from filterpy.kalman import KalmanFilter, rts_smoother


def robust_focal(per_frame: np.ndarray) -> float:
    """One focal for a shot from per-frame estimates: the median in log space.

    Args:
        per_frame: (T,) focal estimates, pixels (NaN where a frame had none).

    Returns:
        The shot focal, pixels (NaN if no frame had an estimate).
    """
    v = per_frame[np.isfinite(per_frame) & (per_frame > 0)]
    return float(np.exp(np.median(np.log(v)))) if len(v) else float("nan")


@dataclass
class _TrackState:
    x: np.ndarray
    P: np.ndarray
    t: float


@dataclass
class TranslationSmoother:
    """Constant-velocity Kalman filter on each track's 3D translation, with a
    Rauch-Tung-Striebel backward pass inside each chunk (offline) or the causal
    filter alone (live). State carries over between chunks, so a long clip is
    filtered in bounded memory.

    Attributes:
        accel_std: Process noise, m/s^2 (how fast a person may change velocity).
        depth_std_rel: Measurement noise of depth as a fraction of depth.
        xy_std: Measurement noise of x and y, metres.
        causal: Live mode: no backward pass.
    """

    accel_std: float = 3.0
    depth_std_rel: float = 0.05
    xy_std: float = 0.02
    causal: bool = False
    _state: dict[int, _TrackState] = field(default_factory=dict)

    def reset(self) -> None:
        self._state.clear()

    def __call__(self, track_id: int, times: np.ndarray, transl: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Smooths one track's translations within a chunk.

        Args:
            track_id: The track.
            times: (N,) increasing time stamps, seconds.
            transl: (N, 3) raw translations, metres.
            valid: (N,) bool; invalid measurements are predicted, not used.

        Returns:
            (N, 3) filtered translations, metres.
        """
        n = len(times)
        if n == 0:
            return transl.copy()
        valid = np.ones(n, bool) if valid is None else valid
        kf = KalmanFilter(dim_x=6, dim_z=3)
        kf.H = np.eye(3, 6)
        state = self._state.get(track_id)
        if state is None:
            first = transl[np.argmax(valid)] if valid.any() else transl[0]
            kf.x = np.concatenate([first, np.zeros(3)])[:, None]
            kf.P = np.diag([0.05, 0.05, 0.3, 1.0, 1.0, 1.0]) ** 2
            t_prev = times[0]
        else:
            kf.x, kf.P, t_prev = state.x.copy(), state.P.copy(), state.t
        xs, ps, fs, qs = [], [], [], []
        for i in range(n):
            dt = max(times[i] - t_prev, 0.0)
            t_prev = times[i]
            f = np.eye(6)
            f[:3, 3:] = dt * np.eye(3)
            g = np.concatenate([0.5 * dt**2 * np.eye(3), dt * np.eye(3)])
            q = self.accel_std**2 * g @ g.T + 1e-9 * np.eye(6)
            kf.F, kf.Q = f, q
            kf.predict()
            if valid[i]:
                z = transl[i]
                kf.R = np.diag([self.xy_std, self.xy_std, self.depth_std_rel * max(z[2], 0.1)]) ** 2
                kf.update(z)
            xs.append(kf.x.copy())
            ps.append(kf.P.copy())
            fs.append(f)
            qs.append(q)
        self._state[track_id] = _TrackState(kf.x.copy(), kf.P.copy(), float(times[-1]))
        x = np.array(xs)
        if not self.causal and n > 1:
            # rts_smoother applies F[k+1] to step k -> k+1.
            fs_next = fs[1:] + [np.eye(6)]
            qs_next = qs[1:] + [np.zeros((6, 6))]
            x, _, _, _ = rts_smoother(x, np.array(ps), np.array(fs_next), np.array(qs_next))
        return x[:, :3, 0].astype(transl.dtype)
