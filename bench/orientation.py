"""Does the fitted body keep the orientation of the landmarks it was fitted to?

MPJPE (hip-aligned, camera axes: the body's root orientation counts) of COCO-17
keypoints of matched person-frames, on the real perception output of each scene:

- BlazePose's world landmarks as given (their axes taken for the camera's);
- those landmarks turned into the camera by OpenCV's solvePnP (SQPnP) on the detected
  2D keypoints, at a 60° horizontal view and at the true focal (the baseline of issue
  25: a peer that places the landmarks and stops there);
- the body the estimator fits at the true focal (``BodyEstimator.__call__``, the lifter
  on, as the program runs it).

Prints one row per scene and the mean over person-frames. Scenes as in
``bench/focal_ablation.py`` (whose ``--cache`` it shares).

Usage: python bench/orientation.py [--clips NAME,... | --close N | --random N] [--split dev|val|test] [--cache DIR]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
from focal_ablation import add_scene_arguments, observed, scene_specs

METHODS = ("landmarks as given", "solvePnP at 60°", "solvePnP at the true focal", "fitted at the true focal")


def pnp_placed(landmarks: np.ndarray, keypoints: np.ndarray, focal_px: float, principal_point: np.ndarray,
               min_conf: float = 0.5) -> np.ndarray:
    """Landmarks turned into the camera by solvePnP on their 2D keypoints.

    Args:
        landmarks: (M, 17, 3) hip-centred landmarks, metres.
        keypoints: (M, 17, 3) 2D keypoints, pixels, and confidence.
        focal_px: Focal length, pixels.
        principal_point: (2,) pixels.
        min_conf: Keypoints below this confidence are not used.

    Returns:
        (M, 17, 3) the landmarks rotated into the camera axes (NaN where fewer than 6
        keypoints were usable).
    """
    import cv2

    k = np.array([[focal_px, 0, principal_point[0]], [0, focal_px, principal_point[1]], [0, 0, 1.0]])
    out = np.full(landmarks.shape, np.nan)
    for i, (lm, kp) in enumerate(zip(landmarks.astype(np.float64), keypoints, strict=True)):
        seen = kp[:, 2] >= min_conf
        if seen.sum() < 6:
            continue
        ok, rvec, _ = cv2.solvePnP(lm[seen], kp[seen, :2].astype(np.float64), k, None, flags=cv2.SOLVEPNP_SQPNP)
        if ok:
            out[i] = lm @ cv2.Rodrigues(rvec)[0].T
    return out


def errors(obs, size, gt, estimator) -> dict[str, np.ndarray]:
    """(matched person-frames,) MPJPE of each method, millimetres."""
    from meshstream.models import metrics as M

    person = gt.match(obs.frame_index, obs.bbox_xyxy)
    rows = np.nonzero(person >= 0)[0]
    truth = gt.keypoints3d[person[rows], obs.frame_index[rows]]
    lm, kp = obs.landmarks3d[rows, :17], obs.keypoints2d[rows, :17]
    fit = estimator(obs, gt.focal_px, size, principal_point=gt.principal_point)
    return {
        METHODS[0]: M.mpjpe(lm, truth),
        METHODS[1]: M.mpjpe(pnp_placed(lm, kp, 0.5 * size[0] / math.tan(math.radians(30.0)), gt.principal_point), truth),
        METHODS[2]: M.mpjpe(pnp_placed(lm, kp, gt.focal_px, gt.principal_point), truth),
        METHODS[3]: M.mpjpe(fit.keypoints3d[rows], truth),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scene_arguments(parser)
    args = parser.parse_args()

    from meshstream.models.body import AnnyBody
    from meshstream.stream.config import load_config
    from meshstream.stream.pipeline import build_body, build_estimator

    suite = scene_specs(args)
    config = load_config()
    estimator = build_estimator(config.estimation, *build_body(config.estimation))
    body, work = AnnyBody(), Path(tempfile.mkdtemp(prefix="meshstream-orientation-"))
    pooled: dict[str, list] = {m: [] for m in METHODS}
    print("| clip | " + " | ".join(METHODS) + " |")
    print("|---" + "|---:" * len(METHODS) + "|")
    for spec in suite:
        obs, size, gt = observed(spec, work, body, args.cache)
        if len(obs) == 0 or (gt.match(obs.frame_index, obs.bbox_xyxy) < 0).all():
            print(f"| {spec.name} | no person found |", flush=True)
            continue
        res = errors(obs, size, gt, estimator)
        for m in METHODS:
            pooled[m] += res[m].tolist()
        print(f"| {spec.name} | " + " | ".join(f"{np.nanmean(res[m]):.0f}" for m in METHODS) + " |", flush=True)
    print("| **mean over person-frames (mm)** | " + " | ".join(f"**{np.nanmean(pooled[m]):.1f}**" for m in METHODS)
          + " |")


if __name__ == "__main__":
    main()
