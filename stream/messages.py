"""The messages stages pass each other: numpy only, picklable, checked on creation.

One leaf module (it imports numpy and the keypoint layouts' names, nothing that runs
a model), so that every stage and every executor, in this process or in a Ray actor,
speaks the same types. Conventions: OpenCV camera (x right, y down, z forward),
metres, pixels, seconds, axis-angle rotations.

Per frame: :class:`VideoInfo`, :class:`Frame`, :class:`Detections`. Per window (one
shot's frames for one fit): :class:`PersonFrames`, :class:`Window`,
:class:`ShotCamera`, :class:`TrackPrior`, :class:`FocalEstimate`, :class:`BodyFit`,
:class:`FitResult`. Amendments the store applies later: :class:`ShotFocalFixed`,
:class:`TrackFinal`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from meshstream.models.keypoints import LAYOUTS


@dataclass(frozen=True)
class VideoInfo:
    """What a source knows about itself before decoding.

    Attributes:
        path: Where the frames come from (file, folder or device).
        width: Frame width in pixels after rotation metadata is applied.
        height: Frame height in pixels after rotation metadata is applied.
        fps: Average frame rate (frames/s) read from the container; for an image
            folder, the rate the user gave. Used only to label outputs: timing always
            comes from each frame's ``pts_seconds``.
        n_frames: Frame count the container announces, or ``None`` if unknown.
        rotation_deg: Display rotation applied to decoded frames, degrees
            counter-clockwise as FFmpeg reads the container's display matrix (0, 90,
            180 or 270; a phone's "rotate 90" clip reads 270).
        codec: Codec name, or ``"images"`` for an image folder.
        focal_35mm: The lens as a 35 mm-equivalent focal length, millimetres, when the
            camera wrote one into the container (iPhones do) or into the images' EXIF;
            ``None`` otherwise.
        focal_35mm_basis: How that value maps to the frame
            (:func:`~meshstream.stream.container_tags.focal_px_from_35mm`):
            ``"long_side"`` for video, ``"diagonal"`` for photos' EXIF.
    """

    path: str
    width: int
    height: int
    fps: float
    n_frames: int | None
    rotation_deg: int = 0
    codec: str = ""
    focal_35mm: float | None = None
    focal_35mm_basis: str = "long_side"

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"frame size must be positive, got {self.width}x{self.height}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")


@dataclass
class Frame:
    """One decoded video frame.

    Attributes:
        index: 0-based index of the frame in the source (before any ``every`` step).
        pts_seconds: Presentation time in seconds from the container's clock.
        rgb: (H, W, 3) uint8 RGB pixels, rotation metadata already applied.
    """

    index: int
    pts_seconds: float
    rgb: np.ndarray

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise ValueError(
                f"Frame.rgb must be (H, W, 3) uint8, got {self.rgb.shape} {self.rgb.dtype}"
            )

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


@dataclass
class Detections:
    """The persons found in one frame.

    Attributes:
        xyxy: (N, 4) float32 boxes, pixels, (x0, y0, x1, y1).
        score: (N,) float32 detection confidence in [0, 1].
        keypoints: (N, K, 3) float32 keypoints: x, y in pixels and a confidence in
            [0, 1], in the order of ``keypoint_layout``.
        keypoint_layout: Name of the keypoint order (see ``models.keypoints.LAYOUTS``).
        landmarks3d: (N, K, 3) float32 relative 3D landmarks in metres, origin at the
            hip midpoint, axes parallel to the OpenCV camera (x right, y down, z away
            from the camera); or ``None`` when the backend gives none.
        masks: (N, H, W) bool person masks, or ``None``.
        track_id: (N,) int64 track ids; -1 until the tracker assigns them.
        lifted: (N,) bool, True where ``landmarks3d`` is the keypoint lifter's pose
            from the 2D keypoints (a person too small for BlazePose), not a landmarker's.
    """

    xyxy: np.ndarray
    score: np.ndarray
    keypoints: np.ndarray
    keypoint_layout: str
    landmarks3d: np.ndarray | None = None
    masks: np.ndarray | None = None
    track_id: np.ndarray = field(default=None)  # type: ignore[assignment]
    lifted: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(self.xyxy)
        self.score = np.asarray(self.score, dtype=np.float32).reshape(n)
        if self.keypoint_layout not in LAYOUTS:
            raise ValueError(
                f"unknown keypoint layout {self.keypoint_layout!r}; known: {sorted(LAYOUTS)}"
            )
        k = len(LAYOUTS[self.keypoint_layout])
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(n, k, 3)
        if self.landmarks3d is not None:
            self.landmarks3d = np.asarray(self.landmarks3d, dtype=np.float32)
            _check_shape("landmarks3d", self.landmarks3d, (n, k, 3))
        if self.masks is not None:
            self.masks = np.asarray(self.masks, dtype=bool)
            if self.masks.ndim != 3 or len(self.masks) != n:
                raise ValueError(f"masks must be (N={n}, H, W), got {self.masks.shape}")
        if self.track_id is None:
            self.track_id = np.full(n, -1, dtype=np.int64)
        self.track_id = np.asarray(self.track_id, dtype=np.int64)
        _check_shape("track_id", self.track_id, (n,))
        self.lifted = np.zeros(n, bool) if self.lifted is None else np.asarray(self.lifted, dtype=bool)
        _check_shape("lifted", self.lifted, (n,))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | list[int] | int) -> "Detections":
        """Selects persons by boolean mask, index array, slice or integer."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            xyxy=self.xyxy[index],
            score=self.score[index],
            keypoints=self.keypoints[index],
            keypoint_layout=self.keypoint_layout,
            landmarks3d=None if self.landmarks3d is None else self.landmarks3d[index],
            masks=None if self.masks is None else self.masks[index],
            track_id=self.track_id[index],
            lifted=self.lifted[index],
        )

    @classmethod
    def empty(cls, keypoint_layout: str, with_landmarks: bool = True) -> "Detections":
        k = len(LAYOUTS[keypoint_layout])
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            score=np.zeros(0, np.float32),
            keypoints=np.zeros((0, k, 3), np.float32),
            keypoint_layout=keypoint_layout,
            landmarks3d=np.zeros((0, k, 3), np.float32) if with_landmarks else None,
        )

    @classmethod
    def concatenate(cls, parts: list["Detections"]) -> "Detections":
        """Joins detections of the same frame (same layout)."""
        if not parts:
            raise ValueError("concatenate needs at least one Detections")
        layout = parts[0].keypoint_layout
        if any(p.keypoint_layout != layout for p in parts):
            raise ValueError("cannot concatenate detections with different keypoint layouts")
        has_lm = all(p.landmarks3d is not None for p in parts)
        has_masks = all(p.masks is not None for p in parts)
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            score=np.concatenate([p.score for p in parts]),
            keypoints=np.concatenate([p.keypoints for p in parts]),
            keypoint_layout=layout,
            landmarks3d=np.concatenate([p.landmarks3d for p in parts]) if has_lm else None,
            masks=np.concatenate([p.masks for p in parts]) if has_masks else None,
            track_id=np.concatenate([p.track_id for p in parts]),
            lifted=np.concatenate([p.lifted for p in parts]),
        )


