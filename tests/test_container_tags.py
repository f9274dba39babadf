"""The camera's 35 mm-equivalent focal length from a video's metadata or photos' EXIF:
the box reader on files written by FFmpeg and on files given an iPhone's track-level item
here, the EXIF reader on photos given the tags here, and the runs that use them."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import zarr

from conftest import gradient_frames, run_cli, tz_errors, write_clip
from meshstream.stream.container_tags import (
    FOCAL_35MM_KEY,
    exif_focal_35mm,
    focal_35mm_from_px,
    focal_35mm_from_value,
    focal_px_from_35mm,
    quicktime_items,
)
from meshstream.stream.sources import open_source


def save_photo(path: Path, rgb: np.ndarray, exif_tags: dict[int, float]) -> Path:
    """Saves ``rgb`` with ``exif_tags`` in its EXIF sub-IFD, as a camera writes a photo."""
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "meshstream tests"  # Pillow writes no PNG eXIf chunk for an empty main IFD
    exif.get_ifd(ExifTags.IFD.Exif).update(exif_tags)
    Image.fromarray(rgb).save(path, exif=exif, quality=95)
    return path


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _meta_box(items: dict[str, tuple[int, bytes]], full_box: bool) -> bytes:
    """A ``meta`` box with ``mdta`` keys; ``items``: key -> (well-known type, value bytes)."""
    hdlr = _box(b"hdlr", bytes(8) + b"mdta" + bytes(12) + b"\0")
    keys = struct.pack(">II", 0, len(items)) + b"".join(
        struct.pack(">I", 8 + len(k)) + b"mdta" + k.encode() for k in items)
    ilst = b"".join(_box(struct.pack(">I", i + 1), _box(b"data", struct.pack(">II", kind, 0) + value))
                    for i, (kind, value) in enumerate(items.values()))
    return _box(b"meta", (bytes(4) if full_box else b"") + hdlr + _box(b"keys", keys) + _box(b"ilst", ilst))


def _children(buf: bytes, start: int, end: int):
    pos = start
    while pos < end:
        size, kind = struct.unpack(">I4s", buf[pos:pos + 8])
        yield kind, pos, pos + size
        pos += size


def add_video_track_meta(path: Path, meta: bytes) -> None:
    """Appends ``meta`` to the video ``trak`` box, where an iPhone keeps its camera items.

    The file must have its ``moov`` after ``mdat`` (FFmpeg's default), so that no
    sample offset moves.
    """
    buf = bytearray(path.read_bytes())
    top = list(_children(buf, 0, len(buf)))
    kinds = [k for k, _, _ in top]
    assert kinds.index(b"moov") > kinds.index(b"mdat")
    _, m0, m1 = top[kinds.index(b"moov")]
    for kind, t0, t1 in _children(buf, m0 + 8, m1):
        if kind == b"trak" and b"vide" in bytes(buf[t0:t1]):
            buf[t1:t1] = meta
            for start in (t0, m0):
                size = struct.unpack(">I", buf[start:start + 4])[0]
                buf[start:start + 4] = struct.pack(">I", size + len(meta))
            path.write_bytes(bytes(buf))
            return
    raise AssertionError("no video track")


def test_movie_level_item_written_by_ffmpeg(tmp_path):
    """``-movflags use_metadata_tags`` puts the items in the movie's ``meta`` box: both
    FFmpeg and the box reader see them, and the source reports the focal."""
    path = tmp_path / "tagged.mov"
    container = av.open(str(path), "w", options={"movflags": "use_metadata_tags"})
    container.metadata[FOCAL_35MM_KEY] = "26"
    container.metadata["com.apple.quicktime.make"] = "Apple"
    stream = container.add_stream("libx264", rate=Fraction(10))
    stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
    for rgb in gradient_frames(3):
        for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    items = quicktime_items(path)
    assert items[FOCAL_35MM_KEY] == "26" and items["com.apple.quicktime.make"] == "Apple"
    with open_source(str(path)) as source:
        assert source.info.focal_35mm == 26.0


@pytest.mark.parametrize("full_box", [False, True])
def test_video_track_items_as_an_iphone_writes_them(tmp_path, full_box):
    """Typed items inside the video track (QuickTime's bare ``meta`` box and MP4's full
    box), which FFmpeg does not read into its metadata; the track's value wins over the
    movie's."""
    path = write_clip(tmp_path / "phone.mp4", gradient_frames(3))
    items = {
        FOCAL_35MM_KEY: (21, struct.pack(">h", 27)),  # signed integer, as iPhones write it
        "com.apple.quicktime.camera.lens_model": (1, "iPhone 13 back camera 5.1mm f/1.6".encode()),
        "org.example.float": (23, struct.pack(">f", 1.5)),
        "org.example.double": (24, struct.pack(">d", -2.25)),
    }
    add_video_track_meta(path, _meta_box(items, full_box))
    read = quicktime_items(path)
    assert read[FOCAL_35MM_KEY] == 27 and read["org.example.float"] == 1.5 and read["org.example.double"] == -2.25
    assert read["com.apple.quicktime.camera.lens_model"].startswith("iPhone 13")
    with open_source(str(path)) as source:
        assert source.info.focal_35mm == 27.0
        assert len(list(source)) == 3  # the file still decodes


def test_damaged_and_untagged_files(tmp_path):
    path = write_clip(tmp_path / "plain.mp4", gradient_frames(3))
    assert quicktime_items(path) == {}
    add_video_track_meta(path, _meta_box({FOCAL_35MM_KEY: (1, b"26")}, False))
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:-20])  # the metadata box runs past the end of the file
    assert quicktime_items(cut) == {}
    (tmp_path / "junk.mov").write_bytes(b"\x00\x00\x00\x01moov" + bytes(7))  # 64-bit size cut short
    assert quicktime_items(tmp_path / "junk.mov") == {}


