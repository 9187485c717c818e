"""SMPL-X motion core: joint tables, rotations, kinematics and operations."""

from gesticulator.motion.kinematics import (
    JointTransforms,
    Skeleton,
    forward_kinematics,
    joint_positions,
    rest_skeleton,
)
from gesticulator.motion.ops import concatenate, mirror, resample, slice_frames, slice_seconds
from gesticulator.motion.skeleton import BODY_PARTS, JOINT_NAMES, PARENTS, joint_mask, pose_mask
from gesticulator.types import Motion

__all__ = [
    "BODY_PARTS",
    "JOINT_NAMES",
    "PARENTS",
    "JointTransforms",
    "Motion",
    "Skeleton",
    "concatenate",
    "forward_kinematics",
    "joint_mask",
    "joint_positions",
    "mirror",
    "pose_mask",
    "resample",
    "rest_skeleton",
    "slice_frames",
    "slice_seconds",
]