def _check_shape(name: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    if array.shape != expected:
        raise ValueError(f"{name} must have shape {expected}, got {array.shape}")


@dataclass
class PersonFrames:
    """Observations of tracked persons over a chunk, flattened over (frame, person).

    Attributes:
        frame_index: (M,) int64 source frame index of each observation.
        track_id: (M,) int64 track id.
        bbox_xyxy: (M, 4) float32 box, pixels.
        keypoints2d: (M, 23, 3) float32 COCO-23 keypoints: x, y pixels, confidence.
        landmarks3d: (M, 23, 3) float32 hip-centred metric landmarks, camera axes.
        masks: (M, R, R) float32 person-mask coverage of a square grid around each
            person (see :func:`mask_grid`), or ``None``.
        mask_origin: (M, 2) top-left pixel of each grid.
        mask_cell: (M,) grid cell size, pixels.
        mask_valid: (M, R, R) float32, 0 where a cell lies outside the frame.
        lifted: (M,) bool, True where ``landmarks3d`` is the keypoint lifter's pose
            (see :class:`Detections`); ``None`` stands for all False.
    """

    frame_index: np.ndarray
    track_id: np.ndarray
    bbox_xyxy: np.ndarray
    keypoints2d: np.ndarray
    landmarks3d: np.ndarray
    masks: np.ndarray | None = None
    mask_origin: np.ndarray | None = None
    mask_cell: np.ndarray | None = None
    mask_valid: np.ndarray | None = None
    lifted: np.ndarray | None = None

    def __post_init__(self) -> None:
        m = len(self.frame_index)
        self.lifted = np.zeros(m, bool) if self.lifted is None else np.asarray(self.lifted, bool)
        checks = [("track_id", (m,)), ("bbox_xyxy", (m, 4)), ("keypoints2d", (m, 23, 3)), ("landmarks3d", (m, 23, 3)),
                  ("lifted", (m,))]
        if self.masks is not None:
            r = self.masks.shape[-1]
            checks += [("masks", (m, r, r)), ("mask_origin", (m, 2)), ("mask_cell", (m,)), ("mask_valid", (m, r, r))]
        for name, shape in checks:
            arr = getattr(self, name)
            if arr is None or arr.shape != shape:
                raise ValueError(f"PersonFrames.{name} must be {shape}, got {None if arr is None else arr.shape}")

    def __len__(self) -> int:
        return len(self.frame_index)


@dataclass
class BodyFit:
    """Fitted bodies and camera for M person-frames.

    Attributes:
        body_model: Body model name (``"anny"`` or ``"smplx"``).
        frame_index: (M,) int64.
        track_id: (M,) int64.
        global_orient: (M, 3) axis-angle rotating the body-model frame into the camera.
        body_pose: (M, J, 3) axis-angle per bone (model's local convention).
        shape: (M, S) shape parameters (one per track within a chunk).
        transl: (M, 3) camera-space position of the model root, metres.
        pelvis: (M, 3) hip midpoint in camera space, metres (Tz = pelvis[:, 2]).
        joints3d: (M, J, 3) bone heads in camera space, metres.
        keypoints3d: (M, 17, 3) COCO-17 keypoints in camera space, metres.
        focal_px: Focal length used at zoom 1, pixels (a frame's is ``focal_px * zoom``).
        principal_point: (2,) pixels.
        fit_error_px: (M,) confidence-weighted mean keypoint reprojection error, pixels.
        confidence: (M,) fit confidence in [0, 1].
        fit_ok: (M,) False where the fit is not to be trusted (too few keypoints or a
            reprojection error above 10 % of the box height).
    """

    body_model: str
    frame_index: np.ndarray
    track_id: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    shape: np.ndarray
    transl: np.ndarray
    pelvis: np.ndarray
    joints3d: np.ndarray
    keypoints3d: np.ndarray
    focal_px: float
    principal_point: np.ndarray
    fit_error_px: np.ndarray
    confidence: np.ndarray
    fit_ok: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_index)

    def __getitem__(self, index: np.ndarray) -> "BodyFit":
        kw = {}
        for name, value in self.__dict__.items():
            if isinstance(value, np.ndarray) and name != "principal_point":
                kw[name] = value[index]
            else:
                kw[name] = value
        return BodyFit(**kw)

    @classmethod
    def concatenate(cls, parts: list["BodyFit"]) -> "BodyFit":
        """The person-frames of ``parts`` (one body model and camera) in order."""
        kw = {}
        for name, value in parts[-1].__dict__.items():
            if isinstance(value, np.ndarray) and name != "principal_point":
                kw[name] = np.concatenate([getattr(p, name) for p in parts])
            else:
                kw[name] = value
        return BodyFit(**kw)


