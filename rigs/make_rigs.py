"""Regenerate the shipped rigs' rest-pose skeletons (rigs/skeletons/*.bvh): one rest frame each.

    python rigs/make_rigs.py

The skeletons are built from one humanoid template with per-rig proportions that differ clearly
from the SMPL-X neutral body, so retargeting really has to deal with other bone lengths, another
spine split and (for `generic`) another rest pose and other axes:

- mixamo:  1.84 m, centimetres, Y up, facing +Z, T-pose, long arms, Mixamo names (`mixamorig:`),
           end joints (HeadTop_End, *4 finger tips, Toe_End) as extra unmapped joints;
- vrm:     1.55 m "anime" proportions (long legs, short torso, big head, small hands), metres,
           Y up, facing +Z, the VRM T-pose (thumbs 45 degrees between +X and +Z, palms down),
           VRM 1.0 humanoid bone names;
- vrm0:    the same body with VRM 0.x names (thumb Proximal/Intermediate/Distal), facing -Z;
- generic: 1.77 m, stocky (wide shoulders, short arms), metres, Z up, facing -Y (Blender's
           convention), A-pose (arms 45 degrees down), plain names (Hips, Spine, Chest, ...,
           LeftUpperArm, ...).

Everything is deterministic: running the script twice gives byte-identical files.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a clone without installing

from gesticulator.io.atomic import write_text_atomic  # noqa: E402
from gesticulator.rigs.export import skeleton_bvh_text  # noqa: E402
from gesticulator.rigs.rig import RigSkeleton, skeleton_from_positions  # noqa: E402

FINGERS = ("Thumb", "Index", "Middle", "Ring", "Little")


@dataclass(frozen=True)
class Proportions:
    """Template measurements in metres (Y up, +Z forward, T-pose, left side; right is mirrored)."""

    ankle_height: float
    shin: float
    thigh: float
    hip_drop: float  # upper-leg joints below the hips joint
    hip_width: float  # half the distance between the upper-leg joints
    spine: tuple[float, float, float, float]  # hips->spine->chest->upperChest->neck
    spine_z: tuple[float, float, float, float]  # forward offsets along the same segments (curvature)
    neck: float  # neck -> head
    head: float  # head -> top of the skull
    collar: tuple[float, float, float]  # upperChest -> shoulder (collar) joint
    clavicle: float  # shoulder joint -> upper arm
    upper_arm: float
    lower_arm: float
    hand: float  # wrist -> middle knuckle
    finger: float  # scale of the finger segments (1 = an adult hand)
    foot: float  # ankle -> toe base (horizontal)
    toe: float


MIXAMO = Proportions(
    ankle_height=0.085, shin=0.45, thigh=0.46, hip_drop=0.06, hip_width=0.095,
    spine=(0.10, 0.12, 0.14, 0.15), spine_z=(0.005, 0.01, -0.005, -0.02), neck=0.11, head=0.18,
    collar=(0.06, 0.10, -0.01), clavicle=0.12, upper_arm=0.30, lower_arm=0.28, hand=0.10, finger=1.1,
    foot=0.15, toe=0.07,
)  # fmt: skip
VRM = Proportions(
    ankle_height=0.07, shin=0.38, thigh=0.38, hip_drop=0.05, hip_width=0.075,
    spine=(0.07, 0.09, 0.09, 0.11), spine_z=(0.0, 0.01, 0.0, -0.015), neck=0.07, head=0.24,
    collar=(0.03, 0.08, -0.01), clavicle=0.07, upper_arm=0.21, lower_arm=0.19, hand=0.075, finger=0.8,
    foot=0.12, toe=0.05,
)  # fmt: skip
GENERIC = Proportions(
    ankle_height=0.08, shin=0.42, thigh=0.44, hip_drop=0.07, hip_width=0.10,
    spine=(0.12, 0.11, 0.12, 0.16), spine_z=(0.0, 0.015, 0.0, -0.025), neck=0.09, head=0.16,
    collar=(0.05, 0.09, -0.015), clavicle=0.16, upper_arm=0.24, lower_arm=0.22, hand=0.09, finger=1.0,
    foot=0.14, toe=0.06,
)  # fmt: skip


def humanoid(p: Proportions, *, thumb_down_deg: float = 20.0) -> list[tuple[str, str | None, np.ndarray]]:
    """(key, parent key, rest world position) for every template joint, parents first. Keys are
    VRM-like (hips, spine, chest, upperChest, leftUpperArm, leftIndex1...) plus tips (headTop,
    leftIndex4, leftToesEnd) that become end joints or End Sites."""
    out: list[tuple[str, str | None, np.ndarray]] = []
    pos: dict[str, np.ndarray] = {}

    def add(key: str, parent: str | None, at) -> None:
        pos[key] = np.asarray(at, dtype=np.float64)
        out.append((key, parent, pos[key]))

    hip_height = p.ankle_height + p.shin + p.thigh + p.hip_drop
    add("hips", None, (0.0, hip_height, 0.0))
    chain = ("hips", "spine", "chest", "upperChest", "neck")
    for k in range(1, len(chain)):
        add(chain[k], chain[k - 1], pos[chain[k - 1]] + (0.0, p.spine[k - 1], p.spine_z[k - 1]))
    add("head", "neck", pos["neck"] + (0.0, p.neck, 0.01))
    add("headTop", "head", pos["head"] + (0.0, p.head, 0.0))
    for side, sx in (("left", 1.0), ("right", -1.0)):
        mirror = np.array([sx, 1.0, 1.0])
        s = side
        add(f"{s}Shoulder", "upperChest", pos["upperChest"] + mirror * p.collar)
        add(f"{s}UpperArm", f"{s}Shoulder", pos[f"{s}Shoulder"] + mirror * (p.clavicle, 0, 0))
        add(f"{s}LowerArm", f"{s}UpperArm", pos[f"{s}UpperArm"] + mirror * (p.upper_arm, 0, 0))
        add(f"{s}Hand", f"{s}LowerArm", pos[f"{s}LowerArm"] + mirror * (p.lower_arm, 0, 0))
        wrist = pos[f"{s}Hand"]
        f = p.finger
        # Thumb: from the base of the palm, 45 degrees between +X (outward) and +Z (forward),
        # tilted down by `thumb_down_deg` (0 = the VRM T-pose's thumb parallel to the ground).
        down = np.radians(thumb_down_deg)
        direction = np.array([np.cos(down) / np.sqrt(2), -np.sin(down), np.cos(down) / np.sqrt(2)])
        at = wrist + mirror * np.array([0.022, -0.012, 0.02]) * f
        add(f"{s}Thumb1", f"{s}Hand", at)
        for k, length in enumerate((0.045, 0.035, 0.03), start=2):
            at = at + mirror * direction * length * f
            add(f"{s}Thumb{k}", f"{s}Thumb{k - 1}", at)
        # Four fingers: knuckles across the palm (index forward, little finger back), straight.
        knuckles = {
            "Index": (0.95, 0.024),
            "Middle": (1.0, 0.0),
            "Ring": (0.96, -0.022),
            "Little": (0.88, -0.042),
        }
        segments = {"Index": (0.042, 0.025, 0.022), "Middle": (0.046, 0.029, 0.024),
                    "Ring": (0.043, 0.027, 0.023), "Little": (0.034, 0.02, 0.019)}  # fmt: skip
        for finger in FINGERS[1:]:
            along, across = knuckles[finger]
            at = wrist + mirror * np.array([p.hand * along, 0.0, across * f])
            add(f"{s}{finger}1", f"{s}Hand", at)
            for k, length in enumerate(segments[finger], start=2):
                at = at + mirror * np.array([length * f, 0.0, 0.0])
                add(f"{s}{finger}{k}", f"{s}{finger}{k - 1}", at)
    for side, sx in (("left", 1.0), ("right", -1.0)):
        s = side
        add(f"{s}UpperLeg", "hips", pos["hips"] + (sx * p.hip_width, -p.hip_drop, 0.0))
        add(f"{s}LowerLeg", f"{s}UpperLeg", pos[f"{s}UpperLeg"] + (0.0, -p.thigh, 0.01))
        add(f"{s}Foot", f"{s}LowerLeg", pos[f"{s}LowerLeg"] + (0.0, -p.shin, -0.02))
        add(f"{s}Toes", f"{s}Foot", pos[f"{s}Foot"] + (0.0, 0.025 - p.ankle_height, p.foot))
        add(f"{s}ToesEnd", f"{s}Toes", pos[f"{s}Toes"] + (0.0, 0.0, p.toe))
    return out


def a_pose(joints: list[tuple[str, str | None, np.ndarray]], degrees: float) -> None:
    """Lower both arms by `degrees` about the forward axis at the upper-arm joint (in place)."""
    for side, sign in (("left", -1.0), ("right", 1.0)):
        a = np.radians(sign * degrees)
        rot = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
        pivot = dict((k, v) for k, _, v in joints)[f"{side}UpperArm"]
        below = _descendants(joints, f"{side}UpperArm")
        for i, (key, parent, at) in enumerate(joints):
            if key in below:
                joints[i] = (key, parent, pivot + rot @ (at - pivot))


def _descendants(joints, key: str) -> set[str]:
    out = {key}
    for k, parent, _ in joints:  # parents come first, so one pass finds every descendant
        if parent in out:
            out.add(k)
    return out


def build(
    joints: list[tuple[str, str | None, np.ndarray]],
    names: dict[str, str],
    *,
    axes: np.ndarray | None = None,
    scale: float = 1.0,
    rotation_order: str = "ZXY",
    source: str,
) -> RigSkeleton:
    """The rig's skeleton: joints named in `names` (others are dropped, and a dropped tip becomes
    its parent's End Site), positions mapped by `axes` (template -> rig coordinates) and `scale`."""
    axes = np.eye(3) if axes is None else axes
    kept = [(k, parent, at) for k, parent, at in joints if k in names]
    index = {k: i for i, (k, _, _) in enumerate(kept)}
    parents = []
    for _, parent, _ in kept:
        while parent is not None and parent not in index:
            parent = next(pp for kk, pp, _ in joints if kk == parent)
        parents.append(-1 if parent is None else index[parent])
    positions = np.array([axes @ at for _, _, at in kept]) * scale
    has_child = {p for p in parents if p >= 0}
    end_sites = {}
    for k, parent, at in joints:  # a dropped tip below a kept leaf becomes its End Site
        if k not in names and parent in index and index[parent] not in has_child:
            end_sites[index[parent]] = (axes @ (at - dict((kk, v) for kk, _, v in joints)[parent])) * scale
    skeleton = skeleton_from_positions(
        [names[k] for k, _, _ in kept], parents, positions, end_sites=end_sites, source=source
    )
    return replace(skeleton, rotation_order=rotation_order)


