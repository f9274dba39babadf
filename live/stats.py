"""What a live run shows and records about itself: rates, latencies, drops, the focal."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np


def percentile_ms(samples, q: float) -> float | None:
    """The ``q``-th percentile of ``samples`` (seconds) in milliseconds, or ``None``."""
    return None if not len(samples) else round(1000.0 * float(np.percentile(np.asarray(samples), q)), 1)


@dataclass
class LiveStats:
    """Counters shared by a live run's threads (each update under one lock).

    Attributes:
        captured: Frames the source delivered.
        dropped_capture: Frames replaced in the capture slot before perception took them.
        dropped_fit: Perceived frames replaced before the fitter took them.
        processed: Frames fitted (or found without people) and filtered.
        recorded: Frames written to the store.
        persons: Persons in the newest processed frame.
        focal_px: The focal the bodies are fitted at (``None`` while it is estimated).
        focal_state: ``"given"``, ``"estimating"`` or what set it (``"people"``, ``"lines"``, ...).
        focal_progress: While estimating: (person-frames seen, frames waited, frames the wait lasts at most).
        recording: The store is being written.
    """

    captured: int = 0
    dropped_capture: int = 0
    dropped_fit: int = 0
    processed: int = 0
    recorded: int = 0
    persons: int = 0
    focal_px: float | None = None
    focal_state: str = "estimating"
    focal_progress: tuple[int, int, int] | None = None
    recording: bool = True
    started_s: float = field(default_factory=time.monotonic)
    _done_at: deque = field(default_factory=lambda: deque(maxlen=240))
    _ready: deque = field(default_factory=lambda: deque(maxlen=2000))
    _shown: deque = field(default_factory=lambda: deque(maxlen=2000))
    _stage: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, stage: str, seconds: float) -> None:
        """One step of a stage (``"perceive"``, ``"fit"``, ``"preview"``) took ``seconds``."""
        with self._lock:
            self._stage.setdefault(stage, deque(maxlen=100)).append(seconds)

    def frame_done(self, persons: int) -> None:
        """A frame was fitted (or found without people) and filtered."""
        with self._lock:
            self.processed += 1
            self.persons = persons
            self._done_at.append(time.monotonic())

    def ready(self, latency_s: float) -> None:
        """A frame's preview was encoded, ``latency_s`` after its capture."""
        with self._lock:
            self._ready.append(latency_s)

    def shown(self, latency_s: float) -> None:
        """The page reported a frame shown, ``latency_s`` after its capture."""
        with self._lock:
            self._shown.append(latency_s)

    def update(self, **values) -> None:
        with self._lock:
            for k, v in values.items():
                setattr(self, k, v)

    def snapshot(self) -> dict:
        """The numbers the page shows (JSON-ready)."""
        with self._lock:
            now = time.monotonic()
            recent = [t for t in self._done_at if now - t <= 2.0]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) >= 2 and recent[-1] > recent[0] else 0.0
            ready, shown = list(self._ready)[-200:], list(self._shown)[-200:]
            return {
                "elapsed_s": round(now - self.started_s, 1), "fps": round(fps, 1), "captured": self.captured,
                "processed": self.processed, "dropped": self.dropped_capture + self.dropped_fit,
                "recorded": self.recorded, "persons": self.persons, "recording": self.recording,
                "focal_px": None if self.focal_px is None else round(self.focal_px, 1),
                "focal_state": self.focal_state, "focal_progress": self.focal_progress,
                "latency_ready_ms": {"p50": percentile_ms(ready, 50), "p95": percentile_ms(ready, 95)},
                "latency_display_ms": {"p50": percentile_ms(shown, 50), "p95": percentile_ms(shown, 95)},
                "stage_ms": {k: percentile_ms(v, 50) for k, v in self._stage.items()},
            }

    def summary(self) -> dict:
        """The whole run's figures (the store's ``live`` attribute)."""
        with self._lock:
            busy = (self._done_at[-1] - self.started_s) if self._done_at else 0.0
            return {
                "captured": self.captured, "processed": self.processed, "recorded": self.recorded,
                "dropped_capture": self.dropped_capture, "dropped_fit": self.dropped_fit,
                "fps": round(self.processed / busy, 2) if busy > 0 else 0.0,
                "latency_ready_ms": {"p50": percentile_ms(self._ready, 50), "p95": percentile_ms(self._ready, 95)},
                "latency_display_ms": {"p50": percentile_ms(self._shown, 50),
                                       "p95": percentile_ms(self._shown, 95), "frames": len(self._shown)},
                "stage_ms_p50": {k: percentile_ms(v, 50) for k, v in self._stage.items()},
            }
