"""``meshstream batch``: many clips, one command, on this machine or a Ray cluster.

Inputs are files, folders (their videos; a folder of images is one clip), glob
patterns, or a text manifest (one path per line, ``#`` comments, relative paths read
from the manifest's folder). Each clip gets its own store (and overlay, exports) in
the output folder; ``OUT/batch.json`` and the printed table summarise the batch. A clip
that fails is reported with its one-line reason while the others complete; the exit
code then says some failed.
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .clip_job import ClipJob, ClipOutcome, process_clip
from .remote import Mirror, is_url
from .sources import IMAGE_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".wmv", ".flv")
EXIT_SOME_FAILED = 4


def expand_inputs(inputs: list[str]) -> list[str]:
    """The clips the user named, in order, each once.

    Raises:
        InputError: A name matches nothing, or two clips would write the same outputs.
    """
    clips: list[str] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_file() and path.suffix.lower() == ".txt":
            lines = [ln.strip() for ln in path.read_text().splitlines()]
            listed = [str((path.parent / ln).expanduser()) if not os.path.isabs(ln) else ln
                      for ln in lines if ln and not ln.startswith("#")]
            missing = [p for p in listed if not os.path.exists(p)]
            if missing:
                raise InputError(f"{item}: {len(missing)} listed path(s) do not exist, first {missing[0]}; "
                                 "fix the manifest")
            clips += listed
        elif path.is_dir():
            videos = sorted(str(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            images = any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())
            if not videos and not images:
                raise InputError(f"{item}: no video or image files in this folder; name the clips, a glob or a "
                                 "manifest")
            clips += videos or [str(path)]
        elif path.exists():
            clips.append(str(path))
        else:
            matched = sorted(glob.glob(os.path.expanduser(item)))
            if not matched:
                raise InputError(f"{item}: no such file, folder or matching pattern")
            clips += matched
    clips = list(dict.fromkeys(clips))
    stems: dict[str, str] = {}
    for clip in clips:
        stem = Path(clip.rstrip("/")).stem
        if stem in stems:
            raise InputError(f"{stems[stem]} and {clip} would both write {stem}.zarr; rename one or run them "
                             "into different -o folders")
        stems[stem] = clip
    return clips


@dataclass
class BatchResult:
    """A finished batch: each clip's outcome and the wall time, seconds."""

    outcomes: list[ClipOutcome]
    seconds: float

    @property
    def failed(self) -> list[ClipOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def rows(self) -> list[dict]:
        """One row per clip: what the table and ``batch.json`` show."""
        rows = []
        for o in self.outcomes:
            s = o.summary
            row = {"clip": o.input, "status": o.status, "seconds": round(o.seconds, 2), "restarts": o.restarts}
            if o.exported or o.export_failures or o.reported:
                row.update(exported=o.exported, export_failures=o.export_failures, reported=o.reported)
            if s is not None:
                row.update(frames=s.frames, person_frames=s.person_frames, tracks=s.tracks,
                           focal_px=None if math.isnan(s.focal_px) else round(s.focal_px, 1),
                           focal_cue=s.focal_cue if s.focal_source == "estimated" else s.focal_source,
                           zarr=str(s.zarr_path), notes=s.notes)
            if o.reason:
                row["reason"] = o.reason
            rows.append(row)
        return rows

    def table(self) -> str:
        """The summary table, one line per clip."""
        head = f"{'clip':<28} {'frames':>7} {'persons':>8} {'tracks':>6} {'focal px':>9}  {'cue':<16}{'status':<8}{'s':>7}"
        lines = [head]
        for r in self.rows():
            name = Path(r["clip"].rstrip("/")).name
            name = name if len(name) <= 28 else name[:25] + "..."
            focal = "" if r.get("focal_px") is None else f"{r['focal_px']:.1f}"
            lines.append(f"{name:<28} {r.get('frames', ''):>7} {r.get('person_frames', ''):>8} "
                         f"{r.get('tracks', ''):>6} {focal:>9}  {r.get('focal_cue', ''):<16}{r['status']:<8}"
                         f"{r['seconds']:>7.1f}")
        return "\n".join(lines)


def run_batch(clips: list[str], config, out_dir: Path | str, *, executor: str = "threaded", address: str | None = None,
              fitters: int = 1, gpus_per_fitter: float = 0.0, clips_in_flight: int = 1, gpus_per_clip: float = 0.0,
              device: str = "cpu",
              resume: bool = False, software_version: str = "0", progress: bool = True,
              ray_options: dict | None = None, exports: list[str] | None = None,
              report: bool = False) -> BatchResult:
    """Processes ``clips`` into ``out_dir``; writes ``out_dir/batch.json``.

    Args:
        clips: From :func:`expand_inputs`.
        config: The validated configuration, the same for every clip.
        out_dir: Output folder (every node of a cluster must reach it), or a URL
            fsspec writes (``s3://bucket/run``, ``file:///shared/run``): each clip is then
            written on its node and mirrored there window by window.
        executor: ``"threaded"`` (one clip after another in this process, decoding,
            fitting and writing overlapped), ``"inline"`` (the same on one thread) or
            ``"ray"``.
        address: Ray: a cluster's address, or ``None`` to start Ray here.
        fitters: Ray: fitter actors in the pool.
        gpus_per_fitter: Ray: GPUs per fitter actor.
        clips_in_flight: Ray: clips processed at once (one clip actor each).
        gpus_per_clip: Ray: GPUs per clip actor (perception on a GPU: ``--detector yolo``).
        device: Where fitters run.
        resume: Skip finished clips, continue unfinished ones.
        software_version: Stored in each store.
        progress: Show the batch's progress on stderr.
        ray_options: Extra :class:`~meshstream.stream.ray_executor.RayExecutor` keywords.
        exports: Animation formats each clip writes after it (on the node that ran it).
        report: Each clip also writes its motion report there.
    """
    from .pipeline import fitter_spec
    from .run import check_output_dir

    mirror = None
    if is_url(str(out_dir)):
        mirror = Mirror(Path(tempfile.mkdtemp(prefix="meshstream-batch-")), str(out_dir))
        mirror.check_writable()
    else:
        out_dir = Path(out_dir)
        check_output_dir(out_dir)
    spec = fitter_spec(config, device)  # checks the device before any work
    jobs = [ClipJob(c, str(out_dir), resume, exports, report) for c in clips]
    view = _Progress(len(jobs), progress)
    t0 = time.perf_counter()
    try:
        if executor == "ray":
            from .ray_executor import RayExecutor

            ray_exec = RayExecutor(address=address, fitters=fitters, gpus_per_fitter=gpus_per_fitter,
                                   clips_in_flight=clips_in_flight, gpus_per_clip=gpus_per_clip,
                                   **(ray_options or {}))
            outcomes = ray_exec.run_batch(jobs, config, spec, software_version, on_progress=view.update)
        else:
            outcomes = _in_process(jobs, config, spec, software_version, view, threaded=executor == "threaded")
    finally:
        view.close()
    result = BatchResult(outcomes, time.perf_counter() - t0)
    report = json.dumps({"seconds": round(result.seconds, 2), "executor": executor, "clips": result.rows()}, indent=1)
    (mirror.staging if mirror else out_dir).joinpath("batch.json").write_text(report)
    if mirror is not None:
        mirror.sync("batch.json")
        shutil.rmtree(mirror.staging, ignore_errors=True)
    return result


def _in_process(jobs: list[ClipJob], config, spec, software_version: str, view: "_Progress",
                threaded: bool) -> list[ClipOutcome]:
    """One clip after another in this process, the models loaded once."""
    from .executors import InlineExecutor, ThreadedExecutor
    from .pipeline import build_body, build_fitter

    body = build_body(config.estimation)
    fitter = build_fitter(spec, body=body).fit
    outcomes = []
    for job in jobs:
        outcome = process_clip(job, config, software_version, fitter, body=body, on_frame=lambda: view.update(1),
                               executor=ThreadedExecutor() if threaded else InlineExecutor())
        outcomes.append(outcome)
        view.update(0, outcome)
    return outcomes


class _Progress:
    """The batch's progress: one bar of frames with clips done of total, and a line per
    finished clip."""

    def __init__(self, n_clips: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.n_clips = n_clips
        self.done = 0
        self.enabled = enabled
        self.bar = tqdm(total=None, unit="frame", disable=not enabled, dynamic_ncols=True, desc=f"clips 0/{n_clips}",
                        delay=0.5)

    def update(self, frames: int, outcome: ClipOutcome | None = None) -> None:
        if frames:
            self.bar.update(frames)
        if outcome is not None:
            self.done += 1
            self.bar.set_description_str(f"clips {self.done}/{self.n_clips}")
            if self.enabled:
                what = outcome.reason if outcome.status != "done" else f"{outcome.summary.frames} frames"
                self.bar.write(f"meshstream: {outcome.status:<7} {outcome.input} ({what})", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
