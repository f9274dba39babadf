"""YOLO pose speed: frames/s of ultralytics' pose networks by size, input size and batch.

Runs in an environment with the ``yolo`` extra. The networks are built from ultralytics'
model yamls (``yolo11n-pose.yaml`` ...): no weights are needed, and a network's speed does
not depend on its weights (confidence 0.25 keeps the untrained network's few boxes, so
non-maximum suppression costs what it costs with real weights on a sparse frame). Frames
are 1920x1080 (a broadcast) resized by ultralytics to ``imgsz``. On a CUDA device the
batch sizes are 1-32; on a CPU 1 and 4. The reference row is yolo11n-pose at 640 px,
batch 1, measured in the same run.

Usage: python bench/yolo_speed.py [--device cpu|cuda] [--models n,x] [--imgsz 640,1280] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def frames_per_second(model, frames: list[np.ndarray], imgsz: int, batch: int, device: str, repeats: int) -> float:
    """Frames/s of ``model`` on ``frames`` in batches of ``batch`` (the median of ``repeats``)."""
    import torch

    chunk = frames[:batch]
    model.predict(chunk, imgsz=imgsz, conf=0.25, device=device, verbose=False)  # warm-up
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.predict(chunk, imgsz=imgsz, conf=0.25, device=device, verbose=False)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return batch / float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="n,x", help="YOLO11 pose sizes: n, s, m, l, x")
    parser.add_argument("--imgsz", default="640,1280")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import torch
    from ultralytics import YOLO

    rng = np.random.default_rng(0)
    batches = [1, 2, 4, 8, 16, 32] if args.device.startswith("cuda") else [1, 4]
    frames = [rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8) for _ in range(max(batches))]
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    print(f"YOLO11 pose on {device_name} (torch {torch.__version__}), 1920x1080 frames\n")
    print("| network | imgsz | batch | frames/s | × reference |")
    print("|---|---:|---:|---:|---:|")
    reference = frames_per_second(YOLO("yolo11n-pose.yaml"), frames, 640, 1, args.device, args.repeats)
    for size in args.models.split(","):
        model = YOLO(f"yolo11{size}-pose.yaml")
        for imgsz in (int(v) for v in args.imgsz.split(",")):
            for batch in batches:
                fps = frames_per_second(model, frames, imgsz, batch, args.device, args.repeats)
                print(f"| yolo11{size}-pose | {imgsz} | {batch} | {fps:.1f} | {fps / reference:.2f} |", flush=True)


if __name__ == "__main__":
    main()
