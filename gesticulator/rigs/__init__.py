"""Retarget SMPL-X motion onto other skeletons (Mixamo, VRM, a generic humanoid, a user's own rig)
and export it as BVH, GLB (+ VRMA) or FBX.

>>> from gesticulator.rigs import export_to_rig, load_rig, retarget_to_rig
>>> export_to_rig(motion, "mixamo", "out/", ("bvh", "glb"))   # {"bvh": Path, "glb": Path}
>>> rig_motion = retarget_to_rig(motion, load_rig("my_rig.yaml"))

numpy only (plus pygltflib when writing or reading GLB); importing this package loads no model.
"""

from gesticulator.rigs.export import (
    RIG_FORMATS,
    export_to_rig,
    is_vrm_rig,
    rig_bvh_text,
    save_rig_bvh,
    save_rig_glb,
    skeleton_bvh_text,
)
from gesticulator.rigs.readback import read_rig_glb
from gesticulator.rigs.retarget import RigMotion, retarget_to_rig
from gesticulator.rigs.rig import Rig, RigSkeleton, available_rigs, load_rig, read_skeleton, rigs_dir

__all__ = [
    "RIG_FORMATS",
    "Rig",
    "RigMotion",
    "RigSkeleton",
    "available_rigs",
    "export_to_rig",
    "is_vrm_rig",
    "load_rig",
    "read_rig_glb",
    "read_skeleton",
    "retarget_to_rig",
    "rig_bvh_text",
    "rigs_dir",
    "save_rig_bvh",
    "save_rig_glb",
    "skeleton_bvh_text",
]
