"""GLB -> FBX conversion, run *inside Blender's Python* (the ``bpy`` module), not meshstream's.

Usage (by export.fbx): ``BLENDER_PYTHON blender_fbx.py -- IN.glb OUT.fbx FPS``.
bpy needs NumPy < 2, so it lives in its own environment and this file imports nothing
from meshstream.
"""

import sys


def main(argv: list[str]) -> None:
    import bpy

    glb, fbx, fps = argv[0], argv[1], float(argv[2])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    # Keyframes land on whole frames only if the scene runs at the clip's rate.
    scene.render.fps = max(1, round(fps))
    scene.render.fps_base = scene.render.fps / fps
    bpy.ops.import_scene.gltf(filepath=glb)
    arm = next(o for o in scene.objects if o.type == "ARMATURE")
    if arm.animation_data and arm.animation_data.action:
        start, end = arm.animation_data.action.frame_range
        scene.frame_start, scene.frame_end = int(start), int(end)
    # Y up, -Z forward: what Unity and Blender read upright; Unreal converts on import.
    # Every frame keeps its key: the exporter's default curve simplification (factor 1)
    # dropped keys it judged redundant and moved a root by 6 mm between them.
    bpy.ops.export_scene.fbx(filepath=fbx, bake_anim=True, bake_anim_simplify_factor=0.0, add_leaf_bones=False,
                             axis_forward="-Z", axis_up="Y", apply_unit_scale=True, use_armature_deform_only=False)


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--") + 1 :])
