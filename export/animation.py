"""A track as a skeletal animation: rest skeleton, per-frame joint rotations, root motion.

Frame of all exported files (glTF's): metres, **Y up**, the rest skeleton standing and
facing +Z. The world is levelled from the video itself (:func:`level_frame`): Y is the
mean up-direction of all fitted bodies, the floor (y = 0) is under the lowest foot
joints, and the camera looks along -Z (so a person walking away moves along -Z). For a
level camera this is the OpenCV camera frame with y and z flipped. A camera that pans
or tilts is undone first (:func:`camera_to_world`): bodies are placed in each shot's
world axes, the camera's axes at the shot's first frame, so the camera's turn does not
move them.

Joint rotations are *deltas from the rest pose* (the rest skeleton has identity joint
orientations), the convention of BVH and of glTF skins with translation-only bind
poses: the posed head of joint j is ``head[parent] + G[parent] @ offset[j]``, where
``G`` are the global rotations, which reproduces the body model's skinning exactly (Anny's, or SMPL-X's without its
pose correctives).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import roma
import torch

from meshstream.models.body import AnnyBody, BodyModel

from .timeline import MAX_GAP_S, regular_clock

# OpenCV camera axes (y down, z forward) -> export axes seen from the camera (Y up).
CAMERA_TO_EXPORT = np.diag([1.0, -1.0, -1.0])


@dataclass
class SkeletonAnimation:
    """One track as an animation.

    Attributes:
        name: Track name (``track_<id>``).
        joint_names: (J,) joint names (Anny bones).
        parents: (J,) parent index, -1 for the root.
        offsets: (J, 3) rest head of each joint relative to its parent's, metres.
        times: (N,) seconds from the clip start.
        rotations: (N, J, 3, 3) local rotation of each joint (delta from rest, relative
            to the parent).
        root_translation: (N, 3) root position, metres (its offset included).
        rest_vertices: (V, 3) rest mesh in the export frame, metres (root at origin).
        faces: (F, 3) triangles.
        skin_joints: (V, 8) joint indices of each vertex's strongest influences.
        skin_weights: (V, 8) their weights (sum 1).
        fps: Nominal frame rate of the clip (of the regular clock after :meth:`on_clock`).
        filled: (N,) uint8 after :meth:`on_clock`: how each frame was obtained
            (``export.timeline``: 0 seen, 1 interpolated over a short gap, 2 held over a
            long one); ``None`` while every frame is a sample of the track.
    """

    name: str
    joint_names: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    times: np.ndarray
    rotations: np.ndarray
    root_translation: np.ndarray
    rest_vertices: np.ndarray
    faces: np.ndarray
    skin_joints: np.ndarray
    skin_weights: np.ndarray
    fps: float
    filled: np.ndarray | None = None

    def on_clock(self, period: float, max_gap_s: float = MAX_GAP_S) -> SkeletonAnimation:
        """The animation on a regular clock of ``period`` seconds from its first sample to
        its last, for fixed-rate files (BVH, SMPL-X npz, .smpl): gaps where the track was
        not seen are filled (:func:`~meshstream.export.timeline.regular_clock`), so the
        file plays as long as the video."""
        r = regular_clock(self.times, period, max_gap_s)
        return dataclasses.replace(self, times=r.times, rotations=r.rotations(self.rotations),
                                   root_translation=r.vectors(self.root_translation), fps=1.0 / period,
                                   filled=r.filled)

    def global_rotations(self) -> np.ndarray:
        """(N, J, 3, 3) rotation of each joint from its rest orientation, in the export frame."""
        glob = np.zeros_like(self.rotations)
        for k, p in enumerate(self.parents):  # parents come before children
            glob[:, k] = self.rotations[:, k] if p < 0 else glob[:, p] @ self.rotations[:, k]
        return glob

    def rest_heads(self) -> np.ndarray:
        """(J, 3) joint heads of the rest skeleton, metres."""
        heads = np.zeros((len(self.parents), 3))
        for k, p in enumerate(self.parents):
            heads[k] = self.offsets[k] + (heads[p] if p >= 0 else 0.0)
        return heads

    def joint_positions(self) -> np.ndarray:
        """(N, J, 3) posed joint heads by forward kinematics of the animation, metres."""
        glob = self.global_rotations()
        pos = np.zeros(glob.shape[:3])
        for k, p in enumerate(self.parents):
            pos[:, k] = self.root_translation if p < 0 else pos[:, p] + glob[:, p] @ self.offsets[k]
        return pos


@dataclass
class CameraAnimation:
    """The video's camera in the export frame, for matching the animation to the footage.

    Attributes:
        times: (T,) seconds from the clip start, one per stored frame with a focal.
        position: (3,) the camera's centre, metres (it turns about it; a cut starts a new
            shot, whose world has its own axes).
        rotations: (T, 3, 3) glTF camera axes (looking along -Z, +Y up) -> export axes.
        yfov: (T,) vertical field of view, radians (changes where the camera zooms).
        aspect: Frame width over height.
    """

    times: np.ndarray
    position: np.ndarray
    rotations: np.ndarray
    yfov: np.ndarray
    aspect: float


def camera_animation(store, frame: tuple[np.ndarray, np.ndarray] | None = None) -> CameraAnimation | None:
    """The store's camera in the export world (:func:`level_frame`, computed if not
    given); ``None`` when no frame has a focal."""
    to_world, offset = frame if frame is not None else level_frame(store)
    focal = np.asarray(store["camera/focal_px"][:], np.float64)
    rows = np.nonzero(np.isfinite(focal))[0]
    if len(rows) == 0:
        return None
    pts = store["frames/pts_seconds"][:]
    height = float(store.attrs["height"])
    rotations = to_world @ camera_to_world(store, rows) @ np.diag([1.0, -1.0, -1.0])  # glTF camera -> OpenCV's
    return CameraAnimation(times=pts[rows] - pts[0], position=np.asarray(offset, np.float64).copy(),
                           rotations=rotations, yfov=2.0 * np.arctan(0.5 * height / focal[rows]),
                           aspect=float(store.attrs["width"]) / height)


def camera_to_world(store, rows: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations from the camera's axes at store rows ``rows`` to their shot's
    world axes (``camera/rotation``); identity where not known (a store from before it
    was kept, zoom tracking off)."""
    rows = np.asarray(rows, np.int64)
    if "camera/rotation" not in store:
        return np.broadcast_to(np.eye(3), (len(rows), 3, 3)).copy()
    turns = np.asarray(store["camera/rotation"].oindex[rows], np.float64)  # only those rows' chunks
    turns[~np.isfinite(turns).all(axis=(1, 2))] = np.eye(3)
    return turns


