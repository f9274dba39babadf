"""Synthetic clips with exact ground truth, rendered from the Anny body model.

The clips exercise the whole pipeline (decode → perceive → estimate) with known camera
focal length, pelvis depth and 3D keypoints. Bodies are shaded meshes with skin, shirt,
trousers and shoe colours over a background photo, encoded as H.264.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import roma
import torch

from .body import MODEL_TO_UPRIGHT_FACING_CAMERA, AnnyBody
from .keypoints import LEFT_HIP, RIGHT_HIP
from .rasterizer import rasterize, shade_faces
from .synthetic_room import Room, room_image

_SKIN = np.array([224, 172, 140], np.float32)
_REGION_COLOURS = {
    "skin": _SKIN,
    "shirt": np.array([40, 90, 200], np.float32),
    "trousers": np.array([60, 60, 70], np.float32),
    "shoes": np.array([30, 25, 20], np.float32),
}


@dataclass
class PersonSpec:
    """One synthetic person.

    Attributes:
        start_xz: (x, z) camera-space start position of the pelvis on the ground, metres.
        velocity_xz: (vx, vz) ground velocity, metres/second.
        yaw_deg: Heading about the vertical axis; 0 faces the camera, 90 faces image right.
        motion: ``"walk"``, ``"squat"``, ``"arms"``, ``"legs"`` (kicks), ``"turn"`` or
            ``"jump"`` (a countermovement jump every 2 s: standing, crouch, a free fall
            of ``jump_m``, landing).
        shape: Anny phenotype overrides, e.g. ``{"height": 0.8}`` (others 0.5).
        shirt_rgb: Shirt colour.
        pose_offset: Axis-angle added to named bones in every frame (Anny local axes,
            radians), e.g. ``{"spine03": (0.2, 0.0, 0.0)}``: varies a motion's poses.
        jump_m: Highest rise of the body above its standing height in a ``"jump"``,
            metres (reached mid-flight; the feet leave the floor by as much).
        phase_s: Where the motion's cycle starts, seconds (people of a crowd out of step).
    """

    start_xz: tuple[float, float]
    velocity_xz: tuple[float, float] = (0.0, 0.0)
    yaw_deg: float = 0.0
    motion: str = "walk"
    shape: dict[str, float] = field(default_factory=dict)
    shirt_rgb: tuple[int, int, int] = (40, 90, 200)
    pose_offset: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    jump_m: float = 0.2
    phase_s: float = 0.0


@dataclass
class GroundTruth:
    """Ground truth of a synthetic clip.

    Attributes:
        focal_px: Focal length, pixels.
        principal_point: (2,) pixels.
        width: Image width, pixels.
        height: Image height, pixels.
        fps: Frame rate, frames/s.
        pelvis: (P, T, 3) hip midpoint in camera space, metres.
        keypoints3d: (P, T, 17, 3) COCO-17 keypoints in camera space, metres.
        keypoints2d: (P, T, 17, 2) their projections, pixels.
        visible: (P, T) whether the person's mask has any pixel in the frame.
        boxes: (P, T, 4) amodal box (the whole body, occluded parts included) clipped
            to the frame, xyxy pixels; NaN when the body is entirely outside.
        visibility: (P, T) fraction of the person's silhouette not hidden by others or
            cut by the frame edge, in [0, 1].
        focal_per_frame: (T,) focal of each frame, pixels (differs from ``focal_px``
            when the camera zooms).
        vertices: (P, T, V, 3) float32 mesh vertices in camera space, metres (only when
            rendered with ``keep_vertices=True``; never saved).
        faces: (F, 3) triangles of those meshes.
    """

    focal_px: float
    principal_point: np.ndarray
    width: int
    height: int
    fps: float
    pelvis: np.ndarray
    keypoints3d: np.ndarray
    keypoints2d: np.ndarray
    visible: np.ndarray
    boxes: np.ndarray | None = None
    visibility: np.ndarray | None = None
    focal_per_frame: np.ndarray | None = None
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None

    def match(self, frame_index: np.ndarray, boxes_xyxy: np.ndarray, min_iou: float = 0.5) -> np.ndarray:
        """The ground-truth person each detected box shows: the one whose amodal box it
        overlaps most in its frame, if that IoU reaches ``min_iou``.

        Args:
            frame_index: (M,) frame of each box.
            boxes_xyxy: (M, 4) boxes, pixels.
            min_iou: Smallest accepted overlap.

        Returns:
            (M,) int64 person index, -1 where no person overlaps enough.
        """
        from .detections import box_iou

        person = np.full(len(frame_index), -1, np.int64)
        for i, (f, box) in enumerate(zip(frame_index, boxes_xyxy)):
            truth = self.boxes[:, f]
            ok = np.isfinite(truth[:, 0])
            if ok.any():
                iou = box_iou(np.asarray(box, np.float64)[None], np.where(ok[:, None], truth, 0.0))[0] * ok
                if iou.max() >= min_iou:
                    person[i] = int(np.argmax(iou))
        return person

    def save(self, path: str | Path) -> None:
        skip = ("vertices", "faces")
        np.savez(path, **{k: np.asarray(v) for k, v in self.__dict__.items() if v is not None and k not in skip})

    @classmethod
    def load(cls, path: str | Path) -> "GroundTruth":
        with np.load(path) as data:
            kw = {k: data[k] for k in data.files}
        for k in ("focal_px", "fps"):
            kw[k] = float(kw[k])
        for k in ("width", "height"):
            kw[k] = int(kw[k])
        return cls(**kw)


def _bone_pose(body: AnnyBody, motion: str, phase: float, jump_m: float = 0.2) -> np.ndarray:
    """(J, 3) axis-angle pose of one frame of a motion (Anny local-ref axes: +x rotation
    swings a limb backwards)."""
    pose = np.zeros((body.num_bones, 3))

    def rot(bone: str, axis: int, angle: float) -> None:
        pose[body.bone_names.index(bone), axis] += angle

    s = math.sin(phase)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        rot(f"upperarm01.{side}", 1, 0.45 * sign)  # arms closer to the body than A-pose
        rot(f"lowerarm01.{side}", 0, -0.25)
        if motion in ("walk", "turn"):
            rot(f"upperleg01.{side}", 0, -0.45 * s * sign)
            rot(f"lowerleg01.{side}", 0, 0.55 * max(0.0, math.sin(phase + sign * 0.5 * math.pi)) + 0.1)
            rot(f"upperarm01.{side}", 0, 0.45 * s * sign)
        elif motion == "squat":
            depth = 0.5 * (1 - math.cos(phase))
            rot(f"upperleg01.{side}", 0, -1.1 * depth)
            rot(f"lowerleg01.{side}", 0, 1.9 * depth)
            rot(f"foot.{side}", 0, -0.7 * depth)
            rot(f"upperarm01.{side}", 0, -1.2 * depth)
        elif motion == "jump":
            crouch = _jump_crouch(phase, jump_m)
            rot(f"upperleg01.{side}", 0, -0.9 * crouch)
            rot(f"lowerleg01.{side}", 0, 1.5 * crouch)
            rot(f"foot.{side}", 0, -0.6 * crouch)
            rot(f"upperarm01.{side}", 0, 0.8 * crouch)
        elif motion == "legs":  # alternating front kicks
            lift = max(0.0, math.sin(phase + (sign > 0) * math.pi))
            rot(f"upperleg01.{side}", 0, -1.2 * lift)
            rot(f"lowerleg01.{side}", 0, 0.9 * lift * (1 - lift) + 0.05)
            rot(f"upperarm01.{side}", 0, 0.3 * lift)
        elif motion == "arms":
            rot(f"upperarm01.{side}", 0, -1.3 * (0.5 - 0.5 * math.cos(phase + (sign > 0) * 0.8)))
            rot(f"upperleg01.{side}", 0, -0.1 * sign)
        else:
            raise ValueError(f"unknown motion {motion!r}; use walk, squat, arms, legs, turn or jump")
    if motion == "squat":
        rot("spine03", 0, -0.35 * 0.5 * (1 - math.cos(phase)))
    return pose


# A jump cycle lasts 2 s: standing, a 0.4 s countermovement, a free fall whose length
# follows from the height (sqrt(8 h / g): 0.40 s for 20 cm), 0.3 s of landing, standing.
_JUMP_CROUCH_S, _JUMP_TAKEOFF_S, _JUMP_LANDING_S, _GRAVITY = 0.6, 1.0, 0.3, 9.81


def _jump_time(phase: float) -> float:
    """Seconds into a jump's 2 s cycle (the phase runs ``2 pi`` a second)."""
    return (phase / (2 * math.pi)) % 2.0