@dataclass
class FocalEstimate:
    """Result of the focal search.

    Attributes:
        focal_px: Pooled estimate over all person-frames, pixels.
        per_frame: (frame_index -> focal) minimum of each frame's own cost, at that
            frame's zoom, pixels.
        grid: (F,) candidate focals, pixels.
        cost: (F,) pooled cost (the person-frames' evidence alone).
        evidence_px: The focal of the evidence alone where it did not fix the focal and
            a prior over fields of view was combined with it (``focal_px`` is then the
            combination), else ``None``.
    """

    focal_px: float
    per_frame: dict[int, float]
    grid: np.ndarray
    cost: np.ndarray
    evidence_px: float | None = None

    @property
    def at_range_edge(self) -> bool:
        """True when the pooled cost is lowest at the first or last candidate: the
        person-frames did not bracket a minimum inside the searched field-of-view range."""
        i = int(np.nanargmin(self.cost))
        return i == 0 or i == len(self.grid) - 1


@dataclass
class TrackPrior:
    """What one track carries from window to window (it travels with each window, so
    that any fitter, in any process, fits the track as the previous window left it).

    Attributes:
        shape: (S,) running shape estimate, in the body model's dtype, or ``None``
            before the track's first fit (the base shape).
        frames_seen: Person-frames behind ``shape`` (the prior's weight; 0: weak).
        warm_pose: (J, 3) axis-angle pose of the track's last fitted frame, the next
            fit's start, or ``None`` before its first fit.
        scale: Factor on the track's relative 3D landmarks, i.e. on its metric size
            (1 unless the shared floor or a known height resized it).
        stature_m: Standing height of ``shape``, metres (NaN before its first fit).
    """

    shape: np.ndarray | None
    frames_seen: int = 0
    warm_pose: np.ndarray | None = None
    scale: float = 1.0
    stature_m: float = float("nan")

    def __post_init__(self) -> None:
        if self.shape is not None and self.shape.ndim != 1:
            raise ValueError(f"TrackPrior.shape must be (S,), got {self.shape.shape}")
        if self.warm_pose is not None and (self.warm_pose.ndim != 2 or self.warm_pose.shape[1] != 3):
            raise ValueError(f"TrackPrior.warm_pose must be (J, 3), got {self.warm_pose.shape}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"TrackPrior.scale must be a positive number, got {self.scale}")


@dataclass
class ShotCamera:
    """The camera a window is fitted with.

    Attributes:
        image_size: (width, height), pixels.
        principal_point: (2,) pixels.
        focal_px: The shot's focal at zoom 1, pixels, or ``None`` while it is still to be
            estimated (the fitter then searches it from this window's people and fits at
            what it finds).
        search: Run the focal search even with ``focal_px`` set (each frame's own
            estimate, ``camera/focal_px_raw``); ``False`` where the focal is given.
    """

    image_size: tuple[int, int]
    principal_point: np.ndarray
    focal_px: float | None = None
    search: bool = True

    def __post_init__(self) -> None:
        self.principal_point = np.asarray(self.principal_point, np.float32).reshape(2)
        if self.focal_px is not None and not (np.isfinite(self.focal_px) and self.focal_px > 0):
            raise ValueError(f"ShotCamera.focal_px must be positive, got {self.focal_px}")
        if self.focal_px is None and not self.search:
            raise ValueError("ShotCamera without a focal must search it")


@dataclass
class Window:
    """One shot's person-frames for one fit (about ``estimation.chunk_frames`` frames
    offline), with their frames' clock.

    Attributes:
        shot: The shot's number in the clip (0-based).
        frame_index: (T,) int64 source frame indices of the window's frames.
        pts_seconds: (T,) float64 their presentation times, seconds.
        zoom: (T,) float32 each frame's zoom since the shot began (1 where it does not zoom).
        obs: The tracked persons as fitter input (COCO-23, mask grids).
        keypoints_blaze: (M, 33, 3) the same persons' BlazePose-33 keypoints (stored).
    """

    shot: int
    frame_index: np.ndarray
    pts_seconds: np.ndarray
    zoom: np.ndarray
    obs: PersonFrames
    keypoints_blaze: np.ndarray

    def __post_init__(self) -> None:
        t = len(self.frame_index)
        for name, n in (("pts_seconds", t), ("zoom", t), ("keypoints_blaze", len(self.obs))):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Window.{name} has {len(getattr(self, name))} rows, expected {n}")
        if not np.isin(self.obs.frame_index, self.frame_index).all():
            raise ValueError("Window.obs holds frames outside the window")

    @property
    def obs_zoom(self) -> np.ndarray:
        """(M,) float32 the zoom of each person-frame's frame."""
        zoom_of = dict(zip(self.frame_index.tolist(), self.zoom.tolist()))
        return np.array([zoom_of[int(i)] for i in self.obs.frame_index], np.float32)


@dataclass
class FitResult:
    """What the body fitter returns for a window.

    Attributes:
        fit: The fitted bodies.
        priors: The window's tracks as this fit leaves them (the next window's priors).
        focal: The focal search's result (``None`` where the camera said not to search).
        feet: (M, 8, 3) camera-space ankles, toes and heels (COCO-23 order), metres
            (``None`` from a fitter told not to place them).
        up: (M, 3) each body's up axis in camera space (unit vectors), or ``None`` with ``feet``.
    """

    fit: BodyFit
    priors: dict[int, TrackPrior]
    focal: FocalEstimate | None
    feet: np.ndarray | None
    up: np.ndarray | None


@dataclass(frozen=True)
class ShotFocalFixed:
    """Amendment: a shot's focal (at zoom 1) is known, for all its rows (frames written
    before its first person included)."""

    shot: int
    focal_px: float


@dataclass
class TrackFinal:
    """Amendment: a track's final shape, and every stored row of the track placed again
    with it (rows fitted before a resize move with it).

    Attributes:
        track_id: Track.
        shape: (S,) float32 the one shape of the track.
        stature_m: Its standing height, metres.
        transl_scale: (N,) float32 factor per stored row on ``transl`` and ``transl_raw``,
            or ``None``.
    """

    track_id: int
    shape: np.ndarray
    stature_m: float
    transl_scale: np.ndarray | None = None


@dataclass
class WindowOutput:
    """A window ready for the sinks: its frames, its filtered fits and its camera.

    Attributes:
        shot: The shot's number.
        frames: The window's frames (pixels, for the overlay), in order.
        focal_raw: (T,) float32 each frame's own focal estimate, pixels (NaN where none).
        focal_px: The shot's focal at zoom 1, or ``None`` while unknown.
        zoom: (T,) float32 each frame's zoom.
        fit: The filtered fits, or ``None`` (no person).
        bbox: (M, 4) the persons' boxes, pixels (with ``fit``).
        keypoints_blaze: (M, 33, 3) their BlazePose-33 keypoints (with ``fit``).
        transl_raw: (M, 3) the translations before filtering, metres (with ``fit``).
        lifted: (M,) bool, True where the fit's 3D evidence was the keypoint lifter's
            (with ``fit``; see :class:`Detections`).
        turns: (frame indices (K,), rotations (K, 3, 3)) the camera's rotation into the
            shot's world axes for the window's frames and earlier ones of the shot still
            without it, or ``None`` (not known yet).
        commit: Store attributes that hold once this window is written (the shots'
            focals and what set them, the notes), as they stood when it was fitted.
    """

    shot: int
    frames: list[Frame]
    focal_raw: np.ndarray
    focal_px: float | None
    zoom: np.ndarray
    fit: BodyFit | None = None
    bbox: np.ndarray | None = None
    keypoints_blaze: np.ndarray | None = None
    transl_raw: np.ndarray | None = None
    turns: tuple[np.ndarray, np.ndarray] | None = None
    commit: dict = field(default_factory=dict)
    lifted: np.ndarray | None = None

    @classmethod
    def concatenate(cls, parts: list["WindowOutput"]) -> "WindowOutput":
        """Consecutive outputs of one shot as one (a live run appends its one-frame
        windows to the store a second at a time): the last one's focal and commit
        attributes hold for all."""
        if len({p.shot for p in parts}) != 1:
            raise ValueError("WindowOutput.concatenate: the outputs span several shots")
        last = parts[-1]
        fitted = [p for p in parts if p.fit is not None and len(p.fit)]
        out = WindowOutput(last.shot, [f for p in parts for f in p.frames], np.concatenate([p.focal_raw for p in parts]),
                           last.focal_px, np.concatenate([p.zoom for p in parts]), commit=last.commit)
        turned = [p.turns for p in parts if p.turns is not None]
        if turned:
            out.turns = (np.concatenate([t[0] for t in turned]), np.concatenate([t[1] for t in turned]))
        if fitted:
            out.fit = BodyFit.concatenate([p.fit for p in fitted])
            out.bbox, out.keypoints_blaze, out.transl_raw = (np.concatenate([getattr(p, k) for p in fitted])
                                                              for k in ("bbox", "keypoints_blaze", "transl_raw"))
            out.lifted = np.concatenate([np.zeros(len(p.fit), bool) if p.lifted is None else p.lifted for p in fitted])
        return out
