"""Decoding: timestamps, variable frame rate, rotation, random access, image folders, bad files."""

import numpy as np
import pytest

from conftest import DATA, gradient_frames, write_clip
from meshstream.stream.errors import InputError
from meshstream.stream.sources import DecordSource, ImageFolderSource, PyAVSource, open_source, rotate_frame


def _brightness_index(rgb):
    return int(round((rgb[..., 0].astype(np.float32).mean() - 40) / 6))


def test_pyav_reads_fps_and_pts_from_the_container(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", gradient_frames(12), fps=12.5)
    src = open_source(str(clip))
    assert isinstance(src, PyAVSource)
    assert src.info.fps == pytest.approx(12.5)
    assert (src.info.width, src.info.height) == (128, 96)
    frames = list(src)
    assert [f.index for f in frames] == list(range(12))
    assert np.allclose([f.pts_seconds for f in frames], np.arange(12) / 12.5, atol=1e-3)
    assert [_brightness_index(f.rgb) for f in frames] == list(range(12))


def test_variable_frame_rate_pts_are_honoured(tmp_path):
    times = [0.0, 0.04, 0.1, 0.5, 0.54, 1.3]
    clip = write_clip(tmp_path / "vfr.mp4", gradient_frames(len(times)), times=times, fps=25)
    frames = list(open_source(str(clip)))
    assert np.allclose([f.pts_seconds for f in frames], times, atol=1e-3)


def test_decord_random_access_matches_pyav(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", gradient_frames(20), fps=10)
    src = open_source(str(clip), every=3, start_s=0.2)
    assert isinstance(src, DecordSource)
    got = list(src)
    ref = [f for f in open_source(str(clip), random_access="never", every=1) if f.index >= 2][::3]
    assert [f.index for f in got] == [f.index for f in ref] == [2, 5, 8, 11, 14, 17]
    assert np.allclose([f.pts_seconds for f in got], [f.pts_seconds for f in ref], atol=1e-3)
    for a, b in zip(got, ref):
        assert np.array_equal(a.rgb, b.rgb)


def test_decord_falls_back_to_pyav_for_image_sequence_it_cannot_open(tmp_path):
    clip = write_clip(tmp_path / "c.avi", gradient_frames(6), fps=10, codec="mpeg4")
    src = open_source(str(clip), every=2)
    assert [f.index for f in src] == [0, 2, 4]


def test_rotation_is_counter_clockwise_degrees():
    img = np.zeros((2, 3, 3), np.uint8)
    img[0, 2] = 255  # top-right pixel
    r90 = rotate_frame(img, 90)
    assert r90.shape == (3, 2, 3) and r90[0, 0, 0] == 255  # top-right goes to top-left
    r270 = rotate_frame(img, -90)
    assert r270[2, 1, 0] == 255
    assert rotate_frame(img, 0) is img


def test_rotation_metadata_of_a_phone_video_is_applied(tmp_path):
    """An MP4 whose track matrix says "display rotated 90 degrees clockwise" (as phones
    write it) decodes to portrait frames, with the left edge on top."""
    import struct

    frames = []
    for _ in range(3):
        img = np.zeros((32, 64, 3), np.uint8)
        img[:, :8] = 255  # white band on the left edge
        frames.append(img)
    clip = write_clip(tmp_path / "land.mp4", frames, fps=10)
    data = bytearray(clip.read_bytes())
    tkhd = data.find(b"tkhd") - 4
    assert data[tkhd + 8] == 0  # version 0 track header: the matrix is 48 bytes in
    data[tkhd + 48 : tkhd + 84] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    rotated = tmp_path / "portrait.mp4"
    rotated.write_bytes(bytes(data))
    for mode in ("never", "always"):  # PyAV streaming and decord random access
        src = open_source(str(rotated), random_access=mode)
        assert (src.info.width, src.info.height) == (32, 64) and src.info.rotation_deg == 270
        frame = next(iter(src))
        assert frame.rgb.shape == (64, 32, 3)
        assert frame.rgb[:6, :, 0].mean() > 200 and frame.rgb[-20:, :, 0].mean() < 30


def test_image_folder_source(tmp_path):
    from PIL import Image

    for i, rgb in enumerate(gradient_frames(5)):
        Image.fromarray(rgb).save(tmp_path / f"{i:03d}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    src = open_source(str(tmp_path), image_fps=5.0)
    assert isinstance(src, ImageFolderSource)
    frames = list(src)
    assert [_brightness_index(f.rgb) for f in frames] == list(range(5))
    assert np.allclose([f.pts_seconds for f in frames], np.arange(5) / 5.0)


def test_image_folder_range_and_step_select_on_the_images_times(tmp_path):
    """--start/--end/--every on a folder: image k is at k / image_fps seconds; a photo
    alone is one frame; a start past the last image is one line."""
    from PIL import Image

    for i, rgb in enumerate(gradient_frames(10)):
        Image.fromarray(rgb).save(tmp_path / f"{i:03d}.png")
    src = open_source(str(tmp_path), image_fps=5.0, start_s=0.4, end_s=1.6, every=2, max_frames=3)
    frames = list(src)
    assert [f.index for f in frames] == [2, 4, 6]  # 0.4 s up to 1.6 s: images 2..7, every 2nd, 3 at most
    assert [_brightness_index(f.rgb) for f in frames] == [2, 4, 6]
    assert np.allclose([f.pts_seconds for f in frames], [0.4, 0.8, 1.2])
    assert src.info.n_frames == 10  # the folder's count, whatever is selected
    photo = list(open_source(str(tmp_path / "003.png")))
    assert len(photo) == 1 and _brightness_index(photo[0].rgb) == 3 and photo[0].pts_seconds == 0.0
    with pytest.raises(InputError, match="--start 9 s is past the end of .* \\(2.00 s long\\)"):
        open_source(str(tmp_path), image_fps=5.0, start_s=9.0)


def test_truncated_avi_decodes_what_is_readable(tmp_path):
    rng = np.random.default_rng(0)
    frames = [np.clip(f.astype(np.int16) + rng.integers(-30, 30, f.shape), 0, 255).astype(np.uint8)
              for f in gradient_frames(40)]  # noise makes packets large next to the AVI header
    clip = write_clip(tmp_path / "c.avi", frames, fps=10, codec="mpeg4")
    data = clip.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    src = open_source(str(cut))
    frames = list(src)
    assert 0 < len(frames) < 40
    assert src.stopped_early and "of the 40 frames" in src.stopped_early
    # What was decoded is the start of the clip, in order.
    assert [f.index for f in frames] == list(range(len(frames)))


def _missing(p):
    return p / "missing.mp4"


def _empty(p):
    (p / "empty.mp4").write_bytes(b"")
    return p / "empty.mp4"


def _text(p):
    (p / "text.mp4").write_text("not a video\n" * 50)
    return p / "text.mp4"


def _no_images(p):
    (p / "imgs").mkdir()
    (p / "imgs" / "readme.txt").write_text("no images here")
    return p / "imgs"


@pytest.mark.parametrize(
    "make, message",
    [(_missing, "no such file"), (_empty, "file is empty"), (_text, "not a video FFmpeg can read"),
     (_no_images, "folder has no images")],
)
def test_bad_inputs_raise_one_line_input_errors(tmp_path, make, message):
    with pytest.raises(InputError, match=message) as info:
        open_source(str(make(tmp_path)))
    assert "\n" not in str(info.value)


def test_real_clip_cut_decodes():
    src = open_source(str(DATA / "vtest_cut.mp4"))
    frames = list(src)
    assert len(frames) == 40 and frames[0].rgb.shape == (576, 768, 3)
    assert src.info.fps == pytest.approx(10.0)
