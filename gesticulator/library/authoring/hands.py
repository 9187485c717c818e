"""Named hand shapes, as data.

A shape is authored for the RIGHT hand relative to the flat hand (the rest skeleton's hand), in
degrees:

* each finger (index, middle, ring, pinky): ``(mcp, pip, dip, spread)`` -- curl of the three
  joints toward the palm and the sideways spread at the knuckle (positive = toward the thumb);
* the thumb: ``(flex, abduct, twist, mcp, ip)`` -- the base (CMC) joint flexed toward the palm,
  abducted away from the index in the palm plane, twisted about the thumb's own axis, then the
  MCP and IP joints flexed. Thumb poses are named (`THUMBS`) and were fitted once so the thumb tip
  lands where each shape needs it (over the curled fingers of a fist, on the index tip of a pinch).

`shape_pose(name, side)` converts a shape to the 15 SMPL-X hand rotations in the library's
``flat_hand_mean=False`` convention (flat-relative rotation minus `hand_mean()`); the left hand is
the mirror image of the right. ``relaxed`` is exactly the SMPL-X mean hand (all zeros).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.spatial.transform import Rotation

from gesticulator.motion import skeleton as sk

# SMPL-X order of the 15 joints of one hand: three per finger.
HAND_FINGERS = ("index", "middle", "pinky", "ring", "thumb")

# Finger states (mcp, pip, dip, spread) in degrees.
EXT = (4.0, 4.0, 2.0, 0.0)  # extended, a hint of natural flex
CURL = (85.0, 100.0, 60.0, 0.0)  # closed into the palm (fist)
GRIP = (45.0, 55.0, 35.0, 0.0)  # wrapped round an imagined 6-7 cm object
BENT = (25.0, 25.0, 15.0, 0.0)  # gently bent (cupped)
TUCK = (60.0, 75.0, 45.0, 0.0)  # loosely curled out of the way

# Thumb poses (flex, abduct, twist, mcp, ip) in degrees, fitted on the neutral skeleton.
THUMBS: dict[str, tuple[float, float, float, float, float]] = {
    "across": (24.4, -45.0, -54.1, 23.8, 36.8),  # over the middle phalanges of a fist
    "up": (-2.8, 32.1, -23.7, -19.9, 10.8),  # extended along the radial side (thumbs up)
    "tuck": (26.9, -45.0, -60.0, 33.9, 25.4),  # on the curled middle finger (pointing)
    "hold": (24.9, -45.0, -60.0, 46.3, 25.3),  # holding the curled ring and pinky down (V)
    "pinch": (40.0, -37.8, -22.9, -5.8, 22.3),  # tip on the index tip (with the index in PINCH_INDEX)
    "pinch_open": (41.7, -29.2, -18.9, -10.1, 2.3),  # opposed, a finger's width from the index tip
    "fold": (7.6, -45.0, -59.5, 46.1, 37.2),  # folded across the palm (count four)
    "alongside": (-15.0, -10.4, -44.3, 12.2, 27.3),  # flat beside the index (open hand)
    "spread": (1.0, 15.1, -21.5, -14.0, 5.9),  # stretched away from the index (spread hand)
    "opposed": (37.9, -30.1, -19.8, -7.3, 4.6),  # opposite the fingers, as round an object
    "cup": (-9.5, -8.2, -27.0, 16.0, 40.7),  # slightly flexed beside a cupped hand
}

PINCH_INDEX = (47.4, 63.1, 37.9, 0.0)  # index curled to meet the thumb (pinch, OK ring)
POINT_INDEX = (2.0, 0.0, 0.0, 0.0)


def _fingers(index, middle, ring, pinky, thumb: str) -> dict:
    return {"index": index, "middle": middle, "ring": ring, "pinky": pinky, "thumb": thumb}


def _spread(state: tuple, deg: float) -> tuple:
    return (*state[:3], deg)


# name -> finger states. Add shapes here; everything else (mirroring, the flat_hand_mean
# conversion, checks) follows from this table.
SHAPES: dict[str, dict | None] = {
    "relaxed": None,  # the SMPL-X mean hand: all zeros in the library's convention
    "fist": _fingers(CURL, CURL, CURL, CURL, "across"),
    "point": _fingers(POINT_INDEX, CURL, CURL, CURL, "tuck"),
    "open": _fingers(_spread(EXT, -3), EXT, _spread(EXT, 2), _spread(EXT, 5), "alongside"),
    "flat": _fingers(
        _spread((0, 0, 0, 0), -3),
        (0, 0, 0, 0),
        _spread((0, 0, 0, 0), 2),
        _spread((0, 0, 0, 0), 5),
        "alongside",
    ),
    "spread": _fingers(_spread(EXT, 14), _spread(EXT, 2), _spread(EXT, -9), _spread(EXT, -20), "spread"),
    "thumbs_up": _fingers(CURL, CURL, CURL, CURL, "up"),
    "thumbs_down": _fingers(CURL, CURL, CURL, CURL, "up"),  # the arm turns it over
    "ok_ring": _fingers(
        PINCH_INDEX, (8, 10, 5, 0), _spread((12, 14, 7, 0), -3), _spread((16, 18, 9, 0), -6), "pinch"
    ),
    "v": _fingers(_spread(EXT, 11), _spread(EXT, -9), CURL, CURL, "hold"),
    "pinch": _fingers(PINCH_INDEX, (55, 65, 40, 0), (65, 75, 45, 0), (70, 80, 50, 0), "pinch"),
    "pinch_open": _fingers((30, 35, 20, 0), (60, 75, 45, 0), (70, 85, 50, 0), (75, 90, 55, 0), "pinch_open"),
    "count_1": _fingers(POINT_INDEX, CURL, CURL, CURL, "tuck"),
    "count_2": _fingers(_spread(EXT, 6), _spread(EXT, -6), CURL, CURL, "hold"),
    "count_3": _fingers(_spread(EXT, 6), _spread(EXT, -6), CURL, CURL, "spread"),  # thumb, index, middle
    "count_3_ring": _fingers(_spread(EXT, 6), EXT, _spread(EXT, -6), CURL, "hold"),  # index, middle, ring
    "count_4": _fingers(_spread(EXT, 8), _spread(EXT, 1), _spread(EXT, -6), _spread(EXT, -14), "fold"),
    "count_5": _fingers(_spread(EXT, 14), _spread(EXT, 2), _spread(EXT, -9), _spread(EXT, -20), "spread"),
    "cupped": _fingers(_spread(BENT, -2), BENT, _spread(BENT, 2), _spread(BENT, 4), "cup"),
    "claw": _fingers(
        _spread((20, 70, 55, 0), 8),
        (20, 70, 55, 0),
        _spread((20, 70, 55, 0), -6),
        _spread((20, 70, 55, 0), -12),
        "opposed",
    ),
    "grasp": _fingers(GRIP, GRIP, GRIP, GRIP, "opposed"),
    "shush": _fingers(POINT_INDEX, TUCK, TUCK, TUCK, "tuck"),
    "crossed": _fingers((25, 10, 5, -18), (-6, 5, 3, 30), CURL, CURL, "hold"),
    "loose": _fingers(BENT, BENT, (30, 35, 20, 0), (35, 40, 25, 0), "cup"),  # a soft half-open hand
}
SHAPE_ALIASES = {"count_0": "fist", "one": "count_1", "two": "count_2", "three": "count_3", "four": "count_4",
                 "five": "count_5", "grab": "grasp", "ok": "ok_ring", "peace": "v", "mean": "relaxed"}  # fmt: skip

# Which fingers each shape extends (the others are curled); checked by the tests via FK.
EXTENDED: dict[str, frozenset[str]] = {
    "fist": frozenset(),
    "point": frozenset({"index"}),
    "open": frozenset({"index", "middle", "ring", "pinky", "thumb"}),
    "flat": frozenset({"index", "middle", "ring", "pinky", "thumb"}),
    "spread": frozenset({"index", "middle", "ring", "pinky", "thumb"}),
    "thumbs_up": frozenset({"thumb"}),
    "thumbs_down": frozenset({"thumb"}),
    "ok_ring": frozenset({"middle", "ring", "pinky"}),
    "v": frozenset({"index", "middle"}),
    "count_1": frozenset({"index"}),
    "count_2": frozenset({"index", "middle"}),
    "count_3": frozenset({"thumb", "index", "middle"}),
    "count_3_ring": frozenset({"index", "middle", "ring"}),
    "count_4": frozenset({"index", "middle", "ring", "pinky"}),
    "count_5": frozenset({"index", "middle", "ring", "pinky", "thumb"}),
    "shush": frozenset({"index"}),
}


def shape_names() -> list[str]:
    return sorted(SHAPES)


def resolve(name: str) -> str | None:
    """The canonical shape name, or None when unknown."""
    name = SHAPE_ALIASES.get(name, name)
    return name if name in SHAPES else None


@cache
def _thumb_axes() -> tuple[np.ndarray, np.ndarray]:
    """Right thumb's in-palm direction `d` and flexion axis `a` in the flat rest hand."""
    from gesticulator.library.authoring.body import skeleton

    _, pos = skeleton()
    j = sk.JOINT_INDEX
    d = pos[j["right_thumb3"]] - pos[j["right_thumb1"]]
    d[1] = 0.0
    d /= np.linalg.norm(d)
    a = np.cross([0.0, 1.0, 0.0], d)
    return d, a / np.linalg.norm(a)


