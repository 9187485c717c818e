"""Analytic arm IK: collar, shoulder, elbow and wrist rotations that put a hand somewhere.

`solve_arm` takes a wrist target and a desired hand orientation in world space and returns the
four local rotations of one arm (collar, shoulder, elbow, wrist), in the SMPL-X rest frame
(all local axes equal the world axes in the T-pose):

1. the collar rises when the hand goes above the shoulder and comes forward on forward reaches
   (plus any explicit shrug);
2. two-bone IK: the elbow angle follows from the shoulder-wrist distance (clamped between
   `ELBOW_MIN` -- no hyperextension -- and `ELBOW_MAX`); the swivel angle (the elbow's position on
   its circle around the shoulder-wrist axis) is picked by a short search that prefers the elbow
   down and a little out and back, keeps the upper arm out of the torso and, when the arm is
   nearly straight, turns the humerus so the forearm needs the least twist;
3. the forearm twist (pronation/supination, on the elbow joint about the forearm bone) and the
   wrist's flexion/deviation realise the palm orientation within natural limits (clamped).

Everything is solved for a RIGHT arm; a left arm is solved as the mirror image of a right one
(the rest skeleton is nearly symmetric, and mirroring keeps one set of conventions).
Right-arm conventions (degrees, local axes): collar elevation is -z, protraction +y; elbow flexion
is +y; forearm supination (palm up from the T-pose's palm down) is negative twist; wrist flexion
toward the palm is +z, radial deviation (toward the thumb) +y.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.spatial.transform import Rotation

from gesticulator.library.authoring import body

MIRROR = np.diag([-1.0, 1.0, 1.0])

ELBOW_MIN = np.radians(4.0)  # the elbow never straightens fully (no hyperextension)
ELBOW_MAX = np.radians(150.0)
TWIST_RANGE = np.radians([-110.0, 90.0])  # forearm: supination (-) .. pronation (+), from palm-down
WRIST_FLEX = np.radians([-65.0, 75.0])  # extension (-) .. flexion toward the palm (+)
WRIST_DEV = np.radians([-30.0, 20.0])  # ulnar (-) .. radial (+)
COLLAR_ELEVATION_MAX = np.radians(16.0)
COLLAR_PROTRACTION_MAX = np.radians(8.0)
# Preferred elbow direction (right arm): down, a little out and a little back.
POLE = np.array([-0.45, -1.0, -0.25])


def mirror_matrix(r: np.ndarray) -> np.ndarray:
    """Reflect rotation matrices (..., 3, 3) across the sagittal plane."""
    return MIRROR @ r @ MIRROR


@dataclass(frozen=True)
class ArmChain:
    """One arm's rest offsets, expressed for the right-arm solver (a left arm's are mirrored)."""

    collar: np.ndarray  # spine3 -> collar joint
    shoulder: np.ndarray  # collar -> shoulder
    upper: np.ndarray  # shoulder -> elbow
    fore: np.ndarray  # elbow -> wrist


@cache
def arm_chain(side: str) -> ArmChain:
    off, _ = body.skeleton()
    j = body.J
    vecs = [off[j[f"{side}_{n}"]].copy() for n in ("collar", "shoulder", "elbow", "wrist")]
    if side == "left":
        vecs = [MIRROR @ v for v in vecs]
    return ArmChain(*vecs)


def _rot(axis: np.ndarray, angle: float | np.ndarray) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    return Rotation.from_rotvec(np.multiply.outer(np.asarray(angle), axis / np.linalg.norm(axis))).as_matrix()


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def collar_rotation(elevation: float, protraction: float) -> np.ndarray:
    """Right collar local rotation: protraction about +y, then elevation (about -z)."""
    return _rot([0, 1.0, 0], protraction) @ _rot([0, 0, -1.0], elevation)


def auto_collar(wrist_target: np.ndarray, shoulder: np.ndarray, chest_rot: np.ndarray) -> tuple[float, float]:
    """Collar elevation/protraction (radians) the target asks for: the shoulder girdle helps
    when the hand goes above the shoulder or reaches far forward (right-arm frame)."""
    d = chest_rot.T @ (wrist_target - shoulder)
    reach = 0.52
    up = np.clip((d[1] + 0.05) / (0.5 * reach + 0.05), 0.0, 1.0)
    fwd = np.clip((d[2] - 0.25) / 0.25, 0.0, 1.0)
    smooth = lambda x: x * x * (3 - 2 * x)  # noqa: E731
    return float(COLLAR_ELEVATION_MAX * smooth(up)), float(COLLAR_PROTRACTION_MAX * smooth(fwd))


def _elbow_angle_for(chain: ArmChain, distance: float) -> float:
    """Elbow flexion whose shoulder-wrist distance is `distance` (bisection; monotone)."""
    a, b = chain.upper, chain.fore
    ry = lambda t: _rot([0, 1.0, 0], t)  # noqa: E731

    def dist(t: float) -> float:
        return float(np.linalg.norm(a + ry(t) @ b))

    lo, hi = ELBOW_MIN, ELBOW_MAX
    if distance >= dist(lo):
        return lo
    if distance <= dist(hi):
        return hi
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if dist(mid) > distance:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _align(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction u to direction v."""
    u, v = _unit(u), _unit(v)
    axis = np.cross(u, v)
    s, c = np.linalg.norm(axis), float(np.dot(u, v))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        perp = np.cross(u, [1.0, 0, 0]) if abs(u[0]) < 0.9 else np.cross(u, [0, 1.0, 0])
        return _rot(perp, np.pi)
    return _rot(axis, np.arctan2(s, c))


