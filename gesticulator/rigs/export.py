"""Writers for motion on a rig: BVH, GLB (skeleton + stand-in mesh + animation), VRMA, FBX.

BVH: the rig's own hierarchy, names, OFFSETs (its units and axes) and Euler order (a BVH rig keeps
the file's; others get ZXY). The top joint has position channels, and so does the joint that
carries the translation when it is not the top one (a "Root" above the hips).

GLB: a node per rig joint under one wrapper node, a rigidly skinned stand-in mesh (a tapered box
per bone) so the file shows in any glTF viewer, and one animation at the motion's rate: a rotation
channel per mapped joint and a translation channel on the root joint.
- A GLB rig keeps its own scene coordinates, node rest rotations and the transform of the node
  above its top joint (the wrapper gets that node's name and transform), so the animated node
  values apply unchanged to the user's model, node name by node name.
- A BVH rig is converted to glTF's metres by the wrapper's scale, and to Y up by its rotation when
  the rig is not Y-up already (a Y-up rig keeps its facing: VRM 0.x faces -Z). The joints inside
  keep the BVH's units, like a Mixamo FBX converted to glTF (an "Armature" with scale 0.01).
- A rig whose mapped joints carry VRM 1.0 humanoid bone names, in metres, Y up, facing +Z (the
  shipped `vrm` rig) also gets the ``VRMC_vrm_animation`` extension, so the file is a VRM
  Animation; `export_to_rig` then writes `<name>.vrma` as well (the same without the mesh), which
  three-vrm's `VRMAnimationLoaderPlugin` loads.

FBX goes through Blender (`gesticulator.rigs.blender.bvh_to_fbx`), from the rig BVH.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gesticulator.errors import ExportError, GesticulatorError
from gesticulator.io.atomic import atomic_path
from gesticulator.io.bvh import hierarchy_bvh_text
from gesticulator.io.glb import add_animation_channel, add_skinned_mesh
from gesticulator.motion.rotations import matrix_to_quat, quat_continuity
from gesticulator.rigs.retarget import RigMotion, retarget_to_rig
from gesticulator.rigs.rig import VRM1_BONES, Rig, RigSkeleton, load_rig
from gesticulator.types import Motion

if TYPE_CHECKING:
    import pygltflib

RIG_FORMATS = ("bvh", "glb", "fbx")
STAND_IN_COLOUR = (0.42, 0.52, 0.66, 1.0)  # linear RGB: a muted steel blue, unlike the wooden SMPL-X
VRMA_EXTENSION = "VRMC_vrm_animation"
_VRMA_FORBIDDEN = ("leftEye", "rightEye")  # VRMA drives eyes through lookAt, never bones


# -- BVH -----------------------------------------------------------------------------------------


def save_rig_bvh(
    rig_motion: RigMotion, path: str | os.PathLike, *, rotation_order: str | None = None
) -> Path:
    """Write `rig_motion` as a BVH of the rig's skeleton (atomically)."""
    text = rig_bvh_text(rig_motion, rotation_order=rotation_order)
    return _write(path, text.encode("utf-8"))


def rig_bvh_text(rig_motion: RigMotion, *, rotation_order: str | None = None) -> str:
    rig = rig_motion.rig
    skel = rig.skeleton
    return _bvh_text(
        skel,
        rig_motion.local,
        rig_motion.positions,
        root=rig.root,
        fps=rig_motion.fps,
        order=rotation_order or skel.rotation_order,
    )


def skeleton_bvh_text(skeleton: RigSkeleton, *, root: int = 0, fps: float = 30.0) -> str:
    """The rest skeleton as a one-frame BVH (every rotation zero): how the shipped rig skeletons
    are stored (rigs/make_rigs.py)."""
    n = skeleton.num_joints
    return _bvh_text(
        skeleton,
        np.broadcast_to(np.eye(3), (1, n, 3, 3)),
        skeleton.rest_positions[None],
        root=root,
        fps=fps,
        order=skeleton.rotation_order,
    )