def test_value_and_pixel_conversions():
    assert focal_35mm_from_value(26) == 26.0 and focal_35mm_from_value(4.25) == 4.25
    assert focal_35mm_from_value("50.00mm") == 50.0 and focal_35mm_from_value(" 27 ") == 27.0
    assert focal_35mm_from_value("wide") is None and focal_35mm_from_value(b"26") is None
    # 27 mm on a 16:9 frame: 27/36 of the long side, portrait or landscape.
    assert focal_px_from_35mm(27, 3840, 2160) == pytest.approx(2880.0)
    assert focal_px_from_35mm(27, 2160, 3840) == pytest.approx(2880.0)
    assert focal_35mm_from_px(2880.0, 3840, 2160) == pytest.approx(27.0)
    # The horizontal field of view of a 36 mm-wide frame: 2 atan(18 / f).
    f_px = focal_px_from_35mm(18, 1920, 1080)
    assert np.degrees(2 * np.arctan(960 / f_px)) == pytest.approx(90.0)


def test_exif_focal_of_photos(tmp_path):
    from PIL import ExifTags

    tags = ExifTags.Base
    rgb = np.zeros((300, 400, 3), np.uint8)
    assert exif_focal_35mm(save_photo(tmp_path / "phone.jpg", rgb, {tags.FocalLengthIn35mmFilm: 26,
                                                                     tags.FocalLength: 4.2})) == 26.0
    # A camera without the 35 mm tag: 20 mm on a sensor with 160 px/mm, the photo saved at
    # a fifth of the sensor's 6000 px width: 20 * 160 / 5 = 640 px at 400 px wide.
    sensor = {tags.FocalLength: 20.0, tags.FocalPlaneXResolution: 160.0, tags.FocalPlaneResolutionUnit: 4,
              tags.ExifImageWidth: 2000}
    f35 = exif_focal_35mm(save_photo(tmp_path / "dslr.jpg", rgb, sensor))
    assert focal_px_from_35mm(f35, 400, 300, "diagonal") == pytest.approx(20 * 160 * 400 / 2000)
    inch = {tags.FocalLength: 20.0, tags.FocalPlaneXResolution: 160.0 * 25.4, tags.FocalPlaneResolutionUnit: 2}
    f35 = exif_focal_35mm(save_photo(tmp_path / "inch.png", rgb, inch))
    assert focal_px_from_35mm(f35, 400, 300, "diagonal") == pytest.approx(20 * 160)  # PNG eXIf, no resize
    assert exif_focal_35mm(save_photo(tmp_path / "none.jpg", rgb, {tags.FocalLength: 20.0})) is None
    assert exif_focal_35mm(save_photo(tmp_path / "zero.jpg", rgb, {tags.FocalLengthIn35mmFilm: 0})) is None
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff\xe1junk")
    assert exif_focal_35mm(tmp_path / "junk.jpg") is None
    # Stills match diagonals: a 4:3 phone photo's 26 mm on 4032 x 3024 px.
    assert focal_px_from_35mm(26, 4032, 3024, "diagonal") == pytest.approx(26 / np.hypot(36, 24) * 5040)
    assert focal_35mm_from_px(3028.5, 4032, 3024, "diagonal") == pytest.approx(26.0, abs=0.01)
    with pytest.raises(ValueError, match="basis"):
        focal_px_from_35mm(26, 4032, 3024, "height")


def test_image_folder_reads_the_exif_focal_when_all_images_agree(tmp_path):
    from PIL import ExifTags

    tag = ExifTags.Base.FocalLengthIn35mmFilm
    rgb = np.full((48, 64, 3), 90, np.uint8)
    for name, values in (("same", [28, 28, 28]), ("zoomed", [28, 28, 52]), ("partly", [28, None, 28])):
        folder = tmp_path / name
        folder.mkdir()
        for i, v in enumerate(values):
            save_photo(folder / f"{i:03d}.jpg", rgb, {} if v is None else {tag: v})
        info = open_source(str(folder)).info
        assert info.focal_35mm_basis == "diagonal"
        assert info.focal_35mm == (28.0 if name == "same" else None), name


