"""Builds the stages from the typed config: the one place their settings come from.

The command line, ``bench/`` and ``train/`` build their perceiver, tracker and
estimator here, so all of them run the same perception and fitting as a user's run
(the stages' own keyword defaults equal the config's, which ``tests/test_config.py``
checks, but a caller should not rely on two copies staying equal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import EstimationConfig, PerceptionConfig, TrackingConfig

if TYPE_CHECKING:
    import torch

    from meshstream.models.body import BodyModel
    from meshstream.models.estimator import BodyEstimator
    from meshstream.models.lifter import LandmarkLifter
    from meshstream.models.perception import PersonPerceiver
    from meshstream.tracking.tracker import PersonTracker


def build_perceiver(pc: PerceptionConfig) -> PersonPerceiver:
    """The person detector and landmarker (MediaPipe + HOG) of ``pc``."""
    from meshstream.models.perception import PersonPerceiver

    return PersonPerceiver(max_persons=pc.max_persons, detect_every=pc.detect_every, use_hog=pc.use_hog,
                           crop_size=pc.crop_size, min_pose_score=pc.min_pose_score, masks=pc.masks)


def build_tracker(tc: TrackingConfig, first_id: int = 1) -> PersonTracker:
    """The multi-person tracker of ``tc``; new tracks are numbered from ``first_id``."""
    from meshstream.tracking.tracker import PersonTracker

    return PersonTracker(high_score=tc.high_score, low_score=tc.low_score, min_hits=tc.min_hits,
                         reid_s=tc.reid_s, iou_gate=tc.iou_gate, first_id=first_id)


def load_lifters(ec: EstimationConfig) -> tuple[LandmarkLifter | None, LandmarkLifter | None]:
    """The estimator's landmark lifters from the config: (the pose's, the focal
    search's). ``None`` stands for BlazePose's landmarks as given. With
    ``focal_landmarks=pose_lifter`` both are the same object, so one structure fit
    serves both (``BodyEstimator.fit_structures``)."""
    from meshstream.models.lifter import RELIEF_WEIGHTS, LandmarkLifter

    pose = LandmarkLifter.load() if ec.lifter else None
    if ec.focal_landmarks == "relief_lifter":
        return pose, LandmarkLifter.load(RELIEF_WEIGHTS)
    if ec.focal_landmarks == "pose_lifter":
        return pose, pose or LandmarkLifter.load()
    return pose, None


def build_estimator(ec: EstimationConfig, body: BodyModel, base_shape: torch.Tensor | None = None) -> BodyEstimator:
    """The body and camera estimator of ``ec`` on ``body``, lifters loaded.

    Args:
        ec: Estimation settings.
        body: The body model.
        base_shape: (1, S) the shape new tracks start from (``None``: the average
            body; a run with a child's known height passes a child's).
    """
    from meshstream.models.estimator import BodyEstimator

    pose_lifter, focal_lifter = load_lifters(ec)
    return BodyEstimator(body, iterations_3d=ec.iterations_3d, iterations_2d=ec.iterations_2d,
                         min_keypoint_conf=ec.min_keypoint_conf, fov_range_deg=tuple(ec.fov_range_deg),
                         silhouette_weight=ec.silhouette_weight, silhouette_iterations=ec.silhouette_iterations,
                         silhouette_search_every=ec.silhouette_search_every, lifter=pose_lifter,
                         focal_lifter=focal_lifter, base_shape=base_shape)
