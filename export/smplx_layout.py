"""SMPL-X animation sequences and the AMASS-style npz and Meshcapade ``.smpl`` files.

A store made with the SMPL-X body model gives its parameters straight
(:func:`smplx_sequence`); a store made with Anny is retargeted to the SMPL-X joint
layout (:func:`retarget_to_smplx`).

SMPL-X rests in a T-pose, Anny in an A-pose, and their skeletons differ. Each SMPL-X
joint takes the *global* rotation of the Anny bone that plays its part, times a fixed
rest correction: the rotation taking the SMPL-X T-pose direction of that bone (towards
its child) onto Anny's rest direction. Anny's unfitted in-between bones (twist, neck and
spine links) still turn a little with their parents, so a last per-frame swing takes the
bone onto the actual posed direction from joint to child. So every retargeted bone
points where Anny's points, with the mapped bone's twist. Local rotations are then
``parent^T @ child``. Joints with no Anny counterpart (the jaw) stay at rest relative
to their parent.

Frame: SMPL-X's own axes (Y up, the body facing +Z, its left on +X), which are the
export frame of ``export.animation`` (the levelled world seen from the camera, Y up,
floor at y = 0). For a retargeted Anny track the body shape is not transferred
(``betas`` are zeros) and ``trans`` is the pelvis position; for a SMPL-X track ``betas``
are the fitted ones and ``trans`` follows AMASS exactly (``trans = pelvis - J0(betas)``,
so ``smplx.SMPLX(..., transl=trans)`` puts the body where it was seen).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import roma
import torch

from .animation import SkeletonAnimation, camera_to_world, level_frame
from .timeline import MAX_GAP_S, regular_clock

from meshstream.models.smplx_body import SMPLX_JOINT_NAMES, SMPLX_PARENTS

_FINGER = {"thumb": 1, "index": 2, "middle": 3, "ring": 4, "pinky": 5}


def _anny_bone(name: str) -> str | None:
    side = "L" if name.startswith("left") else "R"
    table = {
        "pelvis": "root", "spine1": "spine05", "spine2": "spine03", "spine3": "spine01", "neck": "neck01",
        "head": "head", "jaw": None,
    }
    if name in table:
        return table[name]
    part = name.split("_", 1)[1] if "_" in name else name
    limbs = {"hip": "upperleg01", "knee": "lowerleg01", "ankle": "foot", "foot": "toe3-1", "collar": "clavicle",
             "shoulder": "upperarm01", "elbow": "lowerarm01", "wrist": "wrist", "eye_smplhf": "eye"}
    if part in limbs:
        return f"{limbs[part]}.{side}"
    finger, index = part[:-1], int(part[-1])
    return f"finger{_FINGER[finger]}-{index}.{side}"


# T-pose direction (SMPL-X axes) of each joint towards the child named beside it.
def _tpose_directions() -> dict[str, tuple[str, np.ndarray]]:
    dirs: dict[str, tuple[str, np.ndarray]] = {}
    up, down, fwd = np.array([0.0, 1, 0]), np.array([0.0, -1, 0]), np.array([0.0, 0, 1])
    dirs["spine1"], dirs["spine2"] = ("spine2", up), ("spine3", up)
    dirs["spine3"], dirs["neck"] = ("neck", up), ("head", up)
    for side, sx in (("left", 1.0), ("right", -1.0)):
        lateral = np.array([sx, 0.0, 0.0])
        dirs[f"{side}_hip"] = (f"{side}_knee", down)
        dirs[f"{side}_knee"] = (f"{side}_ankle", down)
        dirs[f"{side}_ankle"] = (f"{side}_foot", np.array([0.0, -0.45, 0.9]) / np.hypot(0.45, 0.9))
        dirs[f"{side}_collar"] = (f"{side}_shoulder", lateral)
        dirs[f"{side}_shoulder"] = (f"{side}_elbow", lateral)
        dirs[f"{side}_elbow"] = (f"{side}_wrist", lateral)
        dirs[f"{side}_wrist"] = (f"{side}_middle1", lateral)
        for finger in ("index", "middle", "pinky", "ring", "thumb"):
            d = np.array([sx * 0.6, 0.0, 0.8]) if finger == "thumb" else lateral
            dirs[f"{side}_{finger}1"] = (f"{side}_{finger}2", d)
            dirs[f"{side}_{finger}2"] = (f"{side}_{finger}3", d)
    del fwd
    return dirs


TPOSE_DIRECTIONS = _tpose_directions()


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector ``a`` onto unit vector ``b``."""
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-9:
        return np.eye(3) if c > 0 else roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, np.pi], dtype=torch.float64)).numpy()
    rv = axis / s * np.arctan2(s, c)
    return roma.rotvec_to_rotmat(torch.as_tensor(rv)).numpy()


