"""Frame sources: video files (PyAV streaming, decord random access) and image folders.

Every source yields :class:`~meshstream.stream.messages.Frame` objects whose ``pts_seconds`` come
from the container (variable frame rate is honoured) and whose pixels have the
container's rotation metadata applied.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .container_tags import FOCAL_35MM_KEY, exif_focal_35mm, focal_35mm_from_value, quicktime_items
from .errors import InputError
from .messages import Frame, VideoInfo

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MIN_SIDE_PX = 32  # smaller frames hold no person the detectors can find (and break feature matching)


def rotate_frame(rgb: np.ndarray, rotation_deg: int) -> np.ndarray:
    """Applies a display rotation (degrees counter-clockwise, multiple of 90)."""
    k = (int(round(rotation_deg / 90.0))) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=k)) if k else rgb


class FrameSource:
    """Base class: an iterable of frames with :attr:`info`; ``close()`` releases files."""

    info: VideoInfo
    duration_s: float | None = None  # the input's length in seconds, where known

    def __iter__(self) -> Iterator[Frame]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PyAVSource(FrameSource):
    """Streaming decode of any container/codec FFmpeg reads.

    Args:
        path: Video file.
        start_s: Skip frames before this time, seconds.
        end_s: Stop at this time, seconds (exclusive).
        every: Keep every n-th decoded frame.
        max_frames: Stop after this many yielded frames.

    A stream that turns corrupt or is truncated part-way is decoded up to the last
    readable frame; the problem is logged and iteration stops cleanly
    (:attr:`stopped_early` tells).
    """

    def __init__(self, path: str, *, start_s: float | None = None, end_s: float | None = None,
                 every: int = 1, max_frames: int | None = None) -> None:
        import av

        self.path = path
        try:
            self._container = av.open(path)
        except av.error.InvalidDataError as exc:
            raise InputError(
                f"{path}: not a video FFmpeg can read ({exc.strerror}); give a complete video file (.mp4, .avi, .mov, ...)"
            ) from exc
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: cannot open ({exc.strerror or exc}); check the file is a complete video") from exc
        if not self._container.streams.video:
            kinds = sorted({s.type for s in self._container.streams})
            self._container.close()
            what = f"has only {', '.join(kinds)} streams" if kinds else "contains no streams"
            raise InputError(f"{path}: {what}, no video; give a file with a video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        cc = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        n = stream.frames or None
        if not fps > 0:
            dur = float(stream.duration * stream.time_base) if stream.duration else 0.0
            fps = n / dur if n and dur > 0 else 30.0
        rotation = self._probe_rotation()
        w, h = cc.width, cc.height
        if w <= 0 or h <= 0:
            self._container.close()
            raise InputError(f"{path}: video stream has no frame size; the file is probably corrupt")
        if rotation % 180:
            w, h = h, w
        self.info = VideoInfo(path=path, width=w, height=h, fps=fps, n_frames=n, rotation_deg=rotation,
                              codec=cc.name, focal_35mm=self._probe_focal_35mm())
        if stream.duration and stream.time_base:
            self.duration_s: float | None = float(stream.duration * stream.time_base)
        elif self._container.duration:
            self.duration_s = self._container.duration / av.time_base
        else:
            self.duration_s = n / fps if n else None
        self.start_s, self.end_s = start_s, end_s
        self.every = max(1, int(every))
        self.max_frames = max_frames
        self.stopped_early: str | None = None

    def _probe_focal_35mm(self) -> float | None:
        """The 35 mm-equivalent focal length in the container's metadata, if any."""
        value = self._stream.metadata.get(FOCAL_35MM_KEY) or self._container.metadata.get(FOCAL_35MM_KEY)
        if value is None and self._container.format.name.startswith("mov"):  # FFmpeg skips a track's own items
            try:
                value = quicktime_items(self.path).get(FOCAL_35MM_KEY)
            except OSError:
                value = None
        return None if value is None else focal_35mm_from_value(value)

    def _probe_rotation(self) -> int:
        """Rotation of the first frame (PyAV reads the display matrix), then rewinds."""
        import av

        try:
            frame = next(self._container.decode(self._stream))
            rotation = int(round(getattr(frame, "rotation", 0) or 0))
        except (StopIteration, av.error.FFmpegError):
            rotation = 0
        try:
            self._container.seek(0)
        except av.error.FFmpegError:
            # Not seekable: reopen.
            self._container.close()
            self._container = av.open(self.path)
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
        return rotation % 360

    def __iter__(self) -> Iterator[Frame]:
        import av

        yielded = 0
        index = -1
        bad_packets = 0
        last_error = ""
        ranged = self.start_s is not None or self.end_s is not None or self.max_frames is not None
        if self.start_s:
            self._container.seek(int(self.start_s / self._stream.time_base), stream=self._stream, backward=True)
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
                frames = packet.decode()
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                # A damaged packet: skip it, keep decoding what is readable.
                bad_packets += 1
                last_error = exc.strerror or str(exc)
                if bad_packets > 100:
                    break
                continue
            for frame in frames:
                index += 1
                t = float(frame.time) if frame.time is not None else index / self.info.fps
                if self.start_s is not None and t < self.start_s - 1e-6:
                    continue
                if self.end_s is not None and t >= self.end_s:
                    return
                if index % self.every:
                    continue
                rgb = rotate_frame(frame.to_ndarray(format="rgb24"), self.info.rotation_deg)
                yield Frame(index=index, pts_seconds=t, rgb=rgb)
                yielded += 1
                if self.max_frames is not None and yielded >= self.max_frames:
                    return
        problems = []
        announced = self.info.n_frames
        if not ranged and announced and index + 1 < 0.98 * announced:
            problems.append(f"decoded {index + 1} of the {announced} frames the container announces")
        if bad_packets:
            problems.append(f"{bad_packets} packets could not be decoded ({last_error})")
        if problems:
            self.stopped_early = "; ".join(problems)
            log.info("%s: %s (file truncated or corrupt); keeping what was decoded", self.path, self.stopped_early)

    def close(self) -> None:
        self._container.close()


