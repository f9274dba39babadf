"""The canonical result: a Zarr v3 store, appended chunk by chunk (DESIGN.md §6).

Layout::

    <out>/<clip>.zarr
      attrs: schema_version, source, fps, width, height, source_n_frames, n_frames (committed),
             complete, track_ids, body_model, keypoint_layouts, joint_names, config,
             software_version, notes
      frames/pts_seconds         (T,)      float64
      frames/frame_index         (T,)      int64   source index of each stored frame
      frames/shot                (T,)      int32   shot number (a cut starts a new shot)
      camera/focal_px            (T,)      float32 filtered: one value per shot (times zoom)
      camera/zoom                (T,)      float32 focal relative to the shot's start (1: no zoom)
      camera/focal_px_raw        (T,)      float32 the search's per-frame estimate (NaN: no person, or the focal was given)
      camera/principal_point     (2,)      float32
      camera/rotation            (T,3,3)   float32 rotates the frame's camera axes into the shot's world axes
                                           (its camera axes at the shot's first frame): a panning camera's
                                           turn, identity for a still one (NaN: not known; see ZoomTracker)
      tracks/<id>/frame_index    (N,)      int32   row in frames/ where the track was seen
      tracks/<id>/bbox_xyxy      (N,4)     float32 pixels
      tracks/<id>/keypoints2d    (N,33,3)  float32 pixels + confidence (BlazePose-33)
      tracks/<id>/transl         (N,3)     float32 camera space, metres (filtered); transl_raw
      tracks/<id>/pelvis         (N,3)     float32 hip midpoint, camera space; Tz = pelvis[:,2]
      tracks/<id>/keypoints3d_coco17 (N,17,3)
      tracks/<id>/global_orient  (N,3)     axis-angle body-model frame -> camera
      tracks/<id>/body_pose      (N,J,3)   axis-angle per bone
      tracks/<id>/shape          (S,)      one shape per track: the final estimate (attr stature_m:
                                           its standing height, metres)
      tracks/<id>/joints3d       (N,J,3)   camera space, metres (pelvis, keypoints3d and joints3d
                                           are placed with the final shape when the run ends)
      tracks/<id>/fit_error_px   (N,)      mean keypoint reprojection error
      tracks/<id>/confidence     (N,)      fit confidence in [0, 1]
      tracks/<id>/fit_ok         (N,)      bool, False where the fit failed
      tracks/<id>/lifted         (N,)      bool, True where the 3D evidence was the keypoint lifter's pose
                                           from 2D keypoints (--detector yolo, a person under
                                           yolo.landmarks_min_px), not BlazePose's landmarks

Arrays are chunked along time and appended as the run goes; ``complete`` stays false
until :meth:`ZarrWriter.close` runs after a clean end, so a crash leaves a readable
store holding every chunk written before it. :meth:`ZarrWriter.commit` after each
chunk records how far the store is whole (``n_frames``); ``--resume`` reopens it there
(:func:`read_stored_run`, :meth:`ZarrWriter.reopen`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from meshstream.stream.errors import InputError, OutputError
from meshstream.stream.messages import BodyFit

SCHEMA_VERSION = 1
_TIME_CHUNK = 256
_FRAME_ARRAYS = {"frames/pts_seconds": "float64", "frames/frame_index": "int64", "frames/shot": "int32",
                 "camera/focal_px": "float32", "camera/focal_px_raw": "float32", "camera/zoom": "float32"}
_TRACK_ARRAYS = {  # name: (trailing shape, "J": joints), dtype
    "frame_index": ((), "int32"), "bbox_xyxy": ((4,), "float32"), "keypoints2d": ((33, 3), "float32"),
    "transl": ((3,), "float32"), "transl_raw": ((3,), "float32"), "pelvis": ((3,), "float32"),
    "keypoints3d_coco17": ((17, 3), "float32"), "global_orient": ((3,), "float32"),
    "body_pose": (("J", 3), "float32"), "joints3d": (("J", 3), "float32"), "fit_error_px": ((), "float32"),
    "confidence": ((), "float32"), "fit_ok": ((), "bool"), "lifted": ((), "bool"),
}


class ZarrWriter:
    """Sink that appends frames and fits to a Zarr v3 store.

    Args:
        path: Store path (``.zarr`` folder); replaced if it exists.
        attrs: Root attributes (source, fps, width, height, body_model, ...).
        principal_point: (2,) pixels.
        num_joints: J of ``body_pose``/``joints3d``.
    """

    def __init__(self, path: str | Path, attrs: dict[str, Any], principal_point: np.ndarray, num_joints: int) -> None:
        import zarr

        self.path = Path(path)
        try:
            if self.path.exists():
                shutil.rmtree(self.path)
            self.root = zarr.open_group(str(self.path), mode="w", zarr_format=3)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path} ({exc.strerror}); choose a writable folder with -o") from exc
        self.root.attrs.update({**_jsonable(attrs), "schema_version": SCHEMA_VERSION, "complete": False, "n_frames": 0})
        for name, dtype in _FRAME_ARRAYS.items():
            fill = np.nan if name.startswith("camera/focal") else None
            self.root.create_array(name, shape=(0,), chunks=(_TIME_CHUNK,), dtype=dtype, fill_value=fill)
        pp = self.root.create_array("camera/principal_point", shape=(2,), chunks=(2,), dtype="float32")
        pp[:] = np.asarray(principal_point, np.float32)
        _create_rotation(self.root, 0)
        self._bind(num_joints)

    def _bind(self, num_joints: int) -> None:
        """Handles on the store's arrays and tracks (a new store, or a reopened one)."""
        self._pts, self._fidx, self._shot, self._focal, self._focal_raw, self._zoom = (
            self.root[name] for name in _FRAME_ARRAYS)
        self._rotation = self.root["camera/rotation"]
        self.num_joints = num_joints
        self._row_of_frame: dict[int, int] = {}
        self._tracks: dict[int, Any] = {}
        if "tracks" in self.root:
            self._tracks = {int(k): self.root[f"tracks/{k}"] for k in self.root["tracks"].group_keys()}

    @classmethod
    def reopen(cls, path: str | Path, num_joints: int) -> "ZarrWriter":
        """Opens an unfinished store to append to, cut back to its last committed chunk.

        Rows written after the last :meth:`commit` (a chunk in flight when the run
        stopped) are dropped, and so are tracks left without rows.

        Args:
            path: Store written by an earlier run (``complete`` false).
            num_joints: J of ``body_pose``/``joints3d``.
        """
        import zarr

        self = cls.__new__(cls)
        self.path = Path(path)
        try:
            self.root = zarr.open_group(str(self.path), mode="r+", zarr_format=3)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path} ({exc.strerror}); choose a writable folder with -o") from exc
        n = int(self.root.attrs.get("n_frames", 0))
        for name in _FRAME_ARRAYS:
            self.root[name].resize((n,))
        if "camera/rotation" in self.root:
            self.root["camera/rotation"].resize((n, 3, 3))
        else:  # a store from before the camera's rotation was kept: unknown up to here
            _create_rotation(self.root, n)
        for key in list(self.root["tracks"].group_keys()) if "tracks" in self.root else []:
            g = self.root[f"tracks/{key}"]
            keep = _committed_rows(g, n)
            if keep == 0:
                del self.root["tracks"][key]
                continue
            for name, (_, dtype) in _TRACK_ARRAYS.items():
                if name not in g:  # a store from before this array: its rows had BlazePose's landmarks
                    g.create_array(name, shape=(keep,), chunks=(_TIME_CHUNK,), dtype=dtype, fill_value=False)
                g[name].resize((keep, *g[name].shape[1:]))
        self._bind(num_joints)
        return self

    @property
    def n_frames(self) -> int:
        return int(self._pts.shape[0])

    def commit(self, **attrs: Any) -> None:
        """Records that every row written so far is complete (with ``attrs``, e.g. the
        shots' focals): a run that stops later resumes from here."""
        self.root.attrs.update({**_jsonable(attrs), "n_frames": self.n_frames, "track_ids": sorted(self._tracks)})

    def append_frames(self, frame_index: np.ndarray, pts_seconds: np.ndarray, focal_raw: np.ndarray,
                      shot: int = 0, zoom: np.ndarray | None = None) -> None:
        """Appends a chunk of frames (all decoded frames, with or without persons) of one
        shot, with each frame's zoom relative to the shot's start (default 1)."""
        start = self.n_frames
        self._zoom.append(np.ones(len(frame_index), np.float32) if zoom is None else np.asarray(zoom, np.float32))
        self._pts.append(np.asarray(pts_seconds, np.float64))
        self._fidx.append(np.asarray(frame_index, np.int64))
        self._shot.append(np.full(len(frame_index), shot, np.int32))
        self._focal_raw.append(np.asarray(focal_raw, np.float32))
        self._focal.append(np.full(len(frame_index), np.nan, np.float32))
        self._rotation.append(np.full((len(frame_index), 3, 3), np.nan, np.float32))
        for i, fi in enumerate(frame_index):
            self._row_of_frame[int(fi)] = start + i

    def set_focal(self, focal_px: float, start_row: int = 0, end_row: int | None = None) -> None:
        """Writes the filtered focal of a shot, ``focal_px`` at zoom 1, times each
        frame's zoom, for rows ``[start_row, end_row)``."""
        end_row = self.n_frames if end_row is None else end_row
        if end_row > start_row:
            self._focal[start_row:end_row] = (np.float32(focal_px) * self._zoom[start_row:end_row]).astype(np.float32)

    def set_rotation(self, frame_index: np.ndarray, rotation: np.ndarray) -> None:
        """Writes the camera's rotation into its shot's world axes for frames appended by
        this writer.

        Args:
            frame_index: (K,) source frame indices (in row order).
            rotation: (K, 3, 3) rotations (camera axes -> world axes).
        """
        rows = np.array([self._row_of_frame[int(f)] for f in frame_index], np.int64)
        if len(rows) == 0:
            return
        rotation = np.asarray(rotation, np.float32)
        if (np.diff(rows) == 1).all():
            self._rotation[rows[0]:rows[-1] + 1] = rotation
        else:
            for row, r in zip(rows, rotation):
                self._rotation[int(row)] = r

    def append_fits(self, fit: BodyFit, bbox: np.ndarray, keypoints2d: np.ndarray, transl_raw: np.ndarray,
                    lifted: np.ndarray | None = None) -> None:
        """Appends person-frames (grouped by track, time order kept).

        Args:
            fit: Fits of the chunk (``transl``/``pelvis``/``joints3d``/``keypoints3d`` filtered).
            bbox: (M, 4) boxes, pixels.
            keypoints2d: (M, 33, 3) keypoints, pixels + confidence.
            transl_raw: (M, 3) translation before temporal filtering, metres.
            lifted: (M,) bool, where the keypoint lifter gave the 3D evidence (``None``: nowhere).
        """
        lifted = np.zeros(len(fit), bool) if lifted is None else np.asarray(lifted, bool)
        for tid in np.unique(fit.track_id):
            sel = np.nonzero(fit.track_id == tid)[0]
            sel = sel[np.argsort(fit.frame_index[sel], kind="stable")]
            g = self._track_group(int(tid), fit, sel[0])
            rows = np.array([self._row_of_frame[int(f)] for f in fit.frame_index[sel]], np.int32)
            g["frame_index"].append(rows)
            g["bbox_xyxy"].append(bbox[sel].astype(np.float32))
            g["keypoints2d"].append(keypoints2d[sel].astype(np.float32))
            g["transl"].append(fit.transl[sel])
            g["transl_raw"].append(transl_raw[sel].astype(np.float32))
            g["pelvis"].append(fit.pelvis[sel])
            g["keypoints3d_coco17"].append(fit.keypoints3d[sel])
            g["global_orient"].append(fit.global_orient[sel])
            g["body_pose"].append(fit.body_pose[sel])
            g["joints3d"].append(fit.joints3d[sel])
            g["fit_error_px"].append(fit.fit_error_px[sel])
            g["confidence"].append(fit.confidence[sel])
            g["fit_ok"].append(fit.fit_ok[sel])
            g["lifted"].append(lifted[sel])
            g["shape"][:] = fit.shape[sel[-1]]  # the running shape: what a resumed run finishes the track with

    def _track_group(self, tid: int, fit: BodyFit, first: int) -> Any:
        if tid in self._tracks:
            return self._tracks[tid]
        g = self.root.require_group(f"tracks/{tid}")
        for name, (tail, dtype) in _TRACK_ARRAYS.items():
            tail = tuple(self.num_joints if d == "J" else d for d in tail)
            g.create_array(name, shape=(0, *tail), chunks=(_TIME_CHUNK, *tail), dtype=dtype)
        shape = g.create_array("shape", shape=fit.shape.shape[1:], chunks=fit.shape.shape[1:], dtype="float32")
        shape[:] = fit.shape[first]
        g.attrs.update({"track_id": tid, "keypoints2d_layout": "blazepose33"})
        self._tracks[tid] = g
        return g

    def set_track_shape(self, track_id: int, shape: np.ndarray, stature_m: float | None = None,
                        transl_scale: np.ndarray | None = None) -> None:
        """Writes a track's final shape (one per track, refined as the run went).

        Args:
            track_id: Track.
            shape: (S,) shape parameters.
            stature_m: The shape's standing height, metres, kept as the track's
                ``stature_m`` attribute.
            transl_scale: (N,) factor per stored row on ``transl`` and ``transl_raw``
                (rows fitted before the track's size was rescaled move with it, about
                the camera centre), or ``None``.
        """
        if track_id not in self._tracks:
            return
        g = self._tracks[track_id]
        g["shape"][:] = np.asarray(shape, np.float32)
        if stature_m is not None:
            g.attrs["stature_m"] = round(float(stature_m), 4)
        if transl_scale is None:
            return
        n = int(g["transl"].shape[0])
        if len(transl_scale) != n:
            raise ValueError(f"track {track_id}: transl_scale has {len(transl_scale)} rows, the store {n}")
        for start in range(0, n, _TIME_CHUNK):
            end = min(start + _TIME_CHUNK, n)
            if not np.all(transl_scale[start:end] == 1):
                k = np.asarray(transl_scale[start:end], np.float32)[:, None]
                g["transl"][start:end] = g["transl"][start:end] * k
                g["transl_raw"][start:end] = g["transl_raw"][start:end] * k

    def track_blocks(self, track_id: int):
        """A track's stored parameters a block of rows at a time (to be placed again with
        its final shape): yields ``(start_row, body_pose (n, J, 3), global_orient (n, 3),
        transl (n, 3))``."""
        if track_id not in self._tracks:
            return
        g = self._tracks[track_id]
        n = int(g["transl"].shape[0])
        for start in range(0, n, _TIME_CHUNK):
            end = min(start + _TIME_CHUNK, n)
            yield start, g["body_pose"][start:end], g["global_orient"][start:end], g["transl"][start:end]

    def set_track_points(self, track_id: int, start_row: int, pelvis: np.ndarray, joints3d: np.ndarray,
                         keypoints3d: np.ndarray) -> None:
        """Overwrites a block of a track's placed points (pelvis (n, 3), joints3d (n, J, 3),
        keypoints3d_coco17 (n, 17, 3)) from ``start_row``."""
        g = self._tracks[track_id]
        end = start_row + len(pelvis)
        g["pelvis"][start_row:end] = pelvis
        g["joints3d"][start_row:end] = joints3d
        g["keypoints3d_coco17"][start_row:end] = keypoints3d

    def set_attrs(self, **attrs: Any) -> None:
        self.root.attrs.update(_jsonable(attrs))

    def close(self, complete: bool = True) -> None:
        """Marks the store complete (only after a clean end)."""
        self.root.attrs.update({"complete": bool(complete), "n_frames": self.n_frames,
                                "track_ids": sorted(self._tracks)})


