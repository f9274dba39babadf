"""Body model layer, keypoint layouts, the MediaPipe bundle and perception on real and rendered frames."""

import zipfile

import numpy as np
import pytest
import torch

from conftest import DATA
from meshstream.models.body import FIT_BONES, MODEL_TO_UPRIGHT_FACING_CAMERA
from meshstream.models.detections import box_iou
from meshstream.stream.messages import Detections
from meshstream.models.keypoints import BLAZEPOSE33_NAMES, COCO23_NAMES, blazepose33_to_coco23
from meshstream.models.mediapipe_bundle import pose_landmarker_bundle


def test_keypoint_skinning_equals_mesh_regression(body):
    g = torch.Generator().manual_seed(0)
    shape = body.default_shape(3)
    shape[1, body.shape_names.index("height")] = 0.9
    shape[2, body.shape_names.index("age")] = 0.2
    rest = body.rest(shape)
    pose = torch.zeros(3, body.num_bones, 3)
    pose[:, body.fit_bone_index] = 0.3 * torch.randn(3, len(FIT_BONES), 3, generator=g)
    kp, joints = body.skeleton(pose, rest)
    verts = body.vertices(pose, rest)
    kp_mesh = torch.einsum("kv,bvd->bkd", body.keypoint_weights, verts)
    assert kp.shape == (3, 23, 3) and joints.shape == (3, body.num_bones, 3)
    assert torch.allclose(kp, kp_mesh, atol=1e-5)


def test_rest_body_is_metric_and_upright(body):
    rest = body.rest(body.default_shape(1))
    verts = body.vertices(torch.zeros(1, body.num_bones, 3), rest)[0].numpy()
    cam = verts @ MODEL_TO_UPRIGHT_FACING_CAMERA.T
    height = cam[:, 1].max() - cam[:, 1].min()
    assert 1.4 < height < 1.9  # metres
    kp, _ = body.skeleton(torch.zeros(1, body.num_bones, 3), rest)
    kp = kp[0].numpy() @ MODEL_TO_UPRIGHT_FACING_CAMERA.T
    nose, l_ankle = kp[COCO23_NAMES.index("nose")], kp[COCO23_NAMES.index("left_ankle")]
    assert nose[1] < l_ankle[1]  # head above feet: y down
    assert kp[COCO23_NAMES.index("left_shoulder"), 0] > kp[COCO23_NAMES.index("right_shoulder"), 0]  # facing camera


def test_stature_is_the_rest_bodys_standing_height(body):
    """``BodyModel.stature``: the rest mesh's vertical extent, growing with Anny's height
    phenotype and small for a child."""
    shapes = body.default_shape(3)
    shapes[1, body.shape_names.index("height")] = 0.8
    shapes[2, body.shape_names.index("age")] = 0.2
    stature = body.stature(shapes).numpy()
    verts = body.vertices(torch.zeros(1, body.num_bones, 3), body.rest(shapes[:1]))[0].numpy()
    cam = verts @ MODEL_TO_UPRIGHT_FACING_CAMERA.T
    assert stature[0] == pytest.approx(cam[:, 1].max() - cam[:, 1].min(), abs=1e-5)
    assert 1.5 < stature[0] < 1.8 and stature[1] > stature[0] + 0.2 and stature[2] < stature[0] - 0.3
    # What the fitted shapes (age and muscle held) reach: the tall body, not the child.
    low, high = body.stature_range()
    assert low < stature[0] < high and high > stature[1] and low > stature[2]


def test_a_childs_height_gets_a_childs_base_shape(body, measured):
    """Under the adults' fitted range, ``shape_for_stature`` picks Anny's age so that the
    average body has the height, and a linear rest model built around that child stays
    exact near it (the adult-centred one is off by 8 cm there)."""
    from meshstream.models.body import LinearRest

    assert body.shape_for_stature(1.7) is None  # adults: the fitted shapes reach it
    child = body.shape_for_stature(1.11)
    assert float(body.stature(child)[0]) == pytest.approx(1.11, abs=0.005)
    assert child[0, body.shape_names.index("age")] < 0.3
    assert body.stature_range(child)[0] < 1.11 < body.stature_range(child)[1]
    near = child.clone()
    near[0, body.shape_names.index("height")] = 0.3
    zero = torch.zeros(1, body.num_bones, 3)
    exact = body.skeleton(zero, body.rest(near))[0]
    around_child = body.skeleton(zero, LinearRest(body, base_shape=child)(near))[0]
    around_adult = body.skeleton(zero, body.linear_rest()(near))[0]
    # Metres; measured 1.2 mm around the child's base, 50 mm around the adult's.
    assert measured("child_rest_err_max_m", (exact - around_child).norm(dim=-1).max()) < 0.002
    assert measured("adult_rest_err_max_m", (exact - around_adult).norm(dim=-1).max()) > 0.033


