"""End to end through the real CLI: accuracy on a rendered clip with ground truth, real
footage, the store schema, and every kind of bad input."""

import math
from dataclasses import dataclass

import numpy as np
import pytest
import zarr

from conftest import DATA, gradient_frames, run_cli, tz_errors, write_clip
from meshstream.models.synthetic import PersonSpec, render_clip

pytestmark = pytest.mark.slow

TRACK_ARRAYS = {  # name: trailing shape (J = number of joints)
    "frame_index": (), "bbox_xyxy": (4,), "keypoints2d": (33, 3), "transl": (3,), "transl_raw": (3,),
    "pelvis": (3,), "keypoints3d_coco17": (17, 3), "global_orient": (3,), "body_pose": ("J", 3),
    "joints3d": ("J", 3), "fit_error_px": (), "confidence": (), "fit_ok": (),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, body):
    """A 36-frame clip: two people at 2.6 m and 3.6 m, 80 degree field of view."""
    import cv2

    d = tmp_path_factory.mktemp("rendered")
    background = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    persons = [PersonSpec((-0.8, 2.6), (0.3, 0.0), yaw_deg=30),
               PersonSpec((0.9, 3.6), (-0.2, 0.0), motion="arms", shirt_rgb=(200, 60, 40))]
    gt = render_clip(d / "two.mp4", persons, fov_deg=80, n_frames=36, background=background, body=body)
    return d / "two.mp4", gt


def _check_schema(store: zarr.Group, n_frames: int, num_joints: int) -> None:
    attrs = dict(store.attrs)
    for key in ("schema_version", "source", "fps", "width", "height", "n_frames", "complete", "body_model",
                "keypoint_layouts", "config", "software_version", "joint_names"):
        assert key in attrs, key
    assert attrs["n_frames"] == n_frames and len(attrs["joint_names"]) == num_joints
    assert store["frames/pts_seconds"].shape == (n_frames,)
    assert store["camera/focal_px"].shape == (n_frames,) and store["camera/focal_px_raw"].shape == (n_frames,)
    assert store["camera/principal_point"].shape == (2,)
    assert store["camera/rotation"].shape == (n_frames, 3, 3)
    assert np.all(np.diff(store["frames/pts_seconds"][:]) > 0)
    for tid in store["tracks"].group_keys():
        t = store[f"tracks/{tid}"]
        n = t["frame_index"].shape[0]
        for name, tail in TRACK_ARRAYS.items():
            tail = tuple(num_joints if s == "J" else s for s in tail)
            assert t[name].shape == (n, *tail), (tid, name, t[name].shape)
        assert t["shape"].ndim == 1
        rows = t["frame_index"][:]
        assert np.all(np.diff(rows) > 0) and rows.max() < n_frames


def test_estimated_focal_and_depth_beat_a_fixed_focal_guess(rendered, tmp_path, measured):
    clip, gt = rendered
    ours = run_cli(str(clip), "-o", str(tmp_path / "ours"), "-q")
    assert ours.returncode == 0, ours.stderr
    assert "2 tracks" in ours.stdout and "° horizontal FOV (estimated from " in ours.stdout
    assert "turned up to" not in ours.stdout  # a still camera
    store = zarr.open_group(str(tmp_path / "ours" / "two.zarr"), mode="r")
    assert store.attrs["complete"] is True
    _check_schema(store, 36, len(store.attrs["joint_names"]))
    assert (store["camera/rotation"][:] == np.eye(3)).all()  # still: its axes are the world's
    focal = float(store["camera/focal_px"][0])
    assert np.allclose(store["camera/focal_px"][:], focal)  # one focal per shot
    # the search's per-frame estimates
    assert measured("raw_focal_frames", np.isfinite(store["camera/focal_px_raw"][:]).sum()) >= 30
    f_err = abs(focal - gt.focal_px) / gt.focal_px
    tz_ours = tz_errors(store, gt)

    diagonal = math.hypot(gt.width, gt.height)  # the fixed guess of WHAM/GVHMR
    guess = run_cli(str(clip), "-o", str(tmp_path / "guess"), "-q", "--no-overlay", "--focal-px", str(diagonal))
    assert guess.returncode == 0, guess.stderr
    tz_guess = tz_errors(zarr.open_group(str(tmp_path / "guess" / "two.zarr"), mode="r"), gt)
    f_err_guess = abs(diagonal - gt.focal_px) / gt.focal_px

    assert len(tz_ours) == len(tz_guess) == 2
    # Measured: focal 5.6 % off (the diagonal guess 110 %); Tz 0.096 and 0.025 m (the
    # guess: 2.75 and 3.53 m). Both vary with the render far more than that: on an
    # AVX2-only machine the focal is 12.2 % off (Tz at most 0.30 m), and with 1-DN noise
    # added before encoding 11-22 % (Tz at most 0.35-0.66 m) over seven renders. The
    # bounds are 1.5x the largest: a finding about the search (docs/accuracy.md), not
    # a target.
    assert measured("f_err_rel", f_err) < 0.33 and f_err < 0.3 * measured("f_err_guess_rel", f_err_guess)
    assert measured("tz_err_max_m", max(tz_ours)) < 1.0  # metres
    for p, (o, g) in enumerate(zip(tz_ours, tz_guess)):
        measured(f"tz_err_p{p}_m", o)
        measured(f"tz_err_guess_p{p}_m", g)
    assert all(o < 0.36 * g for o, g in zip(tz_ours, tz_guess))  # measured 0.24 at most

    overlay = tmp_path / "ours" / "two_overlay.mp4"
    import av

    with av.open(str(overlay)) as c:
        times = [float(f.time) for f in c.decode(video=0)]
    assert np.allclose(times, store["frames/pts_seconds"][:], atol=2e-3)


