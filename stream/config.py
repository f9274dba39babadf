"""Typed configuration: dataclasses loaded from YAML plus ``key=value`` overrides.

Read only at the top (``stream.run``); stages receive plain keyword arguments.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

# What the focal search reads (EstimationConfig.focal_landmarks): BlazePose's 3D
# landmarks as given, the relief lifter's correction of them, or the pose lifter's.
FOCAL_LANDMARKS = ("detector", "relief_lifter", "pose_lifter")


@dataclass
class DecodeConfig:
    """Which frames to read."""

    start_s: float | None = None
    end_s: float | None = None
    every: int = 1
    max_frames: int | None = None
    image_fps: float = 30.0
    random_access: str = "auto"  # auto | never | always


@dataclass
class PerceptionConfig:
    """Person detection and keypoints: MediaPipe BlazePose + OpenCV HOG (offline, the
    default), or ultralytics YOLO pose (the ``yolo`` extra, see :class:`YoloConfig`)."""

    detector: str = "mediapipe"  # mediapipe | yolo
    max_persons: int = 4
    detect_every: int = 5
    use_hog: bool = True
    crop_size: int = 256
    min_pose_score: float = 0.2
    masks: bool = True
    tile_px: int = 0  # look for small people in overlapping tiles of this side, pixels (0: off)
    small_people: bool = False  # contrast blobs searched by BlazePose's landmark network alone (people 40-90 px tall)


@dataclass
class TrackingConfig:
    """Track association (ByteTrack-style) and shot cuts."""

    high_score: float = 0.6
    low_score: float = 0.2
    min_hits: int = 2
    reid_s: float = 2.0
    iou_gate: float = 0.1
    tracker: str = "ours"  # ours | bytetrack | botsort (ultralytics', the yolo extra)
    keep_sides: bool = True  # exchange left and right where a track's labels flip to facing the camera
    detect_cuts: bool = True
    detect_zoom: bool = True
    cut_hist_threshold: float = 0.35
    cut_diff_threshold: float = 0.08


@dataclass
class EstimationConfig:
    """Body and camera estimation."""

    body_model: str = "anny"  # anny | smplx
    model_path: str | None = None  # smplx: folder with SMPLX_<GENDER>.npz|pkl, or the file
    gender: str = "neutral"  # smplx: neutral | male | female
    chunk_frames: int = 48
    focal_min_person_frames: int = 24  # a chunk with fewer grows (up to 2x chunk_frames) before it sets the shot's focal
    iterations_3d: int = 60
    iterations_2d: int = 40
    min_keypoint_conf: float = 0.5
    focal_px: float | None = None
    fov_deg: float | None = None
    intrinsics: str | None = None  # file with fx, fy, cx, cy [, distortion] (stream/intrinsics.py)
    metadata_focal: bool = True  # without the three above: the 35 mm-equivalent focal in the video or images' EXIF
    rotation_focal: bool = True  # else a camera panning or tilting about its centre: focal from its turn (needs tracking.detect_zoom)
    floor_focal: bool = True  # else a still camera looking down at people walking: focal from their floor (models/ground.py)
    lines_focal: bool = True  # else a still camera seeing the scene's axes obliquely: focal from its lines (models/vanishing.py)
    lines_max_up_deg: float = 10.0  # the lines' scene must stand as the people do: its nearest axis to their up, degrees
    fov_range_deg: list[float] = field(default_factory=lambda: [15.0, 130.0])
    focal_prior_fov_deg: float = 65.0  # where the people do not fix the focal: a log-normal prior over views, its mode
    focal_prior_spread: float = 1.5  # one standard deviation, as a factor on the focal
    focal_prior_weight: float = 0.3  # its cost at one standard deviation (0: off), against the mean vote in [0, 1]
    focal_prior_flat_rise: float = 0.01  # the mean vote rising less within an octave of its minimum: not fixed
    silhouette_weight: float = 1.0  # (1 - soft IoU) of rendered body vs person mask; 0: off
    silhouette_iterations: int = 10  # last refinement steps that include it
    silhouette_size: int = 16  # mask grid cells per side
    silhouette_search_every: int = 5  # silhouette steps between searches of each cell's nearest faces
    lifter: bool = True  # fit the pose to the bundled lifter's correction of the detector's 3D landmarks
    lifter_keeps_size: bool = False  # the pose lifter's correction keeps the detector's body size (real footage from above)
    focal_landmarks: str = "detector"  # the 3D landmarks the focal search reads: detector | relief_lifter | pose_lifter
    shared_ground: bool = False  # 3+ people on one floor: rescale those whose size disagrees (models/ground.py)
    ground_min_tracks: int = 3  # tracks that must show their feet before any is rescaled
    ground_up_sd_deg: float = 3.0  # the torsos refine the bodies' down axis this far (degrees); 0: the bodies' alone
    person_height_m: float | None = None  # known standing height: every track's body is sized to it (metres)
    focal_jump_factor: float = 1.5  # consecutive windows of a still shot whose focal estimates differ more: a note and a stored jump
    depth_jump_factor: float = 1.25  # a track's raw depth across two windows' boundary differing more: the same


@dataclass
class FilterConfig:
    """Temporal filtering."""

    smooth_translation: bool = True
    accel_std: float = 3.0
    smooth_pose: bool = True
    pose_sigma_s: float = 0.06
    causal: bool = False
    world_axes: bool = True  # filter in the shot's world axes (camera/rotation), not the turning camera's


@dataclass
class OutputConfig:
    """What to write."""

    dir: str = "out"
    overlay: bool = True
    overlay_crf: int = 23
    overlay_keypoints: bool = False
    overlay_inset: str = "top"  # top | side | none


@dataclass
class LiveConfig:
    """``meshstream live``: what a live run changes (a causal path, one frame per fit).

    Perception there searches with HOG every ``detect_every`` frames and while nobody is
    seen, without masks, in one shot with no zoom tracking; filters are causal; each
    frame is fitted on its own, warm-started from its track's last fit.
    """

    detect_every: int = 30  # frames between searches for people beside the ones tracked
    iterations_3d: int = 0  # structure steps per frame (0: the refinement alone, from the last pose)
    iterations_2d: int = 4  # refinement steps per frame, warm-started
    shape_frames: int = 30  # a track's shape is refined over its first frames, then kept
    focal_seconds: float = 2.0  # without a given focal: the first seconds' people set it
    overlap: bool = True  # perceive the next frame while this one is fitted (else one after the other)
    store_every_s: float = 1.0  # the store is appended and committed this often
    preview_quality: int = 80  # JPEG quality of the preview stream
    preview_mesh: bool = False  # the preview draws the meshes (costs frames/s; default: the fitted skeletons)


@dataclass
class YoloConfig:
    """``perception.detector: yolo``: ultralytics YOLO pose finds every person in one
    pass (boxes and COCO-17 keypoints); people at least ``landmarks_min_px`` tall also
    get BlazePose's landmarks from their crop, smaller ones the keypoint lifter's."""

    weights: str = "yolo11n-pose.pt"  # a name ultralytics downloads on first use, or a local .pt file
    device: str = "auto"  # auto (CUDA when there is one) | cpu | cuda | cuda:N
    imgsz: int = 640  # inference size, pixels (the longer side); larger finds smaller people
    conf: float = 0.25  # minimum detection confidence
    max_persons: int = 50  # most persons kept per frame, best first
    landmarks_min_px: float = 100.0  # box height from which MediaPipe's crop landmarks are used


@dataclass
class Config:
    """The whole configuration tree."""

    decode: DecodeConfig = field(default_factory=DecodeConfig)
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    estimation: EstimationConfig = field(default_factory=EstimationConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    yolo: YoloConfig = field(default_factory=YoloConfig)

    def validate(self, flags: dict[str, str] | None = None) -> None:
        """Checks value ranges; raises :class:`ConfigError` naming the key.

        Args:
            flags: ``{config key: command-line flag}`` for values the user gave as
                flags (``{"estimation.focal_px": "--focal-px"}``): the error names the
                flag the user typed instead of the key.
        """
        d, p, t, e, f = self.decode, self.perception, self.tracking, self.estimation, self.filter
        checks = [  # (holds, key named, what it must be)
            (d.every >= 1, "decode.every", "must be >= 1"),
            (d.max_frames is None or d.max_frames >= 1, "decode.max_frames", "must be >= 1"),
            (d.start_s is None or d.start_s >= 0, "decode.start_s", "must be >= 0 seconds"),
            (d.end_s is None or d.end_s > (d.start_s or 0.0), "decode.end_s",
             "must be after the start (decode.start_s, default 0 s)"),
            (d.image_fps > 0, "decode.image_fps", "must be > 0"),
            (d.random_access in ("auto", "never", "always"), "decode.random_access", "must be auto, never or always"),
            (p.detector in ("mediapipe", "yolo"), "perception.detector", "must be mediapipe or yolo"),
            (t.tracker in ("ours", "bytetrack", "botsort"), "tracking.tracker", "must be ours, bytetrack or botsort"),
            (self.yolo.imgsz >= 32, "yolo.imgsz", "must be >= 32 pixels"),
            (0 <= self.yolo.conf <= 1, "yolo.conf", "must be in [0, 1]"),
            (self.yolo.max_persons >= 1, "yolo.max_persons", "must be >= 1"),
            (self.yolo.landmarks_min_px >= 0, "yolo.landmarks_min_px", "must be >= 0 pixels"),
            (p.max_persons >= 1, "perception.max_persons", "must be >= 1"),
            (p.detect_every >= 1, "perception.detect_every", "must be >= 1"),
            (0 <= p.min_pose_score <= 1, "perception.min_pose_score", "must be in [0, 1]"),
            (t.reid_s >= 0, "tracking.reid_s", "must be >= 0"),
            (e.ground_min_tracks >= 2, "estimation.ground_min_tracks", "must be >= 2"),
            (e.ground_up_sd_deg >= 0, "estimation.ground_up_sd_deg", "must be >= 0 (0: the bodies' down axis alone)"),
            (0 < e.lines_max_up_deg <= 45, "estimation.lines_max_up_deg", "must be in (0, 45]"),
            (0 <= t.low_score <= t.high_score <= 1, "tracking.low_score",
             "and tracking.high_score must satisfy 0 <= low_score <= high_score <= 1"),
            (t.min_hits >= 1, "tracking.min_hits", "must be >= 1"),
            (f.pose_sigma_s >= 0, "filter.pose_sigma_s", "must be >= 0"),
            (e.body_model in ("anny", "smplx"), "estimation.body_model", "must be anny or smplx"),
            (e.focal_landmarks in FOCAL_LANDMARKS, "estimation.focal_landmarks",
             f"must be one of {', '.join(FOCAL_LANDMARKS)}"),
            (e.chunk_frames >= 2, "estimation.chunk_frames", "must be >= 2"),
            (e.focal_min_person_frames >= 0, "estimation.focal_min_person_frames", "must be >= 0"),
            (0 < e.focal_prior_fov_deg < 180, "estimation.focal_prior_fov_deg", "must be in (0, 180)"),
            (e.focal_prior_spread > 1, "estimation.focal_prior_spread", "must be > 1"),
            (e.focal_prior_weight >= 0, "estimation.focal_prior_weight", "must be >= 0"),
            (0 <= e.focal_prior_flat_rise < 1, "estimation.focal_prior_flat_rise", "must be in [0, 1)"),
            (e.focal_jump_factor > 1, "estimation.focal_jump_factor", "must be > 1"),
            (e.depth_jump_factor > 1, "estimation.depth_jump_factor", "must be > 1"),
            (e.silhouette_weight >= 0, "estimation.silhouette_weight", "must be >= 0"),
            (e.silhouette_size >= 4, "estimation.silhouette_size", "must be >= 4"),
            (e.silhouette_search_every >= 1, "estimation.silhouette_search_every", "must be >= 1"),
            (0 <= e.silhouette_iterations <= e.iterations_2d, "estimation.silhouette_iterations",
             "must be in [0, estimation.iterations_2d]"),
            (e.focal_px is None or e.focal_px > 0, "estimation.focal_px", "must be a focal length in pixels, > 0"),
            (e.person_height_m is None or 0.5 <= e.person_height_m <= 2.5, "estimation.person_height_m",
             "must be a standing height in metres, 0.5 to 2.5"),
            (e.person_height_m is None or not e.shared_ground, "estimation.person_height_m",
             "and estimation.shared_ground both set the bodies' size; use one"),
            (e.fov_deg is None or 0 < e.fov_deg < 180, "estimation.fov_deg",
             "must be a horizontal field of view in degrees, in (0, 180)"),
            (len(e.fov_range_deg) == 2 and 0 < e.fov_range_deg[0] < e.fov_range_deg[1] < 180,
             "estimation.fov_range_deg", "must be [low, high] with 0 < low < high < 180"),
            (self.output.overlay_inset in ("top", "side", "none"), "output.overlay_inset", "must be top, side or none"),
            (e.gender in ("neutral", "male", "female"), "estimation.gender", "must be neutral, male or female"),
            (self.live.detect_every >= 1, "live.detect_every", "must be >= 1"),
            (self.live.iterations_3d >= 0, "live.iterations_3d", "must be >= 0"),
            (self.live.iterations_2d >= 1, "live.iterations_2d", "must be >= 1"),
            (self.live.shape_frames >= 1, "live.shape_frames", "must be >= 1"),
            (self.live.focal_seconds > 0, "live.focal_seconds", "must be > 0 seconds"),
            (self.live.store_every_s > 0, "live.store_every_s", "must be > 0 seconds"),
            (1 <= self.live.preview_quality <= 100, "live.preview_quality", "must be in [1, 100]"),
        ]
        flags = flags or {}
        for ok, key, requirement in checks:
            if ok:
                continue
            section, name = key.split(".")
            value = getattr(getattr(self, section), name)
            if key in flags:
                for k, flag in flags.items():
                    requirement = requirement.replace(k, flag)
                raise ConfigError(f"{flags[key]} {value}: {requirement}")
            raise ConfigError(f"invalid config: {key} {requirement}, got {value!r}")
        if sum(v is not None for v in (e.focal_px, e.fov_deg, e.intrinsics)) > 1:
            raise ConfigError("give one of estimation.focal_px, fov_deg and intrinsics (--focal-px, --fov-deg, "
                              "--intrinsics)")
        if e.body_model == "smplx" and not e.model_path:
            raise ConfigError("--body-model smplx needs --model-path DIR, the folder holding SMPLX_NEUTRAL.npz "
                              "(SMPL-X files are licensed: https://smpl-x.is.tue.mpg.de)")


# Keys that were replaced, with what to write instead.
_RENAMED = {
    "estimation.relief_lifter": "estimation.focal_landmarks: relief_lifter (true) or detector (false)",
    "estimation.lifter_focal": "estimation.focal_landmarks: pose_lifter (true) or detector (false)",
}


def _check_type(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"invalid config: {key} must be a list, got {value!r}")
        return [_check_type(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (bool, str) and isinstance(value, tp):
        return value
    raise ConfigError(f"invalid config: {key} must be {getattr(tp, '__name__', tp)}, got {value!r}")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config: {prefix or 'the file'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if full in _RENAMED:
            raise ConfigError(f"config key '{full}' was replaced; write {_RENAMED[full]}")
        if key not in names:
            raise ConfigError(f"unknown config key '{full}'; valid keys here: {', '.join(sorted(names))}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value or {}, f"{full}.")
        else:
            kwargs[key] = _check_type(value, tp, full)
    return cls(**kwargs)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def default_config_path() -> Path:
    """The packaged ``configs/default.yaml``."""
    return Path(str(resources.files("meshstream.configs").joinpath("default.yaml")))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                flags: dict[str, str] | None = None) -> Config:
    """Loads the default config, then ``path`` over it, then ``key=value`` overrides.

    Args:
        path: A YAML file (``configs/NAME.yaml``) or ``None`` for the defaults.
        overrides: ``section.key=value`` strings; values are parsed as YAML.
        flags: ``{config key: command-line flag}`` for overrides that came from flags,
            so that an invalid value is reported under the flag the user typed.

    Raises:
        ConfigError: Unreadable file, unknown key, wrong type or out-of-range value.
    """
    data = _read_yaml(default_config_path())
    if path is not None:
        data = _merge(data, _read_yaml(Path(path)))
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"invalid --set {item!r}; write section.key=value, e.g. --set estimation.chunk_frames=32")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid --set {item!r}: value is not valid YAML ({exc.problem})") from exc
        node: dict[str, Any] = {}
        cursor = node
        parts = key.strip().split(".")
        for p in parts[:-1]:
            cursor = cursor.setdefault(p, {})
        cursor[parts[-1]] = value
        data = _merge(data, node)
    config = _build(Config, data, "")
    config.validate(flags)
    return config


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path} ({exc.strerror}); check the --config path") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    return data or {}


def config_to_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)
