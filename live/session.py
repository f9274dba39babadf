"""The live executor: a source read on its own thread (newest frame only), perception
and fitting on two threads (frame N+1 is perceived while frame N is fitted), the
preview drawn on a third, and the store appended a second at a time on a fourth.

It hosts the same clip stages as an offline run (:class:`~meshstream.stream.clip.Clip`,
built by :func:`~meshstream.stream.pipeline.build_live`): the clip's perception half
(:meth:`Clip.perceive_frame`) and its window half (:meth:`Clip.add`) run on their own
threads, in frame order; :meth:`Clip.write` runs on the store's thread. Frames are
dropped only where they arrive: a frame the perception thread has not taken is
replaced by the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from meshstream.stream.messages import WindowOutput

from .preview import Preview, Shown
from .stats import LiveStats

log = logging.getLogger(__name__)

_END = object()


@dataclass
class LiveSummary:
    """What a live run did (also the store's ``live`` attribute).

    Attributes:
        figures: :meth:`LiveStats.summary`.
        stopped_by: ``"stop"`` (the page or a signal), ``"duration"``, ``"source ended"`` or ``"error"``.
        notes: The clip's notes for the user.
        store: The Zarr store (set by ``run_live``).
        overlay: The preview's video, or ``None``.
    """

    figures: dict
    stopped_by: str
    notes: list[str] = field(default_factory=list)
    store: Path | None = None
    overlay: Path | None = None


class StoreRecorder:
    """Appends the fitted windows to the store every ``every_s`` seconds, as one write,
    on its own thread (a one-frame append costs about as much as a second's).

    Args:
        clip: The clip (its :meth:`~Clip.write`).
        every_s: Seconds between appends.
        stats: The run's counters.
    """

    def __init__(self, *, clip, every_s: float, stats: LiveStats) -> None:
        self.clip = clip
        self.every_s = every_s
        self.stats = stats
        self._pending: list[WindowOutput] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-store", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def add(self, out: WindowOutput) -> None:
        """Keeps an output for the next append, while recording."""
        if self.stats.recording:
            with self._lock:
                self._pending.append(out)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every_s):
                self._write()
        except BaseException as exc:  # reported by the run
            self.error = exc
            log.exception("the store stopped")

    def _write(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        by_shot: list[list[WindowOutput]] = []
        for out in pending:
            if by_shot and by_shot[-1][-1].shot == out.shot:
                by_shot[-1].append(out)
            else:
                by_shot.append([out])
        for outs in by_shot:
            merged = WindowOutput.concatenate(outs)
            self.clip.write(merged)
            self.stats.update(recorded=self.stats.recorded + len(merged.frames))

    def close(self) -> None:
        """Stops the thread and appends what is left."""
        self._stop.set()
        self._thread.join()
        if self.error is None:
            self._write()


class LiveRun:
    """Runs a live source through a clip until stopped.

    Args:
        capture: The :class:`~meshstream.live.capture.LiveCapture` (opened, not started).
        clip: The clip's stages, set up with their fitter.
        preview: The preview drawer.
        recorder: The store's appender.
        stats: The run's counters.
        duration_s: Stop after this many seconds (``None``: until stopped).
        undistort: Resamples a calibrated camera's frames to its ideal pinhole, or ``None``.
        overlap: Perceive the next frame while this one is fitted; else perception waits
            until the fitter is idle and then takes the newest frame.
    """

    def __init__(self, *, capture, clip, preview: Preview, recorder: StoreRecorder, stats: LiveStats,
                 duration_s: float | None = None, undistort=None, overlap: bool = True) -> None:
        self.overlap = overlap
        self._counted_from = (0, 0)  # the source's counts when the run started
        self._fit_idle = threading.Event()
        self._fit_idle.set()
        self.capture = capture
        self.clip = clip
        self.preview = preview
        self.recorder = recorder
        self.stats = stats
        self.duration_s = duration_s
        self.undistort = undistort
        self._stop = threading.Event()
        self._handoff = self._tail = None  # the newest perceived frame (and the end, behind it)
        self._handoff_cond = threading.Condition()
        self._errors: list[BaseException] = []
        self._perceiver = threading.Thread(target=self._guard(self._perceive_loop), name="live-perceive", daemon=True)
        self._fitter = threading.Thread(target=self._guard(self._fit_loop), name="live-fit", daemon=True)
        self.stopped_by = "stop"

    def request_stop(self) -> None:
        """Asks the run to stop (the page's Stop button, a signal)."""
        self._stop.set()

    def set_recording(self, on: bool) -> None:
        """Starts or pauses writing the store (frames processed meanwhile are not stored)."""
        self.stats.update(recording=bool(on))

    def start(self) -> None:
        """Starts the threads (and the source, unless it already reads: a camera or a
        stream is read from its opening on, so that what came while the models loaded is
        not processed late; those frames are not counted)."""
        self._counted_from = (self.capture.captured - self.capture.waiting, self.capture.dropped)
        self.stats.started_s = time.monotonic()
        self.preview.start()
        self.recorder.start()
        self.capture.start()
        self._perceiver.start()
        self._fitter.start()

    def wait(self) -> None:
        """Returns when the run was asked to stop, its duration passed, the source ended
        or a thread failed."""
        while not self._stop.wait(0.1):
            if self._errors or self.preview.error or self.recorder.error:
                self.stopped_by = "error"
                return
            if self.duration_s is not None and time.monotonic() - self.stats.started_s >= self.duration_s:
                self.stopped_by = "duration"
                return
            if not self._fitter.is_alive():
                self.stopped_by = "source ended"
                return

    def finish(self) -> LiveSummary:
        """Stops the threads, fits what is pending, appends it and completes the store
        (``complete`` stays false only after an error, which is raised here)."""
        self._stop.set()
        self._perceiver.join()
        self._fitter.join()
        self.recorder.close()
        self.preview.close()
        self.capture.close()
        errors = self._errors + [e for e in (self.preview.error, self.recorder.error) if e is not None]
        self._count_source()
        figures = {**self.stats.summary(), "stopped_by": self.stopped_by if not errors else "error"}
        notes = self.clip.all_notes()
        if self.capture.error:
            notes.append(f"the source stopped: {self.capture.error}")
        self.clip.store.writer.set_attrs(live=figures)
        self.clip.finish(complete=not errors, notes=notes)
        if errors:
            raise errors[0]
        return LiveSummary(figures, figures["stopped_by"], notes)

    def _count_source(self) -> None:
        """The source's frames and drops since the run started, into the numbers."""
        before = self._counted_from
        self.stats.update(captured=self.capture.captured - before[0], dropped_capture=self.capture.dropped - before[1])

    def _guard(self, loop):
        def run() -> None:
            try:
                loop()
            except BaseException as exc:  # re-raised by finish()
                self._errors.append(exc)
                log.exception("%s stopped", threading.current_thread().name)
                self._stop.set()
        return run

    def _perceive_loop(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.overlap and not self._fit_idle.wait(0.2):
                    continue
                got = self.capture.get(0.2)
                if got is None:
                    if self.capture.ended:
                        break
                    continue
                self._count_source()
                frame = self.undistort(got.frame) if self.undistort is not None else got.frame
                t0 = time.perf_counter()
                seen = self.clip.perceive_frame(frame)
                self.stats.timed("perceive", time.perf_counter() - t0)
                self._hand_over((seen, got.captured_s))
        finally:
            self._hand_over(_END)

    def _hand_over(self, item) -> None:
        """Gives the fitter the newest perceived frame. From a live source, one it has not
        taken is dropped (a live run's frames wait nowhere); from a file read at the
        reader's pace, this waits for the fitter. The end goes behind the frame waiting."""
        with self._handoff_cond:
            while not self.capture.drop and self._handoff is not None and item is not _END:
                if self._stop.is_set() or not self._fitter.is_alive():
                    return
                self._handoff_cond.wait(0.1)
            if item is _END and self._handoff is not None:
                self._tail = _END
            else:
                if item is not _END:
                    self._fit_idle.clear()
                if self._handoff is not None:
                    self.stats.update(dropped_fit=self.stats.dropped_fit + 1)
                self._handoff = item
            self._handoff_cond.notify_all()

    def _take(self):
        with self._handoff_cond:
            while self._handoff is None:
                self._handoff_cond.wait(0.1)
            item, self._handoff = self._handoff, self._tail
            self._tail = None
            self._handoff_cond.notify_all()
            return item

    def _fit_loop(self) -> None:
        captured: dict[int, float] = {}  # frame index -> when decoded, for frames in the open window
        while (item := self._take()) is not _END:
            seen, captured_s = item
            captured[seen.frame.index] = captured_s
            t0 = time.perf_counter()
            outs = self.clip.add(seen)
            if len(outs) == 1 and len(outs[0].frames) == 1:  # a one-frame window (not the focal's first)
                self.stats.timed("fit", time.perf_counter() - t0)
            for out in outs:
                self._done(out, captured)
            if not outs:  # in the focal's first window: shown with its keypoints meanwhile
                self.preview.submit(Shown(seen.frame, captured_s, keypoints=seen.detections.keypoints))
                w = self.clip.windower
                self.stats.update(focal_progress=(self.clip.chunk.person_frames, len(self.clip.chunk.frames),
                                                  w.focal_wait_frames))
            with self._handoff_cond:
                if self._handoff is None:
                    self._fit_idle.set()
        for out in self.clip.flush():
            self._done(out, captured)

    def _done(self, out: WindowOutput, captured: dict[int, float]) -> None:
        """Shows a fitted window's last frame, keeps it for the store and counts it."""
        self.recorder.add(out)
        last = out.frames[-1]
        fit = None if out.fit is None else out.fit[out.fit.frame_index == last.index]
        self.preview.submit(Shown(last, captured.get(last.index, time.monotonic()), fit=fit, focal_px=out.focal_px))
        for f in out.frames:
            persons = 0 if out.fit is None else int((out.fit.frame_index == f.index).sum())
            self.stats.frame_done(persons)
            captured.pop(f.index, None)
        solver = self.clip.solver
        if solver.focal is not None:
            cue = solver.shot_focal_cue[-1] if solver.shot_focal_cue else None
            self.stats.update(focal_px=float(solver.focal), focal_state=cue or "people", focal_progress=None)
