"""Random scenes drawn from one seed, for training and held-out benchmarks.

Each drawer returns keyword arguments of :func:`~meshstream.models.synthetic.render_frames`
(``persons``, ``fov_deg``, ``pitch_deg``, ``camera_height_m``, ``background``) plus
``crf`` for :func:`~meshstream.models.synthetic.write_video`. The seed ranges each
benchmark draws from are split three ways in ``bench/splits.py``.

- :func:`random_scene`: 1-2 people at 0.8-6.5 m, 35-105 degree views;
- :func:`elevated_scene`: a still camera looking down at people on a floor;
- :func:`close_scene`: close range (BLADE's case): 1-2 people 0.7-1.5 m from the
  camera, cut by the frame at the hips or knees, or a person walking away at 2-4 m,
  seen from behind;
- :func:`wide_scene`: a sports broadcast's wide shot: 10-20 players 30-150 px tall on a
  pitch seen from 8-20 m up, walking and running, crossing, the camera panning and
  zooming.
"""

from __future__ import annotations

import math

import numpy as np

from .body import AnnyBody
from .synthetic import PersonSpec, phenotype_shape
from .synthetic_room import Room

_MOTIONS = ("walk", "squat", "arms", "legs", "turn")
# Bones that get a random offset per clip and person, with the offset's range per axis (radians).
_RANDOM_OFFSETS = {
    "spine03": (0.35, 0.2, 0.2), "neck01": (0.3, 0.3, 0.3), "head": (0.3, 0.3, 0.3),
    "upperarm01.L": (0.6, 0.5, 0.5), "upperarm01.R": (0.6, 0.5, 0.5),
    "lowerarm01.L": (0.6, 0.2, 0.2), "lowerarm01.R": (0.6, 0.2, 0.2),
    "upperleg01.L": (0.35, 0.15, 0.2), "upperleg01.R": (0.35, 0.15, 0.2),
    "lowerleg01.L": (0.3, 0.0, 0.0), "lowerleg01.R": (0.3, 0.0, 0.0),
}



def random_scene(seed: int, width: int = 640, height: int = 480) -> dict:
    """A random scene for training and held-out tests, drawn from one seed.

    1-2 persons of random phenotype (ages 0.15-0.9), each with a motion and a random
    pose offset on the spine, neck, head, arms and legs, a random heading and walking
    velocity, 0.8-6.5 m away (near enough to show at least 1 m of body vertically);
    35-105 degree field of view, camera 0.8-1.8 m high and tilted -5 to 15 degrees, a
    procedural background and an H.264 quality.

    Returns:
        Keyword arguments of :func:`render_frames` (``persons``, ``fov_deg``,
        ``pitch_deg``, ``camera_height_m``, ``background``) plus ``crf`` for
        :func:`write_video`.
    """
    rng = np.random.default_rng(seed)
    fov = rng.uniform(35.0, 105.0)
    half = math.tan(math.radians(fov) / 2)
    persons = []
    for _ in range(1 if rng.random() < 0.7 else 2):
        # Near enough to fill the frame but far enough that 1 m of body shows vertically.
        z_min = max(0.8, 0.5 / (half * height / width))
        z = math.exp(rng.uniform(math.log(z_min), math.log(max(6.5, 2 * z_min))))
        x = z * half * rng.uniform(-0.6, 0.6)
        speed, heading = rng.uniform(0.0, 1.0) * (rng.random() < 0.5), rng.uniform(0, 2 * math.pi)
        offset = _pose_offset(rng)
        persons.append(PersonSpec(
            start_xz=(x, z), velocity_xz=(speed * math.cos(heading), speed * math.sin(heading) * 0.5),
            yaw_deg=float(rng.uniform(0, 360)), motion=str(rng.choice(_MOTIONS)),
            shape={"gender": rng.uniform(0, 1), "age": rng.uniform(0.15, 0.9), "muscle": rng.uniform(0.1, 0.9),
                   "weight": rng.uniform(0.1, 0.9), "height": rng.uniform(0.2, 0.8)},
            shirt_rgb=tuple(int(c) for c in rng.integers(20, 236, 3)), pose_offset=offset))
    return dict(persons=persons, fov_deg=fov, pitch_deg=float(rng.uniform(-5, 15)),
                camera_height_m=float(rng.uniform(0.8, 1.8)), background=random_background(rng, width, height),
                crf=int(rng.integers(18, 29)))


