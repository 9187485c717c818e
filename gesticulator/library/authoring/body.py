"""The body model the authoring compiler works in: a fast FK, named places, body surfaces.

Everything here is in the SMPL-X rest skeleton's world frame (Y up, +Z forward, +X the figure's
left) with the neutral body shape, plus the *lateral* convention of the spec language: a spec
``x`` is "out", toward the side of the hand being solved (right hand: world -X; left: world +X).

The body surfaces (torso capsules, head sphere) match the preview renderer's stick figure
(`gesticulator.render.stick`), so "touching the chest" in a spec looks like touching in a still.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from gesticulator.motion import skeleton as sk
from gesticulator.motion.kinematics import rest_skeleton
from gesticulator.motion.rotations import axis_angle_to_matrix

J = sk.JOINT_INDEX
PARENTS = np.array(sk.PARENTS)
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
FINGERTIP_EXTENSION = 0.8  # fingertip = last joint + this x the last phalanx (as the renderer draws it)

# Torso as capsules along the spine (joint a, joint b, radius m), the renderer's figure.
TORSO_CAPSULES: tuple[tuple[str, str, float], ...] = (
    ("pelvis", "spine1", 0.095),
    ("spine1", "spine2", 0.10),
    ("spine2", "spine3", 0.11),
    ("left_collar", "right_collar", 0.085),
    ("spine3", "neck", 0.055),
)
HEAD_RADIUS = 0.1
HEAD_CENTER_OFFSET = np.array([0.0, 0.045, 0.0])  # in the head joint's frame


@cache
def skeleton() -> tuple[np.ndarray, np.ndarray]:
    """(offsets (55, 3), rest positions (55, 3)) of the neutral body, read-only."""
    s = rest_skeleton()
    off, pos = s.offsets.copy(), s.rest_positions.copy()
    off.setflags(write=False)
    pos.setflags(write=False)
    return off, pos


def fk(local: np.ndarray, trans: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Forward kinematics of local rotation matrices (..., 55, 3, 3) (flat-hand convention:
    finger rotations already include the mean hand). Returns world positions (..., 55, 3) and
    world rotations (..., 55, 3, 3). Same result as `forward_kinematics`, without mannequin-x."""
    off, _ = skeleton()
    local = np.asarray(local, dtype=np.float64)
    shape = local.shape[:-3]
    rot = np.empty(shape + (55, 3, 3))
    pos = np.empty(shape + (55, 3))
    rot[..., 0, :, :] = local[..., 0, :, :]
    pos[..., 0, :] = off[0] + (0.0 if trans is None else trans)
    for j in range(1, 55):
        p = PARENTS[j]
        rot[..., j, :, :] = rot[..., p, :, :] @ local[..., j, :, :]
        pos[..., j, :] = pos[..., p, :] + rot[..., p, :, :] @ off[j]
    return pos, rot


