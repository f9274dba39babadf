"""Trains the landmark lifter (``models/lifter.py``) on synthetic renders, on a CPU.

Two steps, both resumable:

1. ``render``: random clips of Anny bodies (shapes, ages, motions with random pose
   offsets, 35-105 degree fields of view, 0.8-6.5 m, tilted and level cameras,
   procedural backgrounds, H.264) go through the real perception and tracking stages.
   Each detected person-frame matched to a rendered person (box IoU >= 0.5) is saved
   with its ground truth: one ``.npz`` per clip under ``--data``. The clips are drawn
   from seeds disjoint from the benchmarks' (``bench/splits.py``: 100000-199999, and
   200000-299999 for ``--scenes close``, the close-range scenes of
   ``models.synthetic_scenes.close_scene``), and never use the suite's background
   photo. Records of both kinds may share one ``--data`` folder.
2. ``fit``: the lifter is trained to map the detector's relative 3D landmarks and 2D
   keypoints to the true hip-centred 3D keypoints, as seen along the ray through the
   person at the true focal (the frame in which the estimator uses them). Clips are
   split 90/10 by seed for validation; the weights go to ``--out`` (float16 npz).
   ``--inputs landmarks`` trains the relief lifter of the focal search instead, which
   sees the landmarks alone (default ``--out``: ``models/data/relief_lifter.npz``), and
   ``--inputs keypoints`` the keypoint lifter, which sees the 2D body keypoints alone
   (noisier copies of the records, :func:`degrade_keypoints`; ``keypoint_lifter.npz``).

Usage:
    python train/train_lifter.py render --data DIR --clips 400 [--scenes random|close] [--first-seed S]
    python train/train_lifter.py fit --data DIR [--inputs landmarks+keypoints|landmarks|keypoints] [--out FILE] [--epochs 25]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

def render_records(seed: int, work: Path, body, scenes: str = "random") -> dict[str, np.ndarray]:
    """Perception output of one drawn clip (``scenes``: ``random`` or ``close``), matched
    to its ground truth."""
    from meshstream.models.synthetic import render_frames, write_video
    from meshstream.models.synthetic_scenes import close_scene, random_scene
    from meshstream.stream.config import load_config
    from meshstream.stream.pipeline import observe_clip

    kw = random_scene(seed) if scenes == "random" else close_scene(seed, body=body)
    crf = kw.pop("crf")
    frames, gt = render_frames(body=body, n_frames=30, **kw)
    clip = work / f"{seed}.mp4"
    write_video(clip, frames, 25.0, crf=crf)
    config = load_config()  # the CLI's own perception and tracking settings
    observer, _ = observe_clip(str(clip), config)
    clip.unlink()
    obs = observer.observations()[0]
    person = gt.match(obs.frame_index, obs.bbox_xyxy)
    rows = np.nonzero(person >= 0)[0]
    person = person[rows]
    fi = obs.frame_index[rows]
    return dict(keypoints2d=obs.keypoints2d[rows], landmarks3d=obs.landmarks3d[rows], bbox_xyxy=obs.bbox_xyxy[rows],
                true3d=gt.keypoints3d[person, fi].astype(np.float32),
                focal_px=np.full(len(rows), gt.focal_px, np.float32),
                principal_point=np.tile(gt.principal_point, (len(rows), 1)).astype(np.float32),
                seed=np.full(len(rows), seed, np.int64))


def render(args: argparse.Namespace) -> None:
    from meshstream.models.body import AnnyBody

    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    body = AnnyBody()
    work = Path(tempfile.mkdtemp(prefix="meshstream-lifter-"))
    first = args.first_seed if args.first_seed is not None else {"random": 100_000, "close": 200_000}[args.scenes]
    start = time.perf_counter()
    for seed in range(first, first + args.clips):
        path = data / f"{seed}.npz"
        if path.exists():
            continue
        records = render_records(seed, work, body, args.scenes)
        np.savez(path, **records)
        print(f"seed {seed}: {len(records['seed'])} person-frames ({time.perf_counter() - start:.0f} s)", flush=True)


def load(data: Path) -> dict[str, np.ndarray]:
    parts = [dict(np.load(p)) for p in sorted(data.glob("*.npz"))]
    if not parts:
        raise SystemExit(f"no training records in {data}: run the render step first")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def fit(args: argparse.Namespace) -> None:
    import torch

    from meshstream.models.lifter import (DEFAULT_WEIGHTS, KEYPOINT_WEIGHTS, RELIEF_WEIGHTS, LandmarkLifter,
                                          detector_centre, lifter_features, mirror_features, ray_frame_points)

    torch.manual_seed(0)
    rec = load(Path(args.data))
    if args.inputs == "keypoints":
        rec = degrade_keypoints(rec, np.random.default_rng(0))
    x = torch.as_tensor(lifter_features(rec["keypoints2d"], rec["bbox_xyxy"], rec["landmarks3d"], args.inputs))
    lm = torch.as_tensor(rec["landmarks3d"][:, :17])
    lm = lm - 0.5 * (lm[:, 11] + lm[:, 12])[:, None]
    if args.inputs == "keypoints":
        lm = torch.zeros_like(lm)  # the keypoint lifter gives the whole pose
    centre = detector_centre(rec["keypoints2d"], rec["bbox_xyxy"])
    y = torch.as_tensor(ray_frame_points(rec["true3d"], centre, rec["focal_px"], rec["principal_point"]))
    seeds = np.unique(rec["seed"])
    val_seeds = seeds[np.random.default_rng(0).permutation(len(seeds))[: max(1, len(seeds) // 10)]]
    val = torch.as_tensor(np.isin(rec["seed"], val_seeds))
    model = LandmarkLifter(x.shape[1], args.width, args.blocks, args.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    train_idx = torch.nonzero(~val)[:, 0]

    def error(idx, out):  # mean per-keypoint 3D error (mm), and of the depth alone
        d = out - y[idx]
        return 1000 * d.norm(dim=-1).mean().item(), 1000 * d[..., 2].abs().mean().item()

    val_idx = torch.nonzero(val)[:, 0]
    print(f"{len(train_idx)} training, {len(val_idx)} validation person-frames ({len(seeds)} clips)")
    print("landmarks as given: val 3D error %.1f mm, depth %.1f mm" % error(val_idx, lm[val_idx]))
    for epoch in range(args.epochs):
        model.train()
        perm = train_idx[torch.randperm(len(train_idx))]
        for batch in perm.split(256):
            # Mirror augmentation: half of each batch seen with x -> -x, left and right swapped.
            flip = torch.rand(len(batch)) < 0.5
            xb = torch.where(flip[:, None], mirror_features(x[batch]), x[batch])
            yb = torch.where(flip[:, None, None], mirror_points(y[batch]), y[batch])
            lb = torch.where(flip[:, None, None], mirror_points(lm[batch]), lm[batch])
            loss = (model(xb) + lb - yb).norm(dim=-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            model.eval()
            with torch.no_grad():
                print(f"epoch {epoch + 1}: val 3D error %.1f mm, depth %.1f mm"
                      % error(val_idx, model(x[val_idx]) + lm[val_idx]), flush=True)
    out = args.out or {"landmarks+keypoints": DEFAULT_WEIGHTS, "landmarks": RELIEF_WEIGHTS,
                       "keypoints": KEYPOINT_WEIGHTS}[args.inputs]
    model.save(out)
    print(f"wrote {out}")


def degrade_keypoints(rec: dict[str, np.ndarray], rng: np.random.Generator, copies: int = 3) -> dict[str, np.ndarray]:
    """``copies`` noisier copies of the records, for the keypoint lifter: the people it
    serves are 30-150 px tall and their keypoints come from another detector (YOLO pose).
    Each copy moves every 2D keypoint by a normal error of 2 % of the box height, hides
    each keypoint (confidence 0) with probability 0.1, and scales the box by 0.85-1.15
    about its centre (another detector's box)."""
    out = {k: np.concatenate([v] * copies) for k, v in rec.items()}
    kp = out["keypoints2d"].copy()
    box = out["bbox_xyxy"].astype(np.float32).copy()
    h = np.maximum(box[:, 3] - box[:, 1], 1.0)
    kp[..., :2] += rng.normal(0.0, 0.02, kp[..., :2].shape) * h[:, None, None]
    kp[..., 2] = np.where(rng.random(kp[..., 2].shape) < 0.1, 0.0, kp[..., 2])
    s = rng.uniform(0.85, 1.15, len(box))[:, None]
    c = 0.5 * (box[:, :2] + box[:, 2:])
    half = 0.5 * (box[:, 2:] - box[:, :2]) * s
    out["keypoints2d"], out["bbox_xyxy"] = kp, np.concatenate([c - half, c + half], 1)
    return out


def mirror_points(p):
    """Mirrors (N, 17, 3) points about the y-z plane, swapping left and right."""
    from meshstream.models.lifter import COCO17_FLIP

    p = p[:, COCO17_FLIP].clone()
    p[..., 0] = -p[..., 0]
    return p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    r = sub.add_parser("render", help="render random clips and save matched perception records")
    r.add_argument("--data", required=True)
    r.add_argument("--clips", type=int, default=400)
    r.add_argument("--first-seed", type=int, default=None,
                   help="first seed (default: the first of the scenes' training range in bench/splits.py)")
    r.add_argument("--scenes", choices=["random", "close"], default="random",
                   help="random scenes (0.8-6.5 m) or close-range ones (0.7-1.5 m, or seen from behind)")
    f = sub.add_parser("fit", help="train the lifter on the saved records")
    f.add_argument("--data", required=True)
    f.add_argument("--inputs", choices=["landmarks+keypoints", "landmarks", "keypoints"], default="landmarks+keypoints",
                   help="what the network sees: the pose lifter's inputs, the landmarks alone (relief lifter), "
                        "or the 2D keypoints alone (keypoint lifter, for people too small for BlazePose)")
    f.add_argument("--out", help="weights file (default: the package's lifter.npz or relief_lifter.npz)")
    f.add_argument("--epochs", type=int, default=25)
    f.add_argument("--width", type=int, default=128)
    f.add_argument("--blocks", type=int, default=1)
    f.add_argument("--dropout", type=float, default=0.3)
    f.add_argument("--weight-decay", type=float, default=1e-2)
    args = parser.parse_args()
    render(args) if args.step == "render" else fit(args)


if __name__ == "__main__":
    main()