def elevated_scene(seed: int, width: int = 640, height: int = 480) -> dict:
    """A still camera looking down at people on a floor (a stand, a mast, a ceiling corner),
    drawn from one seed: what :func:`~meshstream.models.ground.focal_from_floor` is for.

    40-100 degree field of view, the camera 1.2-4 m high and tilted 0-35 degrees down;
    1-3 people of random phenotype (Anny ages 0.4-0.9: teenagers to older adults), three
    in four walking forward at 0.6-1.4 m/s in any direction, the others moving their arms
    or turning on the spot, their feet visible at the start; a procedural background and
    an H.264 quality.

    Returns:
        Keyword arguments of :func:`render_frames` (``persons``, ``fov_deg``,
        ``pitch_deg``, ``camera_height_m``, ``background``) plus ``crf`` for
        :func:`write_video`.
    """
    rng = np.random.default_rng(seed)
    fov, tilt, camera_height = rng.uniform(40.0, 100.0), rng.uniform(0.0, 35.0), rng.uniform(1.2, 4.0)
    half = math.tan(math.radians(fov) / 2)
    # The nearest floor point in view: the frame's bottom edge looks tilt + half the vertical FOV down.
    below = math.radians(tilt) + math.atan(half * height / width)
    near = max(camera_height / math.tan(below), 2.0) + 0.8 if below < math.pi / 2 else 2.8
    persons = []
    for _ in range(int(rng.integers(1, 4))):
        z = rng.uniform(near, near + 5.0)
        yaw = rng.uniform(0.0, 360.0)
        walking = rng.random() < 0.75
        speed = rng.uniform(0.6, 1.4) if walking else 0.0
        # Facing (sin yaw, -cos yaw) on the floor: yaw 0 faces the camera, 90 image right.
        persons.append(PersonSpec(
            start_xz=(z * half * rng.uniform(-0.6, 0.6), z),
            velocity_xz=(speed * math.sin(math.radians(yaw)), -speed * math.cos(math.radians(yaw))),
            yaw_deg=float(yaw), motion="walk" if walking else str(rng.choice(("arms", "turn"))),
            shape={"gender": rng.uniform(0, 1), "age": rng.uniform(0.4, 0.9), "height": rng.uniform(0.3, 0.7),
                   "weight": rng.uniform(0.2, 0.8)},
            shirt_rgb=tuple(int(c) for c in rng.integers(20, 236, 3))))
    return dict(persons=persons, fov_deg=float(fov), pitch_deg=float(tilt), camera_height_m=float(camera_height),
                background=random_background(rng, width, height), crf=int(rng.integers(18, 29)))


