"""Rotation retargeting from any BVH skeleton onto SMPL-X, driven by a joint map.

A joint map (`motion_library/joint_maps/<name>.yaml`) names, for each SMPL-X joint, the source
joint that drives it::

    name: mixamo
    units: auto          # m | cm | mm | in | auto (from the skeleton's height)
    up: auto             # the source's up axis: X, Y, Z, -X, -Y, -Z or auto
    forward: auto        # the way the source character faces, same spelling
    root: mixamorig:Hips # joint whose position drives the root translation (default: pelvis's)
    joints:              # SMPL-X name -> source name; all must exist in the file
      pelvis: mixamorig:Hips
      spine1: mixamorig:Spine
      ...
    optional:            # used when present (e.g. fingers: some exports have none)
      left_thumb1: mixamorig:LeftHandThumb1

Source names match exactly, else ignoring a namespace prefix (``mixamorig:``) and case.

How the rotations carry over
----------------------------
In a BVH, the rest pose is every rotation zero, so every joint frame is world-aligned at rest
and a joint's world rotation ``W_j(t)`` is exactly the rotation that takes its rest bones
(offsets to its children) to where they point at frame t. SMPL-X's rest (T-pose, flat hands)
has the same property. The two rest poses differ, though (A-pose sources, other proportions,
thumbs), so each mapped joint gets a constant correction ``R_fix_j`` that takes the SMPL-X rest
bone directions onto the source's rest bone directions; then

    G_j(t) = C @ W_src(j)(t) @ C^T @ R_fix_j      (SMPL-X world rotation, relative to rest)

points every SMPL-X bone of j where the source's corresponding bone points, because
``G_j r = C W (C^T R_fix r)`` and ``C^T R_fix r`` is the source's rest bone. ``C`` rotates the
source's axes (up/forward) onto SMPL-X's (Y up, +Z forward). ``R_fix_j`` aligns two directions
per joint: the bone to its main child (spine -> next spine joint, shoulder -> elbow, wrist ->
middle knuckle, ...) exactly, and a secondary direction for the twist as well as the two
skeletons allow (the shoulder line for the spine, the hip line for the pelvis, forward for arms
and legs, the knuckle line index->pinky for hands and fingers, the palm normal for thumbs).
SMPL-X local rotations are then ``G_parent^T @ G_j``. Source joints that the map skips (ZEGGS's
Spine3, Neck1) are folded in automatically: the next mapped joint's world rotation contains
them. SMPL-X joints the map leaves out keep their parent's frame (identity local rotation);
unmapped finger joints keep the relaxed SMPL-X mean hand (pose zero).

Root translation: the mapped root joint's displacement from its rest height, converted to metres
and axes, with the SMPL-X body standing on y = 0 at rest (as BEAT2 / AMASS-X motion does).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gesticulator.errors import InputFileError
from gesticulator.io.bvh import BvhData, read_bvh
from gesticulator.motion import skeleton as sk
from gesticulator.motion.kinematics import forward_kinematics, from_flat_hand, rest_skeleton
from gesticulator.motion.ops import resample
from gesticulator.motion.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from gesticulator.types import CANONICAL_FPS, Motion

JOINT_MAPS_DIR = "joint_maps"
UNITS_TO_METRES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254}
_AXES = {"X": np.array([1.0, 0, 0]), "Y": np.array([0, 1.0, 0]), "Z": np.array([0, 0, 1.0])}
_J = sk.JOINT_INDEX
_FINGERS = ("index", "middle", "pinky", "ring", "thumb")
_HAND_JOINTS = frozenset(sk.LEFT_HAND + sk.RIGHT_HAND)


# -- joint maps ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JointMap:
    """SMPL-X joint name -> source joint name, plus the source's units and axes."""

    name: str
    joints: dict[str, str]  # required: every name must be in the source file
    optional: dict[str, str] = field(default_factory=dict)  # used when present
    root: str | None = None  # source joint driving translation (default: the pelvis's joint)
    units: str = "auto"
    up: str = "auto"
    forward: str = "auto"
    path: str = ""  # the YAML it came from, for messages
    # Export rigs (gesticulator.rigs) only: the rig's rest-pose skeleton (BVH or GLB), a path
    # relative to the YAML. The importer ignores it, so one YAML serves both directions.
    rest: str | None = None

    def all_joints(self) -> dict[str, str]:
        return {**self.optional, **self.joints}