def open_store(path: str | Path) -> Any:
    """A meshstream store opened read-only; one line when ``path`` is not one."""
    import zarr

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such store; give the .zarr folder a meshstream run wrote")
    try:
        store = zarr.open_group(str(path), mode="r")
        store.attrs["body_model"]  # noqa: B018 - every meshstream store has it
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: not a meshstream Zarr store ({type(exc).__name__}); give the .zarr folder a "
                         "meshstream run wrote") from None
    return store


def _create_rotation(root: Any, n_frames: int) -> None:
    """``camera/rotation`` with ``n_frames`` rows not known (NaN)."""
    root.create_array("camera/rotation", shape=(n_frames, 3, 3), chunks=(_TIME_CHUNK, 3, 3), dtype="float32",
                      fill_value=np.nan)


def _committed_rows(track: Any, n_frames: int) -> int:
    """Rows of a track group that refer to the first ``n_frames`` frames (rows are in time order)."""
    return int(np.searchsorted(track["frame_index"][:], n_frames))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


@dataclass(frozen=True)
class StoredRun:
    """What an earlier run left in a store, for ``--resume``.

    Attributes:
        attrs: The store's root attributes.
        complete: The run ended cleanly.
        n_frames: Frames committed (rows of ``frames/``; later rows are dropped on resume).
        last_pts: Presentation time of the last committed frame, seconds (``None``: none).
        last_frame_index: Its index in the source (-1: none).
        last_shot: Its shot (0 when none).
        last_zoom: Its zoom relative to the shot's first frame (1 when none).
        last_rotation: (3, 3) its camera's rotation into the shot's world axes (identity
            when none; NaN when not known).
        shot_first_row: First row of ``last_shot``.
        track_ids: Tracks with committed rows.
        person_frames: Committed person-frames.
        shapes: Each track's last stored shape, (S,).
    """

    attrs: dict[str, Any]
    complete: bool
    n_frames: int
    last_pts: float | None
    last_frame_index: int
    last_shot: int
    last_zoom: float
    last_rotation: np.ndarray
    shot_first_row: int
    track_ids: list[int]
    person_frames: int
    shapes: dict[int, np.ndarray]


