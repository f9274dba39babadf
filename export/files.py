"""Animation files from a finished (or partial) Zarr store: ``meshstream export``.

Each requested format is written per track; a failure in one format is reported and
does not stop the others (nor touch the store).
"""

from __future__ import annotations

import logging
from pathlib import Path

from meshstream.stream.errors import ConfigError, InputError, MeshstreamError

log = logging.getLogger(__name__)

FORMATS = ("bvh", "glb", "fbx", "npz", "smpl")
PLANNED: tuple[str, ...] = ()


def parse_formats(text: str) -> list[str]:
    """``"glb,bvh"`` -> ``["glb", "bvh"]``; unknown or not-yet-available formats raise."""
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    for f in formats:
        if f in PLANNED:
            raise ConfigError(f"export format '{f}' is not available yet; available now: {', '.join(FORMATS)}")
        if f not in FORMATS:
            raise ConfigError(f"unknown export format '{f}'; choose from: {', '.join(FORMATS)}")
    if not formats:
        raise ConfigError(f"no export format given; choose from: {', '.join(FORMATS)}")
    if "fbx" in formats:
        from .fbx import blender_python

        blender_python()  # a missing Blender fails now, before any processing
    return formats


def export_store(store_path: str | Path, formats: list[str], out_dir: str | Path | None = None,
                 model_path: str | Path | None = None) -> tuple[list[Path], list[str]]:
    """Writes ``<clip>_track_<id>.<fmt>`` for every track of a store.

    Args:
        store_path: A meshstream ``.zarr`` store.
        formats: From :data:`FORMATS`.
        out_dir: Output folder (default: beside the store).
        model_path: SMPL-X stores: the model folder or file (default: the store's own).

    Returns:
        The files written and one line per failure.
    """
    from meshstream.models.body import AnnyBody

    import tempfile

    from .animation import camera_animation, level_frame, track_animation
    from .bvh import write_bvh
    from .fbx import blender_python, write_fbx
    from .gltf import write_glb
    from .smplx_layout import retargeted_sequence, smplx_sequence, write_smpl, write_smplx_npz
    from .timeline import frame_period
    from .zarr_store import open_store

    store_path = Path(store_path)
    store = open_store(store_path)
    body_model = store.attrs["body_model"]
    if body_model == "smplx":
        from meshstream.models.smplx_body import SmplxBody

        path = model_path or store.attrs.get("model_path")
        if not path:
            raise InputError(f"{store_path}: a SMPL-X store needs the model files; pass --model-path DIR")
        body = SmplxBody(path, gender=str(store.attrs.get("gender") or "neutral"))
    elif body_model == "anny":
        body = AnnyBody()
    else:
        raise InputError(f"{store_path}: unknown body model {body_model!r}; expected anny or smplx")
    out = Path(out_dir) if out_dir else store_path.parent
    out.mkdir(parents=True, exist_ok=True)
    python = blender_python() if "fbx" in formats else None

    def glb_writer(path: Path, anim) -> Path:
        return write_glb(path, anim, camera)

    def fbx_writer(path: Path, anim) -> Path:
        with tempfile.TemporaryDirectory() as tmp:
            glb = write_glb(Path(tmp) / "track.glb", anim, camera)
            return write_fbx(glb, path, anim.fps, python)

    writers = {"bvh": write_bvh, "glb": glb_writer, "fbx": fbx_writer, "npz": write_smplx_npz, "smpl": write_smpl}
    stem = store_path.name.removesuffix(".zarr")
    written, failures = [], []
    track_ids = sorted(int(t) for t in store["tracks"].group_keys()) if "tracks" in store else []
    world = level_frame(store) if track_ids else None
    camera = camera_animation(store, world) if track_ids else None
    # Fixed-rate files (BVH, npz, .smpl) run on the stored frames' clock, gaps filled;
    # GLB and FBX keep each sample at its own time.
    period = frame_period(store["frames/pts_seconds"][:], float(store.attrs["fps"])) if track_ids else 0.0
    for tid in track_ids:
        anim = track_animation(store, tid, body, world)
        clocked = anim.on_clock(period) if {"bvh", "npz", "smpl"} & set(formats) else None
        for fmt in formats:
            path = out / f"{stem}_track_{tid}.{fmt}"
            try:
                if fmt in ("npz", "smpl"):
                    seq = (smplx_sequence(store, tid, body, world).on_clock(period) if body_model == "smplx"
                           else retargeted_sequence(clocked))
                    written.append(writers[fmt](path, seq))
                    continue
                written.append(writers[fmt](path, clocked if fmt == "bvh" else anim))
            except (OSError, ValueError, MeshstreamError) as exc:
                failures.append(f"{path.name}: {exc}")
                log.warning("could not write %s: %s", path, exc)
    return written, failures
