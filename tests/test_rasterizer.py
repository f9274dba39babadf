"""The CPU z-buffer rasterizer against analytic answers."""

import numpy as np

from meshstream.models.rasterizer import rasterize, shade_faces


def _inside(v, xs, ys):
    def edge(a, b):
        return (b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0])

    e = [edge(v[0], v[1]), edge(v[1], v[2]), edge(v[2], v[0])]
    return ((e[0] >= 0) & (e[1] >= 0) & (e[2] >= 0)) | ((e[0] <= 0) & (e[1] <= 0) & (e[2] <= 0))


def test_triangle_coverage_matches_analytic_pixel_centres():
    v = np.array([[10.2, 10.7, 2.0], [50.5, 12.0, 2.0], [20.0, 40.3, 2.0]])
    r = rasterize(v, np.array([[0, 1, 2]]), 60, 70)
    ys, xs = np.mgrid[0:60, 0:70] + 0.5
    expected = _inside(v, xs, ys)
    assert expected.sum() > 300
    assert np.array_equal(r.mask, expected)
    assert np.allclose(r.depth[r.mask], 2.0, atol=1e-5)
    assert np.all(np.isinf(r.depth[~r.mask]))


def test_depth_is_perspective_correct():
    # A plane z = 1 + x_world seen by a pinhole (f=100, c=50): 1/z is linear in screen space.
    f, c = 100.0, 50.0
    world = np.array([[-0.4, -0.4], [0.4, -0.4], [0.0, 0.4]])
    z = 1.0 + world[:, 0] + 1.0
    verts = np.c_[f * world[:, 0] / z + c, f * world[:, 1] / z + c, z]
    r = rasterize(verts, np.array([[0, 1, 2]]), 100, 100)
    ys, xs = np.nonzero(r.mask)
    u = (xs + 0.5 - c) / f
    # On the plane z = 2 + X with X = u z: z = 2 / (1 - u).
    assert np.allclose(r.depth[ys, xs], 2.0 / (1.0 - u), rtol=1e-4)


def test_nearest_triangle_wins():
    far = np.array([[0, 0, 5.0], [40, 0, 5.0], [0, 40, 5.0]])
    near = np.array([[0, 0, 1.0], [30, 0, 1.0], [0, 30, 1.0]])
    verts = np.concatenate([far, near])
    for faces in ([[0, 1, 2], [3, 4, 5]], [[3, 4, 5], [0, 1, 2]]):
        r = rasterize(verts, np.array(faces), 40, 40)
        near_id = faces.index([3, 4, 5])
        assert r.face[5, 5] == near_id and np.isclose(r.depth[5, 5], 1.0)
        assert r.face[2, 35] == 1 - near_id and np.isclose(r.depth[2, 35], 5.0)


def test_triangles_behind_camera_and_offscreen_are_dropped():
    verts = np.array([[10, 10, -1.0], [20, 10, 1.0], [10, 20, 1.0], [500, 500, 1.0], [600, 500, 1.0], [500, 600, 1.0]])
    r = rasterize(verts, np.array([[0, 1, 2], [3, 4, 5]]), 50, 50)
    assert not r.mask.any()


def test_shading_in_range():
    v = np.array([[-0.1, -0.1, 2.0], [0.2, -0.1, 2.0], [-0.1, 0.2, 2.0]])
    s = shade_faces(v, np.array([[0, 1, 2]]))
    assert 0.99 <= s[0] <= 1.0  # facing the camera: full light
    edge_on = np.array([[0, 0, 2.0], [0, 1, 2.0], [0, 0, 3.0]]) + [0.5, 0, 0]
    assert shade_faces(edge_on, np.array([[0, 1, 2]]))[0] < 0.7  # grazing: mostly ambient


def test_back_face_culling_keeps_counter_clockwise_faces():
    ccw = np.array([[10, 10, 1.0], [10, 30, 1.0], [30, 10, 1.0]])  # counter-clockwise on screen (y down)
    cw = ccw[[0, 2, 1]]
    assert rasterize(ccw, np.array([[0, 1, 2]]), 40, 40, cull_back_faces=True).mask.any()
    assert not rasterize(cw, np.array([[0, 1, 2]]), 40, 40, cull_back_faces=True).mask.any()
    assert rasterize(cw, np.array([[0, 1, 2]]), 40, 40).mask.any()


def test_culling_does_not_change_a_closed_mesh_image(body):
    import torch

    from meshstream.models.body import MODEL_TO_UPRIGHT_FACING_CAMERA

    v = body.vertices(torch.zeros(1, body.num_bones, 3), body.rest(body.default_shape(1)))[0].numpy()
    v = v @ MODEL_TO_UPRIGHT_FACING_CAMERA.T + [0.0, 0.2, 3.0]
    uvz = np.c_[450 * v[:, :2] / v[:, 2:] + [320, 240], v[:, 2]]
    full = rasterize(uvz, body.faces, 480, 640)
    culled = rasterize(uvz, body.faces, 480, 640, cull_back_faces=True)
    assert full.mask.sum() > 5000
    assert (full.mask != culled.mask).mean() < 1e-3
    assert np.array_equal(full.face[culled.mask], culled.face[culled.mask])


def test_overlay_inset_puts_people_at_their_metric_position():
    from meshstream.export.overlay import draw_inset, track_colour

    img = np.zeros((480, 640, 3), np.uint8)
    kp = np.zeros((17, 3))
    kp[:, 0], kp[:, 2] = 1.0, 4.0  # a person 1 m right, 4 m deep (collapsed skeleton)
    kp[:, 1] = np.linspace(-0.8, 0.8, 17)
    draw_inset(img, [(3, kp)], view="top", size_frac=0.25, extent_m=(-3, 3), depth_m=(0, 8))
    colour = track_colour(3)
    ys, xs = np.nonzero(np.all(img == colour.astype(np.uint8), axis=-1))
    pw = int(0.25 * 640)
    ph = int(pw * 8 / 6)
    assert len(xs) > 5
    # Panel starts at x = 640 - pw - 5, y = 5: x = 1 m is 4/6 across, z = 4 m half-way up.
    assert abs(xs.mean() - (640 - pw - 5 + 4 / 6 * pw)) < 3
    assert abs(ys.mean() - (5 + ph / 2)) < 3


def test_keypoint_drawing_skips_low_confidence():
    from meshstream.export.overlay import draw_keypoints

    img = np.zeros((100, 100, 3), np.uint8)
    kp = np.zeros((33, 3))
    kp[11], kp[13] = [20, 20, 1.0], [80, 80, 1.0]  # left shoulder -> elbow
    kp[12] = [80, 20, 0.1]  # right shoulder, not confident
    draw_keypoints(img, kp, np.array([0, 255, 0]))
    assert img[50, 50, 1] > 0  # on the drawn limb
    assert img[20, 80].sum() == 0  # the low-confidence point is not drawn