def _flight_s(height_m: float) -> float:
    """How long a free fall that rises ``height_m`` lasts, seconds."""
    return math.sqrt(8.0 * height_m / _GRAVITY)


def _jump_lift(phase: float, height_m: float) -> float:
    """Rise above standing of a jump, metres: a free-fall parabola over the flight."""
    s = (_jump_time(phase) - _JUMP_TAKEOFF_S) / _flight_s(height_m)
    return 4.0 * height_m * s * (1.0 - s) if 0.0 < s < 1.0 else 0.0


def _jump_crouch(phase: float, height_m: float) -> float:
    """Knee bend of a jump in [0, 1]: the countermovement before take-off and the
    landing's absorption after it (straight legs standing and in flight)."""
    t = _jump_time(phase)
    if _JUMP_CROUCH_S < t < _JUMP_TAKEOFF_S:
        return math.sin(math.pi * (t - _JUMP_CROUCH_S) / (_JUMP_TAKEOFF_S - _JUMP_CROUCH_S))
    land = _JUMP_TAKEOFF_S + _flight_s(height_m)
    if land < t < land + _JUMP_LANDING_S:
        return 0.6 * math.sin(math.pi * (t - land) / _JUMP_LANDING_S)
    return 0.0


def _vertex_colours(body: AnnyBody, shirt_rgb: tuple[int, int, int]) -> np.ndarray:
    dominant = body.skin_weights.argmax(1).cpu().numpy()
    names = [body.bone_names[i] for i in dominant]
    colours = np.empty((len(names), 3), np.float32)
    shirt = np.asarray(shirt_rgb, np.float32)
    for i, n in enumerate(names):
        if n.startswith(("spine", "clavicle", "shoulder", "upperarm")):
            colours[i] = shirt
        elif n.startswith(("pelvis", "upperleg", "lowerleg", "root")):
            colours[i] = _REGION_COLOURS["trousers"]
        elif n.startswith(("foot", "toe")):
            colours[i] = _REGION_COLOURS["shoes"]
        else:
            colours[i] = _SKIN
    return colours


