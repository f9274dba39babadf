"""Focal cues: small objects that each read a shot's focal from one kind of evidence.

A shot's camera (:class:`~meshstream.stream.shot_solver.ShotSolver`) starts from the
focal the user or the file gave, if any; otherwise it asks its cues in order, each with
one method, ``propose(evidence) -> FocalProposal | None``:

- :class:`RotationCue`, before the first fit: a camera that panned or tilted about its
  centre (:func:`~meshstream.models.camera.focal_from_rotation`);
- the people, from the fitter's focal search (the fallback, no object of its own:
  the fitter searches whenever the camera has no focal);
- :class:`LinesCue` and :class:`FloorCue`, after the fit that set the focal from the
  people: the scene's straight lines and the floor people walk on check it, and where
  they fix it, the window is fitted again at theirs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from meshstream.models.camera import focal_from_rotation
from meshstream.models.ground import focal_from_floor
from meshstream.models.vanishing import focal_from_lines

from .messages import FitResult, Frame, Window

log = logging.getLogger(__name__)


@dataclass
class FocalProposal:
    """A focal a cue read.

    Attributes:
        focal_px: The shot's focal at zoom 1, pixels.
        cue: What read it (``"camera rotation"``, ``"lines"``, ``"floor"``).
        note: One line for the user on how.
        person_frames: Person-frames behind it (0 where people were not the evidence).
        down: (3,) the floor's downward normal in camera axes, where the cue read it.
    """

    focal_px: float
    cue: str
    note: str
    person_frames: int = 0
    down: np.ndarray | None = None


@dataclass
class ShotEvidence:
    """What a cue may read: the window, its frames' pixels, the fit so far.

    Attributes:
        shot: The shot's number.
        window: The window being fitted.
        frames: Its frames (pixels), in order.
        boxes: (N, 4) the persons' boxes in the window's middle frame, pixels.
        result: The fit so far (``None`` before the first fit).
        focal_px: The shot's focal so far (``None``: not yet known).
        cue: What set it so far (``None``: not yet set).
        zooming: The shot is seen to zoom.
        checking: This window's people just set the focal (the checks after the fit
            read only then).
    """

    shot: int
    window: Window
    frames: list[Frame]
    boxes: np.ndarray
    result: FitResult | None
    focal_px: float | None
    cue: str | None
    zooming: bool
    checking: bool = False


class RotationCue:
    """The camera's turn about its centre (homographies of the zoom tracker, each at its
    anchor frame's zoom), read before the shot's first fit.

    Args:
        zoom: The clip's zoom tracker (its homographies since the shot began).
        image_size: (width, height), pixels.
        principal_point: (2,) pixels.
        fov_range_deg: Horizontal field-of-view range a focal must lie in, degrees.
    """

    before_fit = True

    def __init__(self, *, zoom, image_size: tuple[int, int], principal_point: np.ndarray,
                 fov_range_deg: tuple[float, float]) -> None:
        self.zoom = zoom
        self.image_size = image_size
        self.principal_point = principal_point
        self.fov_range_deg = fov_range_deg

    def propose(self, ev: ShotEvidence) -> FocalProposal | None:
        if ev.focal_px is not None or not self.zoom.homographies:
            return None
        found = focal_from_rotation(np.array(self.zoom.homographies), *self.image_size,
                                    principal_point=self.principal_point, fov_range_deg=self.fov_range_deg,
                                    anchor_zoom=np.array(self.zoom.anchor_zooms))
        if found is None:
            return None
        log.info("shot %d focal %.1f px from the camera's turn (%.1f deg over %d frames)", ev.shot, found.focal_px,
                 found.turn_deg, found.frames)
        return FocalProposal(found.focal_px, "camera rotation",
                             f"shot {ev.shot}: focal {found.focal_px:.1f} px from the camera's rotation (its optical "
                             f"axis turned {found.turn_deg:.1f} deg over {found.frames} frames)")


class LinesCue:
    """The scene's straight lines (:func:`focal_from_lines`: two orthogonal vanishing
    points of a still camera's background, the median of up to 9 of the window's frames
    with the middle frame's people left out). The lines' scene must stand as the people
    do: one of its axes within ``max_up_deg`` of the bodies' mean up axis (a backdrop
    filmed by another camera, a poster or a screen fails this).

    Args:
        principal_point: (2,) pixels.
        fov_range_deg: Horizontal field-of-view range, degrees.
        max_up_deg: Largest angle between the lines' nearest axis and the people's up.
    """

    before_fit = False

    def __init__(self, *, principal_point: np.ndarray, fov_range_deg: tuple[float, float], max_up_deg: float) -> None:
        self.principal_point = principal_point
        self.fov_range_deg = fov_range_deg
        self.max_up_deg = max_up_deg

    def propose(self, ev: ShotEvidence) -> FocalProposal | None:
        import cv2

        if not ev.checking or ev.cue != "people" or ev.zooming or ev.result is None:
            return None
        frames = ev.frames[:: max(1, len(ev.frames) // 9)][:9]
        gray = np.median(np.stack([cv2.cvtColor(f.rgb, cv2.COLOR_RGB2GRAY) for f in frames]), 0).astype(np.uint8)
        boxes = ev.boxes.astype(np.float64)
        grow = 0.05 * (boxes[:, 2:] - boxes[:, :2])
        found = focal_from_lines(gray, self.principal_point,
                                 exclude_xyxy=np.hstack([boxes[:, :2] - grow, boxes[:, 2:] + grow]),
                                 fov_range_deg=self.fov_range_deg)
        fit = ev.result.fit
        if found is None or not fit.fit_ok.any():
            log.info("shot %d: the scene's lines fix no focal", ev.shot)
            return None
        up = ev.result.up[fit.fit_ok].mean(0)
        off_deg = found.angle_to_deg(up)
        log.info("shot %d: the scene's lines give %.1f px (bootstrap sd %.3f in ln f; segments %s), the nearest of "
                 "their axes %.1f deg from the people's up; the bodies gave %.1f px", ev.shot, found.focal_px,
                 found.log_std, found.segments.tolist(), off_deg, ev.focal_px)
        if off_deg > self.max_up_deg:
            return None
        return FocalProposal(found.focal_px, "lines",
                             f"shot {ev.shot}: focal {found.focal_px:.1f} px from the scene's straight lines (two "
                             f"orthogonal vanishing points, {int(found.segments[:2].sum())} segments; their bodies "
                             f"alone gave {ev.focal_px:.1f} px)", down=-found.nearest_axis(up))


class FloorCue:
    """The floor people walk on (:func:`focal_from_floor`: a still camera that looks
    down or up at them), checking a focal the people set.

    Args:
        image_size: (width, height), pixels.
        principal_point: (2,) pixels.
        fov_range_deg: Horizontal field-of-view range, degrees.
        min_keypoint_conf: Keypoints below this confidence are not read.
    """

    before_fit = False

    def __init__(self, *, image_size: tuple[int, int], principal_point: np.ndarray,
                 fov_range_deg: tuple[float, float], min_keypoint_conf: float) -> None:
        self.image_size = image_size
        self.principal_point = principal_point
        self.fov_range_deg = fov_range_deg
        self.min_keypoint_conf = min_keypoint_conf

    def propose(self, ev: ShotEvidence) -> FocalProposal | None:
        if not ev.checking or ev.cue != "people" or ev.result is None:
            return None
        fit, obs = ev.result.fit, ev.window.obs
        ok = fit.fit_ok
        found = focal_from_floor(obs.keypoints2d[ok], fit.pelvis[ok], fit.track_id[ok], fit.frame_index[ok],
                                 ev.focal_px, *self.image_size, principal_point=self.principal_point,
                                 zoom=ev.window.obs_zoom[ok], fov_range_deg=self.fov_range_deg,
                                 min_conf=self.min_keypoint_conf)
        if found is None:
            return None
        log.info("shot %d focal %.1f px from the floor under %d tracks (camera tilted %.1f deg; the bodies alone gave "
                 "%.1f px)", ev.shot, found.focal_px, found.tracks, found.tilt_deg, ev.focal_px)
        return FocalProposal(found.focal_px, "floor",
                             f"shot {ev.shot}: focal {found.focal_px:.1f} px from the floor people walk on (the "
                             f"camera looks {abs(found.tilt_deg):.0f} deg {'down' if found.tilt_deg > 0 else 'up'}; "
                             f"their bodies alone gave {ev.focal_px:.1f} px)", person_frames=found.person_frames)
