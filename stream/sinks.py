"""Sinks (open / write / amend / close) and the two clip stages that feed them geometry.

No sink runs the body model: :class:`Mesher` poses the overlay's meshes and
:class:`Finalizer` places every stored row of a track again with its final shape,
both with a :class:`~meshstream.models.placement.BodyPlacer`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from meshstream.export.overlay import OverlayWriter, draw_inset, draw_keypoints, render_overlay, track_colour
from meshstream.export.zarr_store import ZarrWriter

from .messages import BodyFit, ShotFocalFixed, TrackFinal, WindowOutput


class ZarrSink:
    """The run's Zarr store: frames, fits and camera, committed window by window.

    Args:
        path: The ``.zarr`` folder.
        attrs: Root attributes of a new store.
        principal_point: (2,) pixels.
        num_joints: J of the body model.
        reopen: Continue the unfinished store at ``path`` instead of starting a new one.
        shot_first_row: Reopening: the stored last shot's first row.
    """

    def __init__(self, *, path: Path, attrs: dict, principal_point: np.ndarray, num_joints: int,
                 reopen: bool = False, shot_first_row: dict[int, int] | None = None) -> None:
        self.path = path
        self.attrs = attrs
        self.principal_point = principal_point
        self.num_joints = num_joints
        self.reopen = reopen
        self.shot_first_row = dict(shot_first_row or {})
        self.writer: ZarrWriter | None = None

    def open(self) -> None:
        self.writer = (ZarrWriter.reopen(self.path, self.num_joints) if self.reopen else
                       ZarrWriter(self.path, attrs=self.attrs, principal_point=self.principal_point,
                                  num_joints=self.num_joints))

    def write(self, out: WindowOutput) -> None:
        """Appends a window's frames and fits (not yet committed)."""
        w = self.writer
        start = w.n_frames
        w.append_frames(np.array([f.index for f in out.frames]), np.array([f.pts_seconds for f in out.frames]),
                        out.focal_raw, shot=out.shot, zoom=out.zoom)
        self.shot_first_row.setdefault(out.shot, start)
        if out.turns is not None:
            w.set_rotation(*out.turns)
        if out.fit is not None and len(out.fit):
            w.append_fits(out.fit, out.bbox, out.keypoints_blaze, out.transl_raw, out.lifted)

    def amend(self, change: ShotFocalFixed | TrackFinal) -> None:
        """Applies a later decision: a shot's focal (every row of the shot, frames before
        its first person included), or a track's final shape and size."""
        if isinstance(change, ShotFocalFixed):
            self.writer.set_focal(change.focal_px, self.shot_first_row[change.shot])
        else:
            self.writer.set_track_shape(change.track_id, change.shape, stature_m=change.stature_m,
                                        transl_scale=change.transl_scale)

    def commit(self, **attrs) -> None:
        """Makes what was written durable (a resumed run starts after it)."""
        self.writer.commit(**attrs)

    def close(self, complete: bool, **attrs) -> None:
        self.writer.set_attrs(**attrs)
        self.writer.close(complete=complete)


class Mesher:
    """The overlay's meshes: each fitted body's vertices in camera space.

    Args:
        placer: The ``BodyPlacer``.
    """

    def __init__(self, *, placer) -> None:
        self.placer = placer

    def __call__(self, fit: BodyFit | None) -> np.ndarray | None:
        """(M, V, 3) float32 vertices, metres, or ``None`` without fits."""
        if fit is None or not len(fit):
            return None
        return self.placer.mesh(fit)


class OverlaySink:
    """The overlay video: the fitted meshes drawn over the frames, with ids and depth.

    Args:
        path: The ``.mp4``.
        size: (width, height), pixels.
        fps: Nominal frame rate.
        crf: x264 quality.
        faces: (F, 3) the body model's triangles.
        principal_point: (2,) pixels.
        inset: ``"none"``, or the view of a small 3D inset (``"top"``, ``"side"``).
        keypoints: Draw the 2D keypoints too.
    """

    def __init__(self, *, path: Path, size: tuple[int, int], fps: float, crf: int, faces: np.ndarray,
                 principal_point: np.ndarray, inset: str = "none", keypoints: bool = False) -> None:
        self.path = path
        self.size = size
        self.fps = fps
        self.crf = crf
        self.faces = faces
        self.principal_point = principal_point
        self.inset = inset
        self.keypoints = keypoints
        self.video: OverlayWriter | None = None

    def open(self) -> None:
        self.video = OverlayWriter(self.path, *self.size, self.fps, crf=self.crf)

    def write(self, out: WindowOutput, verts_cam: np.ndarray | None) -> None:
        """Draws and encodes a window's frames (``verts_cam`` from :class:`Mesher`)."""
        fit = out.fit
        for frame, z in zip(out.frames, out.zoom):
            here = np.nonzero(fit.frame_index == frame.index)[0] if verts_cam is not None else []
            meshes = [(int(fit.track_id[i]), verts_cam[i]) for i in here]
            labels = [f"id {fit.track_id[i]}  Tz {fit.pelvis[i, 2]:.2f} m" for i in here]
            base = frame.rgb
            if self.inset != "none":  # under the meshes and labels
                base = frame.rgb.copy()
                draw_inset(base, [(int(fit.track_id[i]), fit.keypoints3d[i]) for i in here], view=self.inset)
            rgb = render_overlay(base, meshes, self.faces, (out.focal_px or 1.0) * float(z), self.principal_point,
                                 labels=labels)
            if self.keypoints:
                for i in here:
                    draw_keypoints(rgb, out.keypoints_blaze[i], track_colour(int(fit.track_id[i])))
            self.video.write(frame, rgb)

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


class Finalizer:
    """At the end of a run: each track's one shape, and every stored row of it placed
    again with that shape (earlier windows were placed with the running shape of their
    time), moved with its size where the shared floor rescaled it after they were fitted.

    Args:
        placer: The ``BodyPlacer``.
    """

    def __init__(self, *, placer) -> None:
        self.placer = placer

    def __call__(self, sink: ZarrSink, shapes: dict[int, np.ndarray],
                 row_scales: dict[int, list[tuple[int, float]]]) -> dict[int, float]:
        """Amends the store with every track's final shape; returns the tracks' standing
        heights, metres.

        Args:
            sink: The run's store.
            shapes: Track -> (S,) its final shape.
            row_scales: Track -> (rows, scale they were fitted at) per window, in order.
        """
        statures = {}
        for tid, shape in shapes.items():
            rows = row_scales.get(tid, [])
            final = rows[-1][1] if rows else 1.0
            factor = np.concatenate([np.full(n, final / s, np.float32) for n, s in rows]) if rows else None
            statures[tid] = self.placer.stature(shape)
            sink.amend(TrackFinal(tid, shape, statures[tid],
                                  None if factor is None or np.all(factor == 1) else factor))
            for start, pose, orient, transl in sink.writer.track_blocks(tid):
                sink.writer.set_track_points(tid, start, *self.placer.placement(pose, orient, transl, shape))
        return statures