def _swings(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 3, 3) smallest rotations taking directions ``a`` (N, 3) onto ``b`` (N, 3)."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=1, keepdims=True)
    angle = np.arctan2(s, (a * b).sum(1, keepdims=True))
    rotvec = np.where(s > 1e-12, axis / np.maximum(s, 1e-12) * angle, 0.0)
    return roma.rotvec_to_rotmat(torch.as_tensor(rotvec)).numpy()


def rest_corrections(anim: SkeletonAnimation) -> np.ndarray:
    """(55, 3, 3) per SMPL-X joint: T-pose bone direction -> Anny rest direction."""
    heads = anim.rest_heads()
    index = {n: i for i, n in enumerate(anim.joint_names)}
    out = np.tile(np.eye(3), (len(SMPLX_JOINT_NAMES), 1, 1))
    for s, name in enumerate(SMPLX_JOINT_NAMES):
        if name in TPOSE_DIRECTIONS:
            child, d_smplx = TPOSE_DIRECTIONS[name]
            d_anny = heads[index[_anny_bone(child)]] - heads[index[_anny_bone(name)]]
            out[s] = _rotation_between(d_smplx / np.linalg.norm(d_smplx), d_anny / np.linalg.norm(d_anny))
        elif SMPLX_PARENTS[s] >= 0 and name not in ("jaw", "head") and "eye" not in name:
            out[s] = out[SMPLX_PARENTS[s]]  # tips (last finger bone, foot) follow their parent
    return out


def retarget_to_smplx(anim: SkeletonAnimation) -> tuple[np.ndarray, np.ndarray]:
    """SMPL-X pose parameters of an Anny animation.

    Returns:
        poses: (N, 165) axis-angle, SMPL-X joint order (pelvis, 21 body joints, jaw,
            left eye, right eye, 15 left-hand, 15 right-hand), radians.
        trans: (N, 3) pelvis position, metres.
    """
    glob_anny = anim.global_rotations()
    heads = anim.joint_positions()
    index = {n: i for i, n in enumerate(anim.joint_names)}
    corr = rest_corrections(anim)
    n = glob_anny.shape[0]
    glob = np.zeros((n, len(SMPLX_JOINT_NAMES), 3, 3))
    for s, name in enumerate(SMPLX_JOINT_NAMES):
        bone = _anny_bone(name)
        glob[:, s] = (glob_anny[:, index[bone]] if bone else glob[:, SMPLX_PARENTS[s]]) @ corr[s]
        if name in TPOSE_DIRECTIONS:
            child, d = TPOSE_DIRECTIONS[name]
            now = glob[:, s] @ (d / np.linalg.norm(d))
            target = heads[:, index[_anny_bone(child)]] - heads[:, index[bone]]
            glob[:, s] = _swings(now, target) @ glob[:, s]
    local = glob.copy()
    for s, p in enumerate(SMPLX_PARENTS):
        if p >= 0:
            local[:, s] = np.swapaxes(glob[:, p], -1, -2) @ glob[:, s]
    poses = roma.rotmat_to_rotvec(torch.as_tensor(local)).numpy().reshape(n, -1)
    return poses.astype(np.float32), anim.root_translation.astype(np.float32)


@dataclass
class SmplxSequence:
    """One track as SMPL-X parameters in the export frame.

    Attributes:
        poses: (N, 165) axis-angle, SMPL-X joint order (root orientation first), radians.
        trans: (N, 3) ``smplx`` ``transl`` of each frame, metres.
        betas: (B,) shape coefficients.
        fps: Nominal frame rate.
        duration_s: Length of the sequence, seconds.
        gender: ``neutral``, ``male`` or ``female``.
        trans_convention: What ``trans`` is (stored in the npz).
        source: Where the parameters come from (stored in the npz).
        times: (N,) seconds from the clip's start of each frame.
        filled: (N,) uint8 after :meth:`on_clock` (0 seen, 1 interpolated, 2 held;
            ``export.timeline``), else ``None``.
    """

    poses: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    fps: float
    duration_s: float
    gender: str
    trans_convention: str
    source: str
    times: np.ndarray
    filled: np.ndarray | None = None

    def on_clock(self, period: float, max_gap_s: float = MAX_GAP_S) -> SmplxSequence:
        """The sequence on a regular clock of ``period`` seconds, gaps filled
        (:func:`~meshstream.export.timeline.regular_clock`): a fixed-rate file then
        plays as long as the video."""
        r = regular_clock(self.times, period, max_gap_s)
        poses = r.rotvecs(self.poses.reshape(len(self.poses), -1, 3)).reshape(len(r.times), -1)
        return dataclasses.replace(self, poses=poses.astype(np.float32), trans=r.vectors(self.trans).astype(np.float32),
                                   fps=1.0 / period, duration_s=len(r.times) * period, times=r.times, filled=r.filled)


