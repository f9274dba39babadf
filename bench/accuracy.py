"""Ground-truth accuracy benchmark: metric depth, focal, translation, pose and shape.

Renders its own suite of clips with known truth (``models/synthetic.py``: Anny bodies
of varied shapes and ages, 1-3 persons, walking, squatting, turning, arm and leg
motions, field of view 35-100 degrees, pelvis depth 0.8-6 m, bodies cut by the frame
edge, over a real photo, H.264), runs the real CLI on each, and prints one table of
BLADE's metrics (``models/metrics.py``) for:

- ``meshstream``: the focal estimated per shot (the default run);
- ``meshstream + relief lifter``: the focal search reads the relief lifter's
  correction of the detector's relative 3D landmarks (``--set
  estimation.focal_landmarks=relief_lifter``; the default reads the detector's);
- ``meshstream without lifter``: the body is fitted to the detector's landmarks as
  given (``--set estimation.lifter=false``), to measure what the pose lifter
  (``models/lifter.py``) brings; the focal search is the same in both;
- ``meshstream + lifter (focal too)``: the lifted landmarks in the focal search as well
  (``--set estimation.focal_landmarks=pose_lifter``);
- ``meshstream + shared floor`` and ``true focal + shared floor``: the default run and
  the true-focal one with ``--set estimation.shared_ground=true`` (``models/ground.py``:
  with three or more people, the floor they share rescales the ones whose fitted size
  disagrees; off by default);
- the fixed-focal guesses of video peers, given to the same pipeline with
  ``--focal-px``: the image diagonal (WHAM, GVHMR), a 60 degree horizontal field of
  view (SAT-HMR, Multi-HMR) and 4D-Humans' f = 5000 at 256 px, scaled to the frame;
- ``true focal``: the ground-truth focal (an oracle, how good depth gets when f is known);
- ``phone metadata focal``: the default run on a copy of the clip whose container
  carries the true focal as a whole-millimetre 35 mm-equivalent, as an iPhone writes it
  (stream copy, FFmpeg's movie-level item): what phone footage gets;
- ``true focal + true height`` and ``meshstream + true height``: the same and the
  default run with ``--height-m`` set to the person's true standing height (one-person
  clips only, chosen with ``--clips``; not in the default set of methods);
- ``live`` and ``live at the true focal``: ``meshstream live`` on the clip read at its
  own pace (every frame fitted on its own, causal filters; not in the default set of
  methods).

``--random N`` scores N random scenes of ``models.synthetic_scenes.random_scene`` instead
(varied poses, phenotypes, headings, cameras and procedural backgrounds), drawn from the
seeds of ``--split`` (``bench/splits.py``: ``dev`` to look at, ``val`` to choose
thresholds on, ``test`` only to report; all held out from the lifter's training).

``--close N`` scores N close-range scenes of ``models.synthetic_scenes.close_scene``
instead (BLADE's case: 1-2 people 0.7-1.5 m away, cut by the frame at the hips or knees,
40-100 degree views; one scene in four a person walking away at 2-4 m, seen from behind);
report it with ``--methods "meshstream,60° FOV,true focal"``.

``--tilted N`` scores N scenes of a still camera looking down at people on a floor
instead (``models.synthetic_scenes.elevated_scene``: 0-35 degrees down, 1.2-4 m high, 1-3
people mostly walking); ``meshstream without floor focal`` is the default run without
the focal from their floor (``--set estimation.floor_focal=false``).

``--pan DEG`` films the suite's clips with a camera that turns DEG degrees to the right
about its centre and back (a handheld follow; the background photo is then a scene at
infinity). ``meshstream without rotation focal`` is the default run with the focal
from the camera's turn switched off (``--set estimation.rotation_focal=false``);
``meshstream with filters in camera axes`` the default run with the temporal filters
in the turning camera's axes (``--set filter.world_axes=false``) instead of the shot's
world's.

``--room`` films the suite's clips in a room instead of over the photo
(``models.synthetic.Room``: floor tiles, walls, skirting and ceiling panels ray-cast by
the clip's own camera, its axes turned 20-44 degrees from the camera's heading, the
people standing on its floor): the scene's straight lines then belong to the camera
that films the people, as in real footage (the photo's belong to another camera).
``meshstream without lines focal`` is the default run without the focal from those
lines (``--set estimation.lines_focal=false``).

Each track-frame is matched to the ground-truth person whose amodal box it overlaps
most (IoU >= 0.5); unmatched ones are counted, not scored. f% is per clip; the other
metrics are over matched person-frames (mean; medians in ``--json``). PVE and mIoU use
every 4th frame (meshes of the same Anny topology, hip-centred; silhouettes of each
body alone, the fitted one at the run's focal).

Usage:
    python bench/accuracy.py [--quick | --random N | --tilted N | --close N] [--clips NAME,...] [--methods NAME,...]
                             [--pan DEG] [--room] [--json PATH] [--keep DIR] [--per-clip]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from splits import seeds  # bench/splits.py, beside this script

if TYPE_CHECKING:
    from meshstream.models.synthetic import Room

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
WIDTH, HEIGHT = 640, 480


@dataclass
class ClipSpec:
    """One clip of the suite: persons as ``PersonSpec`` keyword dicts."""

    name: str
    fov_deg: float
    persons: list[dict]
    n_frames: int = 40
    pitch_deg: float = 0.0
    flip_background: bool = False
    notes: str = ""
    extra: dict = field(default_factory=dict)


SUITE = [
    ClipSpec("walk_70", 70, [dict(start_xz=(-1.2, 3.2), velocity_xz=(0.8, 0.0), yaw_deg=80)], notes="walk across"),
    ClipSpec("two_80", 80, [dict(start_xz=(-0.8, 2.6), velocity_xz=(0.3, 0.0), yaw_deg=30),
                            dict(start_xz=(0.9, 3.6), velocity_xz=(-0.2, 0.0), motion="arms", shirt_rgb=(200, 60, 40))],
             notes="two people, arms"),
    ClipSpec("squat_50", 50, [dict(start_xz=(0.2, 3.4), motion="squat", yaw_deg=-20, shape={"weight": 0.8})],
             flip_background=True, notes="squat, heavy build"),
    ClipSpec("turn_95", 95, [dict(start_xz=(0.1, 1.8), motion="turn", shape={"gender": 0.1})], notes="turning, near, wide"),
    ClipSpec("far_35", 35, [dict(start_xz=(-0.6, 6.0), velocity_xz=(0.5, 0.0), yaw_deg=70, shape={"height": 0.8})],
             flip_background=True, notes="far, narrow, tall"),
    ClipSpec("close_100", 100, [dict(start_xz=(0.0, 0.9), motion="arms", shirt_rgb=(30, 160, 60))],
             notes="0.9 m, legs cut by the frame"),
    ClipSpec("three_60", 60, [dict(start_xz=(-1.0, 2.2), velocity_xz=(0.4, 0.0), yaw_deg=60),
                              dict(start_xz=(0.9, 3.6), motion="legs", shirt_rgb=(200, 60, 40), shape={"gender": 0.0}),
                              dict(start_xz=(-0.2, 5.2), velocity_xz=(0.0, -0.4), yaw_deg=180, shirt_rgb=(200, 200, 40),
                                   shape={"age": 0.25})],
             notes="three people, a child"),
    ClipSpec("legs_45", 45, [dict(start_xz=(0.3, 4.0), motion="legs", yaw_deg=-40, shape={"muscle": 0.8})],
             flip_background=True, notes="kicks, muscular"),
    ClipSpec("approach_85", 85, [dict(start_xz=(0.3, 3.0), velocity_xz=(0.0, -0.9), yaw_deg=0)], pitch_deg=12,
             notes="walks towards a tilted camera, 3 to 1.6 m"),
    ClipSpec("child_65", 65, [dict(start_xz=(0.4, 2.4), motion="squat", shape={"age": 0.2}, shirt_rgb=(200, 60, 40))],
             notes="a squatting child"),
]
QUICK = [ClipSpec("quick_two_75", 75, SUITE[1].persons, n_frames=24)]


def heuristic_focals(width: int, height: int) -> dict[str, float]:
    """The fixed focal guesses of video peers for a frame size, pixels."""
    return {
        "f = diagonal": math.hypot(width, height),
        "60° FOV": 0.5 * width / math.tan(math.radians(30.0)),
        "f = 5000 (scaled)": 5000.0 / 256.0 * max(width, height),
    }


LIVE_METHODS = ("live", "live at the true focal")  # meshstream live on the clip read at its own pace (no drops)
METHODS = ("meshstream", "meshstream + relief lifter", "meshstream without lifter", "meshstream + lifter (focal too)",
           "meshstream + lifter keeps size", "meshstream without focal prior",
           "meshstream + shared floor", "f = diagonal", "60° FOV", "f = 5000 (scaled)", "true focal",
           "true focal + shared floor", "phone metadata focal", "meshstream + true height", "true focal + true height",
           "meshstream without rotation focal", "meshstream without floor focal",
           "meshstream with filters in camera axes", "meshstream without lines focal", *LIVE_METHODS)
HEIGHT_METHODS = ("meshstream + true height", "true focal + true height")  # --height-m: one-person clips only


@dataclass
class SceneSpec:
    """A drawn scene: ``kind`` ``"random"`` is ``models.synthetic_scenes.random_scene``,
    ``"tilted"`` is ``elevated_scene`` (a still camera looking down at people on a
    floor), ``"close"`` is ``close_scene`` (people at 0.7-1.5 m, or seen from behind at
    2-4 m); the seeds come from ``bench/splits.py``."""

    kind: str
    seed: int
    n_frames: int

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.seed}"

    @property
    def notes(self) -> str:
        return {"random": "random scene", "tilted": "camera looking down", "close": "close range or seen from behind"}[
            self.kind]


def pan_profile(amplitude_deg: float, n_frames: int) -> np.ndarray | None:
    """(n_frames,) pan angles, degrees: out to ``amplitude_deg`` and back, eased (a
    handheld follow); ``None`` for 0."""
    if not amplitude_deg:
        return None
    return amplitude_deg * np.sin(np.linspace(0.0, np.pi, n_frames))


def suite_room(spec: ClipSpec) -> Room:
    """The room a suite clip is filmed in with ``--room``: its axes turned 20-44 degrees
    from the camera's heading (a different turn and colours per clip), large enough to
    hold the camera and every person of the suite."""
    from meshstream.models.synthetic import Room

    k = [c.name for c in SUITE + QUICK].index(spec.name)
    return Room(x_range=(-8.0, 8.0), z_range=(-4.0, 12.0), yaw_deg=20.0 + (7 * k) % 25, seed=k)


def render(spec: ClipSpec | SceneSpec, out: Path, body, pan_deg: float = 0.0, room: bool = False):
    import cv2

    from meshstream.models.synthetic import PersonSpec, render_frames, write_video
    from meshstream.models.synthetic_scenes import close_scene, elevated_scene, random_scene

    if isinstance(spec, SceneSpec):
        draw = {"random": random_scene, "tilted": elevated_scene, "close": close_scene}[spec.kind]
        scene = draw(spec.seed, WIDTH, HEIGHT, **({"body": body} if spec.kind == "close" else {}))
        crf = scene.pop("crf")
        frames, gt = render_frames(width=WIDTH, height=HEIGHT, n_frames=spec.n_frames, body=body, keep_vertices=True,
                                   **scene)
        path = out / f"{spec.name}.mp4"
        write_video(path, frames, 25.0, crf=crf)
        return path, gt

    photo = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    if spec.flip_background:
        photo = np.ascontiguousarray(photo[:, ::-1])
    persons = [PersonSpec(**p) for p in spec.persons]
    frames, gt = render_frames(persons, width=WIDTH, height=HEIGHT, fov_deg=spec.fov_deg, n_frames=spec.n_frames,
                               background=photo, body=body, pitch_deg=spec.pitch_deg, keep_vertices=True,
                               pan_deg=pan_profile(pan_deg, spec.n_frames), room=suite_room(spec) if room else None)
    path = out / f"{spec.name}.mp4"
    write_video(path, frames, 25.0, crf=20)
    return path, gt


def true_stature(spec: ClipSpec, body) -> float:
    """Standing height of a one-person suite clip's body, metres (what ``--height-m``
    would be given)."""
    from meshstream.models.synthetic import phenotype_shape

    if not isinstance(spec, ClipSpec) or len(spec.persons) != 1:
        raise SystemExit(f"{spec.name}: the true-height methods need a one-person suite clip; choose them with --clips")
    return float(body.stature(phenotype_shape(body, spec.persons[0].get("shape", {})))[0])


def phone_copy(clip: Path, focal_px: float, width: int, height: int) -> Path:
    """A stream copy of ``clip`` whose container gives ``focal_px`` as the whole-millimetre
    35 mm-equivalent focal length an iPhone writes (``stream/container_tags.py``)."""
    import av

    from meshstream.stream.container_tags import FOCAL_35MM_KEY, focal_35mm_from_px

    out = clip.with_name(f"{clip.stem}_phone.mov")
    with av.open(str(clip)) as src, av.open(str(out), "w", options={"movflags": "use_metadata_tags"}) as dst:
        dst.metadata[FOCAL_35MM_KEY] = str(round(focal_35mm_from_px(focal_px, width, height)))
        video = src.streams.video[0]
        copy = dst.add_stream_from_template(video)
        for packet in src.demux(video):
            if packet.dts is not None:  # the demuxer's final empty packet
                packet.stream = copy
                dst.mux(packet)
    return out


def run_cli(clip: Path, out: Path, *extra: str, live: bool = False):
    """The CLI on ``clip`` (``live``: ``meshstream live`` reading the file at its own pace,
    so every frame is fitted one at a time); returns the store."""
    import zarr

    args = (["live", "--source", str(clip), "--no-browser", "--port", "0"] if live
            else [str(clip), "-q", "--no-overlay"])
    proc = subprocess.run([sys.executable, str(REPO / "process_video.py"), *args, "-o", str(out), *extra],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"meshstream failed on {clip.name}: {proc.stderr.strip()[-500:]}")
    return zarr.open_group(str(out / f"{clip.stem}{'_live' if live else ''}.zarr"), mode="r")


def _match(store, gt) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Per track: (track id, store rows, frame indices, ground-truth person per row or -1)."""
    out = []
    if "tracks" not in store.group_keys():  # nobody found
        return out
    frame_index = store["frames/frame_index"][:]
    for tid in store["tracks"].group_keys():
        g = store[f"tracks/{tid}"]
        rows = np.arange(g["frame_index"].shape[0])
        frames = frame_index[g["frame_index"][:]]
        person = gt.match(frames, g["bbox_xyxy"][:])
        out.append((tid, rows, frames, person))
    return out


