"""The shared floor (``--set estimation.shared_ground=true``) on rendered scenes of three
people under a camera that looks down, at the true focal.

For the first ``--n`` tilted scenes (``models.synthetic_scenes.elevated_scene``) of
``--split`` that hold three people, runs the CLI at the true focal three ways: without
the floor, with the floor's normal from the fitted bodies' down axes alone
(``estimation.ground_up_sd_deg=0``), and with it refined by the torsos' image lines (the
default). Scenes where the floor did not form (fewer than three tracks showed their
feet in 8 frames) are counted and left out of the table. Per track it scores the median
|Tz error| (metres) and the error of log depth after removing the scene's median (the
part of a track's size error the floor can see: it cannot see an error all tracks
share); per scene the angle between the floor's normal and the truth.

Usage: python bench/shared_floor.py --split val --n 20 [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
from accuracy import SceneSpec, render, run_cli
from splits import SPLITS

METHODS = {
    "no floor": [],
    "floor, bodies' normal": ["--set", "estimation.shared_ground=true", "--set", "estimation.ground_up_sd_deg=0"],
    "floor, torsos' normal (default)": ["--set", "estimation.shared_ground=true"],
}


def three_person_seeds(split: str, n: int) -> list[int]:
    """The first ``n`` seeds of the tilted ``split`` whose scene holds three people."""
    from meshstream.models.synthetic_scenes import elevated_scene

    out = []
    for seed in SPLITS["tilted"][split]:
        if len(elevated_scene(seed)["persons"]) == 3:
            out.append(seed)
            if len(out) == n:
                return out
    raise SystemExit(f"the {split} split holds fewer than {n} three-person tilted scenes")


def track_log_depth_errors(store, gt) -> np.ndarray:
    """(tracks,) median log(Tz / Tz_true) of each track of ``store`` (matched to the person
    whose pelvis it follows in the image)."""
    frame_index = store["frames/frame_index"][:]
    out = []
    for tid in store["tracks"].group_keys():
        t = store[f"tracks/{tid}"]
        fi = frame_index[t["frame_index"][:]]
        pel = t["pelvis"][:].astype(np.float64)
        image = [np.median(np.linalg.norm(gt.pelvis[p, fi, :2] / gt.pelvis[p, fi, 2:] - pel[:, :2] / pel[:, 2:], 1))
                 for p in range(len(gt.pelvis))]
        p = int(np.argmin(image))
        out.append(float(np.median(np.log(pel[:, 2] / gt.pelvis[p, fi, 2]))))
    return np.asarray(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "val", "test"), default="dev")
    parser.add_argument("--n", type=int, default=10, help="three-person scenes to render (default 10)")
    parser.add_argument("--keep", type=Path, help="keep clips and stores here")
    args = parser.parse_args()

    from meshstream.models.body import AnnyBody
    from meshstream.models.ground import floor_down
    from meshstream.models.synthetic_scenes import elevated_scene

    body = AnnyBody()
    work = args.keep or Path(tempfile.mkdtemp(prefix="shared_floor_"))
    rows: dict[str, list[tuple[float, float, float]]] = {m: [] for m in METHODS}
    formed = 0
    for seed in three_person_seeds(args.split, args.n):
        spec = SceneSpec("tilted", seed, 48)
        scene_dir = work / spec.name
        scene_dir.mkdir(parents=True, exist_ok=True)
        clip, gt = render(spec, scene_dir, body)
        true_down = floor_down(math.radians(elevated_scene(seed)["pitch_deg"]), 0.0)
        runs = {}
        for i, (name, extra) in enumerate(METHODS.items()):
            runs[name] = run_cli(clip, scene_dir / f"method{i}", "--focal-px", f"{gt.focal_px:.4f}", *extra)
        grounds = [runs[m].attrs["shared_ground"][0] for m in METHODS if m != "no floor"]
        if any(g is None for g in grounds):
            print(f"{spec.name}: the floor did not form")
            continue
        formed += 1
        for name, store in runs.items():
            log_err = track_log_depth_errors(store, gt)
            ground = store.attrs["shared_ground"][0]
            angle = float("nan") if ground is None else math.degrees(
                math.acos(min(float(np.asarray(ground["down"]) @ true_down), 1.0)))
            tz_err = np.abs(np.expm1(log_err))  # relative |Tz error| per track
            rows[name].append((angle, float(np.abs(log_err - np.median(log_err)).mean()), float(tz_err.mean())))
            print(f"{spec.name} {name}: normal {angle:.2f} deg, relative log depth "
                  f"{rows[name][-1][1]:.4f}, |Tz error| {rows[name][-1][2]:.3f} of Tz", flush=True)
    print(f"\n{formed} scenes of {args.n} ({args.split}) formed a floor\n")
    print("| method | normal error (deg), mean / max | relative log depth error | abs Tz error (fraction of Tz) |")
    print("|---|---:|---:|---:|")
    for name, r in rows.items():
        if not r:
            continue
        a = np.asarray(r)
        normal = "—" if np.isnan(a[:, 0]).all() else f"{np.nanmean(a[:, 0]):.2f} / {np.nanmax(a[:, 0]):.2f}"
        print(f"| {name} | {normal} | {a[:, 1].mean():.4f} | {a[:, 2].mean():.3f} |")


if __name__ == "__main__":
    main()