def test_focal_landmarks_switch_moves_the_focal_search(rendered, tmp_path, measured):
    """``estimation.focal_landmarks=relief_lifter`` (the default is ``detector``) makes the
    focal search read the relief lifter's landmarks: another focal, recorded in the
    store's config. The replaced boolean key is refused with a line naming the new one,
    before anything is written."""
    clip, gt = rendered
    focals = {}
    for name, extra in (("plain", []), ("relief", ["--set", "estimation.focal_landmarks=relief_lifter"])):
        res = run_cli(str(clip), "-o", str(tmp_path / name), "-q", "--no-overlay", *extra)
        assert res.returncode == 0, res.stderr
        store = zarr.open_group(str(tmp_path / name / "two.zarr"), mode="r")
        expected = "relief_lifter" if name == "relief" else "detector"
        assert store.attrs["config"]["estimation"]["focal_landmarks"] == expected
        focals[name] = float(store["camera/focal_px"][0])
    for bad, hint in (("estimation.relief_lifter=true", "focal_landmarks: relief_lifter"),
                      ("estimation.focal_landmarks=lifted", "must be one of detector, relief_lifter, pose_lifter")):
        res = run_cli(str(clip), "-o", str(tmp_path / "bad"), "-q", "--set", bad)
        assert res.returncode == 2 and hint in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()
    # Measured: 403 and 291 px against the true 381 px (+6 % and -24 %: on this clip the
    # relief lifter's focal is worse, README: Accuracy).
    assert measured("relief_vs_plain_rel", abs(focals["relief"] / focals["plain"] - 1)) > 0.18  # measured 0.28
    assert measured("relief_f_err_rel", abs(focals["relief"] / gt.focal_px - 1)) < 0.36  # measured 0.24


def test_windows_that_disagree_are_noted_and_stored_as_jumps(tmp_path):
    """Consecutive windows of the sample's one still shot, made short and the factors
    made tight, disagree: the store keeps every jump (focal and depth), the terminal and
    the notes the first of each kind."""
    res = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path), "-q", "--no-overlay", "--max-frames", "40",
                  "--set", "estimation.chunk_frames=12", "--set", "estimation.focal_min_person_frames=8",
                  "--set", "estimation.focal_jump_factor=1.001", "--set", "estimation.depth_jump_factor=1.001")
    assert res.returncode == 0, res.stderr
    store = zarr.open_group(str(tmp_path / "sample.zarr"), mode="r")
    jumps = store.attrs["jumps"]
    kinds = {j["kind"] for j in jumps}
    assert kinds == {"focal", "depth"}, jumps
    for j in jumps:
        assert j["shot"] == 0 and j["factor"] >= 1.001 and j["before"] > 0 and j["after"] > 0
        assert (j["track_id"] is None) == (j["kind"] == "focal")  # the factor is rounded to 3 decimals
        assert j["frame_index"] % 12 == 0  # a window's first frame (or a track's, where it starts there)
    noted = [n for n in store.attrs["notes"] if "the previous window's" in n or "depth jumps" in n]
    assert len(noted) == 1 + len({j["track_id"] for j in jumps if j["kind"] == "depth"})
    assert "meshstream: note: shot 0: the focal estimated from the window at frame" in res.stderr
    plain = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path / "plain"), "-q", "--no-overlay", "--max-frames", "24")
    assert plain.returncode == 0 and zarr.open_group(str(tmp_path / "plain" / "sample.zarr"), mode="r").attrs["jumps"] == []


def test_known_focal_gives_metric_depth(rendered, tmp_path, measured):
    clip, gt = rendered
    res = run_cli(str(clip), "-o", str(tmp_path), "-q", "--no-overlay", "--fov-deg", "80")
    assert res.returncode == 0, res.stderr
    store = zarr.open_group(str(tmp_path / "two.zarr"), mode="r")
    assert np.isclose(store["camera/focal_px"][0], gt.focal_px, rtol=1e-4)
    assert store.attrs["focal_source"] == "user"
    assert np.isnan(store["camera/focal_px_raw"][:]).all()  # a given focal: no search
    tz = tz_errors(store, gt)
    # Metres. Measured 0.03 and 0.18 (0.06 and 0.05 without the lifter, which shrinks the
    # second person's body by 4 %; over the suite at the true focal it lowers the mean
    # Tz error from 0.30 to 0.21 m, README: Accuracy).
    assert len(tz) == 2 and measured("tz_err_max_m", max(tz)) < 0.25
    t = store["tracks/1"]
    assert (measured("fit_ok_frac", t["fit_ok"][:].mean()) > 0.9
            and measured("fit_err_median_px", np.median(t["fit_error_px"][:])) < 3.9)  # measured 1.0 and 2.6 px


def test_real_footage_runs_and_finds_people(tmp_path):
    res = run_cli(str(DATA / "vtest_cut.mp4"), "-o", str(tmp_path), "-q", "--max-frames", "24")
    assert res.returncode == 0, res.stderr
    store = zarr.open_group(str(tmp_path / "vtest_cut.zarr"), mode="r")
    _check_schema(store, 24, len(store.attrs["joint_names"]))
    tracks = list(store["tracks"].group_keys())
    lengths = [store[f"tracks/{t}/frame_index"].shape[0] for t in tracks]
    assert len(tracks) >= 2 and sum(lengths) >= 30 and max(lengths) >= 15
    pel = np.concatenate([store[f"tracks/{t}/pelvis"][:] for t in tracks])
    assert np.all(pel[:, 2] > 0.3)  # in front of the camera
    assert (tmp_path / "vtest_cut_overlay.mp4").stat().st_size > 10_000
    # A real surveillance camera, people walking over a tiled floor: it is read as still.
    assert (store["camera/rotation"][:] == np.eye(3)).all() and "turned up to" not in res.stdout