def _thumb_rotvecs(flex: float, abduct: float, twist: float, mcp: float, ip: float) -> np.ndarray:
    d, a = _thumb_axes()
    r = np.radians
    base = (
        Rotation.from_rotvec(r(abduct) * np.array([0.0, 1.0, 0.0]))
        * Rotation.from_rotvec(r(flex) * a)
        * Rotation.from_rotvec(r(twist) * d)
    )
    return np.stack([base.as_rotvec(), r(mcp) * a, r(ip) * a])


@cache
def _flex_axes() -> dict[str, np.ndarray]:
    """Per finger (3, 3): each joint's flexion axis in the flat right hand, perpendicular to the
    bone in the palm plane (the fingers fan out, so a plain z curl would bend them sideways)."""
    from gesticulator.library.authoring.body import skeleton

    _, pos = skeleton()
    j = sk.JOINT_INDEX
    out = {}
    for f in HAND_FINGERS[:4]:
        chain = [pos[j[f"right_{f}{k}"]] for k in (1, 2, 3)]
        dirs = [chain[1] - chain[0], chain[2] - chain[1], chain[2] - chain[1]]
        axes = []
        for d in dirs:
            d = d.copy()
            d[1] = 0.0
            d /= np.linalg.norm(d)
            axes.append(np.cross(d, [0.0, -1.0, 0.0]))  # +z for a finger along -x
        out[f] = np.stack(axes)
    return out