def foot_joints(store) -> dict[str, list[int]]:
    """Indices into ``joints3d`` of the store's foot joints (``foot_joint_names``; Anny's
    ``foot.*`` and ``toe*`` bones in stores without it), by side: ``left``, ``right`` and
    ``other`` (Anny ``foot.L``/``.R``, SMPL-X ``left_``/``right_``)."""
    names = list(store.attrs["joint_names"])
    foot_names = tuple(store.attrs.get("foot_joint_names", ()))
    out: dict[str, list[int]] = {"left": [], "right": [], "other": []}
    for i, name in enumerate(names):
        if name in foot_names or name.startswith(("foot.", "toe")):
            n = name.lower()
            side = ("left" if n.endswith(".l") or n.startswith("left") else
                    "right" if n.endswith(".r") or n.startswith("right") else "other")
            out[side].append(i)
    return out


def level_frame(store, track_ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The export world of a store: a rotation from the shots' world axes (the camera's
    at each shot's first frame, :func:`camera_to_world`) and a translation.

    Up is the normal of the floor plane fitted (least squares) through the lowest foot
    joint of every fitted person-frame, when those contacts spread (standard deviation)
    over 0.25 m in two directions (people walking about, or several people); otherwise the
    mean of the bodies' up axes, which detectors bias towards the image vertical, made
    perpendicular to the contacts' line where they spread along one within 15 degrees of
    level (a walker crossing the view fixes the floor's slope along their path). -Z
    is the camera's view direction made horizontal; the floor is 3 cm under the lowest
    foot joints.

    Args:
        store: Open Zarr group.
        track_ids: Level from these tracks only (e.g. one shot's); default all.

    Returns:
        rotation: (3, 3) shot world axes -> export axes (rows: X, Y, Z of the world).
        translation: (3,) added after rotating, metres (puts the floor at y = 0).
    """
    ups, feet, lows = [], [], []
    model_up = np.asarray(store.attrs.get("model_up_axis", AnnyBody.up_axis), dtype=np.float64)
    sides = foot_joints(store)
    feet_index = sorted(sides["left"] + sides["right"] + sides["other"])
    tracks = list(store["tracks"].group_keys()) if "tracks" in store else []
    for tid in (tracks if track_ids is None else [str(t) for t in track_ids]):
        g = store[f"tracks/{tid}"]
        ok = g["fit_ok"][:]
        if not ok.any():
            continue
        turn = camera_to_world(store, g["frame_index"][:][ok])
        rot = turn @ roma.rotvec_to_rotmat(torch.as_tensor(g["global_orient"][:][ok].astype(np.float64))).numpy()
        ups.append(rot @ model_up)
        joints = g["joints3d"][:][ok][:, feet_index] @ np.swapaxes(turn, 1, 2)  # (n, F, 3)
        lows.append(joints)
        feet.append(joints.reshape(-1, 3))
    if not ups:
        return CAMERA_TO_EXPORT.copy(), np.zeros(3)
    up = np.concatenate(ups).mean(0)
    up /= np.linalg.norm(up)
    # The lowest foot joint of each person-frame touches the floor.
    contacts = np.concatenate([f[np.arange(len(f)), np.argmin(f @ up, axis=1)] for f in lows])
    if len(contacts) >= 10:
        centred = contacts - contacts.mean(0)
        _, sv, vt = np.linalg.svd(centred, full_matrices=False)
        spread = sv / np.sqrt(len(contacts))
        if spread[1] > 0.25:  # spread (std) over 0.25 m in two directions
            normal = vt[2] * np.sign(vt[2] @ up)
            up = normal / np.linalg.norm(normal)
        elif spread[0] > 0.25 and abs(vt[0] @ up) < 0.26:
            # Along a line within 15 degrees of level (one walker): the floor is level
            # along it. A steeper line is depth noise along a downward view ray.
            up = up - (up @ vt[0]) * vt[0]
            up /= np.linalg.norm(up)
    view = np.array([0.0, 0.0, 1.0]) - up * up[2]  # camera forward, made horizontal
    back = -view / np.linalg.norm(view)
    x = np.cross(up, back)
    rotation = np.stack([x, up, back])
    floor = float(np.percentile(np.concatenate(feet) @ up, 1)) - 0.03
    return rotation, np.array([0.0, -floor, 0.0])


def track_animation(store, track_id: int, body: BodyModel, frame: tuple[np.ndarray, np.ndarray] | None = None) -> SkeletonAnimation:
    """Builds the animation of one track of a meshstream Zarr store.

    Args:
        store: Open Zarr group (see ``export.zarr_store``).
        track_id: The track.
        body: The body model the store was made with (its rest skeleton and mesh are
            re-computed for the track's shape).
        frame: The export world (:func:`level_frame`), computed if not given.
    """
    to_world, offset = frame if frame is not None else level_frame(store)
    g = store[f"tracks/{track_id}"]
    dt = body.dtype
    pose = torch.as_tensor(g["body_pose"][:], dtype=dt)
    orient = g["global_orient"][:].astype(np.float64)
    rows = g["frame_index"][:]
    turn = camera_to_world(store, rows)  # the camera turns about its centre, the world's origin
    transl = np.einsum("nij,nj->ni", turn, g["transl"][:].astype(np.float64))
    times = store["frames/pts_seconds"][:][rows]
    shape = torch.as_tensor(g["shape"][:][None], dtype=dt)
    rest = body.rest(shape)
    with torch.no_grad():
        transforms, _ = body.bone_transforms(pose, rest)
        rest_verts = body.vertices(torch.zeros(1, body.num_bones, 3, dtype=dt), rest)[0].double().numpy()
    g_model = transforms[..., :3, :3].double().numpy()  # (N, J, 3, 3) global deltas, model frame
    r_global = turn @ roma.rotvec_to_rotmat(torch.as_tensor(orient)).numpy()  # model -> camera -> shot world
    # Global rotation in export axes: rest (export) -> model -> posed model -> camera -> export.
    world = to_world @ r_global  # (N, 3, 3)
    to_export = body.model_to_export
    glob = world[:, None] @ g_model @ to_export.T
    parents = body.bone_parents
    local = glob.copy()
    for k in range(len(parents)):
        if parents[k] >= 0:
            local[:, k] = np.swapaxes(glob[:, parents[k]], -1, -2) @ glob[:, k]
    rest_heads_model = rest.rest_bone_poses[0, :, :3, 3].double().numpy()
    heads = rest_heads_model @ to_export.T
    offsets = heads - np.where(parents[:, None] >= 0, heads[np.maximum(parents, 0)], 0.0)
    weights = body.skin_weights.double().numpy()
    top = np.argsort(-weights, axis=1)[:, :8]
    w = np.take_along_axis(weights, top, axis=1)
    w /= w.sum(1, keepdims=True)
    top[w == 0] = 0  # glTF: unused influences point at joint 0
    return SkeletonAnimation(
        name=f"track_{track_id}",
        joint_names=list(store.attrs["joint_names"]),
        parents=parents.copy(),
        offsets=offsets,
        times=times - store["frames/pts_seconds"][0],
        rotations=local,
        # The models pose the root at the model origin, so the posed root is the
        # translation itself (camera space, turned into the shot's world).
        root_translation=transl @ to_world.T + offset,
        rest_vertices=rest_verts @ to_export.T,
        faces=body.faces.copy(),
        skin_joints=top.astype(np.uint16),
        skin_weights=w.astype(np.float32),
        fps=float(store.attrs["fps"]),
    )
