"""Forward kinematics and the rest skeleton, as pure functions with typed outputs.

The skeleton (rest joint positions for any ten SMPL-X betas) and the joint chain come from
mannequin-x, which bakes the SMPL-X shape response so no SMPL-X model file is needed. mannequin-x
has no jaw or eye joints; those are placed at fixed offsets from the head
(`skeleton.FACE_OFFSETS_FROM_HEAD`) so every output here covers all 55 SMPL-X joints.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from gesticulator.motion import skeleton as sk
from gesticulator.motion.rotations import axis_angle_to_matrix
from gesticulator.types import Motion

_FACE = {sk.JOINT_INDEX[n]: np.asarray(o) for n, o in sk.FACE_OFFSETS_FROM_HEAD.items()}
_HEAD = sk.JOINT_INDEX["head"]
_FROM_MANNEQUIN = np.array([-1 if i is None else i for i in sk.MANNEQUIN_INDEX])


@dataclass(frozen=True)
class Skeleton:
    """The SMPL-X rest skeleton for one body shape. Rest pose is the T-pose with flat hands."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray  # (55, 3) joint position relative to its parent; the root's is absolute
    rest_positions: np.ndarray  # (55, 3) world positions in the rest pose, metres, Y-up


@dataclass(frozen=True)
class JointTransforms:
    """World-space joint transforms of a motion, SMPL-X joint order."""

    positions: np.ndarray  # (T, 55, 3) metres
    rotations: np.ndarray  # (T, 55, 3, 3) world rotation of each joint frame
    fps: float

    @property
    def num_frames(self) -> int:
        return self.positions.shape[0]


@cache
def _mannequin():
    from mannequin import Mannequin

    # The convex LOD-2 figure is the cheapest to build; every mannequin-x design shares one
    # skeleton, so FK is identical to the skinned "wooden" one.
    return Mannequin("convex", lod=2, flat_hand_mean=False)


def shape10(betas: np.ndarray) -> np.ndarray:
    """The first ten shape coefficients (the part mannequin-x calibrates), zero-padded."""
    out = np.zeros(10, dtype=np.float64)
    b = np.asarray(betas, dtype=np.float64).ravel()[:10]
    out[: b.shape[0]] = b
    return out


def rest_skeleton(betas: np.ndarray | None = None) -> Skeleton:
    """Rest skeleton (T-pose) of the body shape `betas` (only the first ten count)."""
    model = _mannequin()
    rest = model.rest_pose(dtype=np.float64)
    rest["shape"] = shape10(np.zeros(10) if betas is None else betas)
    # mannequin-x's zero hand pose is the curled mean hand; the rest skeleton has flat hands.
    rest["hand_pose"] = -sk.hand_mean()
    transforms = model.forward_skeleton(**rest)  # (54, 4, 4), all local rotations identity
    positions = _to_smplx(transforms[None, :, :3, 3])[0]
    for j, offset in _FACE.items():
        positions[j] = positions[_HEAD] + offset
    offsets = positions.copy()
    for j, p in enumerate(sk.PARENTS):
        if p >= 0:
            offsets[j] = positions[j] - positions[p]
    return Skeleton(sk.JOINT_NAMES, sk.PARENTS, offsets, positions)


def forward_kinematics(motion: Motion) -> JointTransforms:
    """World joint positions and rotations for every frame of `motion`."""
    rot = motion.rotations.astype(np.float64)
    model = _mannequin()
    transforms = model.forward_skeleton(
        body_pose=rot[:, 1:22],
        head_pose=rot[:, 22:25],
        hand_pose=rot[:, 25:55],
        pelvis_rotation=rot[:, 0],
        shape=shape10(motion.betas)[None].repeat(motion.num_frames, 0),
        global_translation=motion.trans.astype(np.float64),
    )
    positions = _to_smplx(transforms[..., :3, 3])
    rotations = _to_smplx(transforms[..., :3, :3])
    head_rot = rotations[:, _HEAD]
    local_face = axis_angle_to_matrix(rot[:, 22:25])
    for k, (j, offset) in enumerate(_FACE.items()):
        positions[:, j] = positions[:, _HEAD] + head_rot @ offset
        rotations[:, j] = head_rot @ local_face[:, k]
    return JointTransforms(positions=positions, rotations=rotations, fps=motion.fps)


# Frames per forward-kinematics pass in `joint_positions`: FK builds (T, 54, 4, 4) transforms and
# world rotations (~15 KB a frame with temporaries); an hour of motion in one pass took ~1.5 GB.
# Every frame is computed on its own, so blocks give the same positions.
_FK_BLOCK_FRAMES = 4096


def joint_positions(motion: Motion) -> np.ndarray:
    """(T, 55, 3) world joint positions in metres (computed in blocks of frames: bounded memory)."""
    if motion.num_frames <= _FK_BLOCK_FRAMES:
        return forward_kinematics(motion).positions
    out = np.empty((motion.num_frames, len(sk.JOINT_NAMES), 3), dtype=np.float64)
    for a in range(0, motion.num_frames, _FK_BLOCK_FRAMES):
        b = min(motion.num_frames, a + _FK_BLOCK_FRAMES)
        out[a:b] = forward_kinematics(motion.slice(a, b)).positions
    return out


def local_rotations_flat_hand(motion: Motion) -> np.ndarray:
    """(T, 55, 3) axis-angle local rotations relative to the flat-hand T-pose.

    SMPL-X with ``flat_hand_mean=False`` adds the mean hand pose (in axis-angle) before
    kinematics; exporters whose rest pose is the flat T-pose (BVH, GLB) need that sum.
    """
    rot = motion.rotations.astype(np.float64).copy()
    rot[:, 25:55] += sk.hand_mean()[None]
    return rot


def from_flat_hand(rotations: np.ndarray) -> np.ndarray:
    """Inverse of `local_rotations_flat_hand`: (T, 55, 3) flat-hand rotations to SMPL-X poses."""
    rot = np.asarray(rotations, dtype=np.float64).copy()
    rot[:, 25:55] -= sk.hand_mean()[None]
    return rot


def _to_smplx(per_mannequin_joint: np.ndarray) -> np.ndarray:
    """Reorder a (..., 54, ...) mannequin-joint array into (..., 55, ...) SMPL-X order.

    Face joints (absent from the mannequin) get the head's values; callers overwrite them.
    """
    src = np.where(_FROM_MANNEQUIN < 0, 15, _FROM_MANNEQUIN)
    return np.take(per_mannequin_joint, src, axis=1).copy()