def render_clip(path: str | Path, persons: list[PersonSpec], *, fps: float = 25.0, crf: int = 18,
                **kwargs) -> GroundTruth:
    """Renders a synthetic clip to an H.264 MP4 and returns its ground truth.

    Args:
        path: Output ``.mp4`` path.
        persons: Who is in the clip.
        fps: Frame rate, frames/s.
        crf: x264 constant rate factor (lower is better quality).
        **kwargs: Passed to :func:`render_frames`.
    """
    frames, gt = render_frames(persons, fps=fps, **kwargs)
    write_video(path, frames, fps, crf=crf)
    return gt


def write_video(path: str | Path, frames: list[np.ndarray], fps: float, crf: int = 18) -> None:
    """Encodes (H, W, 3) uint8 RGB frames to H.264 at a constant frame rate."""
    height, width = frames[0].shape[:2]
    container = av.open(str(path), mode="w")
    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"crf": str(crf), "preset": "veryfast"}
    try:
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()


def render_frames(
    persons: list[PersonSpec],
    *,
    width: int = 640,
    height: int = 480,
    fov_deg: float = 60.0,
    n_frames: int = 30,
    fps: float = 25.0,
    camera_height_m: float = 1.1,
    background: np.ndarray | None = None,
    body: AnnyBody | None = None,
    zoom: np.ndarray | None = None,
    pitch_deg: float = 0.0,
    pan_deg: np.ndarray | None = None,
    keep_vertices: bool = False,
    room: Room | None = None,
) -> tuple[list[np.ndarray], GroundTruth]:
    """Renders the frames of a synthetic clip and its ground truth.

    The camera looks horizontally; the ground is the plane ``y = camera_height_m``.

    Args:
        persons: Who is in the clip.
        width: Frame width, pixels.
        height: Frame height, pixels.
        fov_deg: Horizontal field of view, degrees.
        n_frames: Number of frames.
        fps: Frame rate, frames/s.
        camera_height_m: Height of the camera above the ground, metres.
        background: (H, W, 3) uint8 RGB background (resized to the frame), or ``None``
            for a grey gradient.
        body: An ``AnnyBody`` to reuse (built if ``None``).
        pitch_deg: Camera tilt, degrees (positive looks down): the scene is built level
            and rotated into the tilted camera.
        zoom: (n_frames,) focal multiplier per frame (a zooming camera; the background
            photo is magnified about the image centre to match). ``fov_deg`` is the
            field of view at zoom 1.
        pan_deg: (n_frames,) the camera's turn about the vertical through its centre,
            degrees (positive turns right, so the scene moves left): a panning camera.
            The background photo is then a scene at infinity, twice the frame's size
            seen from the unturned camera, and each frame sees it through
            ``K R K⁻¹``.
        keep_vertices: Also return every mesh in camera space (``GroundTruth.vertices``).
        room: Ray-cast this room as the background instead of ``background`` (the same
            camera sees the room and the people, who stand on its floor).

    Returns:
        The (H, W, 3) uint8 RGB frames and the ground truth (``focal_px`` is the focal at
        zoom 1; ``focal_per_frame`` has each frame's).
    """
    import cv2

    body = body or AnnyBody()
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    pp = np.array([width / 2.0, height / 2.0])
    # A panning camera sees a background at infinity twice the frame's size (room to turn).
    bg_scale = 1 if pan_deg is None else 2
    if background is None:
        grad = np.linspace(90, 170, bg_scale * height, dtype=np.float32)[:, None, None]
        bg = np.broadcast_to(grad, (bg_scale * height, bg_scale * width, 3)).astype(np.uint8)
    else:
        bg = cv2.resize(background, (bg_scale * width, bg_scale * height), interpolation=cv2.INTER_AREA)
    faces = body.faces
    n_p = len(persons)
    pelvis = np.zeros((n_p, n_frames, 3))
    kp3d = np.zeros((n_p, n_frames, 17, 3))
    kp2d = np.zeros((n_p, n_frames, 17, 2))
    visible = np.zeros((n_p, n_frames), bool)
    boxes = np.full((n_p, n_frames, 4), np.nan)
    visibility = np.zeros((n_p, n_frames))
    vertices = np.zeros((n_p, n_frames, body.num_vertices, 3), np.float32) if keep_vertices else None
    rests = []
    colours = []
    for spec in persons:
        rests.append(body.rest(phenotype_shape(body, spec.shape)))
        vc = _vertex_colours(body, spec.shirt_rgb)
        colours.append(vc[faces].mean(1))
    zoom = np.ones(n_frames) if zoom is None else np.asarray(zoom, np.float64)
    # Level world -> tilted camera: looking down by pitch is a rotation about the x axis.
    pitch = math.radians(pitch_deg)
    tilt = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    pan = np.zeros(n_frames) if pan_deg is None else np.radians(np.asarray(pan_deg, np.float64))
    f0 = f
    frames = []
    for t in range(n_frames):
        f = f0 * zoom[t]
        # Level world -> camera: turned by the pan about the vertical, then tilted.
        cos_p, sin_p = math.cos(pan[t]), math.sin(pan[t])
        world_to_cam = tilt @ np.array([[cos_p, 0, -sin_p], [0, 1, 0], [sin_p, 0, cos_p]])
        all_v, all_f, all_c = [], [], []
        offset = 0
        for p, spec in enumerate(persons):
            phase = 2 * math.pi * 1.0 * t / fps + 2 * math.pi * spec.phase_s
            yaw = math.radians(spec.yaw_deg) + (phase * 0.5 if spec.motion == "turn" else 0.0)
            pose = _bone_pose(body, spec.motion, phase, spec.jump_m)
            for bone, angles in spec.pose_offset.items():
                pose[body.bone_names.index(bone)] += angles
            pose = torch.as_tensor(pose, dtype=body.dtype)[None]
            verts = body.vertices(pose, rests[p])[0].double().numpy()
            kp, _ = body.skeleton(pose, rests[p])
            kp = kp[0].double().numpy()
            rz = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, yaw], dtype=torch.float64)).numpy()
            rot = MODEL_TO_UPRIGHT_FACING_CAMERA @ rz
            vc = verts @ rot.T
            x = spec.start_xz[0] + spec.velocity_xz[0] * t / fps
            z = spec.start_xz[1] + spec.velocity_xz[1] * t / fps
            lift = _jump_lift(phase, spec.jump_m) if spec.motion == "jump" else 0.0
            transl = np.array([x, camera_height_m - vc[:, 1].max() - lift, z])
            vc = (vc + transl) @ world_to_cam.T
            kc = (kp @ rot.T + transl) @ world_to_cam.T
            if vertices is not None:
                vertices[p, t] = vc
            pelvis[p, t] = 0.5 * (kc[LEFT_HIP] + kc[RIGHT_HIP])
            kp3d[p, t] = kc[:17]
            kp2d[p, t] = f * kc[:17, :2] / kc[:17, 2:3] + pp
            uvz = np.concatenate([f * vc[:, :2] / vc[:, 2:3] + pp, vc[:, 2:3]], 1)
            lo, hi = uvz[:, :2].min(0), uvz[:, :2].max(0)
            if hi[0] > 0 and hi[1] > 0 and lo[0] < width and lo[1] < height:
                boxes[p, t] = [max(lo[0], 0), max(lo[1], 0), min(hi[0], width), min(hi[1], height)]
            all_v.append(uvz)
            all_f.append(faces + offset)
            all_c.append(colours[p] * shade_faces(vc, faces)[:, None])
            offset += len(vc)
        if room is not None:
            if t == 0 or pan_deg is not None or zoom[t] != zoom[t - 1]:
                room_bg = room_image(room, f, pp, width, height, world_to_cam, camera_height_m, room.supersample)
            frame = room_bg.copy()
        elif pan_deg is not None:
            # Background pixel -> ray of the unturned camera -> this frame's pixel.
            k_bg = np.array([[f0, 0, width], [0, f0, height], [0, 0, 1.0]])
            k = np.array([[f, 0, pp[0]], [0, f, pp[1]], [0, 0, 1.0]])
            frame = cv2.warpPerspective(bg, k @ world_to_cam @ tilt.T @ np.linalg.inv(k_bg), (width, height),
                                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        elif zoom[t] != 1.0:
            frame = cv2.warpAffine(bg, np.array([[zoom[t], 0, (1 - zoom[t]) * pp[0]], [0, zoom[t], (1 - zoom[t]) * pp[1]]]),
                                   (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        else:
            frame = bg.copy()
        if persons:
            raster = rasterize(np.concatenate(all_v), np.concatenate(all_f), height, width, cull_back_faces=True)
            m = raster.mask
            frame[m] = np.clip(np.concatenate(all_c)[raster.face[m]], 0, 255).astype(np.uint8)
            owner = raster.face[m] // len(faces)
            for p in range(n_p):
                shown = int((owner == p).sum())
                visible[p, t] = shown > 0
                if shown:
                    alone = _silhouette_area(all_v[p], faces, width, height)
                    visibility[p, t] = min(shown / max(alone, 1), 1.0)
        frames.append(frame)
    gt = GroundTruth(
        focal_px=f0, principal_point=pp, width=width, height=height, fps=fps,
        pelvis=pelvis, keypoints3d=kp3d, keypoints2d=kp2d, visible=visible, boxes=boxes, visibility=visibility,
        focal_per_frame=f0 * zoom, vertices=vertices, faces=faces if keep_vertices else None,
    )
    return frames, gt


def _silhouette_area(uvz: np.ndarray, faces: np.ndarray, width: int, height: int) -> int:
    """Pixels a body would cover with nothing in front and no frame edge: rendered in a
    frame enlarged to hold the whole projection, up to four frames on each side (a hand
    a few centimetres from the lens projects arbitrarily far)."""
    reach = 4 * np.array([width, height])
    lo = np.floor(np.clip(uvz[:, :2].min(0), -reach, 0)).astype(int)
    hi = np.ceil(np.clip(uvz[:, :2].max(0), [width, height], reach + [width, height])).astype(int)
    shifted = uvz.copy()
    shifted[:, :2] -= lo
    size = hi - lo
    return int(rasterize(shifted, faces, int(size[1]) + 1, int(size[0]) + 1, cull_back_faces=True).mask.sum())


def phenotype_shape(body: AnnyBody, overrides: dict[str, float]) -> torch.Tensor:
    """(1, S) Anny phenotype values: the average body with ``overrides`` (e.g.
    ``{"age": 0.2}``), as :class:`PersonSpec` ``shape`` gives them."""
    shape = body.default_shape(1)
    for name, value in overrides.items():
        shape[0, body.shape_names.index(name)] = value
    return shape
