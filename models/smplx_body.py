"""SMPL-X from the user's own model files, through the ``smplx`` package.

The SMPL-X files are licensed (https://smpl-x.is.tue.mpg.de) and never shipped: the
user names a folder holding ``SMPLX_NEUTRAL.npz`` (or ``.pkl``, ``MALE``/``FEMALE``) or
the file itself. Loading goes through ``smplx.create``; the layer below then exposes
the model with the :class:`~meshstream.models.body.BodyModel` interface the estimator,
overlay and exports use.

Conventions:
    * Model frame: SMPL-X's own axes (metres, Y up, the body facing +Z, its left on
      +X), shifted so that the rest pelvis joint ``J0(betas)`` is the origin. A fit's
      ``transl`` is therefore the pelvis joint in camera space, and the ``trans`` of
      ``smplx.SMPLX(global_orient=R, transl=trans)`` reproducing it is
      ``transl - J0(betas)`` (AMASS's convention).
    * Pose: (55, 3) axis-angle per joint, SMPL-X joint order (pelvis, 21 body joints,
      jaw, left eye, right eye, 15 left-hand, 15 right-hand joints), relative to the
      parent; joint 0 stays at identity (the global orientation is applied outside).
      Hands are flat at zero (``flat_hand_mean=True``), as in AMASS.
    * Shape: 10 betas; expression coefficients stay at zero.
    * Fitting skips the pose-corrective blend shapes (keypoints are then exactly linear
      in the bone transforms); :meth:`SmplxBody.vertices` runs the full ``smplx`` model.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from meshstream.stream.errors import MissingExtraError, ModelFileError

from .body import BodyModel, BodyRest
from .keypoints import COCO17_NAMES, COCO23_NAMES

_HAND = ("index1", "index2", "index3", "middle1", "middle2", "middle3", "pinky1", "pinky2", "pinky3",
         "ring1", "ring2", "ring3", "thumb1", "thumb2", "thumb3")
SMPLX_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
    "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "jaw", "left_eye_smplhf",
    "right_eye_smplhf",
) + tuple(f"left_{n}" for n in _HAND) + tuple(f"right_{n}" for n in _HAND)
SMPLX_PARENTS = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15]
    + [20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38]
    + [21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53]
)

#: Bones the fitter moves: spine, neck, head, arms, legs.
SMPLX_FIT_BONES: tuple[str, ...] = (
    "spine1", "spine2", "spine3", "neck", "head",
    "left_collar", "left_shoulder", "left_elbow", "left_wrist",
    "right_collar", "right_shoulder", "right_elbow", "right_wrist",
    "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle",
)

# COCO-23 keypoints that are SMPL-X joints; the others are vertices (smplx.vertex_ids).
_KEYPOINT_JOINTS = {name: name for name in COCO17_NAMES[5:]}
_KEYPOINT_VERTICES = {
    "nose": "nose", "left_eye": "leye", "right_eye": "reye", "left_ear": "lear", "right_ear": "rear",
    "left_big_toe": "LBigToe", "right_big_toe": "RBigToe", "left_small_toe": "LSmallToe",
    "right_small_toe": "RSmallToe", "left_heel": "LHeel", "right_heel": "RHeel",
}

GENDERS = ("neutral", "male", "female")
_WHERE = "get them (free registration, licence) from https://smpl-x.is.tue.mpg.de"


def find_model_file(model_path: str | Path, gender: str = "neutral") -> Path:
    """The SMPL-X file to load: ``model_path`` itself, or ``SMPLX_<GENDER>.npz|pkl`` in it.

    Raises:
        ModelFileError: Nothing suitable there, with the names expected.
    """
    if gender not in GENDERS:
        raise ModelFileError(f"unknown SMPL-X gender {gender!r}; choose one of {', '.join(GENDERS)}")
    path = Path(model_path).expanduser()
    expected = f"SMPLX_{gender.upper()}.npz or SMPLX_{gender.upper()}.pkl"
    if path.is_file():
        if path.suffix not in (".npz", ".pkl"):
            raise ModelFileError(f"{path}: a SMPL-X model is an .npz or .pkl file ({expected}); {_WHERE}")
        return path
    if path.is_dir():
        for folder in (path, path / "smplx"):
            for ext in ("npz", "pkl"):
                candidate = folder / f"SMPLX_{gender.upper()}.{ext}"
                if candidate.is_file():
                    return candidate
        raise ModelFileError(f"no {expected} in {path} (nor in {path / 'smplx'}); {_WHERE}")
    raise ModelFileError(f"SMPL-X model path {path} does not exist; give the folder holding {expected} ({_WHERE})")


class SmplxBody(BodyModel):
    """SMPL-X (user-supplied files, loaded by ``smplx``) as a batched layer.

    Args:
        model_path: Folder with ``SMPLX_<GENDER>.npz|pkl`` (or ``<folder>/smplx/``), or
            the file itself.
        gender: ``neutral``, ``male`` or ``female`` (picks the file in a folder).
        num_betas: Shape coefficients used.
        dtype: Torch dtype of all outputs.
        device: Torch device.

    Raises:
        ModelFileError: Missing, unreadable or incomplete model file (one line naming
            the expected files and where to get them).
        MissingExtraError: ``smplx`` not importable.
    """

    name = "smplx"
    up_axis = np.array([0.0, 1.0, 0.0])
    model_to_export = np.eye(3)
    upright_facing_camera = np.diag([1.0, -1.0, -1.0])
    shape_bounds = (-3.0, 3.0)
    shape_scale = 6.0
    foot_joint_names = ("left_ankle", "right_ankle", "left_foot", "right_foot")

    def __init__(self, model_path: str | Path, gender: str = "neutral", num_betas: int = 10,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> None:
        try:
            import smplx
            from smplx.vertex_ids import vertex_ids
        except ImportError as exc:  # pragma: no cover - smplx is a core dependency
            raise MissingExtraError(f"the smplx package is not importable ({exc}); run: pip install smplx==0.1.28") from exc
        path = find_model_file(model_path, gender)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # smplx prints warnings about short shape spaces
                layer = smplx.create(str(path), model_type="smplx", gender=gender, ext=path.suffix[1:], use_pca=False,
                                     flat_hand_mean=True, num_betas=num_betas, num_expression_coeffs=10,
                                     dtype=dtype)
        except AttributeError as exc:  # smplx's Struct: a key the file lacks
            missing = str(exc).rsplit("attribute", 1)[-1].strip(" '")
            raise ModelFileError(f"{path}: not a SMPL-X model file (no '{missing}' array); {_WHERE}") from exc
        except (OSError, ValueError, KeyError, IndexError, RuntimeError, EOFError, pickle.UnpicklingError,
                zipfile.BadZipFile) as exc:
            raise ModelFileError(f"{path}: unreadable SMPL-X model file ({type(exc).__name__}: {exc}); {_WHERE}") from exc
        if layer.J_regressor.shape[0] != len(SMPLX_JOINT_NAMES) or layer.num_betas < 1:
            raise ModelFileError(f"{path}: expected a SMPL-X model with {len(SMPLX_JOINT_NAMES)} joints, got "
                                 f"{layer.J_regressor.shape[0]}; {_WHERE}")
        self.path = path
        self.gender = gender
        self._layer = layer.to(device=device).requires_grad_(False)
        self.dtype = dtype
        self.device = torch.device(device)
        self.bone_names = list(SMPLX_JOINT_NAMES)
        parents = layer.parents.cpu().numpy().astype(np.int64)
        parents[0] = -1
        self.bone_parents = parents
        self.shape_names = [f"beta{i}" for i in range(layer.num_betas)]
        self.shape_fit_names = tuple(self.shape_names)
        self.faces = np.asarray(layer.faces, dtype=np.int64)
        self.keypoint_names = COCO23_NAMES
        self.fit_bone_index = np.array([self.bone_names.index(b) for b in SMPLX_FIT_BONES])
        self._skin_weights = layer.lbs_weights.to(dtype)  # (V, 55)
        ids = vertex_ids["smplx"]
        n_vertices = layer.v_template.shape[0]
        kp_weights = torch.zeros(len(COCO23_NAMES), n_vertices, dtype=dtype, device=self.device)
        self._kp_joint: dict[int, int] = {}
        self._kp_vertex: dict[int, int] = {}
        for k, name in enumerate(COCO23_NAMES):
            if name in _KEYPOINT_JOINTS:
                j = self.bone_names.index(_KEYPOINT_JOINTS[name])
                self._kp_joint[k] = j
                kp_weights[k] = layer.J_regressor[j].to(dtype)  # exact at rest, close when posed
            else:
                v = int(ids[_KEYPOINT_VERTICES[name]])
                self._kp_vertex[k] = v
                kp_weights[k, v] = 1.0
        self._kp_weights = kp_weights

    def default_shape(self, batch: int = 1) -> torch.Tensor:
        """(batch, num_betas) zeros: the model's mean shape."""
        return torch.zeros(batch, len(self.shape_names), dtype=self.dtype, device=self.device)

    def _shaped(self, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, V, 3) shaped rest vertices and (S, 55, 3) rest joints, SMPL-X's origin."""
        from smplx.lbs import blend_shapes, vertices2joints

        layer = self._layer
        verts = layer.v_template[None] + blend_shapes(betas.to(self.dtype), layer.shapedirs)
        return verts, vertices2joints(layer.J_regressor, verts)

    def rest(self, shape: torch.Tensor) -> BodyRest:
        """Rest data for (S, num_betas) betas (differentiable: SMPL-X's rest is linear in them)."""
        verts, joints = self._shaped(shape)
        root = joints[:, :1]
        verts, joints = verts - root, joints - root  # the model frame: rest pelvis at the origin
        s, j = joints.shape[:2]
        poses = torch.eye(4, dtype=self.dtype, device=self.device).repeat(s, j, 1, 1)
        poses[..., :3, 3] = joints
        points = torch.zeros(s, len(COCO23_NAMES), j, 4, dtype=self.dtype, device=self.device)
        for k, jt in self._kp_joint.items():
            points[:, k, jt, :3] = joints[:, jt]
            points[:, k, jt, 3] = 1.0
        for k, v in self._kp_vertex.items():
            homog = torch.cat([verts[:, v], torch.ones_like(verts[:, v, :1])], -1)  # (S, 4)
            points[:, k] = self._skin_weights[v][None, :, None] * homog[:, None]
        return BodyRest(rest_bone_poses=poses, keypoint_bone_points=points, blendshape_coeffs=shape.to(self.dtype))

    def bone_transforms(self, pose: torch.Tensor, rest: BodyRest) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward kinematics (``smplx.lbs.batch_rigid_transform``); see :class:`BodyModel`."""
        import roma
        from smplx.lbs import batch_rigid_transform

        rot = roma.rotvec_to_rotmat(pose.to(self.dtype))
        heads = rest.rest_bone_poses[..., :3, 3].expand(len(pose), -1, -1)
        posed, transforms = batch_rigid_transform(rot, heads, self._layer.parents, dtype=self.dtype)
        frames = transforms.clone()
        frames[..., :3, 3] = posed
        return transforms, frames

    @torch.no_grad()
    def vertices(self, pose: torch.Tensor, rest: BodyRest) -> torch.Tensor:
        """(B, V, 3) vertices of the full SMPL-X model (pose correctives included), in
        the model frame (rest pelvis at the origin), metres."""
        b = len(pose)
        betas = rest.blendshape_coeffs.expand(b, -1) if len(rest.blendshape_coeffs) == 1 else rest.blendshape_coeffs
        p = pose.to(self.dtype)
        zeros = torch.zeros(b, 3, dtype=self.dtype, device=self.device)
        out = self._layer(
            betas=betas, global_orient=zeros, transl=zeros, body_pose=p[:, 1:22].reshape(b, -1),
            jaw_pose=p[:, 22], leye_pose=p[:, 23], reye_pose=p[:, 24], left_hand_pose=p[:, 25:40].reshape(b, -1),
            right_hand_pose=p[:, 40:55].reshape(b, -1),
            expression=torch.zeros(b, self._layer.num_expression_coeffs, dtype=self.dtype, device=self.device),
            return_verts=True,
        )
        return out.vertices - out.joints[:, :1]

    def rest_pelvis(self, shape: torch.Tensor) -> torch.Tensor:
        """(S, 3) rest pelvis joint ``J0(betas)`` in SMPL-X's own origin, metres."""
        return self._shaped(shape)[1][:, 0]
