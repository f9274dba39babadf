"""One clip's stages, wired: frames in, windows fitted, outputs to the sinks.

:class:`Clip` holds the clip's state (perception and tracking, the current window,
the shot's camera, the tracks' priors, filters, sinks) and is driven by an executor
(:mod:`meshstream.stream.executors`, :mod:`meshstream.stream.ray_executor`), which
decides where each step runs:

- :meth:`Clip.push` perceives a frame and, when a window closes, fits it with the
  ``fitter`` the executor gave (a local estimator, or a pool of Ray actors) and returns
  it filtered, as :class:`~meshstream.stream.messages.WindowOutput`;
- :meth:`Clip.write` hands an output to the sinks (the overlay's meshes included);
- :meth:`Clip.finish` settles the tracks' final shapes and closes the sinks.

``push`` must see the clip's frames in order, one at a time; ``write`` may run on
another thread, in the order ``push`` returned the outputs: it reads only the output
(which carries a copy of the records to commit with it), never the clip's live state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .clip_stages import CameraTurns, Chunk, FramePerceiver, TrackFilter, Windower
from .jumps import JumpCheck
from .messages import Detections, Frame, ShotFocalFixed, WindowOutput
from .shot_solver import Fitter, ShotSolver
from .sinks import Finalizer, Mesher, OverlaySink, ZarrSink

log = logging.getLogger(__name__)


@dataclass
class Perceived:
    """A frame with its tracked persons, on its way to a window.

    Attributes:
        frame: The frame.
        detections: Its tracked persons.
        zoom: Its zoom since the shot began.
        new_shot: A shot starts with it.
        zooming: The shot is seen to zoom, as of this frame.
        zoom_base: The shot's zoom where this run took it up, as of this frame.
    """

    frame: Frame
    detections: Detections
    zoom: float
    new_shot: bool
    zooming: bool = False
    zoom_base: float = 1.0


@dataclass
class ClipTotals:
    """What a clip produced, for its summary.

    Attributes:
        person_frames: Person-frames fitted (a resumed run's stored ones included).
        track_ids: Distinct tracks.
        shot_focals: Each shot's focal at zoom 1 (``None``: never known), pixels.
        shot_focal_evidence: Person-frames each shot's focal was estimated from.
        shot_focal_cue: What set each shot's focal.
        statures_m: Each track's fitted standing height, metres (set by :meth:`Clip.finish`).
        camera_turn_deg: The largest turn of the camera from its shot's first frame.
    """

    person_frames: int = 0
    track_ids: set[int] = field(default_factory=set)
    shot_focals: list = field(default_factory=list)
    shot_focal_evidence: list = field(default_factory=list)
    shot_focal_cue: list = field(default_factory=list)
    statures_m: dict[int, float] = field(default_factory=dict)
    camera_turn_deg: float = 0.0


class Clip:
    """The stages of one clip (built by :func:`meshstream.stream.pipeline.build_clip`).

    Args:
        perceive: Persons per frame, tracked; shot cuts; zoom.
        windower: Frames into windows.
        solver: The shots' focals and the tracks' priors and sizes.
        turns: The camera's rotation into its shot's axes, or ``None`` (no zoom tracking).
        track_filter: Temporal filtering.
        store: The Zarr sink.
        overlay: The overlay sink, or ``None``.
        mesher: The overlay's meshes.
        finalizer: The tracks' final shapes.
        notes: Notes for the user known before the first frame.
        person_frames: A resumed run's stored person-frames.
        track_ids: A resumed run's stored tracks.
        world_axes: Filter in the shot's world axes where the camera turns.
        focal_source: ``"user"``, ``"metadata"`` or ``"estimated"`` (for the summary).
        jumps: Compares consecutive windows of a shot (focal, depth), or ``None``.
        jump_records: A resumed run's stored jumps.
    """

    def __init__(self, *, perceive: FramePerceiver, windower: Windower, solver: ShotSolver,
                 turns: CameraTurns | None, track_filter: TrackFilter, store: ZarrSink, overlay: OverlaySink | None,
                 mesher: Mesher, finalizer: Finalizer, notes: list[str], person_frames: int = 0,
                 track_ids: set[int] | None = None, world_axes: bool = True, focal_source: str = "estimated",
                 jumps: JumpCheck | None = None, jump_records: list[dict] | None = None) -> None:
        self.perceive = perceive
        self.windower = windower
        self.solver = solver
        self.turns = turns
        self.track_filter = track_filter
        self.store = store
        self.overlay = overlay
        self.mesher = mesher
        self.finalizer = finalizer
        self.notes = notes
        self.world_axes = world_axes
        self.focal_source = focal_source
        self.jumps = jumps
        self.jump_records: list[dict] = list(jump_records or [])  # the store's ``jumps``
        self._jumps_noted: set[tuple] = set()
        self.totals = ClipTotals(person_frames, set(track_ids or ()))
        self.fitter: Fitter | None = None
        self.on_commit: Callable[[], None] | None = None
        self.chunk = Chunk(solver.shot)

    def setup(self, fitter: Fitter, on_commit: Callable[[], None] | None = None) -> None:
        """Opens the sinks; windows will be fitted with ``fitter`` (``on_commit``: called
        after each window is committed to the store, e.g. to mirror it)."""
        self.fitter = fitter
        self.on_commit = on_commit
        self.store.open()
        if self.overlay is not None:
            self.overlay.open()

    @property
    def persons_seen(self) -> int:
        """Person-frames fitted or waiting in the current window."""
        return self.totals.person_frames + self.chunk.person_frames

    def push(self, frame: Frame) -> list[WindowOutput]:
        """Perceives a frame; returns the windows it closed, fitted and filtered. At a
        cut the old shot's window is closed before perception starts the new shot (its
        camera turns are read from the zoom tracker, which the new shot resets)."""
        done = []
        if self.perceive.is_new_shot(frame):
            if self.chunk.frames:
                done.append(self._close())
            self._start_shot()
            self.perceive.start_shot(self.solver.user_focal)
        return done + self.add(self._perceived(frame, new_shot=False))

    def perceive_frame(self, frame: Frame) -> Perceived:
        """A frame's tracked persons: the per-frame half of :meth:`push`, for an executor
        that runs it on a thread of its own, in frame order (a live run), with
        :meth:`add` on another. Not for a clip that tracks its camera's turns (they tie
        the halves together at a cut: use :meth:`push`)."""
        if self.turns is not None:
            raise RuntimeError("Clip.perceive_frame: this clip tracks camera turns; use Clip.push")
        new_shot = self.perceive.is_new_shot(frame)
        if new_shot:
            self.perceive.start_shot(self.solver.user_focal)
        return self._perceived(frame, new_shot)

    def _perceived(self, frame: Frame, new_shot: bool) -> Perceived:
        dets, zoom = self.perceive(frame)
        return Perceived(frame, dets, zoom, new_shot, self.perceive.zooming, self.perceive.zoom_base)

    def add(self, seen: Perceived) -> list[WindowOutput]:
        """Adds a perceived frame to its window; returns the windows it closed, fitted
        and filtered (the per-window half of :meth:`push`, in frame order)."""
        done = []
        if seen.new_shot:
            if self.chunk.frames:
                done.append(self._close())
            self._start_shot()
        self.chunk.frames.append(seen.frame)
        self.chunk.detections.append(seen.detections)
        self.chunk.zoom.append(seen.zoom)
        self.chunk.zooming, self.chunk.zoom_base = seen.zooming, seen.zoom_base
        if self.windower.full(self.chunk, self.solver.focal is not None):
            done.append(self._close())
        return done

    def flush(self) -> list[WindowOutput]:
        """The last, partial window, fitted (at the end of the clip)."""
        return [self._close()] if self.chunk.frames else []

    def _start_shot(self) -> None:
        self.solver.start_shot()
        if self.turns is not None:
            self.turns.start_shot()
        if self.solver.shot > 0:
            log.info("shot %d starts (cut detected)", self.solver.shot)
            self.track_filter.start_shot()
        self.chunk = Chunk(self.solver.shot)

    def _close(self) -> WindowOutput:
        """Fits the current window and starts the next."""
        chunk, self.chunk = self.chunk, Chunk(self.solver.shot)
        zooming = chunk.zooming
        window = self.windower.window(chunk, zooming)
        solved = self.solver.solve(window, chunk.frames, chunk.detections[len(chunk.detections) // 2].xyxy,
                                   self.fitter, zooming)
        self._check_jumps(window, solved, zooming)
        turns = None
        if self.turns is not None:
            turns = self.turns(chunk.shot, window.frame_index, solved.focal_px, chunk.zoom_base)
        out = WindowOutput(chunk.shot, chunk.frames, solved.focal_raw, solved.focal_px, window.zoom, turns=turns,
                           commit={**self._records(), "notes": list(self.notes)})
        if solved.result is None:
            return out
        for tid, factor in solved.rescaled:
            self.track_filter.rescale(tid, factor)
        fit = solved.result.fit
        transl_raw = fit.transl.copy()
        world = turns is not None and self.world_axes
        fit = self.track_filter(fit, dict(zip(window.frame_index.tolist(), window.pts_seconds.tolist())),
                                dict(zip(turns[0].tolist(), turns[1])) if world else None)
        self.totals.person_frames += len(fit)
        self.totals.track_ids.update(int(t) for t in np.unique(fit.track_id))
        out.fit, out.bbox, out.keypoints_blaze, out.transl_raw = fit, window.obs.bbox_xyxy, window.keypoints_blaze, \
            transl_raw
        out.lifted = window.obs.lifted
        return out

    def _check_jumps(self, window, solved, zooming: bool) -> None:
        """Keeps the window's jumps against the previous one (a note for the first of
        each kind per shot and track; every one in the store's records)."""
        if self.jumps is None or not len(window.frame_index):
            return
        fit = None if solved.result is None else solved.result.fit
        for jump in self.jumps(window.shot, int(window.frame_index[0]), solved.window_focal_px, len(window.obs),
                               zooming, fit):
            self.jump_records.append(jump.record())
            key = (jump.kind, jump.shot, jump.track_id)
            if key not in self._jumps_noted:
                self._jumps_noted.add(key)
                log.info("%s", jump.note())  # printed with the notes at the end (stderr stays free mid-run)
                self.notes.append(jump.note())

    def all_notes(self) -> list[str]:
        """The notes so far, in the order they were made."""
        return list(self.notes)

    def write(self, out: WindowOutput) -> None:
        """Hands a window's output to the sinks and commits the store."""
        self.store.write(out)
        if out.focal_px is not None:
            self.store.amend(ShotFocalFixed(out.shot, out.focal_px))
        if self.overlay is not None:
            self.overlay.write(out, self.mesher(out.fit))
        self.store.commit(**out.commit)
        if self.on_commit is not None:
            self.on_commit()

    def _records(self) -> dict:
        s = self.solver
        return {"shot_focal_px": list(s.shot_focals), "shot_focal_person_frames": list(s.shot_focal_evidence),
                "shot_focal_cue": list(s.shot_focal_cue),
                "jumps": list(self.jump_records)}  # copies: the writer may read them later

    def finish(self, complete: bool, notes: list[str]) -> ClipTotals:
        """Settles the tracks' final shapes, closes the sinks and the perceiver."""
        s = self.solver
        self.totals.statures_m = self.finalizer(self.store, s.shapes, s.row_scales)
        grounds = [None if g is None else {"down": [round(float(x), 4) for x in g.down], "down_cue": g.down_cue,
                                           "camera_height_m": round(g.camera_height_m, 3), "tracks": g.tracks,
                                           "size_scale": {str(t): round(v, 3) for t, v in g.scales.items()}}
                   for g in s.ground_estimates]
        self.store.close(complete, notes=notes, n_shots=len(s.shot_focals), shared_ground=grounds, **self._records())
        if self.overlay is not None:
            self.overlay.close()
        self.perceive.close()
        t = self.totals
        t.shot_focals, t.shot_focal_evidence, t.shot_focal_cue = s.shot_focals, s.shot_focal_evidence, s.shot_focal_cue
        t.camera_turn_deg = self.turns.max_turn_deg if self.turns is not None else 0.0
        return t

    @property
    def overlay_path(self) -> Path | None:
        return None if self.overlay is None else self.overlay.path

    @property
    def zarr_path(self) -> Path:
        return self.store.path
