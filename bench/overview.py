"""Makes the README's picture: a frame of the sample's overlay video beside the same
frame of its exported GLB tracks, rendered by Blender.

Runs the real CLI on ``tests/data/sample.mp4`` with ``--export glb``, renders the GLBs
with ``bench/render_export.py`` in Blender's Python (``MESHSTREAM_BLENDER_PYTHON``, or
``--blender``), and writes one JPEG.

Usage: python bench/overview.py [--frame N] [--out docs/images/overview.jpg] [--blender PYTHON]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def overlay_frame(path: Path, index: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB frame ``index`` of a video."""
    import av

    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise ValueError(f"{path} has no frame {index}")


def best_frame(store_path: Path) -> int:
    """The stored frame nearest the clip's middle in which every track was seen."""
    import zarr

    store = zarr.open_group(str(store_path), mode="r")
    n = int(store.attrs["n_frames"])
    seen = np.zeros(n, int)
    for tid in store["tracks"].group_keys():
        seen[store[f"tracks/{tid}/frame_index"][:]] += 1
    candidates = np.nonzero(seen == seen.max())[0]
    return int(candidates[np.argmin(np.abs(candidates - n // 2))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frame", type=int, default=None,
                        help="frame of the clip to show (default: the one nearest the middle with every track seen)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "overview.jpg")
    parser.add_argument("--blender", default=os.environ.get("MESHSTREAM_BLENDER_PYTHON"),
                        help="Blender's Python (bpy installed), default $MESHSTREAM_BLENDER_PYTHON")
    args = parser.parse_args()
    if not args.blender:
        sys.exit("overview.py: give --blender PYTHON or set MESHSTREAM_BLENDER_PYTHON (a Python with bpy)")
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="meshstream-overview-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, str(REPO / "process_video.py"), str(REPO / "tests" / "data" / "sample.mp4"),
                        "-o", str(work), "-q", "--export", "glb"], check=True)
        glbs = sorted(str(p) for p in work.glob("sample_track_*.glb"))
        frame = args.frame if args.frame is not None else best_frame(work / "sample.zarr")
        render = work / "render.png"
        subprocess.run([args.blender, str(REPO / "bench" / "render_export.py"), "--", str(render),
                        str(frame), *glbs], check=True, capture_output=True)
        left = Image.fromarray(overlay_frame(work / "sample_overlay.mp4", frame))
        right = Image.open(render).convert("RGB")
        right = right.resize((round(right.width * left.height / right.height), left.height), Image.LANCZOS)
        both = Image.new("RGB", (left.width + right.width, left.height))
        both.paste(left, (0, 0))
        both.paste(right, (left.width, 0))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        both.save(args.out, quality=85)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
