"""Accuracy of ``meshstream report`` on rendered clips of known motion. Prints a Markdown table.

Scenes come from seeds (``bench/splits.py``, kind ``motion``), one person each, in
turn a walker (0.8-1.8 m/s in any heading, its speed toward or away from the camera
capped at 0.66 m/s, 3 s), a jumper (countermovement jumps of 15-35 cm every 2 s, free
falls, 4 s) and a squatter (to 112 degrees of knee flexion, 2 s); random
adult phenotype, heading, distance (2.5-6 m), field of view (45-80 degrees), camera
height (0.9-1.5 m) and downward tilt (0-10 degrees), over crops of the sample
background photo, H.264.

Each clip runs through the real CLI three times: at the true focal (``--fov-deg``), with
the focal estimated (the default), and at the true focal with the person's true height
(``--height-m``: the scale known, what is left is the report's and the pose's own error);
then ``meshstream report --format csv``. Per kind:

- walk: error of the median speed (the middle of the track, away from the smoothing
  window's edges) and of the distance over the track's span, percent;
- jump: jumps found against rendered, error of the highest jump, centimetres;
- squat: mean absolute knee flexion error over the clip (near and far knee: the one
  nearer the camera), degrees, against the rendered body's COCO-17 keypoints;
- all: the fitted stature against the rendered body's (distances and speeds scale with it).

Usage: python bench/report.py [--split dev|val|test] [--n 6] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from splits import seeds  # bench/splits.py, beside this script

REPO = Path(__file__).resolve().parents[1]
KINDS = ("walk", "jump", "squat")
VARIANTS = ("true", "estimated", "true + height")  # the focal given or estimated; + the person's height given


def motion_scene(seed: int, photo: np.ndarray) -> dict:
    """One person doing one known motion, drawn from ``seed`` (kind: ``seed % 3``)."""
    from meshstream.models.synthetic import PersonSpec

    rng = np.random.default_rng(seed)
    kind = KINDS[seed % 3]
    fov = rng.uniform(45.0, 80.0)
    half = math.tan(math.radians(fov) / 2)
    z = rng.uniform(2.5, 6.0) + (1.0 if kind == "walk" else 0.0)
    x = z * half * rng.uniform(-0.3, 0.3)
    yaw = float(rng.uniform(0.0, 360.0))
    speed = rng.uniform(0.8, 1.8) if kind == "walk" else 0.0
    seconds = {"walk": 3.0, "jump": 4.0, "squat": 2.0}[kind]
    # Facing (sin yaw, -cos yaw) on the floor; a walker passes (x, z) at mid-clip, with no more
    # than 1 m of depth change either side of it.
    velocity = np.array([math.sin(math.radians(yaw)), -math.cos(math.radians(yaw))]) * speed
    velocity[1] = float(np.clip(velocity[1], -0.66, 0.66))
    start = np.array([x, z]) - velocity * seconds / 2
    person = PersonSpec(
        start_xz=(float(start[0]), float(start[1])), velocity_xz=(float(velocity[0]), float(velocity[1])),
        yaw_deg=math.degrees(math.atan2(velocity[0], -velocity[1])) if speed else yaw, motion=kind,
        shape={"gender": rng.uniform(0, 1), "age": rng.uniform(0.45, 0.8), "height": rng.uniform(0.3, 0.7),
               "weight": rng.uniform(0.3, 0.7)},
        shirt_rgb=tuple(int(c) for c in rng.integers(20, 236, 3)), jump_m=float(rng.uniform(0.15, 0.35)))
    h, w = photo.shape[:2]
    y0, x0 = int(rng.integers(0, h // 4)), int(rng.integers(0, w // 4))
    crop = photo[y0:y0 + 3 * h // 4, x0:x0 + 3 * w // 4]
    background = np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)
    return dict(kind=kind, persons=[person], fov_deg=float(fov), n_frames=int(seconds * 25),
                camera_height_m=float(rng.uniform(0.9, 1.5)), pitch_deg=float(rng.uniform(0.0, 10.0)),
                background=background)


def _cli(*args: str) -> None:
    r = subprocess.run([sys.executable, str(REPO / "process_video.py"), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"meshstream {' '.join(args)} failed: {r.stderr.strip()[-500:]}")


def _read(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _column(rows: list[dict[str, str]], key: str) -> np.ndarray:
    return np.array([float(r[key]) if r[key] != "" else np.nan for r in rows])


def measure(seed: int, work: Path, photo: np.ndarray, body) -> list[dict]:
    """The scene's errors at the true and at the estimated focal."""
    import zarr

    from meshstream.models.synthetic import phenotype_shape, render_frames, write_video
    from meshstream.report import kinematics as km

    scene = motion_scene(seed, photo)
    kind = scene.pop("kind")
    person = scene["persons"][0]
    frames, gt = render_frames(body=body, **scene)
    clip = work / f"s{seed}.mp4"
    write_video(clip, frames, 25.0)
    true_stature = float(body.stature(phenotype_shape(body, person.shape))[0])
    out = []
    for focal in VARIANTS:
        d = work / f"{seed}_{focal.replace(' ', '_')}"
        known = {"true": ("--fov-deg", str(scene["fov_deg"])), "estimated": (),
                 "true + height": ("--fov-deg", str(scene["fov_deg"]), "--height-m", f"{true_stature:.3f}")}[focal]
        _cli(str(clip), "-o", str(d), "-q", "--no-overlay", *known)
        store = zarr.open_group(str(d / clip.with_suffix(".zarr").name), mode="r")
        row = {"seed": seed, "kind": kind, "focal": focal, "found": "tracks" in store and len(store["tracks"]) > 0}
        if not row["found"]:
            out.append(row)
            continue
        _cli("report", str(d / clip.with_suffix(".zarr").name), "--format", "csv", "-o", str(d))
        summary = _read(d / f"s{seed}_summary.csv")
        main = max(summary, key=lambda s: int(s["frames_seen"]))
        cols = _read(d / f"s{seed}_track{main['track_id']}.csv")
        t = _column(cols, "time_s")
        row["stature_err_pct"] = 100 * (float(main["stature_m"]) / true_stature - 1)
        if kind == "walk":
            inner = (t > t[0] + 0.5) & (t < t[-1] - 0.5)
            truth = float(np.hypot(*person.velocity_xz))
            row["speed_err_pct"] = 100 * (np.median(_column(cols, "speed_mps")[inner]) / truth - 1)
            row["distance_err_pct"] = 100 * (_column(cols, "distance_m")[-1] / (truth * (t[-1] - t[0])) - 1)
        elif kind == "jump":
            flights = sum(1.2 + 2 * k <= (len(frames) - 1) / 25.0 for k in range(10))  # mid-flight at 1.2 s, 3.2 s, ...
            row["jumps"] = f"{main['jumps']}/{flights}"
            row["jump_err_cm"] = (100 * (float(main["jump_height_m"]) - person.jump_m) if main["jump_height_m"]
                                  else float("nan"))
        else:
            rows = _column(cols, "frame_index").astype(int)
            kp = gt.keypoints3d[0, rows]
            near = "left" if np.median(kp[:, km.L_HIP, 2]) < np.median(kp[:, km.R_HIP, 2]) else "right"
            for side in ("left", "right"):
                h, k, a = (km.L_HIP, km.L_KNEE, km.L_ANKLE) if side == "left" else (km.R_HIP, km.R_KNEE, km.R_ANKLE)
                err = np.abs(_column(cols, f"knee_flexion_{side}_deg") - km.flexion(kp[:, h], kp[:, k], kp[:, a]))
                row["knee_near_deg" if side == near else "knee_far_deg"] = float(err.mean())
        out.append(row)
    return out


