"""One rendered crossing through the real CLI, checked against the ground truth it was
rendered with: identities kept through the crossing, people found, and an overlay
video whose drawn meshes cover each tracked person's true silhouette."""

import av
import numpy as np
import pytest
import zarr

from conftest import DATA, run_cli
from meshstream.models.synthetic import PersonSpec, render_frames, write_video

pytestmark = pytest.mark.slow

N_FRAMES = 50


@pytest.fixture(scope="module")
def crossing(tmp_path_factory, body):
    """Three people, 70 degree view, 2 s: two walk through each other at 3.0 and 3.8 m (the
    far one is hidden for a few frames) and are apart again at the end; a third walks
    toward the camera on the side, from 4.6 m."""
    import cv2

    d = tmp_path_factory.mktemp("crossing")
    photo = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    frames, gt = render_frames([
        PersonSpec((-1.1, 3.0), (1.1, 0.0), yaw_deg=80, shirt_rgb=(40, 90, 200)),
        PersonSpec((1.1, 3.8), (-1.1, 0.0), yaw_deg=-80, shirt_rgb=(200, 60, 40)),
        PersonSpec((2.2, 4.6), (0.0, -0.3), yaw_deg=10, shirt_rgb=(30, 160, 60)),
    ], fov_deg=70, n_frames=N_FRAMES, background=photo, body=body, keep_vertices=True)
    clip = d / "crossing.mp4"
    write_video(clip, frames, 25.0)
    res = run_cli(str(clip), "-o", str(d), "-q", "--set", "output.overlay_inset=none")
    assert res.returncode == 0, res.stderr
    return d, gt, zarr.open_group(str(d / "crossing.zarr"), mode="r")


def _track_of_person(store, gt):
    """{(frame, person): track id} by the amodal box each stored box overlaps most (IoU >= 0.5)."""
    found = {}
    for tid in store["tracks"].group_keys():
        g = store[f"tracks/{tid}"]
        rows = g["frame_index"][:]
        person = gt.match(rows, g["bbox_xyxy"][:])
        for r, p in zip(rows, person):
            if p >= 0:
                found[(int(r), int(p))] = int(tid)
    return found


def test_identities_survive_the_crossing(crossing, measured):
    """No id switch, and most visible people found (ground truth counts a person where at
    least 30 % of the body is in view and unoccluded)."""
    _, gt, store = crossing
    found = _track_of_person(store, gt)
    switches = 0
    for p in range(gt.pelvis.shape[0]):
        ids = [found[(t, p)] for t in range(N_FRAMES) if (t, p) in found]
        switches += sum(a != b for a, b in zip(ids, ids[1:]))
    assert switches == 0
    # Each person keeps one track and no track serves two people.
    owners = {}
    for (t, p), tid in found.items():
        owners.setdefault(tid, set()).add(p)
    assert all(len(ps) == 1 for ps in owners.values())
    countable = gt.visibility >= 0.3
    recall = sum((t, p) in found for p, t in zip(*np.nonzero(countable))) / countable.sum()
    # Measured 0.59: perception misses the far people for stretches of 10-20 frames (the
    # whole-frame landmarker returns the nearest, HOG proposes the others every 5th frame).
    # Bound: 1.5x the measured miss rate (0.41).
    assert measured("recall", recall) > 0.39


def _silhouettes(gt, t):
    """(P, H, W) bool: each person's own silhouette in frame t (others not drawn)."""
    from meshstream.models.rasterizer import rasterize

    out = []
    for p in range(gt.vertices.shape[0]):
        v = gt.vertices[p, t].astype(np.float64)
        uvz = np.concatenate([gt.focal_px * v[:, :2] / v[:, 2:3] + gt.principal_point, v[:, 2:3]], 1)
        out.append(rasterize(uvz, gt.faces, gt.height, gt.width, cull_back_faces=True).mask)
    return np.stack(out)


def _decoded(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_overlay_meshes_cover_the_true_silhouettes(crossing, measured):
    """In every frame with a tracked person, the pixels the overlay painted (where it
    differs from the input) overlap the tracked people's true silhouettes."""
    import cv2

    d, gt, store = crossing
    found = _track_of_person(store, gt)
    clip, overlay = _decoded(d / "crossing.mp4"), _decoded(d / "crossing_overlay.mp4")
    assert len(overlay) == len(clip) == N_FRAMES
    ious = []
    for t in range(N_FRAMES):
        tracked = [p for p in range(gt.pelvis.shape[0]) if (t, p) in found]
        if not tracked:
            continue
        truth = _silhouettes(gt, t)[tracked].any(0)
        painted = np.abs(overlay[t].astype(np.int16) - clip[t].astype(np.int16)).sum(-1) > 40
        painted = cv2.morphologyEx(painted.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0  # codec noise
        ious.append((painted & truth).sum() / max((painted | truth).sum(), 1))
    ious = np.array(ious)
    # measured 49 of 50 (a track is confirmed at its 2nd frame)
    assert measured("frames_scored", len(ious)) >= N_FRAMES - 2
    # Measured: median IoU 0.63, lowest 0.50 (frames where a fitted limb or the other
    # crosser is off). Bounds: 1.5x the measured 1 - IoU.
    assert measured("iou_median", np.median(ious)) > 0.45 and measured("iou_min", ious.min()) > 0.25
