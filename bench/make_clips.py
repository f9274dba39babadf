"""Makes the small clips committed under tests/data (run from the repo root).

- ``sample.mp4``: the README's sample, rendered by the project itself (two Anny bodies
  walking and moving their arms over a real photo), 3 s at 25 fps, with its ground truth
  in ``sample_gt.npz``.
- ``vtest_cut.mp4``: 40 frames of OpenCV's ``vtest.avi`` (real pedestrians, from
  Debian's ``opencv-doc`` package), re-encoded as H.264.

Usage: python bench/make_clips.py [--vtest /usr/share/doc/opencv-doc/examples/data/vtest.avi]
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2

from meshstream.models.synthetic import PersonSpec, render_clip

DATA = Path("tests/data")


def make_sample() -> None:
    background = cv2.cvtColor(cv2.imread(str(DATA / "background.jpg")), cv2.COLOR_BGR2RGB)
    persons = [
        PersonSpec((-0.9, 3.0), (0.35, 0.0), yaw_deg=25, motion="walk"),
        PersonSpec((0.9, 4.2), (-0.15, 0.0), yaw_deg=-15, motion="arms", shirt_rgb=(200, 60, 40)),
    ]
    gt = render_clip(DATA / "sample.mp4", persons, width=640, height=480, fov_deg=70.0, n_frames=75, fps=25.0,
                     background=background, crf=26)
    gt.save(DATA / "sample_gt.npz")


def make_vtest_cut(vtest: Path, n_frames: int = 40) -> None:
    src = av.open(str(vtest))
    dst = av.open(str(DATA / "vtest_cut.mp4"), mode="w")
    stream = src.streams.video[0]
    out = dst.add_stream("libx264", rate=Fraction(10))
    out.width, out.height, out.pix_fmt = stream.codec_context.width, stream.codec_context.height, "yuv420p"
    out.options = {"crf": "30", "preset": "veryfast"}
    for i, frame in enumerate(src.decode(stream)):
        if i >= n_frames:
            break
        for packet in out.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")):
            dst.mux(packet)
    for packet in out.encode():
        dst.mux(packet)
    dst.close()
    src.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vtest", type=Path, default=Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi"))
    args = parser.parse_args()
    make_sample()
    if args.vtest.is_file():
        make_vtest_cut(args.vtest)
    else:
        print(f"{args.vtest} not found (apt-get install opencv-doc); vtest_cut.mp4 not remade")
