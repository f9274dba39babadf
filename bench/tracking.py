"""Tracking and temporal-filtering benchmark on rendered clips with ground truth, plus
real footage. Prints Markdown tables.

Clips (rendered by models/synthetic.py over real photos, H.264):
- ``cross2``: two people walk through each other; the far one is hidden for ~0.5 s.
- ``cross4``: four people: two crossings at different depths, one enters from the
  left, one leaves on the right.
- ``cut``: a cut between two shots with different focal lengths (50 and 80 degree
  field of view) and different people.

Each clip goes through the real CLI twice: with temporal filtering (default) and
without (``filter.smooth_translation=false filter.smooth_pose=false``). Tracking
scores use boxes (IoU >= 0.5 against the amodal ground-truth box; ground truth counts
where at least 30 % of the person is visible). Acceleration error and hip-centred MPJPE
use COCO-17 keypoints in camera space on frames matched to a ground-truth person.

Usage: python bench/tracking.py [--vtest PATH] [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
RAW = ["--set", "filter.smooth_translation=false", "--set", "filter.smooth_pose=false"]


@dataclass
class Segment:
    """Ground truth of a run of frames (one shot) starting at ``offset``."""

    gt: object  # models.synthetic.GroundTruth
    offset: int


def make_clips(out: Path) -> dict[str, list[Segment]]:
    import cv2

    from meshstream.models.body import AnnyBody
    from meshstream.models.synthetic import PersonSpec, render_frames, write_video

    body = AnnyBody()
    photo = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    photo2 = np.ascontiguousarray(photo[::-1, ::-1])  # a second "place" for the second shot
    clips: dict[str, list[Segment]] = {}

    frames, gt = render_frames([
        PersonSpec((-1.2, 3.0), (0.7, 0.0), yaw_deg=80, shirt_rgb=(40, 90, 200)),
        PersonSpec((1.2, 3.8), (-0.7, 0.0), yaw_deg=-80, shirt_rgb=(200, 60, 40)),
    ], fov_deg=70, n_frames=60, background=photo, body=body)
    write_video(out / "cross2.mp4", frames, 25.0)
    clips["cross2"] = [Segment(gt, 0)]

    frames, gt = render_frames([
        PersonSpec((-1.3, 2.8), (0.8, 0.0), yaw_deg=80, shirt_rgb=(40, 90, 200)),
        PersonSpec((1.3, 3.5), (-0.8, 0.0), yaw_deg=-80, shirt_rgb=(200, 60, 40), shape={"height": 0.8}),
        PersonSpec((-3.4, 4.5), (0.9, 0.0), yaw_deg=80, shirt_rgb=(30, 160, 60), motion="walk"),
        PersonSpec((1.0, 4.0), (0.9, 0.0), yaw_deg=80, shirt_rgb=(200, 200, 40), shape={"gender": 0.1}),
    ], fov_deg=75, n_frames=75, background=photo, body=body)
    write_video(out / "cross4.mp4", frames, 25.0)
    clips["cross4"] = [Segment(gt, 0)]

    f1, g1 = render_frames([
        PersonSpec((-0.6, 4.0), (0.4, 0.0), yaw_deg=30, shirt_rgb=(40, 90, 200)),
        PersonSpec((0.9, 5.0), (-0.2, 0.0), motion="arms", shirt_rgb=(200, 60, 40)),
    ], fov_deg=50, n_frames=40, background=photo, body=body)
    f2, g2 = render_frames([
        PersonSpec((0.5, 2.4), (-0.3, 0.0), yaw_deg=-20, shirt_rgb=(30, 160, 60), motion="squat"),
        PersonSpec((-0.9, 3.2), (0.2, 0.0), yaw_deg=40, shirt_rgb=(200, 200, 40)),
    ], fov_deg=80, n_frames=40, background=photo2, body=body)
    write_video(out / "cut.mp4", f1 + f2, 25.0)
    clips["cut"] = [Segment(g1, 0), Segment(g2, 40)]
    return clips


def run_cli(clip: Path, out: Path, *extra: str):
    import zarr

    subprocess.run([sys.executable, str(REPO / "process_video.py"), str(clip), "-o", str(out), "-q", "--no-overlay",
                    *extra], check=True, capture_output=True)
    return zarr.open_group(str(out / f"{clip.stem}.zarr"), mode="r")


def _gt_frames(segments: list[Segment], n_frames: int, min_visibility: float = 0.3):
    """Per frame: ground-truth FrameBoxes (global person ids) and lookup tables."""
    from meshstream.tracking.metrics import FrameBoxes

    frames = []
    lookup = {}  # (frame, global person) -> (segment, person)
    pid0 = 0
    owner = {}
    for s_i, seg in enumerate(segments):
        g = seg.gt
        for t in range(g.pelvis.shape[1]):
            owner[seg.offset + t] = (s_i, pid0)
        pid0 += g.pelvis.shape[0]
    for t in range(n_frames):
        s_i, base = owner[t]
        g = segments[s_i].gt
        lt = t - segments[s_i].offset
        ok = (g.visibility[:, lt] >= min_visibility) & np.isfinite(g.boxes[:, lt, 0])
        ids = base + np.nonzero(ok)[0]
        frames.append(FrameBoxes(ids, g.boxes[ok, lt]))
        for p in np.nonzero(ok)[0]:
            lookup[(t, base + p)] = (s_i, p, lt)
    return frames, lookup


def _hyp_frames(store, n_frames: int):
    from meshstream.tracking.metrics import FrameBoxes

    per = [([], []) for _ in range(n_frames)]
    tracks = {}
    for tid in store["tracks"].group_keys():
        g = store[f"tracks/{tid}"]
        rows = g["frame_index"][:]
        boxes = g["bbox_xyxy"][:]
        tracks[int(tid)] = (rows, g["keypoints3d_coco17"][:])
        for r, b in zip(rows, boxes):
            per[r][0].append(int(tid))
            per[r][1].append(b)
    return [FrameBoxes(np.array(i, int), np.array(b, float).reshape(-1, 4)) for i, b in per], tracks


def evaluate(store, segments: list[Segment]) -> dict:
    from meshstream.models.detections import box_iou
    from meshstream.tracking.metrics import evaluate_tracking

    n = store["frames/pts_seconds"].shape[0]
    gt_frames, lookup = _gt_frames(segments, n)
    hyp_frames, tracks = _hyp_frames(store, n)
    scores = evaluate_tracking(gt_frames, hyp_frames)
    # Match each track-frame to the ground-truth person its box overlaps most.
    accel, mpjpe = [], []
    for tid, (rows, kp) in tracks.items():
        matched = []
        for r in rows:
            g, h = gt_frames[r], hyp_frames[r]
            j = list(h.ids).index(tid)
            iou = box_iou(h.boxes[j : j + 1], g.boxes)[0] if len(g.ids) else np.zeros(0)
            matched.append(int(g.ids[np.argmax(iou)]) if len(iou) and iou.max() >= 0.5 else -1)
        truth = []
        for r, p in zip(rows, matched):
            if p < 0:
                truth.append(None)
                continue
            s_i, lp, lt = lookup[(r, p)]
            truth.append(segments[s_i].gt.keypoints3d[lp, lt])
        for i, (r, k) in enumerate(zip(rows, kp)):
            if truth[i] is not None:
                a = k - 0.5 * (k[11] + k[12])
                b = truth[i] - 0.5 * (truth[i][11] + truth[i][12])
                mpjpe.append(np.linalg.norm(a - b, axis=-1).mean())
            if 0 < i < len(rows) - 1 and rows[i - 1] == r - 1 and rows[i + 1] == r + 1:
                if all(truth[j] is not None for j in (i - 1, i, i + 1)) and matched[i - 1] == matched[i] == matched[i + 1]:
                    acc_p = kp[i + 1] - 2 * kp[i] + kp[i - 1]
                    acc_g = truth[i + 1] - 2 * truth[i] + truth[i - 1]
                    accel.append(np.linalg.norm(acc_p - acc_g, axis=-1).mean())
    shots = store["frames/shot"][:]
    focals = []
    for s_i, seg in enumerate(segments):
        rows = np.nonzero(shots == s_i)[0]
        f = float(store["camera/focal_px"][rows[0]]) if len(rows) else float("nan")
        focals.append((f, seg.gt.focal_px, len(rows)))
    return {"scores": scores, "accel_mm": 1000 * float(np.mean(accel)) if accel else float("nan"),
            "mpjpe_mm": 1000 * float(np.mean(mpjpe)) if mpjpe else float("nan"), "focals": focals,
            "n_shots": int(shots.max()) + 1 if len(shots) else 0}


def real_footage(path: Path, out: Path, frames: int) -> dict:
    store = run_cli(path, out, "--max-frames", str(frames))
    w, h = store.attrs["width"], store.attrs["height"]
    lengths, interior_births = [], 0
    for tid in store["tracks"].group_keys():
        g = store[f"tracks/{tid}"]
        rows = g["frame_index"][:]
        lengths.append(len(rows))
        x0, y0, x1, y1 = g["bbox_xyxy"][0]
        near_edge = x0 < 0.05 * w or x1 > 0.95 * w or y0 < 0.05 * h or y1 > 0.95 * h
        if rows[0] > 2 and not near_edge:
            interior_births += 1  # a track born mid-frame: a person re-found after a break
    return {"frames": store["frames/pts_seconds"].shape[0], "tracks": len(lengths),
            "median_len": float(np.median(lengths)) if lengths else 0.0, "interior_births": interior_births}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vtest", type=Path, default=Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi"))
    parser.add_argument("--vtest-frames", type=int, default=200)
    parser.add_argument("--keep", type=Path, default=None, help="keep clips and stores in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="meshstream-tracking-"))
    work.mkdir(parents=True, exist_ok=True)
    clips = make_clips(work)
    print("| clip | people | IDF1 | MOTA | ID switches | frag. | accel. error raw → filtered (mm/frame²) | MPJPE raw → filtered (mm) | shot focal (px): estimated / true |")
    print("|---|---:|---:|---:|---:|---:|---|---|---|")
    for name, segments in clips.items():
        clip = work / f"{name}.mp4"
        filt = evaluate(run_cli(clip, work / "filtered"), segments)
        raw = evaluate(run_cli(clip, work / "raw", *RAW), segments)
        s = filt["scores"]
        people = sum(seg.gt.pelvis.shape[0] for seg in segments)
        drop = 100 * (1 - filt["accel_mm"] / raw["accel_mm"])
        grow = 100 * (filt["mpjpe_mm"] / raw["mpjpe_mm"] - 1)
        focal = ", ".join(f"{f:.0f} / {g:.0f}" for f, g, _ in filt["focals"])
        print(f"| {name} | {people} | {s.idf1:.3f} | {s.mota:.3f} | {s.id_switches} | {s.fragmentations} | "
              f"{raw['accel_mm']:.1f} → {filt['accel_mm']:.1f} (−{drop:.0f} %) | "
              f"{raw['mpjpe_mm']:.1f} → {filt['mpjpe_mm']:.1f} ({grow:+.1f} %) | {focal} ({filt['n_shots']} shots) |")
    footage = args.vtest if args.vtest.is_file() else DATA / "vtest_cut.mp4"
    r = real_footage(footage, work / "real", args.vtest_frames)
    print(f"\nReal footage ({footage.name}, {r['frames']} frames): {r['tracks']} tracks, median length "
          f"{r['median_len']:.0f} frames, {r['interior_births']} tracks born away from the frame edge after the start "
          "(fragmentation proxy: people re-found under a new id).")


if __name__ == "__main__":
    main()
