"""The run() orchestration: source -> perceive -> track -> estimate -> filter -> sinks.

In-process executor: a decoder thread fills a bounded frame queue; the calling thread
owns the stateful stages (perception, tracker, estimator, filters) and hands finished
chunks to a writer thread (Zarr store and overlay video) through a second bounded
queue, so decoding, estimation and encoding overlap and memory stays bounded by the
queue sizes and one chunk (up to twice ``chunk_frames`` while a shot's first chunk with
people waits for enough person-frames to set the focal), whatever the clip length.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from meshstream.export.overlay import OverlayWriter, draw_inset, draw_keypoints, render_overlay, track_colour
from meshstream.export.zarr_store import StoredRun, ZarrWriter, read_stored_run
from meshstream.models.camera import Intrinsics, focal_from_fov, focal_from_rotation, fov_from_focal
from meshstream.models.detections import Detections
from meshstream.models.estimator import BodyFit, FocalEstimate, PersonFrames, mask_grid
from meshstream.models.ground import focal_from_floor
from meshstream.models.keypoints import blazepose33_to_coco23
from meshstream.models.vanishing import focal_from_lines

from .config import Config, config_to_dict
from .container_tags import PLAUSIBLE_FOCAL_35MM, focal_px_from_35mm
from .errors import ConfigError, InputError, NothingToResume, OutputError
from .frames import Frame, VideoInfo
from .intrinsics import FrameUndistorter, load_intrinsics
from .pipeline import build_estimator, build_perceiver, build_tracker
from .sources import open_source

log = logging.getLogger(__name__)
_END = object()


@dataclass
class RunSummary:
    """What a run produced.

    Attributes:
        frames: Frames decoded and stored.
        person_frames: Person-frames fitted.
        tracks: Distinct track ids.
        seconds: Wall time of the run, seconds.
        focal_px: The first shot's focal, pixels (NaN if no person was found in it).
        focal_fov_deg: The same as a horizontal field of view, degrees.
        focal_person_frames: Person-frames the first shot's focal was estimated from
            (0: given by the user or the video's metadata, or from the camera's turn).
        focal_cue: What set the first shot's focal: ``"given"``, ``"people"`` (the
            focal search over person-frames), ``"camera rotation"`` (a panning or
            tilting camera, :func:`~meshstream.models.camera.focal_from_rotation`),
            ``"lines"`` (a still camera seeing the scene's straight lines obliquely,
            :func:`~meshstream.models.vanishing.focal_from_lines`) or ``"floor"`` (a
            still camera looking down at people walking,
            :func:`~meshstream.models.ground.focal_from_floor`).
        shots: Shots found (cuts + 1).
        focal_source: ``"user"`` (a focal, field of view or intrinsics file given),
            ``"metadata"`` (the 35 mm-equivalent focal a phone wrote in the video, or
            the images' EXIF) or
            ``"estimated"``.
        zarr_path: The store.
        overlay_path: The overlay video, or ``None``.
        notes: Things the user should know (truncated input, no person, ...).
        input_truncated: The input stopped early (corrupt or truncated stream).
        startup_seconds: Part of ``seconds`` spent loading models, seconds.
        statures_m: Each track's fitted standing height, metres (its ``stature_m``).
        camera_turn_deg: The largest turn of the camera from its shot's first frame
            over the frames this run stored (``camera/rotation``), degrees: 0 for a
            still camera.
        from_images: The input was a photo or a folder of images (not a video).
    """

    frames: int
    person_frames: int
    tracks: int
    seconds: float
    focal_px: float
    shots: int
    focal_fov_deg: float
    focal_person_frames: int
    focal_source: str
    zarr_path: Path
    overlay_path: Path | None
    notes: list[str] = field(default_factory=list)
    input_truncated: bool = False
    startup_seconds: float = 0.0
    statures_m: dict[int, float] = field(default_factory=dict)
    focal_cue: str = "given"
    camera_turn_deg: float = 0.0
    from_images: bool = False

    @property
    def fps(self) -> float:
        """Frames per second after model loading."""
        busy = self.seconds - self.startup_seconds
        return self.frames / busy if busy > 0 else 0.0


@dataclass
class _Chunk:
    frames: list[Frame]
    detections: list[Detections]
    shot: int = 0
    zoom: list[float] = field(default_factory=list)


@dataclass
class _WriteJob:
    """What the writer thread needs for one chunk (decided on the estimating thread)."""

    chunk: _Chunk
    fit: BodyFit | None
    focal_raw: np.ndarray
    focal: float | None  # the shot's focal at zoom 1
    zoom: np.ndarray  # (T,) zoom of each frame of the chunk
    bbox: np.ndarray | None = None
    keypoints2d: np.ndarray | None = None
    transl_raw: np.ndarray | None = None
    # Frames of the shot (this chunk's and earlier ones still without it) and each one's
    # camera rotation into the shot's world axes, (K, 3, 3); None: not known yet.
    turns: tuple[np.ndarray, np.ndarray] | None = None


def check_output_dir(path: Path) -> None:
    """Creates ``path`` and checks it is writable, before any work is done."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".meshstream-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"output folder {path} is not writable ({exc.strerror}); choose another with -o") from exc


# Settings a resumed run may change: where and what it writes, and how far it goes.
_RESUME_FREE = ("output.", "decode.max_frames", "decode.end_s")


def _flatten(d: dict, prefix: str = "") -> dict[str, object]:
    """Nested dict -> ``{"section.key": value}``."""
    out: dict[str, object] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def check_resumable(stored: StoredRun, info: VideoInfo, config: Config, store: Path) -> None:
    """Raises unless ``stored`` was made from this input with these settings.

    Raises:
        InputError: Another video (frame size, rate or length differ), checked first.
        ConfigError: Other settings (each differing key is named).
        NothingToResume: The store is complete (same video, same settings).
    """
    a = stored.attrs
    ours = (info.width, info.height, round(info.fps, 3), info.n_frames)
    theirs = (a.get("width"), a.get("height"), round(float(a.get("fps", 0.0)), 3), a.get("source_n_frames", ours[3]))
    if ours != theirs:
        raise InputError(f"{store} was made from another video ({theirs[0]}x{theirs[1]} at {theirs[2]} frames/s, "
                         f"{theirs[3]} frames; this one {ours[0]}x{ours[1]} at {ours[2]}, {ours[3]}); give the same "
                         "input, or run without --resume")
    now = _flatten(json.loads(json.dumps(config_to_dict(config))))
    before = _flatten(a.get("config") or {})
    differ = [k for k in sorted(set(now) | set(before))
              if not k.startswith(_RESUME_FREE) and now.get(k) != before.get(k)]
    if differ:
        shown = ", ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in differ[:3])
        raise ConfigError(f"{store} was made with other settings ({shown}); resume with the same settings, or run "
                          "without --resume")
    if stored.complete:
        raise NothingToResume(f"{store} is already complete ({a.get('n_frames')} frames); nothing to resume "
                              "(run without --resume to compute it again)")