def test_run_failure_keeps_finished_chunks(tmp_path, monkeypatch):
    """A crash part-way leaves a readable store with every finished chunk, complete=false."""
    from meshstream.models.estimator import BodyEstimator
    from meshstream.stream.config import load_config
    from meshstream.stream.run import run

    calls = {"n": 0}
    original = BodyEstimator.__call__

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BodyEstimator, "__call__", failing)
    config = load_config(None, ["estimation.chunk_frames=4", "estimation.focal_min_person_frames=0",
                                "decode.max_frames=16", "output.overlay=false"])
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(str(DATA / "sample.mp4"), config, out_dir=str(tmp_path), progress=False)
    store = zarr.open_group(str(tmp_path / "sample.zarr"), mode="r")
    assert store.attrs["complete"] is False
    assert store["frames/pts_seconds"].shape[0] == 8  # the two chunks before the crash
    assert store["tracks/1/frame_index"].shape[0] >= 6


# ----------------------------------------------------------------- bad input
def _zero_frame_avi(p):
    import av

    c = av.open(str(p / "zero.avi"), "w")
    s = c.add_stream("mpeg4", rate=10)
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    c.start_encoding()  # writes the header; no frame follows
    c.close()
    assert (p / "zero.avi").stat().st_size > 0
    return p / "zero.avi"


def _audio_only(p):
    import av

    c = av.open(str(p / "sound.wav"), "w")
    s = c.add_stream("pcm_s16le", rate=8000)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
    frame.sample_rate = 8000
    for packet in [*s.encode(frame), *s.encode()]:
        c.mux(packet)
    c.close()
    return p / "sound.wav"


def _text_file(p):
    (p / "notes.mp4").write_text("this is not a video\n" * 100)
    return p / "notes.mp4"


def _empty_dir(p):
    (p / "photos").mkdir()
    return p / "photos"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "nope.mp4", "no such file or folder"),
        (_empty_dir, "folder has no images"),
        (_text_file, "not a video FFmpeg can read"),
        (_zero_frame_avi, "no frame could be decoded"),
        (_audio_only, "has only audio streams, no video"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(tmp_path, make, message):
    res = run_cli(str(make(tmp_path)), "-o", str(tmp_path / "out"), "-q")
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.startswith("meshstream:")]
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "estimation.bogus=1"], "unknown config key 'estimation.bogus'"),
        (["--set", "decode.every=-1"], "decode.every must be >= 1"),
        (["--set", "estimation.lines_max_up_deg=0"], "estimation.lines_max_up_deg must be in (0, 45]"),
        (["--config", "missing.yaml"], "cannot read config file"),
    ],
)
def test_bad_config_gets_one_line_and_exit_2(tmp_path, args, message):
    res = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path), "-q", *args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--start", "99"], "--start 99 s is past the end of"),
        (["--focal-px", "-3"], "--focal-px -3.0: must be a focal length in pixels"),
        (["--every", "0"], "--every 0: must be >= 1"),
        (["--start", "2", "--end", "1"], "--end 1.0: must be after the start (--start"),
        (["--intrinsics", "missing.yaml"], "intrinsics file missing.yaml does not exist"),
    ],
)
def test_bad_flags_are_named_and_leave_no_output_folder(tmp_path, args, message):
    """The error names the flag the user typed, and no empty output folder is left."""
    res = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path / "out" / "run"), "-q", *args)
    lines = [line for line in res.stderr.splitlines() if line.startswith("meshstream:")]
    assert res.returncode == 2 and len(lines) == 1 and message in lines[0], res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    res = run_cli(str(DATA / "sample.mp4"), "-o", str(blocker / "out"), "-q")
    assert res.returncode == 2 and "is not writable" in res.stderr and "Traceback" not in res.stderr


def test_truncated_stream_keeps_decoded_frames_and_exits_3(tmp_path):
    rng = np.random.default_rng(0)
    frames = [np.clip(f.astype(np.int16) + rng.integers(-30, 30, f.shape), 0, 255).astype(np.uint8)
              for f in gradient_frames(40)]
    clip = write_clip(tmp_path / "c.avi", frames, fps=10, codec="mpeg4")
    data = clip.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    res = run_cli(str(tmp_path / "cut.avi"), "-o", str(tmp_path / "out"), "-q", "--no-overlay")
    assert res.returncode == 3, res.stderr
    assert "input truncated or corrupt" in res.stderr and "of the 40 frames" in res.stderr
    store = zarr.open_group(str(tmp_path / "out" / "cut.zarr"), mode="r")
    n = store["frames/pts_seconds"].shape[0]
    assert 0 < n < 40 and store.attrs["n_frames"] == n


def test_no_person_gives_valid_empty_store_and_exit_0(tmp_path):
    render_clip(tmp_path / "empty.mp4", [], n_frames=6, width=160, height=120)
    res = run_cli(str(tmp_path / "empty.mp4"), "-o", str(tmp_path / "out"), "-q")
    assert res.returncode == 0, res.stderr
    assert "no person found in 6 frames" in res.stderr
    store = zarr.open_group(str(tmp_path / "out" / "empty.zarr"), mode="r")
    assert store.attrs["complete"] is True and store["frames/pts_seconds"].shape == (6,)
    assert "tracks" not in store or len(list(store["tracks"].group_keys())) == 0
    assert np.all(np.isnan(store["camera/focal_px"][:]))