class DecordSource(FrameSource):
    """Random-access decode with decord, used when only some frames are wanted
    (``start``/``end``/``every``): it seeks to keyframes instead of decoding all.

    Args:
        path: Video file.
        info: Container facts probed by PyAV (rotation, fps).
        start_s, end_s, every, max_frames: As for :class:`PyAVSource`.
        batch: Frames fetched per decord call.
    """

    def __init__(self, path: str, info: VideoInfo, *, start_s: float | None = None, end_s: float | None = None,
                 every: int = 1, max_frames: int | None = None, batch: int = 16) -> None:
        import cv2  # noqa: F401  (load OpenCV's zlib before decord's; see _read_image)
        import decord

        self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        self.info = info
        n = len(self._vr)
        times = self._vr.get_frame_timestamp(np.arange(n))[:, 0]
        keep = np.ones(n, bool)
        if start_s is not None:
            keep &= times >= start_s - 1e-6
        if end_s is not None:
            keep &= times < end_s
        idx = np.nonzero(keep)[0][:: max(1, int(every))]
        if max_frames is not None:
            idx = idx[:max_frames]
        self._indices = idx
        self._times = times
        self._batch = batch
        self.duration_s = float(times[-1] - times[0]) + 1.0 / info.fps if n else None
        self.stopped_early: str | None = None

    def __iter__(self) -> Iterator[Frame]:
        for s in range(0, len(self._indices), self._batch):
            ids = self._indices[s : s + self._batch]
            arr = self._vr.get_batch(list(map(int, ids))).asnumpy()
            # decord applies the display matrix itself; rotate only if it did not.
            rotation = 0 if arr.shape[1:3] == (self.info.height, self.info.width) else self.info.rotation_deg
            for i, rgb in zip(ids, arr):
                yield Frame(index=int(i), pts_seconds=float(self._times[i]),
                            rgb=rotate_frame(np.ascontiguousarray(rgb), rotation))