def joint_maps_dir() -> Path:
    """The folder of shipped joint maps (motion_library/joint_maps)."""
    from gesticulator.resources import data_dir

    return data_dir("motion_library") / JOINT_MAPS_DIR


def available_joint_maps() -> list[str]:
    """Names of the shipped joint maps (usable as `joint_map=` arguments)."""
    folder = joint_maps_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_joint_map(spec: str | os.PathLike | JointMap | dict[str, Any]) -> JointMap:
    """A joint map from a shipped name ("mixamo", "beat_zeggs75", "seg51"), a YAML path, or a dict."""
    if isinstance(spec, JointMap):
        return spec
    if isinstance(spec, dict):
        return _parse_joint_map(spec, "<dict>")
    path = Path(spec)
    if not path.is_file():
        shipped = joint_maps_dir() / f"{path.name}.yaml" if path.suffix == "" else None
        if shipped is None or not shipped.is_file():
            known = ", ".join(available_joint_maps()) or "none"
            raise InputFileError(
                f"joint map {str(spec)!r} not found (shipped maps: {known})",
                "give a shipped map name or the path of a joint map YAML",
            )
        path = shipped
    try:
        from gesticulator.io.text import read_text  # UTF-8/UTF-16, else Windows-1252 with a warning

        data = yaml.safe_load(read_text(path, "joint map"))
    except OSError as e:
        raise InputFileError(f"cannot read joint map {path}: {e.strerror}", "check the path") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise InputFileError(f"joint map {path}{where} is not valid YAML", "fix its syntax") from None
    return _parse_joint_map(data, str(path))


def _parse_joint_map(data: Any, where: str) -> JointMap:
    def fail(problem: str) -> InputFileError:
        return InputFileError(
            f"joint map {where}: {problem}",
            "see the shipped maps in motion_library/joint_maps/ for the format",
        )

    if not isinstance(data, dict):
        raise fail("must be a YAML mapping with a 'joints:' section")
    known = {
        "name",
        "description",
        "units",
        "up",
        "forward",
        "root",
        "joints",
        "optional",
        "source",
        "notes",
        "rest",
    }
    extra = sorted(set(data) - known)
    if extra:
        raise fail(f"unknown key(s) {', '.join(extra)} (known: {', '.join(sorted(known))})")
    sections = {}
    for key in ("joints", "optional"):
        sec = data.get(key) or {}
        if not isinstance(sec, dict) or not all(isinstance(v, str) and v for v in sec.values()):
            raise fail(f"'{key}' must map SMPL-X joint names to source joint names")
        bad = sorted(k for k in sec if k not in _J)
        if bad:
            close = difflib.get_close_matches(bad[0], sk.JOINT_NAMES, n=2)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise fail(f"unknown SMPL-X joint name(s) {', '.join(map(str, bad))}{hint}")
        sections[key] = {str(k): str(v) for k, v in sec.items()}
    both = sorted(set(sections["joints"]) & set(sections["optional"]))
    if both:
        raise fail(f"joint(s) {', '.join(both)} listed in both 'joints' and 'optional'")
    if "pelvis" not in sections["joints"]:
        raise fail("'joints' must map 'pelvis' (the root of the SMPL-X skeleton)")
    units = str(data.get("units", "auto")).lower()
    if units not in (*UNITS_TO_METRES, "auto"):
        raise fail(f"units must be one of {', '.join(UNITS_TO_METRES)} or auto, got {units!r}")
    axes = {}
    for key in ("up", "forward"):
        value = str(data.get(key, "auto")).upper().replace("+", "")
        if value != "AUTO" and value.lstrip("-") not in _AXES:
            raise fail(f"{key} must be X, Y, Z, -X, -Y, -Z or auto, got {data.get(key)!r}")
        axes[key] = value.lower() if value == "AUTO" else value
    if (
        axes["up"] != "auto"
        and axes["forward"] != "auto"
        and axes["up"].lstrip("-") == axes["forward"].lstrip("-")
    ):
        raise fail(f"up ({axes['up']}) and forward ({axes['forward']}) must be different axes")
    root = data.get("root")
    rest = data.get("rest")
    if rest is not None and not (isinstance(rest, str) and rest.strip()):
        raise fail("'rest' must be the path of the rig's rest-pose skeleton (.bvh or .glb)")
    return JointMap(
        name=str(data.get("name") or Path(where).stem),
        joints=sections["joints"],
        optional=sections["optional"],
        root=str(root) if root else None,
        units=units,
        up=axes["up"],
        forward=axes["forward"],
        path=where,
        rest=rest.strip() if rest else None,
    )


