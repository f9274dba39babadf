"""The shot's camera and the tracks' sizes: what turns a window into a final fit.

:class:`ShotSolver` is the clip's one home for what lasts longer than a window: each
shot's focal and what set it, the tracks' priors (running shape, warm pose, size), the
shared floor and a known height. It calls the body fitter it is given (in this process
or a pool of Ray actors; a refit is another call with the same priors) and never holds
a fitter itself.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from meshstream.models.camera import fov_from_focal
from meshstream.models.ground import line_planes, torso_lines

from .focal_cues import ShotEvidence
from .messages import FitResult, FocalEstimate, Frame, ShotCamera, TrackPrior, Window

log = logging.getLogger(__name__)

Fitter = Callable[[Window, ShotCamera, dict[int, TrackPrior]], FitResult]


@dataclass
class Solved:
    """A window as the solver leaves it.

    Attributes:
        result: The final fit (``None``: the window had no person).
        focal_raw: (T,) float32 each frame's own focal estimate (NaN where none).
        focal_px: The shot's focal at zoom 1, or ``None`` while unknown.
        rescaled: (track, factor) each time a track's size changed, in order (the
            translation filter's carried state follows it).
        window_focal_px: The window's own focal estimate at zoom 1 (its pooled search,
            before any cue), pixels, or ``None`` where it did not search.
    """

    result: FitResult | None
    focal_raw: np.ndarray
    focal_px: float | None
    rescaled: list[tuple[int, float]] = field(default_factory=list)
    window_focal_px: float | None = None


class ShotSolver:
    """Per clip: shots' focals, tracks' priors and sizes.

    Args:
        image_size: (width, height), pixels.
        principal_point: (2,) pixels.
        user_focal: A focal the user or the file gave (every shot's), pixels, or ``None``.
        cues: Focal cues (:mod:`meshstream.stream.focal_cues`), in the order they are asked.
        fov_range_deg: The focal search's range (for the note when it ends at an edge).
        ground: A ``SharedGround`` sizing tracks on one floor, or ``None``.
        height_m: Every person's known standing height, metres, or ``None``.
        min_keypoint_conf: Ankles below this confidence do not touch the floor.
        zoom: The clip's zoom tracker (given the shot's focal as a hint), or ``None``.
        notes: The clip's notes for the user (shared, in the order they are made).
    """

    def __init__(self, *, image_size: tuple[int, int], principal_point: np.ndarray, user_focal: float | None,
                 cues: list, fov_range_deg: tuple[float, float], ground=None, height_m: float | None = None,
                 min_keypoint_conf: float = 0.5, zoom=None, notes: list[str] | None = None) -> None:
        self.image_size = image_size
        self.principal_point = principal_point
        self.user_focal = user_focal
        self.cues = cues
        self.fov_range_deg = fov_range_deg
        self.ground = ground
        self.height_m = height_m
        self.min_keypoint_conf = min_keypoint_conf
        self.zoom = zoom
        self.shot = -1
        self.focal: float | None = user_focal
        self.shot_focals: list[float | None] = []
        self.shot_focal_evidence: list[int] = []  # person-frames each shot's focal was estimated from (0: given)
        self.shot_focal_cue: list[str | None] = []  # what set each shot's focal (None: not yet)
        self.ground_estimates: list = []  # the last GroundEstimate of each shot (None: too few tracks)
        self.priors: dict[int, TrackPrior] = {}  # the shot's tracks
        self.shapes: dict[int, np.ndarray] = {}  # every track's running shape, (S,) float32
        self.row_scales: dict[int, list[tuple[int, float]]] = {}  # track -> (rows, scale they were fitted at)
        self.notes = [] if notes is None else notes

    def resume(self, n_shots: int, focals: list, evidence: list, cues: list, shapes: dict[int, np.ndarray]) -> None:
        """Continues a stored run's last shot with its focal (if set); its tracks end
        there, so only their shapes (placed again at the end) are kept."""
        self.shot = n_shots - 1
        self.shot_focals = [self.user_focal] * n_shots if self.user_focal is not None else focals
        self.shot_focal_evidence = evidence
        self.shot_focal_cue = ["given"] * n_shots if self.user_focal is not None else cues
        self.focal = self.shot_focals[-1]
        self.ground_estimates = [None] * n_shots
        self.shapes = dict(shapes)

    def start_shot(self) -> None:
        """A new shot: its focal is estimated again (unless given) and its tracks are new."""
        self.shot += 1
        self.shot_focals.append(self.user_focal)
        self.shot_focal_evidence.append(0)
        self.shot_focal_cue.append(None if self.user_focal is None else "given")
        self.ground_estimates.append(None)
        self.focal = self.user_focal
        if self.shot > 0:
            self.priors = {}  # the tracker ends every track at a cut
            if self.ground is not None:
                self.ground.reset()

    @property
    def camera(self) -> ShotCamera:
        """The camera the shot's next window is fitted with."""
        return ShotCamera(self.image_size, self.principal_point, self.focal, search=self.user_focal is None)

    def solve(self, window: Window, frames: list[Frame], boxes: np.ndarray, fitter: Fitter,
              zooming: bool) -> Solved:
        """Fits a window and settles the shot's focal and the tracks' sizes.

        Args:
            window: The window (its ``zoom`` already 1 where the shot does not zoom).
            frames: Its frames' pixels (for the scene's lines).
            boxes: (N, 4) the persons of its middle frame, pixels.
            fitter: The body fitter to call (a refit is another call).
            zooming: The shot is seen to zoom.
        """
        focal_raw = np.full(len(window.frame_index), np.nan, np.float32)
        if len(window.obs) == 0:
            return Solved(None, focal_raw, self.focal)
        ev = ShotEvidence(self.shot, window, frames, boxes, None, self.focal, self.shot_focal_cue[-1], zooming)
        for cue in (c for c in self.cues if c.before_fit):
            if (found := cue.propose(ev)) is not None:
                self._fix(found.focal_px, found.cue, found.person_frames, found.note)
                ev.focal_px, ev.cue = self.focal, found.cue
                break
        start = {t: self.priors[t] for t in np.unique(window.obs.track_id).tolist() if t in self.priors}
        result = fitter(window, self.camera, start)
        window_focal = None if result.focal is None else float(result.focal.focal_px)
        if result.focal is not None:
            for i, f in enumerate(window.frame_index.tolist()):
                focal_raw[i] = result.focal.per_frame.get(f, np.nan)
            if self.focal is None:
                self._set_people_focal(result.focal, len(window.obs))
                ev.checking = True
        ev.result, ev.focal_px, ev.cue = result, self.focal, self.shot_focal_cue[-1]
        for cue in (c for c in self.cues if not c.before_fit):
            if (found := cue.propose(ev)) is not None:
                self._fix(found.focal_px, found.cue, found.person_frames, found.note)
                if found.down is not None and self.ground is not None:  # the floor's normal from the scene
                    self.ground.set_down(found.down)
                result = fitter(window, self.camera_fixed, start)
                ev.result, ev.focal_px, ev.cue = result, self.focal, found.cue
        self.priors.update(result.priors)
        rescaled: list[tuple[int, float]] = []
        if self.ground is not None:
            result = self._shared_ground(window, result, start, fitter, rescaled)
        elif self.height_m is not None:
            result = self._known_height(window, result, start, fitter, rescaled)
        for tid, prior in result.priors.items():
            self.shapes[tid] = prior.shape.astype(np.float32)
            rows = int((result.fit.track_id == tid).sum())
            self.row_scales.setdefault(tid, []).append((rows, prior.scale))
        return Solved(result, focal_raw, self.focal, rescaled, window_focal)

    @property
    def camera_fixed(self) -> ShotCamera:
        """The shot's camera for a refit: its focal, no search."""
        return ShotCamera(self.image_size, self.principal_point, self.focal, search=False)

    def _fix(self, focal: float, cue: str, person_frames: int = 0, note: str | None = None) -> float:
        """Sets the current shot's focal (at zoom 1) and what set it; returns its
        horizontal field of view, degrees."""
        self.focal = self.shot_focals[-1] = focal
        self.shot_focal_evidence[-1] = person_frames
        self.shot_focal_cue[-1] = cue
        if self.zoom is not None:
            self.zoom.focal_px = focal
        fov = fov_from_focal(focal, self.image_size[0])
        if note is not None:
            log.info("shot %d focal %.1f px (%.1f deg horizontal FOV) from the %s", self.shot, focal, fov, cue)
            self.notes.append(note)
        return fov

    def _set_people_focal(self, estimate: FocalEstimate, person_frames: int) -> None:
        """Fixes the shot's focal from its first estimate, with a note when the search
        ended at the edge of its range."""
        fov = self._fix(estimate.focal_px, "people", person_frames)
        log.info("shot %d focal %.1f px (%.1f deg horizontal FOV) from %d person-frames", self.shot, self.focal, fov,
                 person_frames)
        if estimate.at_range_edge:
            low, high = self.fov_range_deg
            seen = estimate.focal_px if estimate.evidence_px is None else estimate.evidence_px
            edge = (f"shot {self.shot}: the focal search ended at the edge of its range ({seen:.0f} px, "
                    f"{fov_from_focal(seen, self.image_size[0]):.0f} deg of estimation.fov_range_deg "
                    f"[{low:g}, {high:g}]), so the footage did not fix the focal")
            if estimate.evidence_px is not None:
                edge += f"; the prior over cameras' views set it to {self.focal:.0f} px ({fov:.0f} deg)"
            self.notes.append(edge + "; give --fov-deg or --focal-px if you know it")
        elif estimate.evidence_px is not None:
            self.notes.append(
                f"shot {self.shot}: the people's cost was flat around its minimum ({estimate.evidence_px:.0f} px), so "
                f"the footage did not fix the focal; the prior over cameras' views (estimation.focal_prior_*) set it "
                f"to {self.focal:.0f} px ({fov:.0f} deg); give --fov-deg or --focal-px if you know it")

    def _shared_ground(self, window: Window, result: FitResult, start: dict[int, TrackPrior], fitter: Fitter,
                       rescaled: list[tuple[int, float]]) -> FitResult:
        """Feeds the window's fits to the shared floor. Where it rescales a track by more
        than 3 %, the window is fitted again from ``start`` with the new sizes."""
        fit, obs = result.fit, window.obs
        ankles_seen = (obs.keypoints2d[:, 15:17, 2] >= self.min_keypoint_conf).all(1)
        used = np.array([self._scale(t) for t in fit.track_id])
        self.ground.add(fit.track_id, result.feet, result.up, used, fit.fit_ok & ankles_seen)
        if self.focal is not None:  # the torsos' planes need the focal
            lines, torso_seen = torso_lines(obs.keypoints2d, self.principal_point, self.min_keypoint_conf)
            upright = fit.fit_ok & torso_seen
            self.ground.add_torsos(line_planes(lines[upright], (self.focal * window.obs_zoom)[upright]))
        ground = self.ground.estimate()
        if ground is None:
            return result
        self.ground_estimates[-1] = ground
        changed = {t: s for t, s in ground.scales.items() if abs(np.log(s / self._scale(t))) > 0.03}
        if not changed:
            return result
        for tid, scale in changed.items():
            log.info("shared floor (%d tracks, camera %.2f m above it): track %d size x%.2f", ground.tracks,
                     ground.camera_height_m, tid, scale)
        return self._refit_rescaled(window, result, start, fitter, changed, rescaled)

    def _known_height(self, window: Window, result: FitResult, start: dict[int, TrackPrior], fitter: Fitter,
                      rescaled: list[tuple[int, float]]) -> FitResult:
        """Sizes every track of the window to ``height_m``. A track whose fitted standing
        height is more than 1 % off gets a new landmark scale and the window is fitted
        again, up to 3 times. The shape follows the landmarks' size only in part (its
        prior pulls back), so after the first round the step is divided by the response
        seen (secant on log scale and log height); a track whose height hardly responded
        (under 0.3) is left where it is."""
        height = self.height_m
        last: dict[int, tuple[float, float]] = {}  # track -> (log scale, log height) of the previous round
        for _ in range(3):
            changed = {}
            for tid in (int(t) for t in np.unique(result.fit.track_id)):
                log_h = math.log(self.priors[tid].stature_m)
                error = math.log(height) - log_h
                if abs(error) <= 0.01:
                    continue
                log_s = math.log(self._scale(tid))
                gain = 1.0
                if tid in last and abs(log_s - last[tid][0]) > 1e-6:
                    gain = (log_h - last[tid][1]) / (log_s - last[tid][0])
                    if gain < 0.3:  # the shape is at its bounds: smaller landmarks would only bend the pose
                        continue
                    gain = min(gain, 1.5)
                last[tid] = (log_s, log_h)
                changed[tid] = math.exp(log_s + error / gain)
                log.info("track %d: fitted standing height %.3f m, sized toward %.2f m", tid, math.exp(log_h), height)
            if not changed:
                break
            result = self._refit_rescaled(window, result, start, fitter, changed, rescaled)
        return result

    def _scale(self, tid: int) -> float:
        prior = self.priors.get(int(tid))
        return 1.0 if prior is None else prior.scale

    def _refit_rescaled(self, window: Window, result: FitResult, start: dict[int, TrackPrior], fitter: Fitter,
                        scales: dict[int, float], rescaled: list[tuple[int, float]]) -> FitResult:
        """Gives tracks a new size (factor on their landmarks; the translation filter's
        carried state follows) and, where the window holds one of them, fits it again
        from ``start`` with the new sizes. A running shape fitted at the old size becomes
        a weak prior where no refit follows; a refit starts every track where the window
        started."""
        before = dict(self.priors)
        for tid, scale in scales.items():
            rescaled.append((tid, scale / self._scale(tid)))
            start[tid] = _with_scale(start.get(tid, TrackPrior(None)), scale, keep_weight=True)
            self.priors[tid] = _with_scale(self.priors.get(tid, TrackPrior(None)), scale, keep_weight=False)
        in_window = set(np.unique(result.fit.track_id).tolist())
        if not in_window & set(scales):
            return result
        for tid in set(scales) - in_window:
            if tid in before:
                self.priors[tid] = _with_scale(before[tid], scales[tid], keep_weight=True)
        result = fitter(window, self.camera_fixed, {t: p for t, p in start.items() if t in in_window})
        self.priors.update(result.priors)
        return result


def _with_scale(prior: TrackPrior, scale: float, keep_weight: bool) -> TrackPrior:
    """``prior`` at another size; without ``keep_weight`` its shape becomes a weak prior."""
    return dataclasses.replace(prior, scale=float(scale), frames_seen=prior.frames_seen if keep_weight else 0)
