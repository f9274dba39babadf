"""Builds the stages from the typed config: the one place their settings come from.

:func:`build_clip` wires one clip's stages (:class:`~meshstream.stream.clip.Clip`);
:func:`fitter_spec` turns the config into the picklable recipe a fitter is built from
in any process (:func:`build_fitter`: this one, or a Ray actor on another machine).
The command line, ``bench/`` and ``train/`` build their perceiver, tracker and
estimator here too, so all of them run the same perception and fitting as a user's run
(the stages' own keyword defaults equal the config's, which ``tests/test_config.py``
checks, but a caller should not rely on two copies staying equal).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import EstimationConfig, PerceptionConfig, TrackingConfig, YoloConfig

if TYPE_CHECKING:
    import torch

    from meshstream.models.body import BodyModel
    from meshstream.models.estimator import BodyEstimator
    from meshstream.models.lifter import LandmarkLifter
    from meshstream.models.perception import PersonPerceiver
    from meshstream.models.yolo_perception import YoloPerceiver
    from meshstream.tracking.tracker import PersonTracker
    from meshstream.tracking.ultralytics_tracker import UltralyticsTracker


def build_perceiver(pc: PerceptionConfig, yc: YoloConfig | None = None) -> PersonPerceiver | YoloPerceiver:
    """The person perceiver of ``pc``: MediaPipe + HOG, or (``pc.detector == "yolo"``)
    ultralytics YOLO pose with ``yc``'s settings, BlazePose on the crops of people tall
    enough and the keypoint lifter for the others."""
    if pc.detector == "yolo":
        from meshstream.models.lifter import KEYPOINT_WEIGHTS, LandmarkLifter
        from meshstream.models.perception import CropLandmarker
        from meshstream.models.yolo_perception import YoloPerceiver, YoloPoseDetector

        yc = yc or YoloConfig()
        detector = YoloPoseDetector(yc.weights, device=yc.device, imgsz=yc.imgsz, conf=yc.conf,
                                    max_persons=yc.max_persons)
        return YoloPerceiver(detector, CropLandmarker(crop_size=pc.crop_size, min_pose_score=pc.min_pose_score,
                                                      masks=False),
                             LandmarkLifter.load(KEYPOINT_WEIGHTS), landmarks_min_px=yc.landmarks_min_px)
    from meshstream.models.perception import PersonPerceiver

    return PersonPerceiver(max_persons=pc.max_persons, detect_every=pc.detect_every, use_hog=pc.use_hog,
                           crop_size=pc.crop_size, min_pose_score=pc.min_pose_score, masks=pc.masks,
                           tile_px=pc.tile_px, small_people=pc.small_people)


def build_tracker(tc: TrackingConfig, first_id: int = 1) -> PersonTracker | UltralyticsTracker:
    """The multi-person tracker of ``tc`` (ours, or ultralytics' ByteTrack or BoT-SORT);
    new tracks are numbered from ``first_id``."""
    if tc.tracker in ("bytetrack", "botsort"):
        from meshstream.tracking.ultralytics_tracker import UltralyticsTracker

        return UltralyticsTracker(tc.tracker, first_id=first_id)
    from meshstream.tracking.tracker import PersonTracker

    return PersonTracker(high_score=tc.high_score, low_score=tc.low_score, min_hits=tc.min_hits,
                         reid_s=tc.reid_s, iou_gate=tc.iou_gate, first_id=first_id)


def load_lifters(ec: EstimationConfig) -> tuple[LandmarkLifter | None, LandmarkLifter | None]:
    """The estimator's landmark lifters from the config: (the pose's, the focal
    search's). ``None`` stands for BlazePose's landmarks as given. With
    ``focal_landmarks=pose_lifter`` both are the same object, so one structure fit
    serves both (``BodyEstimator.fit_structures``)."""
    from meshstream.models.lifter import RELIEF_WEIGHTS, LandmarkLifter

    pose = LandmarkLifter.load() if ec.lifter else None
    if pose is not None:
        pose.keep_size = ec.lifter_keeps_size
    if ec.focal_landmarks == "relief_lifter":
        return pose, LandmarkLifter.load(RELIEF_WEIGHTS)
    if ec.focal_landmarks == "pose_lifter":
        return pose, pose or LandmarkLifter.load()
    return pose, None


def build_estimator(ec: EstimationConfig, body: BodyModel, base_shape: torch.Tensor | None = None,
                    shape_frames: int | None = None, feet: bool = True) -> BodyEstimator:
    """The body and camera estimator of ``ec`` on ``body``, lifters loaded.

    Args:
        ec: Estimation settings.
        body: The body model.
        base_shape: (1, S) the shape new tracks start from (``None``: the average
            body; a run with a child's known height passes a child's).
        shape_frames: Frames after which a track's shape is kept (a live run's), or
            ``None``: refined by every window.
        feet: Return the bodies' feet and up axes with each fit.
    """
    from meshstream.models.camera import FocalPrior
    from meshstream.models.estimator import BodyEstimator

    pose_lifter, focal_lifter = load_lifters(ec)
    return BodyEstimator(body, iterations_3d=ec.iterations_3d, iterations_2d=ec.iterations_2d,
                         min_keypoint_conf=ec.min_keypoint_conf, fov_range_deg=tuple(ec.fov_range_deg),
                         focal_prior=FocalPrior(ec.focal_prior_fov_deg, ec.focal_prior_spread, ec.focal_prior_weight,
                                                ec.focal_prior_flat_rise),
                         silhouette_weight=ec.silhouette_weight, silhouette_iterations=ec.silhouette_iterations,
                         silhouette_search_every=ec.silhouette_search_every, lifter=pose_lifter,
                         focal_lifter=focal_lifter, base_shape=base_shape, shape_frames=shape_frames,
                         feet=feet)


@dataclass(frozen=True)
class FitterSpec:
    """What a body fitter is built from (picklable: a Ray actor builds its own).

    Attributes:
        estimation: The estimation settings.
        device: Where the fitter runs (``"cpu"``).
    """

    estimation: EstimationConfig
    device: str = "cpu"


def fitter_spec(config, device: str = "cpu") -> FitterSpec:
    """The recipe of ``config``'s body fitter (the device checked first)."""
    check_device(device)
    return FitterSpec(config.estimation, device)


