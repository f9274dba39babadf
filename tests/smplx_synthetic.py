"""A synthetic SMPL-X model file for tests (the real files are licensed, never shipped).

It has every key and shape ``smplx.create`` reads from ``SMPLX_*.npz|pkl`` (20 shape
components: 10 betas + 10 expressions, which ``smplx`` accepts with a warning), with
human geometry borrowed from Anny so that fitting real keypoints with it makes sense:
vertices are a random subset of Anny's rest mesh in SMPL-X axes (Y up, facing +Z),
shifted so the rest pelvis is not at the origin (as in the real model), joints are
affine combinations of nearby vertices placed at Anny's bone heads, skin weights are
Anny's merged onto the SMPL-X joints, betas follow Anny's phenotypes, and the vertices
``smplx`` uses as keypoints (nose, eyes, ears, toes, heels) sit at Anny's keypoints.
Pose correctives, hand PCA and face landmarks are random but valid.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

ANNY_TO_SMPLX_AXES = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
PELVIS_OFFSET = np.array([0.003, -0.35, 0.012])  # the real SMPL-X rest pelvis is about here


def _anny_bone(name: str) -> str:
    from meshstream.export.smplx_layout import _anny_bone as mapping

    return mapping(name) or "head"


def build_model(body, seed: int = 0) -> dict[str, np.ndarray]:
    """The arrays of a SMPL-X model file made from an ``AnnyBody``."""
    from smplx.vertex_ids import vertex_ids

    from meshstream.models.smplx_body import SMPLX_JOINT_NAMES, SMPLX_PARENTS

    rng = np.random.default_rng(seed)
    n_v, n_f = 10475, 20908
    dt = body.dtype
    zero = torch.zeros(1, body.num_bones, 3, dtype=dt)
    base_shape = body.default_shape(1)
    rest = body.rest(base_shape)
    anny_v = body.vertices(zero, rest)[0].double().numpy()
    anny_kp, anny_heads = (x[0].double().numpy() for x in body.skeleton(zero, rest))

    def to_smplx(points: np.ndarray) -> np.ndarray:
        return points @ ANNY_TO_SMPLX_AXES.T + PELVIS_OFFSET

    src = rng.permutation(len(anny_v))[:n_v]
    ids = vertex_ids["smplx"]
    kp_vertices = {"nose": "nose", "left_eye": "leye", "right_eye": "reye", "left_ear": "lear", "right_ear": "rear",
                   "left_big_toe": "LBigToe", "right_big_toe": "RBigToe", "left_small_toe": "LSmallToe",
                   "right_small_toe": "RSmallToe", "left_heel": "LHeel", "right_heel": "RHeel"}
    for k, name in enumerate(body.keypoint_names):
        if name in kp_vertices:
            src[int(ids[kp_vertices[name]])] = int(np.argmin(((anny_v - anny_kp[k]) ** 2).sum(1)))
    v_template = to_smplx(anny_v[src])

    # Joints: affine combinations (weights sum to 1) of the 12 nearest vertices.
    regressor = np.zeros((len(SMPLX_JOINT_NAMES), n_v))
    for s, name in enumerate(SMPLX_JOINT_NAMES):
        target = to_smplx(anny_heads[body.bone_names.index(_anny_bone(name))])
        near = np.argsort(((v_template - target) ** 2).sum(1))[:12]
        a = np.vstack([v_template[near].T, np.ones(len(near))])
        regressor[s, near] = np.linalg.lstsq(a, np.append(target, 1.0), rcond=None)[0]

    # Skin weights: each Anny bone goes to the SMPL-X joint of its nearest mapped ancestor.
    mapped = {_anny_bone(n): s for s, n in enumerate(SMPLX_JOINT_NAMES) if n != "jaw"}
    to_joint = np.zeros(body.num_bones, np.int64)
    for b in range(body.num_bones):
        a = b
        while body.bone_names[a] not in mapped:
            a = int(body.bone_parents[a])
        to_joint[b] = mapped[body.bone_names[a]]
    merge = np.zeros((body.num_bones, len(SMPLX_JOINT_NAMES)))
    merge[np.arange(body.num_bones), to_joint] = 1.0
    weights = body.skin_weights.double().numpy()[src] @ merge

    # Betas: Anny's phenotype directions (one beta = 0.15 phenotype units).
    shapedirs = np.zeros((n_v, 3, 20))
    for i, name in enumerate(body.shape_names[:10]):
        shape = base_shape.clone()
        shape[0, i] += 0.1
        moved = body.vertices(zero, body.rest(shape))[0].double().numpy()
        shapedirs[:, :, i] = ((moved - anny_v) / 0.1 * 0.15)[src] @ ANNY_TO_SMPLX_AXES.T
    shapedirs[:, :, 10:] = rng.normal(0.0, 1e-4, (n_v, 3, 10))

    inverse = np.full(len(anny_v), -1)
    inverse[src] = np.arange(n_v)
    faces = inverse[body.faces]
    faces = faces[(faces >= 0).all(1)]
    faces = np.resize(faces, (n_f, 3))

    def orthogonal(n: int) -> np.ndarray:
        return np.linalg.qr(rng.normal(size=(n, n)))[0]

    kintree = np.stack([SMPLX_PARENTS, np.arange(len(SMPLX_PARENTS))]).astype(np.int64)
    kintree[0, 0] = 4294967295  # as in the real files
    bary = rng.random((51, 3))
    return {
        "v_template": v_template.astype(np.float32),
        "f": faces.astype(np.int64),
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": rng.normal(0.0, 1e-5, (n_v, 3, 486)).astype(np.float32),
        "J_regressor": regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree,
        "hands_componentsl": orthogonal(45).astype(np.float32),
        "hands_componentsr": orthogonal(45).astype(np.float32),
        "hands_meanl": np.zeros(45, np.float32),
        "hands_meanr": np.zeros(45, np.float32),
        "lmk_faces_idx": rng.integers(0, n_f, 51).astype(np.int64),
        "lmk_bary_coords": (bary / bary.sum(1, keepdims=True)).astype(np.float32),
    }


def write_model(folder: Path, body, gender: str = "neutral", ext: str = "npz") -> Path:
    """Writes ``folder/SMPLX_<GENDER>.<ext>`` and returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"SMPLX_{gender.upper()}.{ext}"
    data = build_model(body)
    if ext == "npz":
        np.savez(path, **data)
    else:
        with open(path, "wb") as fh:
            pickle.dump(data, fh)
    return path