def _finger_rotvecs(finger: str, mcp: float, pip: float, dip: float, spread: float) -> np.ndarray:
    axes = _flex_axes()[finger]
    r = np.radians
    knuckle = Rotation.from_rotvec(r(spread) * np.array([0.0, 1.0, 0.0])) * Rotation.from_rotvec(
        r(mcp) * axes[0]
    )
    return np.stack([knuckle.as_rotvec(), r(pip) * axes[1], r(dip) * axes[2]])


def flat_pose(
    name: str, *, curl_scale: float = 1.0, spread_add: float = 0.0, thumb_jitter: np.ndarray | None = None
) -> np.ndarray:
    """(15, 3) RIGHT-hand rotations relative to the flat hand (axis-angle), SMPL-X joint order.

    `curl_scale`, `spread_add` and `thumb_jitter` (5 degrees) make the small take-to-take
    differences; the defaults give the shape as authored."""
    canonical = resolve(name)
    if canonical is None:
        raise KeyError(name)
    spec = SHAPES[canonical]
    if spec is None:
        return sk.hand_mean()[15:].copy()
    out = np.empty((15, 3))
    for i, finger in enumerate(HAND_FINGERS):
        if finger == "thumb":
            params = np.asarray(THUMBS[spec["thumb"]], dtype=np.float64)
            if thumb_jitter is not None:
                params = params + thumb_jitter
            out[3 * i : 3 * i + 3] = _thumb_rotvecs(*params)
        else:
            mcp, pip, dip, spread = spec[finger]
            out[3 * i : 3 * i + 3] = _finger_rotvecs(
                finger, mcp * curl_scale, pip * curl_scale, dip * curl_scale, spread * (1.0 + spread_add)
            )
    return out


def mirror_hand(rotvecs: np.ndarray) -> np.ndarray:
    """Right-hand rotations -> the mirror-image left-hand rotations (negate y and z)."""
    out = np.array(rotvecs, dtype=np.float64, copy=True)
    out[..., 1:] *= -1.0
    return out


def shape_pose(name: str, side: str = "right", **jitter) -> np.ndarray:
    """(15, 3) SMPL-X hand pose (flat_hand_mean=False) of shape `name` for `side`."""
    flat = flat_pose(name, **jitter)
    if side == "left":
        return mirror_hand(flat) - sk.hand_mean()[:15]
    return flat - sk.hand_mean()[15:]


__all__ = ["EXTENDED", "SHAPES", "THUMBS", "flat_pose", "mirror_hand", "resolve", "shape_names", "shape_pose"]
