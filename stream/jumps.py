"""Jumps between the windows of one shot that a still camera and real people cannot make.

Each window is fitted on its own (with its tracks' priors), and every window of a shot
whose focal was not given searches the focal again. Within a still shot the focal
cannot change, and a person's depth cannot change by much from one frame to the next,
so when consecutive windows disagree by more than a stated factor, one of them is
wrong. :class:`JumpCheck` finds such jumps; the clip keeps them as notes for the user
and as ``jumps`` records in the store (``docs/outputs.md``) instead of storing the
disagreement silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .messages import BodyFit


@dataclass
class Jump:
    """Two consecutive windows of one shot that disagree.

    Attributes:
        kind: ``"focal"`` (the windows' own focal estimates, zoom 1) or ``"depth"`` (a
            track's pelvis depth, before filtering, across the windows' boundary).
        shot: The shot's number.
        frame_index: The later window's first frame (``"focal"``), or the track's first
            frame in it (``"depth"``).
        before: The earlier value: focal, pixels, or depth, metres.
        after: The later value, same unit.
        track_id: The track (``"depth"``), else ``None``.
    """

    kind: str
    shot: int
    frame_index: int
    before: float
    after: float
    track_id: int | None = None

    @property
    def factor(self) -> float:
        """How far apart the values are: the larger over the smaller (>= 1)."""
        return max(self.before, self.after) / min(self.before, self.after)

    def record(self) -> dict:
        """The jump as a JSON-ready dict (the store's ``jumps`` attribute)."""
        out = asdict(self)
        out.update(before=round(self.before, 4), after=round(self.after, 4), factor=round(self.factor, 3))
        return out

    def note(self) -> str:
        """One line for the user."""
        if self.kind == "focal":
            return (f"shot {self.shot}: the focal estimated from the window at frame {self.frame_index} "
                    f"({self.after:.0f} px) is {self.factor:.2f}x the previous window's ({self.before:.0f} px); "
                    "the footage does not fix the focal well: give --fov-deg or --focal-px if you know it")
        return (f"shot {self.shot}: track {self.track_id}'s depth jumps from {self.before:.2f} m to {self.after:.2f} m "
                f"at frame {self.frame_index} ({self.factor:.2f}x between windows): its depth is uncertain there")


class JumpCheck:
    """Per shot: compares each window with the one before.

    Args:
        focal_factor: Consecutive windows' focal estimates further apart than this (the
            larger over the smaller) are a jump; the shot must be still (not zooming)
            and the later window hold at least ``min_person_frames`` person-frames.
        depth_factor: A track's raw depth at its first frame of a window against its
            last frame of the previous one, further apart than this, is a jump.
        max_gap_frames: The two frames of a depth comparison are at most this far apart
            (a track lost for longer may have moved).
        min_person_frames: Person-frames a window's focal estimate needs to count.
    """

    def __init__(self, *, focal_factor: float, depth_factor: float, max_gap_frames: int = 2,
                 min_person_frames: int = 24) -> None:
        self.focal_factor = focal_factor
        self.depth_factor = depth_factor
        self.max_gap_frames = max_gap_frames
        self.min_person_frames = min_person_frames
        self.shot = -1
        self._focal: float | None = None  # the previous window's own estimate
        self._last: dict[int, tuple[int, float]] = {}  # track -> (frame index, raw depth) at its last frame

    def __call__(self, shot: int, first_frame: int, window_focal_px: float | None, person_frames: int,
                 zooming: bool, fit: BodyFit | None) -> list[Jump]:
        """The jumps of a window against the previous one of its shot.

        Args:
            shot: The window's shot.
            first_frame: Its first frame's index.
            window_focal_px: Its own focal estimate at zoom 1, pixels (``None``: not searched).
            person_frames: Its person-frames.
            zooming: The shot is seen to zoom (its focal may then change).
            fit: Its fits before temporal filtering (``None``: no person).
        """
        if shot != self.shot:
            self.shot, self._focal, self._last = shot, None, {}
        jumps: list[Jump] = []
        if window_focal_px is not None and person_frames >= self.min_person_frames and not zooming:
            if self._focal is not None:
                jump = Jump("focal", shot, int(first_frame), self._focal, float(window_focal_px))
                if jump.factor > self.focal_factor:
                    jumps.append(jump)
            self._focal = float(window_focal_px)
        elif zooming:
            self._focal = None
        if fit is not None and len(fit):
            jumps.extend(self._depth_jumps(shot, fit))
        return jumps

    def _depth_jumps(self, shot: int, fit: BodyFit) -> list[Jump]:
        jumps = []
        tz = fit.pelvis[:, 2]
        for tid in np.unique(fit.track_id).tolist():
            rows = np.nonzero(fit.track_id == tid)[0]
            rows = rows[np.argsort(fit.frame_index[rows], kind="stable")]
            first, last = rows[0], rows[-1]
            seen = self._last.get(tid)
            if seen is not None and 0 < fit.frame_index[first] - seen[0] <= self.max_gap_frames:
                before, after = seen[1], float(tz[first])
                if before > 0 and after > 0:
                    jump = Jump("depth", shot, int(fit.frame_index[first]), before, after, int(tid))
                    if jump.factor > self.depth_factor:
                        jumps.append(jump)
            self._last[tid] = (int(fit.frame_index[last]), float(tz[last]))
        return jumps
