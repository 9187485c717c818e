"""Target rigs: a skeleton in its rest pose plus the joint map that ties it to SMPL-X.

A rig is one joint-map YAML in the importer's format (`gesticulator.library.retarget`: SMPL-X
joint name -> rig joint name, `units`, `up`, `forward`, `root`, `optional` fingers) with one more
key, ``rest:``, the path (relative to the YAML) of the rig's rest-pose skeleton as a BVH or a
GLB. The shipped rigs live in the `rigs/` data folder (`available_rigs()`); a user's own rig is
their YAML, or any YAML plus a skeleton file given explicitly (`load_rig(map, skeleton=...)`).

Skeletons from the two file kinds are held the same way, as rest world matrices in the file's
own units and axes:
- BVH: the rest pose is every rotation zero, so each joint's rest world matrix is a pure
  translation (its accumulated OFFSETs);
- GLB (also .gltf and .vrm): the skin's joints (every node when there is no skin), with world
  matrices from the node TRS / matrix chain. Nodes may carry rest rotations (Mixamo and VRM 0.x
  exports do); they are kept, so an exported animation plays on the user's own model. The node
  holding the top joint (an "Armature" with a 0.01 scale and a Z-up rotation, say) is kept as the
  rig's `anchor`.

Everything SMPL-X-specific (which joints map where, the axis change C, units, the root's standing
height) comes from the importer's `Retargeter` run on the rest skeleton, so export and import share
one set of conventions and a round trip SMPL-X -> rig -> SMPL-X is exact up to file precision.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gesticulator.errors import InputFileError
from gesticulator.io.bvh import BvhData, read_bvh
from gesticulator.library.retarget import JointMap, Retargeter, load_joint_map
from gesticulator.motion import skeleton as sk
from gesticulator.motion.stance import FOOT_JOINTS

RIGS_FOLDER = "rigs"
SKELETON_SUFFIXES = (".bvh", ".glb", ".gltf", ".vrm")

# VRM 1.0 humanoid bone names (VRMC_vrm-1.0/humanoid.md). A rig whose mapped joints carry these
# names gets the VRMC_vrm_animation extension in its GLB (see export.py).
VRM1_BONES: tuple[str, ...] = (
    "hips", "spine", "chest", "upperChest", "neck", "head", "jaw", "leftEye", "rightEye",
    *(f"{s}{b}" for s in ("left", "right") for b in ("UpperLeg", "LowerLeg", "Foot", "Toes")),
    *(f"{s}{b}" for s in ("left", "right") for b in ("Shoulder", "UpperArm", "LowerArm", "Hand")),
    *(f"{s}Thumb{k}" for s in ("left", "right") for k in ("Metacarpal", "Proximal", "Distal")),
    *(
        f"{s}{f}{k}"
        for s in ("left", "right")
        for f in ("Index", "Middle", "Ring", "Little")
        for k in ("Proximal", "Intermediate", "Distal")
    ),
)  # fmt: skip


# -- skeletons ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RigSkeleton:
    """A rig's joints in their rest pose, in the file's own units and axes.

    Joints are ordered parents first (index 0 is the top joint). `rest_world` holds each joint's
    rest world matrix: a pure translation for BVH skeletons, translation + rotation (+ uniform
    scale) for GLB ones."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    rest_world: np.ndarray  # (J, 4, 4)
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)  # leaf -> End Site offset (BVH)
    anchor: np.ndarray | None = None  # (4, 4) world matrix of the GLB node holding the top joint
    anchor_name: str | None = None
    source: str = ""
    kind: str = "bvh"  # "bvh" or "glb": where the rest pose came from
    rotation_order: str = "ZXY"  # Euler order for BVH output (a BVH rig keeps its own)

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def rest_positions(self) -> np.ndarray:
        """(J, 3) rest world positions."""
        return self.rest_world[:, :3, 3].copy()

    @property
    def rest_scales(self) -> np.ndarray:
        """(J,) uniform world scale of each joint (1 for BVH skeletons)."""
        return np.cbrt(np.linalg.det(self.rest_world[:, :3, :3]))

    @property
    def rest_rotations(self) -> np.ndarray:
        """(J, 3, 3) rest world rotations (identity for BVH skeletons)."""
        return self.rest_world[:, :3, :3] / self.rest_scales[:, None, None]

    @property
    def has_rest_rotations(self) -> bool:
        return not np.allclose(self.rest_rotations, np.eye(3), atol=1e-7)

    def offsets(self) -> np.ndarray:
        """(J, 3) rest offset of each joint from its parent in world axes (the top's is absolute):
        a BVH's OFFSETs."""
        pos = self.rest_positions
        out = pos.copy()
        for j, p in enumerate(self.parents):
            if p >= 0:
                out[j] = pos[j] - pos[p]
        return out

    def children(self) -> list[list[int]]:
        kids: list[list[int]] = [[] for _ in self.names]
        for j, p in enumerate(self.parents):
            if p >= 0:
                kids[p].append(j)
        return kids

    def as_bvh(self) -> BvhData:
        """The rest skeleton as a one-frame BVH (what the importer's analysis reads)."""
        channels = [["Xposition", "Yposition", "Zposition"] if p < 0 else [] for p in self.parents]
        channels = [c + ["Zrotation", "Xrotation", "Yrotation"] for c in channels]
        columns, total = [], 0
        for c in channels:
            columns.append((total, len(c)))
            total += len(c)
        motion = np.zeros((1, total))
        motion[0, :3] = self.rest_positions[0]
        return BvhData(
            names=list(self.names),
            parents=list(self.parents),
            offsets=self.offsets(),
            channels=channels,
            end_sites=dict(self.end_sites),
            frame_time=1.0 / 30.0,
            motion=motion,
            source=self.source,
            _columns=columns,
        )


