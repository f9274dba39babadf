"""The differentiable soft-silhouette rasterizer, the mask grids it is compared with,
and the accuracy metrics."""

from __future__ import annotations

import numpy as np
import pytest
import roma
import torch

from meshstream.models import metrics as M
from meshstream.models.silhouette_term import mask_grid
from meshstream.models.rasterizer import rasterize
from meshstream.models.soft_rasterizer import coarse_mesh, nearest_faces, pixel_grid, soft_iou, soft_silhouette


@pytest.fixture(scope="module")
def standing(body):
    """A rest-pose body 3 m in front of a 500 px camera, its coarse mesh and grid."""
    v = body.vertices(torch.zeros(1, body.num_bones, 3), body.rest(body.default_shape(1)))[0].double().numpy()
    cam = v @ body.upright_facing_camera.T + [0.2, 0.1, 3.0]
    uv = 500.0 * cam[:, :2] / cam[:, 2:] + [320.0, 240.0]
    full = rasterize(np.concatenate([uv, cam[:, 2:]], 1), body.faces, 480, 640).mask
    coarse = coarse_mesh(v, body.faces, 0.05)
    return v, uv, full, coarse


def _grid(full: np.ndarray, size: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    ys, xs = np.nonzero(full)
    side = 1.2 * max(xs.max() - xs.min(), ys.max() - ys.min())
    origin = torch.tensor([[(xs.min() + xs.max() - side) / 2, (ys.min() + ys.max() - side) / 2]], dtype=torch.float32)
    cell = torch.tensor([side / size], dtype=torch.float32)
    centres = np.floor(pixel_grid(origin, cell, size)[0].numpy()).astype(int)
    hard = full[centres[:, 1], centres[:, 0]].reshape(size, size)
    return origin, cell, hard


def test_coarse_mesh_keeps_the_silhouette(standing, body, measured):
    v, uv, full, coarse = standing
    assert 400 < len(coarse.vertex_index) < 1500 and len(np.unique(coarse.vertex_index)) == len(coarse.vertex_index)
    assert coarse.faces.max() < len(coarse.vertex_index)
    sub = np.concatenate([uv, np.full((len(uv), 1), 3.0)], 1)[coarse.vertex_index]
    mask = rasterize(sub, coarse.faces, 480, 640).mask
    assert measured("coarse_iou", (mask & full).sum() / (mask | full).sum()) > 0.93


def test_soft_silhouette_agrees_with_the_hard_rasterizer(standing, measured):
    """Thresholded at 0.5 the soft silhouette is the exact z-buffer silhouette (of the
    coarse mesh) at the grid's cell centres; it is not dilated."""
    v, uv, full, coarse = standing
    sub = np.concatenate([uv, np.full((len(uv), 1), 3.0)], 1)[coarse.vertex_index]
    coarse_full = rasterize(sub, coarse.faces, 480, 640).mask
    origin, cell, hard = _grid(coarse_full, 64)
    soft = soft_silhouette(torch.tensor(uv[coarse.vertex_index], dtype=torch.float32)[None],
                           torch.as_tensor(coarse.faces), origin, cell, 64)[0].numpy()
    mine = soft > 0.5
    assert measured("soft_hard_iou", (mine & hard).sum() / (mine | hard).sum()) > 0.976  # measured 0.984
    # no dilation or erosion
    assert measured("area_diff_cells", abs(int(mine.sum()) - int(hard.sum()))) < 0.03 * hard.sum()
    assert (measured("soft_inside_mean", soft[hard].mean()) > 0.968  # measured 0.979 and 0.022
            and measured("soft_outside_mean", soft[~hard].mean()) < 0.034)



def test_faces_chosen_among_earlier_candidates_render_as_a_fresh_search(standing, measured):
    """Cells choose their 8 faces among 32 candidates searched a few steps earlier. At the
    search's position that is the fresh search; after the body moved by a fifth of a
    cell along x and y (on the sample clip, 95 % of the refinement's vertices move less,
    0.13 cells, between two searches) the silhouette is a fresh search's within 0.002
    of IoU; 8 candidates (the old faces as they were) lose 0.03."""
    v, uv, full, coarse = standing
    origin, cell, hard = _grid(full, 16)
    target = torch.as_tensor(hard[None], dtype=torch.float32)
    faces = torch.as_tensor(coarse.faces)
    base = torch.tensor(uv[coarse.vertex_index], dtype=torch.float32)[None]
    candidates = nearest_faces(base, faces, origin, cell, 16, nearest=32)
    assert candidates.shape == (1, 256, 32) and candidates.dtype == torch.int64
    index = nearest_faces(base, faces, origin, cell, 16, candidates=candidates)
    assert index.shape == (1, 256, 8)
    fresh = soft_silhouette(base, faces, origin, cell, 16)
    assert torch.allclose(soft_silhouette(base, faces, origin, cell, 16, face_index=index), fresh, atol=1e-6)
    moved = base + cell / 5
    now = soft_silhouette(moved, faces, origin, cell, 16)
    index = nearest_faces(moved, faces, origin, cell, 16, candidates=candidates)
    reused = soft_silhouette(moved, faces, origin, cell, 16, face_index=index)
    # Measured 7e-6 and 4e-5: the same image up to float noise.
    assert measured("reused_iou_diff", abs(float(soft_iou(reused, target)) - float(soft_iou(now, target)))) < 1e-4
    assert measured("reused_mean_abs_diff", float((reused - now).abs().mean())) < 1e-4
    stale = soft_silhouette(moved, faces, origin, cell, 16, face_index=nearest_faces(base, faces, origin, cell, 16))
    assert measured("stale_iou_loss", float(soft_iou(now, target) - soft_iou(stale, target))) > 0.09  # measured 0.14
    # the body did move
    assert measured("moved_iou_loss", float(soft_iou(fresh, target) - soft_iou(now, target))) > 0.042  # measured 0.063


def test_soft_iou_pulls_a_shifted_body_back_onto_its_mask(standing, measured):
    """Gradient descent on (1 - soft IoU) over a 2D offset recovers a 6 px shift."""
    v, uv, full, coarse = standing
    origin, cell, hard = _grid(full, 24)
    target = torch.as_tensor(hard[None], dtype=torch.float32)
    base = torch.tensor(uv[coarse.vertex_index], dtype=torch.float32)[None]
    faces = torch.as_tensor(coarse.faces)
    shift = torch.tensor([6.0, -5.0], requires_grad=True)
    opt = torch.optim.Adam([shift], lr=0.5)
    start = float(soft_iou(soft_silhouette(base + shift.detach(), faces, origin, cell, 24), target))
    for _ in range(60):
        opt.zero_grad()
        loss = 1 - soft_iou(soft_silhouette(base + shift, faces, origin, cell, 24), target).mean()
        loss.backward()
        opt.step()
    assert measured("shift_residual_px", shift.detach().norm()) < 2.0, shift
    assert 1 - loss.item() > start


def test_mask_grid_samples_coverage_and_flags_cells_outside_the_frame():
    mask = np.zeros((100, 200), bool)
    mask[20:80, 150:200] = True  # a person cut by the right edge
    coverage, origin, cell, valid = mask_grid(mask, np.array([150.0, 20.0, 200.0, 80.0]), 16, margin=1.25)
    assert cell == pytest.approx(75 / 16) and np.allclose(origin, [137.5, 12.5])
    centres = origin[0] + (np.arange(16) + 0.5) * cell
    assert np.array_equal(valid[0] > 0, centres < 200)  # columns right of the frame are invalid
    inside = (centres[None, :] > 152) & (centres[None, :] < 198)
    rows = origin[1] + (np.arange(16) + 0.5) * cell
    inside = inside & ((rows > 22) & (rows < 78))[:, None]
    assert coverage[inside].min() > 0.99
    assert coverage[:, centres - cell / 2 >= 200].max() == 0  # cells wholly outside read nothing


def test_metrics_follow_their_definitions():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(5, 17, 3)) * 0.3 + [0, 0, 3]
    rot = roma.random_rotmat(5, dtype=torch.float64).numpy()
    moved = 1.3 * gt @ rot.transpose(0, 2, 1) + [0.5, -0.2, 1.0]
    assert np.allclose(M.pa_mpjpe(moved, gt), 0.0, atol=1e-6)  # similarity-invariant
    shifted = gt + [0.1, 0.0, 0.0]
    assert np.allclose(M.mpjpe(shifted, gt), 0.0, atol=1e-9)  # hip-aligned
    bent = gt.copy()
    bent[:, 0] += [0.0, 0.17, 0.0]  # one joint of 17 off by 170 mm -> 10 mm
    assert np.allclose(M.mpjpe(bent, gt), 10.0)
    pel, pel_gt = np.array([[0.1, 0.2, 3.5]]), np.array([[0.1, -0.1, 3.0]])
    assert M.tz_error(pel, pel_gt)[0] == pytest.approx(0.5)
    assert M.inverse_tz_error(pel, pel_gt)[0] == pytest.approx(1 / 3.0 - 1 / 3.5)
    assert M.txy_error(pel, pel_gt)[0] == pytest.approx(0.3)
    assert M.focal_error(550.0, 500.0) == pytest.approx(0.1)
    t = np.arange(10, dtype=np.float64)[:, None, None]
    linear = gt[:1] + t * [0.01, 0.0, 0.02]  # constant velocity: no acceleration error
    assert np.allclose(M.accel_error(linear, gt[:1].repeat(10, 0)), 0.0)
    a = np.zeros((1, 4, 4), bool)
    a[0, :2] = True
    b = np.zeros((1, 4, 4), bool)
    b[0, 1:3] = True
    assert M.silhouette_iou(a, b)[0] == pytest.approx(4 / 12)
    verts = rng.normal(size=(2, 30, 3))
    assert np.allclose(M.pve(verts + 1.0, verts, pel.repeat(2, 0) + 1.0, pel.repeat(2, 0)), 0.0)