def _bvh_text(
    skel: RigSkeleton, local: np.ndarray, positions: np.ndarray, *, root: int, fps: float, order: str
) -> str:
    """The rig BVH through the general writer; the top joint has position channels, and so does
    `root` (the joint carrying the translation) when it is another joint."""
    if sorted(order.upper()) != ["X", "Y", "Z"]:
        raise ExportError(f"rotation order must be a permutation of XYZ, got {order!r}")
    height = float(np.ptp(skel.rest_positions, axis=0).max()) or 1.0
    channels = {0: positions[:, 0]}
    if root != 0:  # a position channel replaces the OFFSET, in the parent's (rotated) frame
        p = skel.parents[root]
        parent_world = _world_from_local(local, skel.parents, p)
        channels[root] = np.einsum("fji,fj->fi", parent_world, positions[:, root] - positions[:, p])
    leaves = [j for j, kids in enumerate(skel.children()) if not kids]
    return hierarchy_bvh_text(
        skel.names,
        skel.parents,
        skel.offsets(),
        {j: end_site(skel, j) for j in leaves},
        local,
        channels,
        fps=fps,
        rotation_order=order,
        digits=6 if height > 5.0 else 8,  # about a micrometre either way (cm or m rigs)
    )


def _world_from_local(local: np.ndarray, parents: Sequence[int], j: int) -> np.ndarray:
    chain = []
    while j >= 0:
        chain.append(j)
        j = parents[j]
    world = np.broadcast_to(np.eye(3), local[:, 0].shape).copy()
    for k in reversed(chain):
        world = world @ local[:, k]
    return world


def end_site(skel: RigSkeleton, j: int) -> np.ndarray:
    """A leaf's End Site offset: the file's own for BVH rigs, else a short continuation of the
    bone into the leaf (a third of its length), so leaves show up in viewers."""
    if j in skel.end_sites:
        return np.asarray(skel.end_sites[j], dtype=np.float64)
    rest = skel.rest_positions
    p = skel.parents[j]
    while p >= 0:
        bone = rest[j] - rest[p]
        if np.linalg.norm(bone) > 1e-9:
            return bone / 3.0
        p = skel.parents[p]
    return np.array([0.0, 0.05 * (float(np.ptp(rest, axis=0).max()) or 1.0), 0.0])


# -- GLB -----------------------------------------------------------------------------------------


def is_vrm_rig(rig: Rig) -> bool:
    """Whether `rig` can carry VRMC_vrm_animation: its mapped joints are named with VRM 1.0 humanoid
    bone names (hips among them), it is in metres, Y up and faces +Z (the VRM 1.0 conventions)."""
    names = {rig.names[k] for k in rig.mapping.values()}
    return (
        "hips" in names
        and names <= set(VRM1_BONES)
        and abs(rig.unit_scale - 1.0) < 1e-9
        and np.allclose(rig.axes, np.eye(3))
        and not rig.skeleton.has_rest_rotations
    )


def save_rig_glb(
    rig_motion: RigMotion, path: str | os.PathLike, *, mesh: bool = True, vrma: bool | None = None
) -> Path:
    """Write `rig_motion` as binary glTF: the rig's nodes, a skinned stand-in mesh (unless
    `mesh=False`) and the animation. `vrma`: add the VRMC_vrm_animation extension (default: when
    `is_vrm_rig`)."""
    path = Path(path)
    if rig_motion.num_frames == 0:
        raise ExportError(
            "motion has no frames; a glTF animation needs at least one", "export a non-empty motion"
        )
    if vrma is None:
        vrma = is_vrm_rig(rig_motion.rig)
    elif vrma and not is_vrm_rig(rig_motion.rig):
        raise ExportError(
            f"rig '{rig_motion.rig.name}' is not a VRM 1.0 humanoid (bone names, metres, Y up, facing +Z)",
            "export VRMA with the shipped 'vrm' rig or a rig with VRM 1.0 bone names",
        )
    return _write(path, _build_glb(rig_motion, mesh=mesh, vrma=vrma, name=path.stem or "motion"))


