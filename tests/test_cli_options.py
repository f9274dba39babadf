"""Options through the real CLI: a time range with a step, the fast preset, causal
filtering, and the edges a new user meets (tiny frames, a photo, a finished store of
another clip)."""

import numpy as np
import pytest
import zarr

from conftest import DATA, run_cli, write_clip

pytestmark = pytest.mark.slow


def test_range_and_step_with_the_fast_preset(tmp_path, measured):
    """--start/--end/--every keep exactly the frames asked for, with their own time stamps;
    configs/fast.yaml runs and is recorded in the store."""
    res = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path), "-q", "--no-overlay", "--config",
                  "configs/fast.yaml", "--start", "1.0", "--end", "2.5", "--every", "2")
    assert res.returncode == 0, res.stderr
    store = zarr.open_group(str(tmp_path / "sample.zarr"), mode="r")
    pts = store["frames/pts_seconds"][:]
    index = store["frames/frame_index"][:]
    # sample.mp4: 25 frames/s, so [1.0, 2.5) holds frames 25..62, of which every 2nd is kept.
    assert list(index) == list(range(25, 62, 2))
    assert np.allclose(pts, index / 25.0, atol=1e-3)
    assert store.attrs["complete"] is True and store.attrs["n_frames"] == len(index)
    config = store.attrs["config"]
    assert config["estimation"]["iterations_3d"] == 30 and config["perception"]["detect_every"] == 10
    assert config["decode"] == {**config["decode"], "start_s": 1.0, "end_s": 2.5, "every": 2}
    assert config["output"]["dir"] == str(tmp_path)  # -o is recorded as what it is
    assert len(list(store["tracks"].group_keys())) == 2  # the sample's two people
    for tid in store["tracks"].group_keys():
        err = store[f"tracks/{tid}/fit_error_px"][:]
        assert measured(f"fit_err_median_t{tid}_px", np.median(err)) < 5.0  # px; measured 3.2 and 2.9


def test_causal_filter_runs_forward_only(tmp_path):
    """filter.causal stores what a forward Kalman filter alone gives from the raw
    translations (no smoothing pass that looks ahead)."""
    from meshstream.tracking.filters import TranslationSmoother

    res = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path), "-q", "--no-overlay", "--max-frames", "30",
                  "--set", "filter.causal=true")
    assert res.returncode == 0, res.stderr
    store = zarr.open_group(str(tmp_path / "sample.zarr"), mode="r")
    assert store.attrs["config"]["filter"]["causal"] is True
    pts = store["frames/pts_seconds"][:]
    compared = 0
    for tid in store["tracks"].group_keys():
        g = store[f"tracks/{tid}"]
        times = pts[g["frame_index"][:]]
        raw, ok = g["transl_raw"][:].astype(np.float64), g["fit_ok"][:].astype(bool)
        forward = TranslationSmoother(causal=True)(int(tid), times, raw, valid=ok)
        both_ways = TranslationSmoother(causal=False)(int(tid), times, raw, valid=ok)
        assert np.abs(g["transl"][:] - forward).max() < 1e-4  # metres
        if len(times) > 5:
            assert np.abs(forward - both_ways).max() > 1e-3  # the two filters do differ here
            compared += 1
    assert compared >= 1


def test_tiny_frames_get_one_line(tmp_path):
    frames = [np.full((8, 8, 3), 100 + 10 * i, np.uint8) for i in range(5)]
    clip = write_clip(tmp_path / "tiny.mkv", frames, codec="ffv1")
    res = run_cli(str(clip), "-o", str(tmp_path / "out"), "-q")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "frames are 8x8 pixels, too small" in res.stderr
    assert not (tmp_path / "out").exists()  # nothing written, no folder left behind


def test_a_photo_of_two_people_finds_both(tmp_path, body):
    """One JPEG, as a file or in a folder: both people get a track and a fit."""
    import cv2
    from PIL import Image

    from meshstream.models.synthetic import PersonSpec, render_frames

    photo = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    frames, _ = render_frames([PersonSpec((-0.7, 3.0), (0.0, 0.0), yaw_deg=20),
                               PersonSpec((0.8, 3.5), (0.0, 0.0), yaw_deg=-20, shirt_rgb=(200, 60, 40))],
                              fov_deg=65, n_frames=1, background=photo, body=body)
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(frames[0]).save(folder / "two.jpg", quality=95)
    for source, stem in ((folder, "photos"), (folder / "two.jpg", "two")):
        out = tmp_path / f"out_{stem}"
        res = run_cli(str(source), "-o", str(out), "-q", "--no-overlay")
        assert res.returncode == 0, res.stderr
        assert "no person found" not in res.stderr
        store = zarr.open_group(str(out / f"{stem}.zarr"), mode="r")
        assert store.attrs["n_frames"] == 1 and len(list(store["tracks"].group_keys())) == 2


def test_resume_of_a_finished_store_from_another_clip_is_refused(tmp_path):
    """A finished store named like the input but made from another video is not taken
    as this one's: exit 2, the store untouched."""
    frames = [np.full((96, 128, 3), 60 + 5 * i, np.uint8) for i in range(6)]
    other = tmp_path / "a" / "sample.mp4"
    other.parent.mkdir()
    write_clip(other, frames, fps=10.0)
    assert run_cli(str(other), "-o", str(tmp_path / "out"), "-q", "--no-overlay").returncode == 0
    before = (tmp_path / "out" / "sample.zarr" / "zarr.json").read_bytes()
    res = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path / "out"), "-q", "--no-overlay", "--resume")
    assert res.returncode == 2 and "was made from another video" in res.stderr and "Traceback" not in res.stderr
    assert (tmp_path / "out" / "sample.zarr" / "zarr.json").read_bytes() == before