def _mean(rows: list[dict], key: str) -> str:
    v = np.array([r[key] for r in rows if key in r and np.isfinite(r[key])], float)
    return f"{np.mean(np.abs(v)):.1f} ({np.median(np.abs(v)):.1f})" if len(v) else "–"


def main() -> None:
    import cv2

    from meshstream.models.body import AnnyBody

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("dev", "val", "test"), default="dev")
    ap.add_argument("--n", type=int, default=6, help="scenes (in turn walk, jump, squat)")
    ap.add_argument("--keep", default=None, help="keep the clips and outputs here")
    args = ap.parse_args()
    photo = cv2.cvtColor(cv2.imread(str(REPO / "tests" / "data" / "background.jpg")), cv2.COLOR_BGR2RGB)
    body = AnnyBody()
    work = Path(args.keep or tempfile.mkdtemp(prefix="meshstream-report-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in seeds("motion", args.split, args.n):
        rows += measure(seed, work, photo, body)
        print(f"seed {seed}: {' | '.join(map(str, rows[-len(VARIANTS):]))}", file=sys.stderr)
    print(f"Split `{args.split}`, {args.n} scenes; mean (median) of absolute errors\n")
    print("| focal | found | stature % | walk speed % | walk distance % | jumps found | highest jump, cm "
          "| squat knee near, ° | squat knee far, ° |")
    print("|---|---|---|---|---|---|---|---|---|")
    for focal in VARIANTS:
        sel = [r for r in rows if r["focal"] == focal]
        jumps = [r["jumps"].split("/") for r in sel if "jumps" in r]
        found = f"{sum(int(a) for a, _ in jumps)}/{sum(int(b) for _, b in jumps)}" if jumps else "–"
        print(f"| {focal} | {sum(r['found'] for r in sel)}/{len(sel)} | {_mean(sel, 'stature_err_pct')} "
              f"| {_mean(sel, 'speed_err_pct')} | {_mean(sel, 'distance_err_pct')} | {found} "
              f"| {_mean(sel, 'jump_err_cm')} | {_mean(sel, 'knee_near_deg')} | {_mean(sel, 'knee_far_deg')} |")


if __name__ == "__main__":
    main()
