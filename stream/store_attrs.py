"""What a new store says about itself, and the focal a file's metadata gives."""

from __future__ import annotations

import logging

from .container_tags import PLAUSIBLE_FOCAL_35MM, focal_px_from_35mm
from .messages import VideoInfo

log = logging.getLogger(__name__)


def store_attrs(info: VideoInfo, body, config: dict, software_version: str, focal_source: str,
                intrinsics=None) -> dict:
    """The root attributes of a new store (docs/outputs.md lists them)."""
    return {
        "source": str(info.path), "fps": info.fps, "width": info.width, "height": info.height,
        "source_n_frames": info.n_frames,
        "rotation_deg": info.rotation_deg, "codec": info.codec, "body_model": body.name,
        "keypoint_layouts": {"keypoints2d": "blazepose33", "keypoints3d_coco17": "coco17"},
        "joint_names": body.bone_names, "shape_names": body.shape_names,
        "camera_convention": "OpenCV: x right, y down, z forward; metres; pixels",
        "rotation_convention": "axis-angle (radians); global_orient maps the body-model frame "
                               "(Anny: Z up, -Y forward; SMPL-X: Y up, +Z forward) to the camera",
        "transl_convention": "camera-space position of the body model's root joint (the model frame "
                             "has the rest root at its origin); SMPL-X trans = transl - J0(betas)",
        "model_path": str(body.path) if body.path else None,
        "model_up_axis": [float(x) for x in body.up_axis],
        "foot_joint_names": list(body.foot_joint_names),
        "gender": body.gender,
        "config": config, "software_version": software_version, "focal_source": focal_source,
        "focal_35mm": info.focal_35mm, "focal_35mm_basis": info.focal_35mm_basis,
        "intrinsics": None if intrinsics is None else {
            "fx": intrinsics.fx, "fy": intrinsics.fy, "cx": intrinsics.cx, "cy": intrinsics.cy,
            "distortion": list(intrinsics.distortion), "frames_undistorted": not intrinsics.is_ideal},
    }


def metadata_focal(info: VideoInfo, notes: list[str]) -> float | None:
    """Focal in pixels from the file's 35 mm-equivalent focal, if there and plausible
    (else ``None``, with a note where it was there but implausible)."""
    if info.focal_35mm is None:
        return None
    where = "images' EXIF" if info.codec == "images" else "video's metadata"
    if not PLAUSIBLE_FOCAL_35MM[0] <= info.focal_35mm <= PLAUSIBLE_FOCAL_35MM[1]:
        notes.append(f"the {where} gives a {info.focal_35mm:g} mm (35 mm-equivalent) focal length, "
                     f"outside {PLAUSIBLE_FOCAL_35MM[0]:g}-{PLAUSIBLE_FOCAL_35MM[1]:g} mm, so it was "
                     "ignored and the focal estimated")
        return None
    focal = focal_px_from_35mm(info.focal_35mm, info.width, info.height, info.focal_35mm_basis)
    log.info("focal %.1f px from the %s (%g mm, 35 mm-equivalent)", focal, where, info.focal_35mm)
    return focal