def check_device(device: str) -> None:
    """Raises ``ConfigError`` unless the fitter can run on ``device``."""
    from .errors import ConfigError

    if device != "cpu":
        raise ConfigError(f"--device {device}: the body fitter runs on the CPU only in this version (its body "
                          "model and rasteriser are not yet moved to CUDA); use --device cpu, and GPUs through "
                          "--gpus-per-fitter once they are supported")


def build_body(ec: EstimationConfig):
    """The body model of ``ec`` and the shape new tracks start from ((1, S), or ``None``:
    the average body; a known height under the adults' range gives a child's)."""
    from meshstream.models.body import AnnyBody
    from meshstream.models.smplx_body import SmplxBody

    body = SmplxBody(ec.model_path, gender=ec.gender) if ec.body_model == "smplx" else AnnyBody()
    base = None if ec.person_height_m is None else body.shape_for_stature(ec.person_height_m)
    return body, base


def build_fitter(spec: FitterSpec, body=None) -> BodyEstimator:
    """The body fitter of ``spec``: an estimator whose :meth:`~BodyEstimator.fit` is
    called with each window, its shot's camera and its tracks' priors (``body``: the
    ``build_body`` pair already loaded in this process, or ``None``)."""
    check_device(spec.device)
    body, base = body or build_body(spec.estimation)
    return build_estimator(spec.estimation, body, base_shape=base)


def live_config(config):
    """The configuration a live run works with: ``config`` with what ``config.live``
    changes (no masks, HOG's search every ``live.detect_every`` frames and while nobody
    is seen, one shot without zoom tracking, causal filters, no overlay sink: the preview
    draws its own)."""
    lc = config.live
    r = dataclasses.replace
    return r(config, perception=r(config.perception, masks=False, detect_every=lc.detect_every),
             tracking=r(config.tracking, detect_cuts=False, detect_zoom=False),
             estimation=r(config.estimation, silhouette_weight=0.0, silhouette_iterations=0),
             filter=r(config.filter, causal=True), output=r(config.output, overlay=False))


