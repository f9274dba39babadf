"""Checks that need the ``yolo`` extra (ultralytics, torch 2.14.1 + torchvision 0.29.1).

They run in that extra's own environment: ``.ci/run`` builds it and
``tests/test_yolo.py`` runs this file there (``MESHSTREAM_YOLO_PYTHON``); the default
environment never collects it (``tests/conftest.py``). Offline throughout: the YOLO
networks are built from ultralytics' model yamls (untrained) and saved as .pt files, so
the real loading, inference and tracking code runs without downloading weights.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "sample.mp4"


def _cli(*args, env=None, timeout=600):
    env = dict(os.environ, YOLO_OFFLINE="1", PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run([sys.executable, str(REPO / "process_video.py"), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(REPO))


def _one_line(res):
    lines = [s for s in res.stderr.splitlines() if s.startswith("meshstream:")]
    return len(lines) == 1 and "Traceback" not in res.stderr


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """An untrained YOLO11n pose network and a detect one, built from yaml and saved."""
    from ultralytics import YOLO

    folder = tmp_path_factory.mktemp("weights")
    YOLO("yolo11n-pose.yaml").save(folder / "pose.pt")
    YOLO("yolo11n.yaml").save(folder / "detect.pt")
    return folder


def test_the_pose_model_loads_and_predicts_boxes_and_coco17_keypoints(weights):
    from meshstream.models.yolo_perception import YoloPoseDetector

    det = YoloPoseDetector(str(weights / "pose.pt"), device="cpu", imgsz=320, conf=0.0, max_persons=5)
    rgb = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    boxes, scores, kps = det(rgb)
    assert boxes.shape == (5, 4) and scores.shape == (5,) and kps.shape == (5, 17, 3)
    assert np.all(scores[:-1] >= scores[1:])  # best first
    assert np.all((kps[..., 2] >= 0) & (kps[..., 2] <= 1))


def test_a_run_with_yolo_fits_every_person_it_finds_and_stores_which_evidence_they_got(weights, tmp_path):
    """The CLI end to end on the sample with the untrained network: its boxes are
    arbitrary (confidence 0 lets them through), too small or not people for BlazePose,
    so every person is fitted from the keypoint lifter's pose, and the store says so."""
    import zarr

    res = _cli(str(SAMPLE), "-o", str(tmp_path), "-q", "--no-overlay", "--detector", "yolo", "--weights",
               str(weights / "pose.pt"), "--device", "cpu", "--max-frames", "8", "--set", "yolo.conf=0",
               "--set", "yolo.max_persons=2", "--set", "tracking.high_score=0", "--set", "tracking.low_score=0")
    assert res.returncode == 0, res.stderr
    root = zarr.open_group(str(tmp_path / "sample.zarr"), mode="r")
    assert root.attrs["complete"]
    tracks = [root["tracks"][k] for k in root["tracks"].group_keys()]
    assert len(tracks) >= 1
    for g in tracks:
        assert g["lifted"].shape == g["frame_index"].shape and g["lifted"][:].all()
        assert np.isfinite(g["pelvis"][:]).all()
    config = root.attrs["config"]
    config = json.loads(config) if isinstance(config, str) else config
    assert config["perception"]["detector"] == "yolo" and config["tracking"]["tracker"] == "ours"


@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
def test_ultralytics_trackers_keep_ids_and_continue_them_after_a_reset(kind):
    """Two people walking apart: each keeps one id; a new shot starts new ids above the
    old ones (and above ``first_id``)."""
    from meshstream.stream.messages import Detections, Frame
    from meshstream.tracking.ultralytics_tracker import UltralyticsTracker

    tracker = UltralyticsTracker(kind, first_id=10)
    rgb = np.full((240, 320, 3), 90, np.uint8)
    seen = []
    for i in range(12):
        x = 4.0 * i
        boxes = np.array([[40 + x, 60, 80 + x, 180], [240 - x, 50, 280 - x, 170]], np.float32)
        dets = Detections(boxes, np.array([0.9, 0.8]), np.zeros((2, 17, 3)), "coco17")
        seen.append(tracker(dets, Frame(i, i / 25.0, rgb)).track_id)
    ids = np.array(seen[2:])
    assert (ids[:, 0] == ids[0, 0]).all() and (ids[:, 1] == ids[0, 1]).all() and ids[0, 0] != ids[0, 1]
    assert ids.min() >= 10
    tracker.reset()
    after = [tracker(Detections(np.array([[40, 60, 80, 180]], np.float32), np.array([0.9]), np.zeros((1, 17, 3)),
                                "coco17"), Frame(20 + i, (20 + i) / 25.0, rgb)).track_id[0] for i in range(3)]
    assert after[-1] > ids.max()


def test_the_bytetrack_tracker_runs_a_clip_and_writes_the_same_store(tmp_path):
    import zarr

    res = _cli(str(SAMPLE), "-o", str(tmp_path), "-q", "--no-overlay", "--tracker", "bytetrack", "--max-frames", "20")
    assert res.returncode == 0, res.stderr
    root = zarr.open_group(str(tmp_path / "sample.zarr"), mode="r")
    keys = list(root["tracks"].group_keys())
    assert 1 <= len(keys) <= 3  # the sample's two people (ours finds 2 in these frames)
    g = root["tracks"][keys[0]]
    assert g["pelvis"].shape[0] >= 10 and not g["lifted"][:].any()


def test_bad_weights_give_one_line_and_nothing_is_computed(weights, tmp_path):
    cases = [
        (["--weights", str(tmp_path / "missing.pt")], "no such file"),
        (["--weights", "yolo11s-pose.pt"], "YOLO_OFFLINE"),
        (["--weights", str(weights / "detect.pt")], "a detect model"),
        (["--weights", str(SAMPLE)], "not a YOLO model file"),
        (["--device", "cuda"], "no CUDA"),
    ]
    for extra, needle in cases:
        out = tmp_path / needle.replace(" ", "_")
        args = ["--weights", str(weights / "pose.pt"), *extra] if extra[0] == "--device" else extra
        res = _cli(str(SAMPLE), "-o", str(out), "-q", "--detector", "yolo", *args, timeout=300)
        assert res.returncode == 2 and _one_line(res) and needle in res.stderr, (extra, res.stderr)
        assert not (out / "sample.zarr").exists()