def twist_swing(q_rel: np.ndarray, axis: np.ndarray) -> tuple[float, np.ndarray]:
    """Split a rotation matrix R = R_axis(twist) @ S where S has no twist about `axis`.
    Returns (twist angle, S as a rotation vector)."""
    r = Rotation.from_matrix(q_rel)
    x, y, z, w = r.inv().as_quat()  # R^-1 = S^-1 @ R_axis(-twist): swing-twist of the inverse
    n = _unit(axis)
    p = np.dot([x, y, z], n) * n
    tw = np.array([*p, w])
    if np.linalg.norm(tw) < 1e-12:
        tw = np.array([0, 0, 0, 1.0])
    tw = tw / np.linalg.norm(tw)
    twist_inv = Rotation.from_quat(tw)  # R^-1 = swing_inv * twist_inv
    swing_inv = r.inv() * twist_inv.inv()
    twist = twist_inv.inv()
    angle = float(np.dot(twist.as_rotvec(), n))
    return angle, swing_inv.inv().as_rotvec()


@dataclass(frozen=True)
class ArmSolution:
    collar: np.ndarray  # local rotation matrices, in the arm's own side convention
    shoulder: np.ndarray
    elbow: np.ndarray
    wrist: np.ndarray
    swivel: float  # radians, chosen swivel relative to the pole-vector choice
    clamped: bool  # True when a limit or the arm's reach changed the request
    wrist_world: np.ndarray  # where the wrist ended up (world)
    elbow_world: np.ndarray
    elbow_flex: float = 0.0  # radians, within [ELBOW_MIN, ELBOW_MAX]
    twist: float = 0.0  # forearm twist, radians, within TWIST_RANGE
    wrist_flex: float = 0.0  # radians, within WRIST_FLEX
    wrist_dev: float = 0.0  # radians, within WRIST_DEV


def _clamp(x: float, lo_hi: np.ndarray) -> tuple[float, bool]:
    y = float(np.clip(x, lo_hi[0], lo_hi[1]))
    return y, abs(y - x) > 1e-9