# ------------------------------------------------------- shots and tracks
def test_cut_gives_two_shots_each_with_its_own_focal(tmp_path, body, measured):
    import cv2

    from meshstream.models.synthetic import render_frames, write_video

    photo = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    f1, g1 = render_frames([PersonSpec((-0.3, 3.2), (0.3, 0.0), yaw_deg=20)], fov_deg=50, n_frames=14,
                           background=photo, body=body)
    f2, g2 = render_frames([PersonSpec((0.2, 2.2), (-0.2, 0.0), yaw_deg=-30, shirt_rgb=(30, 160, 60))], fov_deg=85,
                           n_frames=14, background=np.ascontiguousarray(photo[::-1, ::-1]), body=body)
    write_video(tmp_path / "cut.mp4", f1 + f2, 25.0)
    res = run_cli(str(tmp_path / "cut.mp4"), "-o", str(tmp_path), "-q", "--no-overlay")
    assert res.returncode == 0, res.stderr
    assert "of 2 shots" in res.stdout
    store = zarr.open_group(str(tmp_path / "cut.zarr"), mode="r")
    shot = store["frames/shot"][:]
    assert shot.tolist() == [0] * 14 + [1] * 14
    focal = store["camera/focal_px"][:]
    f_a, f_b = focal[0], focal[-1]
    assert np.all(focal[:14] == f_a) and np.all(focal[14:] == f_b)
    assert store.attrs["shot_focal_px"] == pytest.approx([f_a, f_b])
    measured("focal_ratio", f_b / f_a)
    assert f_b < 0.8 * f_a  # the second shot is wider
    # Measured: 7.1 % and 9.9 % off. The first shot was 3.1 % off while its frame 0 had no
    # body (tracks were confirmed on their second frame): that frame's own focal vote is
    # 352 px against the true 686, and one vote in 14 moves the shot's focal from -1.8 to
    # -9.6 % on the shot alone, a fragility of the focal search (issue 25), not of frame
    # 0's keypoints (2.4 px median error, as on the other frames).
    for shot_i, (est, truth, bound) in enumerate(((f_a, g1.focal_px, 0.11), (f_b, g2.focal_px, 0.15))):
        assert measured(f"f_err_shot{shot_i}_rel", abs(est - truth) / truth) < bound
    for tid in store["tracks"].group_keys():  # no track crosses the cut
        rows = store[f"tracks/{tid}/frame_index"][:]
        assert len(np.unique(shot[rows])) == 1


def test_the_focal_waits_for_enough_person_frames(tmp_path):
    """A first chunk with people but fewer person-frames than
    ``estimation.focal_min_person_frames`` grows (up to twice ``chunk_frames``) before
    it sets the shot's focal; the store says how many person-frames that was (0 for a
    focal given by the user)."""
    from meshstream.stream.config import load_config
    from meshstream.stream.run import run

    evidence = {}
    for name, extra in (("now", ["estimation.focal_min_person_frames=0"]), ("wait", ["estimation.focal_min_person_frames=10"]),
                        ("given", ["estimation.focal_px=450"])):
        config = load_config(None, ["estimation.chunk_frames=4", "decode.max_frames=20", "output.overlay=false", *extra])
        summary = run(str(DATA / "sample.mp4"), config, out_dir=str(tmp_path / name), progress=False)
        store = zarr.open_group(str(tmp_path / name / "sample.zarr"), mode="r")
        evidence[name] = store.attrs["shot_focal_person_frames"]
        assert store["frames/pts_seconds"].shape[0] == 20  # every frame is still written
        assert summary.focal_person_frames == evidence[name][0]  # what the CLI prints
        assert summary.focal_fov_deg == pytest.approx(math.degrees(2 * math.atan(320 / summary.focal_px)))
    assert 0 < evidence["now"][0] < 10 <= evidence["wait"][0] and evidence["given"] == [0]