def random_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth random colour field with some texture, (H, W, 3) uint8."""
    import cv2

    low = rng.uniform(30, 220, (3, 4, 3)).astype(np.float32)
    field = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = cv2.GaussianBlur(rng.normal(0, 25, (height, width, 3)).astype(np.float32), (0, 0), rng.uniform(1, 6))
    return np.clip(field + noise, 0, 255).astype(np.uint8)


def close_scene(seed: int, width: int = 640, height: int = 480, body: AnnyBody | None = None) -> dict:
    """A close-range scene drawn from one seed: what perspective fixes best and weak
    perspective gets most wrong.

    Three in four scenes: 1-2 teenagers or adults whose pelvis is 0.7-1.5 m from the
    camera, mostly facing it (one in five turned away), moving their arms, squatting,
    kicking or turning in place or swaying sideways, seen by a camera 1.0-1.6 m high
    aimed at the nearest one's torso (give or take 4 degrees), with
    a 40-100 degree field of view wide enough to show at least 0.8 m of body vertically
    at their depth (the frame cuts the legs at the hips or knees). Otherwise: a person
    seen from behind at 2-3 m (farther where a narrow view needs it to show 1 m of
    body), walking away or obliquely away (where a detector swaps left and right), with
    a 40-100 degree view. Random phenotypes (ages 0.4-0.9) and pose offsets, a
    procedural background, an H.264 quality.

    Args:
        seed: The scene's seed.
        width, height: Frame size, pixels.
        body: The Anny body that measures the nearest person's stature, to aim the
            camera (built when ``None``).

    Returns:
        Keyword arguments of :func:`~meshstream.models.synthetic.render_frames` plus
        ``crf``.
    """
    rng = np.random.default_rng(seed)
    aspect = height / width
    persons = []
    if rng.random() < 0.75:
        n = 1 if rng.random() < 0.8 else 2
        zs = np.sort(rng.uniform(0.7, 1.5, n))
        # Wide enough that 0.8 m of body shows vertically at the nearest person's depth.
        half_needed = 0.4 / zs[0] / aspect
        fov = rng.uniform(max(40.0, math.degrees(2 * math.atan(half_needed))), 100.0)
        camera_height = rng.uniform(1.0, 1.6)
        half = math.tan(math.radians(fov) / 2)
        sides = [0.0] if n == 1 else [-1.0, 1.0]
        for z, side in zip(zs, sides, strict=True):
            x = z * half * (rng.uniform(-0.3, 0.3) if n == 1 else side * rng.uniform(0.25, 0.5))
            away = rng.random() < 0.2
            yaw = rng.uniform(-50.0, 50.0) + (180.0 if away else 0.0)
            sway = rng.uniform(-0.3, 0.3) if rng.random() < 0.3 else 0.0
            persons.append(_person(rng, (x, float(z)), (sway, 0.0), yaw, str(rng.choice(_CLOSE_MOTIONS))))
        # Aimed at the nearest person's torso, between the pelvis (about 0.53 of the
        # stature) and the shoulders (0.82), give or take 4 degrees.
        body = body or AnnyBody()
        stature = float(body.stature(phenotype_shape(body, persons[0].shape))[0])
        aim_m = stature * rng.uniform(0.62, 0.78)
        pitch = math.degrees(math.atan2(camera_height - aim_m, zs[0])) + rng.uniform(-4.0, 4.0)
    else:
        fov = rng.uniform(40.0, 100.0)
        half = math.tan(math.radians(fov) / 2)
        camera_height, pitch = rng.uniform(1.0, 1.8), rng.uniform(-5.0, 15.0)
        z = max(rng.uniform(2.0, 3.0), 0.5 / (half * aspect))
        yaw = 180.0 + rng.uniform(-35.0, 35.0)
        speed = rng.uniform(0.6, 1.2)
        velocity = (speed * math.sin(math.radians(yaw)), -speed * math.cos(math.radians(yaw)))
        persons.append(_person(rng, (z * half * rng.uniform(-0.4, 0.4), z), velocity, yaw, "walk"))
    return dict(persons=persons, fov_deg=float(fov), pitch_deg=float(pitch), camera_height_m=float(camera_height),
                background=random_background(rng, width, height), crf=int(rng.integers(18, 29)))


_CLOSE_MOTIONS = ("arms", "squat", "legs", "turn", "arms")


def _person(rng: np.random.Generator, start_xz: tuple[float, float], velocity_xz: tuple[float, float], yaw_deg: float,
            motion: str) -> PersonSpec:
    """A person of random phenotype (ages 0.4-0.9) with random pose offsets."""
    return PersonSpec(start_xz=(float(start_xz[0]), float(start_xz[1])),
                      velocity_xz=(float(velocity_xz[0]), float(velocity_xz[1])), yaw_deg=float(yaw_deg),
                      motion=motion, shape={"gender": rng.uniform(0, 1), "age": rng.uniform(0.4, 0.9),
                                            "muscle": rng.uniform(0.1, 0.9), "weight": rng.uniform(0.1, 0.9),
                                            "height": rng.uniform(0.2, 0.8)},
                      shirt_rgb=tuple(int(c) for c in rng.integers(20, 236, 3)), pose_offset=_pose_offset(rng))


def _pose_offset(rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:
    """Random offsets on the spine, neck, head, arms and legs (knees and elbows bend one way)."""
    offset = {bone: tuple(float(v) for v in rng.uniform(-1, 1, 3) * np.asarray(r)) for bone, r in _RANDOM_OFFSETS.items()}
    for side in "LR":
        offset[f"lowerleg01.{side}"] = (abs(offset[f"lowerleg01.{side}"][0]), 0.0, 0.0)
        offset[f"lowerarm01.{side}"] = (-abs(offset[f"lowerarm01.{side}"][0]),) + offset[f"lowerarm01.{side}"][1:]
    return offset


def wide_scene(seed: int, width: int = 1280, height: int = 720, n_frames: int = 40) -> dict:
    """A wide shot of a match drawn from one seed: what the many-small-people path is for.

    A camera 8-20 m above a pitch (grass stripes and white lines, stands as walls),
    looking down at its middle 25-45 m away through a 25-60 degree view, pans by up to
    +-8 degrees and zooms in by up to 30 % over the clip. 10-20 players of two teams
    (shirts of two colours), each 1.55-1.95 m tall: one in five stands or moves their
    arms, the others walk (1-2 m/s) or run (3-6 m/s; the renderer's gait is the walk's),
    most along the pitch's length in both directions, so they cross. At 1280x720 they
    are about 30-150 px tall. H.264 quality 20-28.

    Returns:
        Keyword arguments of :func:`render_frames` (``persons``, ``fov_deg``,
        ``pitch_deg``, ``camera_height_m``, ``room``, ``pan_deg``, ``zoom``,
        ``n_frames``, ``width``, ``height``) plus ``crf``.
    """
    rng = np.random.default_rng(seed)
    fov, camera_height, centre = rng.uniform(25.0, 60.0), rng.uniform(8.0, 20.0), rng.uniform(25.0, 45.0)
    tilt = math.degrees(math.atan2(camera_height, centre))
    half = math.tan(math.radians(fov) / 2)
    half_v = math.atan(half * height / width)
    near = camera_height / math.tan(math.radians(tilt) + half_v)
    low = math.radians(tilt) - half_v
    far = min(camera_height / math.tan(low), 90.0) if low > math.radians(2.0) else 90.0
    teams = [tuple(int(c) for c in rng.integers(20, 236, 3)) for _ in range(2)]
    persons = []
    for i in range(int(rng.integers(10, 21))):
        z = rng.uniform(near + 1.0, far - 1.0)
        x = z * half * rng.uniform(-1.1, 1.1)  # some start outside the view and come in (or the pan finds them)
        kind = rng.random()
        if kind < 0.2:
            speed, motion = 0.0, str(rng.choice(("arms", "turn")))
        else:
            speed, motion = (rng.uniform(1.0, 2.0) if kind < 0.6 else rng.uniform(3.0, 6.0)), "walk"
        heading = rng.choice((90.0, -90.0)) + rng.normal(0.0, 25.0)  # along the pitch, both ways
        yaw = float(heading)
        vx, vz = speed * math.sin(math.radians(yaw)), -speed * math.cos(math.radians(yaw))
        shirt = np.clip(np.array(teams[i % 2]) + rng.integers(-12, 13, 3), 0, 255)
        persons.append(PersonSpec(start_xz=(float(x), float(z)), velocity_xz=(vx, vz), yaw_deg=yaw, motion=motion,
                                  shape={"gender": rng.uniform(0, 1), "age": rng.uniform(0.55, 0.75),
                                         "height": rng.uniform(0.4, 0.9), "weight": rng.uniform(0.3, 0.6)},
                                  shirt_rgb=tuple(int(c) for c in shirt), phase_s=float(rng.uniform(0, 1))))
    t = np.linspace(0.0, 1.0, n_frames)
    pan = rng.uniform(-8.0, 8.0) * np.sin(0.5 * math.pi * t) if rng.random() < 0.75 else np.zeros(n_frames)
    zoom = 1.0 + rng.uniform(0.0, 0.3) * t if rng.random() < 0.5 else np.ones(n_frames)
    room = Room(x_range=(-60.0, 60.0), z_range=(-10.0, 110.0), height_m=12.0, yaw_deg=float(rng.uniform(-5, 5)),
                tile_m=float(rng.uniform(4.0, 8.0)), seed=int(rng.integers(1 << 30)), floor="pitch", supersample=1)
    return dict(persons=persons, fov_deg=float(fov), pitch_deg=float(tilt), camera_height_m=float(camera_height),
                room=room, pan_deg=pan, zoom=zoom, n_frames=n_frames, width=width, height=height,
                crf=int(rng.integers(20, 29)))
