"""Executors: where a clip's steps run. They own threads, queues, ordering,
back-pressure and errors, and read no domain field: a clip is anything with
``push(frame) -> outputs``, ``flush() -> outputs`` and ``write(output)``
(:class:`~meshstream.stream.clip.Clip`).

- :class:`InlineExecutor`: every step on the calling thread, in order (tests, bench/,
  train/, and the Ray executor's clip actors).
- :class:`ThreadedExecutor`: one clip in this process, a decoder thread and a writer
  thread overlapping the calling thread's perception and fitting; memory bounded by the
  two queues and one window, whatever the clip's length.

The Ray executor (batches over a cluster) is :mod:`meshstream.stream.ray_executor`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

_END = object()


class ClipSteps(Protocol):
    def push(self, frame: Any) -> list[Any]: ...

    def flush(self) -> list[Any]: ...

    def write(self, output: Any) -> None: ...


class InlineExecutor:
    """Decodes, perceives, fits and writes on the calling thread."""

    def run(self, frames: Iterable[Any], clip: ClipSteps, on_frame: Callable[[], None] | None = None) -> int:
        """Runs ``clip`` over ``frames``; returns the number of frames pushed."""
        n = 0
        for frame in frames:
            for out in clip.push(frame):
                clip.write(out)
            n += 1
            if on_frame is not None:
                on_frame()
        for out in clip.flush():
            clip.write(out)
        return n


class ThreadedExecutor:
    """Overlaps decoding (a thread), perception and fitting (the calling thread) and
    writing (a thread), through bounded queues.

    Args:
        frame_queue: Decoded frames waiting for perception.
        write_queue: Fitted windows waiting for the sinks.
    """

    def __init__(self, frame_queue: int = 16, write_queue: int = 2) -> None:
        self.frame_queue = frame_queue
        self.write_queue = write_queue

    def run(self, frames: Iterable[Any], clip: ClipSteps, on_frame: Callable[[], None] | None = None) -> int:
        """Runs ``clip`` over ``frames``; returns the number of frames pushed. The first
        error of any thread is raised here (KeyboardInterrupt included), after the
        writer has written what was fitted before it."""
        frames_q: queue.Queue = queue.Queue(maxsize=self.frame_queue)
        write_q: queue.Queue = queue.Queue(maxsize=self.write_queue)
        stop = threading.Event()

        def decode() -> None:
            try:
                for frame in frames:
                    if not _put(frames_q, frame, stop):
                        return
            finally:
                _put(frames_q, _END, None)

        def write() -> None:
            while (out := write_q.get()) is not _END:
                clip.write(out)

        decoder, decode_errors = _start_thread(decode)
        writer, write_errors = _start_thread(write)
        n = 0
        try:
            while (frame := frames_q.get()) is not _END:
                for out in clip.push(frame):
                    _put_checked(write_q, out, write_errors)
                n += 1
                if on_frame is not None:
                    on_frame()
            if decode_errors:
                raise decode_errors[0]
            for out in clip.flush():
                _put_checked(write_q, out, write_errors)
        finally:
            stop.set()
            while writer.is_alive():
                try:
                    write_q.put(_END, timeout=0.2)
                    break
                except queue.Full:
                    continue
            writer.join()
            deadline = time.monotonic() + 5.0  # a source blocked in a read is left behind (a daemon thread)
            while decoder.is_alive() and time.monotonic() < deadline:  # unblock a decoder on a full queue
                try:
                    frames_q.get(timeout=0.1)
                except queue.Empty:
                    continue
        if write_errors:
            raise write_errors[0]
        return n


def _start_thread(target) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def wrapper() -> None:
        try:
            target()
        except BaseException as exc:  # re-raised on the calling thread
            errors.append(exc)

    thread = threading.Thread(target=wrapper, daemon=True)
    thread.start()
    return thread, errors


def _put(q: queue.Queue, item, stop: threading.Event | None) -> bool:
    """Puts into a bounded queue unless ``stop`` is set first; returns whether it did."""
    while stop is None or not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _put_checked(q: queue.Queue, item, errors: list[BaseException]) -> None:
    """Puts into a bounded queue, raising the consumer's error instead of blocking on it."""
    while True:
        if errors:
            raise errors[0]
        try:
            q.put(item, timeout=0.2)
            return
        except queue.Full:
            continue