def mixamo_names() -> dict[str, str]:
    names = {"hips": "Hips", "spine": "Spine", "chest": "Spine1", "upperChest": "Spine2", "neck": "Neck",
             "head": "Head", "headTop": "HeadTop_End"}  # fmt: skip
    for s, side in (("left", "Left"), ("right", "Right")):
        names.update({f"{s}Shoulder": f"{side}Shoulder", f"{s}UpperArm": f"{side}Arm",
                      f"{s}LowerArm": f"{side}ForeArm", f"{s}Hand": f"{side}Hand",
                      f"{s}UpperLeg": f"{side}UpLeg", f"{s}LowerLeg": f"{side}Leg", f"{s}Foot": f"{side}Foot",
                      f"{s}Toes": f"{side}ToeBase", f"{s}ToesEnd": f"{side}Toe_End"})  # fmt: skip
        for finger in FINGERS:
            label = "Pinky" if finger == "Little" else finger
            names.update({f"{s}{finger}{k}": f"{side}Hand{label}{k}" for k in (1, 2, 3, 4)})
    return {k: f"mixamorig:{v}" for k, v in names.items()}


def vrm_names(version: int) -> dict[str, str]:
    names = {k: k for k in ("hips", "spine", "chest", "upperChest", "neck", "head")}
    thumb = ("Metacarpal", "Proximal", "Distal") if version == 1 else ("Proximal", "Intermediate", "Distal")
    for s in ("left", "right"):
        names.update({f"{s}{b}": f"{s}{b}" for b in ("Shoulder", "UpperArm", "LowerArm", "Hand",
                                                     "UpperLeg", "LowerLeg", "Foot", "Toes")})  # fmt: skip
        names.update({f"{s}Thumb{k + 1}": f"{s}Thumb{t}" for k, t in enumerate(thumb)})
        for finger in FINGERS[1:]:
            names.update({f"{s}{finger}{k + 1}": f"{s}{finger}{t}"
                          for k, t in enumerate(("Proximal", "Intermediate", "Distal"))})  # fmt: skip
    return names