def _strip(name: str) -> str:
    return name.rsplit(":", 1)[-1].strip()


def resolve_joint_names(bvh: BvhData, joint_map: JointMap) -> dict[int, int]:
    """SMPL-X joint index -> source joint index for every usable map entry.

    Required names missing from the file (and optional ones missing from a hand or group that is
    otherwise present) raise one `InputFileError` that lists them with the closest file names.
    """
    exact = {n: i for i, n in enumerate(bvh.names)}
    stripped: dict[str, list[int]] = {}
    folded: dict[str, list[int]] = {}
    for i, n in enumerate(bvh.names):
        stripped.setdefault(_strip(n), []).append(i)
        folded.setdefault(_strip(n).lower(), []).append(i)

    def find(name: str) -> int | None:
        if name in exact:
            return exact[name]
        for table, key in ((stripped, _strip(name)), (folded, _strip(name).lower())):
            hits = table.get(key, [])
            if len(hits) == 1:
                return hits[0]
        return None

    out: dict[int, int] = {}
    missing: list[str] = []
    for smplx, src in joint_map.joints.items():
        idx = find(src)
        if idx is None:
            missing.append(src)
        else:
            out[_J[smplx]] = idx
    groups: dict[str, list[tuple[str, str]]] = {}
    for smplx, src in joint_map.optional.items():
        groups.setdefault(_optional_group(smplx), []).append((smplx, src))
    for entries in groups.values():
        found = {smplx: find(src) for smplx, src in entries}
        if any(v is not None for v in found.values()):
            missing += [src for smplx, src in entries if found[smplx] is None]
            out.update({_J[s]: i for s, i in found.items() if i is not None})
    if joint_map.root is not None and find(joint_map.root) is None:
        missing.append(joint_map.root)
    if missing:
        names = [_strip(n) for n in bvh.names]
        parts = []
        for m in dict.fromkeys(missing):
            close = difflib.get_close_matches(_strip(m), names, n=2, cutoff=0.5)
            parts.append(f"{m} (closest: {', '.join(close)})" if close else m)
        raise InputFileError(
            f"{bvh.source}: joint map '{joint_map.name}' names {len(parts)} joint(s) not in the file: "
            + "; ".join(parts),
            f"pick the joint map for this skeleton or edit {joint_map.path or 'the map'}",
        )
    sources = list(out.values())
    dupes = sorted({bvh.names[s] for s in sources if sources.count(s) > 1})
    if dupes:
        raise InputFileError(
            f"joint map '{joint_map.name}' maps several SMPL-X joints to the same source joint(s): {', '.join(dupes)}",
            "map each source joint at most once",
        )
    return out


def _optional_group(smplx: str) -> str:
    """Optional entries are all-or-nothing per hand (a hand with some fingers must have all)."""
    j = _J[smplx]
    if j in sk.LEFT_HAND:
        return "left_hand"
    if j in sk.RIGHT_HAND:
        return "right_hand"
    return smplx


# -- rest-pose correction --------------------------------------------------------------------------