def _outer(rig: Rig) -> np.ndarray:
    """Rig coordinates -> glTF scene coordinates (metres, Y up) for BVH rigs; identity for GLB rigs,
    which are in scene coordinates already."""
    out = np.eye(4)
    if rig.skeleton.kind == "glb":
        return out
    up = rig.axes[1]  # the rig's up direction, in rig coordinates
    rotation = np.eye(3) if np.allclose(up, [0.0, 1.0, 0.0]) else rig.axes
    out[:3, :3] = rotation * rig.unit_scale
    return out


def _trs(matrix: np.ndarray) -> dict[str, list[float]]:
    """glTF TRS properties of a similarity matrix, leaving out identity parts."""
    m = matrix[:3, :3]
    s = float(np.cbrt(np.linalg.det(m)))
    out: dict[str, list[float]] = {}
    t = matrix[:3, 3]
    if np.abs(t).max() > 0:
        out["translation"] = [float(v) for v in t]
    q = matrix_to_quat(m / s, convention="xyzw")
    q = q / np.linalg.norm(q) * (1 if q[3] >= 0 else -1)
    if np.abs(q[:3]).max() > 1e-12:
        out["rotation"] = [float(v) for v in q]
    if abs(s - 1.0) > 1e-9:
        out["scale"] = [s, s, s]
    return out


def _build_glb(rig_motion: RigMotion, *, mesh: bool, vrma: bool, name: str) -> bytes:
    import pygltflib

    from gesticulator import __version__
    from gesticulator.io.glb import _Writer  # the SMPL-X GLB writer's accessor/buffer helper

    rig = rig_motion.rig
    skel = rig.skeleton
    n = skel.num_joints
    outer = _outer(rig)
    anchor = np.eye(4) if skel.anchor is None else skel.anchor
    gltf = pygltflib.GLTF2(
        asset=pygltflib.Asset(
            version="2.0",
            generator=f"gesticulator {__version__}",
            extras={"fps": rig_motion.fps, "frames": rig_motion.num_frames, "rig": rig.name},
        ),
        scene=0,
    )
    writer = _Writer(gltf)

    # Node 0 wraps the skeleton (the anchor's transform, then glTF units/axes); 1 + k is joint k.
    gltf.nodes.append(pygltflib.Node(name=skel.anchor_name or rig.name, children=[1], **_trs(outer @ anchor)))
    rest = skel.rest_world
    for k, p in enumerate(skel.parents):
        parent_world = anchor if p < 0 else rest[p]
        gltf.nodes.append(pygltflib.Node(name=skel.names[k], **_trs(np.linalg.inv(parent_world) @ rest[k])))
        if p >= 0:
            gltf.nodes[1 + p].children.append(1 + k)
    scene_nodes = [0]
    if mesh:
        scene_nodes.append(_add_stand_in(gltf, writer, rig, outer))
    gltf.scenes.append(pygltflib.Scene(name=name, nodes=scene_nodes))
    _add_animation(gltf, writer, rig_motion, name)
    if vrma:
        bones = {
            skel.names[k]: {"node": 1 + k}
            for k in range(n)
            if skel.names[k] in VRM1_BONES and skel.names[k] not in _VRMA_FORBIDDEN
        }
        gltf.extensionsUsed = [VRMA_EXTENSION]
        gltf.extensions = {VRMA_EXTENSION: {"specVersion": "1.0", "humanoid": {"humanBones": bones}}}
    for node in gltf.nodes:  # glTF's schema wants absent, not empty, children lists
        if not node.children:
            node.children = None
    gltf.buffers.append(pygltflib.Buffer(byteLength=writer.offset))
    gltf.set_binary_blob(writer.blob())
    return b"".join(gltf.save_to_bytes())


