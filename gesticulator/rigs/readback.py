"""Read a rig animation back from a GLB (ours or any glTF animating the rig's nodes by name).

The file is evaluated the way a glTF viewer does it (node TRS, animation keys, parent chain) and
turned back into a `RigMotion` in the rig's own coordinates: world deltas relative to the rig's
rest pose, joint positions, root positions. With `rig_bvh_text` and the importer that gives a
round trip through the GLB file (benchmarks/rig_roundtrip.py, tests/test_rigs.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gesticulator.errors import InputFileError
from gesticulator.motion.rotations import quat_to_matrix
from gesticulator.rigs.export import _outer
from gesticulator.rigs.retarget import RigMotion
from gesticulator.rigs.rig import Rig, load_gltf

_DTYPES = {5126: np.float32, 5123: np.uint16, 5125: np.uint32, 5121: np.uint8}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def read_rig_glb(path: str | os.PathLike, rig: Rig, *, animation: int = 0) -> RigMotion:
    """The animation `animation` of a GLB whose nodes carry the rig's joint names, sampled at its
    key times (which must be shared by all channels and evenly spaced, as ours are)."""
    path = Path(path)
    try:
        gltf = load_gltf(path)
    except Exception as e:  # pygltflib raises whatever its parsing hits
        raise InputFileError(
            f"{path}: not a readable glTF file ({type(e).__name__})", "check the file"
        ) from None
    if gltf is None or not gltf.animations or animation >= len(gltf.animations):
        raise InputFileError(f"{path} has no animation {animation}", "export the motion with its animation")
    blob = gltf.binary_blob()

    def accessor(index: int) -> np.ndarray:
        acc = gltf.accessors[index]
        view = gltf.bufferViews[acc.bufferView]
        width = _WIDTH[acc.type]
        start = (view.byteOffset or 0) + (acc.byteOffset or 0)
        data = np.frombuffer(blob, dtype=_DTYPES[acc.componentType], count=acc.count * width, offset=start)
        return data.reshape(acc.count, width).astype(np.float64)

    anim = gltf.animations[animation]
    times = accessor(anim.samplers[0].input)[:, 0]
    n_frames, n_nodes = len(times), len(gltf.nodes)
    translation = np.zeros((n_frames, n_nodes, 3))
    rotation = np.zeros((n_frames, n_nodes, 4))
    rotation[..., 3] = 1.0
    scale = np.ones((n_frames, n_nodes, 3))
    matrix: dict[int, np.ndarray] = {}
    for i, node in enumerate(gltf.nodes):
        if node.matrix is not None:
            matrix[i] = np.asarray(node.matrix, dtype=np.float64).reshape(4, 4).T
        if node.translation is not None:
            translation[:, i] = node.translation
        if node.rotation is not None:
            rotation[:, i] = node.rotation
        if node.scale is not None:
            scale[:, i] = node.scale
    for ch in anim.channels:
        values = accessor(anim.samplers[ch.sampler].output)
        if len(values) != n_frames:
            raise InputFileError(
                f"{path}: animation channels have different key counts", "resample to one rate"
            )
        target = {"translation": translation, "rotation": rotation, "scale": scale}.get(ch.target.path)
        if target is not None:
            target[:, ch.target.node] = values
    local = np.tile(np.eye(4), (n_frames, n_nodes, 1, 1))
    local[..., :3, :3] = quat_to_matrix(rotation, convention="xyzw") * scale[..., None, :]
    local[..., :3, 3] = translation
    for i, m in matrix.items():
        local[:, i] = m
    parent = {c: i for i, node in enumerate(gltf.nodes) for c in (node.children or [])}
    world = np.zeros_like(local)
    done = [False] * n_nodes

    def visit(i: int) -> None:
        if not done[i]:
            if i in parent:
                visit(parent[i])
                world[:, i] = world[:, parent[i]] @ local[:, i]
            else:
                world[:, i] = local[:, i]
            done[i] = True

    for i in range(n_nodes):
        visit(i)

    names = [node.name for node in gltf.nodes]
    skel = rig.skeleton
    missing = [n for n in skel.names if n not in names]
    if missing:
        raise InputFileError(
            f"{path}: no node(s) named {', '.join(missing[:5])} (rig '{rig.name}')",
            "read it with its own rig",
        )
    nodes = [names.index(n) for n in skel.names]
    to_rig = np.linalg.inv(_outer(rig))  # scene -> rig coordinates (identity for GLB rigs)
    rig_world = to_rig @ world[:, nodes]  # (F, J, 4, 4)
    m3 = rig_world[..., :3, :3]
    rot = m3 / np.cbrt(np.linalg.det(m3))[..., None, None]
    deltas = rot @ np.swapaxes(skel.rest_rotations, -1, -2)
    local_delta = deltas.copy()
    for k, p in enumerate(skel.parents):
        if p >= 0:
            local_delta[:, k] = np.swapaxes(deltas[:, p], -1, -2) @ deltas[:, k]
    positions = rig_world[..., :3, 3]
    fps = float(round(1.0 / np.median(np.diff(times)), 6)) if n_frames > 1 else 30.0
    return RigMotion(
        rig=rig,
        world=deltas,
        local=local_delta,
        root_positions=positions[:, rig.root].copy(),
        positions=positions,
        fps=fps,
        scale=float("nan"),  # not known from the file
    )


__all__ = ["read_rig_glb"]
