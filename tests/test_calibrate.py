"""meshstream calibrate: chessboard views rendered with a known camera, OpenCV's own
sample photos against OpenCV's reference calibration, and the file read back by
--intrinsics."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest
import yaml
import zarr
from conftest import DATA, run_cli, write_clip

from meshstream.models.camera import Intrinsics
from meshstream.stream.calibrate import board_views, calibrate, parse_board
from meshstream.stream.errors import InputError
from meshstream.stream.messages import Frame
from meshstream.stream.intrinsics import load_intrinsics

BOARD = (9, 6)
# A camera like the sample clip's (640x480, 70 deg) but with its principal point off
# centre, 3 % taller pixels and barrel distortion.
CAMERA = Intrinsics(457.0, 470.7, 331.0, 229.0, (-0.15, 0.05, 0.001, -0.0005, 0.0), (640, 480))


def render_board(camera: Intrinsics, rvec: np.ndarray, tvec: np.ndarray, board=BOARD, texels: int = 24) -> np.ndarray:
    """(H, W, 3) uint8 view of a chessboard with ``board`` inner corners, one square per
    unit, corner (i, j) at board point (i, j, 0), seen by ``camera`` at pose (rvec,
    tvec) (board to camera, OpenCV). Each pixel is undistorted, cast as a ray and met
    with the board plane."""
    width, height = camera.image_size
    cols, rows = board
    # The texture: (cols + 1) x (rows + 1) squares from -1 to cols / rows, one square of white margin.
    ij = (np.indices(((rows + 3) * texels, (cols + 3) * texels)) + 0.5) / texels - 2.0  # board units, margin -2..
    squares = (np.floor(ij[0]) + np.floor(ij[1])) % 2 == 0
    inside = (ij[1] >= -1) & (ij[1] < cols) & (ij[0] >= -1) & (ij[0] < rows)
    texture = np.where(inside & squares, 25, 235).astype(np.uint8)
    pix = np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1).reshape(-1, 1, 2).astype(np.float64)
    norm = cv2.undistortPoints(pix, camera.matrix, np.asarray(camera.distortion)).reshape(-1, 2)
    r = cv2.Rodrigues(np.asarray(rvec, np.float64))[0]
    h = np.column_stack([r[:, 0], r[:, 1], np.asarray(tvec, np.float64)])
    uvw = np.column_stack([norm, np.ones(len(norm))]) @ np.linalg.inv(h).T
    uv = uvw[:, :2] / uvw[:, 2:]
    map_x = ((uv[:, 0] + 2.0) * texels - 0.5).reshape(height, width).astype(np.float32)
    map_y = ((uv[:, 1] + 2.0) * texels - 0.5).reshape(height, width).astype(np.float32)
    gray = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=150)
    return np.repeat(gray[..., None], 3, axis=2)


def board_poses(camera: Intrinsics, n: int, max_tilt_deg: float, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` poses that keep the whole board (with a margin) inside the frame, tilted
    up to ``max_tilt_deg`` and spread over the frame."""
    rng = np.random.default_rng(seed)
    width, height = camera.image_size
    corners = np.zeros((4, 3))
    corners[:, :2] = [[-1, -1], [BOARD[0], -1], [-1, BOARD[1]], [BOARD[0], BOARD[1]]]
    poses = []
    while len(poses) < n:
        tilt = np.radians(rng.uniform(-max_tilt_deg, max_tilt_deg, 2))
        r = cv2.Rodrigues(np.array([tilt[0], tilt[1], rng.uniform(-0.3, 0.3)]))[0]
        centre = np.array([(BOARD[0] - 1) / 2, (BOARD[1] - 1) / 2, 0.0])
        t = np.array([rng.uniform(-5, 5), rng.uniform(-3.5, 3.5), rng.uniform(13, 20)]) - r @ centre
        rvec = cv2.Rodrigues(r)[0].ravel()
        img, _ = cv2.projectPoints(corners, rvec, t, camera.matrix, np.asarray(camera.distortion))
        img = img.reshape(-1, 2)
        if (img.min(0) > 15).all() and (img[:, 0] < width - 15).all() and (img[:, 1] < height - 15).all():
            poses.append((rvec, t))
    return poses


