"""Compile an `author:` spec into take clips: keys -> per-key poses (IK) -> per-frame motion.

The spec language is documented in `gesticulator.library.authoring` (the package docstring).
`parse_spec` validates a spec and resolves key inheritance (an arm, head or torso setting stays
until a later key changes it); `compile_take` turns it into one take -- a 30 fps `Motion` that
starts and ends in the relaxed rest pose -- plus its phase marks. Take 0 ("a") is the spec as
written; later takes vary amplitude, timing and shapes by a seeded random draw.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation
from scipy.special import betainc

from gesticulator.library.authoring import body, hands, ik
from gesticulator.motion import skeleton as sk
from gesticulator.types import CANONICAL_FPS, Motion

FPS = CANONICAL_FPS
SIDES = ("right", "left")
J = sk.JOINT_INDEX

# The relaxed standing pose every clip starts and ends in (degrees, local axes, intrinsic XYZ):
# arms hang at the sides with a slight elbow bend, hands relaxed (examples/make_demo.py's REST).
REST_DEGREES: dict[tuple[str, str], float] = {
    ("left_shoulder", "z"): -72, ("right_shoulder", "z"): 72,
    ("left_shoulder", "y"): -8, ("right_shoulder", "y"): 8,
    ("left_elbow", "y"): -15, ("right_elbow", "y"): 15,
    ("left_collar", "z"): -4, ("right_collar", "z"): 4,
}  # fmt: skip

DEFAULTS = {"takes": 2, "variation": 1.0, "lead": 0.1, "retract": 0.5, "tail": 0.1, "dur": 0.3}
APEX_OVERSHOOT = 0.04
EASES = {"smooth": (3.0, 3.0), "snap": (2.0, 4.0), "hit": (4.0, 2.2)}
EFFECTORS = ("wrist", "palm", "index_tip", "middle_tip", "thumb_tip", "fingertips", "knuckles")
# How far the effector point sits off a touched surface (its own half thickness), metres.
CLEARANCE = {"wrist": 0.03, "palm": 0.018, "index_tip": 0.011, "middle_tip": 0.011, "thumb_tip": 0.011,
             "fingertips": 0.011, "knuckles": 0.016}  # fmt: skip
DIRECTIONS = {
    "forward": (0, 0, 1), "front": (0, 0, 1), "viewer": (0, 0, 1), "back": (0, 0, -1), "body": (0, 0, -1),
    "up": (0, 1, 0), "down": (0, -1, 0), "out": (1, 0, 0), "in": (-1, 0, 0),
}  # fmt: skip
TOP_FIELDS = {"takes", "variation", "lead", "retract", "tail", "contact", "keys", "notes"}
KEY_FIELDS = {"dur", "hold", "ease", "overshoot", "mark", "right", "left", "both", "head", "torso", "shrug",
              "via", "circle", "name"}  # fmt: skip
ARM_FIELDS = {"at", "offset", "touch", "effector", "palm", "fingers", "hand", "elbow", "shrug", "rest"}
HEAD_FIELDS = {"nod", "turn", "tilt"}
TORSO_FIELDS = {"lean", "turn", "bend"}
CIRCLE_FIELDS = {"arm", "radius", "turns", "plane", "direction"}
MARKS = ("stroke_start", "apex", "stroke_end")


class SpecError(ValueError):
    """A problem in an author spec: `field` is the dotted path inside `author`."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"field 'author.{field}': {message}" if field else f"author: {message}")


# -- spec parsing ----------------------------------------------------------------------------------
@dataclass
class Key:
    """One resolved key: every arm/head/torso setting explicit (inheritance applied)."""

    path: str
    dur: float
    hold: float
    ease: str
    overshoot: float | None
    marks: frozenset[str]
    arms: dict[str, dict]  # side -> arm spec ({"rest": True} or a target spec)
    head: dict[str, float]
    torso: dict[str, float]
    shrug: float
    via: Key | None = None
    circle: dict | None = None


@dataclass
class Spec:
    takes: int
    variation: float
    lead: float
    retract: float
    tail: float
    contact: bool
    keys: list[Key]
    raw: dict = field(repr=False, default_factory=dict)


