"""Speed and memory benchmark: prints a Markdown table.

Each stage runs alone, in order, over the same frames (single process, no threads) so
its cost per frame is clean; the end-to-end figure runs the real CLI (threaded
pipeline) in a subprocess, whose peak RSS is read from the OS. MediaPipe's
PoseLandmarker alone (VIDEO mode, whole frames) is timed on the same frames, and so are
the pieces of ``perception.small_people``: a person's crop through the PoseLandmarker and
through BlazePose's landmark network alone, and the contrast blobs.

Usage: python bench/speed.py [CLIP] [--frames N]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


_RUN = (
    "import resource; from meshstream.stream.config import load_config; from meshstream.stream.run import run; "
    "s = run({clip!r}, load_config(None, ['decode.max_frames={frames}']), out_dir={out!r}, progress=False); "
    "print('FPS', s.fps); print('START', s.startup_seconds); "
    "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def _pipeline_run(clip: str, out: str, frames: int) -> dict[str, float]:
    """The real threaded pipeline in a fresh process: FPS after model loading, model
    loading seconds, and peak RSS (MiB)."""
    res = subprocess.run([sys.executable, "-c", _RUN.format(clip=clip, frames=frames, out=out)], check=True,
                         capture_output=True, text=True)
    values = {k: float(v) for k, v in (line.split() for line in res.stdout.splitlines())}
    values["RSS"] /= 1024.0
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("clip", nargs="?", default=str(REPO / "tests" / "data" / "sample.mp4"))
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args()

    import torch

    from meshstream.export.overlay import OverlayWriter, render_overlay
    from meshstream.export.zarr_store import ZarrWriter
    from meshstream.models.body import AnnyBody
    from meshstream.stream.config import load_config
    from meshstream.stream.clip_stages import FramePerceiver, Observer
    from meshstream.stream.executors import InlineExecutor
    from meshstream.stream.pipeline import build_estimator, build_perceiver, build_tracker
    from meshstream.stream.sources import open_source

    torch.set_num_threads(os.cpu_count() or 1)
    rows: list[tuple[str, str, str]] = []

    t = time.perf_counter()
    src = open_source(args.clip, max_frames=args.frames)
    frames = list(src)
    n = len(frames)
    info = src.info
    rows.append(("decode (PyAV, RGB)", f"{1000 * (time.perf_counter() - t) / n:.1f}", f"{n} frames {info.width}x{info.height}"))

    config = load_config()  # the CLI's defaults
    observer = Observer(perceive=FramePerceiver(perceiver=build_perceiver(config.perception, config.yolo),
                                                tracker=build_tracker(config.tracking)))
    t = time.perf_counter()
    InlineExecutor().run(frames, observer)  # the decoded frames: perception and tracking alone
    perceive_s = time.perf_counter() - t
    observer.perceive.close()
    dets = observer.detections
    persons = sum(len(d) for d in dets)
    rows.append(("perception + tracking", f"{1000 * perceive_s / n:.1f}", f"{persons / n:.1f} persons/frame"))

    body = AnnyBody()
    size = (info.width, info.height)
    obs, blaze = observer.observations(mask_size=config.estimation.silhouette_size)
    for label, weight in (("estimation (all steps)", 1.0), ("estimation without the silhouette term", 0.0)):
        estimator = build_estimator(dataclasses.replace(config.estimation, silhouette_weight=weight), body)
        t = time.perf_counter()
        steps = [time.perf_counter()]
        structure, searched = estimator.fit_structures(obs)
        steps.append(time.perf_counter())
        focal = estimator.estimate_focal(obs, searched, size)
        steps.append(time.perf_counter())
        fit = estimator(obs, focal.focal_px, size, structure=structure)
        steps.append(time.perf_counter())
        est_s = time.perf_counter() - t
        per = [1000 * (b - a) / max(len(obs), 1) for a, b in zip(steps, steps[1:])]
        rows.append((label, f"{1000 * est_s / n:.1f}",
                     f"{1000 * est_s / max(len(obs), 1):.1f} ms per person-frame (structure {per[0]:.1f}, "
                     f"focal {per[1]:.1f}, refinement {per[2]:.1f})"))

    # A given focal (--focal-px, --fov-deg, --intrinsics): one structure fit, no search.
    estimator = build_estimator(config.estimation, body)
    t = time.perf_counter()
    structure = estimator.fit_structure(obs)
    mid = time.perf_counter()
    estimator(obs, focal.focal_px, size, structure=structure)
    est_s = time.perf_counter() - t
    m = max(len(obs), 1)
    rows.append(("estimation, focal given", f"{1000 * est_s / n:.1f}",
                 f"{1000 * est_s / m:.1f} ms per person-frame (structure {1000 * (mid - t) / m:.1f}, "
                 f"refinement {1000 * (time.perf_counter() - mid) / m:.1f})"))

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        w = ZarrWriter(Path(tmp) / "b.zarr", {}, np.zeros(2), body.num_bones)
        w.append_frames(np.array([f.index for f in frames]), np.array([f.pts_seconds for f in frames]), np.full(n, np.nan))
        w.append_fits(fit, obs.bbox_xyxy, blaze, fit.transl)
        w.close()
        rows.append(("Zarr writing", f"{1000 * (time.perf_counter() - t) / n:.1f}", ""))

        import roma

        t = time.perf_counter()
        verts = body.vertices(torch.as_tensor(fit.body_pose), body.rest(torch.as_tensor(fit.shape[:1])))
        rot = roma.rotvec_to_rotmat(torch.as_tensor(fit.global_orient))
        verts = (verts @ rot.transpose(-1, -2) + torch.as_tensor(fit.transl)[:, None]).numpy()
        ow = OverlayWriter(Path(tmp) / "b.mp4", info.width, info.height, info.fps)
        pp = np.array([info.width / 2, info.height / 2])
        for f in frames:
            idx = np.nonzero(fit.frame_index == f.index)[0]
            ow.write(f, render_overlay(f.rgb, [(int(fit.track_id[i]), verts[i]) for i in idx], body.faces,
                                       focal.focal_px, pp))
        ow.close()
        rows.append(("overlay (mesh + render + H.264)", f"{1000 * (time.perf_counter() - t) / n:.1f}", ""))

        half = _pipeline_run(args.clip, tmp, n // 2)
        full = _pipeline_run(args.clip, tmp, n)
        rows.append(("end to end (threaded pipeline)", f"{1000 / full['FPS']:.1f}",
                     f"{full['FPS']:.2f} FPS after {full['START']:.1f} s of model loading"))
        rows.append(("peak RSS", "", f"{half['RSS']:.0f} MiB at {n // 2} frames, {full['RSS']:.0f} MiB at {n} frames"))

    from mediapipe.tasks.python import BaseOptions, vision
    import mediapipe as mp

    from meshstream.models.mediapipe_bundle import pose_landmarker_bundle
    from meshstream.models.perception import native_stderr_silenced

    opts = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(pose_landmarker_bundle())),
                                        running_mode=vision.RunningMode.VIDEO, num_poses=1)
    with native_stderr_silenced(), vision.PoseLandmarker.create_from_options(opts) as lm:
        t = time.perf_counter()
        for f in frames:
            lm.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=f.rgb), int(f.pts_seconds * 1000))
        mp_s = time.perf_counter() - t
    rows.append(("MediaPipe PoseLandmarker alone", f"{1000 * mp_s / n:.1f}", f"{n / mp_s:.1f} FPS (1 pose, VIDEO mode)"))

    # Small people (perception.small_people): one person's crop through the PoseLandmarker
    # (its detector, then its landmark network) and through the landmark network alone.
    from meshstream.models.landmark_net import PoseLandmarkNet, contrast_blobs
    from meshstream.models.perception import CropLandmarker

    box = next((d.xyxy[0] for d in dets if len(d)), np.array([0, 0, info.width, info.height], np.float32))
    for label, crop in (("a crop: PoseLandmarker (detector + landmarks)", CropLandmarker()),
                        ("a crop: landmark network alone (LiteRT)", PoseLandmarkNet())):
        t = time.perf_counter()
        for f in frames:
            crop(f.rgb, box)
        rows.append((label, f"{1000 * (time.perf_counter() - t) / n:.1f}", "ms per crop, with its mask"))
        if hasattr(crop, "close"):
            crop.close()
    t = time.perf_counter()
    blobs = sum(len(contrast_blobs(f.rgb)) for f in frames)
    rows.append(("contrast blobs", f"{1000 * (time.perf_counter() - t) / n:.1f}", f"{blobs / n:.1f} blobs/frame"))

    print(f"clip: {Path(args.clip).name}, {n} frames, {os.cpu_count()} CPU cores, torch {torch.__version__}\n")
    print("| stage | ms/frame | notes |\n|---|---:|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
