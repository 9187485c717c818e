"""SMPL-X motion -> any rig: the importer's retargeting (`gesticulator.library.retarget`) run backwards.

The importer turns a source joint's world rotation ``W(t)`` (relative to the source's rest, in the
source's axes) into the SMPL-X world rotation

    G_j(t) = C W(t) C^T R_fix_j

where ``C`` changes axes and ``R_fix_j`` (from `rest_corrections`) takes SMPL-X rest bone
directions onto the source's. Exporting inverts that for every rig joint mapped to SMPL-X joint j:

    W(t) = C^T G_j(t) R_fix_j^T C

so the rig's bone from j to its primary child points exactly where the SMPL-X bone points, with
the rest-pose difference (A-pose, thumbs, spine split) and bone lengths absorbed by ``R_fix``
(computed between the rig's rest and the SMPL-X rest for the motion's own body shape). Rig joints
the map leaves out (extra spine joints, twist bones, end joints) keep their rest pose relative to
their parent: their world delta is the parent's. That is the exact inverse of the importer's
folding: an unmapped source joint's rotation ends up in the next mapped joint, whose world
rotation the importer reads directly, so skipping it costs nothing in a round trip. SMPL-X joints
the rig lacks (fingers of a rig without hands, a spine joint of a two-spine rig) drop out; their
rotation is still carried by the next mapped joint's world rotation.

Root translation: the SMPL-X pelvis displacement, scaled by the rig's standing hip height over
SMPL-X's, in the rig's axes and units, with the rig standing on its own floor. The motion's floor
is its own: the lowest ankle/foot joint over the take stands where the rig's lowest one does at
rest. BEAT2/AMASS takes (and gesticulator's output, `motion.stance.on_floor`) have their feet
near y = 0, but SMPL-X motion with zero translation (other tools' output, `RhythmModel.decode`)
stands with its feet ~1.3 m below the origin; measured against y = 0, such a motion sank the
avatar 1.2 m under its floor. Re-importing (the importer puts the rig's floor at
y = 0) gives the scaled displacement back, on a floor at y = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gesticulator.library.retarget import rest_corrections
from gesticulator.motion.kinematics import forward_kinematics, rest_skeleton
from gesticulator.motion.stance import FOOT_JOINTS
from gesticulator.rigs.rig import Rig, standing_pelvis_height
from gesticulator.types import Motion


@dataclass(frozen=True, eq=False)
class RigMotion:
    """A motion on a rig: rotations relative to the rig's rest pose, positions in rig units/axes."""

    rig: Rig
    world: np.ndarray  # (F, J, 3, 3) world rotation of each joint relative to its rest (rig axes)
    local: np.ndarray  # (F, J, 3, 3) parent-relative rotations relative to rest: a BVH's channels
    root_positions: np.ndarray  # (F, 3) world position of `rig.root`, rig units and axes
    positions: np.ndarray  # (F, J, 3) world joint positions, rig units and axes
    fps: float
    scale: float  # the translation scale used: rig hip height / SMPL-X hip height (metres/metres)

    @property
    def num_frames(self) -> int:
        return int(self.world.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def node_rotations(self) -> np.ndarray:
        """(F, J, 3, 3) node-local rotations for a rig whose nodes carry rest rotations (GLB):
        ``(D_parent Wr_parent)^T D_k Wr_k`` with ``Wr`` the rest world rotations and ``D`` the
        world deltas; the top joint's parent is the rig's fixed anchor node. Equal to `local`
        for BVH rigs (every ``Wr`` identity)."""
        skel = self.rig.skeleton
        wr = skel.rest_rotations
        world = self.world @ wr  # (F, J, 3, 3) animated world rotations
        out = np.empty_like(world)
        for k, p in enumerate(skel.parents):
            if p >= 0:
                out[:, k] = np.swapaxes(world[:, p], -1, -2) @ world[:, k]
            else:
                anchor = np.eye(3) if skel.anchor is None else _rotation(skel.anchor)
                out[:, k] = anchor.T @ world[:, k]
        return out


def _rotation(matrix: np.ndarray) -> np.ndarray:
    m = matrix[:3, :3]
    return m / np.cbrt(np.linalg.det(m))


def retarget_to_rig(motion: Motion, rig: Rig) -> RigMotion:
    """Retarget an SMPL-X motion onto `rig` (see the module docstring for the maths)."""
    fk = forward_kinematics(motion)
    g = fk.rotations  # (F, 55, 3, 3) SMPL-X world rotations relative to the flat-hand T-pose
    smplx_rest = rest_skeleton(motion.betas).rest_positions
    rest_smplx = rig.rest_smplx
    fixes, _ = rest_corrections({j: rest_smplx[s] for j, s in rig.mapping.items()}, smplx_rest)
    c = rig.axes
    skel = rig.skeleton
    n, num = motion.num_frames, skel.num_joints
    by_rig = {s: j for j, s in rig.mapping.items()}
    world = np.empty((n, num, 3, 3))
    for k, p in enumerate(skel.parents):  # parents come first
        if k in by_rig:
            j = by_rig[k]
            world[:, k] = c.T @ g[:, j] @ fixes[j].T @ c
        elif p >= 0:
            world[:, k] = world[:, p]  # unmapped: rest pose relative to the parent
        else:
            world[:, k] = np.eye(3)
    local = world.copy()
    for k, p in enumerate(skel.parents):
        if p >= 0:
            local[:, k] = np.swapaxes(world[:, p], -1, -2) @ world[:, k]

    # Root translation, worked out in SMPL-X axes and metres, then converted to the rig's.
    pelvis = fk.positions[:, 0]
    standing = standing_pelvis_height(smplx_rest)
    floor = float(fk.positions[:, list(FOOT_JOINTS), 1].min())  # this motion's lowest foot joint
    scale = rig.hip_height * rig.unit_scale / standing
    rest_root = rest_smplx[rig.root]
    root = np.empty((n, 3))
    root[:, [0, 2]] = rest_root[[0, 2]] + scale * (pelvis[:, [0, 2]] - smplx_rest[0, [0, 2]])
    root[:, 1] = rig.root_height * rig.unit_scale + scale * (pelvis[:, 1] - floor - standing)
    root_positions = (root @ c) / rig.unit_scale  # rows: C^T x, back to rig units

    positions = _positions(rig, world, root_positions)
    return RigMotion(
        rig=rig,
        world=world,
        local=local,
        root_positions=root_positions,
        positions=positions,
        fps=motion.fps,
        scale=float(scale),
    )


def _positions(rig: Rig, world: np.ndarray, root_positions: np.ndarray) -> np.ndarray:
    """World joint positions: each joint hangs off its parent by the rest offset turned by the
    parent's world delta; the root joint is placed at `root_positions` (its ancestors, unmapped,
    stay at rest)."""
    skel = rig.skeleton
    rest = skel.rest_positions
    out = np.empty((world.shape[0], skel.num_joints, 3))
    for k, p in enumerate(skel.parents):
        if k == rig.root:
            out[:, k] = root_positions
        elif p < 0:
            out[:, k] = rest[k]
        else:
            out[:, k] = out[:, p] + np.einsum("fij,j->fi", world[:, p], rest[k] - rest[p])
    return out


__all__ = ["RigMotion", "retarget_to_rig"]