def test_a_known_height_sizes_every_track_and_fixes_its_depth(tmp_path, body, measured):
    """``--height-m`` (both sample persons are Anny's average body): every track's
    fitted standing height (the track's ``stature_m``) lands within 1 % of it, and at
    the true focal the depth error shrinks where the fitted size was off. A child's
    height is reached from a child's body, a height over the shapes' range is clipped
    with a note, and a height in centimetres is refused with one line."""
    import torch

    from meshstream.models.synthetic import GroundTruth

    gt = GroundTruth.load(DATA / "sample_gt.npz")
    height = float(body.stature(body.default_shape(1))[0])
    errors, statures = {}, {}
    for name, extra in (("plain", []), ("height", ["--height-m", f"{height:.4f}"])):
        res = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path / name), "-q", "--no-overlay", "--max-frames", "24",
                      "--focal-px", f"{gt.focal_px:.4f}", *extra)
        assert res.returncode == 0, res.stderr
        store = zarr.open_group(str(tmp_path / name / "sample.zarr"), mode="r")
        statures[name] = {k: store[f"tracks/{k}"].attrs["stature_m"] for k in store["tracks"].group_keys()}
        shown = ", ".join(f"{statures[name][k]:.2f}" for k in sorted(statures[name], key=int))
        assert f"2 tracks (standing heights {shown} m)" in res.stdout, res.stdout  # the summary line
        errors[name] = tz_errors(store, gt)
        shapes = {k: torch.as_tensor(store[f"tracks/{k}/shape"][:])[None] for k in statures[name]}
        for k, shape in shapes.items():  # the attribute is the stored shape's height
            assert float(body.stature(shape)[0]) == pytest.approx(statures[name][k], abs=1e-3)
    assert len(statures["height"]) == 2
    for k, s in statures["height"].items():
        measured(f"height_err_t{k}_rel", abs(s / height - 1))
    assert all(abs(s / height - 1) < 0.005 for s in statures["height"].values()), statures  # measured 0.32 %
    assert measured("plain_height_err_max_rel", max(abs(s / height - 1) for s in statures["plain"].values())) > 0.02
    # Measured Tz errors: 0.056 and 0.162 m without it, 0.073 and 0.162 m with it. (Before
    # the landmark term was read in the ray's axes, 0.10 and 0.22 m without it and 0.03
    # and 0.22 m with it: that fix took more of the error away than the size did, and on
    # these 24 frames the size no longer lowers it; track 1's 0.16 m is not its size.)
    tz_plain, tz_height = measured("tz_err_sum_plain_m", sum(errors["plain"])), sum(errors["height"])
    assert tz_plain < 0.33 and measured("tz_err_sum_height_m", tz_height) < 0.36, errors  # measured 0.218 and 0.236
    res = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path / "bad"), "-q", "--height-m", "175")
    assert res.returncode == 2 and "metres, 0.5 to 2.5" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    # 1.0 m is under the adults' range: the bodies start from a child's (Anny's age) and reach it.
    # 2.3 m is over every shape's range: sized to the tallest, with a note.
    high = body.stature_range()[1]
    for name, given, expected in (("child", 1.0, 1.0), ("giant", 2.3, high)):
        res = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path / name), "-q", "--no-overlay", "--max-frames", "8",
                      "--height-m", str(given))
        assert res.returncode == 0, res.stderr
        store = zarr.open_group(str(tmp_path / name / "sample.zarr"), mode="r")
        assert (name == "giant") == any("--height-m 2.3 m is outside" in n for n in store.attrs["notes"])
        got = sorted(store[f"tracks/{k}"].attrs["stature_m"] for k in store["tracks"].group_keys())
        bound = {"child": 0.0085, "giant": 0.03}[name]  # measured 0.56 % and 1.9 %
        assert len(got) == 2 and measured(f"{name}_low_height_err_rel", abs(got[0] / expected - 1)) < bound, (name, got)
        if name == "child":  # Measured 0.99 and 1.21 m (these are adults' landmarks, squeezed in 3 rounds);
            # an adult's base reached no lower than 1.26 m
            assert measured("child_high_height_m", got[1]) < body.stature_range()[0]
        else:  # Measured 2.00 and 2.01 m against the tallest 2.04 m (the box's corner is hard to reach).
            assert measured("giant_high_height_err_rel", abs(got[1] / expected - 1)) < 0.026, got  # measured 1.7 %


def test_a_focal_at_the_search_range_edge_is_reported(tmp_path, measured):
    """A focal search that ends at the edge of ``estimation.fov_range_deg`` (here a
    range that excludes the sample's 70 degrees) finishes the run but says so, on the
    terminal and in the store's notes."""
    res = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path), "-q", "--no-overlay", "--max-frames", "24",
                  "--set", "estimation.fov_range_deg=[100, 120]")
    assert res.returncode == 0, res.stderr
    assert "meshstream: note: shot 0: the focal search ended at the edge of its range" in res.stderr
    assert "give --fov-deg or --focal-px" in res.stderr
    store = zarr.open_group(str(tmp_path / "sample.zarr"), mode="r")
    assert any("edge of its range" in n for n in store.attrs["notes"])
    # the 100 degree end, exactly (measured 1e-5 px)
    assert measured("f_edge_err_px", abs(float(store["camera/focal_px"][0]) - 320 / math.tan(math.radians(50)))) < 0.01
    plain = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path / "plain"), "-q", "--no-overlay", "--max-frames", "24")
    assert plain.returncode == 0 and "edge of its range" not in plain.stderr


def test_a_track_is_stored_with_one_shape_across_chunks(tmp_path, body):
    """Two chunks fit two running shapes; at the end every stored frame is placed with
    the track's final shape (the one the exports use), so bone lengths are constant."""
    from meshstream.models.estimator import BodyEstimator

    res = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path), "-q", "--no-overlay", "--max-frames", "30",
                  "--set", "estimation.chunk_frames=15", "--set", "estimation.focal_min_person_frames=0")
    assert res.returncode == 0, res.stderr
    store = zarr.open_group(str(tmp_path / "sample.zarr"), mode="r")
    assert list(store.attrs["joint_names"]) == list(body.bone_names)
    t = store["tracks/1"]
    joints = t["joints3d"][:]
    assert joints.shape[0] >= 25
    assert t["shape"].shape == (len(store.attrs["shape_names"]),)
    child = np.nonzero(body.bone_parents >= 0)[0]
    length = np.linalg.norm(joints[:, child] - joints[:, body.bone_parents[child]], axis=-1)  # (N, bones)
    assert length.std(0).max() < 1e-4  # metres, every bone, across two chunks
    pelvis, placed, coco = BodyEstimator(body).placer.placement(t["body_pose"][:], t["global_orient"][:], t["transl"][:],
                                                         t["shape"][:])
    assert np.abs(placed - joints).max() < 1e-5
    assert np.abs(pelvis - t["pelvis"][:]).max() < 1e-5 and np.abs(coco - t["keypoints3d_coco17"][:]).max() < 1e-5