class _Pipeline:
    """Holds the stages and sinks of one run (``stored``: the unfinished store it resumes)."""

    def __init__(self, config: Config, info: VideoInfo, out_dir: Path, stem: str, software_version: str,
                 intrinsics: Intrinsics | None = None, stored: StoredRun | None = None,
                 frames_expected: int | None = None) -> None:
        from meshstream.models.body import AnnyBody
        from meshstream.models.ground import SharedGround
        from meshstream.models.smplx_body import SmplxBody
        from meshstream.tracking.filters import PoseSmoother, TranslationSmoother
        from meshstream.tracking.shots import ShotDetector
        from meshstream.tracking.zoom import ZoomTracker

        c = config
        self.config = c
        self.info = info
        self.perceiver = build_perceiver(c.perception)
        tc = c.tracking
        if frames_expected and frames_expected < tc.min_hits:  # a photo (or two): every detection counts at once
            tc = dataclasses.replace(tc, min_hits=frames_expected)
        self.tracker = build_tracker(tc, first_id=max(stored.track_ids, default=0) + 1 if stored else 1)
        self.shots = (ShotDetector(hist_threshold=tc.cut_hist_threshold, diff_threshold=tc.cut_diff_threshold)
                      if tc.detect_cuts else None)
        self.shot = -1
        self.zoom = ZoomTracker() if tc.detect_zoom else None
        ec = c.estimation
        self.body = (SmplxBody(ec.model_path, gender=ec.gender) if ec.body_model == "smplx" else AnnyBody())
        # A known height under the adults' range (a child): new tracks start from a child's body.
        base = None if ec.person_height_m is None else self.body.shape_for_stature(ec.person_height_m)
        self.estimator = build_estimator(ec, self.body, base_shape=base)
        self.ground = SharedGround(min_tracks=ec.ground_min_tracks) if ec.shared_ground else None
        self.ground_estimates: list = []  # the last GroundEstimate of each shot (None: too few tracks)
        self.row_scales: dict[int, list[tuple[int, float]]] = {}  # track -> (rows, scale they were fitted at)
        self.smoother = TranslationSmoother(accel_std=c.filter.accel_std, causal=c.filter.causal)
        self.pose_smoother = PoseSmoother(sigma_s=c.filter.pose_sigma_s, causal=c.filter.causal)
        self.size = (info.width, info.height)
        self.pp = np.array([info.width / 2.0, info.height / 2.0], np.float32)
        self.notes: list[str] = []  # for the user, at the end of the run (with run()'s own)
        self.focal_source = "user"
        if intrinsics is not None:  # frames arrive resampled to its ideal pinhole
            self.pp = intrinsics.principal_point
            self.user_focal: float | None = intrinsics.fx
        elif ec.focal_px is not None:
            self.user_focal = float(ec.focal_px)
        elif ec.fov_deg is not None:
            self.user_focal = focal_from_fov(ec.fov_deg, info.width)
        else:
            self.user_focal = self._metadata_focal(info) if ec.metadata_focal else None
            self.focal_source = "estimated" if self.user_focal is None else "metadata"
        self.focal: float | None = self.user_focal
        self.shot_focals: list[float | None] = []
        self.shot_focal_evidence: list[int] = []  # person-frames each shot's focal was estimated from (0: given)
        self.shot_focal_cue: list[str | None] = []  # what set each shot's focal (None: not yet)
        self.rotation_focal = ec.rotation_focal
        self.floor_focal = ec.floor_focal
        self.lines_focal = ec.lines_focal
        self.height_m = ec.person_height_m
        if self.height_m is not None:  # a size the shapes cannot take would bend the fit instead
            low, high = self.body.stature_range(base)
            self.height_m = float(np.clip(self.height_m, low, high))
            if self.height_m != ec.person_height_m:
                self.notes.append(f"--height-m {ec.person_height_m:g} m is outside the standing heights the fitted body "
                                  f"shapes reach ({low:.2f}-{high:.2f} m), so bodies are sized to {self.height_m:.2f} m")
        self.zarr_path = out_dir / f"{stem}.zarr"
        self.writer = ZarrWriter.reopen(self.zarr_path, self.body.num_bones) if stored else ZarrWriter(
            self.zarr_path,
            attrs={
                "source": str(info.path), "fps": info.fps, "width": info.width, "height": info.height,
                "source_n_frames": info.n_frames,
                "rotation_deg": info.rotation_deg, "codec": info.codec, "body_model": self.body.name,
                "keypoint_layouts": {"keypoints2d": "blazepose33", "keypoints3d_coco17": "coco17"},
                "joint_names": self.body.bone_names, "shape_names": self.body.shape_names,
                "camera_convention": "OpenCV: x right, y down, z forward; metres; pixels",
                "rotation_convention": "axis-angle (radians); global_orient maps the body-model frame "
                                       "(Anny: Z up, -Y forward; SMPL-X: Y up, +Z forward) to the camera",
                "transl_convention": "camera-space position of the body model's root joint (the model frame "
                                     "has the rest root at its origin); SMPL-X trans = transl - J0(betas)",
                "model_path": str(self.body.path) if self.body.path else None,
                "model_up_axis": [float(x) for x in self.body.up_axis],
                "foot_joint_names": list(self.body.foot_joint_names),
                "gender": self.body.gender,
                "config": config_to_dict(c), "software_version": software_version, "focal_source": self.focal_source,
                "focal_35mm": info.focal_35mm, "focal_35mm_basis": info.focal_35mm_basis,
                "intrinsics": None if intrinsics is None else {
                    "fx": intrinsics.fx, "fy": intrinsics.fy, "cx": intrinsics.cx, "cy": intrinsics.cy,
                    "distortion": list(intrinsics.distortion), "frames_undistorted": not intrinsics.is_ideal},
            },
            principal_point=self.pp,
            num_joints=self.body.num_bones,
        )
        self.overlay_path = out_dir / f"{stem}_overlay.mp4" if c.output.overlay else None
        if stored and self.overlay_path is not None:  # a resumed run keeps the earlier overlay, writes the rest beside
            k = 2
            while self.overlay_path.exists():
                self.overlay_path, k = out_dir / f"{stem}_overlay_{k}.mp4", k + 1
        self.overlay = (OverlayWriter(self.overlay_path, info.width, info.height, info.fps, crf=c.output.overlay_crf)
                        if self.overlay_path else None)
        self.person_frames = 0
        self.track_ids: set[int] = set()
        self.track_shapes: dict[int, np.ndarray] = {}
        self.statures: dict[int, float] = {}  # track -> fitted standing height, metres (set when the run ends)
        self._writer_shot_rows: dict[int, int] = {}
        self._continues_shot = False  # resuming: the first frame goes on with the stored shot
        self._zoom_base = 1.0  # resuming a zoomed shot: its zoom at the first resumed frame
        self._turn_base = np.eye(3)  # resuming a shot: the camera's rotation into its world axes when it stopped
        self._unturned: list[int] = []  # frames of the shot written before its focal (and so its turns) was known
        self.max_turn_deg = 0.0  # the largest turn stored, degrees
        self._unread_note: int | None = None  # index in notes of the shot's note on turns not read
        if stored:
            self._resume(stored)

    def _resume(self, stored: StoredRun) -> None:
        """Continues the stored run's last shot (its focal, if set) and counts its tracks,
        which end where it stopped: their stored shapes are placed again when this run
        ends, and tracks found from here on get new ids."""
        a = stored.attrs
        n_shots = stored.last_shot + 1
        focals = (list(a.get("shot_focal_px") or []) + [None] * n_shots)[:n_shots]
        evidence = (list(a.get("shot_focal_person_frames") or []) + [0] * n_shots)[:n_shots]
        cues = (list(a.get("shot_focal_cue") or []) + [None] * n_shots)[:n_shots]
        self.shot = stored.last_shot
        self.shot_focals = [self.user_focal] * n_shots if self.user_focal is not None else focals
        self.shot_focal_evidence = evidence
        self.shot_focal_cue = ["given"] * n_shots if self.user_focal is not None else cues
        self.focal = self.shot_focals[-1]
        self.ground_estimates = [None] * n_shots
        self._writer_shot_rows = {self.shot: stored.shot_first_row}
        self._zoom_base = stored.last_zoom if self.zoom is not None else 1.0
        self._turn_base = stored.last_rotation
        if self.zoom is not None and self.focal is not None:
            self.zoom.focal_px = self.focal * self._zoom_base  # the resumed frames' own focal
        self.person_frames = stored.person_frames
        self.track_ids = set(stored.track_ids)
        self.track_shapes = dict(stored.shapes)
        self._continues_shot = True
        resumed = (f"resumed after {stored.n_frames} stored frames (source frame {stored.last_frame_index}): "
                   "tracks found after it have new ids")
        if self.overlay_path is not None:
            resumed += f", and the overlay of the rest is {self.overlay_path.name}"
        self.notes = list(dict.fromkeys([*(a.get("notes") or []), *self.notes, resumed]))

    def _metadata_focal(self, info: VideoInfo) -> float | None:
        """Focal in pixels from the file's 35 mm-equivalent focal, if there and plausible."""
        if info.focal_35mm is None:
            return None
        where = "images' EXIF" if info.codec == "images" else "video's metadata"
        if not PLAUSIBLE_FOCAL_35MM[0] <= info.focal_35mm <= PLAUSIBLE_FOCAL_35MM[1]:
            self.notes.append(f"the {where} gives a {info.focal_35mm:g} mm (35 mm-equivalent) focal length, "
                              f"outside {PLAUSIBLE_FOCAL_35MM[0]:g}-{PLAUSIBLE_FOCAL_35MM[1]:g} mm, so it was "
                              "ignored and the focal estimated")
            return None
        focal = focal_px_from_35mm(info.focal_35mm, info.width, info.height, info.focal_35mm_basis)
        log.info("focal %.1f px from the %s (%g mm, 35 mm-equivalent)", focal, where, info.focal_35mm)
        return focal

    # Runs on the calling thread.
    def is_new_shot(self, frame: Frame) -> bool:
        """True for the first frame (unless a resumed run goes on with the stored shot) and,
        with cut detection, the first frame after a cut."""
        if self._continues_shot:
            self._continues_shot = False
            if self.shots is not None:
                self.shots(frame)  # the cut detector's first frame: no cut
            return False
        if self.shots is None:
            return self.shot < 0
        return self.shots(frame)

    def start_shot(self) -> None:
        """Resets the per-shot state: tracks end, the focal is estimated again."""
        self.shot += 1
        self.shot_focals.append(self.user_focal)
        self.shot_focal_evidence.append(0)
        self.shot_focal_cue.append(None if self.user_focal is None else "given")
        self.ground_estimates.append(None)
        self.focal = self.user_focal
        self._zoom_base = 1.0
        self._turn_base = np.eye(3)
        self._unturned = []
        self._unread_note = None
        if self.shot > 0:
            log.info("shot %d starts (cut detected)", self.shot)
            self.perceiver.reset()
            self.tracker.reset()
            self.estimator.reset()
            if self.ground is not None:
                self.ground.reset()
            self.smoother.reset()
            self.pose_smoother.reset()
        if self.zoom is not None:
            self.zoom.reset()
            self.zoom.focal_px = self.user_focal

    def holds_for_focal(self, chunk: _Chunk) -> bool:
        """True while the shot's focal is still to be estimated and ``chunk`` has people,
        but fewer person-frames than ``estimation.focal_min_person_frames``: the chunk
        then grows (up to twice ``chunk_frames``) before it is estimated, so that a
        person entering near a chunk's end does not set the focal alone."""
        ec = self.config.estimation
        if self.focal is not None or len(chunk.frames) >= 2 * ec.chunk_frames:
            return False
        seen = sum(len(d) for d in chunk.detections)
        return 0 < seen < ec.focal_min_person_frames

    def perceive(self, frame: Frame) -> tuple[Detections, float]:
        """Persons of a frame (tracked) and the frame's zoom since the shot began."""
        dets = self.perceiver(frame)
        zoom = self._zoom_base * self.zoom(frame, dets.xyxy) if self.zoom is not None else 1.0
        dets = self.tracker(dets, frame)
        return dets[dets.track_id >= 0], zoom

    def estimate(self, chunk: _Chunk) -> _WriteJob:
        obs, blaze = _observations(chunk, self.config.estimation.silhouette_size)
        focal_raw = np.full(len(chunk.frames), np.nan, np.float32)
        # A slowly varying focal only once the shot is seen to zoom; else one per shot.
        zooming = self.zoom is not None and (self.zoom.zooming or self._zoom_base != 1.0)
        zoom = np.asarray(chunk.zoom, np.float32) if zooming else np.ones(len(chunk.frames), np.float32)
        if len(obs) == 0:
            return _WriteJob(chunk, None, focal_raw, self.focal, zoom, turns=self._camera_turns(chunk))
        zoom_of = dict(zip((f.index for f in chunk.frames), zoom))
        obs_zoom = np.array([zoom_of[int(i)] for i in obs.frame_index], np.float32)
        start = self.estimator.state()
        check_scene = False  # the chunk that sets the shot's focal from the people checks it against their scene
        if self.user_focal is not None:
            # A given focal: no search, so no second structure fit (focal_px_raw stays NaN).
            structure = self.estimator.fit_structure(obs)
        else:
            if self.focal is None and self.rotation_focal and self.zoom is not None:
                self._set_rotation_focal()
            structure, searched = self.estimator.fit_structures(obs)
            estimate = self.estimator.estimate_focal(obs, searched, self.size, zoom=obs_zoom, principal_point=self.pp)
            for i, f in enumerate(chunk.frames):
                focal_raw[i] = estimate.per_frame.get(f.index, np.nan)
            if self.focal is None:
                self._set_shot_focal(estimate, len(obs))
                check_scene = True
        fit = self.estimator(obs, self.focal, self.size, structure=structure, zoom=obs_zoom, principal_point=self.pp)
        if check_scene and self.lines_focal and not zooming:
            fit = self._set_lines_focal(chunk, obs, fit, start, obs_zoom)
        if check_scene and self.floor_focal and self.shot_focal_cue[-1] == "people":
            fit = self._set_floor_focal(obs, fit, start, obs_zoom)
        if self.ground is not None:
            fit = self._shared_ground(obs, fit, start, obs_zoom)
        elif self.height_m is not None:
            fit = self._known_height(obs, fit, start, obs_zoom)
        for tid in np.unique(fit.track_id):
            self.track_shapes[int(tid)] = self.estimator.track_shape(int(tid))
            rows = int((fit.track_id == tid).sum())
            self.row_scales.setdefault(int(tid), []).append((rows, self.estimator.track_scale(int(tid))))
        transl_raw = fit.transl.copy()
        turns = self._camera_turns(chunk)
        world = turns is not None and self.config.filter.world_axes
        fit = self._filter(fit, {f.index: f.pts_seconds for f in chunk.frames},
                           dict(zip(turns[0].tolist(), turns[1])) if world else None)
        self.person_frames += len(fit)
        self.track_ids.update(int(t) for t in np.unique(fit.track_id))
        return _WriteJob(chunk, fit, focal_raw, self.focal, zoom, obs.bbox_xyxy, blaze, transl_raw, turns)

    def _camera_turns(self, chunk: _Chunk) -> tuple[np.ndarray, np.ndarray] | None:
        """The camera's rotation into the shot's world axes (its camera axes at the shot's
        first frame) for the chunk's frames and any earlier ones of the shot still
        without it, once the shot's focal is known (:meth:`ZoomTracker.turns`): (frame
        indices (K,), rotations (K, 3, 3)), or ``None`` until then (or without zoom
        tracking, which reads the turns)."""
        if self.zoom is None:
            return None
        self._unturned.extend(f.index for f in chunk.frames)
        if self.focal is None:
            return None
        frames, self._unturned = np.array(self._unturned, np.int64), []
        turns = self._turn_base @ np.swapaxes(self.zoom.turns(frames, self.focal * self._zoom_base, self.pp), 1, 2)
        cos = (np.trace(turns, axis1=1, axis2=2) - 1.0) / 2.0
        if np.isfinite(cos).any():
            self.max_turn_deg = max(self.max_turn_deg, float(np.degrees(np.arccos(np.clip(np.nanmin(cos), -1, 1)))))
        if self.zoom.unread and not (turns == np.eye(3)).all():  # a still camera's unread turn is right
            n = self.zoom.unread
            note = (f"shot {self.shot}: the camera's turn could not be read in {n} frame{'s' * (n != 1)} (too little "
                    "background matched, or no turn at the shot's focal); camera/rotation interpolates them")
            if self._unread_note is None:
                self._unread_note = len(self.notes)
                self.notes.append(note)
            else:
                self.notes[self._unread_note] = note
        return frames, turns

    def _fix_shot_focal(self, focal: float, cue: str, person_frames: int = 0) -> float:
        """Sets the current shot's focal (at zoom 1) and what set it; returns its
        horizontal field of view, degrees."""
        self.focal = self.shot_focals[-1] = focal
        self.shot_focal_evidence[-1] = person_frames
        self.shot_focal_cue[-1] = cue
        if self.zoom is not None:
            self.zoom.focal_px = focal
        return fov_from_focal(focal, self.size[0])

    def _set_shot_focal(self, estimate: FocalEstimate, person_frames: int) -> None:
        """Fixes the shot's focal from its first estimate, with a note when the search
        ended at the edge of its range."""
        fov = self._fix_shot_focal(estimate.focal_px, "people", person_frames)
        log.info("shot %d focal %.1f px (%.1f deg horizontal FOV) from %d person-frames", self.shot, self.focal, fov,
                 person_frames)
        if estimate.at_range_edge:
            low, high = self.config.estimation.fov_range_deg
            self.notes.append(f"shot {self.shot}: the focal search ended at the edge of its range ({self.focal:.0f} px, "
                              f"{fov:.0f} deg of estimation.fov_range_deg [{low:g}, {high:g}]), so the footage did not "
                              "fix the focal; give --fov-deg or --focal-px if you know it")

    def _set_rotation_focal(self) -> None:
        """Fixes the shot's focal (at zoom 1) from the camera's turn so far, when it turned
        enough about its centre (:func:`focal_from_rotation`, each homography at its
        anchor frame's zoom); else leaves it to the people."""
        found = focal_from_rotation(np.array(self.zoom.homographies), *self.size, principal_point=self.pp,
                                    fov_range_deg=tuple(self.config.estimation.fov_range_deg),
                                    anchor_zoom=np.array(self.zoom.anchor_zooms))
        if found is None:
            return
        fov = self._fix_shot_focal(found.focal_px, "camera rotation")
        log.info("shot %d focal %.1f px (%.1f deg horizontal FOV) from the camera's turn (%.1f deg over %d frames)",
                 self.shot, found.focal_px, fov, found.turn_deg, found.frames)
        self.notes.append(f"shot {self.shot}: focal {found.focal_px:.1f} px from the camera's rotation (its optical "
                          f"axis turned {found.turn_deg:.1f} deg over {found.frames} frames)")

    def _set_lines_focal(self, chunk: _Chunk, obs: PersonFrames, fit: BodyFit, start, zoom: np.ndarray) -> BodyFit:
        """Checks the focal the people's bodies just gave the shot against the scene's
        straight lines (:func:`focal_from_lines`: two orthogonal vanishing points of a
        still camera's background, the median of up to 9 of the chunk's frames with the
        middle frame's people left out). The lines' scene must stand as the people do:
        one of its axes within ``estimation.lines_max_up_deg`` of the bodies' mean up
        axis (a backdrop filmed by another camera, a poster or a screen fails this).
        Where they fix the focal, the shot takes it and the chunk is fitted again from
        ``start`` (the estimator's state before it)."""
        import cv2

        ec = self.config.estimation
        frames = chunk.frames[:: max(1, len(chunk.frames) // 9)][:9]
        gray = np.median(np.stack([cv2.cvtColor(f.rgb, cv2.COLOR_RGB2GRAY) for f in frames]), 0).astype(np.uint8)
        boxes = chunk.detections[len(chunk.detections) // 2].xyxy.astype(np.float64)
        grow = 0.05 * (boxes[:, 2:] - boxes[:, :2])
        found = focal_from_lines(gray, self.pp, exclude_xyxy=np.hstack([boxes[:, :2] - grow, boxes[:, 2:] + grow]),
                                 fov_range_deg=tuple(ec.fov_range_deg))
        if found is None or not fit.fit_ok.any():
            log.info("shot %d: the scene's lines fix no focal", self.shot)
            return fit
        _, up = self.estimator.feet_and_up(fit)
        up = up[fit.fit_ok].mean(0)
        off_deg = found.angle_to_deg(up)
        people = self.focal
        log.info("shot %d: the scene's lines give %.1f px (bootstrap sd %.3f in ln f; segments %s), the nearest of "
                 "their axes %.1f deg from the people's up; the bodies gave %.1f px", self.shot, found.focal_px,
                 found.log_std, found.segments.tolist(), off_deg, people)
        if off_deg > ec.lines_max_up_deg:
            return fit
        fov = self._fix_shot_focal(found.focal_px, "lines")
        if self.ground is not None:  # the floor's normal from the lines rather than the bodies
            self.ground.set_down(-found.nearest_axis(up))
        log.info("shot %d focal %.1f px (%.1f deg horizontal FOV) from the scene's lines", self.shot, found.focal_px,
                 fov)
        self.notes.append(f"shot {self.shot}: focal {found.focal_px:.1f} px from the scene's straight lines (two "
                          f"orthogonal vanishing points, {int(found.segments[:2].sum())} segments; their bodies alone "
                          f"gave {people:.1f} px)")
        return self._fit_again(obs, start, zoom)

    def _set_floor_focal(self, obs: PersonFrames, fit: BodyFit, start, zoom: np.ndarray) -> BodyFit:
        """Checks the focal the people's bodies just gave the shot against the floor they
        walk on (:func:`focal_from_floor`: a still camera that looks down or up at them).
        Where the floor fixes the focal, the shot takes it and the chunk is fitted again
        from ``start`` (the estimator's state before it)."""
        ec = self.config.estimation
        ok = fit.fit_ok
        found = focal_from_floor(obs.keypoints2d[ok], fit.pelvis[ok], fit.track_id[ok], fit.frame_index[ok],
                                 self.focal, *self.size, principal_point=self.pp, zoom=zoom[ok],
                                 fov_range_deg=tuple(ec.fov_range_deg), min_conf=ec.min_keypoint_conf)
        if found is None:
            return fit
        people = self.focal
        fov = self._fix_shot_focal(found.focal_px, "floor", found.person_frames)
        log.info("shot %d focal %.1f px (%.1f deg horizontal FOV) from the floor under %d tracks (camera tilted %.1f "
                 "deg; the bodies alone gave %.1f px)", self.shot, found.focal_px, fov, found.tracks, found.tilt_deg,
                 people)
        self.notes.append(f"shot {self.shot}: focal {found.focal_px:.1f} px from the floor people walk on (the camera "
                          f"looks {abs(found.tilt_deg):.0f} deg {'down' if found.tilt_deg > 0 else 'up'}; their bodies "
                          f"alone gave {people:.1f} px)")
        return self._fit_again(obs, start, zoom)

    def _fit_again(self, obs: PersonFrames, start, zoom: np.ndarray) -> BodyFit:
        """Fits the chunk again from ``start`` (the estimator's state before it) at the
        shot's focal: its structure, then the refinement (no focal search)."""
        self.estimator.restore(start)
        structure = self.estimator.fit_structure(obs)
        return self.estimator(obs, self.focal, self.size, structure=structure, zoom=zoom, principal_point=self.pp)

    def _shared_ground(self, obs: PersonFrames, fit: BodyFit, start, zoom: np.ndarray) -> BodyFit:
        """Feeds the chunk's fits to the shared floor. Where it rescales a track of this
        chunk by more than 3 %, the chunk is fitted again from ``start`` (the estimator's
        state before it) with the new sizes; the translation filter's carried state
        follows the scale."""
        ec = self.config.estimation
        feet, up = self.estimator.feet_and_up(fit)
        ankles_seen = (obs.keypoints2d[:, 15:17, 2] >= ec.min_keypoint_conf).all(1)
        used = np.array([self.estimator.track_scale(t) for t in fit.track_id])
        self.ground.add(fit.track_id, feet, up, used, fit.fit_ok & ankles_seen)
        ground = self.ground.estimate()
        if ground is None:
            return fit
        self.ground_estimates[-1] = ground
        changed = {t: s for t, s in ground.scales.items() if abs(np.log(s / self.estimator.track_scale(t))) > 0.03}
        if not changed:
            return fit
        for tid, scale in changed.items():
            log.info("shared floor (%d tracks, camera %.2f m above it): track %d size x%.2f", ground.tracks,
                     ground.camera_height_m, tid, scale)
        return self._refit_rescaled(obs, fit, start, zoom, changed)

    def _known_height(self, obs: PersonFrames, fit: BodyFit, start, zoom: np.ndarray) -> BodyFit:
        """Sizes every track of the chunk to ``estimation.person_height_m`` (clipped to
        ``BodyModel.stature_range``). A track whose fitted standing height is more than
        1 % off gets a new landmark scale and the chunk is fitted again, up to 3 times.
        The shape follows the landmarks' size only in part (its prior pulls back), so
        after the first round the step is divided by the response seen (secant on log
        scale and log height); a track whose height hardly responded (under 0.3) is left
        where it is."""
        height = self.height_m
        last: dict[int, tuple[float, float]] = {}  # track -> (log scale, log height) of the previous round
        for _ in range(3):
            changed = {}
            for tid in (int(t) for t in np.unique(fit.track_id)):
                log_h = math.log(self.estimator.track_stature(tid))
                error = math.log(height) - log_h
                if abs(error) <= 0.01:
                    continue
                log_s = math.log(self.estimator.track_scale(tid))
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
            fit = self._refit_rescaled(obs, fit, start, zoom, changed)
        return fit

    def _refit_rescaled(self, obs: PersonFrames, fit: BodyFit, start, zoom: np.ndarray,
                        scales: dict[int, float]) -> BodyFit:
        """Gives tracks a new size (factor on their landmarks; the translation filter's
        carried state follows) and, where the chunk holds one of them, fits the chunk
        again from ``start`` (the estimator's state before it)."""
        for tid, scale in scales.items():
            self.smoother.rescale(tid, scale / self.estimator.track_scale(tid))
        self.estimator.set_track_scales(scales)
        if not np.isin(list(scales), fit.track_id).any():
            return fit
        return self._fit_again(obs, start, zoom)

    def _filter(self, fit: BodyFit, times: dict[int, float], turns: dict[int, np.ndarray] | None = None) -> BodyFit:
        """Temporal filtering per track: translation (Kalman + RTS) and rotations
        (quaternion smoothing), then the joints are placed again. With ``turns`` (frame
        -> (3, 3) camera axes -> the shot's world axes) both are filtered in the world's
        axes, so that a panning camera's turn is not smoothed as the body's motion."""
        import roma
        import torch

        fc = self.config.filter
        if not (fc.smooth_translation or fc.smooth_pose):
            return fit
        free = self.body.fit_bone_index
        for tid in np.unique(fit.track_id):
            sel = np.nonzero(fit.track_id == tid)[0]
            sel = sel[np.argsort(fit.frame_index[sel])]
            t = np.array([times[int(i)] for i in fit.frame_index[sel]])
            to_world = None if turns is None else np.stack([turns[int(i)] for i in fit.frame_index[sel]])
            if to_world is not None and (to_world == np.eye(3)).all():
                to_world = None  # a still camera: its axes are the world's
            if fc.smooth_translation:
                transl = fit.transl[sel].astype(np.float64)
                if to_world is not None:
                    transl = np.einsum("nij,nj->ni", to_world, transl)
                transl = self.smoother(int(tid), t, transl, valid=fit.fit_ok[sel])
                if to_world is not None:
                    transl = np.einsum("nji,nj->ni", to_world, transl)
                fit.transl[sel] = transl.astype(np.float32)
            if fc.smooth_pose:
                orient = fit.global_orient[sel]
                if to_world is not None:
                    orient = roma.rotvec_to_rotmat(torch.as_tensor(orient, dtype=torch.float64)).numpy()
                    orient = roma.rotmat_to_rotvec(torch.as_tensor(to_world @ orient)).numpy().astype(np.float32)
                rot = np.concatenate([orient[:, None], fit.body_pose[sel][:, free]], axis=1)
                rot = self.pose_smoother(int(tid), t, rot)
                orient = rot[:, 0]
                if to_world is not None:
                    orient = roma.rotvec_to_rotmat(torch.as_tensor(orient, dtype=torch.float64)).numpy()
                    orient = roma.rotmat_to_rotvec(torch.as_tensor(np.swapaxes(to_world, 1, 2) @ orient)).numpy()
                fit.global_orient[sel] = orient
                pose = fit.body_pose[sel]
                pose[:, free] = rot[:, 1:]
                fit.body_pose[sel] = pose
        return self.estimator.place(fit)

    # Runs on the writer thread.
    def write(self, job: _WriteJob) -> None:
        chunk = job.chunk
        start = self.writer.n_frames
        self.writer.append_frames(np.array([f.index for f in chunk.frames]),
                                  np.array([f.pts_seconds for f in chunk.frames]), job.focal_raw,
                                  shot=chunk.shot, zoom=job.zoom)
        if job.turns is not None:
            self.writer.set_rotation(*job.turns)
        first_row = self._writer_shot_rows.setdefault(chunk.shot, start)
        if job.focal is not None:
            # One focal per shot, frames before its first person included.
            self.writer.set_focal(job.focal, first_row)
        if job.fit is not None and len(job.fit):
            self.writer.append_fits(job.fit, job.bbox, job.keypoints2d, job.transl_raw)
        if self.overlay is not None:
            self._write_overlay(chunk, job)
        self.writer.commit(shot_focal_px=list(self.shot_focals),
                           shot_focal_person_frames=list(self.shot_focal_evidence),
                           shot_focal_cue=list(self.shot_focal_cue), notes=list(self.notes))

    def _write_overlay(self, chunk: _Chunk, job: _WriteJob) -> None:
        fit, focal, zoom = job.fit, job.focal, job.zoom
        oc = self.config.output
        import roma
        import torch

        verts_cam = None
        if fit is not None and len(fit):
            dt = self.body.dtype
            verts_cam = np.empty((len(fit), self.body.num_vertices, 3), np.float32)
            with torch.no_grad():
                for shape in np.unique(fit.shape, axis=0):  # one per track
                    sel = np.nonzero((fit.shape == shape).all(1))[0]
                    rest = self.body.rest(torch.as_tensor(shape[None], dtype=dt))
                    verts = self.body.vertices(torch.as_tensor(fit.body_pose[sel], dtype=dt), rest)
                    rot = roma.rotvec_to_rotmat(torch.as_tensor(fit.global_orient[sel], dtype=dt))
                    verts_cam[sel] = (verts @ rot.transpose(-1, -2) + torch.as_tensor(fit.transl[sel])[:, None]).numpy()
        for frame, z in zip(chunk.frames, zoom):
            meshes, labels = [], []
            if verts_cam is not None:
                for i in np.nonzero(fit.frame_index == frame.index)[0]:
                    meshes.append((int(fit.track_id[i]), verts_cam[i]))
                    labels.append(f"id {fit.track_id[i]}  Tz {fit.pelvis[i, 2]:.2f} m")
            here = np.nonzero(fit.frame_index == frame.index)[0] if verts_cam is not None else []
            base = frame.rgb
            if oc.overlay_inset != "none":  # under the meshes and labels
                base = frame.rgb.copy()
                draw_inset(base, [(int(fit.track_id[i]), fit.keypoints3d[i]) for i in here], view=oc.overlay_inset)
            rgb = render_overlay(base, meshes, self.body.faces, (focal or 1.0) * float(z), self.pp, labels=labels)
            if oc.overlay_keypoints:
                for i in here:
                    draw_keypoints(rgb, job.keypoints2d[i], track_colour(int(fit.track_id[i])))
            self.overlay.write(frame, rgb)

    def finish(self, complete: bool, notes: list[str]) -> None:
        for tid, shape in self.track_shapes.items():
            # One shape per track: earlier chunks' points are placed again with the final one,
            # and moved with its size where the shared floor rescaled it after they were fitted.
            rows = self.row_scales.get(tid, [])
            final = rows[-1][1] if rows else 1.0
            factor = np.concatenate([np.full(n, final / s, np.float32) for n, s in rows]) if rows else None
            self.statures[tid] = self.estimator.stature(shape)
            self.writer.set_track_shape(tid, shape, place=self.estimator.placement,
                                        transl_scale=None if factor is None or np.all(factor == 1) else factor,
                                        stature_m=self.statures[tid])
        grounds = [None if g is None else {"down": [round(float(x), 4) for x in g.down],
                                           "camera_height_m": round(g.camera_height_m, 3), "tracks": g.tracks,
                                           "size_scale": {str(t): round(s, 3) for t, s in g.scales.items()}}
                   for g in self.ground_estimates]
        self.writer.set_attrs(notes=notes, shot_focal_px=self.shot_focals, n_shots=len(self.shot_focals),
                              shot_focal_person_frames=self.shot_focal_evidence, shot_focal_cue=self.shot_focal_cue,
                              shared_ground=grounds)
        self.writer.close(complete=complete)
        if self.overlay is not None:
            self.overlay.close()
        self.perceiver.close()


def _observations(chunk: _Chunk, mask_size: int = 0) -> tuple[PersonFrames, np.ndarray]:
    """The chunk's tracked persons as estimator input (person masks on ``mask_size``²
    grids when every detection has one and ``mask_size`` > 0), and their BlazePose-33
    keypoints."""
    fi, tid, box, kp, lm, blaze, grids = [], [], [], [], [], [], []
    with_masks = mask_size > 0 and all(d.masks is not None for d in chunk.detections)
    for frame, dets in zip(chunk.frames, chunk.detections):
        for j in range(len(dets)):
            fi.append(frame.index)
            tid.append(int(dets.track_id[j]))
            box.append(dets.xyxy[j])
            kp.append(blazepose33_to_coco23(dets.keypoints[j]))
            lm.append(blazepose33_to_coco23(dets.landmarks3d[j]))
            blaze.append(dets.keypoints[j])
            if with_masks:
                grids.append(mask_grid(dets.masks[j], dets.xyxy[j], mask_size))
    if not fi:
        z = np.zeros
        return PersonFrames(z(0, np.int64), z(0, np.int64), z((0, 4), np.float32), z((0, 23, 3), np.float32),
                            z((0, 23, 3), np.float32)), z((0, 33, 3), np.float32)
    masks = {}
    if grids:
        masks = {"masks": np.stack([g[0] for g in grids]), "mask_origin": np.stack([g[1] for g in grids]),
                 "mask_cell": np.array([g[2] for g in grids], np.float32), "mask_valid": np.stack([g[3] for g in grids])}
    return (PersonFrames(np.array(fi, np.int64), np.array(tid, np.int64), np.array(box, np.float32),
                         np.array(kp, np.float32), np.array(lm, np.float32), **masks), np.array(blaze, np.float32))


def _start_thread(target, *args) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def wrapper() -> None:
        try:
            target(*args)
        except BaseException as exc:  # re-raised on the calling thread
            errors.append(exc)

    thread = threading.Thread(target=wrapper, daemon=True)
    thread.start()
    return thread, errors


def run(input_path: str, config: Config, *, out_dir: str | None = None, progress: bool = True,
        software_version: str = "0", resume: bool = False) -> RunSummary:
    """Processes one clip end to end.

    Args:
        input_path: Video file or image folder.
        config: Validated configuration.
        out_dir: Output folder (default ``config.output.dir``).
        progress: Show a progress bar on stderr.
        software_version: Stored in the Zarr attributes.
        resume: Continue the unfinished store of this input in ``out_dir`` after its last
            committed chunk (same input and settings); without a store, a normal run.

    Returns:
        The :class:`RunSummary`.

    Raises:
        MeshstreamError: Bad input or output (one-line message). Whatever was computed
            before the error stays in the store (``complete`` false); output folders
            this run created and left empty are removed.
    """
    out = Path(out_dir or config.output.dir)
    created = [p for p in (out, *out.parents) if not p.exists()]
    try:
        return _run(input_path, config, out, progress=progress, software_version=software_version, resume=resume)
    except BaseException:
        for folder in created:  # deepest first; a folder holding anything stays
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def _run(input_path: str, config: Config, out: Path, *, progress: bool, software_version: str,
         resume: bool) -> RunSummary:
    from tqdm import tqdm

    t0 = time.perf_counter()
    dc = config.decode
    source = open_source(input_path, start_s=dc.start_s, end_s=dc.end_s, every=dc.every, max_frames=dc.max_frames,
                         image_fps=dc.image_fps, random_access=dc.random_access)
    info = source.info
    intrinsics = undistort = None
    try:
        if config.estimation.body_model == "smplx":
            from meshstream.models.smplx_body import find_model_file

            find_model_file(config.estimation.model_path, config.estimation.gender)  # fails before any work
        if config.estimation.intrinsics is not None:
            intrinsics = load_intrinsics(config.estimation.intrinsics, info.width, info.height)  # before any work
            if not intrinsics.is_ideal:
                undistort = FrameUndistorter(intrinsics)
        check_output_dir(out)
        stem = Path(input_path.rstrip("/")).stem or "clip"
        stored = read_stored_run(out / f"{stem}.zarr") if resume else None
        if stored is not None:
            check_resumable(stored, info, config, out / f"{stem}.zarr")  # before any work
            if stored.n_frames == 0:
                stored = None  # nothing committed: start again
    except BaseException:
        source.close()
        raise
    skip_through = stored.last_pts if stored else None  # frames already stored
    frames_q: queue.Queue = queue.Queue(maxsize=16)
    write_q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def decode() -> None:
        try:
            for frame in source:
                if skip_through is not None and frame.pts_seconds <= skip_through + 1e-9:
                    continue
                if undistort is not None:
                    frame = undistort(frame)
                while not stop.is_set():
                    try:
                        frames_q.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        finally:
            frames_q.put(_END)

    pipeline: _Pipeline | None = None
    startup = 0.0
    complete = False
    notes: list[str] = []
    n_frames = 0
    writer_thread = writer_errors = None
    decoder, decode_errors = _start_thread(decode)
    total = info.n_frames
    if total and dc.every > 1:
        total = -(-total // dc.every)
    if total and dc.max_frames:
        total = min(total, dc.max_frames)
    # The bar first shows once the models are loaded, so that what loading says (a first
    # use's cache build) gets lines of its own.
    bar = tqdm(total=total, initial=stored.n_frames if stored else 0, unit="frame", disable=not progress,
               dynamic_ncols=True, desc=stem, delay=0.5)
    try:
        chunk = _Chunk([], [])
        while True:
            # A resumed run starts at once: with every frame already stored, it only finishes the store.
            item = frames_q.get() if pipeline is not None or stored is None else None
            if item is _END:
                break
            if pipeline is None:
                t_start = time.perf_counter()
                pipeline = _Pipeline(config, info, out, stem, software_version, intrinsics, stored,
                                     frames_expected=total)
                startup = time.perf_counter() - t_start
                chunk = _Chunk([], [], pipeline.shot)

                def write_loop(p: _Pipeline = pipeline) -> None:
                    while (job := write_q.get()) is not _END:
                        p.write(job)

                writer_thread, writer_errors = _start_thread(write_loop)
            if item is None:
                continue
            frame: Frame = item
            if pipeline.is_new_shot(frame):
                if chunk.frames:
                    _put_checked(write_q, pipeline.estimate(chunk), writer_errors)
                pipeline.start_shot()
                chunk = _Chunk([], [], pipeline.shot)
            chunk.frames.append(frame)
            dets, zoom = pipeline.perceive(frame)
            chunk.detections.append(dets)
            chunk.zoom.append(zoom)
            n_frames += 1
            bar.update(1)
            bar.set_postfix(persons=pipeline.person_frames + sum(len(d) for d in chunk.detections), refresh=False)
            if len(chunk.frames) >= config.estimation.chunk_frames and not pipeline.holds_for_focal(chunk):
                _put_checked(write_q, pipeline.estimate(chunk), writer_errors)
                chunk = _Chunk([], [], pipeline.shot)
        if decode_errors:
            raise decode_errors[0]
        if pipeline is None:
            reason = getattr(source, "stopped_early", None)
            raise InputError(f"{input_path}: no frame could be decoded{f' ({reason})' if reason else ''}; "
                             "the file is empty, truncated before its first frame, or not a video")
        if chunk.frames:
            _put_checked(write_q, pipeline.estimate(chunk), writer_errors)
        complete = True
    finally:
        stop.set()
        bar.close()
        if pipeline is not None and writer_thread is not None:
            while writer_thread.is_alive():
                try:
                    write_q.put(_END, timeout=0.2)
                    break
                except queue.Full:
                    continue
            writer_thread.join()
            truncated = getattr(source, "stopped_early", None)
            if truncated:
                notes.append(f"input truncated or corrupt: {truncated}")
            if complete and pipeline.person_frames == 0:
                seen = n_frames + (stored.n_frames if stored else 0)
                notes.append(f"no person found in {seen} frames; the store holds frames but no tracks")
            notes[:0] = pipeline.notes
            pipeline.finish(complete=complete and not writer_errors, notes=notes)
        decoder.join(timeout=5)
        source.close()
    if writer_errors:
        raise writer_errors[0]
    focal = float(pipeline.shot_focals[0]) if pipeline.shot_focals and pipeline.shot_focals[0] else float("nan")
    return RunSummary(
        frames=n_frames, person_frames=pipeline.person_frames, tracks=len(pipeline.track_ids),
        seconds=time.perf_counter() - t0,
        focal_px=focal, focal_fov_deg=fov_from_focal(focal, info.width) if math.isfinite(focal) else float("nan"),
        focal_person_frames=pipeline.shot_focal_evidence[0] if pipeline.shot_focal_evidence else 0,
        shots=len(pipeline.shot_focals),
        focal_source=pipeline.focal_source, zarr_path=pipeline.zarr_path, overlay_path=pipeline.overlay_path,
        notes=notes, input_truncated=bool(getattr(source, "stopped_early", None)), startup_seconds=startup,
        statures_m=dict(sorted(pipeline.statures.items())),
        focal_cue=(pipeline.shot_focal_cue[0] if pipeline.shot_focal_cue else None) or "people",
        camera_turn_deg=pipeline.max_turn_deg, from_images=info.codec == "images",
    )


def _put_checked(q: queue.Queue, item, errors: list[BaseException] | None) -> None:
    """Puts into a bounded queue, raising the consumer's error instead of blocking on it."""
    while True:
        if errors:
            raise errors[0]
        try:
            q.put(item, timeout=0.2)
            return
        except queue.Full:
            continue