def read_skeleton(path: str | os.PathLike) -> RigSkeleton:
    """A rig's rest-pose skeleton from a BVH (OFFSETs; frames are ignored) or a GLB/glTF/VRM."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(
            f"rig skeleton not found: {path}", "check the path (a .bvh or .glb in rest pose)"
        )
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        return _bvh_skeleton(read_bvh(path))
    if suffix in (".glb", ".gltf", ".vrm"):
        return _glb_skeleton(path)
    raise InputFileError(
        f"cannot read a rig skeleton from {path.name}: unknown type {suffix or '(no suffix)'}",
        f"give one of {', '.join(SKELETON_SUFFIXES)}",
    )


def skeleton_from_positions(
    names: list[str] | tuple[str, ...],
    parents: list[int] | tuple[int, ...],
    positions: np.ndarray,
    *,
    end_sites: dict[int, np.ndarray] | None = None,
    source: str = "<positions>",
) -> RigSkeleton:
    """A BVH-style skeleton (no rest rotations) from rest world positions; parents must precede
    children."""
    positions = np.asarray(positions, dtype=np.float64)
    _check_order(list(parents), source)
    world = np.tile(np.eye(4), (len(names), 1, 1))
    world[:, :3, 3] = positions
    return RigSkeleton(
        names=tuple(names),
        parents=tuple(parents),
        rest_world=world,
        end_sites=dict(end_sites or {}),
        source=source,
    )


def _check_order(parents: list[int], source: str) -> None:
    if not parents or parents[0] >= 0 or any(not -1 <= p < j for j, p in enumerate(parents)):
        raise InputFileError(f"{source}: joints must be listed parents first, one top joint")
    if sum(p < 0 for p in parents) != 1:
        raise InputFileError(f"{source}: the skeleton has several top joints", "give one connected skeleton")


def _bvh_skeleton(bvh: BvhData) -> RigSkeleton:
    order = "ZXY"
    for chans in bvh.channels:
        rot = "".join(c[0] for c in chans if c.endswith("rotation"))
        if len(rot) == 3:
            order = rot  # keep the file's own Euler order for what we write back
            break
    skeleton = skeleton_from_positions(
        bvh.names, bvh.parents, bvh.rest_positions(), end_sites=bvh.end_sites, source=bvh.source
    )
    return replace(skeleton, kind="bvh", rotation_order=order)


# -- GLB rest poses ------------------------------------------------------------------------------


def _node_matrix(node: Any) -> np.ndarray:
    """A glTF node's local matrix: `matrix` (column-major) or T * R * S."""
    if node.matrix is not None:
        return np.asarray(node.matrix, dtype=np.float64).reshape(4, 4).T
    out = np.eye(4)
    if node.rotation is not None:
        x, y, z, w = (float(v) for v in node.rotation)
        n = np.sqrt(x * x + y * y + z * z + w * w)
        if n < 1e-12:
            raise ValueError(f"node {node.name!r} has a zero rotation quaternion")
        x, y, z, w = x / n, y / n, z / n, w / n
        out[:3, :3] = [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    if node.scale is not None:
        out[:3, :3] = out[:3, :3] @ np.diag(np.asarray(node.scale, dtype=np.float64))
    if node.translation is not None:
        out[:3, 3] = np.asarray(node.translation, dtype=np.float64)
    return out


def load_gltf(path: Path):
    """A pygltflib document from binary glTF (by its magic, whatever the suffix: .glb, .vrm,
    .vrma) or JSON glTF. Raises whatever pygltflib's parsing hits."""
    import pygltflib

    with open(path, "rb") as fh:
        binary = fh.read(4) == b"glTF"
    return pygltflib.GLTF2.load_binary(str(path)) if binary else pygltflib.GLTF2.load_json(str(path))


def _glb_skeleton(path: Path) -> RigSkeleton:
    def corrupt(why: str) -> InputFileError:
        return InputFileError(
            f"{path}: not a readable glTF rig ({why})", "re-export the rig as .glb (binary glTF 2.0)"
        )

    try:
        gltf = load_gltf(path)
    except Exception as e:  # pygltflib raises whatever its JSON/struct parsing hits
        raise corrupt(type(e).__name__) from None
    if gltf is None or not gltf.nodes:
        raise corrupt("it has no nodes")
    nodes = gltf.nodes
    parent = [-1] * len(nodes)
    for i, node in enumerate(nodes):
        for c in node.children or []:
            if not 0 <= c < len(nodes) or parent[c] >= 0 or c == i:
                raise corrupt(f"node {i} has an invalid child {c}")
            parent[c] = i
    try:
        local = [_node_matrix(n) for n in nodes]
    except (ValueError, TypeError) as e:
        raise corrupt(str(e)) from None
    world: list[np.ndarray | None] = [None] * len(nodes)

    def world_of(i: int, depth: int = 0) -> np.ndarray:
        if depth > len(nodes):
            raise corrupt("its node hierarchy has a cycle")
        if world[i] is None:
            world[i] = local[i] if parent[i] < 0 else world_of(parent[i], depth + 1) @ local[i]
        return world[i]

    joints = sorted({j for skin in gltf.skins or [] for j in skin.joints or []})
    if not joints:  # no skin: every node that is not a mesh, camera or light is a joint
        joints = [i for i, n in enumerate(nodes) if n.mesh is None and n.camera is None]
    if any(not 0 <= j < len(nodes) for j in joints):
        raise corrupt("a skin lists a node that does not exist")
    chosen = set(joints)

    def ancestors(i: int) -> list[int]:
        out = []
        while parent[i] >= 0:
            i = parent[i]
            out.append(i)
        return out

    # Non-joint nodes between two joints become (unanimated) joints, so the rig is one tree.
    for j in joints:
        chain = ancestors(j)
        for k, a in enumerate(chain):
            if a in chosen:
                chosen.update(chain[:k])
                break
    tops = [j for j in chosen if parent[j] not in chosen]
    if len(tops) > 1:  # several joint trees: join them at their lowest common ancestor
        common = set(ancestors(tops[0]))
        for t in tops[1:]:
            common &= set(ancestors(t))
        if not common:
            raise InputFileError(
                f"{path}: the rig's joints form {len(tops)} separate hierarchies",
                "export the armature as one joint tree",
            )
        lca = max(common, key=lambda a: len(ancestors(a)))
        for t in tops:
            for a in [t, *ancestors(t)]:
                if a == lca:
                    break
                chosen.add(a)
        chosen.add(lca)
        tops = [lca]
    top = tops[0]
    order: list[int] = []

    def visit(i: int) -> None:
        order.append(i)
        for c in nodes[i].children or []:
            if c in chosen:
                visit(c)

    visit(top)
    index = {n: k for k, n in enumerate(order)}
    rest_world = np.stack([world_of(i) for i in order])
    _check_uniform_scale(rest_world, [nodes[i].name or f"node{i}" for i in order], path)
    names = [nodes[i].name or f"node{i}" for i in order]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputFileError(
            f"{path}: several rig joints share the name(s) {', '.join(dupes[:5])}",
            "give every bone a unique name before exporting",
        )
    anchor = world_of(parent[top]) if parent[top] >= 0 else None
    return RigSkeleton(
        names=tuple(names),
        parents=tuple(-1 if parent[i] < 0 or i == top else index[parent[i]] for i in order),
        rest_world=rest_world,
        anchor=anchor,
        anchor_name=(nodes[parent[top]].name or "armature") if parent[top] >= 0 else None,
        source=str(path),
        kind="glb",
    )


def _check_uniform_scale(world: np.ndarray, names: list[str], path: Path) -> None:
    m = world[:, :3, :3]
    gram = np.swapaxes(m, -1, -2) @ m
    scale2 = np.trace(gram, axis1=-2, axis2=-1) / 3
    bad = [
        n
        for n, g, s2, d in zip(names, gram, scale2, np.linalg.det(m), strict=True)
        if s2 < 1e-20 or d <= 0 or np.abs(g - s2 * np.eye(3)).max() > 1e-4 * s2
    ]
    if bad:
        raise InputFileError(
            f"{path}: joint(s) {', '.join(bad[:5])} have a non-uniform, mirrored or zero scale at rest",
            "apply the scale to the armature (Blender: Apply > All Transforms) and re-export",
        )


# -- rigs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Rig:
    """A skeleton plus its joint map, with everything the retargeting needs worked out once."""

    name: str
    skeleton: RigSkeleton
    joint_map: JointMap
    mapping: dict[int, int]  # SMPL-X joint index -> rig joint index
    root: int  # the rig joint that carries the root translation
    axes: np.ndarray  # (3, 3) C: rig coordinates -> SMPL-X's (Y up, +Z forward)
    unit_scale: float  # metres per rig unit
    root_height: float  # the root's standing height above the rig's floor, rig units
    hip_height: float  # the pelvis joint's standing height above the rig's floor, rig units

    @property
    def names(self) -> tuple[str, ...]:
        return self.skeleton.names

    @property
    def parents(self) -> tuple[int, ...]:
        return self.skeleton.parents

    @property
    def rest_smplx(self) -> np.ndarray:
        """(J, 3) rest positions in SMPL-X axes and metres."""
        return self.skeleton.rest_positions @ self.axes.T * self.unit_scale

    @property
    def has_fingers(self) -> bool:
        return any(j in self.mapping for j in sk.LEFT_HAND + sk.RIGHT_HAND)

    def rig_joint(self, smplx_name: str) -> int | None:
        """The rig joint mapped to an SMPL-X joint name, or None."""
        return self.mapping.get(sk.JOINT_INDEX[smplx_name])


def rigs_dir() -> Path:
    """The folder of shipped rigs (`rigs/` in a clone, `gesticulator/_data/rigs` in a wheel)."""
    from gesticulator.resources import data_dir

    return data_dir(RIGS_FOLDER)


def available_rigs() -> list[str]:
    """Names of the shipped rigs (usable as `load_rig` / `--rig` arguments)."""
    try:
        folder = rigs_dir()
    except FileNotFoundError:
        return []
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_rig(
    spec: str | os.PathLike | JointMap | dict[str, Any] | Rig,
    *,
    skeleton: str | os.PathLike | RigSkeleton | None = None,
) -> Rig:
    """A rig from a shipped name ("mixamo", "vrm", "vrm0", "generic"), a joint-map YAML path, a
    `JointMap` or a dict. `skeleton` (a .bvh/.glb path or a `RigSkeleton`) overrides the map's
    ``rest:`` skeleton. Errors are one-line `InputFileError`s."""
    if isinstance(spec, Rig):
        return spec if skeleton is None else load_rig(spec.joint_map, skeleton=skeleton)
    joint_map = _load_map(spec)
    if skeleton is None:
        if not joint_map.rest:
            raise InputFileError(
                f"joint map {joint_map.path or joint_map.name!r} names no rest-pose skeleton",
                "add `rest: my_rig.bvh` (a .bvh or .glb of the rig in rest pose, relative to the YAML) "
                "or pass the skeleton explicitly",
            )
        base = Path(joint_map.path).parent if joint_map.path and joint_map.path != "<dict>" else Path.cwd()
        rest = Path(joint_map.rest).expanduser()
        skeleton = rest if rest.is_absolute() else base / rest
    skel = skeleton if isinstance(skeleton, RigSkeleton) else read_skeleton(skeleton)
    return _build_rig(skel, joint_map)


def _load_map(spec: str | os.PathLike | JointMap | dict[str, Any]) -> JointMap:
    if isinstance(spec, JointMap | dict):
        return load_joint_map(spec)
    path = Path(spec)
    if path.is_file():
        return load_joint_map(path)
    if path.suffix == "" and len(path.parts) == 1:  # a bare name: a shipped rig
        shipped = None
        try:
            shipped = rigs_dir() / f"{path.name}.yaml"
        except FileNotFoundError:
            pass
        if shipped is None or not shipped.is_file():
            known = ", ".join(available_rigs()) or "none"
            raise InputFileError(
                f"unknown rig {str(spec)!r} (shipped rigs: {known})",
                "give a shipped rig name or the path of a rig joint-map YAML",
            )
        return load_joint_map(shipped)
    raise InputFileError(f"rig joint map not found: {path}", "check the path of the YAML")


def _build_rig(skeleton: RigSkeleton, joint_map: JointMap) -> Rig:
    # The importer's own analysis of the rest skeleton: name resolution (with its messages for
    # missing joints), the axis change, units and the root's standing height.
    rt = Retargeter(skeleton.as_bvh(), joint_map)
    rest = skeleton.rest_positions @ rt.axes.T  # SMPL-X axes, rig units
    pelvis = rt.mapping[0]
    lowest = float(rest[:, 1].min())
    floor = 0.0 if lowest > -0.1 * float(np.ptp(rest[:, 1])) else lowest  # the importer's rule
    hip_height = float(rest[pelvis, 1] - floor)
    if hip_height <= 1e-6 * max(float(np.ptp(rest[:, 1])), 1e-9):
        raise InputFileError(
            f"{skeleton.source}: the rig's pelvis joint ({skeleton.names[pelvis]}) is not above its feet",
            "check the skeleton's up axis (set `up:` in the joint map) and that it is in rest pose",
        )
    return Rig(
        name=joint_map.name,
        skeleton=skeleton,
        joint_map=joint_map,
        mapping=dict(rt.mapping),
        root=rt.root_source,
        axes=rt.axes,
        unit_scale=float(rt.unit_scale),
        root_height=float(rt._root_reference),  # the importer's convention, so round trips agree
        hip_height=hip_height,
    )


def standing_pelvis_height(smplx_rest: np.ndarray) -> float:
    """SMPL-X's pelvis height above its floor for a rest skeleton (the importer's definition:
    above the lowest ankle/foot joint)."""
    return float(smplx_rest[0, 1] - smplx_rest[list(FOOT_JOINTS), 1].min())


__all__ = [
    "VRM1_BONES",
    "Rig",
    "RigSkeleton",
    "available_rigs",
    "load_rig",
    "read_skeleton",
    "rigs_dir",
    "skeleton_from_positions",
    "standing_pelvis_height",
]
