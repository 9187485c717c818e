"""GLB (binary glTF 2.0) writer: the skinned mannequin-x "wooden" figure playing a motion.

What the file holds:
- a node per mannequin-x joint (54: SMPL-X's body and finger joints, plus zero-length
  ``left_hand``/``right_hand`` joints at the wrists; mannequin-x has no jaw or eyes), named with
  SMPL-X joint names, under one root node. The rest pose is the T-pose with flat hands: each
  node's translation is its offset from its parent and its rotation is identity;
- the skinned "wooden" mesh for the motion's body shape (POSITION, NORMAL, JOINTS_0, WEIGHTS_0),
  bound with inverse bind matrices translate(-bind position), since every rest rotation is
  identity; `mesh=False` leaves the mesh out but keeps the skin, so importers (Blender) still
  see an armature to retarget from (the validator notes the skin as "may be unused");
- one animation at the motion's frame rate: a rotation channel per posed joint (local rotation
  relative to the flat-hand T-pose, so the hands show SMPL-X's relaxed mean hand) and a
  translation channel on the pelvis (rest pelvis position + `trans`).

glTF's conventions are the motion's own (Y-up, +Z forward, metres), so nothing is converted.
The skinned result equals mannequin-x's `Mannequin.vertices` for the same pose (float32 rounding
aside); tests/test_glb.py checks that by evaluating the written file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gesticulator.errors import ExportError
from gesticulator.io.atomic import atomic_path
from gesticulator.motion import skeleton as sk
from gesticulator.motion.kinematics import local_rotations_flat_hand, shape10
from gesticulator.motion.rotations import axis_angle_to_quat, quat_continuity
from gesticulator.types import Motion

if TYPE_CHECKING:
    import pygltflib

# glTF enums (the spec's numeric codes).
_FLOAT = 5126
_UNSIGNED_SHORT = 5123
_UNSIGNED_INT = 5125
_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_TRIANGLES = 4
_COMPONENTS = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}

# Warm light wood, as linear RGB (glTF base colours are linear): sRGB ~(200, 160, 110).
WOOD_COLOUR = (0.578, 0.352, 0.155, 1.0)

# The mannequin-x joints with no SMPL-X counterpart: zero-length joints at the wrists that the
# finger joints hang from. mannequin-x never rotates them, so they get no animation channel.
_EXTRA_JOINT_NAMES = {22: "left_hand", 23: "right_hand"}
_NUM_MANNEQUIN_JOINTS = 54
# SMPL-X joint index of each mannequin joint (None for the two extra joints).
_SMPLX_OF_MANNEQUIN: tuple[int | None, ...] = tuple(
    sk.MANNEQUIN_INDEX.index(m) if m in sk.MANNEQUIN_INDEX else None for m in range(_NUM_MANNEQUIN_JOINTS)
)
JOINT_NAMES: tuple[str, ...] = tuple(
    _EXTRA_JOINT_NAMES[m] if i is None else sk.JOINT_NAMES[i] for m, i in enumerate(_SMPLX_OF_MANNEQUIN)
)
ROOT_NODE_NAME = "mannequin"
MESH_NODE_NAME = "mannequin_mesh"


@dataclass(frozen=True)
class _Rig:
    """The wooden mannequin for one body shape, already in the form glTF stores."""

    parents: tuple[int, ...]
    bind_positions: np.ndarray  # (54, 3) rest (T-pose) world joint positions
    positions: np.ndarray  # (V, 3) float32 bind-pose vertices
    normals: np.ndarray  # (V, 3) float32 unit smooth normals
    joints: np.ndarray  # (V, 4) uint16 joint indices, strongest influence first
    weights: np.ndarray  # (V, 4) float32, rows sum to 1
    indices: np.ndarray  # (F*3,) uint16 or uint32 triangle vertex indices


def save_glb(motion: Motion, path: str | os.PathLike, *, mesh: bool = True) -> Path:
    """Write `motion` as a binary glTF (.glb): skinned mannequin (unless `mesh=False`) + animation."""
    path = Path(path)
    if path.suffix.lower() == ".gltf":
        raise ExportError(f"{path} has a .gltf suffix but this writer makes binary glTF", "use a .glb path")
    if motion.num_frames == 0:
        raise ExportError(
            "motion has no frames; a glTF animation needs at least one", "export a non-empty motion"
        )

    rig = _rig(tuple(shape10(motion.betas).tolist()))
    data = _build(motion, rig, mesh=mesh, name=path.stem or "motion")
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as e:
        # atomic_path reports folders it cannot create; this catches the rest (a read-only
        # folder, a full disk, a directory in the way) in the same one-line form.
        raise ExportError(f"cannot write {path}: {e.strerror or e}", "choose a writable path") from e
    return path


# -- the mannequin -----------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _rig(shape: tuple[float, ...]) -> _Rig:
    """Mesh and skin of the wooden mannequin for `shape` (ten betas). Cached: building it takes a
    few hundred milliseconds and a batch export usually reuses one body shape."""
    from mannequin import Mannequin

    model = Mannequin("wooden", shape=np.asarray(shape, dtype=np.float32), flat_hand_mean=False)
    if model.joint_names[22:24] != ("L_Hand", "R_Hand") or len(model.parents) != _NUM_MANNEQUIN_JOINTS:
        raise ExportError(
            "this mannequin-x version has an unexpected joint layout", "install mannequin-x >=0.3,<0.4"
        )
    positions = np.asarray(model._identity["skin_vertices"], dtype=np.float64)
    faces = np.asarray(model.faces, dtype=np.int64)
    joints, weights = _four_influences(model._skin_joint_indices, model._skin_weights)
    index_type = np.uint16 if positions.shape[0] <= 65535 else np.uint32
    return _Rig(
        parents=tuple(model.parents),
        bind_positions=np.asarray(model._identity["skin_bind_positions"], dtype=np.float64),
        positions=positions.astype(np.float32),
        normals=_vertex_normals(positions, faces),
        joints=joints,
        weights=weights,
        indices=faces.astype(index_type).ravel(),
    )


def _four_influences(joint_indices: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """JOINTS_0/WEIGHTS_0 from mannequin-x's four influences: strongest first, zero-weight slots
    set to joint 0 (glTF: unused joint indices should be zero; mannequin-x repeats the rigid
    parts' joint in them), and float32 rows that sum to 1 as closely as float32 allows (the
    validator checks the sums)."""
    w = np.asarray(weights, dtype=np.float64)
    j = np.asarray(joint_indices, dtype=np.int64)
    order = np.argsort(-w, axis=1, kind="stable")
    w = np.take_along_axis(w, order, axis=1)
    j = np.take_along_axis(j, order, axis=1)
    w /= w.sum(axis=1, keepdims=True)
    j[w == 0] = 0
    w32 = w.astype(np.float32)
    # Put the float32 rounding residue on the strongest weight so each row sums to 1.
    w32[:, 0] += (1.0 - w32.astype(np.float64).sum(axis=1)).astype(np.float32)
    return j.astype(np.uint16), w32


def _vertex_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Smooth unit vertex normals: area-weighted sum of the adjacent face normals."""
    a, b, c = (positions[faces[:, k]] for k in range(3))
    face_normals = np.cross(b - a, c - a)  # length = 2 x area, so bigger faces weigh more
    normals = np.zeros_like(positions)
    for k in range(3):
        for axis in range(3):
            normals[:, axis] += np.bincount(faces[:, k], face_normals[:, axis], minlength=positions.shape[0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    # A vertex touched only by degenerate faces has no direction; any unit vector is valid there.
    normals = np.where(length > 1e-12, normals / np.maximum(length, 1e-12), [0.0, 1.0, 0.0])
    return normals.astype(np.float32)


# -- the glTF document ------------------------------------------------------------------------


class _Writer:
    """Collects binary chunks into one buffer and creates the bufferViews/accessors over them."""

    def __init__(self, gltf: pygltflib.GLTF2):
        self.gltf = gltf
        self.chunks: list[bytes] = []
        self.offset = 0

    def accessor(self, array: np.ndarray, type_: str, *, target: int | None = None) -> int:
        import pygltflib

        array = np.ascontiguousarray(array)
        component = {np.float32: _FLOAT, np.uint16: _UNSIGNED_SHORT, np.uint32: _UNSIGNED_INT}[
            array.dtype.type
        ]
        count = array.shape[0]
        flat = array.reshape(count, _COMPONENTS[type_])
        data = array.tobytes()
        self.gltf.bufferViews.append(
            pygltflib.BufferView(buffer=0, byteOffset=self.offset, byteLength=len(data), target=target)
        )
        # 4-byte alignment keeps every accessor aligned to its component size, as glTF requires.
        padding = -len(data) % 4
        self.chunks.append(data + b"\0" * padding)
        self.offset += len(data) + padding
        # min/max on every accessor: required for POSITION and animation inputs, and it lets
        # viewers compute bounds without reading the data. They are taken from the stored
        # float32/int values so they match the data exactly (the validator compares them).
        to_py = float if component == _FLOAT else int
        self.gltf.accessors.append(
            pygltflib.Accessor(
                bufferView=len(self.gltf.bufferViews) - 1,
                componentType=component,
                count=count,
                type=type_,
                min=[to_py(v) for v in flat.min(axis=0)],
                max=[to_py(v) for v in flat.max(axis=0)],
            )
        )
        return len(self.gltf.accessors) - 1

    def blob(self) -> bytes:
        return b"".join(self.chunks)


def _build(motion: Motion, rig: _Rig, *, mesh: bool, name: str) -> bytes:
    import pygltflib

    from gesticulator import __version__

    gltf = pygltflib.GLTF2(
        asset=pygltflib.Asset(
            version="2.0",
            generator=f"gesticulator {__version__}",
            extras={"fps": motion.fps, "frames": motion.num_frames, "betas": shape10(motion.betas).tolist()},
        ),
        scene=0,
    )
    writer = _Writer(gltf)

    # Nodes: 0 is the root, 1 + m is mannequin joint m (parents precede children in
    # mannequin-x's order, so children can be filled in one pass).
    joint_node = [1 + m for m in range(_NUM_MANNEQUIN_JOINTS)]
    gltf.nodes.append(pygltflib.Node(name=ROOT_NODE_NAME, children=[joint_node[0]]))
    for m, parent in enumerate(rig.parents):
        offset = rig.bind_positions[m] - (rig.bind_positions[parent] if parent >= 0 else 0.0)
        gltf.nodes.append(pygltflib.Node(name=JOINT_NAMES[m], translation=[float(v) for v in offset]))
        if parent >= 0:
            gltf.nodes[joint_node[parent]].children.append(joint_node[m])
    scene_nodes = [0]

    _add_skin(gltf, writer, rig, joint_node)
    if mesh:
        scene_nodes.append(_add_mesh(gltf, writer, rig))

    gltf.scenes.append(pygltflib.Scene(name=name, nodes=scene_nodes))
    _add_animation(gltf, writer, motion, rig, joint_node, name)

    # pygltflib defaults `children` to [], but glTF's schema wants the key absent, not empty.
    for node in gltf.nodes:
        if not node.children:
            node.children = None
    gltf.buffers.append(pygltflib.Buffer(byteLength=writer.offset))
    gltf.set_binary_blob(writer.blob())
    return b"".join(gltf.save_to_bytes())


def _add_skin(gltf: pygltflib.GLTF2, writer: _Writer, rig: _Rig, joint_node: list[int]) -> None:
    """The skin: which nodes are joints and their inverse bind matrices.

    Written even without a mesh: importers such as Blender's build an armature (bones rather than
    empties) only from the nodes a skin lists, and a bare armature is what retargeting needs."""
    import pygltflib

    # Rest rotations are all identity, so each inverse bind matrix is just a translation by
    # -bind position. glTF matrices are column-major: the translation is elements 12..14.
    inverse_bind = np.tile(np.eye(4, dtype=np.float32), (_NUM_MANNEQUIN_JOINTS, 1, 1))
    inverse_bind[:, :3, 3] = -rig.bind_positions
    inverse_bind = np.ascontiguousarray(inverse_bind.transpose(0, 2, 1))  # row-major -> column-major
    gltf.skins.append(
        pygltflib.Skin(
            name="mannequin",
            inverseBindMatrices=writer.accessor(inverse_bind, "MAT4"),
            joints=joint_node,
            skeleton=joint_node[0],
        )
    )


def _add_mesh(gltf: pygltflib.GLTF2, writer: _Writer, rig: _Rig) -> int:
    """Mesh and material, bound to skin 0; returns the index of the node that draws them.

    The skinned node sits at the scene root: glTF ignores a skinned mesh node's own transform
    and the validator warns when one has transformed parents."""
    import pygltflib

    add_skinned_mesh(
        gltf, writer, name="mannequin", material="wood", colour=WOOD_COLOUR, roughness=0.65,
        positions=rig.positions, normals=rig.normals, joints=rig.joints, weights=rig.weights,
        indices=rig.indices,
    )  # fmt: skip
    gltf.nodes.append(pygltflib.Node(name=MESH_NODE_NAME, mesh=0, skin=0))
    return len(gltf.nodes) - 1


def add_skinned_mesh(
    gltf: pygltflib.GLTF2,
    writer: _Writer,
    *,
    name: str,
    material: str,
    colour: tuple[float, ...],
    roughness: float,
    positions: np.ndarray,
    normals: np.ndarray,
    joints: np.ndarray,
    weights: np.ndarray,
    indices: np.ndarray,
) -> int:
    """Append one skinned triangle mesh (float32 positions/normals, uint16 JOINTS_0, float32
    WEIGHTS_0, 4 influences) with its own plain material; returns the mesh index. Shared by the
    SMPL-X mannequin and the rig stand-ins (gesticulator.rigs.export)."""
    import pygltflib

    attributes = pygltflib.Attributes(
        POSITION=writer.accessor(positions, "VEC3", target=_ARRAY_BUFFER),
        NORMAL=writer.accessor(normals, "VEC3", target=_ARRAY_BUFFER),
        JOINTS_0=writer.accessor(joints, "VEC4", target=_ARRAY_BUFFER),
        WEIGHTS_0=writer.accessor(weights, "VEC4", target=_ARRAY_BUFFER),
    )
    index_accessor = writer.accessor(indices, "SCALAR", target=_ELEMENT_ARRAY_BUFFER)
    gltf.materials.append(
        pygltflib.Material(
            name=material,
            pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
                baseColorFactor=list(colour), metallicFactor=0.0, roughnessFactor=roughness
            ),
        )
    )
    gltf.meshes.append(
        pygltflib.Mesh(
            name=name,
            primitives=[
                pygltflib.Primitive(
                    attributes=attributes,
                    indices=index_accessor,
                    material=len(gltf.materials) - 1,
                    mode=_TRIANGLES,
                )
            ],
        )
    )
    return len(gltf.meshes) - 1


def add_animation_channel(
    animation: pygltflib.Animation, times: int, output: int, node: int, path: str
) -> None:
    """A LINEAR sampler (key times accessor `times`, values accessor `output`) driving `path`
    ("rotation" | "translation" | "scale") of `node`. LINEAR on rotations is slerp in glTF, so
    sign-continuous quaternion keys take the short way."""
    import pygltflib

    animation.samplers.append(pygltflib.AnimationSampler(input=times, output=output, interpolation="LINEAR"))
    animation.channels.append(
        pygltflib.AnimationChannel(
            sampler=len(animation.samplers) - 1, target=pygltflib.AnimationChannelTarget(node=node, path=path)
        )
    )


def _add_animation(
    gltf: pygltflib.GLTF2, writer: _Writer, motion: Motion, rig: _Rig, joint_node: list[int], name: str
) -> None:
    import pygltflib

    times = writer.accessor((np.arange(motion.num_frames) / motion.fps).astype(np.float32), "SCALAR")
    animation = pygltflib.Animation(name=name)

    def channel(output: int, node: int, path: str) -> None:
        add_animation_channel(animation, times, output, node, path)

    # Pelvis world position = its rest position + trans; its rotation (poses[:, :3]) turns the
    # body about the pelvis joint, which is exactly how a glTF node rotation acts.
    pelvis = (rig.bind_positions[0] + motion.trans).astype(np.float32)
    channel(writer.accessor(pelvis, "VEC3"), joint_node[0], "translation")

    # (T, 55, 4) local rotations relative to the flat-hand T-pose, glTF's xyzw order.
    quats = quat_continuity(axis_angle_to_quat(local_rotations_flat_hand(motion), convention="xyzw"))
    quats = quats.astype(np.float32)
    for m, smplx in enumerate(_SMPLX_OF_MANNEQUIN):
        if smplx is None:
            continue  # left_hand/right_hand: always identity, the rest rotation covers them
        channel(writer.accessor(quats[:, smplx], "VEC4"), joint_node[m], "rotation")
    gltf.animations.append(animation)
