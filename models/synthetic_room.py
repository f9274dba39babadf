"""A box room for synthetic clips: a background whose straight lines the clip's own
camera sees in perspective (used by the vanishing-point focal cue's tests and scenes)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Room:
    """A box room around the camera: a background whose straight lines (floor tiles,
    wall edges, skirting, panel seams) the clip's own camera sees in perspective.

    Coordinates are the level camera's (x right, y down, z forward, metres; the floor is
    ``y = camera_height_m`` of :func:`render_frames`), turned by ``yaw_deg`` about the
    vertical into the room's axes.

    Attributes:
        x_range: (min, max) of the side walls along the room's x axis, metres.
        z_range: (min, max) of the back and far walls along its z axis, metres.
        height_m: Ceiling height above the floor, metres.
        yaw_deg: The room's axes turned from the camera's heading, degrees (0: square on
            to the far wall, which leaves two of its axes' vanishing points at infinity).
        tile_m: Floor tile size, metres (``floor="pitch"``: the width of the mowing stripes).
        seed: Colours of the tiles and walls.
        floor: ``"tiles"`` (a tiled floor), or ``"pitch"``: grass in mowing stripes with
            white lines (touchlines 3 m inside the side walls, a line every 16 m across).
        supersample: Rays per pixel along each axis (antialiasing; 1 for large frames).
    """

    x_range: tuple[float, float] = (-6.0, 6.0)
    z_range: tuple[float, float] = (-3.0, 10.0)
    height_m: float = 3.0
    yaw_deg: float = 30.0
    tile_m: float = 0.6
    seed: int = 0
    floor: str = "tiles"
    supersample: int = 2


def room_image(room: Room, focal_px: float, principal_point: np.ndarray, width: int, height: int,
               world_to_cam: np.ndarray, camera_height_m: float, supersample: int = 2) -> np.ndarray:
    """Ray-casts ``room`` as the camera sees it.

    Args:
        room: The room.
        focal_px: Focal length, pixels.
        principal_point: (2,) pixels.
        width: Image width, pixels.
        height: Image height, pixels.
        world_to_cam: (3, 3) rotation from the level world to the camera.
        camera_height_m: The camera's height above the floor, metres.
        supersample: Rays per pixel along each axis (antialiasing).

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    import cv2

    s = supersample
    u, v = np.meshgrid((np.arange(width * s) + 0.5) / s - 0.5, (np.arange(height * s) + 0.5) / s - 0.5)
    rays = np.stack([(u - principal_point[0]) / focal_px, (v - principal_point[1]) / focal_px, np.ones_like(u)], -1)
    rays = rays @ world_to_cam  # camera -> level world (rows times R is R^T applied)
    yaw = math.radians(room.yaw_deg)
    rx = rays[..., 0] * math.cos(yaw) - rays[..., 2] * math.sin(yaw)  # level world -> room axes
    rz = rays[..., 0] * math.sin(yaw) + rays[..., 2] * math.cos(yaw)
    ry = rays[..., 1]
    big = np.float64(1e9)
    with np.errstate(divide="ignore", invalid="ignore"):
        planes = [  # (distance along the ray, which surface)
            np.where(ry > 0, camera_height_m / ry, big),  # floor
            np.where(ry < 0, (camera_height_m - room.height_m) / ry, big),  # ceiling
            np.where(rx < 0, room.x_range[0] / rx, big), np.where(rx > 0, room.x_range[1] / rx, big),
            np.where(rz < 0, room.z_range[0] / rz, big), np.where(rz > 0, room.z_range[1] / rz, big),
        ]
    dist = np.stack(planes)
    dist[~np.isfinite(dist) | (dist <= 0)] = big
    which = np.argmin(dist, 0)
    t = np.take_along_axis(dist, which[None], 0)[0]
    hx, hy, hz = rx * t, ry * t, rz * t
    up = camera_height_m - hy  # height above the floor
    rng = np.random.default_rng(room.seed)
    walls = rng.uniform(150, 230, (4, 1)) * rng.uniform(0.8, 1.0, (4, 3))  # pale paints
    out = np.zeros(t.shape + (3,))
    # Floor: tiles of varied shade with dark joints.
    floor = which == 0
    ix, iz = np.floor(hx / room.tile_m), np.floor(hz / room.tile_m)
    shade = 0.85 + 0.15 * np.sin(ix * 12.9898 + iz * 78.233) ** 2
    joint = (np.minimum(hx / room.tile_m - ix, hz / room.tile_m - iz) < 0.04)
    base = rng.uniform(80, 190) * np.array([1.0, 0.85, 0.7]) ** rng.uniform(0, 1.5)  # greys to browns
    if room.floor == "pitch":
        grass = rng.uniform(0.8, 1.1) * np.array([60.0, 125.0, 55.0])
        stripe = np.where(np.mod(iz, 2) == 0, 1.0, 0.85)
        line = ((np.abs(hx - room.x_range[0] - 3.0) < 0.08) | (np.abs(hx - room.x_range[1] + 3.0) < 0.08)
                | (np.mod(hz, 16.0) < 0.12))
        out[floor] = np.where(line[floor, None], 225.0, grass * stripe[floor, None])
    elif room.floor == "tiles":
        out[floor] = (base * shade[floor, None]) * np.where(joint[floor, None], 0.45, 1.0)
    else:
        raise ValueError(f"Room.floor must be 'tiles' or 'pitch', not {room.floor!r}")
    # Ceiling: light panels with a grid.
    ceil = which == 1
    grid = (np.minimum(np.mod(hx, 1.2), np.mod(hz, 1.2)) < 0.05)
    out[ceil] = np.where(grid[ceil, None], 160.0, 235.0)
    # Walls: paint, a dark skirting, a rail at 1 m, panel seams every 1.5 m along the wall.
    for k in range(4):
        m = which == 2 + k
        along = hz if k < 2 else hx
        seam = np.mod(along, 1.5) < 0.04
        trim = (up < 0.12) | (np.abs(up - 1.0) < 0.03) | (np.abs(up - 2.2) < 0.02) | seam
        out[m] = np.where(trim[m, None], walls[k] * 0.4, walls[k])
    out *= (1.0 / (1.0 + 0.03 * np.minimum(t, 30.0)))[..., None] * 1.15
    out += cv2.GaussianBlur(rng.normal(0, 8, out.shape[:2]).astype(np.float32), (0, 0), s)[..., None]  # grain
    out = np.clip(out, 0, 255).astype(np.float32)
    if s > 1:
        out = cv2.resize(out, (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(out, 0, 255).astype(np.uint8)
