"""Left/right swaps of the landmarker, and what ``tracking.sides.SideKeeper`` undoes.

On the real perception output of each scene (the labels as BlazePose gave them, before
the keeper), per matched person-frame:

- whether its labels are swapped (``models.metrics.sides_swapped``: its detected
  left/right keypoints lie 30 % nearer the true projections of the other side's);
- the same after ``SideKeeper`` (the program's settings);
- MPJPE at the true focal (hip-aligned, camera axes) of the body the estimator fits to
  the labels as given, as the keeper leaves them, and as the truth would correct them
  (the swapped person-frames exchanged: what a perfect keeper would reach).

Prints one row per scene and the totals. Scenes as in ``bench/focal_ablation.py`` (whose
``--cache`` it shares; its observations, the labels as given, are cached as
``NAME_as_given.pkl``).

Usage: python bench/sides.py [--clips NAME,... | --close N | --random N] [--split dev|val|test] [--cache DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
from focal_ablation import add_scene_arguments, observed, scene_specs

METHODS = ("as given", "SideKeeper", "truth-corrected")


def swapped(obs, gt, person: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(len(rows),) bool: the person-frame's left and right labels are swapped
    (:func:`~meshstream.models.metrics.sides_swapped`)."""
    from meshstream.models.metrics import sides_swapped

    true3d = gt.keypoints3d[person[rows], obs.frame_index[rows]]
    true2d = gt.focal_px * true3d[..., :2] / true3d[..., 2:] + gt.principal_point
    return sides_swapped(obs.keypoints2d[rows, :17], true2d)


def kept(obs, fps: float):
    """The observations with the keeper run over them frame by frame, and (M,) which it exchanged."""
    from meshstream.stream.messages import Detections
    from meshstream.tracking.sides import SideKeeper

    keeper = SideKeeper()
    kps, lms = obs.keypoints2d.copy(), obs.landmarks3d.copy()
    changed = np.zeros(len(obs), bool)
    for f in np.unique(obs.frame_index):
        rows = np.nonzero(obs.frame_index == f)[0]
        dets = Detections(xyxy=obs.bbox_xyxy[rows], score=np.ones(len(rows)), keypoints=kps[rows],
                          keypoint_layout="coco23", landmarks3d=lms[rows], track_id=obs.track_id[rows])
        out = keeper(dets, float(f) / fps)
        changed[rows] = (out.keypoints != dets.keypoints).any(axis=(1, 2))
        kps[rows], lms[rows] = out.keypoints, out.landmarks3d
    return dataclasses.replace(obs, keypoints2d=kps, landmarks3d=lms), changed


def exchanged(obs, which: np.ndarray):
    """The observations with the person-frames ``which`` exchanged."""
    from meshstream.models.keypoints import mirror_index
    from meshstream.tracking.sides import exchange_sides

    kps, lms = obs.keypoints2d.copy(), obs.landmarks3d.copy()
    kps[which], lms[which] = exchange_sides(kps[which], lms[which], mirror_index("coco23"))
    return dataclasses.replace(obs, keypoints2d=kps, landmarks3d=lms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scene_arguments(parser)
    args = parser.parse_args()

    from meshstream.models import metrics as M
    from meshstream.models.body import AnnyBody
    from meshstream.stream.config import load_config
    from meshstream.stream.pipeline import build_body, build_estimator

    config = load_config()
    estimator = build_estimator(config.estimation, *build_body(config.estimation))
    body, work = AnnyBody(), Path(tempfile.mkdtemp(prefix="meshstream-sides-"))
    counts = {"frames": 0, "swapped": 0, "swapped after": 0, "exchanged": 0, "wrongly exchanged": 0}
    pooled: dict[str, list] = {m: [] for m in METHODS}
    print("| clip | person-frames | swapped | after the keeper | " + " | ".join(f"MPJPE {m}" for m in METHODS) + " |")
    print("|---|---:|---:|---:" + "|---:" * len(METHODS) + "|")
    for spec in scene_specs(args):
        obs, size, gt = observed(spec, work, body, args.cache, keep_sides=False)
        person = gt.match(obs.frame_index, obs.bbox_xyxy) if len(obs) else np.zeros(0, int)
        rows = np.nonzero(person >= 0)[0]
        if len(rows) == 0:
            print(f"| {spec.name} | no person found |", flush=True)
            continue
        wrong = np.zeros(len(obs), bool)
        wrong[rows] = swapped(obs, gt, person, rows)
        fixed, changed = kept(obs, gt.fps)
        after = swapped(fixed, gt, person, rows)
        counts["frames"] += len(rows)
        counts["swapped"] += int(wrong[rows].sum())
        counts["swapped after"] += int(after.sum())
        counts["exchanged"] += int(changed[rows].sum())
        counts["wrongly exchanged"] += int((changed & ~wrong)[rows].sum())
        truth = gt.keypoints3d[person[rows], obs.frame_index[rows]]
        res = {}
        for name, o in zip(METHODS, (obs, fixed, exchanged(obs, wrong)), strict=True):
            same = name != METHODS[0] and not (o.keypoints2d != obs.keypoints2d).any()
            fit = None if same else estimator(o, gt.focal_px, size, principal_point=gt.principal_point)
            res[name] = res[METHODS[0]] if same else M.mpjpe(fit.keypoints3d[rows], truth)
            pooled[name] += res[name].tolist()
        print(f"| {spec.name} | {len(rows)} | {wrong[rows].mean():.0%} | {after.mean():.0%} | "
              + " | ".join(f"{np.nanmean(res[m]):.0f}" for m in METHODS) + " |", flush=True)
    n = max(counts["frames"], 1)
    print(f"| **all** | {counts['frames']} | **{counts['swapped'] / n:.1%}** | **{counts['swapped after'] / n:.1%}** | "
          + " | ".join(f"**{np.nanmean(pooled[m]):.1f}**" for m in METHODS) + " |")
    print(f"\nthe keeper exchanged {counts['exchanged']} person-frames, {counts['wrongly exchanged']} of them "
          f"not swapped")


if __name__ == "__main__":
    main()