def _duration(times: np.ndarray, fps: float) -> float:
    return float(times[-1] - times[0]) + 1.0 / fps if len(times) else 0.0


def retargeted_sequence(anim: SkeletonAnimation) -> SmplxSequence:
    """The SMPL-X-layout sequence of an Anny animation (betas zero, trans = pelvis)."""
    poses, trans = retarget_to_smplx(anim)
    return SmplxSequence(poses, trans, np.zeros(10, np.float32), anim.fps, _duration(anim.times, anim.fps),
                         "neutral", "pelvis position; AMASS subtracts the model's rest pelvis J0(betas)",
                         "anny, retargeted by meshstream", times=anim.times, filled=anim.filled)


def smplx_sequence(store, track_id: int, body, frame: tuple[np.ndarray, np.ndarray] | None = None) -> SmplxSequence:
    """The fitted SMPL-X parameters of one track of a SMPL-X store, in the export frame.

    Args:
        store: Open Zarr group written with ``body_model = "smplx"``.
        track_id: The track.
        body: The ``SmplxBody`` the store was made with (for ``J0(betas)``).
        frame: The export world (``animation.level_frame``), computed if not given.
    """
    to_world, offset = frame if frame is not None else level_frame(store)
    g = store[f"tracks/{track_id}"]
    pose = g["body_pose"][:].astype(np.float64)  # (N, 55, 3), joint 0 at identity
    turn = camera_to_world(store, g["frame_index"][:])  # camera -> the shot's world axes
    r_cam = turn @ roma.rotvec_to_rotmat(torch.as_tensor(g["global_orient"][:].astype(np.float64))).numpy()
    root = roma.rotmat_to_rotvec(torch.as_tensor(to_world @ r_cam @ body.model_to_export.T)).numpy()
    pose[:, 0] = root
    betas = g["shape"][:].astype(np.float32)
    j0 = body.rest_pelvis(torch.as_tensor(betas[None], dtype=body.dtype))[0].double().numpy()
    trans = np.einsum("nij,nj->ni", turn, g["transl"][:].astype(np.float64)) @ to_world.T + offset - j0
    pts = store["frames/pts_seconds"][:]
    times = pts[g["frame_index"][:]] - pts[0]
    fps = float(store.attrs["fps"])
    return SmplxSequence(pose.reshape(len(pose), -1).astype(np.float32), trans.astype(np.float32), betas, fps,
                         _duration(times, fps), str(store.attrs.get("gender") or "neutral"),
                         "AMASS: trans = pelvis - J0(betas); smplx.SMPLX(transl=trans) reproduces the fit",
                         f"smplx fit by meshstream ({Path(str(store.attrs.get('model_path') or 'SMPL-X')).name})",
                         times=times)


def write_smplx_npz(path: str | Path, seq: SmplxSequence) -> Path:
    """AMASS / SMPL-X Blender add-on style ``.npz`` of a sequence."""
    path = Path(path)
    poses = seq.poses
    np.savez(
        path,
        poses=poses, trans=seq.trans, betas=seq.betas, gender=np.array(seq.gender),
        surface_model_type=np.array("smplx"), mocap_frame_rate=np.array(seq.fps), mocap_framerate=np.array(seq.fps),
        mocap_time_length=np.array(seq.duration_s), root_orient=poses[:, :3], pose_body=poses[:, 3:66],
        pose_jaw=poses[:, 66:69], pose_eye=poses[:, 69:75], pose_hand=poses[:, 75:165],
        coordinate_frame=np.array("y_up_camera_view: Y up, floor at y=0, the first frame's camera looking along -Z, metres"),
        trans_convention=np.array(seq.trans_convention), source_skeleton=np.array(seq.source),
        start_time_s=np.array(seq.times[0] if len(seq.times) else 0.0),
        frame_filled=seq.filled if seq.filled is not None else np.zeros(len(poses), np.uint8),
        frame_filled_legend=np.array(f"0 seen, 1 interpolated over a gap <= {MAX_GAP_S:g} s, 2 held over a longer gap"),
    )
    return path


def write_smpl(path: str | Path, seq: SmplxSequence) -> Path:
    """Meshcapade ``.smpl`` (via ``smplcodec``) of a sequence."""
    from smplcodec import SMPLCodec, SMPLGender, SMPLVersion

    n = len(seq.poses)
    p = seq.poses.reshape(n, 55, 3)
    codec = SMPLCodec(
        smpl_version=SMPLVersion.SMPLX, gender=SMPLGender[seq.gender.upper()],
        shape_parameters=seq.betas.astype(np.float32), frame_count=n, frame_rate=float(seq.fps),
        body_translation=seq.trans, body_pose=p[:, :22], head_pose=p[:, 22:25], left_hand_pose=p[:, 25:40],
        right_hand_pose=p[:, 40:55],
    )
    codec.write(str(path))
    return Path(path)
