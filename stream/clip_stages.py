"""The clip's per-frame and per-window stages (each: built from keywords, one verb).

- :class:`FramePerceiver`: a frame's persons, tracked, the frame's zoom, and whether a
  shot starts with it.
- :class:`Windower`: collects frames into windows (closed at ``chunk_frames``, at a cut,
  or grown while the shot's focal waits for enough people) and turns them into
  :class:`~meshstream.stream.messages.Window` messages.
- :class:`CameraTurns`: the camera's rotation into its shot's world axes.
- :class:`TrackFilter`: temporal filtering of each track's translation and rotations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from meshstream.models.silhouette_term import mask_grid
from meshstream.models.keypoints import blazepose33_to_coco23

from .messages import BodyFit, Detections, Frame, PersonFrames, Window

log = logging.getLogger(__name__)


class FramePerceiver:
    """Per clip: the persons of each frame (tracked, left and right kept true to their
    facing), its zoom since the shot began, and shot cuts.

    Args:
        perceiver: The person detector and landmarker.
        tracker: The multi-person tracker.
        shots: A ``ShotDetector`` (cut detection), or ``None``: one shot.
        zoom: A ``ZoomTracker``, or ``None``: zoom 1.
        continues_shot: A resumed run's first frame goes on with the stored shot.
        zoom_base: That shot's zoom at the resumed frame (1 otherwise).
        sides: A ``SideKeeper`` (left and right true to each track's facing), or ``None``.
    """

    def __init__(self, *, perceiver, tracker, shots=None, zoom=None, continues_shot: bool = False,
                 zoom_base: float = 1.0, sides=None) -> None:
        self.perceiver = perceiver
        self.tracker = tracker
        self.sides = sides
        self.shots = shots
        self.zoom = zoom
        self._continues = continues_shot
        self._started = continues_shot
        self._shots_begun = int(continues_shot)  # a resumed run's stored shot counts
        self.zoom_base = zoom_base

    def is_new_shot(self, frame: Frame) -> bool:
        """True for the first frame (unless a resumed run goes on with the stored shot) and,
        with cut detection, the first frame after a cut."""
        if self._continues:
            self._continues = False
            if self.shots is not None:
                self.shots(frame)  # the cut detector's first frame: no cut
            return False
        if self.shots is None:
            new, self._started = not self._started, True
            return new
        return self.shots(frame)

    def start_shot(self, focal_hint: float | None) -> None:
        """A new shot: tracks end (after the first), the zoom starts again at 1."""
        self.zoom_base = 1.0
        if self._shots_begun:
            self.perceiver.reset()
            self.tracker.reset()
            if self.sides is not None:
                self.sides.reset()
        self._shots_begun += 1
        if self.zoom is not None:
            self.zoom.reset()
            self.zoom.focal_px = focal_hint

    def __call__(self, frame: Frame) -> tuple[Detections, float]:
        """Persons of a frame (tracked) and the frame's zoom since the shot began."""
        dets = self.perceiver(frame)
        zoom = self.zoom_base * self.zoom(frame, dets.xyxy) if self.zoom is not None else 1.0
        dets = self.tracker(dets, frame)
        dets = dets[dets.track_id >= 0]
        if self.sides is not None:
            dets = self.sides(dets, frame.pts_seconds, zoom)
        return dets, zoom

    @property
    def zooming(self) -> bool:
        """The shot is seen to zoom (then each frame keeps its own zoom; else 1)."""
        return self.zoom is not None and (self.zoom.zooming or self.zoom_base != 1.0)

    def close(self) -> None:
        self.perceiver.close()


@dataclass
class Chunk:
    """A window's frames while it is collected (pixels stay on the clip's side)."""

    shot: int
    frames: list[Frame] = field(default_factory=list)
    detections: list[Detections] = field(default_factory=list)
    zoom: list[float] = field(default_factory=list)
    zooming: bool = False  # as of its last frame
    zoom_base: float = 1.0

    @property
    def person_frames(self) -> int:
        return sum(len(d) for d in self.detections)


class Windower:
    """Per shot: collects frames into windows.

    Args:
        chunk_frames: Frames per window.
        min_person_frames: Person-frames the shot's first focal needs (a window with
            fewer, but some, grows up to twice ``chunk_frames`` while the focal is unknown).
        mask_size: Side of the person-mask grid each person-frame carries (0: none).
        focal_wait_frames: Most frames a window with some people grows to while the
            shot's focal is unknown (``None``: twice ``chunk_frames``; a live run fits
            one frame at a time once the focal is set, so waits longer for the first).
    """

    def __init__(self, *, chunk_frames: int, min_person_frames: int, mask_size: int,
                 focal_wait_frames: int | None = None) -> None:
        self.chunk_frames = chunk_frames
        self.focal_wait_frames = 2 * chunk_frames if focal_wait_frames is None else focal_wait_frames
        self.min_person_frames = min_person_frames
        self.mask_size = mask_size

    def full(self, chunk: Chunk, focal_known: bool) -> bool:
        """The window is to be fitted now."""
        if len(chunk.frames) < self.chunk_frames:
            return False
        if focal_known or len(chunk.frames) >= self.focal_wait_frames:
            return True
        return not 0 < chunk.person_frames < self.min_person_frames

    def window(self, chunk: Chunk, zooming: bool) -> Window:
        """The chunk as a window message (its frames' zoom 1 unless the shot zooms)."""
        obs, blaze = observations(chunk.frames, chunk.detections, self.mask_size)
        n = len(chunk.frames)
        zoom = np.asarray(chunk.zoom, np.float32) if zooming else np.ones(n, np.float32)
        return Window(chunk.shot, np.array([f.index for f in chunk.frames], np.int64),
                      np.array([f.pts_seconds for f in chunk.frames], np.float64), zoom, obs, blaze)


def observations(frames: list[Frame], detections: list[Detections], mask_size: int = 0
                 ) -> tuple[PersonFrames, np.ndarray]:
    """The frames' tracked persons as fitter input (person masks on ``mask_size``² grids
    when every detection has one and ``mask_size`` > 0), and their BlazePose-33 keypoints
    ((M, 33, 3))."""
    fi, tid, box, kp, lm, blaze, grids, lifted = [], [], [], [], [], [], [], []
    with_masks = mask_size > 0 and all(d.masks is not None for d in detections)
    for frame, dets in zip(frames, detections):
        for j in range(len(dets)):
            fi.append(frame.index)
            tid.append(int(dets.track_id[j]))
            box.append(dets.xyxy[j])
            kp.append(blazepose33_to_coco23(dets.keypoints[j]))
            lm.append(blazepose33_to_coco23(dets.landmarks3d[j]))
            blaze.append(dets.keypoints[j])
            lifted.append(bool(dets.lifted[j]))
            if with_masks:
                grids.append(mask_grid(dets.masks[j], dets.xyxy[j], mask_size))
    if not fi:
        z = np.zeros
        return PersonFrames(z(0, np.int64), z(0, np.int64), z((0, 4), np.float32), z((0, 23, 3), np.float32),
                            z((0, 23, 3), np.float32)), z((0, 33, 3), np.float32)
    masks = {}
    if grids:
        masks = {"masks": np.stack([g[0] for g in grids]), "mask_origin": np.stack([g[1] for g in grids]),
                 "mask_cell": np.array([g[2] for g in grids], np.float32), "mask_valid": np.stack([g[3] for g in grids])}
    return (PersonFrames(np.array(fi, np.int64), np.array(tid, np.int64), np.array(box, np.float32),
                         np.array(kp, np.float32), np.array(lm, np.float32), **masks, lifted=np.array(lifted, bool)),
            np.array(blaze, np.float32))


class CameraTurns:
    """Per clip: the camera's rotation into its shot's world axes (its camera axes at the
    shot's first frame), read from the zoom tracker's homographies once the shot's focal
    is known.

    Args:
        zoom: The clip's ``ZoomTracker``.
        principal_point: (2,) pixels.
        turn_base: (3, 3) a resumed shot's rotation when it stopped (identity otherwise).
        notes: The clip's notes for the user (shared; one per shot whose turns were not
            all read, kept up to date where it was first made).
    """

    def __init__(self, *, zoom, principal_point: np.ndarray, turn_base: np.ndarray | None = None,
                 notes: list[str] | None = None) -> None:
        self.zoom = zoom
        self.principal_point = principal_point
        self.turn_base = np.eye(3) if turn_base is None else turn_base
        self.unturned: list[int] = []  # frames of the shot written before its focal (and so its turns) was known
        self.max_turn_deg = 0.0
        self.notes = [] if notes is None else notes
        self._note_at: int | None = None  # where this shot's note is in ``notes``

    def start_shot(self) -> None:
        self.turn_base = np.eye(3)
        self.unturned = []
        self._note_at = None

    def __call__(self, shot: int, frame_index: np.ndarray, focal_px: float | None,
                 zoom_base: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The rotations of the window's frames and of any earlier ones of the shot still
        without one: (frame indices (K,), rotations (K, 3, 3)), or ``None`` until the
        shot's focal is known."""
        self.unturned.extend(int(i) for i in frame_index)
        if focal_px is None:
            return None
        frames, self.unturned = np.array(self.unturned, np.int64), []
        turns = self.turn_base @ np.swapaxes(self.zoom.turns(frames, focal_px * zoom_base, self.principal_point), 1, 2)
        cos = (np.trace(turns, axis1=1, axis2=2) - 1.0) / 2.0
        if np.isfinite(cos).any():
            self.max_turn_deg = max(self.max_turn_deg, float(np.degrees(np.arccos(np.clip(np.nanmin(cos), -1, 1)))))
        if self.zoom.unread and not (turns == np.eye(3)).all():  # a still camera's unread turn is right
            n = self.zoom.unread
            note = (f"shot {shot}: the camera's turn could not be read in {n} frame{'s' * (n != 1)} (too little "
                    "background matched, or no turn at the shot's focal); camera/rotation interpolates them")
            if self._note_at is None:
                self._note_at = len(self.notes)
                self.notes.append(note)
            else:
                self.notes[self._note_at] = note
        return frames, turns


class TrackFilter:
    """Per clip: temporal filtering per track, translation (Kalman + RTS, or forward
    only) and rotations (quaternion smoothing), then the joints are placed again. With
    the camera's turns, both are filtered in the shot's world axes, so that a panning
    camera's turn is not smoothed as the body's motion.

    Args:
        translation: A ``TranslationSmoother``, or ``None``.
        pose: A ``PoseSmoother``, or ``None``.
        placer: The ``BodyPlacer`` that places the filtered bodies.
    """

    def __init__(self, *, translation, pose, placer) -> None:
        self.translation = translation
        self.pose = pose
        self.placer = placer

    def start_shot(self) -> None:
        for f in (self.translation, self.pose):
            if f is not None:
                f.reset()

    def rescale(self, track_id: int, factor: float) -> None:
        """A track's size changed: its carried translation state follows (about the camera)."""
        if self.translation is not None:
            self.translation.rescale(track_id, factor)

    def __call__(self, fit: BodyFit, times: dict[int, float], turns: dict[int, np.ndarray] | None = None) -> BodyFit:
        """Filters ``fit`` (in place) and returns it placed again.

        Args:
            fit: The window's fits.
            times: Frame index -> its time, seconds.
            turns: Frame index -> (3, 3) camera axes -> the shot's world axes, or ``None``.
        """
        import roma
        import torch

        if self.translation is None and self.pose is None:
            return fit
        free = self.placer.body.fit_bone_index
        for tid in np.unique(fit.track_id):
            sel = np.nonzero(fit.track_id == tid)[0]
            sel = sel[np.argsort(fit.frame_index[sel])]
            t = np.array([times[int(i)] for i in fit.frame_index[sel]])
            to_world = None if turns is None else np.stack([turns[int(i)] for i in fit.frame_index[sel]])
            if to_world is not None and (to_world == np.eye(3)).all():
                to_world = None  # a still camera: its axes are the world's
            if self.translation is not None:
                transl = fit.transl[sel].astype(np.float64)
                if to_world is not None:
                    transl = np.einsum("nij,nj->ni", to_world, transl)
                transl = self.translation(int(tid), t, transl, valid=fit.fit_ok[sel])
                if to_world is not None:
                    transl = np.einsum("nji,nj->ni", to_world, transl)
                fit.transl[sel] = transl.astype(np.float32)
            if self.pose is not None:
                orient = fit.global_orient[sel]
                if to_world is not None:
                    orient = roma.rotvec_to_rotmat(torch.as_tensor(orient, dtype=torch.float64)).numpy()
                    orient = roma.rotmat_to_rotvec(torch.as_tensor(to_world @ orient)).numpy().astype(np.float32)
                rot = np.concatenate([orient[:, None], fit.body_pose[sel][:, free]], axis=1)
                rot = self.pose(int(tid), t, rot)
                orient = rot[:, 0]
                if to_world is not None:
                    orient = roma.rotvec_to_rotmat(torch.as_tensor(orient, dtype=torch.float64)).numpy()
                    orient = roma.rotmat_to_rotvec(torch.as_tensor(np.swapaxes(to_world, 1, 2) @ orient)).numpy()
                fit.global_orient[sel] = orient
                pose = fit.body_pose[sel]
                pose[:, free] = rot[:, 1:]
                fit.body_pose[sel] = pose
        return self.placer.place(fit)


class Observer:
    """Perception and tracking alone (bench/, train/, under any executor): keeps each
    frame and its tracked persons, fits nothing.

    Args:
        perceive: The clip's :class:`FramePerceiver` (one shot: no cut detection needed).
    """

    def __init__(self, *, perceive: FramePerceiver) -> None:
        self.perceive = perceive
        self.frames: list[Frame] = []
        self.detections: list[Detections] = []

    def push(self, frame: Frame) -> list:
        self.frames.append(frame)
        self.detections.append(self.perceive(frame)[0])
        return []

    def flush(self) -> list:
        return []

    def write(self, output) -> None:
        raise TypeError("an Observer has no outputs to write")

    def observations(self, mask_size: int = 0) -> tuple[PersonFrames, np.ndarray]:
        """What was seen, as fitter input (see :func:`observations`)."""
        return observations(self.frames, self.detections, mask_size)
