"""Per person-frame body and camera estimation under full perspective.

Pipeline for a chunk of frames (batched over all person-frames of the chunk):

1. Structure: fit the body's pose and global orientation to the detector's relative
   metric 3D landmarks (hip-centred, camera-aligned axes), warm-started from the
   previous chunk of the same track, with a pose prior and a temporal term.
2. Depth and camera: for a focal length f, the camera translation T (so Tz, the pelvis
   depth) that best reprojects the fitted 3D keypoints onto the 2D keypoints is a
   linear least-squares problem. The shot's focal is the minimum of the reprojection
   cost pooled over many person-frames, each frame's cost curve rescaled to [0, 1]
   (near and far body parts project with different magnification, so f is observable
   once the 3D structure is fixed); a user-given focal skips the search.
3. Refinement: pose, orientation and T jointly minimise a robust, confidence-weighted
   2D reprojection error plus the 3D landmark term, at the shot's focal.

Units: metres, pixels, radians; OpenCV camera axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch

from meshstream.stream.messages import BodyFit, FitResult, FocalEstimate, PersonFrames, ShotCamera, TrackPrior, Window

from .body import BodyModel
from .camera import (
    FocalPrior,
    focal_grid,
    focal_with_prior,
    normalise_costs,
    project,
    ray_rotation,
    refine_minimum,
    reprojection_nll,
    solve_translation,
)
from .keypoints import LEFT_HIP, LEFT_SHOULDER, RIGHT_HIP, RIGHT_SHOULDER
from .fit_parts import consecutive_pairs, fold_groups, principal_point_or_centre, with_free
from .lifter import LandmarkLifter, detector_centre
from .placement import BodyPlacer
from .reduced_rig import FoldedRest, ReducedRig
from .silhouette_term import SilhouetteTargets, silhouette_iou, silhouette_targets
from .soft_rasterizer import coarse_mesh

_TORSO = [LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP]


@dataclass
class Structure:
    """Step 1's result for M person-frames (torch tensors, the body model's dtype).

    Attributes:
        pose: (M, J, 3) axis-angle per bone.
        orient: (M, 3) axis-angle, body-model frame -> camera axes (as the detector sees it).
        shape: (M, S) phenotype values; all frames of a track share one.
    """

    pose: torch.Tensor
    orient: torch.Tensor
    shape: torch.Tensor


class BodyEstimator:
    """Estimation stage: ``PersonFrames -> BodyFit``.

    Args:
        body: The body model layer.
        iterations_3d: Optimiser steps of the structure fit.
        iterations_2d: Optimiser steps of the reprojection refinement.
        min_keypoint_conf: Keypoints below this confidence are ignored in 2D terms.
        pose_prior_weight: Weight of the squared-angle pose prior.
        temporal_weight: Weight tying a track's pose to its previous frame.
        fov_range_deg: Horizontal field-of-view range of the focal search.
        focal_prior: A prior over fields of view, combined with the person-frames'
            evidence in the focal search where that does not fix the focal (``None``:
            the evidence alone).
        fit_shape: Fit one body shape per track (``body.shape_fit_names``); else the
            average body.
        shape_prior_weight: Pull of a track's shape towards its running estimate (and
            of a new track's towards the average body); grows with the frames seen.
        landmark_weight: Weight of the 3D landmark term in the refinement, relative to
            the 2D term (both normalised: 5 % of the box height, 5 cm).
        keypoint_std_rel: 2D keypoint noise as a fraction of the box height (focal search).
        depth_std_m: Noise of the fitted body's depth relief, metres (focal search).
        silhouette_weight: Weight of (1 - soft IoU) between the rendered body and the
            person mask in the refinement (where ``PersonFrames.masks`` are given; 0: off).
        silhouette_iterations: The refinement's last steps that include the silhouette.
        silhouette_mesh_cell_m: Cluster size of the coarse mesh rendered for it, metres.
        silhouette_search_every: Each mask cell's candidate faces (its 32 nearest, of
            which it renders the 8 nearest at every step) are searched again every this
            many silhouette steps (the search is most of the term's cost; 1: every step).
        lifter: Corrects the detector's relative 3D landmarks before the body is fitted
            to them (``None``: used as given).
        focal_lifter: Corrects them for the focal search (:meth:`fit_structures`):
            ``None``, the detector's as given (the default pipeline's); the relief
            lifter, which sees the landmarks alone; or ``lifter`` itself (pass the same
            object: then one structure fit serves both, but that lifter sees the 2D
            keypoints and carries a focal prior from its training views).
        base_shape: (1, S) the shape new tracks start from and the linear rest model is
            built around (``None``: the average body); e.g. a child's, from
            ``BodyModel.shape_for_stature``.
        shape_frames: A window whose tracks all have at least this many frames behind
            their running shape keeps those shapes (no shape step: the rest skeleton is
            built once per window, which is most of a one-frame window's cost; live
            runs). ``None``: shapes are refined by every window.
        feet: Return the bodies' feet and up axes with each fit (the shared floor and
            the floor cue read them; a live run's one-frame fits without a shared floor
            need not).
    """

    def __init__(
        self,
        body: BodyModel,
        *,
        iterations_3d: int = 60,
        iterations_2d: int = 40,
        min_keypoint_conf: float = 0.5,
        pose_prior_weight: float = 1e-3,
        temporal_weight: float = 1e-2,
        fov_range_deg: tuple[float, float] = (15.0, 130.0),
        focal_prior: FocalPrior | None = None,
        landmark_weight: float = 0.1,
        keypoint_std_rel: float = 0.01,
        depth_std_m: float = 0.05,
        fit_shape: bool = True,
        shape_prior_weight: float = 0.05,
        silhouette_weight: float = 1.0,
        silhouette_iterations: int = 10,
        silhouette_mesh_cell_m: float = 0.06,
        silhouette_search_every: int = 5,
        lifter: LandmarkLifter | None = None,
        focal_lifter: LandmarkLifter | None = None,
        base_shape: torch.Tensor | None = None,
        shape_frames: int | None = None,
        feet: bool = True,
    ) -> None:
        self.shape_frames = shape_frames
        self.feet = feet
        self.lifter = lifter
        self.focal_lifter = focal_lifter
        self.silhouette_weight = silhouette_weight
        self.silhouette_iterations = silhouette_iterations
        self.silhouette_mesh_cell_m = silhouette_mesh_cell_m
        if silhouette_search_every < 1:
            raise ValueError(f"silhouette_search_every must be >= 1, got {silhouette_search_every}")
        self.silhouette_search_every = silhouette_search_every
        self._coarse = None
        self.fit_shape = fit_shape
        self.shape_prior_weight = shape_prior_weight
        self.keypoint_std_rel = keypoint_std_rel
        self.depth_std_m = depth_std_m
        self.landmark_weight = landmark_weight
        self.body = body
        self.iterations_3d = iterations_3d
        self.iterations_2d = iterations_2d
        self.min_keypoint_conf = min_keypoint_conf
        self.pose_prior_weight = pose_prior_weight
        self.temporal_weight = temporal_weight
        self.fov_range_deg = fov_range_deg
        self.focal_prior = focal_prior
        base = body.default_shape(1) if base_shape is None else base_shape.reshape(1, -1).to(body.dtype)
        self._base_shape = base[0]
        self._rest = body.rest(base)
        self._rest_torso: torch.Tensor | None = None
        self.placer = BodyPlacer(body, base_shape=base_shape)
        self._linear_rest = self.placer.linear_rest
        self._shape_fit_index = torch.as_tensor([body.shape_names.index(n) for n in body.shape_fit_names])
        self._rig = ReducedRig(body.bone_parents, body.fit_bone_index)  # kinematics over the fitted bones only
        self.reset()

    def reset(self) -> None:
        """Forgets the warm-start pose, running shape and size of all tracks (the
        working state of :meth:`fit_structure` and :meth:`__call__`; :meth:`fit` starts
        from its priors instead)."""
        self._warm: dict[int, torch.Tensor] = {}
        self._shapes: dict[int, tuple[torch.Tensor, int]] = {}  # track -> (shape (S,), frames seen)
        self._scales: dict[int, float] = {}  # track -> factor on its landmarks (metric size)
        self._lifted = None  # (observations, lifter, their correction): the last window's, reused by its steps

    def track_shape(self, track_id: int) -> np.ndarray:
        """(S,) running shape estimate of a track (the base shape if unseen)."""
        shape = self._shapes.get(int(track_id), (self._base_shape, 0))[0]
        return shape.numpy().astype(np.float32)

    def track_scale(self, track_id: int) -> float:
        """Factor on a track's relative 3D landmarks, i.e. on its fitted body size (its
        prior's ``scale``; 1 for a new track)."""
        return self._scales.get(int(track_id), 1.0)

    def fit(self, window: Window, camera: ShotCamera, priors: dict[int, TrackPrior]) -> FitResult:
        """Fits a window: the stateless entry point the pipeline's fitters call.

        Nothing carries over between calls: the tracks' running shapes, warm-start poses
        and sizes come in ``priors`` and go out in the result, so a refit is another
        call with the same priors, and any fitter, in any process, gives the same answer.

        Args:
            window: One shot's person-frames (at least one).
            camera: The shot's camera; where its focal is ``None``, the focal is searched
                from this window's people and the bodies fitted at what was found.
            priors: Track id -> :class:`TrackPrior` for the window's tracks seen before
                (others start from the base shape).

        Returns:
            The fit, the window's tracks' priors after it, the focal search's estimate
            (``None`` where ``camera.search`` is off), and the bodies' feet and up axes.
        """
        obs, zoom, pp = window.obs, window.obs_zoom, camera.principal_point
        if len(obs) == 0:
            raise ValueError("Window has no person-frames to fit")
        self._load(priors)
        estimate = None
        if camera.search:
            structure, searched = self.fit_structures(obs)
            estimate = self.estimate_focal(obs, searched, camera.image_size, zoom=zoom, principal_point=pp)
        else:
            structure = self.fit_structure(obs)
        focal = camera.focal_px if camera.focal_px is not None else estimate.focal_px
        fit = self(obs, focal, camera.image_size, structure=structure, zoom=zoom, principal_point=pp)
        feet, up = self.placer.feet_and_up(fit) if self.feet else (None, None)
        tracks = [int(t) for t in np.unique(obs.track_id)]
        return FitResult(fit, {t: self._prior(t) for t in tracks}, estimate, feet, up)

    def _load(self, priors: dict[int, TrackPrior]) -> None:
        """Sets the working state of a fit from the tracks' priors."""
        self.reset()
        for tid, p in priors.items():
            if p.shape is not None:
                self._shapes[int(tid)] = (torch.as_tensor(p.shape), int(p.frames_seen))
            if p.warm_pose is not None:
                self._warm[int(tid)] = torch.as_tensor(p.warm_pose)
            if p.scale != 1.0:
                self._scales[int(tid)] = float(p.scale)

    def _prior(self, track_id: int) -> TrackPrior:
        """A track's prior as the working state holds it."""
        shape, seen = self._shapes.get(track_id, (self._base_shape, 0))
        warm = self._warm.get(track_id)
        return TrackPrior(shape.numpy().copy(), seen, None if warm is None else warm.numpy().copy(),
                          self.track_scale(track_id), self.placer.stature(self.track_shape(track_id)))

    # ----------------------------------------------------------------- public API
    def fit_structure(self, obs: PersonFrames, *, landmarks: str = "pose", remember: bool = True,
                      start: Structure | None = None, iterations: int | None = None) -> Structure:
        """Step 1: pose, orientation and one shape per track from the relative 3D
        landmarks, with the track's running shape as prior.

        Args:
            obs: Observations of a chunk.
            landmarks: Which relative 3D landmarks to fit: ``"pose"``, the pose lifter's
                correction (the detector's without one); ``"focal"``, those the focal
                search reads (``focal_lifter``'s correction, or the detector's without
                one); ``"detector"``, the
                detector's as given.
            remember: Update each track's running shape with this fit. A second fit of
                the same chunk (e.g. for the focal search only) must pass ``False``.
            start: Pose and orientation to start from (an earlier fit of the same
                observations); ``None``: the track's last pose and the torso's alignment.
            iterations: Optimiser steps (``None``: ``iterations_3d``).
        """
        dt = self.body.dtype
        lm = self._landmarks(obs, landmarks)
        conf = torch.as_tensor(obs.keypoints2d[..., 2], dtype=dt)
        w3 = 0.2 + 0.8 * conf
        w3[:, 19:21] = 0.0  # small toes: no landmark
        pose0 = self._initial_pose(obs.track_id) if start is None else start.pose.clone()
        orient0 = self._initial_orient(lm) if start is None else start.orient.clone()
        free = torch.as_tensor(self.body.fit_bone_index)
        theta = pose0[:, free].clone().requires_grad_(True)
        omega = orient0.clone().requires_grad_(True)
        tracks, track_of = np.unique(obs.track_id, return_inverse=True)
        prior_shape = torch.stack([torch.as_tensor(self.track_shape(t), dtype=dt) for t in tracks])
        seen = torch.tensor([self._shapes.get(int(t), (None, 0))[1] for t in tracks], dtype=dt)
        frames = torch.as_tensor(np.bincount(track_of), dtype=dt)
        # Prior strength: the frames behind the running estimate against this chunk's.
        prior_w = self.shape_prior_weight * (1.0 + seen / frames)
        fit_idx = self._shape_fit_index
        scale = float(self.body.shape_scale)  # the optimiser sees shapes in units of their span
        low, high = (b / scale for b in self.body.shape_bounds)
        beta = (prior_shape[:, fit_idx] / scale).clone().requires_grad_(self.fit_shape)
        track_of_t = torch.as_tensor(track_of)
        pairs = consecutive_pairs(obs.track_id, obs.frame_index)
        group_rows, group_of = fold_groups(pose0, free, track_of)
        group_track = torch.as_tensor(track_of)[group_rows]
        fit_shape = self.fit_shape and (self.shape_frames is None or bool((seen < self.shape_frames).any()))
        beta.requires_grad_(fit_shape)
        params = [theta, omega] + ([beta] if fit_shape else [])
        opt = torch.optim.Adam(params, lr=0.05)
        steps = self.iterations_3d if iterations is None else iterations
        folded = None
        if not fit_shape and steps:  # the rest skeleton is fixed: fold it once
            with torch.no_grad():
                folded = self._rig.fold(self.body, self._linear_rest(prior_shape[group_track]), pose0[group_rows])
        for _ in range(steps):
            opt.zero_grad()
            if fit_shape:
                shape = self._full_shape(prior_shape, beta * scale)
                folded = self._rig.fold(self.body, self._linear_rest(shape[group_track]), pose0[group_rows])
            kp = self._rig.keypoints(theta, folded, group_of)
            loss = self._structure_loss(kp, omega, lm, w3) + self._priors(theta, pairs)
            if fit_shape:
                loss = loss + (prior_w[:, None] * (beta - prior_shape[:, fit_idx] / scale) ** 2).sum() / len(tracks)
            loss.backward()
            opt.step()
            with torch.no_grad():
                beta.clamp_(low, high)  # Anny: where the linear shape model holds
        shape = self._full_shape(prior_shape, beta.detach() * scale)
        for i, t in enumerate(tracks if remember else []):
            # The fit already weighed the running estimate by the frames behind it.
            self._shapes[int(t)] = (shape[i].clone(), int(seen[i] + frames[i]))
        return Structure(with_free(pose0, free, theta.detach()), omega.detach(), shape[track_of_t])

    def fit_structures(self, obs: PersonFrames) -> tuple[Structure, Structure]:
        """Step 1 as the pipeline runs it: (the structure the refinement starts from, the
        one :meth:`estimate_focal` searches with). They differ when the focal search
        reads other landmarks than the pose (the relief lifter's, or the detector's
        where only the pose has a lifter). The search's fit comes first (not
        remembered); the pose's then starts from it and runs half the steps (the
        suite's MPJPE, PA-MPJPE and Tz at the true focal were unchanged, within 0.1 mm
        and 1 mm, at half the cost)."""
        if self._landmark_lifter("pose") is self._landmark_lifter("focal"):
            structure = self.fit_structure(obs)
            return structure, structure
        searched = self.fit_structure(obs, landmarks="focal", remember=False)
        structure = self.fit_structure(obs, start=searched, iterations=max(1, self.iterations_3d // 2))
        return structure, searched

    def _full_shape(self, base: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        full = base.clone()
        full[:, self._shape_fit_index] = beta
        return full

    def estimate_focal(self, obs: PersonFrames, structure: Structure, image_size: tuple[int, int],
                       zoom: np.ndarray | None = None, principal_point: np.ndarray | None = None) -> FocalEstimate:
        """Step 2: the focal length that best explains all person-frames.

        Args:
            obs: Observations.
            structure: Output of :meth:`fit_structure`.
            image_size: (width, height) pixels.
            zoom: (M,) zoom of each observation's frame relative to the shot's start
                (``None``: 1). The estimate is then the focal at zoom 1.
            principal_point: (2,) pixels (``None``: the image centre).
        """
        width, height = image_size
        dt = self.body.dtype
        grid = focal_grid(width, height, *self.fov_range_deg)
        pp = principal_point_or_centre(image_size, principal_point, dt)
        uv = torch.as_tensor(obs.keypoints2d[..., :2], dtype=dt)
        w = self._weights2d(obs)
        z = torch.ones(len(obs), dtype=dt) if zoom is None else torch.as_tensor(zoom, dtype=dt)
        f = torch.as_tensor(grid, dtype=dt)[None] * z[:, None]  # (M, F)
        # The fitted body is seen along the ray through the person, which depends on f.
        ray = ray_rotation(self._centre(obs)[:, None], f, pp)  # (M, F, 3, 3)
        pts = self._camera_points(structure)[:, None] @ ray.transpose(-1, -2)  # (M, F, K, 3)
        box_h = np.maximum(obs.bbox_xyxy[:, 3] - obs.bbox_xyxy[:, 1], 1.0)
        pixel_std = torch.as_tensor(self.keypoint_std_rel * box_h, dtype=dt)
        with torch.no_grad():
            t = solve_translation(pts, uv, w, f, pp)
            cost = reprojection_nll(pts, t, uv, w, f, pp, pixel_std, self.depth_std_m).numpy()  # (M, F)
        usable = (w > 0).sum(1).numpy() >= 6
        norm = normalise_costs(cost)  # each person-frame votes with the same weight
        voters = norm[usable] if usable.any() else norm
        pooled = voters.sum(0)
        per_frame: dict[int, float] = {}
        for fi in np.unique(obs.frame_index):
            sel = (obs.frame_index == fi) & usable
            if sel.any():
                per_frame[int(fi)] = refine_minimum(grid, norm[sel].sum(0)) * float(z[np.argmax(sel)])
        focal, prior_used = focal_with_prior(grid, voters, width, self.focal_prior)
        return FocalEstimate(focal, per_frame, grid, pooled, refine_minimum(grid, pooled) if prior_used else None)

    def __call__(self, obs: PersonFrames, focal_px: float, image_size: tuple[int, int],
                 structure: Structure | None = None, zoom: np.ndarray | None = None,
                 principal_point: np.ndarray | None = None) -> BodyFit:
        """Fits all person-frames of a chunk at a known focal length.

        Args:
            obs: Observations of the chunk.
            focal_px: The shot's focal length, pixels.
            image_size: (width, height) pixels.
            structure: Output of :meth:`fit_structure` when already computed.
            zoom: (M,) zoom of each observation's frame; its focal is ``focal_px * zoom``.
            principal_point: (2,) pixels (``None``: the image centre).
        """
        pp = principal_point_or_centre(image_size, principal_point, self.body.dtype)
        if len(obs) == 0:
            return self._empty(focal_px, pp)
        structure = structure if structure is not None else self.fit_structure(obs)
        pose, orient, shape = structure.pose, structure.orient, structure.shape
        dt = self.body.dtype
        z = torch.ones(len(obs), dtype=dt) if zoom is None else torch.as_tensor(zoom, dtype=dt)
        f = float(focal_px) * z[:, None]  # (M, 1): each observation's focal
        ray = ray_rotation(self._centre(obs), f[:, 0], pp)
        orient = roma.rotmat_to_rotvec(ray @ roma.rotvec_to_rotmat(orient))
        uv = torch.as_tensor(obs.keypoints2d[..., :2], dtype=dt)
        w2 = self._weights2d(obs)
        with torch.no_grad():
            transl0 = solve_translation(self._camera_points(Structure(pose, orient, shape)), uv, w2, f, pp)[:, 0]
        lm = self._landmarks(obs)
        w3 = 0.2 + 0.8 * torch.as_tensor(obs.keypoints2d[..., 2], dtype=dt)
        w3[:, 19:21] = 0.0
        box_h = torch.as_tensor(np.maximum(obs.bbox_xyxy[:, 3] - obs.bbox_xyxy[:, 1], 1.0), dtype=dt)
        free = torch.as_tensor(self.body.fit_bone_index)
        theta = pose[:, free].clone().requires_grad_(True)
        omega = orient.clone().requires_grad_(True)
        # Depth is optimised as log(Tz) so that steps are relative.
        txy = transl0[:, :2].clone().requires_grad_(True)
        log_tz = transl0[:, 2].log().clone().requires_grad_(True)
        pairs = consecutive_pairs(obs.track_id, obs.frame_index)
        group_rows, group_of = fold_groups(pose, free, np.unique(obs.track_id, return_inverse=True)[1], shape)
        with torch.no_grad():  # the shape and the other bones' pose are held: fold once
            folded = self._rig.fold(self.body, self._linear_rest(shape[group_rows]), pose[group_rows])
        kp_points, kp_fixed = folded.points[group_of], folded.fixed_points[group_of]
        silhouette = self._silhouette_setup(obs, shape, folded, group_of)
        candidates = None  # each mask cell's candidate faces, searched every few silhouette steps
        opt = torch.optim.Adam([{"params": [theta, omega], "lr": 0.02},
                                {"params": [txy, log_tz], "lr": 0.01}])
        for it in range(self.iterations_2d):
            opt.zero_grad()
            transforms = self._rig.transforms(theta, folded, group_of)  # (M, A, 4, 4): fitted bones
            kp = self._rig.apply(transforms, kp_points, kp_fixed)
            rot = roma.rotvec_to_rotmat(omega)
            cam = kp @ rot.transpose(-1, -2) + torch.cat([txy, log_tz.exp()[:, None]], 1)[:, None]
            proj = project(cam, f, pp)
            r = ((proj - uv) ** 2).sum(-1) / box_h[:, None] ** 2
            sigma2 = 0.05**2
            rho = sigma2 * r / (r + sigma2)
            loss2d = ((rho * w2).sum(1) / w2.sum(1).clamp(min=1e-9)).mean() / sigma2
            # The landmarks are in the axes of the ray through the person (as the detector
            # saw them): the body is compared with them turned back into those axes.
            lm_loss = self._structure_loss(kp, omega, lm, w3, ray)
            loss = loss2d + self.landmark_weight * lm_loss / 0.05**2 + self._priors(theta, pairs)
            if silhouette is not None and it >= self.iterations_2d - self.silhouette_iterations:
                t = torch.cat([txy, log_tz.exp()[:, None]], 1)
                if (it - self.iterations_2d + self.silhouette_iterations) % self.silhouette_search_every == 0:
                    candidates = None
                iou, candidates = silhouette_iou(silhouette, transforms, rot, t, f, pp, candidates)
                loss = loss + self.silhouette_weight * (1.0 - iou).mean()
            loss.backward()
            opt.step()
        with torch.no_grad():
            pose = with_free(pose, free, theta)
            orient = omega
            transl = torch.cat([txy, log_tz.exp()[:, None]], 1)
            fit = self._assemble(obs, pose, orient, transl, shape, float(focal_px), f, pp)
        for tid in np.unique(obs.track_id):
            last = np.nonzero(obs.track_id == tid)[0][np.argmax(obs.frame_index[obs.track_id == tid])]
            self._warm[int(tid)] = pose[last].clone()
        return fit

    # ---------------------------------------------------------------- internals
    def _silhouette_setup(self, obs: PersonFrames, shape: torch.Tensor, folded: FoldedRest,
                          group_of: torch.Tensor) -> SilhouetteTargets | None:
        """The silhouette term's targets (``None`` when no person-frame has a usable
        mask or the term is off); the coarse mesh is built once per estimator."""
        if self.silhouette_weight <= 0 or self.silhouette_iterations <= 0 or obs.masks is None:
            return None
        if self._coarse is None:  # the topology is the same for every shape
            body, dt = self.body, self.body.dtype
            with torch.no_grad():
                rest_v = body.vertices(torch.zeros(1, body.num_bones, 3, dtype=dt), self._rest)[0].double().numpy()
            self._coarse = coarse_mesh(rest_v, body.faces, self.silhouette_mesh_cell_m)
        return silhouette_targets(self.body, self._rig, self._coarse, obs, shape, folded, group_of)

    def _weights2d(self, obs: PersonFrames) -> torch.Tensor:
        conf = torch.as_tensor(obs.keypoints2d[..., 2], dtype=self.body.dtype)
        return torch.where(conf >= self.min_keypoint_conf, conf, torch.zeros_like(conf))

    def _centre(self, obs: PersonFrames) -> torch.Tensor:
        """(M, 2) pixel through which the detector looked at each person."""
        return torch.as_tensor(detector_centre(obs.keypoints2d, obs.bbox_xyxy), dtype=self.body.dtype)

    def _landmark_lifter(self, landmarks: str) -> LandmarkLifter | None:
        """The network behind ``landmarks`` (see :meth:`fit_structure`), ``None`` for the
        detector's own."""
        if landmarks == "pose":
            return self.lifter
        if landmarks == "focal":
            return self.focal_lifter
        if landmarks == "detector":
            return None
        raise ValueError(f"landmarks must be 'pose', 'focal' or 'detector', not {landmarks!r}")

    def _landmarks(self, obs: PersonFrames, landmarks: str = "pose") -> torch.Tensor:
        """(M, 23, 3) the relative 3D landmarks the body is tied to: the detector's, or
        a lifter's correction of them (see :meth:`fit_structure`), times the track's
        scale."""
        lm = obs.landmarks3d
        lifter = self._landmark_lifter(landmarks)
        if lifter is not None:
            if self._lifted is None or self._lifted[0] is not obs or self._lifted[1] is not lifter:
                corrected = lifter.correct(obs.keypoints2d, obs.bbox_xyxy, lm)  # once per window
                # The keypoint lifter's poses (people too small for BlazePose) are not BlazePose's to correct.
                corrected[obs.lifted] = lm[obs.lifted] - 0.5 * (lm[obs.lifted, 11] + lm[obs.lifted, 12])[:, None]
                self._lifted = (obs, lifter, corrected)
            lm = self._lifted[2]
        lm = torch.as_tensor(lm, dtype=self.body.dtype)
        if self._scales:
            scale = torch.as_tensor([self.track_scale(t) for t in obs.track_id], dtype=lm.dtype)
            lm = lm * scale[:, None, None]
        return lm

    def _initial_pose(self, track_id: np.ndarray) -> torch.Tensor:
        pose = torch.zeros(len(track_id), self.body.num_bones, 3, dtype=self.body.dtype)
        for i, tid in enumerate(track_id):
            warm = self._warm.get(int(tid))
            if warm is not None:
                pose[i] = warm
        return pose

    def _initial_orient(self, landmarks: torch.Tensor) -> torch.Tensor:
        """Orientation aligning the rest torso (shoulders, hips) to the landmarks."""
        with torch.no_grad():
            if self._rest_torso is None:  # the rest skeleton's torso: the same for every call
                kp, _ = self.body.skeleton(torch.zeros(1, self.body.num_bones, 3, dtype=self.body.dtype), self._rest)
                self._rest_torso = kp[0, _TORSO]
            src = self._rest_torso.expand(len(landmarks), -1, -1)
            dst = landmarks[:, _TORSO]
            src = src - src.mean(1, keepdim=True)
            dst = dst - dst.mean(1, keepdim=True)
            rot = roma.rigid_points_registration(src, dst)[0]
        return roma.rotmat_to_rotvec(rot)

    def _camera_points(self, s: Structure) -> torch.Tensor:
        """(M, 23, 3) keypoints rotated into camera axes, relative to the root."""
        with torch.no_grad():
            kp, _ = self.body.skeleton(s.pose, self._linear_rest(s.shape))
            return kp @ roma.rotvec_to_rotmat(s.orient).transpose(-1, -2)

    @staticmethod
    def _structure_loss(kp: torch.Tensor, omega: torch.Tensor, lm: torch.Tensor, w: torch.Tensor,
                        ray: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted mean squared distance of the hip-centred body keypoints ``kp`` turned
        by ``omega`` (and back into the ray's axes by ``ray``, (M, 3, 3), if given) from
        the hip-centred landmarks ``lm``, metres²."""
        rot = roma.rotvec_to_rotmat(omega)
        cam = kp @ rot.transpose(-1, -2)
        if ray is not None:
            cam = cam @ ray  # camera axes -> the ray's: R_rayᵀ x for each (row) point
        cam = cam - 0.5 * (cam[:, LEFT_HIP] + cam[:, RIGHT_HIP])[:, None]
        target = lm - 0.5 * (lm[:, LEFT_HIP] + lm[:, RIGHT_HIP])[:, None]
        sq = ((cam - target) ** 2).sum(-1)
        return ((sq * w).sum(1) / w.sum(1).clamp(min=1e-9)).mean()

    def _priors(self, theta: torch.Tensor, pairs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        loss = self.pose_prior_weight * (theta**2).sum((1, 2)).mean()
        a, b = pairs
        if len(a):
            loss = loss + self.temporal_weight * ((theta[a] - theta[b]) ** 2).sum((1, 2)).mean()
        return loss

    def _assemble(self, obs: PersonFrames, pose: torch.Tensor, orient: torch.Tensor, transl: torch.Tensor,
                  shape: torch.Tensor, focal: float, focal_each: torch.Tensor, pp: torch.Tensor) -> BodyFit:
        kp_cam, joints_cam = self.placer.camera_skeleton(pose, orient, transl, shape)
        uv = torch.as_tensor(obs.keypoints2d[..., :2], dtype=kp_cam.dtype)
        w = self._weights2d(obs)
        err = ((project(kp_cam, focal_each, pp) - uv) ** 2).sum(-1).sqrt()
        n_used = (w > 0).sum(1)
        fit_error = ((err * w).sum(1) / w.sum(1).clamp(min=1e-9)).numpy()
        box_h = np.maximum(obs.bbox_xyxy[:, 3] - obs.bbox_xyxy[:, 1], 1.0)
        rel = fit_error / box_h
        fit_ok = (n_used.numpy() >= 6) & (rel < 0.1)
        mean_conf = obs.keypoints2d[:, :17, 2].mean(1)
        confidence = np.where(fit_ok, mean_conf * np.exp(-rel / 0.05), 0.0)
        return BodyFit(
            body_model=self.body.name,
            frame_index=obs.frame_index.astype(np.int64),
            track_id=obs.track_id.astype(np.int64),
            global_orient=orient.numpy().astype(np.float32),
            body_pose=pose.numpy().astype(np.float32),
            shape=shape.numpy().astype(np.float32),
            transl=transl.numpy().astype(np.float32),
            pelvis=(0.5 * (kp_cam[:, LEFT_HIP] + kp_cam[:, RIGHT_HIP])).numpy().astype(np.float32),
            joints3d=joints_cam.numpy().astype(np.float32),
            keypoints3d=kp_cam[:, :17].numpy().astype(np.float32),
            focal_px=float(focal),
            principal_point=pp.numpy().astype(np.float32),
            fit_error_px=fit_error.astype(np.float32),
            confidence=confidence.astype(np.float32),
            fit_ok=fit_ok,
        )

    def _empty(self, focal_px: float, pp: torch.Tensor) -> BodyFit:
        j, s = self.body.num_bones, len(self.body.shape_names)
        z = np.zeros
        return BodyFit(self.body.name, z(0, np.int64), z(0, np.int64), z((0, 3), np.float32),
                       z((0, j, 3), np.float32), z((0, s), np.float32), z((0, 3), np.float32),
                       z((0, 3), np.float32), z((0, j, 3), np.float32), z((0, 17, 3), np.float32),
                       float(focal_px), pp.numpy().astype(np.float32),
                       z(0, np.float32), z(0, np.float32), z(0, bool))
