"""Body models as stateless batched layers.

Conventions:
    * Model frame (Anny): metres, Z up, -Y forward (the body faces -Y), the person's
      left on +X, root joint at the pelvis centre (the origin in the rest pose).
    * Pose: one axis-angle vector (radians) per bone, a rotation in the parent's
      reference frame (Anny's ``local-ref`` parameterisation). Bone 0 (``root``) is kept
      at identity: the global orientation is applied outside the model.
    * Shape: Anny phenotype values in [0, 1], order ``AnnyBody.shape_names``.
    * Camera placement (done by the estimator): ``X_cam = R_global @ X_model + transl``,
      with ``R_global`` mapping model axes to the OpenCV camera (x right, y down,
      z forward). ``MODEL_TO_UPRIGHT_FACING_CAMERA`` is the ``R_global`` of a person
      standing upright and facing the camera.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import roma
import torch

from meshstream.stream.errors import MissingExtraError, ModelFileError

from .keypoints import COCO23_NAMES

log = logging.getLogger(__name__)

# Anny canonical axes -> OpenCV camera: +Z (up) -> -y, -Y (forward) -> -z, +X -> +x.
MODEL_TO_UPRIGHT_FACING_CAMERA = np.array(
    [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=np.float64
)

# Bones the fitter moves (the rest stay in the rest pose): spine, neck, head, arms, legs.
FIT_BONES: tuple[str, ...] = (
    "spine05", "spine03", "spine01", "neck01", "head",
    "clavicle.L", "upperarm01.L", "lowerarm01.L", "wrist.L",
    "clavicle.R", "upperarm01.R", "lowerarm01.R", "wrist.R",
    "upperleg01.L", "lowerleg01.L", "foot.L",
    "upperleg01.R", "lowerleg01.R", "foot.R",
)


def _init_warp_quietly() -> None:
    """Starts NVIDIA Warp (Anny's skinning kernels) without console output.

    Warp prints a banner to stdout and, on a machine without a CUDA driver, a "Warp
    CUDA warning" from its native library straight to file descriptor 2, which no
    setting turns off and which breaks the progress bar (also with ``-q``). Standard
    error is pointed at ``/dev/null`` for the moment of the start only; failures still
    raise. Whether a GPU was found is logged at INFO level.
    """
    import sys

    import warp

    warp.config.quiet = True
    warp.config.log_level = warp.LOG_ERROR
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        warp.init()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    log.info("warp started; CUDA devices: %d", warp.get_cuda_device_count())


@dataclass
class BodyRest:
    """Shape-dependent rest data of a batch of bodies.

    Attributes:
        rest_bone_poses: (S, J, 4, 4) rest pose of each bone in the model frame.
        keypoint_bone_points: (S, K, J, 4) homogeneous points whose skinning by the bone
            transforms, summed over J, gives the K keypoints (keypoints are linear in the
            bone transforms under linear blend skinning, so no vertex is skinned).
        blendshape_coeffs: (S, C) Anny blend-shape coefficients for this shape.
    """

    rest_bone_poses: torch.Tensor
    keypoint_bone_points: torch.Tensor
    blendshape_coeffs: torch.Tensor


class BodyModel:
    """What the estimator, the overlay and the exports need of a body model.

    Subclasses set, in ``__init__``: ``name``, ``dtype``, ``device``, ``bone_names``
    (J,), ``bone_parents`` (J,) int (-1 for the root, parents before children),
    ``shape_names`` (S,), ``faces`` (F, 3) int64, ``keypoint_names`` (COCO-23),
    ``fit_bone_index`` (the bones the fitter moves), ``_skin_weights`` (V, J) and
    ``_kp_weights`` (23, V); and as class attributes the conventions below. They
    implement :meth:`default_shape`, :meth:`rest`, :meth:`bone_transforms` and
    :meth:`vertices`. Bone 0 is the root, kept at identity (the global orientation is
    applied outside the model), and the model frame has the root joint at the origin
    in the rest pose, so ``transl`` of a fit is the root joint in camera space.

    Attributes:
        up_axis: (3,) the body's up direction in the model frame.
        model_to_export: (3, 3) model axes -> export axes (Y up, the body facing +Z).
        upright_facing_camera: (3, 3) ``R_global`` of a person standing upright and
            facing an OpenCV camera.
        shape_fit_names: Shape parameters the fitter may change per track.
        shape_bounds: (low, high) of fitted shape values.
        shape_scale: Span of plausible shape values (the shape prior's unit).
        foot_joint_names: Joints that touch the floor when standing (export levelling).
    """

    name: str
    path: Path | None = None  # the model file, for models loaded from the user's files
    gender: str | None = None
    up_axis: np.ndarray
    model_to_export: np.ndarray
    upright_facing_camera: np.ndarray
    shape_fit_names: tuple[str, ...]
    shape_bounds: tuple[float, float]
    shape_scale: float
    foot_joint_names: tuple[str, ...]

    def linear_rest(self) -> "LinearRest":
        """A differentiable first-order model of the rest data around the default body
        (built once, cached; exact for models whose rest is linear in the shape)."""
        if getattr(self, "_linear_rest", None) is None:
            self._linear_rest = LinearRest(self)
        return self._linear_rest

    @property
    def num_bones(self) -> int:
        return len(self.bone_names)

    @property
    def num_vertices(self) -> int:
        return int(self._skin_weights.shape[0])

    @property
    def skin_weights(self) -> torch.Tensor:
        """(V, J) linear-blend-skinning weight of each bone on each vertex (rows sum to 1)."""
        return self._skin_weights

    @property
    def keypoint_weights(self) -> torch.Tensor:
        """(23, V) regression weights of the COCO-23 keypoints from the vertices."""
        return self._kp_weights

    def default_shape(self, batch: int = 1) -> torch.Tensor:
        """(batch, S) shape parameters of the average body."""
        raise NotImplementedError

    def rest(self, shape: torch.Tensor) -> BodyRest:
        """Rest data for a batch of (S_batch, S) shapes."""
        raise NotImplementedError

    def bone_transforms(self, pose: torch.Tensor, rest: BodyRest) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward kinematics.

        Args:
            pose: (B, J, 3) axis-angle per bone, radians.
            rest: rest data of batch size B or 1.

        Returns:
            transforms: (B, J, 4, 4) skinning transform of each bone (posed pose times
                inverse rest pose): rotation = the bone's global change from rest.
            bone_poses: (B, J, 4, 4) posed bone frames in the model frame.
        """
        raise NotImplementedError

    def vertices(self, pose: torch.Tensor, rest: BodyRest) -> torch.Tensor:
        """(B, V, 3) skinned mesh vertices in the model frame, metres."""
        raise NotImplementedError

    @torch.no_grad()
    def stature(self, shape: torch.Tensor) -> torch.Tensor:
        """(B,) standing height of (B, S) shapes, metres: the rest mesh's extent along
        :attr:`up_axis` (crown to sole; the rest pose stands straight)."""
        verts = self.vertices(torch.zeros(len(shape), self.num_bones, 3, dtype=self.dtype), self.rest(shape))
        height = verts @ torch.as_tensor(self.up_axis, dtype=verts.dtype)
        return height.amax(1) - height.amin(1)

    def stature_range(self, base: torch.Tensor | None = None) -> tuple[float, float]:
        """(low, high) standing heights, metres, that the fitter's shapes reach around
        ``base`` ((1, S); the average body if ``None``): its height plus the sum of each
        fitted shape parameter's lowest (highest) effect within :attr:`shape_bounds` (the
        rest mesh is close to linear in them)."""
        base = self.default_shape(1) if base is None else base
        index = [self.shape_names.index(n) for n in self.shape_fit_names]
        shapes = base.repeat(2 * len(index), 1)
        for k, i in enumerate(index):
            shapes[2 * k, i], shapes[2 * k + 1, i] = self.shape_bounds
        effect = (self.stature(shapes) - self.stature(base)).view(-1, 2)
        height = float(self.stature(base)[0])
        return height + float(effect.min(1).values.sum()), height + float(effect.max(1).values.sum())

    def shape_for_stature(self, height_m: float) -> torch.Tensor | None:
        """(1, S) a base shape whose fitted range reaches ``height_m`` where the average
        body's does not, by a shape parameter the fitter holds (Anny: age); ``None``
        when the average body's range reaches it or the model has no such parameter."""
        return None

    def delta_frames(self, rest: BodyRest) -> torch.Tensor:
        """(S, J, 4, 4) the frame each bone's pose rotation acts in: with its ancestors
        held, a bone posed by rotation ``D`` (4x4) has the transform ``T(D) = T(I) E D E^-1``.
        Here the bone's rest frame (its head, model axes for SMPL-X); rigs with other
        reference frames override it (``models/reduced_rig.py`` relies on it)."""
        return rest.rest_bone_poses

    def skeleton(self, pose: torch.Tensor, rest: BodyRest) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed keypoints and joints in the model frame (differentiable).

        Args:
            pose: (B, J, 3) axis-angle per bone, radians.
            rest: rest data of batch size B or 1.

        Returns:
            keypoints: (B, 23, 3) COCO-23 keypoints, metres.
            joints: (B, J, 3) bone head positions, metres.
        """
        transforms, bone_poses = self.bone_transforms(pose, rest)
        return self.keypoints(transforms, rest), bone_poses[..., :3, 3]

    @staticmethod
    def keypoints(transforms: torch.Tensor, rest: BodyRest) -> torch.Tensor:
        """(B, 23, 3) COCO-23 keypoints from (B, J, 4, 4) bone transforms (keypoints are
        linear in them under linear blend skinning)."""
        points = rest.keypoint_bone_points.expand(len(transforms), -1, -1, -1)
        return torch.einsum("bjxy,bkjy->bkx", transforms[..., :3, :], points)


class AnnyBody(BodyModel):
    """The Anny body model (shipped inside the ``anny`` package) as a batched layer.

    Args:
        dtype: Torch dtype of all outputs.
        device: Torch device.
        cache_dir: Where Anny caches its built model data (``~/.cache/anny`` unless
            given or set by ``ANNY_CACHE_DIR``). The first construction builds it (about
            a minute on 2 cores), later ones load it in under a second.
    """

    name = "anny"
    up_axis = np.array([0.0, 0.0, 1.0])
    model_to_export = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    upright_facing_camera = MODEL_TO_UPRIGHT_FACING_CAMERA
    shape_bounds = (0.15, 0.85)  # where the linear shape model holds
    shape_scale = 1.0

    def __init__(
        self,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        cache_dir: str | None = None,
    ) -> None:
        try:
            _init_warp_quietly()
            import anny
            import anny.paths
        except ImportError as exc:  # pragma: no cover - anny is a core dependency
            raise MissingExtraError(
                f"the Anny body model is not importable ({exc}); run: pip install anny==0.6.2"
            ) from exc
        if cache_dir is not None:
            os.makedirs(cache_dir, exist_ok=True)
            anny.paths.set_anny_cache_path(cache_dir)
        cache = anny.paths.get_anny_cache_path()
        if not any(cache.glob("*/build_compact_model_data_*.safetensors")):
            log.warning("first use: building the Anny body model cache in %s (about 100 s on 2 cores, once per "
                        "machine; ANNY_CACHE_DIR moves it)", cache)
        try:
            model = anny.Anny()
        except OSError as exc:
            raise ModelFileError(
                f"could not build or read the Anny model cache in {anny.paths.get_anny_cache_path()}"
                f" ({exc}); delete that folder or set ANNY_CACHE_DIR to a writable one"
            ) from exc
        self._model = model.to(dtype=dtype, device=device)
        self._model.requires_grad_(False)
        self.dtype = dtype
        self.device = torch.device(device)
        self.bone_names: list[str] = list(self._model.bone_labels)
        self.bone_parents = np.asarray(self._model.bone_parents, dtype=np.int64)
        self.shape_names: list[str] = list(self._model.phenotype_labels)
        self.faces = self._model.get_triangular_faces().to(torch.int64).cpu().numpy()
        self.keypoint_names: tuple[str, ...] = COCO23_NAMES
        regressor = anny.KeypointsRegressor.coco(self._model, labels=list(COCO23_NAMES))
        self._kp_weights = regressor.regression_weights.to(dtype=dtype, device=device)  # (K, V)
        n_vertices = self._model.template_vertices.shape[0]
        dense = torch.zeros(n_vertices, len(self.bone_names), dtype=dtype, device=device)
        dense.scatter_add_(
            1,
            self._model.vertex_bone_indices.to(device=device, dtype=torch.int64),
            self._model.vertex_bone_weights.to(device=device, dtype=dtype),
        )
        self._skin_weights = dense  # (V, J)
        self.fit_bone_index = np.array([self.bone_names.index(b) for b in FIT_BONES])
        self.foot_joint_names = tuple(n for n in self.bone_names if n.startswith(("foot.", "toe")))

    #: Phenotypes the fitter may change per track (adults: age and muscle stay at the mean,
    #: where the rest skeleton is linear in these to within 5 mm).
    shape_fit_names: tuple[str, ...] = ("gender", "weight", "height", "proportions")

    def default_shape(self, batch: int = 1) -> torch.Tensor:
        """(batch, S) phenotype values of the average adult (all 0.5)."""
        return torch.full((batch, len(self.shape_names)), 0.5, dtype=self.dtype, device=self.device)

    def shape_for_stature(self, height_m: float) -> torch.Tensor | None:
        """A child's base shape for a standing height under the adults' fitted range: the
        average body at the age (bisection over age 0-0.5) whose height is ``height_m``;
        the fit then varies gender, weight, height and proportions around it."""
        if height_m >= self.stature_range()[0]:
            return None
        age = self.shape_names.index("age")
        low, high = 0.0, 0.5
        for _ in range(20):
            shape = self.default_shape(1)
            shape[0, age] = 0.5 * (low + high)
            if float(self.stature(shape)[0]) > height_m:
                high = shape[0, age].item()
            else:
                low = shape[0, age].item()
        shape[0, age] = 0.5 * (low + high)
        return shape

    def rest(self, shape: torch.Tensor) -> BodyRest:
        """Rest data for a batch of shapes.

        Args:
            shape: (S, len(shape_names)) phenotype values in [0, 1].
        """
        m = self._model
        coeffs = m._get_phenotype_blendshape_coefficients(
            shape.to(self.dtype),
            torch.zeros(len(shape), len(m.local_change_labels), dtype=self.dtype, device=self.device),
            torch.zeros(len(shape), len(m.facial_action_labels), dtype=self.dtype, device=self.device),
        )
        rest = m.get_rest_model(coeffs)
        verts = rest["rest_vertices"].expand(len(shape), -1, -1)
        verts_h = torch.cat([verts, torch.ones_like(verts[..., :1])], dim=-1)  # (S, V, 4)
        weighted = self._kp_weights[None, :, :, None] * verts_h[:, None]  # (S, K, V, 4)
        points = torch.einsum("skvd,vj->skjd", weighted, self._skin_weights)
        return BodyRest(
            rest_bone_poses=rest["rest_bone_poses"].expand(len(shape), -1, -1, -1),
            keypoint_bone_points=points,
            blendshape_coeffs=coeffs,
        )

    def _deltas(self, pose: torch.Tensor) -> torch.Tensor:
        b, j, _ = pose.shape
        deltas = torch.zeros(b, j, 4, 4, dtype=self.dtype, device=self.device)
        deltas[..., :3, :3] = roma.rotvec_to_rotmat(pose.to(self.dtype))
        deltas[..., 3, 3] = 1.0
        return deltas

    def bone_transforms(self, pose: torch.Tensor, rest: BodyRest) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward kinematics through Anny's own rig; see :meth:`BodyModel.bone_transforms`."""
        return self._model.get_bone_transforms(self._deltas(pose), rest.rest_bone_poses)

    def delta_frames(self, rest: BodyRest) -> torch.Tensor:
        """See :meth:`BodyModel.delta_frames`. Anny's 'local-ref' rig rotates a bone about
        its rest head in the axes ``R U^T`` (rest orientation ``R``, reference orientation
        ``U``): ``E = P [U^T | 0]``."""
        if self._model.pose_parameterization != "local-ref":
            raise NotImplementedError(f"delta frames of Anny's {self._model.pose_parameterization!r} rig")
        ref = torch.eye(4, dtype=self.dtype, device=self.device).repeat(self.num_bones, 1, 1)
        ref[:, :3, :3] = self._model.reference_bone_orientations.to(self.dtype).transpose(-1, -2)
        return rest.rest_bone_poses @ ref

    @torch.no_grad()
    def vertices(self, pose: torch.Tensor, rest: BodyRest) -> torch.Tensor:
        """Skinned mesh vertices in the model frame.

        Args:
            pose: (B, J, 3) axis-angle per bone, radians.
            rest: rest data of batch size B or 1.

        Returns:
            (B, V, 3) vertices, metres.
        """
        coeffs = rest.blendshape_coeffs
        if len(coeffs) == 1 and len(pose) > 1:
            coeffs = coeffs.expand(len(pose), -1)
        # Anny.forward takes phenotype values; its base class takes blend-shape coefficients.
        from anny.models.rigged_model import RiggedModelWithLinearBlendShapes

        out = RiggedModelWithLinearBlendShapes.forward(self._model, self._deltas(pose), coeffs)
        return out["vertices"]


class LinearRest:
    """Rest data as a linear function of the phenotypes, around the average body (or
    ``base_shape``).

    ``rest(shape)`` is exact at the base; finite differences (step 0.1) give its
    derivative along each phenotype. Keypoints of posed adults stay within 5 mm of the
    exact model for phenotypes in [0.15, 0.85] with age and muscle at 0.5. Unlike
    ``AnnyBody.rest`` it is cheap and differentiable, so shapes can be fitted.

    Args:
        body: The body model.
        step: Finite-difference step in phenotype units.
        base_shape: (1, S) the shape to linearise around (``None``: the average body).
    """

    def __init__(self, body: BodyModel, step: float = 0.1, base_shape: torch.Tensor | None = None) -> None:
        base_shape = body.default_shape(1) if base_shape is None else base_shape.reshape(1, -1)
        base = body.rest(base_shape)
        d_points, d_poses = [], []
        for i in range(len(body.shape_names)):
            shape = base_shape.clone()
            shape[0, i] += step
            moved = body.rest(shape)
            d_points.append((moved.keypoint_bone_points - base.keypoint_bone_points)[0] / step)
            d_poses.append((moved.rest_bone_poses - base.rest_bone_poses)[0] / step)
        self.base = base
        self.base_shape = base_shape[0]
        self.d_points = torch.stack(d_points)  # (S, K, J, 4)
        self.d_poses = torch.stack(d_poses)  # (S, J, 4, 4)

    def __call__(self, shape: torch.Tensor) -> BodyRest:
        """Rest data of (B, S) phenotype values (``blendshape_coeffs`` left at the mean).

        The bones' rest rotations, linear in the shape, are brought back onto rotations
        (two Newton-Schulz steps towards the nearest one; they start within about 0.3 %),
        so that the rig's inverses by transposition hold (``models/reduced_rig.py``
        relies on it)."""
        delta = shape - self.base_shape
        poses = self.base.rest_bone_poses + torch.einsum("bs,sjxy->bjxy", delta, self.d_poses)
        rot = poses[..., :3, :3]
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        for _ in range(2):
            rot = 0.5 * rot @ (3.0 * eye - rot.transpose(-1, -2) @ rot)
        poses = torch.cat([torch.cat([rot, poses[..., :3, 3:]], -1), poses[..., 3:, :]], -2)
        return BodyRest(
            rest_bone_poses=poses,
            keypoint_bone_points=self.base.keypoint_bone_points + torch.einsum("bs,skjd->bkjd", delta, self.d_points),
            blendshape_coeffs=self.base.blendshape_coeffs.expand(len(shape), -1),
        )
