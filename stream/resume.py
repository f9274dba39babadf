"""Whether an unfinished store may be continued by this run (``--resume``)."""

from __future__ import annotations

import json
from pathlib import Path

from meshstream.export.zarr_store import StoredRun

from .config import Config, config_to_dict
from .errors import ConfigError, InputError, NothingToResume
from .messages import VideoInfo

# Settings a resumed run may change: where and what it writes, and how far it goes.
_RESUME_FREE = ("output.", "decode.max_frames", "decode.end_s")


def _flatten(d: dict, prefix: str = "") -> dict[str, object]:
    """Nested dict -> ``{"section.key": value}``."""
    out: dict[str, object] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def check_resumable(stored: StoredRun, info: VideoInfo, config: Config, store: Path) -> None:
    """Raises unless ``stored`` was made from this input with these settings.

    Raises:
        InputError: Another video (frame size, rate or length differ), checked first.
        ConfigError: Other settings (each differing key is named).
        NothingToResume: The store is complete (same video, same settings).
    """
    a = stored.attrs
    ours = (info.width, info.height, round(info.fps, 3), info.n_frames)
    theirs = (a.get("width"), a.get("height"), round(float(a.get("fps", 0.0)), 3), a.get("source_n_frames", ours[3]))
    if ours != theirs:
        raise InputError(f"{store} was made from another video ({theirs[0]}x{theirs[1]} at {theirs[2]} frames/s, "
                         f"{theirs[3]} frames; this one {ours[0]}x{ours[1]} at {ours[2]}, {ours[3]}); give the same "
                         "input, or run without --resume")
    now = _flatten(json.loads(json.dumps(config_to_dict(config))))
    before = _flatten(a.get("config") or {})
    differ = [k for k in sorted(set(now) | set(before))
              if not k.startswith(_RESUME_FREE) and now.get(k) != before.get(k)]
    if differ:
        shown = ", ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in differ[:3])
        raise ConfigError(f"{store} was made with other settings ({shown}); resume with the same settings, or run "
                          "without --resume")
    if stored.complete:
        raise NothingToResume(f"{store} is already complete ({a.get('n_frames')} frames); nothing to resume "
                              "(run without --resume to compute it again)")