def test_blazepose_to_coco23_mapping():
    pts = np.arange(33 * 3, dtype=np.float32).reshape(33, 3)
    out = blazepose33_to_coco23(pts)
    assert out.shape == (23, 3)
    for i, name in enumerate(COCO23_NAMES):
        if "small_toe" in name:
            assert np.all(out[i] == 0)
        elif "big_toe" in name:
            assert np.array_equal(out[i], pts[BLAZEPOSE33_NAMES.index(name.replace("big_toe", "foot_index"))])
        else:
            assert np.array_equal(out[i], pts[BLAZEPOSE33_NAMES.index(name)])


def test_detections_container_validates_and_indexes():
    d = Detections(xyxy=np.zeros((3, 4)), score=[0.1, 0.9, 0.5], keypoints=np.zeros((3, 33, 3)),
                   keypoint_layout="blazepose33")
    assert len(d[d.score > 0.4]) == 2 and d.track_id.tolist() == [-1, -1, -1]
    try:
        Detections(xyxy=np.zeros((2, 4)), score=[1, 1], keypoints=np.zeros((2, 17, 3)), keypoint_layout="blazepose33")
    except ValueError as exc:
        assert "cannot reshape" in str(exc) or "shape" in str(exc)
    else:
        raise AssertionError("wrong keypoint count accepted")
    assert np.isclose(box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3]])[0, 0], 1 / 7)


def test_bundle_is_built_offline_from_wheel_files(tmp_path):
    path = pose_landmarker_bundle(tmp_path)
    assert path.parent == tmp_path and path.suffix == ".task"
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["pose_detector.tflite", "pose_landmarks_detector.tflite"]
    assert pose_landmarker_bundle(tmp_path) == path  # cached


@pytest.mark.slow
def test_perception_finds_rendered_people_at_their_true_keypoints(tmp_path, body, measured):
    from meshstream.models.perception import PersonPerceiver
    from meshstream.models.synthetic import PersonSpec, render_clip
    from meshstream.stream.sources import open_source

    gt = render_clip(tmp_path / "two.mp4", [PersonSpec((-0.7, 3.0)), PersonSpec((0.8, 3.5), motion="arms")],
                     n_frames=4, fov_deg=65, body=body)
    perceiver = PersonPerceiver(cache_dir=str(tmp_path))
    for frame in open_source(str(tmp_path / "two.mp4")):
        dets = perceiver(frame)
        assert len(dets) == 2
        assert dets.masks is not None and dets.masks.shape == (2, 480, 640) and dets.masks.any(axis=(1, 2)).all()
        hips = 0.5 * (dets.keypoints[:, 23, :2] + dets.keypoints[:, 24, :2])
        truth = 0.5 * (gt.keypoints2d[:, frame.index, 11] + gt.keypoints2d[:, frame.index, 12])
        dist = np.linalg.norm(hips[:, None] - truth[None], axis=-1)
        assert measured(f"hip_err_max_f{frame.index}_px", dist.min(1).max()) < 4.6  # pixels; measured 1.7-3.0
        lm = dets.landmarks3d
        # hip-centred, metres
        assert measured(f"hip_centre_max_f{frame.index}_m", np.abs(0.5 * (lm[:, 23] + lm[:, 24])).max()) < 0.002
    perceiver.close()


def test_perception_finds_small_real_pedestrians():
    from meshstream.models.perception import PersonPerceiver
    from meshstream.stream.sources import open_source

    perceiver = PersonPerceiver()
    counts = [len(perceiver(f)) for f in open_source(str(DATA / "vtest_cut.mp4"), max_frames=10)]
    perceiver.close()
    assert min(counts) >= 1 and max(counts) >= 2