def test_zooming_camera_gets_a_focal_that_follows_the_zoom(tmp_path, body, measured):
    import cv2

    from meshstream.models.synthetic import render_frames, write_video

    photo = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    zoom = np.linspace(1.0, 1.35, 30)
    frames, gt = render_frames([PersonSpec((0.0, 4.5), (0.2, 0.0), yaw_deg=20)], fov_deg=60, n_frames=30,
                               background=photo, body=body, zoom=zoom)
    write_video(tmp_path / "zoom.mp4", frames, 25.0)
    res = run_cli(str(tmp_path / "zoom.mp4"), "-o", str(tmp_path), "-q", "--no-overlay")
    assert res.returncode == 0, res.stderr
    store = zarr.open_group(str(tmp_path / "zoom.zarr"), mode="r")
    zoom_read = store["camera/zoom"][:]
    focal = store["camera/focal_px"][:]
    # Measured: the zoom read ends 0.36 % off 1.35, the focal follows it as closely, the first
    # focal is 29 % off (the people's search), and Tz varies by 0.73 % (1.5x bounds, small floors).
    assert measured("zoom_end_err_rel", abs(zoom_read[-1] / 1.35 - 1)) < 0.006
    measured("zoom_step_min", np.diff(zoom_read).min())
    assert np.all(np.diff(zoom_read) > -0.005)  # monotone, as the zoom was
    assert measured("focal_zoom_err_rel", abs((focal[-1] / focal[0]) / 1.35 - 1)) < 0.006
    assert measured("f_err_rel", abs(focal[0] / gt.focal_px - 1)) < 0.44
    # A person standing still in depth keeps a steady Tz although the image grows.
    tz = store["tracks/1/pelvis"][:, 2]
    assert measured("tz_std_rel", tz.std() / tz.mean()) < 0.011


def test_panning_camera_gets_its_focal_from_the_turn(tmp_path, body, measured):
    """A camera turning 10 degrees right and back about its centre (a handheld follow):
    the focal comes from the turn, and the pan is not read as a zoom."""
    import cv2

    photo = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    pan = 10.0 * np.sin(np.linspace(0.0, np.pi, 36))
    gt = render_clip(tmp_path / "pan.mp4", [PersonSpec((-0.4, 3.4), (0.5, 0.0), yaw_deg=80)], fov_deg=70,
                     n_frames=36, background=photo, body=body, pan_deg=pan)
    res = run_cli(str(tmp_path / "pan.mp4"), "-o", str(tmp_path / "turn"), "-q", "--no-overlay")
    assert res.returncode == 0, res.stderr
    assert "estimated from the camera's rotation" in res.stdout
    assert "camera      turned up to 10." in res.stdout or "camera      turned up to 9." in res.stdout, res.stdout
    store = zarr.open_group(str(tmp_path / "turn" / "pan.zarr"), mode="r")
    assert store.attrs["shot_focal_cue"] == ["camera rotation"]
    assert store.attrs["shot_focal_person_frames"] == [0]
    focal = store["camera/focal_px"][:]
    # Measured: focal 1.6 % off; no zoom read (exactly 1; a shot counts as zooming past 3 %).
    assert np.all(focal == focal[0]) and measured("f_err_rel", abs(focal[0] / gt.focal_px - 1)) < 0.024
    assert measured("zoom_dev_max", np.abs(store["camera/zoom"][:] - 1).max()) < 0.005
    assert any("from the camera's rotation" in note for note in store.attrs["notes"])
    tz = tz_errors(store, gt)
    assert len(tz) == 1 and measured("tz_err_m", tz[0]) < 0.07  # metres; measured 0.046
    # The camera's turn per frame (into the first frame's axes), within 0.7 degree (measured 0.45).
    turn = store["camera/rotation"][:].astype(np.float64)
    yaw = np.radians(pan)
    truth = np.stack([[[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]] for a in yaw])
    error = np.degrees(np.arccos(np.clip((np.einsum("nij,nij->n", turn, truth) - 1) / 2, -1, 1)))
    assert measured("turn_err_max_deg", error.max()) < 0.7, error
    # So the walker (0.5 m/s, straight) walks straight in the world's axes, in the store and
    # in the exported animation (measured 15 mm RMS off a line); in the camera's, the 10 degree
    # turn swings the path by 0.18 m (RMS).
    from meshstream.export.animation import track_animation

    rows, pelvis = store["tracks/1/frame_index"][:], store["tracks/1/pelvis"][:].astype(np.float64)
    world = np.einsum("nij,nj->ni", turn[rows], pelvis)
    exported = track_animation(store, 1, body).root_translation
    for label, path, bound in (("world", world, 0.023), ("exported", exported, 0.023), ("camera", pelvis, -0.12)):
        t = np.stack([rows / 25.0, np.ones(len(rows))], 1)
        off_line = path[:, [0, 2]] - t @ np.linalg.lstsq(t, path[:, [0, 2]], rcond=None)[0]
        rms = measured(f"off_line_rms_{label}_m", float(np.sqrt((off_line ** 2).sum(1).mean())))
        assert rms < bound if bound > 0 else rms > -bound, (rms, bound)
    speed = np.linalg.norm(np.polyfit(rows / 25.0, world[:, [0, 2]], 1)[0])
    assert measured("speed_err_m_per_s", abs(speed - 0.5)) < 0.02  # m/s; measured 0.011
    # Seen through the exported camera, the exported joints land where the stored ones
    # project in the video (the camera turns with the pan, the body does not).
    from meshstream.export.animation import camera_animation, level_frame

    frame = level_frame(store)
    camera, joints = camera_animation(store, frame), track_animation(store, 1, body, frame).joint_positions()
    assert len(camera.times) == 36 and np.allclose(camera.position, frame[1])
    local = np.einsum("nji,nkj->nki", camera.rotations[rows], joints - camera.position) * [1.0, -1.0, -1.0]
    f_y = 0.5 * store.attrs["height"] / np.tan(camera.yfov[rows] / 2)[:, None, None]
    seen = f_y * local[..., :2] / local[..., 2:] + store["camera/principal_point"][:]
    stored = store["tracks/1/joints3d"][:].astype(np.float64)
    f = store["camera/focal_px"][:][rows][:, None, None]
    projected = f * stored[..., :2] / stored[..., 2:] + store["camera/principal_point"][:]
    assert measured("reproj_err_max_px", np.abs(seen - projected).max()) < 0.02  # measured 0.008 px

    res = run_cli(str(tmp_path / "pan.mp4"), "-o", str(tmp_path / "people"), "-q", "--no-overlay",
                  "--set", "estimation.rotation_focal=false")
    assert res.returncode == 0, res.stderr
    store = zarr.open_group(str(tmp_path / "people" / "pan.zarr"), mode="r")
    assert store.attrs["shot_focal_cue"] == ["people"] and store.attrs["shot_focal_person_frames"][0] > 0
    assert "person-frames" in res.stdout


