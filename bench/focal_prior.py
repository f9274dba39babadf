"""The focal prior's settings against the people's own evidence, on stored cost curves.

Reads the pooled cost curves that ``bench/focal_ablation.py --curves PATH`` writes (the
default input pair, detected 2D + fitted 3D: the people's focal search) and prints, per
set, the median, mean and largest absolute focal error of:

- the evidence alone;
- the prior used only where the evidence does not fix the focal (the program's rule,
  ``models.camera.FocalPrior.fixes``), at several ``flat_rise`` values;
- the prior always added, at several weights (what the gate avoids);
- a fixed 60° guess.

Choose settings on the validation split's curves; report on the test split's.

Usage: python bench/focal_prior.py NAME=CURVES.json [NAME=CURVES.json ...]
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

PAIR = "detected 2D + fitted 3D"


def errors(curves: dict, prior, gated: bool) -> tuple[np.ndarray, int]:
    """(clips,) absolute relative focal error of each clip's search, and how many clips
    the prior was used on (``prior`` ``None``: the evidence alone)."""
    from meshstream.models.camera import focal_with_prior, refine_minimum

    out, used = [], 0
    for clip in curves.values():
        grid, mean_cost = np.asarray(clip["grid"]), np.asarray(clip[PAIR])
        if prior is None:
            focal = refine_minimum(grid, mean_cost)
        elif gated:
            focal, on = focal_with_prior(grid, mean_cost[None], clip["width"], prior)
            used += on
        else:
            focal, used = refine_minimum(grid, mean_cost + prior.cost(grid, clip["width"])), used + 1
        out.append(abs(focal / clip["true_focal_px"] - 1.0))
    return np.asarray(out), used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", help="NAME=PATH of a focal_ablation.py --curves file")
    args = parser.parse_args()

    from meshstream.models.camera import FocalPrior

    sets = {}
    for item in args.sets:
        name, _, path = item.partition("=")
        sets[name] = json.loads(open(path).read())
    rows = [("evidence alone", None, True)]
    rows += [(f"prior where flat (flat_rise {r:g})", FocalPrior(flat_rise=r), True) for r in (0.005, 0.01, 0.015, 0.02)]
    rows += [(f"prior always (weight {w:g})", FocalPrior(weight=w), False) for w in (0.02, 0.1, 0.3)]
    print("| focal search | " + " | ".join(f"{n}: median / mean / max f % (prior used)" for n in sets) + " |")
    print("|---" + "|---:" * len(sets) + "|")
    for label, prior, gated in rows:
        cells = []
        for curves in sets.values():
            e, used = errors(curves, prior, gated)
            cells.append(f"{100 * np.median(e):.1f} / {100 * e.mean():.1f} / {100 * e.max():.0f} ({used})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for curves in sets.values():
        e = np.asarray([abs(0.5 * c["width"] / math.tan(math.radians(30.0)) / c["true_focal_px"] - 1.0)
                        for c in curves.values()])
        cells.append(f"{100 * np.median(e):.1f} / {100 * e.mean():.1f} / {100 * e.max():.0f}")
    print("| fixed 60° guess | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