def test_a_frame_where_nobody_is_seen_is_searched_between_search_frames():
    """Sample frames 19 and 38-41: MediaPipe's whole-frame detector finds nobody (on each,
    after a search frame on black). They are searched at once (HOG and crops) rather
    than left empty until the next ``detect_every``-th frame: a live run (which searches
    every 30th frame) started there showed nobody for seconds."""
    from meshstream.models.perception import PersonPerceiver
    from meshstream.stream.messages import Frame
    from meshstream.stream.sources import open_source

    frames = {f.index: f for f in open_source(str(DATA / "sample.mp4")) if f.index in (19, 38, 39, 40, 41)}
    found = []
    for k, f in frames.items():
        perceiver = PersonPerceiver(detect_every=30, masks=False)
        perceiver(Frame(0, 0.0, np.zeros_like(f.rgb)))
        found.append(len(perceiver(Frame(k, 1.0, f.rgb))))
        perceiver.close()
    assert min(found) >= 1, found  # 2, 2, 2, 1, 1 today (0 everywhere before)


def test_hog_accepts_frames_smaller_than_its_window():
    from meshstream.models.perception import HogPeopleDetector

    boxes, scores = HogPeopleDetector()(np.zeros((96, 60, 3), np.uint8))  # OpenCV alone segfaults here
    assert boxes.shape[1] == 4 and len(boxes) == len(scores)


def test_ground_truth_matches_boxes_to_the_most_overlapping_person():
    from meshstream.models.synthetic import GroundTruth

    boxes = np.full((2, 2, 4), np.nan)
    boxes[0, 0] = [0, 0, 100, 200]
    boxes[1, 0] = [80, 0, 180, 200]
    boxes[1, 1] = [300, 100, 340, 180]  # person 0 is out of frame 1
    z = np.zeros((2, 2, 3))
    gt = GroundTruth(500.0, np.array([320.0, 240.0]), 640, 480, 25.0, z, np.zeros((2, 2, 17, 3)),
                     np.zeros((2, 2, 17, 2)), np.ones((2, 2), bool), boxes=boxes)
    found = np.array([[5, 0, 100, 190], [90, 0, 185, 200], [0, 0, 100, 200], [300, 100, 340, 180], [600, 0, 640, 50]])
    person = gt.match(np.array([0, 0, 1, 1, 1]), found)
    np.testing.assert_array_equal(person, [0, 1, -1, 1, -1])


@pytest.mark.slow
def test_tiles_find_people_of_a_wide_shot_that_the_whole_frame_misses(body, measured):
    """Three frames of a rendered wide shot (``wide_scene``, development seed 995000: 11
    players 30-150 px tall at 1280x720): the whole-frame landmarker finds none of the
    people at least 60 px tall (44 person-frames); with tiles of 240 px and up, three in
    four."""
    from meshstream.models.detections import box_iou
    from meshstream.models.perception import PersonPerceiver
    from meshstream.models.synthetic import render_frames
    from meshstream.models.synthetic_scenes import wide_scene
    from meshstream.stream.messages import Frame

    scene = wide_scene(995_000, n_frames=3)
    scene.pop("crf")
    frames, gt = render_frames(body=body, **scene)
    height = np.nan_to_num(gt.boxes[..., 3] - gt.boxes[..., 1])
    counted = (gt.visibility >= 0.5) & (height >= 60)
    found = {}
    for tile in (0, 240):
        perceiver = PersonPerceiver(tile_px=tile, detect_every=1, masks=False)
        hits = 0
        for t, rgb in enumerate(frames):
            dets = perceiver(Frame(t, t / gt.fps, rgb))
            if len(dets) and counted[:, t].any():
                hits += int((box_iou(gt.boxes[counted[:, t], t], dets.xyxy).max(1) >= 0.5).sum())
        perceiver.close()
        found[tile] = hits / counted.sum()
    assert counted.sum() >= 15
    assert measured("recall_whole_frame", found[0]) <= 0.1  # measured 0.0
    assert measured("recall_tiles_240", found[240]) >= 0.5  # measured 0.75
