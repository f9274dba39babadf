"""BVH (Biovision hierarchy) writer: the skeleton and its motion, metres, Y up.

Channels: the root has ``Xposition Yposition Zposition Zrotation Xrotation Yrotation``,
other joints ``Zrotation Xrotation Yrotation``; a joint's rotation is
``Rz(z) @ Rx(x) @ Ry(y)`` (degrees), a delta from the rest pose relative to its parent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import roma
import torch

from .animation import SkeletonAnimation


def write_bvh(path: str | Path, anim: SkeletonAnimation) -> Path:
    """Writes ``anim`` as BVH at its median frame interval (BVH has one ``Frame Time``):
    give it on a regular clock (:meth:`SkeletonAnimation.on_clock`) so that it plays as
    long as the video."""
    path = Path(path)
    children: dict[int, list[int]] = {}
    for k, p in enumerate(anim.parents):
        children.setdefault(int(p), []).append(k)
    lines: list[str] = ["HIERARCHY"]

    def emit(k: int, depth: int) -> None:
        pad = "  " * depth
        kind = "ROOT" if anim.parents[k] < 0 else "JOINT"
        lines.append(f"{pad}{kind} {anim.joint_names[k]}")
        lines.append(f"{pad}{{")
        ox, oy, oz = anim.offsets[k]
        lines.append(f"{pad}  OFFSET {ox:.6f} {oy:.6f} {oz:.6f}")
        if anim.parents[k] < 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
        else:
            lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
        kids = children.get(k, [])
        for c in kids:
            emit(c, depth + 1)
        if not kids:
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET 0.000000 0.050000 0.000000")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    order: list[int] = []

    def visit(k: int) -> None:
        order.append(k)
        for c in children.get(k, []):
            visit(c)

    for root in children.get(-1, []):
        emit(root, 0)
        visit(root)
    n = len(anim.times)
    frame_time = float(np.median(np.diff(anim.times))) if n > 1 else 1.0 / anim.fps
    euler = roma.rotmat_to_euler("ZXY", torch.as_tensor(anim.rotations[:, order]), degrees=True).numpy()
    lines += ["MOTION", f"Frames: {n}", f"Frame Time: {frame_time:.6f}"]
    for i in range(n):
        root_pos = anim.root_translation[i] - anim.offsets[order[0]]
        values = [*root_pos, *euler[i].reshape(-1)]
        lines.append(" ".join(f"{v:.6f}" for v in values))
    path.write_text("\n".join(lines) + "\n")
    return path