def generic_names() -> dict[str, str]:
    names = {"hips": "Hips", "spine": "Spine", "chest": "Chest", "upperChest": "UpperChest", "neck": "Neck",
             "head": "Head"}  # fmt: skip
    for s, side in (("left", "Left"), ("right", "Right")):
        for b in ("Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg", "Foot", "Toes"):
            names[f"{s}{b}"] = f"{side}{b}"
        for finger in FINGERS:
            label = "Pinky" if finger == "Little" else finger
            names.update({f"{s}{finger}{k}": f"{side}{label}{k}" for k in (1, 2, 3)})
    return names


Y_UP_MINUS_Z = np.diag([-1.0, 1.0, -1.0])  # template -> facing -Z (a half turn about Y)
Z_UP_MINUS_Y = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # (x, y, z) -> (x, -z, y): Blender


def skeletons() -> dict[str, RigSkeleton]:
    generic = humanoid(GENERIC)
    a_pose(generic, 45.0)
    return {
        "mixamo": build(humanoid(MIXAMO), mixamo_names(), scale=100.0, source="mixamo"),
        "vrm": build(humanoid(VRM, thumb_down_deg=0.0), vrm_names(1), source="vrm"),
        "vrm0": build(humanoid(VRM, thumb_down_deg=0.0), vrm_names(0), axes=Y_UP_MINUS_Z, source="vrm0"),
        "generic": build(generic, generic_names(), axes=Z_UP_MINUS_Y, rotation_order="XYZ", source="generic"),
    }


def main() -> None:
    out = HERE / "skeletons"
    for name, skeleton in skeletons().items():
        path = write_text_atomic(out / f"{name}.bvh", skeleton_bvh_text(skeleton))
        print(f"{path.relative_to(HERE.parent)}: {skeleton.num_joints} joints")


if __name__ == "__main__":
    main()