class LiveFitter:
    """A live run's body fitter: windows whose focal is searched (the first seconds'
    people) get the offline fitter's steps; every later one-frame window a few steps,
    warm-started from its tracks' priors, their shapes kept once settled.

    Args:
        search: The estimator of the focal search's window.
        frame: The estimator of one-frame windows.
    """

    def __init__(self, *, search: BodyEstimator, frame: BodyEstimator) -> None:
        self.search = search
        self.frame = frame

    def __call__(self, window, camera, priors):
        if camera.focal_px is None:
            return self.search.fit(window, camera, priors)
        # Once the shot's focal is set, no window searches it again (no per-frame focal_raw live).
        return self.frame.fit(window, dataclasses.replace(camera, search=False), priors)


def build_live(config, info, out_dir, stem: str, software_version: str, body=None, intrinsics=None):
    """Wires a live run: its clip (one frame per window once the focal is known; the
    first seconds' people set it where not given) and its fitter.

    Args:
        config: The validated configuration (``config.live`` applies; see :func:`live_config`).
        info: The source's :class:`~meshstream.stream.messages.VideoInfo` (its nominal fps).
        out_dir: Output folder (a ``Path``).
        stem: Output files' stem.
        software_version: Stored in the store's attributes.
        body: ``(body model, base shape)`` already loaded, or ``None``.
        intrinsics: The user's camera (frames arrive resampled to its ideal pinhole), or ``None``.

    Returns:
        The :class:`~meshstream.stream.clip.Clip` (not yet set up) and its :class:`LiveFitter`.
    """
    from .clip_stages import Windower

    lc, live = config.live, live_config(config)
    ec = live.estimation
    body = body or build_body(ec)
    wait = max(1, round(lc.focal_seconds * info.fps))
    windower = Windower(chunk_frames=1, min_person_frames=min(ec.focal_min_person_frames, wait), mask_size=0,
                        focal_wait_frames=wait)
    clip = build_clip(live, info, out_dir, stem, software_version, body=body, windower=windower,
                      intrinsics=intrinsics)
    per_frame = dataclasses.replace(ec, iterations_3d=lc.iterations_3d, iterations_2d=lc.iterations_2d)
    fitter = LiveFitter(search=build_estimator(ec, *body),
                        frame=build_estimator(per_frame, *body, shape_frames=lc.shape_frames, feet=ec.shared_ground))
    return clip, fitter