def solve_arm(
    side: str,
    wrist_target: np.ndarray,
    hand_rot: np.ndarray | None,
    chest_pos: np.ndarray,
    chest_rot: np.ndarray,
    *,
    swivel_offset: float = 0.0,
    shrug: float = 0.0,
    torso: tuple[np.ndarray, np.ndarray] | None = None,
    search: bool = True,
    fixed_swivel: float | None = None,
    prefer_swivel: float | None = None,
) -> ArmSolution:
    """Solve one arm.

    `wrist_target` (3,) world; `hand_rot` (3, 3) the hand's desired world rotation in the flat
    hand's rest convention (None: the wrist stays straight, forearm untwisted); `chest_pos`,
    `chest_rot`: spine3's world position and rotation (the collar's parent); `swivel_offset`
    radians (+ lifts the elbow out/up); `shrug` radians of extra collar elevation; `torso`:
    (segment starts, segment ends, radii) capsules of the current pose to keep the elbow out of;
    `fixed_swivel`: reuse a swivel found before (per-frame solving of a moving target);
    `prefer_swivel`: the previous key's swivel, kept when nothing speaks against it so that
    consecutive keys do not jump between two equally good arm configurations."""
    chain = arm_chain(side)
    if side == "left":
        wrist_target = MIRROR @ wrist_target
        hand_rot = None if hand_rot is None else mirror_matrix(hand_rot)
        chest_pos = MIRROR @ chest_pos
        chest_rot = mirror_matrix(chest_rot)
        if torso is not None:
            torso = (torso[0] @ MIRROR, torso[1] @ MIRROR, torso[2])
    # 1. collar
    collar_pos = chest_pos + chest_rot @ chain.collar
    shoulder_rest = collar_pos + chest_rot @ chain.shoulder
    elev, prot = auto_collar(wrist_target, shoulder_rest, chest_rot)
    collar_local = collar_rotation(elev + shrug, prot)
    collar_world = chest_rot @ collar_local
    shoulder = collar_pos + collar_world @ chain.shoulder
    # 2. two-bone IK in world space
    d_vec = wrist_target - shoulder
    dist = float(np.linalg.norm(d_vec))
    theta = _elbow_angle_for(chain, dist)
    ry = _rot([0, 1.0, 0], theta)
    v = chain.upper + ry @ chain.fore  # shoulder -> wrist in the shoulder's rest frame
    axis = _unit(d_vec) if dist > 1e-6 else chest_rot @ np.array([0, -1.0, 0])
    base = _align(v, axis)  # upper arm world rotation before swivel
    e0 = base @ chain.upper
    pole = chest_rot @ _unit(POLE)

    def perp(x: np.ndarray) -> np.ndarray:
        return x - np.dot(x, axis) * axis

    pe, pp = perp(e0), perp(pole)
    if np.linalg.norm(pp) < 1e-6:  # pole along the arm (hand straight down): elbow back
        pp = perp(chest_rot @ np.array([0, 0, -1.0]))
    phi0 = np.arctan2(np.dot(np.cross(_unit(pe), _unit(pp)), axis), np.dot(_unit(pe), _unit(pp)))

    fore_axis = _unit(chain.fore)

    def pose_for(phi: float):
        r_sw = _rot(axis, phi) @ base
        elbow_w = shoulder + r_sw @ chain.upper
        e_world = r_sw @ ry  # elbow joint frame without twist
        cost = 0.0
        if hand_rot is not None:
            q = e_world.T @ hand_rot
            tw, sw = twist_swing(q, fore_axis)
            cost += max(0.0, TWIST_RANGE[0] - tw, tw - TWIST_RANGE[1]) ** 2 * 4.0
            cost += max(0.0, WRIST_FLEX[0] - sw[2], sw[2] - WRIST_FLEX[1]) ** 2 * 2.0
            cost += max(0.0, WRIST_DEV[0] - sw[1], sw[1] - WRIST_DEV[1]) ** 2 * 2.0
            cost += 0.02 * tw**2  # mild preference for an untwisted forearm
        if torso is not None:
            a, b, r = torso
            clr = float(np.min(body._segment_distance(elbow_w[None], a, b) - r)) - 0.05
            cost += 40.0 * min(clr, 0.0) ** 2 / 0.01
        return r_sw, elbow_w, cost

    if fixed_swivel is not None:
        phi = phi0 + fixed_swivel
    else:
        # The pole matters less the straighter the arm: then the swivel is mostly humeral twist.
        bend = np.clip((theta - np.radians(15)) / np.radians(60), 0.0, 1.0)
        w_pole = 0.15 + 2.0 * bend
        target_phi = phi0 + swivel_offset

        def total(phi_c: float) -> float:
            c = pose_for(phi_c)[2] + w_pole * (phi_c - target_phi) ** 2
            if prefer_swivel is not None:
                c += 1.5 * (phi_c - phi0 - prefer_swivel) ** 2
            return c

        best = None
        candidates = np.radians(np.arange(-90, 91, 6.0)) if search else np.zeros(1)
        for dphi in candidates:
            phi_c = target_phi + dphi
            c = total(phi_c)
            if best is None or c < best[0] - 1e-12:
                best = (c, phi_c)
        phi = best[1]
        if search:  # refine around the best sample
            for step in np.radians([3.0, 1.5, 0.75]):
                for cand in (phi - step, phi + step):
                    c = total(cand)
                    if c < best[0]:
                        best = (c, cand)
                phi = best[1]
    r_sw, elbow_w, _ = pose_for(phi)
    shoulder_local = collar_world.T @ r_sw
    clamped = abs(dist - float(np.linalg.norm(v))) > 1e-4
    e_world = r_sw @ ry
    if hand_rot is None:
        twist, swing = 0.0, np.zeros(3)
    else:
        twist, swing = twist_swing(e_world.T @ hand_rot, fore_axis)
    twist, c1 = _clamp(twist, TWIST_RANGE)
    flex, c2 = _clamp(swing[2], WRIST_FLEX)
    dev, c3 = _clamp(swing[1], WRIST_DEV)
    clamped = clamped or c1 or c2 or c3
    elbow_local = ry @ _rot(fore_axis, twist)
    wrist_local = Rotation.from_rotvec([swing[0], dev, flex]).as_matrix()
    wrist_w = shoulder + r_sw @ v
    out = [collar_local, shoulder_local, elbow_local, wrist_local]
    if side == "left":
        out = [mirror_matrix(m) for m in out]
        wrist_w = MIRROR @ wrist_w
        elbow_w = MIRROR @ elbow_w
    return ArmSolution(
        *out, swivel=float(phi - phi0), clamped=clamped, wrist_world=wrist_w, elbow_world=elbow_w,
        elbow_flex=float(theta), twist=twist, wrist_flex=flex, wrist_dev=dev,
    )  # fmt: skip


def hand_rotation(palm: np.ndarray, fingers: np.ndarray, side: str = "right") -> np.ndarray:
    """World rotation of a hand whose palm faces `palm` and whose fingers point along `fingers`
    (world directions; `fingers` is made perpendicular to `palm`). The flat rest hand has the
    palm down (-y) and the fingers along the arm (right: -x, left: +x)."""
    n = _unit(np.asarray(palm, dtype=np.float64))
    f = np.asarray(fingers, dtype=np.float64)
    f = _unit(f - np.dot(f, n) * n)
    if side == "left":
        return mirror_matrix(hand_rotation(MIRROR @ n, MIRROR @ f))
    return np.stack([-f, -n, np.cross(f, n)], axis=1)


__all__ = ["ArmSolution", "arm_chain", "hand_rotation", "mirror_matrix", "solve_arm", "twist_swing"]
