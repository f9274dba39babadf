"""run(): one clip end to end — the wiring of source, clip stages, fitter and executor.

The stages are built by :func:`~meshstream.stream.pipeline.build_clip`; an executor
(:mod:`meshstream.stream.executors`; threaded by default: decoding, fitting and
encoding overlap, and memory stays bounded by two queues and one window, up to twice
``chunk_frames`` while a shot's first window with people waits for enough person-frames
to set the focal) drives them. A batch of clips is :mod:`meshstream.stream.batch`.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from meshstream.export.zarr_store import read_stored_run
from meshstream.models.camera import fov_from_focal

from .config import Config
from .errors import InputError, OutputError
from .executors import ThreadedExecutor
from .intrinsics import FrameUndistorter, load_intrinsics
from .messages import Frame
from .pipeline import build_body, build_clip, build_estimator
from .resume import check_resumable
from .sources import open_source

log = logging.getLogger(__name__)


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


def check_output_dir(path: Path) -> None:
    """Creates ``path`` and checks it is writable, before any work is done."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".meshstream-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"output folder {path} is not writable ({exc.strerror}); choose another with -o") from exc


def run(input_path: str, config: Config, *, out_dir: str | None = None, progress: bool = True,
        software_version: str = "0", resume: bool = False, executor=None, fitter=None, body=None,
        on_frame=None, on_commit=None) -> RunSummary:
    """Processes one clip end to end.

    Args:
        input_path: Video file or image folder.
        config: Validated configuration.
        out_dir: Output folder (default ``config.output.dir``).
        progress: Show a progress bar on stderr.
        software_version: Stored in the Zarr attributes.
        resume: Continue the unfinished store of this input in ``out_dir`` after its last
            committed chunk (same input and settings); without a store, a normal run.
        executor: What drives the clip's steps (default: a
            :class:`~meshstream.stream.executors.ThreadedExecutor`).
        fitter: The body fitter windows are fitted with, ``(window, camera, priors) ->
            FitResult`` (default: an estimator in this process; a batch on Ray passes
            its pool's).
        body: ``(body model, base shape)`` already loaded (``pipeline.build_body``; a
            batch loads it once), or ``None``.
        on_frame: Called after each frame is processed (a batch's progress).
        on_commit: Called after each window is committed to the store (a batch mirrors
            its outputs to a URL then).

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
        return _run(input_path, config, out, progress=progress, software_version=software_version, resume=resume,
                    executor=executor or ThreadedExecutor(), fitter=fitter, body=body, on_frame=on_frame,
                    on_commit=on_commit)
    except BaseException:
        for folder in created:  # deepest first; a folder holding anything stays
            try:
                folder.rmdir()
            except OSError:
                break
        raise




def _frames(source, skip_through: float | None, undistort) -> Iterator[Frame]:
    """The source's frames after ``skip_through`` (seconds; a resumed run's last stored
    frame), resampled to the ideal pinhole where ``undistort`` is given."""
    for frame in source:
        if skip_through is not None and frame.pts_seconds <= skip_through + 1e-9:
            continue
        yield undistort(frame) if undistort is not None else frame


def _run(input_path: str, config: Config, out: Path, *, progress: bool, software_version: str,
         resume: bool, executor, fitter, body, on_frame, on_commit) -> RunSummary:
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
    total = info.n_frames
    if total and dc.every > 1:
        total = -(-total // dc.every)
    if total and dc.max_frames:
        total = min(total, dc.max_frames)
    clip = None
    startup = 0.0
    complete = False
    notes: list[str] = []
    n_frames = 0
    # The bar first shows once the models are loaded, so that what loading says (a first
    # use's cache build) gets lines of its own.
    bar = tqdm(total=total, initial=stored.n_frames if stored else 0, unit="frame", disable=not progress,
               dynamic_ncols=True, desc=stem, delay=0.5)
    try:
        frames = _frames(source, stored.last_pts if stored else None, undistort)
        first = next(frames, None)
        if first is None and stored is None:
            reason = getattr(source, "stopped_early", None)
            raise InputError(f"{input_path}: no frame could be decoded{f' ({reason})' if reason else ''}; "
                             "the file is empty, truncated before its first frame, or not a video")
        t_start = time.perf_counter()
        body = body or build_body(config.estimation)
        built = build_clip(config, info, out, stem, software_version, intrinsics=intrinsics, stored=stored,
                           frames_expected=total, body=body)
        built.setup(fitter or build_estimator(config.estimation, *body).fit, on_commit)
        clip = built  # set up: from here on, the store is finished whatever happens
        startup = time.perf_counter() - t_start

        def tick() -> None:
            bar.update(1)
            bar.set_postfix(persons=clip.persons_seen, refresh=False)
            if on_frame is not None:
                on_frame()

        if first is not None:  # a resumed run with every frame already stored only finishes the store
            n_frames = executor.run(itertools.chain([first], frames), clip, on_frame=tick)
        complete = True
    finally:
        bar.close()
        if clip is not None:
            truncated = getattr(source, "stopped_early", None)
            if truncated:
                notes.append(f"input truncated or corrupt: {truncated}")
            if complete and clip.totals.person_frames == 0:
                seen = n_frames + (stored.n_frames if stored else 0)
                notes.append(f"no person found in {seen} frames; the store holds frames but no tracks")
            notes[:0] = clip.all_notes()
            totals = clip.finish(complete=complete, notes=notes)
        source.close()
    focal = float(totals.shot_focals[0]) if totals.shot_focals and totals.shot_focals[0] else float("nan")
    return RunSummary(
        frames=n_frames, person_frames=totals.person_frames, tracks=len(totals.track_ids),
        seconds=time.perf_counter() - t0,
        focal_px=focal, focal_fov_deg=fov_from_focal(focal, info.width) if math.isfinite(focal) else float("nan"),
        focal_person_frames=totals.shot_focal_evidence[0] if totals.shot_focal_evidence else 0,
        shots=len(totals.shot_focals), focal_source=clip.focal_source, zarr_path=clip.zarr_path,
        overlay_path=clip.overlay_path, notes=notes, input_truncated=bool(getattr(source, "stopped_early", None)),
        startup_seconds=startup, statures_m=dict(sorted(totals.statures_m.items())),
        focal_cue=(totals.shot_focal_cue[0] if totals.shot_focal_cue else None) or "people",
        camera_turn_deg=totals.camera_turn_deg, from_images=info.codec == "images",
    )
