"""Run inside Blender's Python (bpy): import a BVH or GLB and print what Blender made of it as JSON.

usage: python-with-bpy open_check.py FILE FRAME JOINT
"""

import json
import sys

import bpy

path, frame, joint = sys.argv[1], int(sys.argv[2]), sys.argv[3]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.context.scene.render.fps = 30
if path.endswith(".bvh"):
    bpy.ops.import_anim.bvh(
        filepath=path, global_scale=0.01, update_scene_fps=True, update_scene_duration=True
    )
else:
    bpy.ops.import_scene.gltf(filepath=path)
armature = next(o for o in bpy.data.objects if o.type == "ARMATURE")
action = armature.animation_data.action if armature.animation_data else None
bpy.context.scene.frame_set(frame)
head = armature.matrix_world @ armature.pose.bones[joint].head
print(
    "RESULT "
    + json.dumps(
        {
            "bones": len(armature.data.bones),
            "frame_range": list(action.frame_range) if action else None,
            "mesh_vertices": max(
                (len(o.data.vertices) for o in bpy.data.objects if o.type == "MESH"), default=0
            ),
            "joint_zup": list(head),
        }
    )
)
