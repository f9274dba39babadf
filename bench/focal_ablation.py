"""Where the focal error comes from: the focal search fed with ground-truth inputs.

Renders the accuracy suite (``bench/accuracy.py``), runs perception and tracking on
each clip, and searches the shot's focal with the estimator's own cost (ray-rotated
body points, linear translation, errors-in-variables reprojection cost over a log grid
of focals, each person-frame's curve normalised as in the estimator) on the COCO-17
keypoints of matched person-frames, from these input pairs:

- detected 2D keypoints + the body fitted to the detector's relative 3D landmarks (the
  default);
- detected 2D + the body fitted to the lifter's correction of those landmarks
  (``models/lifter.py``, ``estimation.focal_landmarks=pose_lifter``; ``--lifter PATH``
  other weights);
- detected 2D + the body fitted to the relief lifter's correction
  (``estimation.focal_landmarks=relief_lifter``; ``--relief PATH`` other weights);
- detected 2D + the ground-truth relative 3D (camera axes, hip-centred);
- detected 2D + the ground-truth relative 3D in the axes of the ray through the person
  at the true focal, then searched like the fitted body (rotated by each candidate
  focal's ray): what an ideal detector of ray-relative 3D would give;
- ground-truth 2D + the fitted body;
- ground-truth 2D + ground-truth 3D (a check: must give 0 %).

Prints signed focal errors per clip and the median absolute error per input pair.
``--close N`` and ``--random N`` search N scenes of ``--split`` (``bench/splits.py``)
instead of the suite; ``--curves PATH`` writes each clip's pooled cost curves (JSON) to
study the search's evidence without running perception again.

Usage: python bench/focal_ablation.py [--clips NAME,... | --close N | --random N] [--split dev|val|test]
                                      [--cache DIR] [--curves PATH]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from accuracy import SUITE, SceneSpec, render
from splits import seeds

PAIRS = ("detected 2D + fitted 3D", "detected 2D + lifted 3D", "detected 2D + relief 3D", "detected 2D + true 3D",
         "detected 2D + true ray-relative 3D", "true 2D + fitted 3D", "true 2D + true 3D")


def observe(clip: Path, keep_sides: bool = True):
    """PersonFrames of a clip from the real perception and tracking stages (``keep_sides``
    ``False``: the landmarker's left and right labels as it gave them)."""
    from meshstream.stream.config import load_config
    from meshstream.stream.pipeline import observe_clip

    # the CLI's own perception and tracking settings
    config = load_config(None, [] if keep_sides else ["tracking.keep_sides=false"])
    observer, info = observe_clip(str(clip), config)
    return observer.observations()[0], (info.width, info.height)


def observed(spec, work: Path, body, cache: str | None, keep_sides: bool = True):
    """(observations, frame size, ground truth) of a suite clip, from ``cache`` if there
    (``keep_sides`` as in :func:`observe`; its own file)."""
    import pickle

    path = Path(cache) / f"{spec.name}{'' if keep_sides else '_as_given'}.pkl" if cache else None
    if path is not None and path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    clip, gt = render(spec, work, body)
    gt.vertices = None  # large, unused here
    result = (*observe(clip, keep_sides), gt)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump(result, fh)
    return result


def focal_errors(obs, size, gt, body, curves: dict | None = None, lifter: Path | None = None,
                 relief: Path | None = None) -> dict[str, float]:
    """Signed relative focal error of the search for each input pair (and, into
    ``curves``, the grid, the true focal and each pair's pooled cost)."""
    import torch

    from meshstream.models.camera import (
        focal_grid,
        normalise_costs,
        ray_rotation,
        refine_minimum,
        reprojection_nll,
        solve_translation,
    )
    from meshstream.models.estimator import BodyEstimator
    from meshstream.models.lifter import DEFAULT_WEIGHTS, RELIEF_WEIGHTS, LandmarkLifter

    est = BodyEstimator(body)
    fitted = est._camera_points(est.fit_structure(obs))[:, :17]
    lifting = BodyEstimator(body, lifter=LandmarkLifter.load(lifter or DEFAULT_WEIGHTS))
    lifted = lifting._camera_points(lifting.fit_structure(obs))[:, :17]
    relieving = BodyEstimator(body, lifter=LandmarkLifter.load(relief or RELIEF_WEIGHTS))
    relieved = relieving._camera_points(relieving.fit_structure(obs))[:, :17]
    person = gt.match(obs.frame_index, obs.bbox_xyxy)
    rows = np.nonzero(person >= 0)[0]
    person = person[rows]
    dt = fitted.dtype
    grid = focal_grid(*size, *est.fov_range_deg)
    f = torch.as_tensor(grid, dtype=dt)
    pp = torch.as_tensor(gt.principal_point, dtype=dt)
    ray = ray_rotation(est._centre(obs)[rows][:, None], f[None], pp)
    fitted = fitted[rows][:, None] @ ray.transpose(-1, -2)  # (M, F, 17, 3): as seen along each ray
    lifted = lifted[rows][:, None] @ ray.transpose(-1, -2)
    relieved = relieved[rows][:, None] @ ray.transpose(-1, -2)
    true3d = torch.as_tensor(gt.keypoints3d[person, obs.frame_index[rows]], dtype=dt)
    true3d = true3d - 0.5 * (true3d[:, 11] + true3d[:, 12])[:, None]
    true_ray = ray_rotation(est._centre(obs)[rows], torch.tensor(gt.focal_px, dtype=dt), pp)
    ideal = (true3d @ true_ray)[:, None] @ ray.transpose(-1, -2)  # R_true^T x, then each candidate's ray
    det2d = torch.as_tensor(obs.keypoints2d[rows, :17, :2], dtype=dt)
    true2d = torch.as_tensor(gt.keypoints2d[person, obs.frame_index[rows]], dtype=dt)
    w_det = est._weights2d(obs)[rows, :17]
    box_h = np.maximum(obs.bbox_xyxy[rows, 3] - obs.bbox_xyxy[rows, 1], 1.0)
    pixel_std = torch.as_tensor(est.keypoint_std_rel * box_h, dtype=dt)
    out = {}
    ones = torch.ones_like(w_det)
    for name, pts, uv, w in zip(PAIRS, (fitted, lifted, relieved, true3d, ideal, fitted, true3d),
                                (det2d,) * 5 + (true2d, true2d), (w_det,) * 5 + (ones, ones), strict=True):
        with torch.no_grad():
            t = solve_translation(pts, uv, w, f, pp)
            cost = normalise_costs(reprojection_nll(pts, t, uv, w, f, pp, pixel_std, est.depth_std_m).numpy()).sum(0)
        out[name] = refine_minimum(grid, cost) / gt.focal_px - 1.0
        if curves is not None:
            curves[name] = (cost / max(len(rows), 1)).tolist()
    if curves is not None:
        curves.update(grid=grid.tolist(), true_focal_px=float(gt.focal_px), person_frames=int(len(rows)),
                      width=int(size[0]))
    return out


def add_scene_arguments(parser: argparse.ArgumentParser) -> None:
    """The scene choice shared with ``bench/orientation.py``: ``--clips``, ``--close``,
    ``--random``, ``--split`` and ``--cache``."""
    parser.add_argument("--clips", default=None, help="comma-separated clip names of the suite")
    parser.add_argument("--close", type=int, default=0, metavar="N", help="N close-range scenes of --split instead")
    parser.add_argument("--random", type=int, default=0, metavar="N", help="N random scenes of --split instead")
    parser.add_argument("--split", choices=("dev", "val", "test"), default="dev", help="seed range (default dev)")
    parser.add_argument("--cache", default=None, help="keep each clip's observations and truth here, and reuse them")


def scene_specs(args: argparse.Namespace) -> list:
    """The suite's clips (``--clips``), or ``--close``/``--random`` scenes of ``--split``."""
    suite: list = [c for c in SUITE if args.clips is None or c.name in args.clips.split(",")]
    for kind, n, frames in (("close", args.close, 40), ("random", args.random, 30)):
        if n:
            suite = [SceneSpec(kind, seed, frames) for seed in seeds(kind, args.split, n)]
    return suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scene_arguments(parser)
    parser.add_argument("--curves", type=Path, default=None, help="write each clip's pooled cost curves here (JSON)")
    parser.add_argument("--lifter", type=Path, default=None, help="pose lifter weights (default: the shipped ones)")
    parser.add_argument("--relief", type=Path, default=None, help="relief lifter weights (default: the shipped ones)")
    args = parser.parse_args()
    from meshstream.models.body import AnnyBody

    suite = scene_specs(args)
    body = AnnyBody()
    work = Path(tempfile.mkdtemp(prefix="meshstream-focal-"))
    results, curves = {}, {}
    print("| clip | true focal (px) | " + " | ".join(PAIRS) + " |")
    print("|---|---:" + "|---:" * len(PAIRS) + "|")
    for spec in suite:
        obs, size, gt = observed(spec, work, body, args.cache)
        if len(obs) == 0:
            print(f"| {spec.name} | {gt.focal_px:.0f} | no person found |", flush=True)
            continue
        curves[spec.name] = {}
        results[spec.name] = focal_errors(obs, size, gt, body, curves[spec.name], args.lifter, args.relief)
        cells = " | ".join(f"{100 * results[spec.name][p]:+.0f} %" for p in PAIRS)
        print(f"| {spec.name} | {gt.focal_px:.0f} | {cells} |", flush=True)
    medians = " | ".join(f"{100 * np.median([abs(r[p]) for r in results.values()]):.1f} %" for p in PAIRS)
    print(f"| median of abs. error | | {medians} |")
    if args.curves:
        import json

        args.curves.write_text(json.dumps(curves))


if __name__ == "__main__":
    main()