def build_clip(config, info, out_dir, stem: str, software_version: str, *, intrinsics=None, stored=None,
               frames_expected: int | None = None, body=None, windower=None):
    """Wires one clip's stages from ``config``.

    Args:
        config: The validated :class:`~meshstream.stream.config.Config`.
        info: The source's :class:`~meshstream.stream.messages.VideoInfo`.
        out_dir: Output folder (a ``Path``).
        stem: Output files' stem.
        software_version: Stored in the store's attributes.
        intrinsics: The user's camera (frames arrive resampled to its ideal pinhole), or ``None``.
        stored: The unfinished store this run continues (``StoredRun``), or ``None``.
        frames_expected: Frames the source will give, where known (a photo or two: every
            detection counts at once).
        body: ``(body model, base shape)`` already loaded (``build_body``), or ``None``.
        windower: The windower (``None``: ``chunk_frames`` per window, from the config).

    Returns:
        The :class:`~meshstream.stream.clip.Clip`, not yet set up.
    """
    import numpy as np

    from meshstream.models.camera import focal_from_fov
    from meshstream.models.ground import SharedGround
    from meshstream.models.placement import BodyPlacer
    from meshstream.tracking.filters import PoseSmoother, TranslationSmoother
    from meshstream.tracking.shots import ShotDetector
    from meshstream.tracking.sides import SideKeeper
    from meshstream.tracking.zoom import ZoomTracker

    from .clip import Clip
    from .clip_stages import CameraTurns, FramePerceiver, TrackFilter, Windower
    from .config import config_to_dict
    from .focal_cues import FloorCue, LinesCue, RotationCue
    from .jumps import JumpCheck
    from .shot_solver import ShotSolver
    from .sinks import Finalizer, Mesher, OverlaySink, ZarrSink
    from .store_attrs import metadata_focal, store_attrs

    c, ec, tc = config, config.estimation, config.tracking
    notes: list[str] = []
    body, base = body or build_body(ec)
    size = (info.width, info.height)
    pp = intrinsics.principal_point if intrinsics is not None else np.array([size[0] / 2, size[1] / 2], np.float32)
    focal_source = "user"
    if intrinsics is not None:
        user_focal = intrinsics.fx
    elif ec.focal_px is not None:
        user_focal = float(ec.focal_px)
    elif ec.fov_deg is not None:
        user_focal = focal_from_fov(ec.fov_deg, info.width)
    else:
        user_focal = metadata_focal(info, notes) if ec.metadata_focal else None
        focal_source = "estimated" if user_focal is None else "metadata"
    height_m = ec.person_height_m
    if height_m is not None:  # a size the shapes cannot take would bend the fit instead
        low, high = body.stature_range(base)
        height_m = float(np.clip(height_m, low, high))
        if height_m != ec.person_height_m:
            notes.append(f"--height-m {ec.person_height_m:g} m is outside the standing heights the fitted body "
                         f"shapes reach ({low:.2f}-{high:.2f} m), so bodies are sized to {height_m:.2f} m")
    if frames_expected and frames_expected < tc.min_hits:
        tc = dataclasses.replace(tc, min_hits=frames_expected)
    zoom = ZoomTracker() if tc.detect_zoom else None
    fov_range = tuple(ec.fov_range_deg)
    cues = []
    if ec.rotation_focal and zoom is not None:
        cues.append(RotationCue(zoom=zoom, image_size=size, principal_point=pp, fov_range_deg=fov_range))
    if ec.lines_focal:
        cues.append(LinesCue(principal_point=pp, fov_range_deg=fov_range, max_up_deg=ec.lines_max_up_deg))
    if ec.floor_focal:
        cues.append(FloorCue(image_size=size, principal_point=pp, fov_range_deg=fov_range,
                             min_keypoint_conf=ec.min_keypoint_conf))
    ground = SharedGround(min_tracks=ec.ground_min_tracks, up_sd_deg=ec.ground_up_sd_deg) if ec.shared_ground else None
    solver = ShotSolver(image_size=size, principal_point=pp, user_focal=user_focal, cues=cues,
                        fov_range_deg=fov_range, ground=ground, height_m=height_m,
                        min_keypoint_conf=ec.min_keypoint_conf, zoom=zoom, notes=notes)
    perceive = FramePerceiver(
        perceiver=build_perceiver(c.perception, c.yolo),
        tracker=build_tracker(tc, first_id=max(stored.track_ids, default=0) + 1 if stored else 1),
        shots=ShotDetector(hist_threshold=tc.cut_hist_threshold, diff_threshold=tc.cut_diff_threshold)
        if tc.detect_cuts else None, zoom=zoom, continues_shot=stored is not None,
        zoom_base=stored.last_zoom if stored is not None and zoom is not None else 1.0,
        sides=SideKeeper() if tc.keep_sides else None)
    placer = BodyPlacer(body, base_shape=base)
    fc = c.filter
    track_filter = TrackFilter(
        translation=TranslationSmoother(accel_std=fc.accel_std, causal=fc.causal) if fc.smooth_translation else None,
        pose=PoseSmoother(sigma_s=fc.pose_sigma_s, causal=fc.causal) if fc.smooth_pose else None, placer=placer)
    zarr_path = out_dir / f"{stem}.zarr"
    overlay_path = out_dir / f"{stem}_overlay.mp4" if c.output.overlay else None
    if stored and overlay_path is not None:  # a resumed run keeps the earlier overlay, writes the rest beside
        k = 2
        while overlay_path.exists():
            overlay_path, k = out_dir / f"{stem}_overlay_{k}.mp4", k + 1
    attrs = store_attrs(info, body, config_to_dict(c), software_version, focal_source, intrinsics)
    store = ZarrSink(path=zarr_path, attrs=attrs, principal_point=pp, num_joints=body.num_bones,
                     reopen=stored is not None, shot_first_row={stored.last_shot: stored.shot_first_row}
                     if stored else None)
    overlay = (OverlaySink(path=overlay_path, size=size, fps=info.fps, crf=c.output.overlay_crf, faces=body.faces,
                           principal_point=pp, inset=c.output.overlay_inset, keypoints=c.output.overlay_keypoints)
               if overlay_path else None)
    turns = None if zoom is None else CameraTurns(zoom=zoom, principal_point=pp, notes=notes,
                                                  turn_base=stored.last_rotation if stored else None)
    windower = windower or Windower(chunk_frames=ec.chunk_frames, min_person_frames=ec.focal_min_person_frames,
                                    mask_size=ec.silhouette_size)
    clip = Clip(perceive=perceive, windower=windower,
                solver=solver, turns=turns, track_filter=track_filter, store=store, overlay=overlay,
                mesher=Mesher(placer=placer), finalizer=Finalizer(placer=placer), notes=notes,
                person_frames=stored.person_frames if stored else 0,
                track_ids=set(stored.track_ids) if stored else None, world_axes=fc.world_axes,
                focal_source=focal_source,
                jumps=JumpCheck(focal_factor=ec.focal_jump_factor, depth_factor=ec.depth_jump_factor,
                                min_person_frames=ec.focal_min_person_frames),
                jump_records=list(stored.attrs.get("jumps") or []) if stored else None)
    if stored:
        _resume(clip, stored, zoom)
    return clip


