"""Motion <-> the rhythm model's per-part learning arrays. Pure functions.

The model learns two body parts, as in the field (EMAGE, Semantic Gesticulator):

    upper  13 joints (spine1-3, neck, head, collars, shoulders, elbows, wrists) x 6D = 78 dims
    hands  30 finger joints x 6D = 180 dims (zero = the relaxed mean hand, flat_hand_mean=False)

6D is the first two columns of the rotation matrix (Zhou et al. 2019): continuous, so a network
can regress it, and any 6-vector maps back to a valid rotation by Gram-Schmidt.

Everything the model does not generate (pelvis, legs, jaw, eyes) comes from the library's rest
pose (`rest_motion`, arms down), and the root translation is zero: a stable standing stance with
no foot sliding, the same stance every authored semantic clip starts from, so clips splice in
without a jump. The pelvis orientation of the source is dropped on purpose: BEAT2 speakers face
different directions per take and the output always faces +Z.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from gesticulator.motion.rotations import axis_angle_to_sixd, sixd_to_axis_angle
from gesticulator.motion.skeleton import BODY_PARTS, NUM_JOINTS
from gesticulator.types import CANONICAL_FPS, Motion

#: The parts the model generates, in code order (codes[..., part, level]).
PART_NAMES: tuple[str, ...] = ("upper", "hands")
PART_JOINTS: dict[str, tuple[int, ...]] = {name: BODY_PARTS[name] for name in PART_NAMES}
PART_DIMS: dict[str, int] = {name: 6 * len(joints) for name, joints in PART_JOINTS.items()}


@cache
def _rest_axis_angle() -> np.ndarray:
    from gesticulator.library.authoring.compile import rest_motion

    pose = rest_motion(1).poses[0].reshape(NUM_JOINTS, 3).astype(np.float64)
    pose.setflags(write=False)
    return pose


def rest_axis_angle() -> np.ndarray:
    """(55, 3) the standing rest pose in Motion convention (hands relative to the mean hand)."""
    return _rest_axis_angle().copy()


def motion_to_parts(motion: Motion) -> dict[str, np.ndarray]:
    """Per-part 6D arrays {"upper": (T, 78), "hands": (T, 180)} float32, at 30 fps.

    Motion at another rate is resampled (slerp) first: the tokenizer's x4 downsampling assumes
    30 fps (7.5 tokens per second).
    """
    if abs(motion.fps - CANONICAL_FPS) > 1e-6:
        motion = motion.resample(CANONICAL_FPS)
    rot = motion.rotations
    out = {}
    for name, joints in PART_JOINTS.items():
        sixd = axis_angle_to_sixd(rot[:, list(joints)].astype(np.float64))
        out[name] = sixd.reshape(motion.num_frames, -1).astype(np.float32)
    return out


def parts_to_motion(
    parts: dict[str, np.ndarray], *, betas: np.ndarray | None = None, metadata: dict | None = None
) -> Motion:
    """A full 30 fps Motion from per-part 6D arrays; absent parts and other joints stay at rest."""
    lengths = {np.asarray(a).shape[0] for a in parts.values()}
    if len(lengths) != 1:
        raise ValueError(
            f"parts have different lengths: { {k: np.asarray(v).shape for k, v in parts.items()} }"
        )
    frames = lengths.pop()
    poses = np.repeat(rest_axis_angle()[None], frames, axis=0)
    for name, array in parts.items():
        joints = PART_JOINTS[name]
        sixd = np.asarray(array, dtype=np.float64).reshape(frames, len(joints), 6)
        poses[:, list(joints)] = sixd_to_axis_angle(sixd)
    return Motion(
        poses=poses.reshape(frames, NUM_JOINTS * 3),
        trans=np.zeros((frames, 3)),
        betas=np.zeros(10) if betas is None else np.asarray(betas),
        fps=CANONICAL_FPS,
        metadata=dict(metadata or {}),
    )


def rest_parts(num_frames: int = 1) -> dict[str, np.ndarray]:
    """The rest pose as per-part 6D arrays (what the model starts from and returns to)."""
    rest = rest_axis_angle()
    return {
        name: np.repeat(axis_angle_to_sixd(rest[list(joints)]).reshape(1, -1), num_frames, 0).astype(
            np.float32
        )
        for name, joints in PART_JOINTS.items()
    }
