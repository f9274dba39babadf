"""One track of a store as motion in the levelled world, and what a coach reads from it.

:func:`read_tracks` turns a store's camera-space tracks into :class:`TrackMotion` (the
exports' world: metres, Y up, floor at y = 0, per shot); :func:`analyse` computes the
per-frame columns and the :class:`TrackSummary` from it. Definitions are in
``docs/report.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from meshstream.export.animation import camera_to_world, foot_joints, level_frame
from meshstream.stream.errors import InputError

from . import kinematics as km

SCHEMA_VERSION = 1  # the store schema this module reads (export/zarr_store.py)
MAX_GAP_S = 0.5  # a longer gap splits smoothing; the path across it is a straight line
SPEED_WINDOW_S = 0.5  # pelvis smoothing for speed and distance
HEIGHT_WINDOW_S = 0.2  # pelvis smoothing for heights (a quadratic keeps a flight's parabola)
FOOT_WINDOW_S = 0.2  # foot smoothing for contacts (feet move fast)
STILL_FOOT_MPS = 0.5  # a foot this slow is planted or turning; its usual height is the floor
TOP_SPEED_WINDOW_S = 1.0  # top speed: the fastest mean over this long
MOVING_MPS = 0.3  # moving above this horizontal pelvis speed
STANDING_KNEE_DEG = 20.0  # standing: a knee straighter than this, the pelvis not rising or falling
STANDING_VY_MPS = 0.15
MIN_JUMP_M = 0.05  # a flight counts as a jump when the pelvis rises this far above standing
GRAVITY = 9.81  # m/s^2


@dataclass
class TrackMotion:
    """One track in its shot's levelled world.

    Attributes:
        track_id: The track.
        shot: The shot it belongs to.
        rows: (N,) rows of the store's ``frames/`` where the track was seen.
        frame_index: (N,) source frame numbers.
        time_s: (N,) presentation times, seconds.
        pelvis: (N, 3) hip midpoint, metres (world: Y up, floor at y = 0), filtered (the
            store's Kalman smoother: for the path on the floor).
        pelvis_raw: (N, 3) the same placed by the fit's own translation (``transl_raw``:
            for heights; the smoother flattens the peak of a jump by a fifth).
        keypoints: (N, 17, 3) COCO-17 keypoints, metres, same world.
        feet: (2, N, 3) the lowest foot joint of the left and the right foot, metres.
        fit_ok: (N,) the fit's own verdict.
        fit_error_px: (N,) mean keypoint reprojection error, pixels.
        stature_m: The track's standing height, metres (None if the run was interrupted).
        frames_in_span: Stored frames from the track's first to its last (seen or not).
        focal_cue: What set the shot's focal (``given``, ``people``, ``floor``, ...).
        scale: What sets the track's size: ``known height``, ``shared floor`` or
            ``body shape``.
        caveats: Where the evidence does not fix the numbers (from the store's notes).
    """

    track_id: int
    shot: int
    rows: np.ndarray
    frame_index: np.ndarray
    time_s: np.ndarray
    pelvis: np.ndarray
    pelvis_raw: np.ndarray
    keypoints: np.ndarray
    feet: np.ndarray
    fit_ok: np.ndarray
    fit_error_px: np.ndarray
    stature_m: float | None
    frames_in_span: int
    focal_cue: str | None
    scale: str
    caveats: list[str] = field(default_factory=list)


@dataclass
class TrackSummary:
    """What one track did (see ``docs/report.md`` for each definition)."""

    track_id: int
    duration_s: float
    frames_seen: int
    frames_missing: int
    distance_m: float
    mean_speed_mps: float
    top_speed_mps: float
    time_moving_s: float
    steps: int
    cadence_spm: float | None
    stride_length_m: float | None
    jumps: int
    jump_height_m: float | None
    standing_pelvis_m: float | None
    range_of_motion_deg: dict[str, tuple[float, float]]
    stature_m: float | None
    focal_cue: str | None
    scale: str
    fit_error_px: float
    fit_ok_fraction: float


@dataclass
class TrackReport:
    """Per-frame columns (CSV order) and the summary of one track."""

    motion: TrackMotion
    columns: dict[str, np.ndarray]
    summary: TrackSummary


class NothingToReport(InputError):
    """The store has no tracks: nobody was found in the clip."""


def check_store(store, path: str) -> list[int]:
    """The store's track ids; one-line errors for an older schema or no tracks."""
    version = store.attrs.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(f"{path}: store schema {version}, the report reads schema {SCHEMA_VERSION}; run "
                         "meshstream on the clip again to rewrite it")
    ids = sorted(int(t) for t in store["tracks"].group_keys()) if "tracks" in store else []
    if not ids:
        raise NothingToReport(f"{path}: the store has no tracks (nobody was found in the clip), so there is nothing to "
                         "report")
    return ids


_TRACK_ARRAYS = ("frame_index", "pelvis", "transl", "transl_raw", "joints3d", "keypoints3d_coco17", "fit_ok",
                 "fit_error_px")


def _committed(g, n_frames: int) -> dict[str, np.ndarray]:
    """A track's arrays cut to the rows of committed frames (an interrupted run may have
    written a few rows past its last commit, or fewer rows of some arrays)."""
    arrays = {k: g[k][:] for k in _TRACK_ARRAYS}
    n = min(len(v) for v in arrays.values())
    n = min(n, int(np.searchsorted(arrays["frame_index"][:n], n_frames)))
    return {k: v[:n] for k, v in arrays.items()}


def read_tracks(store, track_ids: list[int]) -> list[TrackMotion]:
    """The tracks' motion in their shots' levelled worlds (one floor per shot); tracks
    with no committed rows are left out.

    Args:
        store: Open meshstream Zarr group (schema 1).
        track_ids: Tracks to read.
    """
    n_frames = int(store.attrs.get("n_frames") or store["frames/frame_index"].shape[0])
    shot_of_row = store["frames/shot"][:n_frames]
    source_index = store["frames/frame_index"][:n_frames]
    pts = store["frames/pts_seconds"][:n_frames]
    sides = foot_joints(store)
    tracks = {}
    for tid in sorted(int(t) for t in store["tracks"].group_keys()):
        data = _committed(store[f"tracks/{tid}"], n_frames)
        if len(data["frame_index"]):
            tracks[tid] = (int(shot_of_row[data["frame_index"][0]]), data)
    wanted = [t for t in track_ids if t in tracks]
    worlds = {s: level_frame(store, [t for t, (shot, _) in tracks.items() if shot == s])
              for s in {tracks[t][0] for t in wanted}}
    out = []
    for tid in wanted:
        shot, data = tracks[tid]
        g = store[f"tracks/{tid}"]
        rows = data["frame_index"].astype(np.int64)
        rotation, offset = worlds[shot]
        to_world = rotation @ camera_to_world(store, rows)  # (N, 3, 3)

        def world(points: np.ndarray) -> np.ndarray:
            return np.einsum("nij,n...j->n...i", to_world, points.astype(np.float64)) + offset

        # Heights, feet and joints from the fit's own translations (see pelvis_raw).
        shift = (data["transl_raw"] - data["transl"]).astype(np.float64)
        joints = world(data["joints3d"] + shift[:, None])
        stature = g.attrs.get("stature_m")
        cue, scale, caveats = _evidence(store, tid, shot, stature)
        out.append(TrackMotion(
            track_id=tid, shot=shot, rows=rows, frame_index=source_index[rows], time_s=pts[rows] - pts[0],
            pelvis=world(data["pelvis"]), pelvis_raw=world(data["pelvis"] + shift),
            keypoints=world(data["keypoints3d_coco17"] + shift[:, None]),
            feet=np.stack([_lowest(joints[:, sides[s]]) for s in ("left", "right")]),
            fit_ok=data["fit_ok"].astype(bool), fit_error_px=data["fit_error_px"].astype(np.float64),
            stature_m=float(stature) if stature else None, frames_in_span=int(rows[-1] - rows[0] + 1),
            focal_cue=cue, scale=scale, caveats=caveats))
    return out


def _evidence(store, track_id: int, shot: int, stature: float | None) -> tuple[str | None, str, list[str]]:
    """What set the shot's focal, what sets the track's size, and the caveats they and
    the run's notes call for."""
    cues = list(store.attrs.get("shot_focal_cue") or [])
    cue = cues[shot] if shot < len(cues) else None
    ground = store.attrs.get("shared_ground") or []
    shot_ground = ground[shot] if shot < len(ground) else None
    if ((store.attrs.get("config") or {}).get("estimation") or {}).get("person_height_m"):
        scale = "known height"
    elif shot_ground and str(track_id) in (shot_ground.get("size_scale") or {}):
        scale = "shared floor"
    else:
        scale = "body shape"
    notes = [str(n) for n in store.attrs.get("notes") or []]
    caveats = [n for n in notes if n.startswith(f"shot {shot}:") or not n.startswith("shot ")]
    if cue is None:
        caveats.insert(0, "the shot's focal was never fixed: depths, distances and speeds are not metric")
    elif cue == "people":
        caveats.insert(0, "the focal was estimated from the people alone, the weakest cue (README, Limits): "
                          "depths, distances and speeds may be off by tens of percent; give --fov-deg, "
                          "--focal-px or --intrinsics if the camera is known")
    if scale == "body shape":
        height = f"{stature:.2f} m" if stature else "unknown"
        caveats.append(f"scale from the fitted body (standing height {height}): distances, speeds and heights "
                       "scale with it; give --height-m if the person's height is known")
    return cue, scale, caveats


def _lowest(points: np.ndarray) -> np.ndarray:
    """(N, K, 3) -> (N, 3): the point of each frame with the least height (y)."""
    if points.shape[1] == 0:
        return np.full((points.shape[0], 3), np.nan)
    return points[np.arange(len(points)), np.argmin(points[..., 1], axis=1)]


def analyse(m: TrackMotion) -> TrackReport:
    """Per-frame columns and the summary of one track."""
    t = m.time_s
    pelvis = km.smooth(m.pelvis, t, SPEED_WINDOW_S, MAX_GAP_S)
    velocity = km.smooth(m.pelvis, t, SPEED_WINDOW_S, MAX_GAP_S, deriv=1)
    speed = np.linalg.norm(velocity[:, [0, 2]], axis=1)
    distance = km.path_length(pelvis[:, [0, 2]], speed >= MOVING_MPS)
    angles = km.joint_angles(m.keypoints)
    contacts = [_contacts(foot, t) for foot in m.feet]
    left, right = contacts
    dt = _sample_durations(t)
    moving = np.nan_to_num(speed) >= MOVING_MPS
    time_moving = float(dt[moving].sum())
    landings = [x[moving[x]] for x in (km.onsets(c) for c in contacts)]  # steps land while moving
    steps = sum(len(x) for x in landings)
    strides = [distance[b] - distance[a] for x in landings for a, b in zip(x[:-1], x[1:])]
    height = km.smooth(m.pelvis_raw[:, 1], t, HEIGHT_WINDOW_S, MAX_GAP_S)
    rate = km.smooth(m.pelvis_raw[:, 1], t, HEIGHT_WINDOW_S, MAX_GAP_S, deriv=1)
    knee = np.minimum(angles["knee_flexion_left"], angles["knee_flexion_right"])
    standing = (knee < STANDING_KNEE_DEG) & (np.abs(np.nan_to_num(rate, nan=np.inf)) < STANDING_VY_MPS)
    stand_height = float(np.median(height[standing])) if standing.any() else None
    rises = [] if stand_height is None else _jumps(height - stand_height, t)
    duration = float(t[-1] - t[0] + np.median(np.diff(t))) if len(t) > 1 else 0.0
    top = km.window_mean(speed, t, TOP_SPEED_WINDOW_S)
    ok = m.fit_ok if m.fit_ok.any() else np.ones(len(t), bool)
    columns = {
        "frame_index": m.frame_index, "time_s": t,
        "pelvis_x_m": pelvis[:, 0], "pelvis_y_m": pelvis[:, 1], "pelvis_z_m": pelvis[:, 2],
        "speed_mps": speed, "distance_m": distance, "height_m": height,
        **{f"{k}_deg": v for k, v in angles.items()},
        "foot_contact_left": left.astype(np.int8), "foot_contact_right": right.astype(np.int8),
        "fit_ok": m.fit_ok.astype(np.int8), "fit_error_px": m.fit_error_px,
    }
    summary = TrackSummary(
        track_id=m.track_id, duration_s=duration, frames_seen=len(t), frames_missing=m.frames_in_span - len(t),
        distance_m=float(distance[-1]), mean_speed_mps=float(distance[-1] / duration) if duration > 0 else 0.0,
        top_speed_mps=float(np.nanmax(top)) if np.isfinite(top).any() else float(np.nanmax(speed, initial=0.0)),
        time_moving_s=time_moving, steps=steps,
        cadence_spm=60.0 * steps / time_moving if steps >= 2 and time_moving > 0 else None,
        stride_length_m=float(np.median(strides)) if strides else None,
        jumps=len(rises), jump_height_m=max(rises) if rises else None, standing_pelvis_m=stand_height,
        range_of_motion_deg={k: (float(np.nanmin(v[ok])), float(np.nanmax(v[ok]))) for k, v in angles.items()},
        stature_m=m.stature_m, focal_cue=m.focal_cue, scale=m.scale,
        fit_error_px=float(np.nanmedian(m.fit_error_px)), fit_ok_fraction=float(m.fit_ok.mean()),
    )
    return TrackReport(m, columns, summary)


def _contacts(foot: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(N,) bool: the foot on the floor. Its floor level is its median height while
    still (the fitted legs' lengths vary with the pose, so a fixed floor misreads feet
    by up to 0.15 m in a deep crouch; see docs/report.md)."""
    if not np.isfinite(foot).all() or len(t) < 3:
        return np.zeros(len(t), bool)
    height = km.smooth(foot[:, 1], t, FOOT_WINDOW_S, MAX_GAP_S)
    speed = np.linalg.norm(km.smooth(foot, t, FOOT_WINDOW_S, MAX_GAP_S, deriv=1), axis=1)
    still = np.nan_to_num(speed, nan=np.inf) < STILL_FOOT_MPS
    floor = float(np.median(height[still])) if still.any() else float(np.percentile(height, 10))
    return km.foot_contacts(height - floor, speed)


def _jumps(rise: np.ndarray, t: np.ndarray, min_frames: int = 4) -> list[float]:
    """Peak rise of each jump, metres: a stretch of at least ``min_frames`` samples with
    the pelvis :data:`MIN_JUMP_M` or more above its standing height whose path is a free
    fall: a parabola fitted to it accelerates down at 0.5 to 3 g (rendered free falls
    read 0.9-1.3 g), so a noisy bump or a slow rise is not a jump. Three samples fit any
    parabola exactly, so the test needs a fourth: a walker's three-frame bump of 8 cm
    (the raw fit's height at 5 m) read as a jump."""
    out = []
    for a, b in km.stretches(np.nan_to_num(rise) >= MIN_JUMP_M):
        if b - a < min_frames:
            continue
        accel = 2.0 * np.polyfit(t[a:b] - t[a], rise[a:b], 2)[0]
        if -3.0 * GRAVITY <= accel <= -0.5 * GRAVITY:
            out.append(float(rise[a:b].max()))
    return out


def _sample_durations(t: np.ndarray) -> np.ndarray:
    """(N,) the time each sample stands for: its interval to the next, capped at
    :data:`MAX_GAP_S` (the last sample gets the median interval)."""
    if len(t) < 2:
        return np.zeros(len(t))
    dt = np.diff(t)
    return np.minimum(np.append(dt, np.median(dt)), MAX_GAP_S)