def evaluate(store, gt, body, mesh_every: int = 4) -> dict:
    """All metrics of one run against the clip's ground truth (lists per person-frame)."""
    import roma
    import torch

    from meshstream.models import metrics as M
    from meshstream.models.rasterizer import rasterize

    focals = store["camera/focal_px"][:]
    focals = focals[np.isfinite(focals)]  # NaN: no person in the shot yet
    focal = float(np.median(focals)) if len(focals) else float("nan")
    res: dict[str, list] = {k: [] for k in ("tz", "inv_tz", "txy", "mpjpe", "pa_mpjpe", "pve", "miou", "accel")}
    res["f"] = [float(M.focal_error(focal, gt.focal_px))] if np.isfinite(focal) else []  # no focal: nobody found
    res["focal_px"], res["focal_gt"] = focal, float(gt.focal_px)
    matched = total = 0
    pp = np.asarray(gt.principal_point)
    for tid, rows, frames, person in _match(store, gt):
        g = store[f"tracks/{tid}"]
        total += len(rows)
        ok = person >= 0
        matched += int(ok.sum())
        if not ok.any():
            continue
        kp = g["keypoints3d_coco17"][:].astype(np.float64)
        kp_gt = gt.keypoints3d[person.clip(0), frames]
        pel = M.hip_midpoint(kp)
        pel_gt = M.hip_midpoint(kp_gt)
        res["tz"] += M.tz_error(pel[ok], pel_gt[ok]).tolist()
        res["inv_tz"] += M.inverse_tz_error(pel[ok], pel_gt[ok]).tolist()
        res["txy"] += M.txy_error(pel[ok], pel_gt[ok]).tolist()
        res["mpjpe"] += M.mpjpe(kp[ok], kp_gt[ok]).tolist()
        res["pa_mpjpe"] += M.pa_mpjpe(kp[ok], kp_gt[ok]).tolist()
        # Acceleration over runs of consecutive frames of one matched person.
        for p in np.unique(person[ok]):
            sel = np.nonzero(person == p)[0]
            breaks = np.nonzero(np.diff(frames[sel]) != 1)[0] + 1
            for run in np.split(sel, breaks):
                if len(run) >= 3:
                    res["accel"] += M.accel_error(kp[run], gt.keypoints3d[p, frames[run]]).tolist()
        if gt.vertices is None or store.attrs["body_model"] != body.name:
            continue
        pick = np.nonzero(ok)[0][::mesh_every]
        dt = body.dtype
        with torch.no_grad():
            rest = body.rest(torch.as_tensor(g["shape"][:][None], dtype=dt))
            verts = body.vertices(torch.as_tensor(g["body_pose"][:][pick], dtype=dt), rest).double().numpy()
        rot = roma.rotvec_to_rotmat(torch.as_tensor(g["global_orient"][:][pick].astype(np.float64))).numpy()
        verts = verts @ rot.transpose(0, 2, 1) + g["transl"][:][pick, None].astype(np.float64)
        verts_gt = gt.vertices[person[pick], frames[pick]].astype(np.float64)
        res["pve"] += M.pve(verts, verts_gt, pel[pick], pel_gt[pick]).tolist()
        for v, v_gt, f in zip(verts, verts_gt, frames[pick]):
            masks = []
            for vv, ff in ((v, focal), (v_gt, gt.focal_px)):
                uvz = np.concatenate([ff * vv[:, :2] / vv[:, 2:3] + pp, vv[:, 2:3]], 1)
                masks.append(rasterize(uvz, gt.faces, gt.height, gt.width, cull_back_faces=True).mask)
            res["miou"].append(float(M.silhouette_iou(masks[0][None], masks[1][None])[0]))
    if matched == 0:  # nobody found: a given focal was not estimated, so not scored either
        res["f"] = []
    res["matched"], res["total"] = matched, total
    res["gt_person_frames"] = int(gt.visible.sum())
    return res


