"""The YOLO detector and ultralytics' trackers (``--detector yolo``, ``--tracker
bytetrack|botsort``): how YOLO's people become detections the estimator can fit, what the
default install says when the extra is missing, and the extra's own checks, which run in
its own environment (``tests/yolo_env``, ``MESHSTREAM_YOLO_PYTHON``, built by ``.ci/run``)."""

import importlib.util
import os
import subprocess

import numpy as np
import pytest

from conftest import DATA, REPO, run_cli
from meshstream.models.keypoints import BLAZEPOSE33_NAMES, COCO17_NAMES
from meshstream.models.lifter import KEYPOINT_WEIGHTS, LandmarkLifter
from meshstream.models.yolo_perception import YoloPerceiver
from meshstream.stream.messages import Detections

_BLAZE_OF_COCO = [BLAZEPOSE33_NAMES.index(n) for n in COCO17_NAMES]


def _standing(x: float, top: float, height: float) -> np.ndarray:
    """(17, 3) COCO-17 keypoints of a person facing the camera, ``height`` px tall."""
    u = np.array([0, -.03, .03, -.06, .06, -.12, .12, -.15, .15, -.16, .16, -.08, .08, -.08, .08, -.08, .08])
    v = np.array([.06, .04, .04, .05, .05, .18, .18, .33, .33, .47, .47, .52, .52, .74, .74, .95, .95])
    return np.stack([x + u * height, top + v * height, np.full(17, 0.9)], 1).astype(np.float32)


class _Landmarker:
    """BlazePose on a crop, stood in for: finds the person whose torso is given."""

    def __init__(self, kps17: np.ndarray) -> None:
        self.kps17, self.calls = kps17, 0

    def __call__(self, rgb, box):
        self.calls += 1
        kp = np.zeros((1, 33, 3), np.float32)
        kp[0, _BLAZE_OF_COCO] = self.kps17
        return Detections(box[None], [0.9], kp, "blazepose33", landmarks3d=np.full((1, 33, 3), 0.5, np.float32))


def test_tall_people_get_blazepose_landmarks_and_small_ones_the_keypoint_lifter_pose():
    tall, small = _standing(200, 40, 300), _standing(500, 300, 50)
    boxes = np.array([[140, 30, 260, 345], [485, 298, 515, 350]], np.float32)
    landmarker = _Landmarker(tall)
    perceiver = YoloPerceiver(None, landmarker, LandmarkLifter.load(KEYPOINT_WEIGHTS), landmarks_min_px=100)
    dets = perceiver.assemble(np.zeros((480, 640, 3), np.uint8), boxes, np.array([0.9, 0.7]), np.stack([tall, small]))
    assert dets.keypoint_layout == "blazepose33" and len(dets) == 2 and landmarker.calls == 1
    assert dets.lifted.tolist() == [False, True]
    np.testing.assert_allclose(dets.landmarks3d[0], 0.5)  # BlazePose's, as found in the crop
    np.testing.assert_allclose(dets.keypoints[1, _BLAZE_OF_COCO], small)  # YOLO's 2D keypoints where BlazePose has them
    lm = dets.landmarks3d[1]
    hips = 0.5 * (lm[23] + lm[24])
    np.testing.assert_allclose(hips, 0.0, atol=1e-6)  # hip-centred metres
    assert lm[0, 1] < -0.4 and lm[27, 1] > 0.6 and lm[28, 1] > 0.6  # head up, ankles down (y down)
    assert 0.15 < abs(lm[11, 0] - lm[12, 0]) < 0.6  # shoulders apart


def test_a_crop_that_shows_someone_else_falls_back_to_the_keypoint_lifter():
    tall = _standing(200, 40, 300)
    landmarker = _Landmarker(_standing(400, 40, 300))  # the neighbour in front
    perceiver = YoloPerceiver(None, landmarker, LandmarkLifter.load(KEYPOINT_WEIGHTS))
    dets = perceiver.assemble(np.zeros((480, 640, 3), np.uint8), np.array([[140, 30, 260, 345]], np.float32),
                              np.array([0.9]), tall[None])
    assert landmarker.calls == 1 and dets.lifted.tolist() == [True]
    with pytest.raises(ValueError, match="keypoint lifter"):
        YoloPerceiver(None, None, LandmarkLifter.load())


def test_detections_carry_which_evidence_through_selection_and_joining():
    a = Detections(np.zeros((2, 4)), [0.9, 0.8], np.zeros((2, 17, 3)), "coco17", lifted=[True, False])
    b = Detections(np.zeros((1, 4)), [0.5], np.zeros((1, 17, 3)), "coco17")
    assert a[1].lifted.tolist() == [False] and b.lifted.tolist() == [False]
    assert Detections.concatenate([a, b]).lifted.tolist() == [True, False, False]


@pytest.mark.parametrize("flags, needle", [
    (["--detector", "yolo"], "pip install -e '.[yolo]'"),
    (["--tracker", "bytetrack"], "pip install -e '.[yolo]'"),
    (["--weights", "yolo11n-pose.pt"], "add --detector yolo"),
    (["--set", "perception.detector=openpose"], "must be mediapipe or yolo"),
])
def test_the_default_install_says_what_the_yolo_extra_needs_in_one_line(flags, needle, tmp_path):
    assert importlib.util.find_spec("ultralytics") is None, "checks the default install, without the yolo extra"
    res = run_cli(str(DATA / "sample.mp4"), "-o", str(tmp_path), "-q", *flags, timeout=300)
    lines = [s for s in res.stderr.splitlines() if s.startswith("meshstream:")]
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "sample.zarr").exists()


@pytest.mark.slow
def test_the_yolo_extra_passes_its_checks_in_its_own_environment():
    """``tests/yolo_env`` in the extra's environment (ultralytics, torch 2.14.1 +
    torchvision 0.29.1); skipped, not passed, where it is absent (CI builds it)."""
    python = os.environ.get("MESHSTREAM_YOLO_PYTHON")
    if not python:
        pytest.skip("the yolo extra's environment is not configured (MESHSTREAM_YOLO_PYTHON)")
    res = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(REPO / "tests" / "yolo_env")],
                         capture_output=True, text=True, timeout=1800, cwd=str(REPO),
                         env=dict(os.environ, MESHSTREAM_IN_YOLO_ENV="1"))
    tail = res.stdout[-3000:]
    assert res.returncode == 0, tail + res.stderr[-2000:]
    assert "6 passed" in tail and "skipped" not in tail, tail