def test_parse_board_rejects_what_opencv_cannot_use():
    assert parse_board("9x6") == (9, 6) and parse_board("7X5") == (7, 5)
    for text, words in (("9", "COLSxROWS"), ("ax6", "COLSxROWS"), ("2x6", "at least 3"), ("7x7", "differ")):
        with pytest.raises(InputError, match=words):
            parse_board(text)


@pytest.mark.slow
def test_rendered_views_give_back_the_camera(tmp_path, measured):
    """14 rendered views, each held for two frames: the calibration recovers the focal
    to 0.2 %, the principal point to 1 px and the lens model to 0.75 px where the
    board was seen, and the still frames are not counted as views."""
    poses = board_poses(CAMERA, 14, 40.0)
    frames = [render_board(CAMERA, *pose) for pose in poses for _ in range(2)]
    clip = write_clip(tmp_path / "board.mp4", frames, fps=5.0)
    out = tmp_path / "camera.yaml"
    proc = run_cli("calibrate", str(clip), "--board", "9x6", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr, proc.stderr
    doc = yaml.safe_load(out.read_text())
    assert doc["views"] == 14, doc["frames"]  # the second frame of each pose adds nothing
    # Measured: RMS 0.083 px, fx and fy 0.07 % and 0.04 % off, centre 0.14 and 0.18 px off,
    # rays 0.45 px apart at most, fx's standard error 0.30 px.
    assert measured("rms_px", doc["rms_px"]) < 0.125
    got = load_intrinsics(out, 640, 480)
    assert got.image_size == (640, 480)
    measured("fx_rel_err", abs(got.fx / CAMERA.fx - 1))
    measured("fy_rel_err", abs(got.fy / CAMERA.fy - 1))
    assert got.fx == pytest.approx(CAMERA.fx, rel=1e-3) and got.fy == pytest.approx(CAMERA.fy, rel=1e-3)
    assert measured("cx_err_px", abs(got.cx - CAMERA.cx)) < 0.3 and measured("cy_err_px", abs(got.cy - CAMERA.cy)) < 0.3
    # Distortion: where a pixel's ray points, by the truth and by the fit (in pixels at
    # fx), over the pixels the board covered (squares' corners of every view).
    grid = np.zeros(((BOARD[0] + 1) * (BOARD[1] + 1), 3))
    grid[:, :2] = np.mgrid[-1:BOARD[0], -1:BOARD[1]].T.reshape(-1, 2)
    pix = np.concatenate([cv2.projectPoints(grid, *pose, CAMERA.matrix, np.asarray(CAMERA.distortion))[0]
                          for pose in poses])
    rays = [cv2.undistortPoints(pix, c.matrix, np.asarray(c.distortion)).reshape(-1, 2) for c in (CAMERA, got)]
    assert measured("ray_diff_px", np.abs(rays[0] - rays[1]).max() * CAMERA.fx) < 0.67
    assert measured("fx_std_px", float(doc["std_px"]["fx"])) < 0.45
    assert "horizontal FOV" in proc.stdout and f"--intrinsics {out}" in proc.stdout


def test_a_board_that_never_tilts_gets_a_warning(tmp_path):
    """Facing the camera in every view, a board fixes the focal poorly: the file is
    written, and the run says why not to trust it."""
    frames = [render_board(CAMERA, *pose) for pose in board_poses(CAMERA, 8, 6.0, seed=1)]
    views, scanned = board_views((Frame(i, i / 5, f) for i, f in enumerate(frames)), BOARD)
    assert scanned == 8 and len(views) == 8
    cal = calibrate(views, (640, 480), BOARD, scanned)
    assert cal.tilt_deg.max() < 9.0
    assert any("never tilted" in w for w in cal.warnings())
    tilted = [render_board(CAMERA, *pose) for pose in board_poses(CAMERA, 8, 40.0, seed=1)]
    views, _ = board_views((Frame(i, i / 5, f) for i, f in enumerate(tilted)), BOARD)
    good = calibrate(views, (640, 480), BOARD)
    assert good.tilt_deg.max() > 25.0 and good.warnings() == [], good.warnings()
    narrow = replace(good, coverage=np.array([0.3, 0.9]), rms_px=1.5)
    assert [w.split(" ")[:3] for w in narrow.warnings()] == [["the", "reprojection", "error"], ["the", "board", "covered"]]


@pytest.mark.slow
def test_opencv_sample_photos_match_opencvs_reference(tmp_path, measured):
    """Real photos: OpenCV's left01-14.jpg (a 9x6 board, 640x480; left10 does not exist),
    whose reference calibration OpenCV ships as left_intrinsics.yml (fx = fy = 535.9 px,
    principal point (342.3, 235.6), RMS 0.39 px; fitted with fx = fy). The tool reads
    the image folder, as a user's folder of photos."""
    out = tmp_path / "left.yaml"
    proc = run_cli("calibrate", str(DATA / "chessboard"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(out.read_text())
    # Against OpenCV's reference calibration of the same photos (535.9 px, (342.3, 235.6),
    # RMS 0.39 px, k1 -0.27), measured: RMS 0.18 px, fx and fy 0.53 % and 0.52 % off,
    # centre 0.13 and 1.55 px off, k1 -0.28.
    assert doc["views"] == 13 and measured("rms_px", doc["rms_px"]) < 0.27
    measured("fx_rel_err", abs(doc["fx"] / 535.9 - 1))
    measured("fy_rel_err", abs(doc["fy"] / 535.9 - 1))
    assert doc["fx"] == pytest.approx(535.9, rel=0.008) and doc["fy"] == pytest.approx(535.9, rel=0.008)
    assert measured("cx_err_px", abs(doc["cx"] - 342.3)) < 2.3 and measured("cy_err_px", abs(doc["cy"] - 235.6)) < 2.3
    assert measured("k1", doc["distortion"][0]) < -0.25  # strong barrel distortion


@pytest.mark.slow
def test_no_board_is_one_line_and_no_file(tmp_path):
    out = tmp_path / "k.yaml"
    proc = run_cli("calibrate", str(DATA / "sample.mp4"), "-o", str(out), "--every", "15")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "found the 9x6 board in 0 distinct view(s) of 5 frames" in proc.stderr
    assert not out.exists()
    proc = run_cli("calibrate", str(DATA / "sample.mp4"), "--board", "8x8")
    assert proc.returncode == 2 and "differ" in proc.stderr and proc.stderr.strip().count("\n") == 0
    proc = run_cli("calibrate", str(DATA / "sample.mp4"), "-o", str(tmp_path / "no" / "k.yaml"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr


@pytest.mark.slow
def test_calibrated_file_drives_a_run(tmp_path, measured):
    """The workflow end to end: calibrate on a rendered board seen by the sample clip's
    camera (640x480, 457 px), then run the sample with the file: the run takes the
    calibrated focal as given."""
    camera = Intrinsics(457.0, 457.0, 320.0, 240.0, (), (640, 480))
    frames = [render_board(camera, *pose) for pose in board_poses(camera, 12, 40.0, seed=2)]
    clip = write_clip(tmp_path / "board.mp4", frames, fps=5.0)
    out = tmp_path / "camera.yaml"
    assert run_cli("calibrate", str(clip), "-o", str(out)).returncode == 0
    proc = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path / "run"), "-q", "--no-overlay", "--max-frames", "4",
                   "--intrinsics", str(out))
    assert proc.returncode == 0, proc.stderr
    store = zarr.open_group(str(tmp_path / "run" / "sample.zarr"), mode="r")
    focal = float(store["camera/focal_px"][0])
    measured("focal_rel_err", abs(focal / 457.0 - 1))
    assert focal == pytest.approx(457.0, rel=5e-4)  # measured 0.033 %
    assert math.isclose(focal, yaml.safe_load(out.read_text())["fx"], rel_tol=1e-6)
