"""One clip of a batch, run wherever an executor puts it: the job, its outcome, and
:func:`process_clip`, which runs it (and its exports) into a local folder or, for an
output URL, into a staging folder mirrored to the URL (:mod:`meshstream.stream.remote`).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .remote import Mirror, is_url

log = logging.getLogger(__name__)


@dataclass
class ClipJob:
    """One clip of a batch.

    Attributes:
        input: The clip (a file, or a folder of images).
        out_dir: Its output folder, or a URL.
        resume: Continue its unfinished store.
        exports: Animation formats to write after it (``None``: none).
        report: Write its motion report after it (``meshstream report``).
    """

    input: str
    out_dir: str
    resume: bool = False
    exports: list[str] | None = None
    report: bool = False


@dataclass
class ClipOutcome:
    """What became of one clip.

    Attributes:
        input: The clip.
        status: ``"done"``, ``"failed"`` or ``"skipped"`` (already complete).
        summary: The run's :class:`~meshstream.stream.run.RunSummary` (``None`` unless
            done; its ``zarr_path`` and ``overlay_path`` name where the files are, a URL
            for a URL output).
        reason: One line on why it failed or was skipped.
        seconds: Wall time spent on it, seconds.
        restarts: Times its clip actor was restarted while processing it.
        exported: The animation files written.
        export_failures: One line per format (or the report) that failed.
        reported: The report files written.
    """

    input: str
    status: str
    summary: object = None
    reason: str = ""
    seconds: float = 0.0
    restarts: int = 0
    exported: list[str] = field(default_factory=list)
    export_failures: list[str] = field(default_factory=list)
    reported: list[str] = field(default_factory=list)


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and its message's last line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def process_clip(job: ClipJob, config, software_version: str, fitter: Callable | None, body=None,
                 on_frame: Callable[[], None] | None = None, resume: bool = False, executor=None) -> ClipOutcome:
    """Runs one clip of a batch in this process (``executor``: inline by default), then
    its exports. A user error or any other exception becomes a failed outcome with its
    one line, a store already complete a skipped one; Ctrl-C goes through. For an output
    URL the clip runs in a staging folder whose store is mirrored to the URL after each
    committed window, and everything else at the end (a resumed clip first fetches its
    store from there)."""
    from .errors import MeshstreamError, NothingToResume
    from .executors import InlineExecutor
    from .run import run

    t0 = time.perf_counter()
    resume = job.resume or resume
    out, mirror = job.out_dir, None
    store = f"{Path(job.input.rstrip('/')).stem or 'clip'}.zarr"
    if is_url(job.out_dir):
        out = tempfile.mkdtemp(prefix="meshstream-clip-")
        mirror = Mirror(Path(out), job.out_dir)
        if resume:
            mirror.fetch(store)
    try:
        summary = run(job.input, config, out_dir=out, progress=False, software_version=software_version,
                      resume=resume, executor=executor or InlineExecutor(), fitter=fitter, body=body,
                      on_frame=on_frame, on_commit=(lambda: mirror.sync(store)) if mirror else None)
        outcome = ClipOutcome(job.input, "done", summary)
        if job.exports:
            from meshstream.export.files import export_store

            written, outcome.export_failures = export_store(summary.zarr_path, job.exports, out)
            outcome.exported = [str(p) for p in written]
        if job.report:
            outcome.reported, failure = _report(summary.zarr_path, out)
            outcome.export_failures += failure
    except NothingToResume as exc:
        outcome = ClipOutcome(job.input, "skipped", reason=str(exc))
    except MeshstreamError as exc:
        outcome = ClipOutcome(job.input, "failed", reason=str(exc))
    except Exception as exc:  # a bug or a lost fitter fails this clip, not the batch (its store keeps its windows)
        log.info("%s failed", job.input, exc_info=True)  # the traceback with -v
        outcome = ClipOutcome(job.input, "failed", reason=f"internal error: {one_line(exc)}")
    finally:
        if mirror is not None:
            mirror.sync()  # what was committed, the overlay and the exports
            shutil.rmtree(out, ignore_errors=True)
    if mirror is not None:
        outcome = _at_url(outcome, out, mirror.url)
    outcome.seconds = time.perf_counter() - t0
    return outcome


def _report(store: Path, out: str) -> tuple[list[str], list[str]]:
    """A finished clip's motion report: the files written, and the failure's one line
    (none for a clip without people). A failure here keeps the clip done."""
    from meshstream.report.files import write_report
    from meshstream.report.motion import NothingToReport

    from .errors import MeshstreamError

    try:
        return [str(p) for p in write_report(store, out)], []
    except NothingToReport:
        return [], []
    except MeshstreamError as exc:
        return [], [f"report: {exc}"]
    except Exception as exc:  # a bug in the report does not fail a finished clip
        log.info("report of %s failed", store, exc_info=True)
        return [], [f"report: internal error: {one_line(exc)}"]


def _at_url(outcome: ClipOutcome, staging: str, url: str) -> ClipOutcome:
    """The outcome with its files named where they are: at the URL, not in staging."""
    def moved(path) -> str:
        return f"{url}/{Path(path).relative_to(staging).as_posix()}"

    s = outcome.summary
    if s is not None:
        outcome.summary = dataclasses.replace(
            s, zarr_path=moved(s.zarr_path), overlay_path=moved(s.overlay_path) if s.overlay_path else None)
    outcome.exported = [moved(p) for p in outcome.exported]
    outcome.reported = [moved(p) for p in outcome.reported]
    return outcome
