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

    def rescale(self, track_id: int, factor: float) -> None:
        """Scales the state a track carries into the next chunk about the camera centre
        (its fits were made again at ``factor`` times the size and distance)."""
        state = self._state.get(track_id)
        if state is not None:
            self._state[track_id] = _TrackState(state.x * factor, state.P * factor**2, state.t)

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


def _align_hemisphere(q: np.ndarray) -> np.ndarray:
    """Flips unit quaternions (N, ..., 4) along axis 0 so that consecutive ones have a
    non-negative dot product (q and -q are the same rotation)."""
    q = q.copy()
    for i in range(1, len(q)):
        flip = (q[i] * q[i - 1]).sum(-1, keepdims=True) < 0
        q[i] = np.where(flip, -q[i], q[i])
    return q


def smooth_rotations(rotvec: np.ndarray, times: np.ndarray, sigma_s: float) -> np.ndarray:
    """Gaussian smoothing of rotation sequences on unit quaternions.

    Quaternions (roma's XYZW order) are brought to one hemisphere, averaged with
    Gaussian weights in time and renormalised: the weighted chordal mean, which is the
    rotation average for the small spreads of a few frames. Not applied to raw
    axis-angle components, which wrap at pi.

    Args:
        rotvec: (N, ..., 3) axis-angle rotations over N time steps, radians.
        times: (N,) time stamps, seconds.
        sigma_s: Standard deviation of the Gaussian, seconds (0 returns the input).

    Returns:
        (N, ..., 3) smoothed axis-angle rotations.
    """
    import roma
    import torch

    if sigma_s <= 0 or len(rotvec) < 2:
        return rotvec.copy()
    q = roma.rotvec_to_unitquat(torch.as_tensor(rotvec, dtype=torch.float64)).numpy()
    q = _align_hemisphere(q)
    dt = times[:, None] - times[None, :]
    w = np.exp(-0.5 * (dt / sigma_s) ** 2) * (np.abs(dt) <= 3 * sigma_s)
    flat = q.reshape(len(q), -1)
    avg = (w @ flat).reshape(q.shape)
    avg /= np.linalg.norm(avg, axis=-1, keepdims=True)
    return roma.unitquat_to_rotvec(torch.as_tensor(avg)).numpy().astype(rotvec.dtype)


class OneEuroFilter:
    """The One-Euro filter (Casiez et al., CHI 2012) on arrays, for live runs: a causal
    low-pass whose cutoff rises with speed, so slow motion is smoothed and fast motion
    follows with little lag.

    Args:
        min_cutoff: Cutoff frequency at rest, Hz.
        beta: How fast the cutoff rises with speed (per unit of signal speed).
        d_cutoff: Cutoff of the speed estimate, Hz.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.5, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, t: float, x: np.ndarray) -> np.ndarray:
        """Filters sample ``x`` taken at time ``t`` (seconds)."""
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        self._t = t
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        a = self._alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        return self._x.copy()


@dataclass
class PoseSmoother:
    """Smooths each track's rotations (global orientation and per-bone pose) over time.

    Offline: Gaussian smoothing on unit quaternions, with the previous chunk's last
    frames as left context (the chunk's own last frames are smoothed one-sided).
    Live (``causal``): a One-Euro filter on hemisphere-aligned quaternions.

    Attributes:
        sigma_s: Gaussian standard deviation, seconds (offline).
        causal: Live mode.
        min_cutoff, beta: One-Euro parameters (live): cutoff at rest (Hz) and its rise
            per unit of quaternion-component speed (1/s). The defaults damp jitter at
            rest to a third and lag a 3 rad/s swing at 30 fps by about half a frame.
    """

    sigma_s: float = 0.06
    causal: bool = False
    min_cutoff: float = 1.0
    beta: float = 5.0
    _context: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _euro: dict[int, tuple[OneEuroFilter, np.ndarray]] = field(default_factory=dict)

    def reset(self) -> None:
        self._context.clear()
        self._euro.clear()

    def __call__(self, track_id: int, times: np.ndarray, rotvec: np.ndarray) -> np.ndarray:
        """Smooths one track's rotations within a chunk.

        Args:
            track_id: The track.
            times: (N,) increasing time stamps, seconds.
            rotvec: (N, R, 3) axis-angle rotations (R rotations per frame), radians.

        Returns:
            (N, R, 3) smoothed rotations.
        """
        if len(times) == 0:
            return rotvec.copy()
        if self.causal:
            return self._causal(track_id, times, rotvec)
        ctx_t, ctx_r = self._context.get(track_id, (np.zeros(0), np.zeros((0, *rotvec.shape[1:]), rotvec.dtype)))
        keep = ctx_t > times[0] - 3 * self.sigma_s
        all_t = np.concatenate([ctx_t[keep], times])
        all_r = np.concatenate([ctx_r[keep], rotvec])
        out = smooth_rotations(all_r, all_t, self.sigma_s)[keep.sum():]
        tail = times > times[-1] - 3 * self.sigma_s
        self._context[track_id] = (times[tail], rotvec[tail])
        return out

    def _causal(self, track_id: int, times: np.ndarray, rotvec: np.ndarray) -> np.ndarray:
        import roma
        import torch

        q = roma.rotvec_to_unitquat(torch.as_tensor(rotvec, dtype=torch.float64)).numpy()
        euro, last = self._euro.get(track_id, (OneEuroFilter(self.min_cutoff, self.beta), None))
        out = np.empty_like(q)
        for i, t in enumerate(times):
            qi = q[i]
            ref = last if last is not None else qi
            qi = np.where((qi * ref).sum(-1, keepdims=True) < 0, -qi, qi)
            f = euro(float(t), qi)
            f /= np.linalg.norm(f, axis=-1, keepdims=True)
            out[i] = last = f
        self._euro[track_id] = (euro, last)
        return roma.unitquat_to_rotvec(torch.as_tensor(out)).numpy().astype(rotvec.dtype)
