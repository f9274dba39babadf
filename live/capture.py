"""Live sources: a V4L2 camera, a network stream (RTSP, RTMP, HTTP, UDP, TCP, SRT) or a
file, decoded with PyAV on a thread that keeps only the newest frame.

A live source is never queued up: when the consumer is busy, the frame it has not
taken is replaced by the next one and counted as dropped. A file is played at its
own pace with ``realtime`` (as a camera would deliver it, for demos and tests);
without it every frame is handed over (the reader waits, nothing is dropped).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from meshstream.stream.errors import InputError
from meshstream.stream.messages import Frame, VideoInfo

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")


def is_stream_url(source: str) -> bool:
    """True for ``scheme://...`` with a network scheme FFmpeg reads live."""
    scheme, sep, _ = source.partition("://")
    return bool(sep) and scheme.lower() in STREAM_SCHEMES


@dataclass
class Captured:
    """A decoded frame and when it was decoded.

    Attributes:
        frame: The frame (its ``pts_seconds`` from the source's first frame).
        captured_s: ``time.monotonic()`` when it was decoded, seconds.
    """

    frame: Frame
    captured_s: float


class LiveCapture:
    """Decodes a source on a thread into a one-frame slot.

    Args:
        container: An open PyAV input container.
        name: What the user named (for messages).
        realtime: Pace a file by its time stamps.
        drop: Replace a frame not yet taken (live); else wait for the consumer.
    """

    def __init__(self, container, name: str, *, realtime: bool, drop: bool) -> None:
        self._container = container
        self._stream = container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.name = name
        self.realtime = realtime
        self.drop = drop
        self._cond = threading.Condition()
        self._slot: Captured | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clock = time.monotonic()  # a realtime file's time 0
        self.captured = 0
        self.dropped = 0
        self.ended = False
        self.error: str | None = None
        self._frames = self._decode()
        first = next(self._frames, None)
        if first is None:
            container.close()
            raise InputError(f"{name}: no frame could be decoded ({self.error or 'the source is empty'}); check "
                             "that it is a video source")
        self._first = first
        rate = self._stream.average_rate or self._stream.guessed_rate
        fps = float(rate) if rate and 1 <= float(rate) <= 240 else 30.0
        h, w = first.frame.rgb.shape[:2]
        self.info = VideoInfo(path=name, width=w, height=h, fps=fps, n_frames=None, codec=self._stream.codec_context.name)

    def _decode(self):
        """Yields :class:`Captured` frames (times from the first frame; a file with
        ``realtime`` paced from :meth:`start` on)."""
        import av

        t0 = None
        index = 0
        try:
            for frame in self._container.decode(self._stream):
                if self._stop.is_set():
                    return
                t = float(frame.time) if frame.time is not None else None
                if t0 is None:
                    t0 = t if t is not None else 0.0
                    self._clock = time.monotonic()
                rel = max((t - t0) if t is not None else time.monotonic() - self._clock, 0.0)
                if self.realtime and (wait := self._clock + rel - time.monotonic()) > 0:
                    if self._stop.wait(wait):
                        return
                rgb = frame.to_ndarray(format="rgb24")
                yield Captured(Frame(index=index, pts_seconds=rel, rgb=rgb), time.monotonic())
                index += 1
        except av.error.FFmpegError as exc:
            self.error = exc.strerror or str(exc)
            log.info("%s: decoding stopped (%s)", self.name, self.error)

    def start(self) -> None:
        """Starts the reading thread (the first frame is already waiting, as if captured
        now); a second call does nothing."""
        if self._thread is not None:
            return
        self._clock = time.monotonic()
        self._first.captured_s = self._clock
        self._put(self._first)
        self._thread = threading.Thread(target=self._run, name="live-capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._frames:
                self._put(item)
                if self._stop.is_set():
                    break
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def _put(self, item: Captured) -> None:
        """Puts a frame in the slot and counts it; once :meth:`close` began, a frame
        decoded meanwhile is discarded uncounted (every counted frame is then taken or
        counted as dropped)."""
        with self._cond:
            if self.drop:
                if self._slot is not None:
                    self.dropped += 1
            else:
                while self._slot is not None and not self._stop.is_set():
                    self._cond.wait(0.1)
            if self._stop.is_set():  # checked under the lock close() clears the slot with
                return
            self._slot = item
            self.captured += 1
            self._cond.notify_all()

    def get(self, timeout: float = 0.5) -> Captured | None:
        """The newest frame not yet taken, waiting up to ``timeout`` seconds; ``None``
        when none came (see :attr:`ended`)."""
        with self._cond:
            if self._slot is None and not self.ended:
                self._cond.wait(timeout)
            item, self._slot = self._slot, None
            self._cond.notify_all()
            return item

    @property
    def waiting(self) -> int:
        """1 while a frame waits in the slot, else 0."""
        with self._cond:
            return int(self._slot is not None)

    def close(self) -> None:
        """Stops reading and releases the source (a frame left in the slot counts as dropped)."""
        self._stop.set()
        with self._cond:
            if self._slot is not None:
                self._slot = None
                self.dropped += 1
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self._thread is None or not self._thread.is_alive():  # a read blocked in FFmpeg is left to its thread
            self._container.close()


def open_capture(*, camera: int | None = None, source: str | None = None, realtime: bool = False,
                 timeout_s: float = 10.0) -> LiveCapture:
    """Opens a live source and decodes its first frame.

    Args:
        camera: A V4L2 camera's index (``/dev/videoN``), or ``None``.
        source: A stream URL or a video file (when ``camera`` is ``None``).
        realtime: Play a file at its own pace (frames are dropped when the consumer is slower).
        timeout_s: Longest wait to open a stream or read from it, seconds.

    Raises:
        InputError: No such camera, an unreachable stream, a missing file, or no frame.
    """
    import av

    options: dict[str, str] = {}
    fmt = None
    if camera is not None:
        name = f"/dev/video{camera}"
        if not os.path.exists(name):
            found = sorted(str(p) for p in Path("/dev").glob("video*"))
            there = f"cameras here: {', '.join(found)}" if found else "this machine has no camera"
            raise InputError(f"--camera {camera}: no camera at {name} ({there}); plug one in, pick another index, "
                             "or give --source URL_OR_FILE")
        fmt, drop = "v4l2", True
    elif source is None:
        raise InputError("meshstream live needs --camera N or --source URL_OR_FILE")
    elif is_stream_url(source):
        name, drop = source, True
    else:
        name, drop = source, realtime
        if not os.path.isfile(source):
            raise InputError(f"--source {source}: no such file, and not a stream URL "
                             f"({', '.join(s + '://' for s in STREAM_SCHEMES[:5])}...); check the path or the URL")
    try:
        container = av.open(name, format=fmt, options=options, timeout=(timeout_s, timeout_s))
    except av.error.FFmpegError as exc:
        reason = exc.strerror or str(exc)
        if camera is not None:
            raise InputError(f"--camera {camera}: {name} cannot be opened ({reason}); is another program using "
                             "it?") from exc
        raise InputError(f"--source {name}: cannot be opened ({reason}); check that the stream is running and "
                         "reachable from here, or the file is a video") from exc
    if not container.streams.video:
        container.close()
        raise InputError(f"{name}: has no video stream; give a video source")
    return LiveCapture(container, name, realtime=realtime and camera is None and not is_stream_url(name), drop=drop)
