"""Where a fitted body's points are: the body model's geometry without any fitting.

:class:`BodyPlacer` places bodies given by their parameters (pose, orientation,
translation, shape) in camera space: the joints and keypoints the store keeps, the
feet and up axis the shared floor reads, the mesh the overlay draws, and standing
heights. The fitter uses it, and so does the clip's side of a run (temporal filtering,
the tracks' final shapes, the overlay), which holds no fitter.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import roma
import torch

from meshstream.stream.messages import BodyFit

from .body import BodyModel, LinearRest
from .keypoints import LEFT_HIP, RIGHT_HIP

FOOT_POINTS = slice(15, 23)  # COCO-23: ankles, big toes, small toes, heels


class BodyPlacer:
    """Camera-space geometry of bodies on one body model.

    Args:
        body: The body model layer.
        base_shape: (1, S) the shape the linear rest model is built around (``None``: the
            average body), as the estimator's.
    """

    def __init__(self, body: BodyModel, base_shape: torch.Tensor | None = None) -> None:
        self.body = body
        self._statures: dict[bytes, float] = {}
        if base_shape is None:
            self.linear_rest = body.linear_rest()
        else:
            self.linear_rest = LinearRest(body, base_shape=base_shape.reshape(1, -1).to(body.dtype))

    def stature(self, shape: np.ndarray) -> float:
        """Standing height of an (S,) shape, metres (``BodyModel.stature``; the last few
        shapes' are remembered: a live run asks for a track's on every frame)."""
        key = np.asarray(shape, np.float64).tobytes()
        if key not in self._statures:
            if len(self._statures) >= 64:
                self._statures.clear()
            self._statures[key] = float(self.body.stature(torch.as_tensor(shape, dtype=self.body.dtype)[None])[0])
        return self._statures[key]

    def camera_skeleton(self, pose: torch.Tensor, orient: torch.Tensor, transl: torch.Tensor,
                         shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, 23, 3) keypoints and (M, J, 3) joints in camera space, metres."""
        kp, joints = self.body.skeleton(pose, self.linear_rest(shape))
        rot = roma.rotvec_to_rotmat(orient)
        return kp @ rot.transpose(-1, -2) + transl[:, None], joints @ rot.transpose(-1, -2) + transl[:, None]

    @torch.no_grad()
    def place(self, fit: BodyFit) -> BodyFit:
        """Recomputes ``pelvis``, ``joints3d`` and ``keypoints3d`` of ``fit`` from its
        ``body_pose``, ``global_orient`` and ``transl`` (after temporal filtering).
        ``fit_error_px`` and ``confidence`` still describe the per-frame fit."""
        pelvis, joints3d, keypoints3d = self.placement(fit.body_pose, fit.global_orient, fit.transl, fit.shape)
        return dataclasses.replace(fit, pelvis=pelvis, joints3d=joints3d, keypoints3d=keypoints3d)

    @torch.no_grad()
    def placement(self, body_pose: np.ndarray, global_orient: np.ndarray, transl: np.ndarray,
                  shape: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Camera-space points of M bodies given by their parameters.

        Args:
            body_pose: (M, J, 3) axis-angle per bone.
            global_orient: (M, 3) axis-angle, body-model frame -> camera.
            transl: (M, 3) camera-space position of the model root, metres.
            shape: (M, S) shape parameters, or (S,) shared by all M.

        Returns:
            pelvis (M, 3), joints3d (M, J, 3) and COCO-17 keypoints3d (M, 17, 3), metres,
            float32.
        """
        dt = self.body.dtype
        shape = torch.as_tensor(np.asarray(shape), dtype=dt)
        if shape.ndim == 1:
            shape = shape.expand(len(transl), -1)
        kp_cam, joints_cam = self.camera_skeleton(torch.as_tensor(body_pose, dtype=dt),
                                                   torch.as_tensor(global_orient, dtype=dt),
                                                   torch.as_tensor(transl, dtype=dt), shape)
        pelvis = 0.5 * (kp_cam[:, LEFT_HIP] + kp_cam[:, RIGHT_HIP])
        return (pelvis.numpy().astype(np.float32), joints_cam.numpy().astype(np.float32),
                kp_cam[:, :17].numpy().astype(np.float32))

    @torch.no_grad()
    def feet_and_up(self, fit: BodyFit) -> tuple[np.ndarray, np.ndarray]:
        """Where each fitted body's feet are and which way is its up.

        Returns:
            (M, 8, 3) camera-space ankles, toes and heels (COCO-23 order), metres, and
            (M, 3) the body's up axis in camera space (unit vectors).
        """
        dt = self.body.dtype
        kp, _ = self.camera_skeleton(torch.as_tensor(fit.body_pose, dtype=dt),
                                     torch.as_tensor(fit.global_orient, dtype=dt),
                                     torch.as_tensor(fit.transl, dtype=dt), torch.as_tensor(fit.shape, dtype=dt))
        rot = roma.rotvec_to_rotmat(torch.as_tensor(fit.global_orient, dtype=dt))
        up = rot @ torch.as_tensor(self.body.up_axis, dtype=dt)
        return kp[:, FOOT_POINTS].numpy(), up.numpy()

    @torch.no_grad()
    def mesh(self, fit: BodyFit) -> np.ndarray:
        """(M, V, 3) float32 camera-space vertices of the fitted bodies, metres (one rest
        mesh per distinct shape, posed per person-frame)."""
        dt = self.body.dtype
        verts_cam = np.empty((len(fit), self.body.num_vertices, 3), np.float32)
        for shape in np.unique(fit.shape, axis=0):  # one per track
            sel = np.nonzero((fit.shape == shape).all(1))[0]
            rest = self.body.rest(torch.as_tensor(shape[None], dtype=dt))
            verts = self.body.vertices(torch.as_tensor(fit.body_pose[sel], dtype=dt), rest)
            rot = roma.rotvec_to_rotmat(torch.as_tensor(fit.global_orient[sel], dtype=dt))
            verts_cam[sel] = (verts @ rot.transpose(-1, -2) + torch.as_tensor(fit.transl[sel])[:, None]).numpy()
        return verts_cam