def read_stored_run(path: str | Path) -> StoredRun | None:
    """Reads what a store holds, without changing it; ``None`` if there is no store."""
    import zarr

    path = Path(path)
    if not (path / "zarr.json").exists():
        return None
    try:
        root = zarr.open_group(str(path), mode="r", zarr_format=3)
        attrs = dict(root.attrs)
        n = int(attrs.get("n_frames", 0))
        shots = root["frames/shot"][:n]
        track_ids, person_frames, shapes = [], 0, {}
        for key in root["tracks"].group_keys() if "tracks" in root else []:
            g = root[f"tracks/{key}"]
            rows = _committed_rows(g, n)
            if rows:
                track_ids.append(int(key))
                person_frames += rows
                shapes[int(key)] = np.asarray(g["shape"][:], np.float32)
    except (OSError, KeyError, ValueError) as exc:
        raise OutputError(f"{path}: not a meshstream store that can be resumed ({exc}); "
                          "run without --resume to write it again") from exc
    last_shot = int(shots[-1]) if n else 0
    return StoredRun(
        attrs=attrs, complete=bool(attrs.get("complete")), n_frames=n,
        last_pts=float(root["frames/pts_seconds"][n - 1]) if n else None,
        last_frame_index=int(root["frames/frame_index"][n - 1]) if n else -1,
        last_shot=last_shot, last_zoom=float(root["camera/zoom"][n - 1]) if n else 1.0,
        last_rotation=_last_rotation(root, n),
        shot_first_row=int(np.argmax(shots == last_shot)) if n else 0,
        track_ids=sorted(track_ids), person_frames=person_frames, shapes=shapes)


def _last_rotation(root: Any, n_frames: int) -> np.ndarray:
    """(3, 3) ``camera/rotation`` of the last committed frame (identity when none; NaN
    when not known, or in a store from before it was kept)."""
    if n_frames == 0:
        return np.eye(3)
    if "camera/rotation" not in root:
        return np.full((3, 3), np.nan)
    return np.asarray(root["camera/rotation"][n_frames - 1], np.float64)
