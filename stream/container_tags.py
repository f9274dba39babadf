"""Camera facts a phone or camera writes into a file's metadata: the lens's focal length.

iPhones (and apps such as Blackmagic Camera) store the lens as a 35 mm-equivalent focal
length under the key ``com.apple.quicktime.camera.focal_length.35mm_equivalent``. The
item sits in a ``meta`` box (``hdlr`` of type ``mdta``, a ``keys`` box naming the keys,
an ``ilst`` box holding one ``data`` box per key), either at movie level (FFmpeg's
``-movflags use_metadata_tags`` writes it there; FFmpeg reads it into the container's
metadata) or inside the video track, where Apple's cameras put it and FFmpeg does not
look. :func:`quicktime_items` reads both by walking the boxes with seeks (the media
data is never read).

Conventions: a 35 mm-equivalent focal length gives the field of view a lens of that
focal length gives on a 36 × 24 mm frame; for video the frame's long side is matched
to the 36 mm side (an iPhone 13's 26 mm photo lens is reported as 27 mm in 16:9
video, which crops the 4:3 sensor's height, not its width), so
``focal_px = f35 / 36 mm × long side in pixels``.

Photos carry the lens in their EXIF (:func:`exif_focal_35mm`): ``FocalLengthIn35mmFilm``,
or else ``FocalLength`` with the sensor's ``FocalPlaneXResolution``. For stills the
35 mm equivalent matches the diagonals (the 36 × 24 mm frame's 43.3 mm against the
image's; a 4:3 phone photo's 26 mm is its full sensor), so
``focal_px = f35 / 43.3 mm × diagonal in pixels`` (``basis="diagonal"``).
"""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path
from typing import BinaryIO, Iterator

FOCAL_35MM_KEY = "com.apple.quicktime.camera.focal_length.35mm_equivalent"
FULL_FRAME_LONG_SIDE_MM = 36.0
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
PLAUSIBLE_FOCAL_35MM = (8.0, 1200.0)  # fisheye action cameras to long telephoto, millimetres

# Boxes that only hold other boxes, on the way to a ``meta`` box.
_CONTAINERS = {b"moov", b"trak", b"udta", b"mdia", b"minf"}
_META_CHILDREN = {b"hdlr", b"keys", b"ilst", b"free", b"xml ", b"iinf", b"pitm"}
_MAX_META_BYTES = 1 << 20  # a metadata box is a few kB; anything larger is not read