class ImageFolderSource(FrameSource):
    """A folder of images in name order (or one image file), as frames ``fps`` apart.

    The lens's focal length is read from the images' EXIF (:func:`exif_focal_35mm`)
    when every image used gives the same value; images that disagree (a zoom during a
    burst) or carry none leave ``info.focal_35mm`` at ``None``.

    Args:
        path: Folder holding ``.jpg/.png/...`` files, or one such file (a still photo:
            one frame).
        fps: Frame rate to time-stamp them with (an image folder has no clock):
            image k (in name order) is at k / fps seconds.
        start_s, end_s, every, max_frames: As for :class:`PyAVSource`, on those times.
    """

    def __init__(self, path: str, *, fps: float = 30.0, start_s: float | None = None, end_s: float | None = None,
                 every: int = 1, max_frames: int | None = None) -> None:
        if Path(path).is_file():
            files = [Path(path)]
        else:
            files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise InputError(f"{path}: folder has no images ({', '.join(IMAGE_SUFFIXES)}); give a video file or a folder of images")
        times = np.arange(len(files)) / fps  # image k is shown at k / fps, as in a video
        keep = np.ones(len(files), bool)
        if start_s is not None:
            keep &= times >= start_s - 1e-6
        if end_s is not None:
            keep &= times < end_s
        self._indices = np.nonzero(keep)[0][:: max(1, int(every))]
        if max_frames is not None:
            self._indices = self._indices[:max_frames]
        self.duration_s = len(files) / fps
        if len(self._indices) == 0 and not (start_s or 0.0) >= self.duration_s:  # (that: open_source's line)
            raise InputError(f"{path}: no image between --start and --end ({len(files)} images at {fps:g} "
                             "frames/s, decode.image_fps); widen the range")
        self._files = [files[k] for k in self._indices]
        first = _read_image(files[0])
        if first is None:
            fix = "convert it to PNG/JPEG" if len(files) == 1 and Path(path).is_file() else "remove it or convert it to PNG/JPEG"
            raise InputError(f"{files[0]}: unreadable image; {fix}")
        self.info = VideoInfo(path=path, width=first.shape[1], height=first.shape[0], fps=fps,
                              n_frames=len(files), codec="images", focal_35mm=self._exif_focal_35mm(),
                              focal_35mm_basis="diagonal")
        self.stopped_early: str | None = None

    def _exif_focal_35mm(self) -> float | None:
        values = {exif_focal_35mm(f) for f in self._files}  # headers only: ~0.2 ms per file
        if len(values) > 1:
            log.warning("the images' EXIF focal lengths differ (%s mm, 35 mm-equivalent): none is used",
                        ", ".join("none" if v is None else f"{v:g}" for v in sorted(values, key=lambda v: v or 0)))
            return None
        return values.pop() if values else None

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        for k, f in zip(self._indices, self._files):
            rgb = _read_image(f)
            if rgb is None:
                self.stopped_early = f"unreadable image {f.name}"
                log.info("%s: unreadable image, stopping here", f)
                return
            if rgb.shape[:2] != (self.info.height, self.info.width):
                rgb = cv2.resize(rgb, (self.info.width, self.info.height), interpolation=cv2.INTER_AREA)
            yield Frame(index=int(k), pts_seconds=float(k) / self.info.fps, rgb=rgb)


def _read_image(path: Path) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB with EXIF orientation applied, or None if unreadable.

    Pillow, not OpenCV: OpenCV's PNG decoder fails once decord (which bundles another
    zlib) is loaded in the process.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    except (OSError, UnidentifiedImageError):
        return None


def open_source(path: str, *, start_s: float | None = None, end_s: float | None = None, every: int = 1,
                max_frames: int | None = None, image_fps: float = 30.0, random_access: str = "auto") -> FrameSource:
    """Opens a video file or an image folder.

    Args:
        path: Video file or folder of images.
        start_s, end_s: Time range, seconds.
        every: Keep every n-th frame.
        max_frames: Stop after this many frames.
        image_fps: Frame rate given to an image folder.
        random_access: ``"auto"`` uses decord when a range or a step is asked for,
            ``"never"`` always streams with PyAV, ``"always"`` prefers decord.

    Raises:
        InputError: The path is missing, empty, not a video, or has no video stream.
    """
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder; check the path")
    if not os.path.isdir(path) and os.path.getsize(path) == 0:
        raise InputError(f"{path}: file is empty (0 bytes); give a video file")
    source = _open(path, start_s=start_s, end_s=end_s, every=every, max_frames=max_frames, image_fps=image_fps,
                   random_access=random_access)
    w, h = source.info.width, source.info.height
    problem = None
    if min(w, h) < MIN_SIDE_PX:
        problem = (f"{path}: frames are {w}x{h} pixels, too small to find people in; give a video at least "
                   f"{MIN_SIDE_PX} pixels on each side")
    elif start_s is not None and source.duration_s is not None and start_s >= source.duration_s:
        problem = (f"--start {start_s:g} s is past the end of {path} ({source.duration_s:.2f} s long); give a start "
                   "time inside it")
    if problem:
        source.close()
        raise InputError(problem)
    return source


def _open(path: str, *, start_s: float | None, end_s: float | None, every: int, max_frames: int | None,
          image_fps: float, random_access: str) -> FrameSource:
    if os.path.isdir(path) or Path(path).suffix.lower() in IMAGE_SUFFIXES:  # a folder, or a still photo: one frame
        return ImageFolderSource(path, fps=image_fps, start_s=start_s, end_s=end_s, every=every, max_frames=max_frames)
    pyav = PyAVSource(path, start_s=start_s, end_s=end_s, every=every, max_frames=max_frames)
    wants_random = random_access == "always" or (
        random_access == "auto" and (start_s is not None or end_s is not None or every > 1)
    )
    if not wants_random:
        return pyav
    try:
        source = DecordSource(path, pyav.info, start_s=start_s, end_s=end_s, every=every, max_frames=max_frames)
    except Exception as exc:  # decord raises its own DECORDError and RuntimeError types
        log.info("decord cannot open %s (%s); streaming with PyAV", path, exc)
        return pyav
    pyav.close()
    return source