# The bone that defines each joint's main direction: the first mapped joint in the list.
_PRIMARY: dict[str, tuple[str, ...]] = {
    "pelvis": ("spine1", "spine2", "spine3", "neck"),
    "spine1": ("spine2", "spine3", "neck"),
    "spine2": ("spine3", "neck"),
    "spine3": ("neck", "head"),
    "neck": ("head",),
}
for _s in ("left", "right"):
    _PRIMARY.update(
        {
            f"{_s}_collar": (f"{_s}_shoulder", f"{_s}_elbow"),
            f"{_s}_shoulder": (f"{_s}_elbow", f"{_s}_wrist"),
            f"{_s}_elbow": (f"{_s}_wrist",),
            f"{_s}_wrist": tuple(f"{_s}_{f}1" for f in ("middle", "ring", "index", "pinky")),
            f"{_s}_hip": (f"{_s}_knee", f"{_s}_ankle"),
            f"{_s}_knee": (f"{_s}_ankle",),
            f"{_s}_ankle": (f"{_s}_foot",),
        }
    )
    for _f in _FINGERS:
        _PRIMARY[f"{_s}_{_f}1"] = (f"{_s}_{_f}2", f"{_s}_{_f}3")
        _PRIMARY[f"{_s}_{_f}2"] = (f"{_s}_{_f}3",)

# Secondary (twist) directions, first usable wins: ("pair", a, b) is the direction a -> b;
# ("axis", v) a world axis (both skeletons face +Z after axis conversion); ("palm", side) the
# palm normal (wrist->middle knuckle x knuckle line).
_LATERAL = (("pair", "right_shoulder", "left_shoulder"), ("pair", "right_collar", "left_collar"),
            ("pair", "right_hip", "left_hip"), ("axis", "X"))  # fmt: skip
_SECONDARY: dict[str, tuple[tuple[str, ...], ...]] = {
    "pelvis": (("pair", "right_hip", "left_hip"), ("pair", "right_shoulder", "left_shoulder"), ("axis", "X")),
    **{n: _LATERAL for n in ("spine1", "spine2", "spine3", "neck", "head", "jaw", "left_eye", "right_eye")},
}
for _s in ("left", "right"):
    knuckles = ("pair", f"{_s}_pinky1", f"{_s}_index1")
    knuckles_ring = ("pair", f"{_s}_ring1", f"{_s}_index1")
    palm = ("palm", _s)
    for _n in ("collar", "shoulder", "elbow", "hip", "knee"):
        _SECONDARY[f"{_s}_{_n}"] = (("axis", "Z"), ("axis", "Y"))
    for _n in ("ankle", "foot"):
        _SECONDARY[f"{_s}_{_n}"] = (("pair", "right_hip", "left_hip"), ("axis", "X"))
    _SECONDARY[f"{_s}_wrist"] = (knuckles, knuckles_ring, ("axis", "Z"), ("axis", "Y"))
    for _f in _FINGERS:
        for _k in (1, 2, 3):
            _SECONDARY[f"{_s}_{_f}{_k}"] = (
                (palm, knuckles, ("axis", "Y"))
                if _f == "thumb"
                else (knuckles, knuckles_ring, palm, ("axis", "Y"))
            )


def _unit(v: np.ndarray) -> np.ndarray | None:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-8 else None


