"""Live benchmark: prints two Markdown tables.

1. Speed: ``meshstream live`` on the bundled sample played forwards and backwards as a
   12 s realtime file (640x480, 30 frames/s, one or two people), with the preview page
   open in headless Chromium (Selenium, Debian's ``chromium-driver``): processed
   frames/s, drops, capture-to-display latency (the page reports each frame it shows),
   and each stage's median time. MediaPipe's PoseLandmarker alone (VIDEO mode, every
   frame as fast as it goes) on the same frames is the reference, measured in the same run.
2. Accuracy: the live path (every frame of the sample, causal, one frame per fit) against
   the offline run, both at the true focal, scored against the sample's ground truth.

Usage: python bench/live.py [--seconds S] [--no-page]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


def looped_sample(path: Path, loops: int) -> list:
    """Writes the sample forwards and backwards ``loops`` times; returns the frames (RGB)."""
    import av

    with av.open(str(DATA / "sample.mp4")) as inp:
        frames = [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]
    seq = [rgb for k in range(loops) for rgb in (frames if k % 2 == 0 else frames[::-1])]
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 640, 480, "yuv420p"
        for rgb in seq:
            for p in st.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return seq


def mediapipe_alone(frames: list) -> float:
    """Frames/s of the PoseLandmarker alone (VIDEO mode, one pose) on ``frames``."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from meshstream.models.mediapipe_bundle import pose_landmarker_bundle
    from meshstream.models.perception import native_stderr_silenced

    opts = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(pose_landmarker_bundle())),
                                        running_mode=vision.RunningMode.VIDEO, num_poses=1)
    with native_stderr_silenced(), vision.PoseLandmarker.create_from_options(opts) as lm:
        t = time.perf_counter()
        for i, rgb in enumerate(frames):
            lm.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb), int(i * 1000 / 30))
        return len(frames) / (time.perf_counter() - t)


def live_run(source: Path, out: Path, seconds: float, page: bool, *extra: str) -> dict:
    """One ``meshstream live`` run with the page open (or not); the store's ``live`` figures."""
    cmd = [sys.executable, str(REPO / "process_video.py"), "live", "--source", str(source), "--realtime",
           "--no-browser", "--port", "0", "-o", str(out), "--duration", str(seconds), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    driver = None
    try:
        while page and (line := proc.stderr.readline()):
            if "-> http://" in line:
                from selenium import webdriver
                from selenium.webdriver.chrome.service import Service

                options = webdriver.ChromeOptions()
                options.binary_location = "/usr/bin/chromium"
                for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
                    options.add_argument(flag)
                driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
                driver.get(line.split("-> ", 1)[1].split()[0])
                break
        proc.wait(timeout=seconds + 180)
    finally:
        if driver is not None:
            driver.quit()
        if proc.poll() is None:
            proc.kill()
    if proc.returncode != 0:
        raise SystemExit(f"meshstream live failed: {proc.stderr.read()}")
    return dict(zarr.open_group(str(out / f"{source.stem}_live.zarr"), mode="r").attrs["live"])


def accuracy(tmp: Path) -> list[tuple[str, dict]]:
    """The sample scored against its ground truth: offline and live, at the true focal."""
    from accuracy import evaluate  # bench/accuracy.py, beside this script

    from meshstream.models.body import AnnyBody
    from meshstream.models.synthetic import GroundTruth

    gt = GroundTruth.load(DATA / "sample_gt.npz")
    if gt.boxes is None:  # the sample's truth predates stored boxes: its keypoints' extent, padded as a detector's
        lo, hi = gt.keypoints2d.min(2), gt.keypoints2d.max(2)
        pad = 0.1 * (hi - lo).max(-1, keepdims=True)
        gt.boxes = np.where(gt.visible[..., None], np.concatenate([lo - pad, hi + pad], -1), np.nan)
    body = AnnyBody()
    focal = f"{gt.focal_px:.4f}"
    rows = []
    for name, cmd in (("offline (48-frame windows, smoothed)", [str(DATA / "sample.mp4"), "--no-overlay", "-q"]),
                      ("live (one frame per fit, causal)", ["live", "--source", str(DATA / "sample.mp4"),
                                                            "--no-browser", "--port", "0"])):
        out = tmp / name.split()[0]
        subprocess.run([sys.executable, str(REPO / "process_video.py"), *cmd, "-o", str(out), "--focal-px", focal],
                       check=True, capture_output=True, text=True)
        store = out / ("sample_live.zarr" if cmd[0] == "live" else "sample.zarr")
        res = evaluate(zarr.open_group(str(store), mode="r"), gt, body)
        rows.append((name, {k: float(np.mean(res[k])) for k in ("tz", "mpjpe", "pa_mpjpe", "accel")}
                     | {"found": res["matched"] / max(res["gt_person_frames"], 1)}))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=12.0, help="length of each live run")
    ap.add_argument("--no-page", action="store_true", help="no browser (capture-to-display is then not measured)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = looped_sample(tmp / "loop.mp4", max(2, int(np.ceil(args.seconds / 2.5))))
        runs = [("live, skeleton preview (default)", ()), ("live, mesh preview", ("--set", "live.preview_mesh=true")),
                ("live, one person (perception.max_persons=1)", ("--set", "perception.max_persons=1"))]
        figures = [(name, live_run(tmp / "loop.mp4", tmp / f"run{i}", args.seconds, not args.no_page, *extra))
                   for i, (name, extra) in enumerate(runs)]
        mp_fps = mediapipe_alone(frames)
        scored = accuracy(tmp)
    print(f"{os.cpu_count()} CPU cores; the sample looped to {args.seconds:g} s, 640x480, 30 frames/s, 1-2 people; "
          f"page {'open in headless Chromium' if not args.no_page else 'not open'}\n")
    print("| run | frames/s | × MediaPipe alone | dropped | capture→display p50 / p95 | capture→encoded p50 / p95 "
          "| perceive / fit / preview (median ms) |\n|---|---:|---:|---:|---|---|---|")
    for name, f in figures:
        shown, ready, st = f["latency_display_ms"], f["latency_ready_ms"], f["stage_ms_p50"]
        dropped = f["dropped_capture"] + f["dropped_fit"]
        print(f"| {name} | {f['fps']:.1f} | {f['fps'] / mp_fps:.2f} | {dropped} of {f['captured']} | "
              f"{shown['p50']} / {shown['p95']} ms | {ready['p50']} / {ready['p95']} ms | "
              f"{st.get('perceive')} / {st.get('fit')} / {st.get('preview')} |")
    print(f"| MediaPipe PoseLandmarker alone (reference) | {mp_fps:.1f} | 1.00 | | | | |\n")
    print("| sample at the true focal | Tz error (m) | MPJPE (mm) | PA-MPJPE (mm) | accel (mm/f²) | found |\n"
          "|---|---:|---:|---:|---:|---:|")
    for name, r in scored:
        print(f"| {name} | {r['tz']:.3f} | {r['mpjpe']:.1f} | {r['pa_mpjpe']:.1f} | {r['accel']:.1f} | "
              f"{100 * r['found']:.0f} % |")


if __name__ == "__main__":
    main()