def fk_axis_angle(flat_rotvecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FK of (..., 55, 3) axis-angle rotations in the flat-hand convention."""
    return fk(axis_angle_to_matrix(np.asarray(flat_rotvecs, dtype=np.float64)))


def fingertips(positions: np.ndarray, side: str) -> dict[str, np.ndarray]:
    """Fingertip points (..., 3) per finger, extrapolated beyond the last joint like the renderer."""
    out = {}
    for f in FINGERS:
        j2, j3 = positions[..., J[f"{side}_{f}2"], :], positions[..., J[f"{side}_{f}3"], :]
        out[f] = j3 + FINGERTIP_EXTENSION * (j3 - j2)
    return out


def hand_points(positions: np.ndarray, side: str) -> np.ndarray:
    """(..., 6, 3): the wrist and the five fingertips of one hand (what must stay out of the body)."""
    tips = fingertips(positions, side)
    return np.stack([positions[..., J[f"{side}_wrist"], :], *(tips[f] for f in FINGERS)], axis=-2)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def torso_clearance(points: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Signed distance (m) of `points` (..., K, 3) to the torso surface (capsules) of the pose
    `positions` (..., 55, 3): negative inside the torso."""
    d = np.full(points.shape[:-1], np.inf)
    for a, b, r in TORSO_CAPSULES:
        pa = positions[..., J[a], :][..., None, :]
        pb = positions[..., J[b], :][..., None, :]
        d = np.minimum(d, _segment_distance(points, pa, pb) - r)
    return d


def head_center(positions: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    return positions[..., J["head"], :] + rotations[..., J["head"], :, :] @ HEAD_CENTER_OFFSET


def head_clearance(points: np.ndarray, positions: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Signed distance of `points` (..., K, 3) to the head sphere."""
    c = head_center(positions, rotations)[..., None, :]
    return np.linalg.norm(points - c, axis=-1) - HEAD_RADIUS


@dataclass(frozen=True)
class Place:
    """A named point in a body frame. `anchor` is the joint whose frame carries it ("spine3" for
    the torso and gesture space, "head" for the face); `pos` is in the lateral convention
    (x out, y up, z forward) relative to the anchor joint's rest position; `normal` is the
    outward surface normal for places on the body (None for points in the air)."""

    anchor: str
    pos: tuple[float, float, float]
    normal: tuple[float, float, float] | None = None
    doc: str = ""


def _head_surface(out: float, up: float, fwd: float, extra: float = 0.0) -> Place:
    """A point on the head sphere in direction (out, up, fwd) from its centre, `extra` beyond it."""
    d = np.array([out, up, fwd], dtype=np.float64)
    d /= np.linalg.norm(d)
    p = HEAD_CENTER_OFFSET + d * (HEAD_RADIUS + extra)
    return Place("head", tuple(float(v) for v in p), tuple(float(v) for v in d))


def _chest_surface(out: float, y: float) -> Place:
    """The point on the front of the torso (the capsules, rest pose) `out` m to the side
    (x, lateral convention for a RIGHT hand) and `y` m above spine3, found by marching a ray
    from the front; the normal is the capsules' distance gradient there."""
    _, pos = skeleton()
    origin = pos[J["spine3"]]
    x_world = origin[0] - out  # lateral out for a right hand is world -x

    def sdf(z: float) -> float:
        p = np.array([[x_world, origin[1] + y, z]])
        return float(torso_clearance(p, pos)[0])

    lo, hi = origin[2] - 0.05, origin[2] + 0.5  # inside .. outside
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if sdf(mid) > 0:
            hi = mid
        else:
            lo = mid
    z = hi
    eps = 1e-4
    p0 = np.array([x_world, origin[1] + y, z])
    grad = np.array([
        float(torso_clearance((p0 + eps * e)[None], pos)[0] - torso_clearance((p0 - eps * e)[None], pos)[0])
        for e in np.eye(3)
    ])  # fmt: skip
    grad /= np.linalg.norm(grad)
    normal = (-grad[0], grad[1], grad[2])  # back to the lateral convention
    return Place("spine3", (out, y, float(z - origin[2])), tuple(float(v) for v in normal))


# Gesture space, in metres relative to spine3 (the chest joint, ~6 cm below the shoulders' line
# is ~14 cm above it). x is out toward the hand's side. McNeill's centre-centre is `center`.
PLACES: dict[str, Place] = {
    # -- in the air, carried by the chest --
    "center": Place("spine3", (0.0, -0.01, 0.30), doc="in front of the sternum, midline"),
    "chest_front": Place(
        "spine3", (0.10, 0.02, 0.30), doc="in front of the chest, a little to the hand's side"
    ),
    "front_mid": Place("spine3", (0.14, -0.08, 0.30), doc="in front of the lower chest, hand's side"),
    "front_low": Place("spine3", (0.14, -0.24, 0.27), doc="in front of the belly / waist"),
    "waist_front": Place("spine3", (0.16, -0.30, 0.24), doc="waist height, forward"),
    "front_high": Place("spine3", (0.14, 0.22, 0.30), doc="in front of the face / chin height"),
    "shoulder_front": Place("spine3", (0.20, 0.12, 0.32), doc="in front of the shoulder"),
    "far_front": Place("spine3", (0.15, 0.08, 0.48), doc="arm extended forward at chest height"),
    "far_front_high": Place("spine3", (0.15, 0.30, 0.44), doc="arm extended forward and up"),
    "side_low": Place("spine3", (0.30, -0.30, 0.10), doc="low, out to the side"),
    "side_mid": Place("spine3", (0.44, -0.02, 0.16), doc="out to the side at chest height"),
    "side_high": Place("spine3", (0.42, 0.32, 0.12), doc="out to the side, above the shoulder"),
    "far_side": Place("spine3", (0.60, 0.12, 0.10), doc="arm extended out to the side at shoulder height"),
    "beside_head": Place("spine3", (0.28, 0.32, 0.12), doc="raised beside the head"),
    "overhead": Place("spine3", (0.16, 0.66, 0.10), doc="above the head"),
    "shoulder_top": Place("spine3", (0.20, 0.24, 0.02), doc="just above and in front of the shoulder"),
    # -- on the body (contacts): normals point out of the surface --
    "sternum": _chest_surface(0.0, 0.0),
    "heart": _chest_surface(-0.07, -0.01),  # the chest's left side for a right hand
    "belly": _chest_surface(0.0, -0.18),
    # -- on the head (carried by the head): the head joint is at the base of the skull --
    "chin": _head_surface(0.0, -0.75, 0.66),
    "lips": _head_surface(0.0, -0.30, 1.0),
    "nose": _head_surface(0.0, -0.05, 1.0),
    "forehead": _head_surface(0.0, 0.40, 1.0),
    "eyes": _head_surface(0.0, 0.12, 1.0),
    "temple": _head_surface(1.0, 0.35, 0.45),
    "cheek": _head_surface(0.75, -0.30, 0.70),
}


def place_names() -> list[str]:
    return sorted(PLACES)
