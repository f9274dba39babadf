"""Left and right kept true to each track's facing (tracking/sides.py): the rules on
synthetic tracks, and the CLI on a rendered walker whom BlazePose reads as facing the
camera."""

import math

import numpy as np
import pytest
import zarr

from conftest import run_cli
from meshstream.models.keypoints import LAYOUTS, mirror_index
from meshstream.stream.messages import Detections
from meshstream.tracking.sides import SideKeeper, exchange_sides, facing

NAMES = LAYOUTS["coco17"]
FPS = 25.0


def _person(turn: float, x0: float = 300.0, scale: float = 1.0) -> np.ndarray:
    """(17, 3) COCO-17 keypoints of an upright person turned ``turn`` (1: facing the
    camera, -1: away, 0: side-on) at column ``x0``: torso 100 px, shoulders 50 px and hips
    36 px wide when square on (``facing`` 0.43 at ``turn`` 1), all times ``scale``."""
    kp = np.zeros((17, 3), np.float32)
    kp[:, 2] = 0.9
    for name, x, y in (("nose", 0, -130), ("left_eye", 8, -138), ("right_eye", -8, -138), ("left_ear", 14, -134),
                       ("right_ear", -14, -134), ("left_shoulder", 25, -100), ("right_shoulder", -25, -100),
                       ("left_elbow", 30, -55), ("right_elbow", -30, -55), ("left_wrist", 32, -10),
                       ("right_wrist", -32, -10), ("left_hip", 18, 0), ("right_hip", -18, 0), ("left_knee", 18, 80),
                       ("right_knee", -18, 80), ("left_ankle", 18, 160), ("right_ankle", -18, 160)):
        kp[NAMES.index(name), :2] = (x0 + turn * x * scale, 300 + y * scale)
    return kp


def _run(keeper: SideKeeper, turns: list[float], track: int = 1, shrink_per_s: float = 0.0) -> list[bool]:
    """Feeds one track's frames (``turns`` as the labels say; the person's image shrinking
    by ``shrink_per_s``, log units a second) and returns which the keeper exchanged."""
    out = []
    for i, t in enumerate(turns):
        kp = _person(t, scale=math.exp(-shrink_per_s * i / FPS))[None]
        lm = np.linspace(-0.5, 0.5, 51, dtype=np.float32).reshape(1, 17, 3)
        dets = Detections(xyxy=np.array([[250, 150, 350, 470]]), score=np.ones(1), keypoints=kp,
                          keypoint_layout="coco17", landmarks3d=lm, track_id=np.array([track]))
        res = keeper(dets, i / FPS)
        changed = bool((res.keypoints != kp).any())
        if changed:
            expect_kp, expect_lm = exchange_sides(kp, lm, mirror_index("coco17"))
            assert np.array_equal(res.keypoints, expect_kp) and np.array_equal(res.landmarks3d, expect_lm)
        out.append(changed)
    return out


def test_mirror_index_pairs_the_sides_and_keeps_the_midline():
    for layout in ("coco17", "coco23", "blazepose33"):
        names, mirror = LAYOUTS[layout], mirror_index(layout)
        assert np.array_equal(mirror[mirror], np.arange(len(names)))
        assert names[mirror[names.index("left_shoulder")]] == "right_shoulder"
        assert mirror[names.index("nose")] == names.index("nose")
    lm = np.arange(51, dtype=np.float32).reshape(17, 3)
    _, swapped = exchange_sides(np.zeros((17, 3)), lm, mirror_index("coco17"))
    assert np.array_equal(swapped[5], [18.0, 19.0, -20.0])  # the right shoulder's point, its depth negated


def test_swapped_sides_are_told_from_the_true_projections():
    from meshstream.models.metrics import sides_swapped

    truth = _person(1.0)[None]
    exchanged, _ = exchange_sides(truth, None, mirror_index("coco17"))
    assert sides_swapped(np.concatenate([truth, exchanged]), np.concatenate([truth, truth])[..., :2]).tolist() \
        == [False, True]


def test_facing_reads_the_labels_and_skips_an_unseen_torso():
    kp = np.stack([_person(1.0), _person(-1.0), _person(0.0), _person(1.0)])
    kp[3, NAMES.index("left_hip"), 2] = 0.1
    f, length = facing(kp, (5, 6, 11, 12), 0.5)
    assert f[0] == pytest.approx(0.43) and f[1] == pytest.approx(-0.43) and f[2] == 0.0 and np.isnan(f[3])
    assert length[0] == pytest.approx(100.0) and np.isnan(length[3])


def test_a_run_of_fronts_inside_a_walk_away_is_exchanged():
    """Away for 5 frames, the labels flip to facing the camera for 8, then away again:
    the 8 are exchanged, nothing else."""
    turns = [-1.0] * 5 + [1.0] * 8 + [-1.0] * 4
    assert _run(SideKeeper(), turns) == [False] * 5 + [True] * 8 + [False] * 4


def test_a_second_run_of_fronts_soon_after_the_first_is_exchanged_for_a_walker_moving_away():
    """Away for 3 frames, a run of 11 read as facing the camera, away for 3, then 3 more.
    For a person moving away both runs are exchanged (a walker faces the way they go).
    Judged by the count of the last second (11 fronts against 6 backs) the second run
    stood, as on close validation scene 940009's walker. For a person who stands still
    the count decides, so a first exchange, had it been wrong, does not carry the next."""
    turns = [-1.0] * 3 + [1.0] * 11 + [-1.0] * 3 + [1.0] * 3
    assert _run(SideKeeper(), turns, shrink_per_s=0.3) == [False] * 3 + [True] * 11 + [False] * 3 + [True] * 3
    assert _run(SideKeeper(), turns) == [False] * 3 + [True] * 11 + [False] * 6


