"""Which 3D landmarks the people's focal search should read: the shot's first estimate
from each choice of ``estimation.focal_landmarks``, on the same perception.

For every scene it renders (or reads from ``--cache``) the real perception and tracking
output, builds the estimator as the program does (``stream.pipeline.build_estimator``,
so the focal prior and its gate are included) once per choice, and runs the search the
program runs on a shot's first chunk (``BodyEstimator.fit_structures`` then
``estimate_focal``; the scenes are 30-40 frames, one chunk). Other cues (lines, floor,
turn) are not involved: these scenes offer none. Prints each scene's signed error and,
per choice, the median and mean absolute error, the share of scenes off by more than
50 %, beside a fixed 60° guess.

Choose on ``--split val``; report on ``--split test``.

Usage: python bench/focal_landmarks.py [--close N] [--random N] [--suite] [--split dev|val|test] [--cache DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from accuracy import SUITE, SceneSpec
from focal_ablation import observed
from splits import seeds

CHOICES = ("detector", "relief_lifter", "pose_lifter")
FRAMES = {"close": 40, "random": 30}


def first_estimate(obs, size, body, choice: str) -> float:
    """The focal (pixels) the program's search gives a shot's first chunk ``obs``."""
    from meshstream.stream.config import load_config
    from meshstream.stream.pipeline import build_estimator

    config = load_config(None, [f"estimation.focal_landmarks={choice}"])
    estimator = build_estimator(config.estimation, body)
    _, searched = estimator.fit_structures(obs)
    return float(estimator.estimate_focal(obs, searched, size).focal_px)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--close", type=int, default=0, metavar="N", help="N close-range scenes of --split")
    parser.add_argument("--random", type=int, default=0, metavar="N", help="N random scenes of --split")
    parser.add_argument("--suite", action="store_true", help="the hand-made development suite")
    parser.add_argument("--split", choices=("dev", "val", "test"), default="dev")
    parser.add_argument("--cache", default=None, help="keep each scene's perception here (a folder)")
    args = parser.parse_args()
    from meshstream.models.body import AnnyBody
    from meshstream.models.camera import focal_from_fov

    specs = list(SUITE) if args.suite else []
    for kind in ("close", "random"):
        specs += [SceneSpec(kind, s, FRAMES[kind]) for s in seeds(kind, args.split, getattr(args, kind))]
    if not specs:
        parser.error("choose scenes: --close N, --random N or --suite")
    body = AnnyBody()
    columns = (*CHOICES, "60° FOV")
    errors: dict[str, dict[str, list[float]]] = {}  # set (close, random, suite) -> column -> signed errors
    print("| scene | true focal (px) | " + " | ".join(columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    with tempfile.TemporaryDirectory(prefix="meshstream-focal-landmarks-") as work:
        for spec in specs:
            obs, size, gt = observed(spec, Path(work), body, args.cache)
            if len(obs) < 6:  # nobody found: nothing to search
                print(f"| {spec.name} | {gt.focal_px:.0f} | " + " | ".join("–" for _ in columns) + " |")
                continue
            row = {c: first_estimate(obs, size, body, c) for c in CHOICES}
            row["60° FOV"] = focal_from_fov(60.0, size[0])
            group = errors.setdefault(getattr(spec, "kind", "suite"), {c: [] for c in columns})
            for c, f in row.items():
                group[c].append(f / gt.focal_px - 1.0)
            print(f"| {spec.name} | {gt.focal_px:.0f} | " + " | ".join(f"{100 * (row[c] / gt.focal_px - 1):+.0f} %"
                                                                    for c in columns) + " |", flush=True)
    print("\n| scenes | focal search reads | median \\|f err\\| | mean \\|f err\\| | scenes off > 50 % |")
    print("|---|---|---:|---:|---:|")
    for kind, group in errors.items():
        for c, e in group.items():
            a = np.abs(np.array(e))
            print(f"| {kind} | {c} | {100 * np.median(a):.1f} % | {100 * a.mean():.1f} % | {int((a > 0.5).sum())} of "
                  f"{len(a)} |")


if __name__ == "__main__":
    main()
