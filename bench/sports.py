"""Wide sports shots: many small players. Prints a Markdown table per detector choice.

Clips: ``models.synthetic_scenes.wide_scene`` seeds of ``--split`` (``bench/splits.py``,
kind ``wide``): a camera 8-20 m above a pitch, 10-20 players of two teams 30-150 px tall
at 1280x720, walking and running and crossing, the camera panning and zooming; 40 frames
at 25 frames/s, H.264. Each clip goes through the real CLI once per method.

Scores, against the amodal ground-truth boxes (a person counts in a frame where at least
half of them is visible and their box is at least ``--min-px`` tall; output boxes match
by IoU >= 0.5, one to one per frame, Hungarian):

- ``recall``: matched person-frames / counted person-frames: people found, tracked and
  fitted (the store's tracks), not just detected.
- ``id sw /1k``: a counted person matched to another track than at their last match,
  per 1,000 matched person-frames.
- ``tracks/person``: distinct tracks a counted person was matched to (mean over people
  matched at least once).
- ``false/frame``: output boxes per frame that match no person visible at all.
- ``Tz (m)``: mean absolute pelvis depth error over matched person-frames (with
  ``--true-focal``, at each clip's true focal: the people's own error, not the focal
  search's, which has little to go on 30-90 m away).
- ``frames/s``: frames over the CLI's processing time (model loading excluded).

Methods: ``mediapipe`` (the default: BlazePose, HOG proposals, our tracker) and
``mediapipe + bytetrack``; with ``--yolo-weights PATH`` (real YOLO pose weights: an
untrained network finds nothing here) also ``yolo`` and ``yolo + bytetrack`` / ``yolo +
botsort``. Methods with ultralytics' code run with ``--yolo-python`` (an environment
with the ``yolo`` extra).

Real footage (``--real VIDEO --frames 100,250 --people 7,7``): the same methods on a
video whose visible people were counted by hand in a few frames; prints, per counted
frame, how many people got a mesh (tracks holding that frame), and the fitted statures
of those tracks.

Usage: python bench/sports.py [--clips 4] [--split test] [--methods mediapipe]
       [--yolo-weights yolo11x-pose.pt --yolo-python .venv-yolo/bin/python] [--keep DIR]
       python bench/sports.py --real vtest.avi --frames 100,250,400,550,700 --people 7,7,3,6,8
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from splits import seeds

REPO = Path(__file__).resolve().parents[1]
METHODS = {
    "mediapipe": [],
    "mediapipe + bytetrack": ["--tracker", "bytetrack"],
    "yolo": ["--detector", "yolo"],
    "yolo + bytetrack": ["--detector", "yolo", "--tracker", "bytetrack"],
    "yolo + botsort": ["--detector", "yolo", "--tracker", "botsort"],
}


def _invocation(method: str, args: argparse.Namespace) -> tuple[list[str], str]:
    """The CLI flags of ``method`` (with ``--set`` overrides) and the Python to run it
    with (``--yolo-python`` where it runs ultralytics' code)."""
    flags = METHODS[method] + (["--weights", args.yolo_weights] if method.startswith("yolo") else [])
    flags += [a for o in args.overrides for a in ("--set", o)]
    return flags, args.yolo_python if "yolo" in method or "track" in method else sys.executable


def render(seed: int, out: Path, body):
    """Renders the wide shot of ``seed`` to ``out/SEED.mp4`` (kept if already there) and
    returns its ground truth."""
    from meshstream.models.synthetic import GroundTruth, render_frames, write_video
    from meshstream.models.synthetic_scenes import wide_scene

    clip, truth = out / f"{seed}.mp4", out / f"{seed}_gt.npz"
    if clip.exists() and truth.exists():
        return clip, GroundTruth.load(truth)
    scene = wide_scene(seed)
    crf = scene.pop("crf")
    frames, gt = render_frames(body=body, **scene)
    write_video(clip, frames, gt.fps, crf=crf)
    gt.save(truth)
    return clip, gt


def run(clip: Path, out: Path, python: str, extra: list[str]) -> tuple[object, float]:
    """The CLI on ``clip``: its store and frames/s of processing."""
    import zarr

    res = subprocess.run([python, str(REPO / "process_video.py"), str(clip), "-o", str(out), "-q", "--no-overlay",
                          *extra], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{clip.name}: the CLI failed: {res.stderr.strip().splitlines()[-1]}")
    m = re.search(r"([\d.]+) frames/s", res.stdout + res.stderr)
    fps = float(m.group(1)) if m else float("nan")
    return zarr.open_group(str(out / f"{clip.stem}.zarr"), mode="r"), fps


def score(store, gt, min_px: float) -> dict[str, float]:
    """Scores of one clip (see the module docstring)."""
    from scipy.optimize import linear_sum_assignment

    from meshstream.models.detections import box_iou

    n_frames = gt.boxes.shape[1]
    hyp = [([], [], []) for _ in range(n_frames)]  # per frame: track ids, boxes, pelvis depth
    for key in store["tracks"].group_keys() if "tracks" in store else []:
        g = store[f"tracks/{key}"]
        for r, b, z in zip(g["frame_index"][:], g["bbox_xyxy"][:], g["pelvis"][:, 2]):
            hyp[int(r)][0].append(int(key))
            hyp[int(r)][1].append(b)
            hyp[int(r)][2].append(z)
    height = gt.boxes[..., 3] - gt.boxes[..., 1]
    counted = (gt.visibility >= 0.5) & np.isfinite(height) & (np.nan_to_num(height) >= min_px)
    seen = (gt.visibility > 0.0) & np.isfinite(height)
    matched = total = switches = false = 0
    tz: list[float] = []
    last: dict[int, int] = {}
    tracks: dict[int, set[int]] = {}
    for t in range(n_frames):
        ids, boxes, depth = hyp[t]
        people = np.nonzero(seen[:, t])[0]
        total += int(counted[:, t].sum())
        if not ids:
            continue
        iou = box_iou(gt.boxes[people, t], np.array(boxes)) if len(people) else np.zeros((0, len(ids)))
        rows, cols = linear_sum_assignment(-iou) if iou.size else ([], [])
        pairs = [(people[r], c) for r, c in zip(rows, cols) if iou[r, c] >= 0.5]
        false += len(ids) - len(pairs)
        for p, c in pairs:
            if not counted[p, t]:
                continue
            matched += 1
            tid = ids[c]
            switches += int(p in last and last[p] != tid)
            last[p] = tid
            tracks.setdefault(int(p), set()).add(tid)
            tz.append(abs(float(depth[c]) - float(gt.pelvis[p, t, 2])))
    return {"recall": matched / max(total, 1), "switches": switches, "matched": matched,
            "tracks_per_person": float(np.mean([len(s) for s in tracks.values()])) if tracks else float("nan"),
            "false_per_frame": false / n_frames, "tz": float(np.mean(tz)) if tz else float("nan"),
            "people": len(tracks), "counted": total}


def real_footage(video: Path, frames: list[int], people: list[int], methods: list[str], work: Path, args) -> None:
    """Meshed people in hand-counted frames of real footage (see the module docstring)."""
    print(f"{video.name}: people meshed in frames {', '.join(map(str, frames))} "
          f"(visible, counted by hand: {', '.join(map(str, people))})\n")
    print("| method | meshed per frame | meshed / visible | statures (m) of those tracks | frames/s |")
    print("|---|---|---:|---|---:|")
    for m in methods:
        flags, python = _invocation(m, args)
        store, fps = run(video, work / m.replace(" ", "_").replace("+", ""), python, flags)
        index = store["frames/frame_index"][:]
        meshed, statures = [], []
        for f in frames:
            row = int(np.searchsorted(index, f))
            n = 0
            for key in store["tracks"].group_keys() if "tracks" in store else []:
                g = store[f"tracks/{key}"]
                if row in set(g["frame_index"][:].tolist()):
                    n += 1
                    statures.append(float(g.attrs.get("stature_m", float("nan"))))
            meshed.append(n)
        ratio = sum(min(a, b) for a, b in zip(meshed, people)) / max(sum(people), 1)
        print(f"| {m} | {', '.join(map(str, meshed))} | {ratio:.2f} | "
              f"{min(statures, default=float('nan')):.2f}-{max(statures, default=float('nan')):.2f} "
              f"(median {np.median(statures) if statures else float('nan'):.2f}) | {fps:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--split", choices=("dev", "val", "test"), default="test")
    parser.add_argument("--methods", default="mediapipe", help=f"comma-separated, of: {', '.join(METHODS)}")
    parser.add_argument("--min-px", type=float, default=40.0, help="smallest person counted, box height in pixels")
    parser.add_argument("--yolo-weights", default=None, help="real YOLO pose weights for the yolo methods")
    parser.add_argument("--yolo-python", default=sys.executable, help="a Python with the yolo extra")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="--set for every run")
    parser.add_argument("--keep", default=None, help="keep (and reuse) the rendered clips in this folder")
    parser.add_argument("--real", default=None, metavar="VIDEO", help="real footage instead of rendered shots")
    parser.add_argument("--frames", default="", help="--real: frames whose visible people were counted by hand")
    parser.add_argument("--people", default="", help="--real: those counts, in the same order")
    parser.add_argument("--true-focal", action="store_true",
                        help="give each run its clip's true focal (--focal-px): Tz without the focal search's error")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise SystemExit(f"unknown method {m!r}; known: {', '.join(METHODS)}")
        if m.startswith("yolo") and args.yolo_weights is None:
            raise SystemExit(f"{m} needs --yolo-weights (real weights: an untrained network finds nobody)")
    from meshstream.models.body import AnnyBody

    work = Path(args.keep or tempfile.mkdtemp(prefix="meshstream-sports-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.real:
        frames, people = ([int(v) for v in a.split(",") if v] for a in (args.frames, args.people))
        if not frames or len(frames) != len(people):
            raise SystemExit("--real needs --frames and --people of the same length")
        real_footage(Path(args.real), frames, people, methods, work, args)
        return
    body = AnnyBody()
    clips = [render(seed, work, body) for seed in seeds("wide", args.split, args.clips)]
    print(f"{len(clips)} wide shots ({args.split} seeds), people >= {args.min_px:g} px tall and half visible"
          f"{', at the true focal' if args.true_focal else ''}{', ' + ' '.join(args.overrides) if args.overrides else ''}\n")
    print("| method | recall | id sw /1k | tracks/person | false/frame | Tz (m) | frames/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m in methods:
        flags, python = _invocation(m, args)
        rows, speeds = [], []
        for clip, gt in clips:
            focal = ["--focal-px", f"{gt.focal_px:.3f}"] if args.true_focal else []
            store, fps = run(clip, work / m.replace(" ", "_").replace("+", ""), python, flags + focal)
            rows.append(score(store, gt, args.min_px))
            speeds.append(fps)
        matched = sum(r["matched"] for r in rows)
        recall = matched / max(sum(r["counted"] for r in rows), 1)
        per_k = 1000 * sum(r["switches"] for r in rows) / max(matched, 1)
        print(f"| {m} | {recall:.3f} | {per_k:.1f} | {np.nanmean([r['tracks_per_person'] for r in rows]):.2f} | "
              f"{np.mean([r['false_per_frame'] for r in rows]):.2f} | {np.nanmean([r['tz'] for r in rows]):.2f} | "
              f"{np.mean(speeds):.2f} |", flush=True)


if __name__ == "__main__":
    main()