def _num(value: Any, where: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise SpecError(where, f"expected a number, got {value!r}")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise SpecError(where, f"{value} is out of range [{lo}, {hi}]")
    return float(value)


def _vec3(value: Any, where: str) -> tuple[float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise SpecError(where, f"expected [x, y, z] in metres, got {value!r}")
    return tuple(_num(v, f"{where}[{i}]", -2.0, 2.0) for i, v in enumerate(value))  # type: ignore[return-value]


def _mapping(value: Any, where: str, allowed: set[str]) -> dict:
    if not isinstance(value, dict):
        raise SpecError(where, f"expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise SpecError(
            f"{where}.{unknown[0]}" if where else unknown[0],
            f"unknown field — known: {', '.join(sorted(allowed))}",
        )
    return value


def direction(value: Any, where: str) -> np.ndarray:
    """A unit direction in the lateral body frame (x out, y up, z forward): a word, a weighted
    sum of words ("forward+up*0.5"), or a vector [x, y, z]."""
    if isinstance(value, str):
        total = np.zeros(3)
        for term in value.replace(" ", "").split("+"):
            word, _, weight = term.partition("*")
            if word not in DIRECTIONS:
                raise SpecError(
                    where, f"unknown direction {word!r} — known: {', '.join(DIRECTIONS)} (or [x, y, z])"
                )
            try:
                k = float(weight) if weight else 1.0
            except ValueError:
                raise SpecError(
                    where, f"bad weight {weight!r} in {value!r} (write e.g. up+out*0.5)"
                ) from None
            total += k * np.asarray(DIRECTIONS[word], dtype=np.float64)
    else:
        if not isinstance(value, (list, tuple)) or len(value) != 3:
            raise SpecError(where, f"expected a direction word or [x, y, z], got {value!r}")
        total = np.array([_num(v, f"{where}[{i}]") for i, v in enumerate(value)])
    n = np.linalg.norm(total)
    if n < 1e-6:
        raise SpecError(where, f"direction {value!r} has no length")
    return total / n


def _check_arm(spec: dict, where: str) -> None:
    if spec.get("rest"):
        return
    if "at" not in spec and "touch" not in spec:
        raise SpecError(
            where, "an arm needs `at` (a place or [x, y, z]), `touch` (a body place) or `rest: true`"
        )
    if "at" in spec:
        at = spec["at"]
        if isinstance(at, str):
            if at not in body.PLACES:
                raise SpecError(
                    f"{where}.at", f"unknown place {at!r} — known: {', '.join(body.place_names())}"
                )
        else:
            _vec3(at, f"{where}.at")
    if "touch" in spec:
        place = spec["touch"]
        if not isinstance(place, str) or place not in body.PLACES or body.PLACES[place].normal is None:
            known = sorted(k for k, p in body.PLACES.items() if p.normal is not None)
            raise SpecError(f"{where}.touch", f"unknown body surface {place!r} — known: {', '.join(known)}")
    if "offset" in spec:
        _vec3(spec["offset"], f"{where}.offset")
    if spec.get("effector", "wrist") not in EFFECTORS:
        raise SpecError(
            f"{where}.effector", f"unknown effector {spec['effector']!r} — known: {', '.join(EFFECTORS)}"
        )
    for name in ("palm", "fingers"):
        if name in spec:
            direction(spec[name], f"{where}.{name}")
    if "palm" in spec and "fingers" in spec:
        p, f = direction(spec["palm"], f"{where}.palm"), direction(spec["fingers"], f"{where}.fingers")
        if abs(float(np.dot(p, f))) > 0.97:
            raise SpecError(
                f"{where}.fingers", "fingers and palm point the same way; give perpendicular directions"
            )
    if "hand" in spec and (not isinstance(spec["hand"], str) or hands.resolve(spec["hand"]) is None):
        raise SpecError(
            f"{where}.hand", f"unknown hand shape {spec['hand']!r} — known: {', '.join(hands.shape_names())}"
        )
    for name in ("elbow", "shrug"):
        if name in spec:
            _num(spec[name], f"{where}.{name}", -90, 90)


def _merge_arm(prev: dict, new: Any, where: str) -> dict:
    new = _mapping(new, where, ARM_FIELDS)
    if new.get("rest"):
        out = {"rest": True}
        if "hand" in new:
            out["hand"] = new["hand"]
        return out
    out = {} if prev.get("rest") else dict(prev)
    if "at" in new or "touch" in new:
        for k in ("at", "touch", "offset"):
            out.pop(k, None)
        if "touch" in new:
            out.pop("effector", None)
    out.update(new)
    out.pop("rest", None)
    _check_arm(out, where)
    return out


def _merge_angles(prev: dict, new: Any, where: str, allowed: set[str]) -> dict:
    new = _mapping(new, where, allowed)
    out = dict(prev)
    for k, v in new.items():
        out[k] = _num(v, f"{where}.{k}", -90, 90)
    return out


def _expand(raw_keys: Any, where: str, depth: int = 0) -> list[tuple[dict, str]]:
    if not isinstance(raw_keys, list) or not raw_keys:
        raise SpecError(where, "expected a non-empty list of keys")
    out = []
    for i, k in enumerate(raw_keys):
        path = f"{where}[{i}]"
        if isinstance(k, dict) and "repeat" in k:
            _mapping(k, path, {"repeat", "keys"})
            n = k["repeat"]
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 20:
                raise SpecError(f"{path}.repeat", f"expected a count 1..20, got {n!r}")
            if depth > 2:
                raise SpecError(path, "repeats nest at most three deep")
            inner = _expand(k.get("keys"), f"{path}.keys", depth + 1)
            out.extend(inner * n)
        else:
            out.append((_mapping(k, path, KEY_FIELDS), path))
    return out


def _resolve_key(raw: dict, path: str, prev: Key | None, defaults: dict) -> Key:
    dur = _num(raw.get("dur", defaults["dur"]), f"{path}.dur", 0.04, 5.0)
    hold = _num(raw.get("hold", 0.0), f"{path}.hold", 0.0, 5.0)
    ease = raw.get("ease", "smooth")
    if ease not in EASES:
        raise SpecError(f"{path}.ease", f"unknown ease {ease!r} — known: {', '.join(EASES)}")
    overshoot = raw.get("overshoot")
    if overshoot is not None:
        overshoot = _num(overshoot, f"{path}.overshoot", 0.0, 0.3)
    marks = raw.get("mark", [])
    marks = [marks] if isinstance(marks, str) else marks
    if not isinstance(marks, list) or any(m not in MARKS for m in marks):
        raise SpecError(f"{path}.mark", f"unknown mark {raw.get('mark')!r} — known: {', '.join(MARKS)}")
    arms = {s: dict(prev.arms[s]) for s in SIDES} if prev else {s: {"rest": True} for s in SIDES}
    if "both" in raw:
        for s in SIDES:
            arms[s] = _merge_arm(arms[s], raw["both"], f"{path}.both")
    for s in SIDES:
        if s in raw:
            arms[s] = _merge_arm(arms[s], raw[s], f"{path}.{s}")
    head = _merge_angles(prev.head if prev else {}, raw.get("head", {}), f"{path}.head", HEAD_FIELDS)
    torso = _merge_angles(prev.torso if prev else {}, raw.get("torso", {}), f"{path}.torso", TORSO_FIELDS)
    shrug = _num(raw["shrug"], f"{path}.shrug", -20, 45) if "shrug" in raw else (prev.shrug if prev else 0.0)
    key = Key(path, dur, hold, ease, overshoot, frozenset(marks), arms, head, torso, shrug)
    if "via" in raw:
        via_raw = _mapping(raw["via"], f"{path}.via", {"right", "left", "both", "head", "torso", "shrug"})
        base = prev or Key(
            path, dur, 0, "smooth", None, frozenset(), {s: {"rest": True} for s in SIDES}, {}, {}, 0.0
        )
        key.via = _resolve_key({**via_raw, "dur": dur}, f"{path}.via", base, defaults)
    if "circle" in raw:
        c = _mapping(raw["circle"], f"{path}.circle", CIRCLE_FIELDS)
        arm = c.get("arm", "right")
        if arm not in SIDES or arms[arm].get("rest"):
            raise SpecError(f"{path}.circle.arm", f"{arm!r} is not an arm with a target in this key")
        plane = c.get("plane", "front")
        if plane not in ("front", "side", "top"):
            raise SpecError(f"{path}.circle.plane", f"unknown plane {plane!r} — known: front, side, top")
        if hold <= 0:
            raise SpecError(f"{path}.hold", "a circle is drawn during the key's hold; give `hold` > 0")
        key.circle = {
            "arm": arm,
            "radius": _num(c.get("radius", 0.08), f"{path}.circle.radius", 0.01, 0.4),
            "turns": _num(c.get("turns", 1.0), f"{path}.circle.turns", 0.25, 6),
            "plane": plane,
            "direction": _num(c.get("direction", 1), f"{path}.circle.direction", -1, 1),
        }
    return key


def parse_spec(author: Any) -> Spec:
    """Validate an `author:` mapping; raises `SpecError` naming the offending field."""
    if not isinstance(author, dict):
        raise SpecError("", "expected a mapping with `keys`")
    _mapping(author, "", TOP_FIELDS)
    if "keys" not in author:
        raise SpecError("keys", "missing: list the poses of the gesture")
    takes = author.get("takes", DEFAULTS["takes"])
    if isinstance(takes, bool) or not isinstance(takes, int) or not 1 <= takes <= 8:
        raise SpecError("takes", f"expected a count 1..8, got {takes!r}")
    defaults = dict(DEFAULTS)
    keys: list[Key] = []
    for raw, path in _expand(author["keys"], "keys"):
        keys.append(_resolve_key(raw, path, keys[-1] if keys else None, defaults))
    return Spec(
        takes=takes,
        variation=_num(author.get("variation", 1.0), "variation", 0.0, 3.0),
        lead=_num(author.get("lead", DEFAULTS["lead"]), "lead", 0.0, 2.0),
        retract=_num(author.get("retract", DEFAULTS["retract"]), "retract", 0.1, 3.0),
        tail=_num(author.get("tail", DEFAULTS["tail"]), "tail", 0.0, 2.0),
        contact=bool(author.get("contact", False)),
        keys=keys,
        raw=author,
    )


# -- take variation ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variation:
    """One take's random draw. The zero draw (`Variation.none()`) reproduces the spec."""

    time: float = 1.0
    key_time: tuple[float, ...] = ()
    amplitude: float = 1.0
    place_jitter: dict = field(default_factory=dict)  # place/at key -> lateral offset (m)
    orient: np.ndarray = field(default_factory=lambda: np.zeros(3))  # rotvec applied to palm dirs
    swivel: float = 0.0  # radians
    curl: float = 1.0
    spread: float = 0.0
    thumb: np.ndarray = field(default_factory=lambda: np.zeros(5))
    overshoot: float = 1.0

    @classmethod
    def none(cls) -> Variation:
        return cls()

    @classmethod
    def draw(cls, seed: int, scale: float, num_keys: int, places: list[str]) -> Variation:
        rng = np.random.default_rng(seed)
        u = lambda a: float(rng.uniform(-a, a)) * scale  # noqa: E731
        jitter = {p: rng.normal(0, 0.008, 3) * scale for p in places}
        return cls(
            time=1.0 + u(0.08),
            key_time=tuple(1.0 + u(0.08) for _ in range(num_keys)),
            amplitude=1.0 + u(0.12),
            place_jitter=jitter,
            orient=rng.normal(0, np.radians(3.0), 3) * scale,
            swivel=np.radians(u(6.0)),
            curl=1.0 + u(0.06),
            spread=u(0.2),
            thumb=rng.uniform(-3, 3, 5) * scale,
            overshoot=1.0 + u(0.3),
        )


def take_seed(gesture_id: str, take_index: int) -> int:
    return zlib.crc32(f"{gesture_id}:{take_index}".encode())


def take_id(index: int) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[index]


# -- poses --------------------------------------------------------------------------------------------
def rest_pose() -> np.ndarray:
    """(55, 3) rest pose, axis-angle, flat-hand convention (hands = the relaxed mean hand)."""
    return _rest_pose().copy()


@cache
def _rest_pose() -> np.ndarray:
    euler = np.zeros((55, 3))
    for (joint, axis), deg in REST_DEGREES.items():
        euler[J[joint], "xyz".index(axis)] = deg
    pose = Rotation.from_euler("XYZ", euler, degrees=True).as_rotvec()
    pose[25:55] = sk.hand_mean()
    pose.setflags(write=False)
    return pose


def rest_motion(num_frames: int = 1) -> Motion:
    """The rest pose as a Motion (SMPL-X convention)."""
    pose = np.array(rest_pose())
    pose[25:55] -= sk.hand_mean()
    return Motion(poses=np.repeat(pose.reshape(1, -1), num_frames, 0), trans=np.zeros((num_frames, 3)))


def _hand_slice(side: str) -> slice:
    return slice(25, 40) if side == "left" else slice(40, 55)


def _euler(x: float, y: float, z: float) -> np.ndarray:
    return Rotation.from_euler("XYZ", [x, y, z], degrees=True).as_matrix()


SPINE_SHARE = {"spine1": 0.25, "spine2": 0.35, "spine3": 0.40}
HEAD_SHARE = {"neck": 0.35, "head": 0.65}


@cache
def _effector_offsets(
    shape: str, side: str, curl: float, spread: float, thumb: tuple
) -> dict[str, np.ndarray]:
    """Hand points relative to the wrist in the wrist's local frame, for a shape."""
    rv = np.zeros((55, 3))
    flat = hands.flat_pose(shape, curl_scale=curl, spread_add=spread, thumb_jitter=np.array(thumb))
    rv[_hand_slice(side)] = hands.mirror_hand(flat) if side == "left" else flat
    pos, _ = body.fk_axis_angle(rv)
    w = pos[J[f"{side}_wrist"]]
    tips = body.fingertips(pos, side)
    k = lambda n: pos[J[f"{side}_{n}"]] - w  # noqa: E731
    palm = (k("index1") + k("pinky1") + k("middle1")) / 3.0 * 0.62
    palm = palm + np.array([0.0, -0.012, 0.0])
    out = {
        "wrist": np.zeros(3),
        "palm": palm,
        "index_tip": tips["index"] - w,
        "middle_tip": tips["middle"] - w,
        "thumb_tip": tips["thumb"] - w,
        "fingertips": np.mean([tips[f] - w for f in ("index", "middle", "ring", "pinky")], axis=0),
        "knuckles": 0.5 * (k("middle1") + k("middle2")),
    }
    return out


def _lateral(v: np.ndarray, side: str) -> np.ndarray:
    """Lateral body-frame vector (x out toward `side`) -> world axes of the rest body."""
    return np.array([-v[0], v[1], v[2]]) if side == "right" else np.array([v[0], v[1], v[2]])


@dataclass
class KeyPose:
    local: np.ndarray  # (55, 3, 3) local rotations, flat-hand convention
    swivel: dict[str, float]
    targets: dict[str, tuple]  # side -> what `solve` needs to re-solve the arm (circles)


class PoseBuilder:
    """Builds key poses for one take (variation applied), mirrored when `side` is "left"."""

    def __init__(self, variation: Variation, side: str = "right"):
        self.v = variation
        self.mirror = side == "left"
        self.last_swivel: dict[str, float] = {}  # per arm, the previous key's swivel

    def _arm_side(self, spec_side: str) -> str:
        if not self.mirror:
            return spec_side
        return "left" if spec_side == "right" else "right"

    def _lateral_sign(self) -> float:
        return -1.0 if self.mirror else 1.0

    def build(self, key: Key, *, remember: bool = True) -> KeyPose:
        """The pose of one key. Keys are built in time order (`remember`): each arm prefers the
        previous key's swivel. Via poses are built with `remember=False`."""
        v = self.v
        local = Rotation.from_rotvec(rest_pose()).as_matrix()
        a = v.amplitude
        sgn = self._lateral_sign()
        # torso and head: lean/nod about x; turn to the right is -y and bend/tilt to the right +z
        lean, turn, bend = (key.torso.get(k, 0.0) * a for k in ("lean", "turn", "bend"))
        for joint, share in SPINE_SHARE.items():
            local[J[joint]] = _euler(lean * share, -turn * share * sgn, bend * share * sgn)
        nod, hturn, tilt = (key.head.get(k, 0.0) * a for k in ("nod", "turn", "tilt"))
        for joint, share in HEAD_SHARE.items():
            local[J[joint]] = _euler(nod * share, -hturn * share * sgn, tilt * share * sgn)
        swivels: dict[str, float] = {}
        targets: dict[str, tuple] = {}
        for spec_side in SIDES:
            arm = key.arms[spec_side]
            side = self._arm_side(spec_side)
            shrug = np.radians(key.shrug * a + float(arm.get("shrug", 0.0)) * a)
            if arm.get("rest"):
                if shrug:
                    s = 1.0 if side == "right" else -1.0
                    local[J[f"{side}_collar"]] = (
                        local[J[f"{side}_collar"]] @ Rotation.from_euler("z", -s * shrug).as_matrix()
                    )
                hand = arm.get("hand")
                if hand:
                    local[_hand_slice(side)] = Rotation.from_rotvec(self._shape(hand, side)).as_matrix()
                continue
            # A symmetric pair (the same spec on both arms) gets mirror-image solutions: the left
            # arm reuses the right arm's swivel instead of searching on its own.
            fixed = None
            if spec_side == "left" and key.arms["right"] == arm and swivels:
                fixed = next(iter(swivels.values()))
            sol, target = self.solve(local, arm, side, spec_side, shrug, fixed_swivel=fixed)
            for part, m in zip(
                ("collar", "shoulder", "elbow", "wrist"),
                (sol.collar, sol.shoulder, sol.elbow, sol.wrist),
                strict=True,
            ):
                local[J[f"{side}_{part}"]] = m
            local[_hand_slice(side)] = Rotation.from_rotvec(
                self._shape(arm.get("hand", "relaxed"), side)
            ).as_matrix()
            swivels[side] = sol.swivel
            targets[side] = target
        if remember:
            self.last_swivel.update(swivels)
        return KeyPose(local, swivels, targets)

    def _shape(self, name: str, side: str) -> np.ndarray:
        v = self.v
        flat = hands.flat_pose(name, curl_scale=v.curl, spread_add=v.spread, thumb_jitter=v.thumb)
        return hands.mirror_hand(flat) if side == "left" else flat

    def goal(self, local: np.ndarray, arm: dict, side: str, spec_side: str):
        """World target point of the effector, the hand's world rotation (or None), effector name."""
        v = self.v
        pos, rot = body.fk(local)
        if "touch" in arm:
            place = body.PLACES[arm["touch"]]
            eff = arm.get("effector", "palm")
            local_pt = np.array(place.pos) + np.array(place.normal) * CLEARANCE[eff]
            jit = v.place_jitter.get(f"touch:{arm['touch']}", np.zeros(3)) * 0.5
            jit = jit - np.dot(jit, place.normal) * np.array(place.normal)  # slide along the surface only
            local_pt = local_pt + jit + np.array(arm.get("offset", (0, 0, 0))) * v.amplitude
        else:
            at = arm["at"]
            if isinstance(at, str):
                place = body.PLACES[at]
                key = f"at:{at}"
            else:
                place = body.Place("spine3", tuple(at))
                key = f"at:{tuple(at)}"
            eff = arm.get("effector", "wrist")
            local_pt = np.array(place.pos) + np.array(arm.get("offset", (0, 0, 0))) * v.amplitude
            local_pt = local_pt + v.place_jitter.get(key, np.zeros(3))
        anchor = J[place.anchor]
        world = pos[anchor] + rot[anchor] @ _lateral(local_pt, side)
        chest = rot[J["spine3"]]
        hand_rot = None
        if "palm" in arm or "fingers" in arm:
            jitter = Rotation.from_rotvec(v.orient).as_matrix()
            fingers = direction(arm["fingers"], "") if "fingers" in arm else None
            if "palm" in arm:
                palm = direction(arm["palm"], "")
            else:  # palm toward the midline, or back when the fingers point sideways
                palm = np.array([-1.0, 0, 0]) if abs(fingers[0]) < 0.9 else np.array([0, 0, -1.0])
            palm_w = chest @ _lateral(jitter @ palm, side)
            if fingers is None:
                fingers_w = self._natural_fingers(local, world, side)
            else:
                fingers_w = chest @ _lateral(jitter @ fingers, side)
            hand_rot = ik.hand_rotation(palm_w, fingers_w, side)
        return world, hand_rot, eff, pos, rot

    def _natural_fingers(self, local: np.ndarray, world: np.ndarray, side: str) -> np.ndarray:
        """Fingers continue the forearm when only the palm is given."""
        pos, rot = body.fk(local)
        sol = ik.solve_arm(side, world, None, pos[J["spine3"]], rot[J["spine3"]], search=False)
        fore = world - sol.elbow_world
        return fore / max(np.linalg.norm(fore), 1e-9)

    def solve(
        self,
        local: np.ndarray,
        arm: dict,
        side: str,
        spec_side: str,
        shrug: float,
        fixed_swivel=None,
        offset=None,
    ):
        v = self.v
        world, hand_rot, eff, pos, rot = self.goal(local, arm, side, spec_side)
        if offset is not None:
            world = world + offset
        e_local = _effector_offsets(
            hands.resolve(arm.get("hand", "relaxed")) or "relaxed",
            side,
            round(v.curl, 6),
            round(v.spread, 6),
            tuple(np.round(v.thumb, 6)),
        )[eff]
        torso = _torso_segments(pos)
        swivel = np.radians(float(arm.get("elbow", 0.0))) + v.swivel
        h = hand_rot if hand_rot is not None else np.eye(3)
        wrist_goal = world - h @ e_local
        best = None
        for _ in range(5 if eff != "wrist" else 1):
            sol = ik.solve_arm(
                side, wrist_goal, hand_rot, pos[J["spine3"]], rot[J["spine3"]],
                swivel_offset=swivel, shrug=shrug, torso=torso,
                search=fixed_swivel is None, fixed_swivel=fixed_swivel,
                prefer_swivel=self.last_swivel.get(side),
            )  # fmt: skip
            if eff == "wrist":
                best = (0.0, sol)
                break
            # A clamped wrist turns the hand away from the requested orientation: move the wrist
            # goal by the effector's miss (damped) until the effector itself lands on the target.
            got = sol.wrist_world + self._hand_world(local, side, sol) @ e_local
            err = world - got
            if best is None or np.linalg.norm(err) < best[0]:
                best = (float(np.linalg.norm(err)), sol)
            if np.linalg.norm(err) < 5e-4:
                break
            wrist_goal = wrist_goal + 0.9 * err
        sol = best[1]
        return sol, (world, hand_rot, arm, side, spec_side, shrug, sol.swivel)

    def _hand_world(self, local: np.ndarray, side: str, sol: ik.ArmSolution) -> np.ndarray:
        trial = local.copy()
        for part, m in zip(
            ("collar", "shoulder", "elbow", "wrist"),
            (sol.collar, sol.shoulder, sol.elbow, sol.wrist),
            strict=True,
        ):
            trial[J[f"{side}_{part}"]] = m
        _, rot = body.fk(trial)
        return rot[J[f"{side}_wrist"]]


def _torso_segments(pos: np.ndarray):
    a = np.stack([pos[J[x]] for x, _, _ in body.TORSO_CAPSULES])
    b = np.stack([pos[J[y]] for _, y, _ in body.TORSO_CAPSULES])
    r = np.array([rr for _, _, rr in body.TORSO_CAPSULES])
    return a, b, r


# -- timing ---------------------------------------------------------------------------------------------
@cache
def _overshoot_gain(ease: str, amount: float) -> float:
    """The bump gain whose profile peaks at 1 + amount."""
    if amount <= 0:
        return 0.0
    s = np.linspace(0, 1, 401)
    base = betainc(*EASES[ease], s)
    bump = s**3 * (1 - s) ** 2
    lo, hi = 0.0, 200.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if (base + mid * bump).max() > 1 + amount:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def ease_profile(ease: str, s: np.ndarray, overshoot: float = 0.0) -> np.ndarray:
    """0 -> 1 with zero velocity at both ends; with `overshoot` it rises past 1 and settles back."""
    s = np.clip(s, 0.0, 1.0)
    out = betainc(*EASES[ease], s)
    if overshoot > 0:
        out = out + _overshoot_gain(ease, round(overshoot, 4)) * s**3 * (1 - s) ** 2
    return out


def _bump(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return 16.0 * (s * (1 - s)) ** 2


# -- compile ------------------------------------------------------------------------------------------
@dataclass
class CompiledTake:
    take_id: str
    motion: Motion
    phases: dict[str, float]
    key_times: list[float]  # arrival time of each key (s)
    seed: int | None
    clamped: bool = False


def _places(spec: Spec) -> list[str]:
    names = set()
    for key in spec.keys:
        for arm in key.arms.values():
            if "at" in arm:
                names.add(f"at:{arm['at']}" if isinstance(arm["at"], str) else f"at:{tuple(arm['at'])}")
            if "touch" in arm:
                names.add(f"touch:{arm['touch']}")
    return sorted(names)


def compile_take(
    spec: Spec, take_index: int = 0, *, gesture_id: str = "gesture", side: str = "right"
) -> CompiledTake:
    """Compile take `take_index` (0 = "a", as written) of a parsed spec.

    `side="left"` authors the mirror image directly (the right arm's spec drives the left arm)."""
    seed = None
    if take_index == 0 or spec.variation == 0:
        var = Variation.none()
    else:
        seed = take_seed(gesture_id, take_index)
        var = Variation.draw(seed, spec.variation, len(spec.keys), _places(spec))
    builder = PoseBuilder(var, side)
    # key timing
    times: list[tuple[float, float]] = []  # (arrival, departure) per key
    t = spec.lead * var.time
    for i, key in enumerate(spec.keys):
        f = var.time * (var.key_time[i] if var.key_time else 1.0)
        arrive = t + key.dur * f
        depart = arrive + key.hold * f
        times.append((arrive, depart))
        t = depart
    end = t + spec.retract * var.time
    total = end + spec.tail
    n = int(round(total * FPS)) + 1
    frame_t = np.arange(n) / FPS

    rest_local = Rotation.from_rotvec(rest_pose())
    key_poses = [builder.build(k) for k in spec.keys]
    # apex: the marked key, else the second key of several, else the first
    apex_idx = next((i for i, k in enumerate(spec.keys) if "apex" in k.marks), 1 if len(spec.keys) > 1 else 0)
    rot_keys = [rest_local] + [Rotation.from_matrix(kp.local) for kp in key_poses] + [rest_local]
    # segments: (start time, end time, from index, to index, ease, overshoot, via)
    segs = []
    prev_depart = spec.lead * var.time
    for i, key in enumerate(spec.keys):
        ov = key.overshoot
        if ov is None:
            touching = any("touch" in a for a in key.arms.values())
            ov = APEX_OVERSHOOT if (i == apex_idx and not touching) else 0.0
        ov *= var.overshoot
        segs.append((prev_depart, times[i][0], i, i + 1, key.ease, ov, key.via))
        prev_depart = times[i][1]
    segs.append((prev_depart, end, len(spec.keys), len(spec.keys) + 1, "smooth", 0.0, None))

    quats = np.empty((n, 55, 4))
    # default: hold whatever key was last reached
    held = np.searchsorted([s[1] for s in segs], frame_t, side="right")  # segments fully done
    for fi in range(n):
        k = min(held[fi], len(rot_keys) - 1)
        quats[fi] = rot_keys[k].as_quat()
    quats[frame_t < spec.lead * var.time] = rest_local.as_quat()
    for start, stop, ia, ib, ease, ov, via in segs:
        idx = np.nonzero((frame_t >= start) & (frame_t < stop))[0]
        if len(idx) == 0:
            continue
        s = (frame_t[idx] - start) / max(stop - start, 1e-9)
        u = ease_profile(ease, s, ov)
        ra, rb = rot_keys[ia], rot_keys[ib]
        delta = (ra.inv() * rb).as_rotvec()  # (55, 3)
        path = Rotation.from_rotvec(
            np.repeat(ra.as_rotvec()[None], len(idx), 0).reshape(-1, 3)
        ) * Rotation.from_rotvec((u[:, None, None] * delta[None]).reshape(-1, 3))
        if via is not None:
            via_rot = Rotation.from_matrix(builder.build(via, remember=False).local)
            u_mid = float(ease_profile(ease, np.array([0.5]))[0])
            mid = ra * Rotation.from_rotvec(u_mid * delta)
            dv = (mid.inv() * via_rot).as_rotvec()
            path = path * Rotation.from_rotvec((_bump(s)[:, None, None] * dv[None]).reshape(-1, 3))
        quats[idx] = path.as_quat().reshape(len(idx), 55, 4)
    # circles drawn during holds (per-frame IK on a moving target)
    for i, key in enumerate(spec.keys):
        if key.circle is None:
            continue
        _draw_circle(quats, frame_t, times[i], key, key_poses[i], builder, var)
    rotvecs = Rotation.from_quat(quats.reshape(-1, 4)).as_rotvec().reshape(n, 55, 3)
    rotvecs[0] = rest_pose()
    rotvecs[-1] = rest_pose()
    rotvecs[:, 25:55] -= sk.hand_mean()[None]
    motion = Motion(
        poses=rotvecs.reshape(n, sk.POSE_DIM),
        trans=np.zeros((n, 3)),
        fps=FPS,
        metadata={
            "source": "gesticulator authoring",
            "gesture": gesture_id,
            "take": take_id(take_index),
            "seed": seed,
        },
    )
    phases = _phases(spec, times, segs, apex_idx, var, end)
    return CompiledTake(take_id(take_index), motion, phases, [a for a, _ in times], seed)


def _draw_circle(quats, frame_t, times, key: Key, kp: KeyPose, builder: PoseBuilder, var: Variation) -> None:
    c = key.circle
    side = builder._arm_side(c["arm"])
    if side not in kp.targets:
        return
    world, hand_rot, arm, _, spec_side, shrug, swivel = kp.targets[side]
    start, stop = times
    idx = np.nonzero((frame_t >= start) & (frame_t < stop))[0]
    if len(idx) == 0:
        return
    pos, rot = body.fk(kp.local)
    chest = rot[J["spine3"]]
    e1, e2 = {"front": ((1, 0, 0), (0, 1, 0)), "side": ((0, 0, 1), (0, 1, 0)), "top": ((1, 0, 0), (0, 0, 1))}[
        c["plane"]
    ]
    e1 = chest @ _lateral(np.array(e1, float), side)
    e2 = chest @ _lateral(np.array(e2, float), side)
    r = c["radius"] * var.amplitude
    s = (frame_t[idx] - start) / max(stop - start, 1e-9)
    phi = 2 * np.pi * c["turns"] * ease_profile("smooth", s) * (1 if c["direction"] >= 0 else -1)
    base_local = kp.local.copy()
    for n, fi in enumerate(idx):
        off = r * (np.cos(phi[n]) - 1.0) * e1 + r * np.sin(phi[n]) * e2
        sol, _ = builder.solve(base_local, arm, side, spec_side, shrug, fixed_swivel=swivel, offset=off)
        for part, m in zip(
            ("collar", "shoulder", "elbow", "wrist"),
            (sol.collar, sol.shoulder, sol.elbow, sol.wrist),
            strict=True,
        ):
            quats[fi, J[f"{side}_{part}"]] = Rotation.from_matrix(m).as_quat()


def _phases(spec: Spec, times, segs, apex_idx: int, var: Variation, end: float) -> dict[str, float]:
    keys = spec.keys
    prep_start = spec.lead * var.time
    first = lambda mark: next((i for i, k in enumerate(keys) if mark in k.marks), None)  # noqa: E731
    last = lambda mark: next((i for i in reversed(range(len(keys))) if mark in keys[i].marks), None)  # noqa: E731
    apex_seg = segs[apex_idx]
    ov = apex_seg[5]
    if ov > 0:  # the apex is the overshoot's peak
        s = np.linspace(0, 1, 201)
        peak = float(s[np.argmax(ease_profile(apex_seg[4], s, ov))])
        apex = apex_seg[0] + peak * (apex_seg[1] - apex_seg[0])
    else:
        apex = times[apex_idx][0]
    i = first("stroke_start")  # the stroke starts when the marked (ready) key is left
    stroke_start = times[i][1] if i is not None else apex_seg[0]
    i = last("stroke_end")
    stroke_end = times[i][1] if i is not None else times[-1][1]
    stroke_start = min(max(stroke_start, prep_start), apex)
    stroke_end = max(stroke_end, apex)
    marks = [prep_start, stroke_start, apex, stroke_end, end]
    names = ("prep_start", "stroke_start", "apex", "stroke_end", "retract_end")
    return {k: round(float(v), 3) for k, v in zip(names, marks, strict=True)}


def compile_spec(author: dict, gesture_id: str = "gesture", *, side: str = "right") -> list[CompiledTake]:
    """All takes of an author spec."""
    spec = parse_spec(author)
    return [compile_take(spec, i, gesture_id=gesture_id, side=side) for i in range(spec.takes)]


__all__ = [
    "CompiledTake",
    "Spec",
    "SpecError",
    "compile_spec",
    "compile_take",
    "ease_profile",
    "parse_spec",
    "rest_motion",
    "rest_pose",
]