def _add_animation(gltf: pygltflib.GLTF2, writer, rig_motion: RigMotion, name: str) -> None:
    import pygltflib

    rig = rig_motion.rig
    skel = rig.skeleton
    times = writer.accessor((np.arange(rig_motion.num_frames) / rig_motion.fps).astype(np.float32), "SCALAR")
    animation = pygltflib.Animation(name=name)

    def channel(values: np.ndarray, node: int, path: str) -> None:
        output = writer.accessor(values.astype(np.float32), "VEC4" if path == "rotation" else "VEC3")
        add_animation_channel(animation, times, output, node, path)

    # Translation of the root joint's node, in its parent's space.
    k, p = rig.root, skel.parents[rig.root]
    pos = rig_motion.positions
    if p < 0:
        anchor = np.eye(4) if skel.anchor is None else skel.anchor
        inv = np.linalg.inv(anchor)
        local_t = pos[:, k] @ inv[:3, :3].T + inv[:3, 3]
    else:
        parent_rot = rig_motion.world[:, p] @ skel.rest_rotations[p]
        local_t = np.einsum("fji,fj->fi", parent_rot, pos[:, k] - pos[:, p]) / skel.rest_scales[p]
    channel(local_t, 1 + k, "translation")

    # Rotations of the mapped joints (the others keep their rest pose relative to their parent).
    mapped = sorted(rig.mapping.values())
    quats = quat_continuity(matrix_to_quat(rig_motion.node_rotations()[:, mapped], convention="xyzw"))
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    for i, k in enumerate(mapped):
        channel(quats[:, i], 1 + k, "rotation")
    gltf.animations.append(animation)


def _add_stand_in(gltf: pygltflib.GLTF2, writer, rig: Rig, outer: np.ndarray) -> int:
    """A tapered box per bone, each rigidly bound to the bone's parent joint, plus the skin."""
    import pygltflib

    skel = rig.skeleton
    n = skel.num_joints
    scene_world = outer @ skel.rest_world  # (J, 4, 4) bind pose in scene coordinates
    pos = scene_world[:, :3, 3]
    height = float(np.ptp(pos, axis=0).max()) or 1.0
    bones: list[tuple[int, np.ndarray, np.ndarray]] = []
    for k, p in enumerate(skel.parents):
        if p >= 0:
            bones.append((p, pos[p], pos[k]))
        if not any(q == k for q in skel.parents):  # a leaf: a bone along its end site
            tip = outer[:3, :3] @ end_site(skel, k)
            bones.append((k, pos[k], pos[k] + tip))
    verts, normals, joints, faces = [], [], [], []
    count = 0
    for joint, a, b in bones:
        length = float(np.linalg.norm(b - a))
        if length < 1e-4 * height:
            continue
        half = float(np.clip(0.12 * length, 0.004 * height, 0.03 * height))
        v, nrm, f = _box(a, b, half, 0.6 * half)
        faces.append(f + count)
        count += len(v)
        verts.append(v)
        normals.append(nrm)
        joints.append(np.full(len(v), joint))
    if not verts:
        raise ExportError(f"rig '{rig.name}' has no bones with length", "check the rig's rest skeleton")
    positions = np.concatenate(verts).astype(np.float32)
    joint_idx = np.zeros((len(positions), 4), dtype=np.uint16)
    joint_idx[:, 0] = np.concatenate(joints)
    weights = np.zeros((len(positions), 4), dtype=np.float32)
    weights[:, 0] = 1.0
    index_type = np.uint16 if len(positions) <= 65535 else np.uint32
    inverse_bind = np.linalg.inv(scene_world).astype(np.float32)
    inverse_bind[:, 3] = [0, 0, 0, 1]  # exactly, as the validator checks
    gltf.skins.append(
        pygltflib.Skin(
            name=rig.name,
            inverseBindMatrices=writer.accessor(
                np.ascontiguousarray(inverse_bind.transpose(0, 2, 1)), "MAT4"
            ),
            joints=[1 + k for k in range(n)],
            skeleton=1,
        )
    )
    add_skinned_mesh(
        gltf, writer, name=f"{rig.name}_stand_in", material="stand_in", colour=STAND_IN_COLOUR,
        roughness=0.7, positions=positions, normals=np.concatenate(normals).astype(np.float32),
        joints=joint_idx, weights=weights, indices=np.concatenate(faces).astype(index_type).ravel(),
    )  # fmt: skip
    # The skinned node sits at the scene root: glTF ignores a skinned mesh node's own transform.
    gltf.nodes.append(pygltflib.Node(name=f"{rig.name}_stand_in", mesh=0, skin=0))
    return len(gltf.nodes) - 1