def _boxes(fh: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in ``[start, end)`` of the file."""
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        head = fh.read(8)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head)
        header = 8
        if size == 1:  # 64-bit size follows
            large = fh.read(8)
            if len(large) < 8:
                return
            size, header = struct.unpack(">Q", large)[0], 16
        elif size == 0:  # runs to the end of its parent
            size = end - pos
        if size < header or pos + size > end:
            return  # truncated or corrupt: stop, keep what was read
        yield kind, pos + header, pos + size
        pos += size


def _data_value(payload: bytes) -> object | None:
    """The value of an ``ilst`` item's ``data`` box payload (after the 8-byte box header)."""
    if len(payload) < 8:
        return None
    kind = int.from_bytes(payload[1:4], "big")  # 1 byte version, 3 bytes well-known type
    value = payload[8:]  # 4 bytes locale
    if kind == 1:
        return value.decode("utf-8", "replace")
    if kind in (21, 22) and len(value) in (1, 2, 3, 4, 8):
        return int.from_bytes(value, "big", signed=kind == 21)
    if kind == 23 and len(value) == 4:
        return struct.unpack(">f", value)[0]
    if kind == 24 and len(value) == 8:
        return struct.unpack(">d", value)[0]
    return None


def _meta_items(fh: BinaryIO, start: int, end: int) -> dict[str, object]:
    """Key/value items of one ``meta`` box's payload."""
    if end - start > _MAX_META_BYTES:
        return {}
    fh.seek(start)
    # QuickTime's meta box has no version/flags word, MP4's has: skip it when the
    # payload does not start with one of the boxes a meta box holds.
    head = fh.read(8)
    if len(head) == 8 and head[4:8] not in _META_CHILDREN:
        start += 4
    keys: list[str] = []
    values: dict[int, object] = {}
    for kind, a, b in _boxes(fh, start, end):
        fh.seek(a)
        payload = fh.read(b - a)
        if kind == b"keys" and len(payload) >= 8:
            count = struct.unpack(">I", payload[4:8])[0]
            pos = 8
            for _ in range(count):
                if pos + 8 > len(payload):
                    break
                size = struct.unpack(">I", payload[pos:pos + 4])[0]
                if size < 8 or pos + size > len(payload):
                    break
                keys.append(payload[pos + 8:pos + size].decode("utf-8", "replace"))  # after size + namespace
                pos += size
        elif kind == b"ilst":
            pos = 0
            while pos + 8 <= len(payload):
                size, index = struct.unpack(">II", payload[pos:pos + 8])
                if size < 8 or pos + size > len(payload):
                    break
                item = payload[pos + 8:pos + size]
                if len(item) >= 16 and item[4:8] == b"data":
                    values[index] = _data_value(item[8:struct.unpack(">I", item[:4])[0]])
                pos += size
    return {keys[i - 1]: v for i, v in values.items() if 0 < i <= len(keys) and v is not None}


def quicktime_items(path: str | Path) -> dict[str, object]:
    """Metadata items (``mdta`` keys) of a QuickTime/MP4 file, movie and video track levels.

    Args:
        path: A .mov/.mp4/.m4v file.

    Returns:
        Key -> value (str, int or float). A video track's items override the movie's.
        Empty for other containers or a file without such items; never raises on a
        corrupt file (what was read before the damage is returned).
    """
    items: dict[str, object] = {}
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()

        def walk(start: int, end: int, in_video: bool) -> None:
            for kind, a, b in _boxes(fh, start, end):
                if kind == b"meta":
                    for key, value in _meta_items(fh, a, b).items():
                        if in_video or key not in items:
                            items[key] = value
                elif kind == b"trak":
                    walk(a, b, _is_video_track(fh, a, b))
                elif kind in _CONTAINERS:
                    walk(a, b, in_video)

        walk(0, size, False)
    return items


def _is_video_track(fh: BinaryIO, start: int, end: int) -> bool:
    """True if a ``trak`` box's media handler is ``vide``."""
    for kind, a, b in _boxes(fh, start, end):
        if kind == b"mdia":
            for sub, c, _ in _boxes(fh, a, b):
                if sub == b"hdlr":
                    fh.seek(c + 8)  # version/flags, pre-defined
                    return fh.read(4) == b"vide"
    return False


def focal_35mm_from_value(value: object) -> float | None:
    """A 35 mm-equivalent focal length, millimetres, from a metadata value (``26``, ``"50.00mm"``)."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = re.match(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(?:mm)?\s*$", value)
        if match:
            return float(match.group(1))
    return None


def _frame_mm_and_px(width: int, height: int, basis: str) -> tuple[float, float]:
    if basis == "long_side":
        return FULL_FRAME_LONG_SIDE_MM, float(max(width, height))
    if basis == "diagonal":
        return FULL_FRAME_DIAGONAL_MM, math.hypot(width, height)
    raise ValueError(f"basis must be 'long_side' (video) or 'diagonal' (photo EXIF), got {basis!r}")


def focal_px_from_35mm(focal_35mm: float, width: int, height: int, basis: str = "long_side") -> float:
    """Focal length in pixels of a 35 mm-equivalent focal length.

    Args:
        focal_35mm: 35 mm-equivalent focal length, millimetres.
        width, height: Frame size, pixels.
        basis: ``"long_side"`` (video: the long side matched to 36 mm) or
            ``"diagonal"`` (photo EXIF: the diagonal matched to 43.3 mm).

    Returns:
        Focal length, pixels.
    """
    mm, px = _frame_mm_and_px(width, height, basis)
    return focal_35mm / mm * px


def focal_35mm_from_px(focal_px: float, width: int, height: int, basis: str = "long_side") -> float:
    """The 35 mm-equivalent focal length, millimetres, of a focal in pixels (the inverse of
    :func:`focal_px_from_35mm`)."""
    mm, px = _frame_mm_and_px(width, height, basis)
    return focal_px * mm / px


_EXIF_FOCAL_PLANE_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # inch, cm, mm, um


def exif_focal_35mm(path: str | Path) -> float | None:
    """The 35 mm-equivalent focal length of a photo from its EXIF, millimetres (diagonal basis).

    ``FocalLengthIn35mmFilm`` where the camera wrote it (phones do). Otherwise
    ``FocalLength`` (mm) times ``FocalPlaneXResolution`` (sensor pixels per unit) gives
    the focal in sensor pixels, scaled to the stored image's width over
    ``PixelXDimension`` (a resized copy) and converted with the image's diagonal.

    Args:
        path: JPEG, TIFF, PNG or WebP file.

    Returns:
        Millimetres, or ``None`` when the file has no usable EXIF focal or cannot be read.
    """
    from PIL import ExifTags, Image, UnidentifiedImageError

    tags = ExifTags.Base
    try:
        with Image.open(path) as img:
            exif = img.getexif().get_ifd(ExifTags.IFD.Exif)
            width, height = img.size  # as stored, before the EXIF orientation
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None

    def number(tag: int) -> float | None:
        try:
            value = float(exif[tag])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return None
        return value if math.isfinite(value) and value > 0 else None

    f35 = number(tags.FocalLengthIn35mmFilm)
    if f35 is not None:
        return f35
    focal_mm, per_unit = number(tags.FocalLength), number(tags.FocalPlaneXResolution)
    unit_mm = _EXIF_FOCAL_PLANE_UNIT_MM.get(exif.get(tags.FocalPlaneResolutionUnit, 2))
    if focal_mm is None or per_unit is None or unit_mm is None:
        return None
    focal_px = focal_mm * per_unit / unit_mm * width / (number(tags.ExifImageWidth) or width)
    return focal_35mm_from_px(focal_px, width, height, "diagonal")
