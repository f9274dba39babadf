"""Forward kinematics over the fitted bones only (models/reduced_rig.py) against the
body model's full rig: keypoints, mesh points and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meshstream.models.reduced_rig import ReducedRig


def _posed(body, rows: int, held_scale: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(the held pose (rows, J, 3), the fitted bones' pose (rows, A, 3), the full pose)."""
    g = torch.Generator().manual_seed(seed)
    free = torch.as_tensor(body.fit_bone_index)
    held = held_scale * torch.randn(rows, body.num_bones, 3, generator=g)
    held[:, free] = 0.0
    theta = 0.6 * torch.randn(rows, len(free), 3, generator=g)
    return held, theta, held.index_copy(1, free, theta)


def test_keypoints_and_gradients_match_the_full_rig(body):
    """At Anny's average body the folded rig gives the full rig's keypoints to float
    precision, toes and fingers held in random poses, with the same gradients."""
    rig = ReducedRig(body.bone_parents, body.fit_bone_index)
    assert len(rig.free) == 19 and sum(len(level) for level in rig.levels) == 19
    rest = body.linear_rest()(body.default_shape(1))
    held, theta, full = _posed(body, 6, 0.3, seed=0)
    ref, _ = body.skeleton(full, rest)
    folded = rig.fold(body, body.linear_rest()(body.default_shape(6)), held)
    assert (rig.keypoints(theta, folded) - ref).abs().max() < 1e-5
    # One fold shared by rows: each row picks its own.
    one = rig.fold(body, rest, held[2:3])
    assert (rig.keypoints(theta[2:3].expand(3, -1, -1), one, torch.zeros(3, dtype=torch.long)) - ref[2]).abs().max() < 1e-5
    # Selected rows of a fold are those rows' folds.
    rows = torch.tensor([4, 1])
    assert (rig.keypoints(theta[rows], folded.select(rows)) - ref[rows]).abs().max() < 1e-5

    fast = theta.clone().requires_grad_(True)
    (rig.keypoints(fast, folded) ** 2).sum().backward()
    slow = theta.clone().requires_grad_(True)
    kp, _ = body.skeleton(held.index_copy(1, torch.as_tensor(body.fit_bone_index), slow), rest)
    (kp**2).sum().backward()
    assert torch.allclose(fast.grad, slow.grad, rtol=1e-3, atol=1e-4)


def test_other_shapes_agree_too(body):
    """Away from the average body too (phenotypes 0.15-0.85): the linearised rest's bone
    rotations are brought back onto rotations (they drift by about 0.3 %, which made
    the two rigs differ by up to 4 mm)."""
    rig = ReducedRig(body.bone_parents, body.fit_bone_index)
    shape = body.default_shape(4)
    fit = [body.shape_names.index(n) for n in body.shape_fit_names]
    shape[:, fit] = torch.tensor([[0.2, 0.8, 0.2, 0.8], [0.8, 0.2, 0.8, 0.2], [0.15, 0.85, 0.85, 0.15], [0.5, 0.5, 0.5, 0.5]])
    rest = body.linear_rest()(shape)
    rot = rest.rest_bone_poses[..., :3, :3]
    assert (rot @ rot.transpose(-1, -2) - torch.eye(3)).abs().max() < 1e-5
    held, theta, full = _posed(body, 4, 0.1, seed=1)
    err = (rig.keypoints(theta, rig.fold(body, rest, held)) - body.skeleton(full, rest)[0]).norm(dim=-1)
    assert err.max() < 1e-5, err.amax(1)


def test_folded_mesh_points_skin_as_the_full_rig(body):
    """Mesh vertices folded onto the fitted bones (as the silhouette term renders them)
    are the full rig's linear-blend skinning of them."""
    rig = ReducedRig(body.bone_parents, body.fit_bone_index)
    rest = body.linear_rest()(body.default_shape(1))
    held, theta, full = _posed(body, 2, 0.2, seed=2)
    index = torch.as_tensor(np.arange(0, body.num_vertices, 97))
    with torch.no_grad():
        verts = body.vertices(torch.zeros(1, body.num_bones, 3), body.rest(body.default_shape(1)))[:, index]
    homog = torch.cat([verts, torch.ones_like(verts[..., :1])], -1)
    bone_points = body.skin_weights[index][None, :, :, None] * homog[:, :, None]  # (1, N, J, 4)
    transforms, _ = body.bone_transforms(full, rest)
    ref = torch.einsum("vj,bjxy,bvy->bvx", body.skin_weights[index], transforms[..., :3, :], homog.expand(2, -1, -1))
    folded = rig.fold(body, body.linear_rest()(body.default_shape(2)), held)
    points, fixed = rig.fold_points(folded, bone_points)
    assert points.shape == (2, len(index), 19, 4) and fixed.shape == (2, len(index), 3)
    assert (ReducedRig.apply(rig.transforms(theta, folded), points, fixed) - ref).abs().max() < 1e-5


def test_a_rig_whose_frames_are_unknown_is_refused(body, monkeypatch):
    monkeypatch.setattr(body._model, "pose_parameterization", "world")
    with pytest.raises(NotImplementedError, match="world"):
        body.delta_frames(body.linear_rest()(body.default_shape(1)))


def test_gradients_are_the_same_on_every_run(body):
    """Rows share folds (each track's), so gathers repeat indices; their gradients must
    not depend on the threads' order of accumulation (plain indexing's did: focal
    estimates differed between identical runs in the 6th digit)."""
    rig = ReducedRig(body.bone_parents, body.fit_bone_index)
    held, theta, _ = _posed(body, 40, 0.0, seed=4)
    rows = torch.arange(40) % 2
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grads = []
        for _ in range(3):
            shape = body.default_shape(2).requires_grad_(True)
            pose = theta.clone().requires_grad_(True)
            kp = rig.keypoints(pose, rig.fold(body, body.linear_rest()(shape), held[:2]), rows)
            (kp**2).sum().backward()
            grads.append((shape.grad, pose.grad))
    finally:
        torch.set_num_threads(threads)
    for shape_grad, pose_grad in grads[1:]:
        assert torch.equal(shape_grad, grads[0][0]) and torch.equal(pose_grad, grads[0][1])