def _frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Orthonormal frame (columns) whose x axis is `a` and whose xy plane contains `b`."""
    z = np.cross(a, b)
    z /= np.linalg.norm(z)
    return np.stack([a, np.cross(z, a), z], axis=1)


class _Side:
    """Rest positions of one skeleton, looked up by SMPL-X joint index (None when unmapped)."""

    def __init__(self, positions: dict[int, np.ndarray]):
        self.pos = positions

    def direction(self, a: int, b: int) -> np.ndarray | None:
        if a not in self.pos or b not in self.pos:
            return None
        return _unit(self.pos[b] - self.pos[a])

    def spec(self, spec: tuple[str, ...]) -> np.ndarray | None:
        kind = spec[0]
        if kind == "pair":
            return self.direction(_J[spec[1]], _J[spec[2]])
        if kind == "axis":
            return _AXES[spec[1]]
        side = spec[1]
        along = self.direction(_J[f"{side}_wrist"], _J[f"{side}_middle1"])
        across = self.direction(_J[f"{side}_pinky1"], _J[f"{side}_index1"])
        if across is None:
            across = self.direction(_J[f"{side}_ring1"], _J[f"{side}_index1"])
        if along is None or across is None:
            return None
        return _unit(np.cross(along, across))


def rest_corrections(
    src_rest: dict[int, np.ndarray], smplx_rest: np.ndarray
) -> tuple[dict[int, np.ndarray], dict[int, int]]:
    """Per mapped SMPL-X joint, the constant rotation taking SMPL-X rest directions onto the source's.

    `src_rest` maps SMPL-X joint index -> the mapped source joint's rest position (SMPL-X axes).
    Returns (R_fix per joint, primary child per joint: the SMPL-X joint whose bone is matched
    exactly, absent for leaves whose direction comes from their parent bone).
    """
    src = _Side(src_rest)
    ref = _Side({j: smplx_rest[j] for j in src_rest})
    fixes: dict[int, np.ndarray] = {}
    primary_child: dict[int, int] = {}
    for j in src_rest:
        name = sk.JOINT_NAMES[j]
        a_ref = a_src = None
        for child in _PRIMARY.get(name, ()):
            c = _J[child]
            a_ref, a_src = ref.direction(j, c), src.direction(j, c)
            if a_ref is not None and a_src is not None:
                primary_child[j] = c
                break
        if a_ref is None or a_src is None:  # a leaf (head, foot, fingertip): continue the parent bone
            a_ref = a_src = None
            p = sk.PARENTS[j]
            while p >= 0 and (a_ref is None or a_src is None):
                a_ref, a_src = ref.direction(p, j), src.direction(p, j)
                p = sk.PARENTS[p]
        if a_ref is None or a_src is None:
            a_ref = a_src = _AXES["Y"]
        for spec in (*_SECONDARY.get(name, ()), ("axis", "Z"), ("axis", "X"), ("axis", "Y")):
            b_ref, b_src = ref.spec(spec), src.spec(spec)
            if b_ref is None or b_src is None:
                continue
            if (
                np.linalg.norm(np.cross(a_ref, b_ref)) > 0.25
                and np.linalg.norm(np.cross(a_src, b_src)) > 0.25
            ):
                break
        fixes[j] = _frame(a_src, b_src) @ _frame(a_ref, b_ref).T
    return fixes, primary_child


# -- the retargeter --------------------------------------------------------------------------------


def _axis(spec: str) -> np.ndarray:
    sign = -1.0 if spec.startswith("-") else 1.0
    return sign * _AXES[spec.lstrip("-").upper()]


def _snap(v: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """The signed coordinate axis nearest to `v` (optionally not parallel to `exclude`)."""
    scores = np.abs(v).copy()
    if exclude is not None:
        scores[np.argmax(np.abs(exclude))] = -1
    k = int(np.argmax(scores))
    out = np.zeros(3)
    out[k] = 1.0 if v[k] >= 0 else -1.0
    return out


class Retargeter:
    """Retargets one parsed BVH onto SMPL-X with a joint map (the rest-pose analysis runs once).

    >>> rt = Retargeter(read_bvh("take.bvh"), load_joint_map("mixamo"))
    >>> motion = rt.motion()                 # every frame, at the source's frame rate
    """

    def __init__(self, bvh: BvhData, joint_map: JointMap, *, betas: np.ndarray | None = None):
        self.bvh = bvh
        self.joint_map = joint_map
        self.betas = np.zeros(10) if betas is None else np.asarray(betas, dtype=np.float64)
        if bvh.num_frames == 0:
            raise InputFileError(f"{bvh.source} has zero frames", "export a BVH with at least one frame")
        self.mapping = resolve_joint_names(bvh, joint_map)  # smplx index -> source index
        root_name = joint_map.root
        self.root_source = self.mapping[0] if root_name is None else self._find(root_name)
        raw_rest = bvh.rest_positions()
        self.axes = self._axes(raw_rest)  # C: source coordinates -> SMPL-X coordinates
        rest = raw_rest @ self.axes.T
        self.unit_scale = self._unit_scale(rest)
        self.source_rest = rest * self.unit_scale  # (J, 3) metres, SMPL-X axes
        self.skeleton = rest_skeleton(self.betas)
        self.fixes, self.primary_child = rest_corrections(
            {j: self.source_rest[s] for j, s in self.mapping.items()}, self.skeleton.rest_positions
        )
        self._root_reference = self._root_reference_height(rest)

    # -- setup ------------------------------------------------------------------------------------
    def _find(self, name: str) -> int:
        for i, n in enumerate(self.bvh.names):
            if n == name or _strip(n) == _strip(name) or _strip(n).lower() == _strip(name).lower():
                return i
        raise InputFileError(
            f"{self.bvh.source}: root joint {name!r} of joint map '{self.joint_map.name}' not in the file"
        )

    def _mapped(self, *names: str) -> np.ndarray | None:
        pts = [self.mapping.get(_J[n]) for n in names]
        return None if any(p is None for p in pts) else np.asarray(pts)

    def _axes(self, rest: np.ndarray) -> np.ndarray:
        jm = self.joint_map
        if jm.up != "auto":
            up = _axis(jm.up)
        else:
            top = next(
                (self.mapping[_J[n]] for n in ("head", "neck", "spine3", "spine2") if _J[n] in self.mapping),
                None,
            )
            up = _snap(rest[top] - rest[self.mapping[0]]) if top is not None else _AXES["Y"]
        if jm.forward != "auto":
            fwd = _axis(jm.forward)
        else:
            fwd = None
            for left, right in (
                ("left_hip", "right_hip"),
                ("left_shoulder", "right_shoulder"),
                ("left_collar", "right_collar"),
            ):
                pair = self._mapped(left, right)
                if pair is not None:
                    lateral = rest[pair[0]] - rest[pair[1]]
                    if np.linalg.norm(lateral) > 1e-8:
                        fwd = _snap(np.cross(lateral, up), exclude=up)  # SMPL-X: +X (left) x +Y (up) = +Z
                        break
            if fwd is None:
                fwd = _AXES["Z"] if abs(up[2]) < 0.5 else -_AXES["Y"]
        if abs(np.dot(up, fwd)) > 1e-6:
            raise InputFileError(f"joint map '{jm.name}': up and forward axes must be perpendicular")
        return np.stack([np.cross(up, fwd), up, fwd])  # rows: source directions of SMPL-X X, Y, Z

    def _unit_scale(self, rest: np.ndarray) -> float:
        if self.joint_map.units != "auto":
            return UNITS_TO_METRES[self.joint_map.units]
        height = float(np.ptp(rest[list(self.mapping.values()), 1]))
        if height < 5.0:
            return 1.0
        return 0.01 if height < 500.0 else 0.001

    def _root_reference_height(self, rest: np.ndarray) -> float:
        """The source root's standing height in the file's coordinates (SMPL-X axes, file units).

        The root's rest OFFSET when the rest skeleton stands on the floor (most files); when the
        rest skeleton is centred on the root instead (feet far below zero), the root's height above
        its lowest joint, assuming the motion's floor is y = 0.
        """
        root_y = rest[self.root_source, 1]
        lowest = float(rest[:, 1].min())
        height = float(np.ptp(rest[:, 1]))
        return root_y if lowest > -0.1 * height else root_y - lowest

    # -- retargeting ------------------------------------------------------------------------------
    def source_world(self, frames: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Source world rotations (F, J, 3, 3) and positions (F, J, 3, metres), in SMPL-X axes."""
        world_r, world_p = self.bvh.world_transforms(frames)
        c = self.axes
        return c @ world_r @ c.T, (world_p @ c.T) * self.unit_scale

    def motion(self, frames: slice | None = None) -> Motion:
        """The retargeted SMPL-X motion of the selected source frames, at the source's frame rate."""
        world_r, world_p = self.source_world(frames)
        n = world_r.shape[0]
        if n == 0:
            raise InputFileError(
                f"{self.bvh.source}: the selected range holds no frames", "choose a range inside the clip"
            )
        hand_mean = axis_angle_to_matrix(sk.hand_mean())  # (30, 3, 3) relaxed hand, flat-hand terms
        glob = np.empty((n, sk.NUM_JOINTS, 3, 3))
        local = np.empty_like(glob)
        for j, p in enumerate(sk.PARENTS):
            if j in self.mapping:
                glob[:, j] = world_r[:, self.mapping[j]] @ self.fixes[j]
                local[:, j] = glob[:, j] if p < 0 else np.swapaxes(glob[:, p], -1, -2) @ glob[:, j]
            else:  # unmapped: identity local rotation (fingers: the relaxed mean hand)
                local[:, j] = hand_mean[j - 25] if j in _HAND_JOINTS else np.eye(3)
                glob[:, j] = glob[:, p] @ local[:, j]
        poses = from_flat_hand(matrix_to_axis_angle(local))
        poses[:, [j for j in range(sk.NUM_JOINTS) if j not in self.mapping]] = 0.0  # exactly, not ~1e-16
        root = world_p[:, self.root_source]
        pelvis = self.skeleton.rest_positions[0]
        feet = [_J[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
        standing_pelvis_y = pelvis[1] - self.skeleton.rest_positions[feet, 1].min()
        rest_root = self.source_rest[self.root_source]
        trans = np.empty((n, 3))  # the pelvis joint sits at rest pelvis + trans
        trans[:, [0, 2]] = root[:, [0, 2]] - rest_root[[0, 2]]
        trans[:, 1] = standing_pelvis_y + root[:, 1] - self._root_reference * self.unit_scale - pelvis[1]
        return Motion(
            poses=poses.reshape(n, sk.POSE_DIM),
            trans=trans,
            betas=self.betas,
            fps=self.bvh.fps,
            metadata={"source": self.bvh.source, "joint_map": self.joint_map.name, "retargeted": True},
        )

    def frame_range(self, start: float | None = None, end: float | None = None) -> slice:
        """Source frames whose times fall in [start, end) seconds; a clear error when empty."""
        fps, n = self.bvh.fps, self.bvh.num_frames
        first = 0 if start is None else int(np.ceil(start * fps - 1e-9))
        last = n if end is None else min(n, int(np.ceil(end * fps - 1e-9)))
        if start is not None and end is not None and end <= start or first >= last or first < 0:
            raise InputFileError(
                f"{self.bvh.source}: clip range {_fmt(start)}-{_fmt(end)} s is empty "
                f"(the file is {n / fps:.2f} s long)",
                "give --start smaller than --end, inside the clip",
            )
        return slice(first, last)

    # -- checking ---------------------------------------------------------------------------------
    def bones(self, *, secondary: bool = False) -> list[Bone]:
        """The bones whose directions retargeting reproduces: each mapped joint to its primary child
        (matched exactly unless source joints were folded in between). `secondary=True` adds every
        other SMPL-X parent->child bone with both ends mapped (hips from the pelvis, collars from
        spine3, fingers from the wrist), which match only as well as the two skeletons'
        proportions agree."""
        pairs = [(j, c, True) for j, c in sorted(self.primary_child.items())]
        if secondary:
            pairs += [
                (p, c, False)
                for c, p in enumerate(sk.PARENTS)
                if p >= 0 and p in self.mapping and c in self.mapping and self.primary_child.get(p) != c
            ]
        out = []
        for j, c, primary in pairs:
            s, t = self.mapping[j], self.mapping[c]
            chain, k = [], self.bvh.parents[t]
            while k >= 0 and k != s:
                chain.append(k)
                k = self.bvh.parents[k]
            out.append(
                Bone(
                    name=f"{sk.JOINT_NAMES[j]}->{sk.JOINT_NAMES[c]}",
                    smplx=(j, c),
                    source=(s, t),
                    folded=tuple(self.bvh.names[i] for i in reversed(chain)),
                    primary=primary,
                )
            )
        return out

    def bone_errors(
        self, motion: Motion | None = None, frames: slice | None = None, *, secondary: bool = False
    ) -> dict[str, np.ndarray]:
        """Per bone (see `bones`), the angle (degrees, per frame) between its SMPL-X direction and
        the source's. `motion` must be this retargeter's output for the same frames at the source
        rate (computed when omitted)."""
        motion = self.motion(frames) if motion is None else motion
        _, src_p = self.source_world(frames)
        if motion.num_frames != src_p.shape[0]:
            raise ValueError("bone_errors needs the retargeted motion at the source frame rate, same frames")
        smplx_p = forward_kinematics(motion).positions
        out = {}
        for bone in self.bones(secondary=secondary):
            a = smplx_p[:, bone.smplx[1]] - smplx_p[:, bone.smplx[0]]
            b = src_p[:, bone.source[1]] - src_p[:, bone.source[0]]
            out[bone.name] = _angle_deg(a, b)
        return out


@dataclass(frozen=True)
class Bone:
    name: str  # "left_shoulder->left_elbow"
    smplx: tuple[int, int]  # SMPL-X joint indices (joint, child)
    source: tuple[int, int]  # source joint indices
    folded: tuple[str, ...]  # unmapped source joints between them (direction then only approximate)
    primary: bool = True  # the joint's main bone (matched exactly) or a side bone


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    dot = np.sum(a * b, axis=-1)
    return np.degrees(np.arctan2(cross, dot))


def _fmt(v: float | None) -> str:
    return "…" if v is None else f"{v:g}"


# -- public functions ------------------------------------------------------------------------------


def _as_bvh(source: BvhData | str | os.PathLike) -> BvhData:
    return source if isinstance(source, BvhData) else read_bvh(source)


def retarget_bvh(
    source: BvhData | str | os.PathLike,
    joint_map: str | os.PathLike | JointMap,
    *,
    start: float | None = None,
    end: float | None = None,
    fps: float | None = CANONICAL_FPS,
    betas: np.ndarray | None = None,
) -> Motion:
    """Retarget a BVH (path or parsed) onto SMPL-X.

    `joint_map`: a shipped map name ("mixamo", "beat_zeggs75", "seg51"), a YAML path or a
    `JointMap`. `start`/`end`: seconds of the source to keep ([start, end)). `fps`: output rate
    (30 by default, resampled with slerp; None keeps the source rate). `betas`: SMPL-X body shape
    of the output (neutral by default). Raises `InputFileError` (one line) for unreadable files,
    joint names missing from the file, and empty ranges.
    """
    bvh = _as_bvh(source)
    rt = Retargeter(bvh, load_joint_map(joint_map), betas=betas)
    motion = rt.motion(rt.frame_range(start, end))
    if fps is not None and abs(motion.fps - fps) > 1e-6:
        motion = resample(motion, fps)
    return motion


def bone_direction_errors(
    source: BvhData | str | os.PathLike,
    joint_map: str | os.PathLike | JointMap,
    *,
    start: float | None = None,
    end: float | None = None,
    betas: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Retarget at the source's frame rate and return, per SMPL-X bone ("left_elbow->left_wrist"),
    the per-frame angle in degrees between the SMPL-X bone and the source bone it follows."""
    rt = Retargeter(_as_bvh(source), load_joint_map(joint_map), betas=betas)
    return rt.bone_errors(frames=rt.frame_range(start, end))


__all__ = [
    "Bone",
    "JointMap",
    "Retargeter",
    "available_joint_maps",
    "bone_direction_errors",
    "joint_maps_dir",
    "load_joint_map",
    "resolve_joint_names",
    "rest_corrections",
    "retarget_bvh",
]