def _box(a: np.ndarray, b: np.ndarray, half_a: float, half_b: float) -> tuple[np.ndarray, ...]:
    """A box tapering from a square of half-width `half_a` at `a` to `half_b` at `b`: 24 vertices
    (flat-shaded, 4 per face), their normals, and 12 outward-facing triangles."""
    axis = (b - a) / np.linalg.norm(b - a)
    ref = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(axis, ref)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    square = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    corners = np.array(
        [a + half_a * (su * u + sv * v) for su, sv in square]
        + [b + half_b * (su * u + sv * v) for su, sv in square]
    )
    quads = [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)]
    centre = corners.mean(axis=0)
    verts, normals, tris = [], [], []
    for quad in quads:
        q = corners[list(quad)]
        normal = np.cross(q[1] - q[0], q[2] - q[0])
        normal /= np.linalg.norm(normal)
        if np.dot(normal, q.mean(axis=0) - centre) < 0:  # keep every face wound outward
            q = q[::-1]
            normal = -normal
        base = len(verts) * 4
        verts.append(q)
        normals.append(np.repeat(normal[None], 4, axis=0))
        tris.append([base, base + 1, base + 2, base, base + 2, base + 3])
    return np.concatenate(verts), np.concatenate(normals), np.asarray(tris).ravel()


def _write(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}", "choose a writable path") from e
    return path


# -- everything at once ----------------------------------------------------------------------------


def check_rig_formats(formats: Sequence[str] | str) -> list[str]:
    """Rig output formats from "bvh,glb" or a list; each one of RIG_FORMATS."""
    if isinstance(formats, str):
        formats = formats.split(",")
    out = [f.strip().lower().lstrip(".") for f in formats if f.strip()]
    unknown = [f for f in out if f not in RIG_FORMATS]
    if unknown or not out:
        problem = f"unknown rig format {', '.join(map(repr, unknown))}" if unknown else "no rig format given"
        raise GesticulatorError(problem, f"use some of {', '.join(RIG_FORMATS)}")
    return list(dict.fromkeys(out))


def export_to_rig(
    motion: Motion,
    rig: str | os.PathLike | Rig,
    out_dir: str | os.PathLike,
    formats: Sequence[str] | str = ("bvh", "glb"),
    *,
    name: str = "motion",
) -> dict[str, Path]:
    """Retarget `motion` onto `rig` (a shipped name, a rig YAML or a `Rig`) and write
    `<name>.bvh/.glb/.fbx` into `out_dir` (plus `<name>.vrma` with the GLB for VRM rigs).

    FBX needs Blender (`MissingDependencyError` otherwise) and is made first, so a missing
    Blender fails before anything is written. Each file is written atomically. Returns
    {format: path}."""
    formats = check_rig_formats(formats)
    rig = load_rig(rig)
    rig_motion = retarget_to_rig(motion, rig)
    out = Path(out_dir).expanduser()
    written: dict[str, Path] = {}
    if "fbx" in formats:
        from gesticulator.rigs.blender import bvh_to_fbx

        with tempfile.TemporaryDirectory(prefix="gesticulator-rig-") as tmp:
            bvh = save_rig_bvh(rig_motion, Path(tmp) / f"{name}.bvh")
            # a BVH does not say which axis is up: pass the rig's, or a Z-up rig lands on its back
            fbx = out / f"{name}.fbx"
            written["fbx"] = Path(bvh_to_fbx(bvh, fbx, up=rig.axes[1], forward=rig.axes[2]))
    if "bvh" in formats:
        written["bvh"] = save_rig_bvh(rig_motion, out / f"{name}.bvh")
    if "glb" in formats:
        written["glb"] = save_rig_glb(rig_motion, out / f"{name}.glb")
        if is_vrm_rig(rig):
            written["vrma"] = save_rig_glb(rig_motion, out / f"{name}.vrma", mesh=False, vrma=True)
    return {fmt: written[fmt] for fmt in (*formats, "vrma") if fmt in written}


__all__ = [
    "RIG_FORMATS",
    "check_rig_formats",
    "end_site",
    "export_to_rig",
    "is_vrm_rig",
    "rig_bvh_text",
    "save_rig_bvh",
    "save_rig_glb",
    "skeleton_bvh_text",
]