def test_a_frame_without_background_gets_its_camera_turn_interpolated(tmp_path, measured):
    """A camera panning 10 degrees over a photo at infinity, its focal given, one frame
    blurred (no features to match): that frame's turn is interpolated between its
    neighbours', the turn goes on after it, and a note says so."""
    import cv2

    photo = cv2.resize(cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB), (1280, 960),
                       interpolation=cv2.INTER_CUBIC)
    f, frames = 420.0, []
    k, photo_inv = np.array([[f, 0, 320], [0, f, 240], [0, 0, 1.0]]), np.linalg.inv([[f, 0, 640], [0, f, 480], [0, 0, 1]])
    pan = np.linspace(0.0, 10.0, 20)
    for i, a in enumerate(np.radians(pan)):
        turn = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
        rgb = cv2.warpPerspective(photo, k @ turn @ photo_inv, (640, 480), borderMode=cv2.BORDER_REFLECT)
        frames.append(cv2.GaussianBlur(rgb, (0, 0), 12) if i == 10 else rgb)
    write_clip(tmp_path / "blur.mp4", frames)
    res = run_cli(str(tmp_path / "blur.mp4"), "-o", str(tmp_path), "-q", "--no-overlay", "--focal-px", "420")
    assert res.returncode == 0, res.stderr
    assert "the camera's turn could not be read in 1 frame (" in res.stderr
    store = zarr.open_group(str(tmp_path / "blur.zarr"), mode="r")
    turn = store["camera/rotation"][:]
    yaw = np.degrees(np.arctan2(turn[:, 0, 2], turn[:, 2, 2]))
    assert (store["frames/shot"][:] == 0).all()
    # measured 0.10; 0.185 on an AVX2-only machine (its warped and blurred frames differ a
    # little), 0.08-0.13 there with 1-DN noise added before encoding
    assert measured("yaw_err_max_deg", np.abs(yaw - pan).max()) < 0.28, yaw


def test_shaking_camera_is_filtered_in_the_world_axes(tmp_path, body, measured):
    """A handheld camera (an 8 degree pan with 1.5 degrees of shake per frame) following a
    walker, its focal given: the temporal filters smooth the body in the world's axes
    (``camera/rotation``), so the shake is not smoothed away as if the body made it.
    Measured acceleration error 6.2 mm/frame², 9.3 with ``filter.world_axes=false``."""
    import cv2

    from meshstream.models.metrics import accel_error

    photo = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    pan = 8.0 * np.sin(np.linspace(0.0, np.pi, 40)) + np.random.default_rng(5).normal(0.0, 1.5, 40)
    gt = render_clip(tmp_path / "shake.mp4", [PersonSpec((-1.2, 3.2), (0.8, 0.0), yaw_deg=80)], fov_deg=70,
                     n_frames=40, background=photo, body=body, pan_deg=pan, crf=20)
    accel = {}
    for axes in ("true", "false"):
        res = run_cli(str(tmp_path / "shake.mp4"), "-o", str(tmp_path / axes), "-q", "--no-overlay",
                      "--focal-px", f"{gt.focal_px:.3f}", "--set", f"filter.world_axes={axes}")
        assert res.returncode == 0, res.stderr
        store = zarr.open_group(str(tmp_path / axes / "shake.zarr"), mode="r")
        assert list(store["tracks"].group_keys()) == ["1"]
        frames = store["frames/frame_index"][:][store["tracks/1/frame_index"][:]]
        assert (np.diff(frames) == 1).all() and measured(f"track_frames_world_axes_{axes}", len(frames)) >= 36
        kp = store["tracks/1/keypoints3d_coco17"][:].astype(np.float64)
        accel[axes] = accel_error(kp, gt.keypoints3d[0, frames]).mean()  # mm/frame²
    assert (measured("accel_world_axes_mm_per_f2", accel["true"]) < 7.5
            and accel["true"] < 0.8 * measured("accel_camera_axes_mm_per_f2", accel["false"])), accel


@dataclass
class _FocalRun:
    """What a run on a rendered clip made of its first shot's focal."""

    stdout: str
    cue: str
    error: float  # |f / f_true - 1|
    tz: list[float]  # mean Tz error per person, metres
    notes: list[str]