@pytest.mark.slow
def test_run_uses_the_metadata_focal(tmp_path, body, measured):
    """A clip whose video track carries the focal (as an iPhone's does): the run uses it
    as given, with metric depth; switched off, or implausible, the focal is estimated."""
    import cv2

    from conftest import DATA
    from meshstream.models.synthetic import PersonSpec, render_clip

    background = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    persons = [PersonSpec((-0.3, 3.0), (0.3, 0.0), yaw_deg=30)]
    gt = render_clip(tmp_path / "phone.mp4", persons, fov_deg=70, n_frames=24, background=background, body=body)
    f35 = 36 * gt.focal_px / gt.width  # 25.7 mm: the phone writes a whole number
    add_video_track_meta(tmp_path / "phone.mp4", _meta_box({FOCAL_35MM_KEY: (21, struct.pack(">h", round(f35)))},
                                                           False))
    res = run_cli(str(tmp_path / "phone.mp4"), "-o", str(tmp_path / "meta"), "-q", "--no-overlay")
    assert res.returncode == 0, res.stderr
    assert "from the video's 35 mm-equivalent focal length" in res.stdout
    store = zarr.open_group(str(tmp_path / "meta" / "phone.zarr"), mode="r")
    assert store.attrs["focal_source"] == "metadata" and store.attrs["focal_35mm"] == round(f35)
    expected = round(f35) / 36 * gt.width
    assert np.allclose(store["camera/focal_px"][:], expected, rtol=1e-5)
    assert np.isnan(store["camera/focal_px_raw"][:]).all()  # used as given: no search
    tz = tz_errors(store, gt)
    # Metres. Measured 0.089 with the focal 1.1 % long; 0.31 with it estimated (-12 %).
    assert len(tz) == 1 and measured("tz_err_m", tz[0]) < 0.135

    res = run_cli(str(tmp_path / "phone.mp4"), "-o", str(tmp_path / "off"), "-q", "--no-overlay",
                  "--set", "estimation.metadata_focal=false")
    assert res.returncode == 0, res.stderr
    store = zarr.open_group(str(tmp_path / "off" / "phone.zarr"), mode="r")
    assert store.attrs["focal_source"] == "estimated" and store.attrs["focal_35mm"] == round(f35)
    assert np.isfinite(store["camera/focal_px_raw"][:]).any()


@pytest.mark.slow
def test_implausible_metadata_focal_is_ignored_with_a_note(tmp_path):
    path = write_clip(tmp_path / "odd.mp4", gradient_frames(4))
    add_video_track_meta(path, _meta_box({FOCAL_35MM_KEY: (1, b"2.5mm")}, False))
    res = run_cli(str(path), "-o", str(tmp_path / "out"), "-q", "--no-overlay")
    assert res.returncode == 0, res.stderr
    assert "2.5 mm (35 mm-equivalent) focal length, outside 8-1200 mm, so it was ignored" in res.stderr
    store = zarr.open_group(str(tmp_path / "out" / "odd.zarr"), mode="r")
    assert store.attrs["focal_source"] == "estimated" and store.attrs["focal_35mm"] == 2.5
    assert any("ignored" in note for note in store.attrs["notes"])


@pytest.mark.slow
def test_run_uses_the_exif_focal_of_an_image_folder(tmp_path, body, measured):
    """Frames saved as photos with a camera's EXIF: the run uses the focal as given."""
    import cv2
    from PIL import ExifTags

    from conftest import DATA
    from meshstream.models.synthetic import PersonSpec, render_frames

    background = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    persons = [PersonSpec((0.3, 3.2), (-0.3, 0.0), yaw_deg=-20)]
    frames, gt = render_frames(persons, fov_deg=65, n_frames=20, background=background, body=body)
    f35 = round(focal_35mm_from_px(gt.focal_px, gt.width, gt.height, "diagonal"))  # 35 mm: whole millimetres
    folder = tmp_path / "burst"
    folder.mkdir()
    for i, rgb in enumerate(frames):
        save_photo(folder / f"IMG_{i:04d}.jpg", rgb, {ExifTags.Base.FocalLengthIn35mmFilm: f35})
    res = run_cli(str(folder), "-o", str(tmp_path / "out"), "-q", "--no-overlay", "--set", "decode.image_fps=25")
    assert res.returncode == 0, res.stderr
    assert "from the images' EXIF 35 mm-equivalent focal length" in res.stdout
    store = zarr.open_group(str(tmp_path / "out" / "burst.zarr"), mode="r")
    assert store.attrs["focal_source"] == "metadata" and store.attrs["focal_35mm"] == f35
    assert store.attrs["focal_35mm_basis"] == "diagonal"
    expected = focal_px_from_35mm(f35, gt.width, gt.height, "diagonal")
    # the rounding to whole millimetres (measured 0.61 %)
    assert measured("f35_rounding_err_rel", abs(expected / gt.focal_px - 1)) < 0.0095
    measured("focal_vs_exif_max_rel", np.abs(store["camera/focal_px"][:] / expected - 1).max())
    assert np.allclose(store["camera/focal_px"][:], expected, rtol=1e-5)
    tz = tz_errors(store, gt)
    assert len(tz) == 1 and measured("tz_err_m", tz[0]) < 0.1  # metres; measured 0.066
