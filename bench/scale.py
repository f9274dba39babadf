"""Batch throughput and memory of the executors, in one run, on the same clips.

    python bench/scale.py [--copies 4] [--rendered 2] [--executors inline,threaded,ray]
                          [--fitters 1] [--clips 1] [--max-frames N]

Clips: ``--copies`` copies of the bundled sample and ``--rendered`` rendered clips of two
people (the first development seeds of ``random_scene`` that hold two). Each executor
runs ``meshstream batch`` on all of them in a fresh process; the table gives the batch's
frames/s (its own clock, model loading included), the wall time of the command, and the
peak resident memory of the command's whole process tree (Ray's raylet, GCS and
workers included), sampled every 0.2 s from /proc (Linux). Ratios are against the
first executor, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from splits import seeds

ROOT = Path(__file__).resolve().parent.parent


def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, MiB (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as f:
                rss[int(entry)] = int(f.read().split()[1])
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_batch(executor: str, clips: list[str], out: Path, extra: list[str]) -> tuple[float, float, dict]:
    """Runs ``meshstream batch``; returns (wall seconds, peak tree RSS MiB, batch.json)."""
    cmd = [sys.executable, str(ROOT / "process_video.py"), "batch", *clips, "-o", str(out), "--executor", executor,
           "--no-overlay", "-q", *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_rss_mib(proc.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{executor}: meshstream batch failed ({proc.returncode}): {proc.stderr.read()[-2000:]}")
    return wall, peak, json.loads((out / "batch.json").read_text())


def make_clips(work: Path, copies: int, rendered: int) -> list[str]:
    from meshstream.models.body import AnnyBody
    from meshstream.models.synthetic import render_frames, write_video
    from meshstream.models.synthetic_scenes import random_scene

    clips = []
    for i in range(copies):
        clips.append(str(shutil.copy(ROOT / "tests/data/sample.mp4", work / f"sample_{i}.mp4")))
    body = None
    for seed in seeds("random", "dev", 900):
        if len(clips) == copies + rendered:
            break
        kw = random_scene(seed)
        if len(kw["persons"]) < 2:
            continue
        body = body or AnnyBody()
        crf = kw.pop("crf")
        frames, _ = render_frames(body=body, n_frames=75, **kw)
        write_video(work / f"two_{seed}.mp4", frames, 25.0, crf=crf)
        clips.append(str(work / f"two_{seed}.mp4"))
    return clips


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--copies", type=int, default=4)
    p.add_argument("--rendered", type=int, default=2)
    p.add_argument("--executors", default="inline,threaded,ray")
    p.add_argument("--fitters", type=int, default=1)
    p.add_argument("--clips", type=int, default=1, help="ray: clips in flight")
    p.add_argument("--max-frames", type=int, default=None)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="meshstream-scale-"))
    try:
        clips = make_clips(work, args.copies, args.rendered)
        extra = ["--max-frames", str(args.max_frames)] if args.max_frames else []
        rows = []
        for executor in args.executors.split(","):
            ray = ["--fitters", str(args.fitters), "--clips", str(args.clips)] if executor == "ray" else []
            wall, peak, batch = run_batch(executor, clips, work / executor, extra + ray)
            frames = sum(c.get("frames", 0) for c in batch["clips"])
            label = executor + (f" ({args.clips} clip actor{'s' * (args.clips > 1)}, {args.fitters} fitter"
                                f"{'s' * (args.fitters > 1)})" if executor == "ray" else "")
            rows.append((label, frames, batch["seconds"], wall, peak))
        print(f"{len(clips)} clips ({args.copies} x sample, {args.rendered} rendered two-person), "
              f"{os.cpu_count()} CPUs\n")
        print("| executor | frames | batch s | frames/s | ratio | command wall s | peak RSS (tree) MiB |")
        print("|---|---|---|---|---|---|---|")
        base = rows[0][1] / rows[0][2]
        for label, frames, secs, wall, peak in rows:
            fps = frames / secs
            print(f"| {label} | {frames} | {secs:.1f} | {fps:.2f} | {fps / base:.2f} | {wall:.1f} | {peak:.0f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
