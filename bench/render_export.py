"""Renders one frame of exported GLB tracks with Blender (Cycles, CPU, headless) to a
PNG, seen from beside the people (not from the video's camera). Run with Blender's
Python (``bench/overview.py`` drives it for the README's picture):

    $MESHSTREAM_BLENDER_PYTHON bench/render_export.py -- OUT.png FRAME TRACK.glb [TRACK.glb ...]
"""

import math
import sys


def main(png: str, frame: int, glbs: list[str]) -> None:
    import bpy
    from mathutils import Vector

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 25
    for glb in glbs:
        bpy.ops.import_scene.gltf(filepath=glb)
    scene.frame_set(frame)
    meshes = [o for o in scene.objects if o.type == "MESH"]
    deps = bpy.context.evaluated_depsgraph_get()
    points = [m.matrix_world @ v.co for m in meshes for v in m.evaluated_get(deps).data.vertices]
    centre = sum(points, Vector()) / len(points)
    mat = bpy.data.materials.new("skin")
    mat.use_nodes = True
    mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.85, 0.55, 0.45, 1)
    for mesh in meshes:
        mesh.data.materials.clear()
        mesh.data.materials.append(mat)
    bpy.ops.mesh.primitive_plane_add(size=8, location=(centre.x, centre.y, min(p.z for p in points)))
    cam_data = bpy.data.cameras.new("cam")
    cam = bpy.data.objects.new("cam", cam_data)
    scene.collection.objects.link(cam)
    cam.location = centre + Vector((2.2, -3.2, 0.6))
    direction = centre - cam.location
    cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    scene.camera = cam
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.rotation_euler = (math.radians(40), math.radians(20), math.radians(30))
    scene.collection.objects.link(sun)
    scene.world = bpy.data.worlds.new("world")
    scene.world.color = (0.7, 0.75, 0.8)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 16
    scene.render.resolution_x, scene.render.resolution_y = 480, 360
    scene.render.filepath = png
    bpy.ops.render.render(write_still=True)


if __name__ == "__main__":
    args = sys.argv[sys.argv.index("--") + 1 :]
    main(args[0], int(args[1]), args[2:])