def test_a_walker_read_from_the_front_in_most_frames_is_turned_at_the_first_back():
    """Read as facing the camera for 14 frames, from behind for one, then from the front
    for 8: for a person moving away the 8 are exchanged, although the labels of the last
    second say "toward" 14 to 1 (BlazePose reads some walkers' backs as fronts most of
    the time: 940009 on renders with 1-DN noise, 59-67 % of frames). Standing still, the
    one back frame is BlazePose's error and nothing is exchanged."""
    turns = [1.0] * 14 + [-1.0] + [1.0] * 8
    assert _run(SideKeeper(), turns, shrink_per_s=0.3) == [False] * 15 + [True] * 8
    assert not any(_run(SideKeeper(), turns))


def test_a_front_with_one_back_frame_a_real_turn_and_a_late_flip_are_left_alone():
    # A person facing the camera whom one frame reads from behind (BlazePose does that too).
    assert not any(_run(SideKeeper(), [1.0] * 8 + [-1.0] + [1.0] * 8))
    # A real turn from the back to the front passes side-on over a few frames.
    assert not any(_run(SideKeeper(), [-1.0] * 6 + list(np.linspace(-1.0, 1.0, 12)) + [1.0] * 6))
    # A flip that comes after a gap longer than max_gap_s (0.15 s): not seen as one.
    keeper = SideKeeper()
    _run(keeper, [-1.0] * 6)
    kp = _person(1.0)[None]
    res = keeper(Detections(xyxy=np.array([[250, 150, 350, 470]]), score=np.ones(1), keypoints=kp,
                            keypoint_layout="coco17", track_id=np.array([1])), 5 / FPS + 0.3)
    assert np.array_equal(res.keypoints, kp)


def test_labels_that_flicker_are_exchanged_only_for_someone_moving_away():
    """Labels that flip back and forth (BlazePose on a person raising their arms) and then
    say "away" for a while: the next "toward" is a swap only if the person recedes."""
    turns = [1.0, 1.0, -1.0, 1.0, -1.0] + [-1.0] * 12 + [1.0] * 3
    assert not any(_run(SideKeeper(), turns))  # standing still: left alone
    assert _run(SideKeeper(), turns, shrink_per_s=0.3)[-3:] == [True] * 3  # walking away (0.3 a second)


def test_tracks_are_kept_apart_and_a_new_shot_forgets_them():
    keeper = SideKeeper()
    _run(keeper, [-1.0] * 5, track=1)
    assert _run(keeper, [1.0] * 3, track=2) == [False] * 3  # another track's back says nothing
    keeper.reset()
    assert not any(_run(keeper, [1.0] * 3, track=1))
    assert keeper.exchanged_frames == 0


@pytest.mark.slow
def test_a_walker_read_as_facing_the_camera_is_turned_back(tmp_path, body, measured):
    """Close-range validation scene 940009: a person walking away at 2-3 m whom BlazePose
    reads as facing the camera in most frames. With the keeper the stored labels match
    the truth in far more frames, and the fitted body, at the true focal, is nearer it."""
    from meshstream.models import metrics as M
    from meshstream.models.keypoints import blazepose33_to_coco23
    from meshstream.models.synthetic import render_frames, write_video
    from meshstream.models.synthetic_scenes import close_scene

    scene = close_scene(940009, 640, 480, body=body)
    crf = scene.pop("crf")
    frames, gt = render_frames(width=640, height=480, n_frames=40, body=body, **scene)
    write_video(tmp_path / "away.mp4", frames, FPS, crf=crf)
    rates, errors = {}, {}
    for name, extra in (("kept", []), ("as given", ["--set", "tracking.keep_sides=false"])):
        res = run_cli(str(tmp_path / "away.mp4"), "-o", str(tmp_path / name), "-q", "--no-overlay",
                      "--focal-px", f"{gt.focal_px:.4f}", *extra)
        assert res.returncode == 0, res.stderr
        store = zarr.open_group(str(tmp_path / name / "away.zarr"), mode="r")
        frame_index = store["frames/frame_index"][:]
        swapped, mpjpe = [], []
        for tid in store["tracks"].group_keys():
            t = store[f"tracks/{tid}"]
            fi = frame_index[t["frame_index"][:]]
            person = gt.match(fi, t["bbox_xyxy"][:])
            ok = person >= 0
            kp = blazepose33_to_coco23(t["keypoints2d"][:][ok])[:, :17]
            truth3d = gt.keypoints3d[person[ok], fi[ok]]
            truth2d = gt.focal_px * truth3d[..., :2] / truth3d[..., 2:] + gt.principal_point
            swapped += M.sides_swapped(kp, truth2d).tolist()
            mpjpe += M.mpjpe(t["keypoints3d_coco17"][:][ok], truth3d).tolist()
        rates[name], errors[name] = float(np.mean(swapped)), float(np.nanmean(mpjpe))
    assert measured("swapped_as_given", rates["as given"]) > 0.4  # measured 0.63
    # measured 0.10; 0.095 on an AVX2-only machine's render. Not stable under 1-DN noise
    # on the render: 0.10-0.48 over four more (docs/accuracy.md).
    assert measured("swapped_kept", rates["kept"]) < 0.15
    # MPJPE, mm: measured 295 as given, 164 kept (0.56 of it); 310 and 159 on that machine
    assert measured("mpjpe_kept_mm", errors["kept"]) < 0.8 * measured("mpjpe_as_given_mm", errors["as given"])
    assert math.isfinite(errors["kept"])
