"""SMPL-X joint tables and body-part masks, as data.

The canonical motion layout is SMPL-X's 55 joints in SMPL-X order: pelvis, 21 body joints, jaw,
two eyes, 15 left-hand joints, 15 right-hand joints. `poses` is (T, 165) axis-angle, three
numbers per joint in that order.

Hands follow ``flat_hand_mean=False`` (as BEAT2, AMASS-X and mannequin-x do): a zero hand pose
means the relaxed SMPL-X mean hand, not a flat hand. Exporters that need rotations relative to a
flat-hand rest pose (BVH, GLB) add `HAND_MEAN` first.
"""

from __future__ import annotations

from functools import cache

import numpy as np

NUM_JOINTS = 55
POSE_DIM = NUM_JOINTS * 3

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "jaw", "left_eye", "right_eye",
    "left_index1", "left_index2", "left_index3", "left_middle1", "left_middle2", "left_middle3",
    "left_pinky1", "left_pinky2", "left_pinky3", "left_ring1", "left_ring2", "left_ring3",
    "left_thumb1", "left_thumb2", "left_thumb3",
    "right_index1", "right_index2", "right_index3", "right_middle1", "right_middle2", "right_middle3",
    "right_pinky1", "right_pinky2", "right_pinky3", "right_ring1", "right_ring2", "right_ring3",
    "right_thumb1", "right_thumb2", "right_thumb3",
)  # fmt: skip

PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
    15, 15, 15,
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,
)  # fmt: skip

JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

# Index of each SMPL-X joint in mannequin-x's 54-joint skeleton. mannequin-x has no jaw or eyes
# (its head is rigid) and adds zero-length L_Hand/R_Hand joints at the wrists (22, 23).
MANNEQUIN_INDEX: tuple[int | None, ...] = tuple(range(22)) + (None, None, None) + tuple(range(24, 54))

# mannequin-x has no jaw/eye joints, so their rest offsets from the head joint are fixed here,
# approximating the SMPL-X neutral template (metres, Y-up, +Z forward). They only matter for
# BVH/GLB skeletons and jaw/eye positions; no animation in this project moves the eyes.
FACE_OFFSETS_FROM_HEAD: dict[str, tuple[float, float, float]] = {
    "jaw": (0.0, -0.012, 0.047),
    "left_eye": (0.031, 0.062, 0.083),
    "right_eye": (-0.031, 0.062, 0.083),
}


def _indices(*names: str) -> tuple[int, ...]:
    return tuple(JOINT_INDEX[n] for n in names)


def _hand(side: str) -> tuple[int, ...]:
    return tuple(i for i, n in enumerate(JOINT_NAMES) if n.startswith(side) and n[-1].isdigit())


LEFT_HAND = _hand("left_")
RIGHT_HAND = _hand("right_")

# Part definitions follow the field (EMAGE / Semantic Gesticulator): the upper body is the
# 13 joints the BC metric uses; hands are the 30 finger joints.
BODY_PARTS: dict[str, tuple[int, ...]] = {
    "upper": _indices(
        "spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    ),
    "hands": LEFT_HAND + RIGHT_HAND,
    "left_hand": LEFT_HAND,
    "right_hand": RIGHT_HAND,
    "left_arm": _indices("left_collar", "left_shoulder", "left_elbow", "left_wrist"),
    "right_arm": _indices("right_collar", "right_shoulder", "right_elbow", "right_wrist"),
    "head": _indices("neck", "head", "jaw", "left_eye", "right_eye"),
    "torso": _indices("spine1", "spine2", "spine3"),
    "lower": _indices(
        "pelvis", "left_hip", "right_hip", "left_knee", "right_knee",
        "left_ankle", "right_ankle", "left_foot", "right_foot",
    ),
    "face": _indices("jaw", "left_eye", "right_eye"),
}  # fmt: skip
BODY_PARTS["all"] = tuple(range(NUM_JOINTS))

# Joints whose rotation the mirror operation swaps left<->right.
MIRROR_INDEX: tuple[int, ...] = tuple(
    JOINT_INDEX[n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")]
    for n in JOINT_NAMES
)


def joint_mask(*parts: str) -> np.ndarray:
    """Boolean (55,) mask of the joints in the union of the named parts."""
    mask = np.zeros(NUM_JOINTS, dtype=bool)
    for part in parts:
        if part not in BODY_PARTS:
            raise ValueError(f"unknown body part {part!r}; known parts: {', '.join(sorted(BODY_PARTS))}")
        mask[list(BODY_PARTS[part])] = True
    return mask


def pose_mask(*parts: str) -> np.ndarray:
    """Boolean (165,) mask over `poses` columns for the named parts."""
    return np.repeat(joint_mask(*parts), 3)


@cache
def hand_mean() -> np.ndarray:
    """(30, 3) SMPL-X mean hand pose (axis-angle), left then right; from mannequin-x's calibration."""
    from mannequin._io import load_calibration

    return load_calibration(dtype=np.float64).hand_mean.copy()


def children(parents: tuple[int, ...] = PARENTS) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            kids[p].append(j)
    return kids