def _resume(clip, stored, zoom) -> None:
    """Continues the stored run's last shot (its focal, if set) and counts its tracks,
    which end where it stopped: their stored shapes are placed again when this run
    ends, and tracks found from here on get new ids."""
    a = stored.attrs
    n = stored.last_shot + 1
    clip.solver.resume(n, (list(a.get("shot_focal_px") or []) + [None] * n)[:n],
                       (list(a.get("shot_focal_person_frames") or []) + [0] * n)[:n],
                       (list(a.get("shot_focal_cue") or []) + [None] * n)[:n], dict(stored.shapes))
    clip.chunk.shot = clip.solver.shot
    if zoom is not None and clip.solver.focal is not None:
        zoom.focal_px = clip.solver.focal * clip.perceive.zoom_base  # the resumed frames' own focal
    resumed = (f"resumed after {stored.n_frames} stored frames (source frame {stored.last_frame_index}): "
               "tracks found after it have new ids")
    if clip.overlay is not None:
        resumed += f", and the overlay of the rest is {clip.overlay.path.name}"
    clip.notes[:] = list(dict.fromkeys([*(a.get("notes") or []), *clip.notes, resumed]))


def observe_clip(path: str, config, max_frames: int | None = None):
    """Perception and tracking of a clip as a user's run has them (the inline
    executor; bench/ and train/ read their person-frames here).

    Returns:
        The :class:`~meshstream.stream.clip_stages.Observer` (its ``frames``,
        ``detections`` and ``observations()``) and the source's ``VideoInfo``.
    """
    from meshstream.tracking.sides import SideKeeper

    from .clip_stages import FramePerceiver, Observer
    from .executors import InlineExecutor
    from .sources import open_source

    source = open_source(str(path), max_frames=max_frames)
    observer = Observer(perceive=FramePerceiver(perceiver=build_perceiver(config.perception, config.yolo),
                                                tracker=build_tracker(config.tracking),
                                                sides=SideKeeper() if config.tracking.keep_sides else None))
    try:
        InlineExecutor().run(source, observer)
    finally:
        observer.perceive.close()
        source.close()
    return observer, source.info
