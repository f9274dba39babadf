"""GLB (binary glTF 2.0) writer: the track's skinned Anny mesh and its animation.

One skin whose joints are the Anny bones (rest orientations identity, so bind poses are
translations), the rest mesh with up to 8 influences per vertex (``JOINTS_0/1``,
``WEIGHTS_0/1``), and one animation: a rotation channel per joint and the root's
translation, sampled at the frames' own timestamps (LINEAR). Metres, Y up, facing +Z.
Plays in browser glTF viewers and imports in Blender.

With the video's camera (:class:`~meshstream.export.animation.CameraAnimation`), a
perspective camera node ``video_camera`` sits at the camera's centre and turns as the
camera did, at every stored frame of the track's time span: looking through it, the
body lies over the person in the footage. glTF cannot animate a camera's field of
view, so a zooming shot gets its median one (each frame's is in the node's ``extras``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pygltflib as gl
import roma
import torch

from .animation import CameraAnimation, SkeletonAnimation


class _Blob:
    """Accumulates arrays into one binary buffer with views and accessors."""

    def __init__(self, gltf: gl.GLTF2) -> None:
        self.gltf = gltf
        self.data = bytearray()

    def add(self, array: np.ndarray, kind: str, component: int, target: int | None = None,
            minmax: bool = False) -> int:
        raw = np.ascontiguousarray(array).tobytes()
        self.data += b"\x00" * (-len(self.data) % 4)
        view = gl.BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(raw), target=target)
        self.data += raw
        self.gltf.bufferViews.append(view)
        acc = gl.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=component, count=len(array),
                          type=kind)
        if minmax:
            flat = array.reshape(len(array), -1)
            acc.min = flat.min(0).astype(float).tolist()
            acc.max = flat.max(0).astype(float).tolist()
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def write_glb(path: str | Path, anim: SkeletonAnimation, camera: CameraAnimation | None = None) -> Path:
    """Writes ``anim`` (skinned mesh + skeleton + animation) as a ``.glb`` file, with the
    video's camera when given."""
    path = Path(path)
    gltf = gl.GLTF2(asset=gl.Asset(generator="meshstream", version="2.0"))
    blob = _Blob(gltf)
    j = len(anim.joint_names)
    children: dict[int, list[int]] = {}
    for k, p in enumerate(anim.parents):
        children.setdefault(int(p), []).append(k)
    for k in range(j):
        gltf.nodes.append(gl.Node(name=anim.joint_names[k], translation=anim.offsets[k].astype(float).tolist(),
                                  children=children.get(k, [])))
    roots = children.get(-1, [])
    heads = anim.rest_heads()  # bind poses: rest orientations are identity
    inverse_bind = np.tile(np.eye(4, dtype=np.float32), (j, 1, 1))
    inverse_bind[:, :3, 3] = -heads
    ibm = blob.add(np.transpose(inverse_bind, (0, 2, 1)).reshape(j, 16), gl.MAT4, gl.FLOAT)  # column-major
    gltf.skins.append(gl.Skin(name=f"{anim.name}_skin", joints=list(range(j)), inverseBindMatrices=ibm,
                              skeleton=roots[0]))
    attributes = gl.Attributes(
        POSITION=blob.add(anim.rest_vertices.astype(np.float32), gl.VEC3, gl.FLOAT, gl.ARRAY_BUFFER, minmax=True),
        JOINTS_0=blob.add(anim.skin_joints[:, :4].astype(np.uint16), gl.VEC4, gl.UNSIGNED_SHORT, gl.ARRAY_BUFFER),
        WEIGHTS_0=blob.add(anim.skin_weights[:, :4], gl.VEC4, gl.FLOAT, gl.ARRAY_BUFFER),
        JOINTS_1=blob.add(anim.skin_joints[:, 4:8].astype(np.uint16), gl.VEC4, gl.UNSIGNED_SHORT, gl.ARRAY_BUFFER),
        WEIGHTS_1=blob.add(anim.skin_weights[:, 4:8], gl.VEC4, gl.FLOAT, gl.ARRAY_BUFFER),
    )
    indices = blob.add(anim.faces.astype(np.uint32).reshape(-1), gl.SCALAR, gl.UNSIGNED_INT, gl.ELEMENT_ARRAY_BUFFER)
    gltf.meshes.append(gl.Mesh(name=f"{anim.name}_mesh", primitives=[gl.Primitive(attributes=attributes, indices=indices)]))
    gltf.nodes.append(gl.Node(name=anim.name, mesh=0, skin=0))
    mesh_node = len(gltf.nodes) - 1
    times = blob.add(anim.times.astype(np.float32), gl.SCALAR, gl.FLOAT, minmax=True)
    quats = roma.rotmat_to_unitquat(torch.as_tensor(anim.rotations)).numpy().astype(np.float32)  # XYZW, as glTF
    samplers, channels = [], []
    for k in range(j):
        samplers.append(gl.AnimationSampler(input=times, output=blob.add(quats[:, k], gl.VEC4, gl.FLOAT),
                                            interpolation="LINEAR"))
        channels.append(gl.AnimationChannel(sampler=k, target=gl.AnimationChannelTarget(node=k, path="rotation")))
    for r in roots:
        samplers.append(gl.AnimationSampler(
            input=times, output=blob.add(anim.root_translation.astype(np.float32), gl.VEC3, gl.FLOAT),
            interpolation="LINEAR"))
        channels.append(gl.AnimationChannel(sampler=len(samplers) - 1,
                                            target=gl.AnimationChannelTarget(node=r, path="translation")))
    scene_nodes = [*roots, mesh_node]
    camera = None if camera is None else _within(camera, anim.times[0], anim.times[-1])
    if camera is not None:
        gltf.cameras.append(gl.Camera(name="video_camera", type="perspective", perspective=gl.Perspective(
            aspectRatio=camera.aspect, yfov=float(np.median(camera.yfov)), znear=0.05)))
        quats = _continuous(roma.rotmat_to_unitquat(torch.as_tensor(camera.rotations)).numpy()).astype(np.float32)
        gltf.nodes.append(gl.Node(name="video_camera", camera=0, translation=camera.position.astype(float).tolist(),
                                  rotation=quats[0].astype(float).tolist(),
                                  extras={"yfov_per_frame": np.round(camera.yfov, 6).tolist()}))
        scene_nodes.append(len(gltf.nodes) - 1)
        samplers.append(gl.AnimationSampler(input=blob.add(camera.times.astype(np.float32), gl.SCALAR, gl.FLOAT,
                                                           minmax=True),
                                            output=blob.add(quats, gl.VEC4, gl.FLOAT), interpolation="LINEAR"))
        channels.append(gl.AnimationChannel(sampler=len(samplers) - 1, target=gl.AnimationChannelTarget(
            node=scene_nodes[-1], path="rotation")))
    gltf.animations.append(gl.Animation(name=anim.name, samplers=samplers, channels=channels))
    gltf.scenes.append(gl.Scene(nodes=scene_nodes))
    gltf.scene = 0
    gltf.buffers.append(gl.Buffer(byteLength=len(blob.data)))
    gltf.set_binary_blob(bytes(blob.data))
    gltf.save_binary(str(path))
    return path


def _continuous(quats: np.ndarray) -> np.ndarray:
    """(T, 4) unit quaternions with each one's sign chosen to be nearest the previous (a
    LINEAR rotation channel then never takes the long way round)."""
    out = quats.copy()
    for t in range(1, len(out)):
        if out[t] @ out[t - 1] < 0:
            out[t] = -out[t]
    return out


def _within(camera: CameraAnimation, start: float, end: float) -> CameraAnimation | None:
    """The camera's frames from ``start`` to ``end`` seconds (``None`` if there are none)."""
    keep = (camera.times >= start - 1e-6) & (camera.times <= end + 1e-6)
    if not keep.any():
        return None
    return replace(camera, times=camera.times[keep], rotations=camera.rotations[keep], yfov=camera.yfov[keep])
