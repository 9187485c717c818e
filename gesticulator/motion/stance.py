"""Standing stance: the legs for a given pelvis pose with the feet planted. Pure functions.

A speaker's weight shifts and posture changes move the pelvis (tilt, roll, a little yaw, a
sideways shift) while the feet stay on the floor. Given the pelvis rotation (and optionally its
shift from the rest stance), `planted_stance` solves each leg with two-bone IK (knee flexion from
the hip-ankle distance, the thigh turned onto the hip-ankle line) and counter-rotates the ankle
so the foot keeps its rest orientation: ankles, feet and toes stay exactly where they are at rest.

Used by the bootstrap synthesizer (which makes the weight shifts) and by the rhythm model's
representation (which generates the pelvis rotation and needs legs under it).

The stance keeps SMPL-X's own coordinates: with no translation the feet are ~1.3 m below the
origin. `on_floor` lifts finished motion so its rest stance stands on y = 0, as BEAT2 and AMASS
takes do, so BVH/GLB/npz files open standing on the floor of Blender or any viewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.spatial.transform import Rotation

from gesticulator.motion import skeleton as sk
from gesticulator.motion.kinematics import rest_skeleton
from gesticulator.types import Motion

J = sk.JOINT_INDEX
SIDES = ("left", "right")
#: The joints `planted_stance` sets, in the order of `Stance.rotations`.
STANCE_JOINTS: tuple[int, ...] = (J["pelvis"],) + tuple(
    J[f"{side}_{part}"] for side in SIDES for part in ("hip", "knee", "ankle")
)


#: The joints that carry the body's weight; the lowest of them stands on the floor.
FOOT_JOINTS: tuple[int, ...] = tuple(J[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot"))


def floor_offset(betas: np.ndarray | None = None) -> float:
    """How far up (metres) a body with no vertical translation must move for its rest stance to
    stand on y = 0: minus the rest skeleton's lowest ankle/foot joint height (~1.29 m)."""
    rest = rest_skeleton(betas).rest_positions
    return -float(rest[list(FOOT_JOINTS), 1].min())


def on_floor(motion: Motion) -> Motion:
    """`motion` lifted by `floor_offset` of its body shape (its translation's y raised by that
    constant), so a planted rest stance stands on y = 0. Apply once, to finished motion."""
    trans = np.array(motion.trans, dtype=np.float64)
    trans[:, 1] += floor_offset(motion.betas)
    return motion.copy(trans=trans.astype(motion.trans.dtype))


@dataclass(frozen=True)
class Stance:
    joints: tuple[int, ...]  # SMPL-X joint indices: pelvis, then hip, knee, ankle per side (left first)
    rotations: np.ndarray  # (T, 7, 3, 3) local rotation matrices of those joints
    trans: np.ndarray  # (T, 3) root translation (metres)


@dataclass(frozen=True)
class _LegModel:
    upper: np.ndarray  # hip -> knee rest offset
    lower: np.ndarray  # knee -> ankle rest offset
    dist_table: np.ndarray  # hip-ankle distance for knee flexions `theta_table` (increasing distance)
    theta_table: np.ndarray


@cache
def _skeleton() -> tuple[np.ndarray, np.ndarray]:
    s = rest_skeleton()
    return np.asarray(s.offsets, dtype=np.float64), np.asarray(s.rest_positions, dtype=np.float64)


def rx(a: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about X by angles `a` (radians)."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def align_directions(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smallest rotations (N, 3, 3) taking directions u (N, 3) to v (N, 3)."""
    u = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-12)
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    axis = np.cross(u, v)
    s = np.linalg.norm(axis, axis=-1)
    c = np.sum(u * v, -1)
    axis = np.where(s[:, None] > 1e-9, axis / np.maximum(s, 1e-12)[:, None], np.array([0.0, 0.0, 1.0]))
    return Rotation.from_rotvec(axis * np.arctan2(s, c)[:, None]).as_matrix()


@cache
def _leg_model(side: str) -> _LegModel:
    off, _ = _skeleton()
    upper, lower = off[J[f"{side}_knee"]].copy(), off[J[f"{side}_ankle"]].copy()
    theta = np.linspace(0.0, np.radians(70.0), 400)
    dist = np.linalg.norm(upper[None] + np.einsum("nij,j->ni", rx(theta), lower), axis=-1)
    return _LegModel(upper, lower, dist[::-1].copy(), theta[::-1].copy())


def planted_stance(pelvis_rotvec: np.ndarray, pelvis_shift: np.ndarray | None = None) -> Stance:
    """Legs and root translation for pelvis rotations (T, 3) (rotation vectors, world frame) and
    shifts (T, 3) (metres from the rest stance; default none), with both feet planted at rest."""
    pelvis_rotvec = np.asarray(pelvis_rotvec, dtype=np.float64).reshape(-1, 3)
    n = pelvis_rotvec.shape[0]
    shift = np.zeros((n, 3)) if pelvis_shift is None else np.asarray(pelvis_shift, dtype=np.float64)
    off, pos = _skeleton()
    rp_m = Rotation.from_rotvec(pelvis_rotvec).as_matrix()
    root = pos[0] + shift
    out = [rp_m]
    for side in SIDES:
        leg = _leg_model(side)
        hip = root + np.einsum("nij,j->ni", rp_m, off[J[f"{side}_hip"]])
        d = pos[J[f"{side}_ankle"]] - hip
        dist = np.linalg.norm(d, axis=-1)
        theta = np.interp(dist, leg.dist_table, leg.theta_table)
        knee = rx(theta)
        thigh = align_directions(leg.upper + np.einsum("nij,j->ni", knee, leg.lower), d)
        hip_local = np.swapaxes(rp_m, -1, -2) @ thigh
        ankle_local = np.swapaxes(thigh @ knee, -1, -2)
        out += [hip_local, knee, ankle_local]
    return Stance(STANCE_JOINTS, np.stack(out, axis=1), root - off[0])