def _focal_run(clip, out, gt, *extra: str) -> _FocalRun:
    res = run_cli(str(clip), "-o", str(out), "-q", "--no-overlay", *extra)
    assert res.returncode == 0, res.stderr
    store = zarr.open_group(str(out / f"{clip.stem}.zarr"), mode="r")
    (cue,) = store.attrs["shot_focal_cue"]
    return _FocalRun(res.stdout, cue, abs(store.attrs["shot_focal_px"][0] / gt.focal_px - 1), tz_errors(store, gt),
                     list(store.attrs["notes"]))


def test_camera_looking_down_gets_its_focal_from_the_floor(tmp_path, body, measured):
    """A still camera 3 m up, tilted 25 degrees down at two people walking across the
    floor (a stand, a mast): the focal comes from their floor."""
    import cv2

    photo = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    walkers = [PersonSpec((-1.2, 5.0), (0.6, 0.9), yaw_deg=146.3),
               PersonSpec((1.2, 8.0), (-0.4, -1.0), yaw_deg=-21.8, shirt_rgb=(200, 60, 40))]
    gt = render_clip(tmp_path / "stand.mp4", walkers, fov_deg=70, n_frames=48, background=photo, body=body,
                     pitch_deg=25.0, camera_height_m=3.0)
    floor = _focal_run(tmp_path / "stand.mp4", tmp_path / "floor", gt)
    assert "estimated from the floor under" in floor.stdout
    assert floor.cue == "floor"
    # 14.7 % on this clip since the orientation fix d33d6cb (10.5 % before it; CI measured 15.2 % once: at the
    # bound, a finding to trace, not to widen); BlazePose's torsos put the tilt at 27-28 degrees; the people: 45 %
    assert measured("f_err_rel", floor.error) < 0.15
    assert any("from the floor people walk on (the camera looks 2" in note for note in floor.notes)
    people = _focal_run(tmp_path / "stand.mp4", tmp_path / "people", gt, "--set", "estimation.floor_focal=false")
    assert people.cue == "people"
    assert floor.error < people.error and np.mean(floor.tz) < np.mean(people.tz)


def test_still_camera_in_a_room_gets_its_focal_from_the_lines(tmp_path, body, measured):
    """A level still camera filming a walker in a room it sees toward a corner: the
    floor tiles' and walls' vanishing points give the focal (cue ``lines``), and the
    depth follows; without the cue the people's search sets it. Over the photo (taken by
    another camera, looking up at a building) the lines are not read: their vertical is
    not the people's."""
    from meshstream.models.synthetic import Room

    gt = render_clip(tmp_path / "room.mp4", [PersonSpec((-1.2, 3.2), (0.8, 0.0), yaw_deg=80)], fov_deg=70,
                     n_frames=40, body=body, room=Room(yaw_deg=30.0, seed=3), crf=20)
    lines = _focal_run(tmp_path / "room.mp4", tmp_path / "lines", gt)
    assert "estimated from the scene's straight lines" in lines.stdout
    assert lines.cue == "lines"
    assert measured("f_err_rel", lines.error) < 0.006  # measured 0.37 %
    assert any("from the scene's straight lines (two orthogonal vanishing points" in n for n in lines.notes)
    people = _focal_run(tmp_path / "room.mp4", tmp_path / "people", gt, "--set", "estimation.lines_focal=false")
    assert people.cue == "people"
    assert lines.error < people.error and np.mean(lines.tz) < np.mean(people.tz)


def test_a_backdrop_from_another_camera_does_not_set_the_focal(rendered, tmp_path):
    """The rendered clip's background photo looks up at a building: its lines meet at
    a focal of their own, but their vertical is tens of degrees off the people's up, so
    the people's search keeps the focal."""
    clip, _ = rendered
    res = run_cli(str(clip), "-o", str(tmp_path), "-q", "--no-overlay", "-v")
    assert res.returncode == 0, res.stderr
    assert "the scene's lines give" in res.stderr  # the lines were read ...
    assert zarr.open_group(str(tmp_path / "two.zarr"), mode="r").attrs["shot_focal_cue"] == ["people"]  # ... not used


def test_real_footage_lines_give_a_floor_the_people_agree_on(tmp_path, measured):
    """Real vtest_cut.mp4 (a campus filmed from a building) with the shared floor: the
    buildings' lines set the focal and the floor's normal, and then the three tracks'
    feet agree on the camera's height (no one rescaled by more than 5 %). From the
    people's focal and their bodies' axes they disagreed (x1.53 and x0.78)."""
    res = run_cli(str(DATA / "vtest_cut.mp4"), "-o", str(tmp_path), "-q", "--no-overlay",
                  "--set", "estimation.shared_ground=true")
    assert res.returncode == 0, res.stderr
    attrs = zarr.open_group(str(tmp_path / "vtest_cut.zarr"), mode="r").attrs
    assert attrs["shot_focal_cue"] == ["lines"]
    (floor,) = attrs["shared_ground"]
    assert floor["down_cue"] == "scene lines"
    assert measured("floor_tracks", floor["tracks"]) >= 3
    for k, s in floor["size_scale"].items():
        measured(f"log_scale_t{k}", abs(math.log(s)))
    assert all(abs(math.log(s)) < 0.03 for s in floor["size_scale"].values()), floor  # measured 2.0 % at most
    # Measured 6.6 m (1.65 m from the people alone); no ground truth, so a range about it.
    assert 5.0 < measured("camera_height_m", floor["camera_height_m"]) < 8.5