COLUMNS = (("f", "f %", 100.0), ("tz", "Tz (m)", 1.0), ("inv_tz", "1/Tz (1/m)", 1.0), ("txy", "Txy (m)", 1.0),
           ("mpjpe", "MPJPE (mm)", 1.0), ("pa_mpjpe", "PA-MPJPE (mm)", 1.0), ("pve", "PVE (mm)", 1.0),
           ("miou", "mIoU", 1.0), ("accel", "accel (mm/f²)", 1.0))


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """Per method: mean and median of every metric over all clips' person-frames
    (f %: over clips), plus the share of ground-truth person-frames found."""
    out = {}
    for method, results in runs.items():
        row: dict = {}
        for key, _, scale in COLUMNS:
            values = np.concatenate([np.asarray(r[key], np.float64) for r in results]) * scale
            row[key] = {"mean": float(values.mean()) if len(values) else float("nan"),
                        "median": float(np.median(values)) if len(values) else float("nan")}
        row["found"] = sum(r["matched"] for r in results) / max(sum(r["gt_person_frames"] for r in results), 1)
        out[method] = row
    return out


def print_table(summary: dict[str, dict]) -> None:
    head = "| method | " + " | ".join(title for _, title, _ in COLUMNS) + " | found |"
    print(head)
    print("|---" + "|---:" * (len(COLUMNS) + 1) + "|")
    for method, row in summary.items():
        cells = []
        for key, _, _ in COLUMNS:
            stat = row[key]["median"] if key == "f" else row[key]["mean"]
            cells.append("n/a" if math.isnan(stat) else (f"{stat:.3f}" if stat < 1 else f"{stat:.1f}"))
        print(f"| {method} | " + " | ".join(cells) + f" | {100 * row['found']:.0f} % |")
    print("\nf %: median over clips; other columns: mean over matched person-frames.")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short two-person clip (what the tests run)")
    parser.add_argument("--clips", default=None, help="comma-separated clip names of the suite")
    parser.add_argument("--random", type=int, default=0, metavar="N",
                        help="instead of the suite: N random scenes of --split (30 frames each)")
    parser.add_argument("--tilted", type=int, default=0, metavar="N",
                        help="instead of the suite: N scenes of a still camera looking down at people on a floor, of "
                             "--split (48 frames each)")
    parser.add_argument("--close", type=int, default=0, metavar="N",
                        help="instead of the suite: N close-range scenes of --split (people at 0.7-1.5 m cut by the "
                             "frame, or seen from behind at 2-4 m; 40 frames each)")
    parser.add_argument("--split", choices=("dev", "val", "test"), default="dev",
                        help="seed range of --random, --tilted and --close (bench/splits.py): dev to look at, val to choose "
                             "thresholds on, test only to report (default dev)")
    parser.add_argument("--methods", default=",".join(m for m in METHODS if m not in HEIGHT_METHODS + LIVE_METHODS),
                        help=f"comma-separated from: {', '.join(METHODS)} (the true-height ones need --clips of "
                             "one-person clips)")
    parser.add_argument("--pan", type=float, default=0.0, metavar="DEG",
                        help="film the suite's clips with a camera that pans DEG degrees right and back (not with "
                             "--random)")
    parser.add_argument("--room", action="store_true",
                        help="film the suite's clips in a ray-cast room (straight lines of the camera's own scene) "
                             "instead of over the photo (not with --random or --tilted)")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument("--keep", type=Path, default=None, help="keep clips and stores in this folder")
    parser.add_argument("--per-clip", action="store_true", help="also print f %% and mean Tz per clip")
    args = parser.parse_args(argv)

    from meshstream.models.body import AnnyBody

    suite: list = QUICK if args.quick else SUITE
    if args.random:
        suite = [SceneSpec("random", seed, 30) for seed in seeds("random", args.split, args.random)]
    if args.tilted:
        suite = [SceneSpec("tilted", seed, 48) for seed in seeds("tilted", args.split, args.tilted)]
    if args.close:
        suite = [SceneSpec("close", seed, 40) for seed in seeds("close", args.split, args.close)]
    if args.clips:
        names = set(args.clips.split(","))
        suite = [c for c in SUITE + QUICK if c.name in names]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods: {', '.join(sorted(unknown))}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="meshstream-accuracy-"))
    work.mkdir(parents=True, exist_ok=True)
    body = AnnyBody()
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    per_clip: dict[str, dict[str, dict]] = {}
    true_focal: dict[str, float] = {}
    timing: dict[str, float] = {}
    for spec in suite:
        clip, gt = render(spec, work, body, args.pan, args.room)
        per_clip[spec.name] = {}
        true_focal[spec.name] = float(gt.focal_px)
        guesses = heuristic_focals(gt.width, gt.height)
        for method in methods:
            extra: list[str] = []
            if method in guesses:
                extra = ["--focal-px", f"{guesses[method]:.3f}"]
            elif method in ("true focal", "live at the true focal"):
                extra = ["--focal-px", f"{gt.focal_px:.3f}"]
            elif method == "true focal + shared floor":
                extra = ["--focal-px", f"{gt.focal_px:.3f}", "--set", "estimation.shared_ground=true"]
            elif method == "true focal + true height":
                extra = ["--focal-px", f"{gt.focal_px:.3f}", "--height-m", f"{true_stature(spec, body):.4f}"]
            elif method == "meshstream + true height":
                extra = ["--height-m", f"{true_stature(spec, body):.4f}"]
            elif method == "meshstream + shared floor":
                extra = ["--set", "estimation.shared_ground=true"]
            elif method == "meshstream + relief lifter":
                extra = ["--set", "estimation.focal_landmarks=relief_lifter"]
            elif method == "meshstream without lifter":
                extra = ["--set", "estimation.lifter=false"]
            elif method == "meshstream + lifter keeps size":
                extra = ["--set", "estimation.lifter_keeps_size=true"]
            elif method == "meshstream without focal prior":
                extra = ["--set", "estimation.focal_prior_weight=0"]
            elif method == "meshstream without rotation focal":
                extra = ["--set", "estimation.rotation_focal=false"]
            elif method == "meshstream without floor focal":
                extra = ["--set", "estimation.floor_focal=false"]
            elif method == "meshstream without lines focal":
                extra = ["--set", "estimation.lines_focal=false"]
            elif method == "meshstream with filters in camera axes":
                extra = ["--set", "filter.world_axes=false"]
            elif method == "meshstream + lifter (focal too)":
                extra = ["--set", "estimation.focal_landmarks=pose_lifter"]
            run_clip = phone_copy(clip, gt.focal_px, gt.width, gt.height) if method == "phone metadata focal" else clip
            t0 = time.perf_counter()
            folder = "".join(c if c.isalnum() else "_" for c in method.replace("+", "plus").replace("°", "deg"))
            store = run_cli(run_clip, work / folder, *extra, live=method in LIVE_METHODS)
            timing[method] = timing.get(method, 0.0) + time.perf_counter() - t0
            result = evaluate(store, gt, body)
            runs[method].append(result)
            f_pct = 100 * result["f"][0] if result["f"] else float("nan")
            per_clip[spec.name][method] = {
                "f_pct": f_pct, "focal_px": result["focal_px"],
                **{f"{k}_mean": float(np.mean(result[k])) if result[k] else float("nan")
                   for k in ("tz", "mpjpe", "pa_mpjpe", "miou")}}
        print(f"{spec.name}: " + ", ".join(f"{m}: f {v['f_pct']:.1f} %, Tz {v['tz_mean']:.3f} m"
                                            for m, v in per_clip[spec.name].items()), file=sys.stderr)
    summary = summarise(runs)
    print_table(summary)
    if args.per_clip:
        print("\n| clip | notes | true focal (px) | " + " | ".join(f"{m}: f % / Tz (m)" for m in methods) + " |")
        print("|---|---|---:" + "|---:" * len(methods) + "|")
        for spec in suite:
            cells = " | ".join(f"{v['f_pct']:.1f} / {v['tz_mean']:.2f}" for v in per_clip[spec.name].values())
            print(f"| {spec.name} | {spec.notes} | {true_focal[spec.name]:.0f} | {cells} |")
    result = {"summary": summary, "per_clip": per_clip, "cli_seconds": timing,
              "clips": [s.name for s in suite], "methods": methods}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
