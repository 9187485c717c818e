"""Retargeting SMPL-X motion onto other rigs (gesticulator.rigs) and exporting BVH / GLB / VRMA.

The central check is the round trip SMPL-X -> rig -> SMPL-X through the written files and the
library importer: elbow and wrist positions must come back within 2 cm (they come back exact up to
file precision, since export inverts the importer). Around it: the rig's own bones point where
the SMPL-X bones point, rest-pose correction (the A-pose `generic` rig), rigs without fingers and
with extra joints, a user's GLB rig whose nodes carry rest rotations (the animation must play on
that very file), the CLI and its one-line errors.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from typer.testing import CliRunner

from gesticulator.cli import app
from gesticulator.errors import ExportError, InputFileError
from gesticulator.io import load_motion, save_npz
from gesticulator.io.bvh import parse_bvh, read_bvh
from gesticulator.library.retarget import Retargeter, load_joint_map, retarget_bvh
from gesticulator.motion import skeleton as sk
from gesticulator.motion.kinematics import forward_kinematics, rest_skeleton
from gesticulator.motion.rotations import axis_angle_to_matrix, matrix_to_quat, quat_to_matrix
from gesticulator.resources import example
from gesticulator.rigs import (
    RigSkeleton,
    available_rigs,
    export_to_rig,
    is_vrm_rig,
    load_rig,
    read_skeleton,
    retarget_to_rig,
    rig_bvh_text,
    rigs_dir,
    save_rig_glb,
    skeleton_bvh_text,
)
from gesticulator.rigs.readback import read_rig_glb
from gesticulator.rigs.rig import skeleton_from_positions
from gesticulator.types import Motion
from tests.conftest import BEAT2_TAKE, REPO, smooth_motion
from tests.test_glb import validate

J = sk.JOINT_INDEX
ARM = [J[n] for n in ("left_elbow", "right_elbow", "left_wrist", "right_wrist")]
SHIPPED = ("generic", "mixamo", "vrm", "vrm0")
TOLERANCE_M = 0.02  # the issue's target for elbows and wrists
runner = CliRunner()


# -- helpers ---------------------------------------------------------------------------------------


def clip(motion: Motion, frames: int) -> Motion:
    return Motion(
        poses=motion.poses[:frames], trans=motion.trans[:frames], betas=motion.betas, fps=motion.fps
    )


@pytest.fixture(scope="module")
def hello() -> Motion:
    return clip(load_motion(example("hello_demo.npz")), 45)


@pytest.fixture(scope="module")
def wild() -> Motion:
    """Every joint swinging, a non-neutral body shape."""
    return smooth_motion(30, seed=4)


@pytest.fixture(scope="module")
def rigs():
    return {name: load_rig(name) for name in SHIPPED}


def arm_error(original: Motion, back: Motion) -> float:
    """Max distance (m) between pelvis-relative elbow/wrist positions of two motions."""
    a = forward_kinematics(original).positions
    b = forward_kinematics(back).positions
    return float(np.linalg.norm((a[:, ARM] - a[:, :1]) - (b[:, ARM] - b[:, :1]), axis=-1).max())


def round_trip(motion: Motion, rig, text: str | None = None) -> Motion:
    text = text if text is not None else rig_bvh_text(retarget_to_rig(motion, rig))
    return retarget_bvh(
        parse_bvh(text, source=f"{rig.name}.bvh"), rig.joint_map, fps=None, betas=motion.betas
    )


def primary_bone_errors(motion: Motion, rig, text: str) -> np.ndarray:
    """Degrees between each rig bone (mapped joint -> its primary child) and the SMPL-X bone."""
    rt = Retargeter(parse_bvh(text, source=rig.name), rig.joint_map, betas=motion.betas)
    errors = rt.bone_errors(motion)
    return np.concatenate([errors[b.name] for b in rt.bones()])


def glb_report(path: Path) -> dict:
    report = validate(path)  # skips without Node.js / the validator
    issues = [f"{m['severity']} {m['code']} {m['pointer']}" for m in report["messages"]]
    assert report["numErrors"] == 0 and report["numWarnings"] == 0, issues
    return report


def insert_joints(skel: RigSkeleton, inserts: list[tuple[str, str | None, str | None, float]]) -> RigSkeleton:
    """A copy of `skel` with extra joints: (name, parent, child, t): a joint at `t` along
    parent->child that becomes the child's parent, or a leaf under `parent` when `child` is None
    (at `t` along the parent's first child bone), or a new top joint when `parent` is None."""
    names, parents = list(skel.names), list(skel.parents)
    pos = list(skel.rest_positions)
    for name, parent, child, t in inserts:
        if parent is None:  # a new top joint on the floor under the old one
            names.append(name)
            parents.append(-1)
            pos.append(np.array([pos[0][0], 0.0, pos[0][2]]))
            parents[0] = len(names) - 1
            continue
        p = names.index(parent)
        c = names.index(child) if child is not None else parents.index(p)
        names.append(name)
        parents.append(p)
        pos.append(pos[p] + t * (pos[c] - pos[p]))
        if child is not None:
            parents[c] = len(names) - 1
    order: list[int] = []

    def place(i: int) -> None:
        if i not in order:
            if parents[i] >= 0:
                place(parents[i])
            order.append(i)

    for i in range(len(names)):
        place(i)
    new = {old: k for k, old in enumerate(order)}
    return skeleton_from_positions(
        [names[i] for i in order],
        [-1 if parents[i] < 0 else new[parents[i]] for i in order],
        np.array([pos[i] for i in order]),
        source="extra-joints",
    )


# -- shipped rigs ----------------------------------------------------------------------------------


def test_shipped_rigs_differ_from_smplx(rigs):
    assert set(SHIPPED) <= set(available_rigs())
    smplx = rest_skeleton().rest_positions
    smplx_arm = np.linalg.norm(smplx[J["left_wrist"]] - smplx[J["left_elbow"]]) + np.linalg.norm(
        smplx[J["left_elbow"]] - smplx[J["left_shoulder"]]
    )
    for name, rig in rigs.items():
        rest = rig.rest_smplx
        arm = sum(
            np.linalg.norm(rest[rig.mapping[J[b]]] - rest[rig.mapping[J[a]]])
            for a, b in (("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"))
        )
        assert abs(arm / smplx_arm - 1) > 0.1, name  # bone lengths really differ
        assert rig.has_fingers, name
    assert rigs["mixamo"].unit_scale == 0.01 and rigs["vrm"].unit_scale == 1.0
    np.testing.assert_allclose(rigs["generic"].axes[1], [0, 0, 1])  # Z up
    np.testing.assert_allclose(rigs["generic"].axes[2], [0, -1, 0])  # facing -Y
    np.testing.assert_allclose(rigs["vrm0"].axes[2], [0, 0, -1])  # VRM 0.x faces -Z
    assert is_vrm_rig(rigs["vrm"]) and not is_vrm_rig(rigs["vrm0"]) and not is_vrm_rig(rigs["mixamo"])


def test_make_rigs_reproduces_the_shipped_skeletons():
    spec = importlib.util.spec_from_file_location("make_rigs", REPO / "rigs" / "make_rigs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_rigs"] = module  # its dataclasses look their module up while being built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["make_rigs"]
    for name, skeleton in module.skeletons().items():
        assert skeleton_bvh_text(skeleton) == (rigs_dir() / "skeletons" / f"{name}.bvh").read_text(), name


@pytest.mark.parametrize("name", SHIPPED)
def test_round_trip_within_2cm(name, rigs, hello, wild):
    rig = rigs[name]
    for motion in (hello, wild):
        rig_motion = retarget_to_rig(motion, rig)
        text = rig_bvh_text(rig_motion)
        assert arm_error(motion, round_trip(motion, rig, text)) < TOLERANCE_M
        assert arm_error(motion, round_trip(motion, rig, text)) < 1e-4  # in fact exact to file precision
        errors = primary_bone_errors(motion, rig, text)
        assert errors.max() < 0.01, errors.max()  # the rig's bones point where SMPL-X's do


def test_round_trip_on_beat2(rigs):
    path = BEAT2_TAKE.with_suffix(".npz")
    if not path.is_file():
        pytest.skip(f"research data not present: {path}")
    motion = clip(load_motion(path), 90)
    for rig in rigs.values():
        assert arm_error(motion, round_trip(motion, rig)) < TOLERANCE_M


def test_round_trip_through_the_glb(tmp_path, rigs, wild):
    for name, rig in rigs.items():
        rig_motion = retarget_to_rig(wild, rig)
        glb = save_rig_glb(rig_motion, tmp_path / f"{name}.glb")
        back = read_rig_glb(glb, rig)
        height = np.ptp(rig.skeleton.rest_positions, axis=0).max()
        assert np.abs(back.positions - rig_motion.positions).max() < 1e-5 * height  # float32 keys
        assert arm_error(wild, round_trip(wild, rig, rig_bvh_text(back))) < 1e-3


def test_translation_scaled_to_the_rig_and_feet_on_its_floor(rigs):
    """A standing rest-pose SMPL-X body (feet on y = 0) walking 1 m forward and 0.5 m up."""
    rest = rest_skeleton().rest_positions
    standing = (
        rest[0, 1] - rest[[J["left_ankle"], J["right_ankle"], J["left_foot"], J["right_foot"]], 1].min()
    )
    n = 3
    trans = np.zeros((n, 3))
    trans[:, 1] = standing - rest[0, 1]
    trans[1, 2] = 1.0
    trans[2, 1] += 0.5
    motion = Motion(poses=np.zeros((n, 165)), trans=trans, betas=np.zeros(10))
    for name, rig in rigs.items():
        rm = retarget_to_rig(motion, rig)
        pos = rm.positions @ rig.axes.T * rig.unit_scale  # SMPL-X axes, metres
        rest_pos = rig.rest_smplx
        floor = rest_pos[:, 1].min()
        # Feet where the rest skeleton has them, up to the legs taking SMPL-X's rest-pose angles.
        assert abs(pos[0, :, 1].min() - floor) < 0.01, name
        assert rm.scale == pytest.approx(rig.hip_height * rig.unit_scale / standing)
        step = pos[1, rig.root] - pos[0, rig.root]
        np.testing.assert_allclose(step, [0, 0, rm.scale], atol=1e-9, err_msg=name)
        assert pos[2, rig.root, 1] - pos[0, rig.root, 1] == pytest.approx(0.5 * rm.scale)
        assert pos[0, rig.root, 1] == pytest.approx(rest_pos[rig.root, 1])  # hips at standing height


def test_a_motion_with_zero_translation_stands_on_the_rig_floor(rigs, hello):
    """Generated SMPL-X motion has no vertical translation: its feet are ~1.3 m below the origin.
    On a rig it must still stand on the rig's floor, not sink under it."""
    from gesticulator.motion.kinematics import joint_positions

    assert np.abs(hello.trans[:, 1]).max() < 1e-9 and joint_positions(hello)[:, :, 1].min() < -1.0
    for name, rig in rigs.items():
        pos = retarget_to_rig(hello, rig).positions @ rig.axes.T * rig.unit_scale  # SMPL-X axes, m
        lowest = pos[:, :, 1].min(axis=1)  # per frame, the lowest rig joint
        floor = rig.rest_smplx[:, 1].min()
        assert abs(lowest.min() - floor) < 0.02, (name, lowest.min(), floor)
        assert np.abs(lowest - floor).max() < 0.06, name  # the feet stay on it (a toe may lift)


def test_a_pose_rig_is_corrected_to_the_smplx_pose(rigs, hello):
    """The generic rig rests in an A-pose; SMPL-X's zero pose is a T-pose, so its upper arms must
    turn 45 degrees up, and every frame's arm directions must match SMPL-X's, not the rest pose's."""
    rig = rigs["generic"]
    rest = rig.rest_smplx
    up_arm = rig.mapping[J["left_shoulder"]]
    elbow = rig.mapping[J["left_elbow"]]
    rest_dir = (rest[elbow] - rest[up_arm]) / np.linalg.norm(rest[elbow] - rest[up_arm])
    assert np.degrees(np.arccos(rest_dir @ [1, 0, 0])) == pytest.approx(45, abs=0.5)
    zero = Motion(poses=np.zeros((1, 165)), trans=np.zeros((1, 3)), betas=np.zeros(10))
    rm = retarget_to_rig(zero, rig)
    pos = rm.positions[0] @ rig.axes.T
    smplx = rest_skeleton().rest_positions
    for a, b in (
        ("left_shoulder", "left_elbow"),
        ("right_elbow", "right_wrist"),
        ("left_wrist", "left_middle1"),
    ):
        rig_dir = pos[rig.mapping[J[b]]] - pos[rig.mapping[J[a]]]
        ref = smplx[J[b]] - smplx[J[a]]
        cos = rig_dir @ ref / np.linalg.norm(rig_dir) / np.linalg.norm(ref)
        assert np.degrees(np.arccos(min(cos, 1.0))) < 0.01, (a, b)
    # The correction is a real rotation of the upper arm: 45 degrees of A-pose less SMPL-X's own
    # ~16 degree droop of the upper arm at rest.
    angle = np.degrees(np.arccos((np.trace(rm.world[0, up_arm]) - 1) / 2))
    assert 25 < angle < 45


def test_rig_without_fingers(rigs, wild):
    full = rigs["mixamo"].skeleton
    fingers = {"Thumb", "Index", "Middle", "Ring", "Pinky"}
    keep = [i for i, n in enumerate(full.names) if not any(f"Hand{f}" in n for f in fingers)]
    index = {old: k for k, old in enumerate(keep)}
    skeleton = skeleton_from_positions(
        [full.names[i] for i in keep],
        [-1 if full.parents[i] < 0 else index[full.parents[i]] for i in keep],
        full.rest_positions[keep],
        source="no-fingers",
    )
    rig = load_rig("mixamo", skeleton=skeleton)
    assert not rig.has_fingers and skeleton.num_joints == 65 - 40
    text = rig_bvh_text(retarget_to_rig(wild, rig))
    back = round_trip(wild, rig, text)
    assert arm_error(wild, back) < 1e-4  # arms intact, fingers dropped
    assert np.abs(back.poses.reshape(-1, 55, 3)[:, 25:]).max() == 0.0  # fingers: the relaxed mean hand
    assert primary_bone_errors(wild, rig, text).max() < 0.01  # incl. hand direction from the forearm


def test_rig_with_extra_joints(tmp_path, rigs, wild):
    """A top "Root" on the floor, an extra spine joint, a forearm twist joint between forearm and
    hand, and a leaf twist joint on the upper arm: all unmapped, all following their parents."""
    skel = insert_joints(
        rigs["mixamo"].skeleton,
        [
            ("Root", None, None, 0.0),
            ("mixamorig:Spine1b", "mixamorig:Spine1", "mixamorig:Spine2", 0.5),
            ("mixamorig:LeftForeArmTwist", "mixamorig:LeftForeArm", "mixamorig:LeftHand", 0.5),
            ("mixamorig:LeftArmTwist", "mixamorig:LeftArm", None, 0.3),
        ],
    )
    rig = load_rig("mixamo", skeleton=skel)
    assert skel.names[0] == "Root" and skel.names[rig.root] == "mixamorig:Hips"
    rm = retarget_to_rig(wild, rig)
    extra = [skel.names.index(n) for n in ("Root", "mixamorig:Spine1b", "mixamorig:LeftForeArmTwist")]
    extra.append(skel.names.index("mixamorig:LeftArmTwist"))
    np.testing.assert_allclose(
        rm.local[:, extra], np.broadcast_to(np.eye(3), rm.local[:, extra].shape), atol=1e-12
    )
    np.testing.assert_allclose(rm.positions[:, 0], 0.0, atol=1e-12)  # Root stays put, the hips move
    text = rig_bvh_text(rm)
    bvh = parse_bvh(text, source="extra")
    hips = bvh.joint_index("mixamorig:Hips")
    assert "Xposition" in bvh.channels[hips]  # translation on the hips, below the root
    file_order = [skel.names.index(n) for n in bvh.names]  # the BVH lists joints depth first
    np.testing.assert_allclose(bvh.world_positions(), rm.positions[:, file_order], atol=1e-4)
    assert arm_error(wild, round_trip(wild, rig, text)) < 1e-4
    assert primary_bone_errors(wild, rig, text).max() < 0.01  # across the folded joints too
    back = read_rig_glb(save_rig_glb(rm, tmp_path / "extra.glb"), rig)  # hips translated below Root
    np.testing.assert_allclose(back.positions, rm.positions, atol=1e-3)  # cm, float32 keys
    same = retarget_to_rig(wild, rigs["mixamo"])  # the extra joints change nothing for the others
    for n in ("mixamorig:LeftHand", "mixamorig:Head", "mixamorig:RightFoot"):
        np.testing.assert_allclose(
            rm.positions[:, skel.names.index(n)], same.positions[:, same.rig.names.index(n)], atol=1e-9
        )


# -- a user's GLB rig with rest rotations ----------------------------------------------------------


def _quat(matrix: np.ndarray) -> list[float]:
    return [float(v) for v in matrix_to_quat(matrix, convention="xyzw")]


def make_user_glb(path: Path, skeleton: RigSkeleton, seed: int = 0) -> dict[str, np.ndarray]:
    """A Mixamo-style GLB export: an "Armature" node (scale 0.01, rotated so its inside is Z-up
    centimetres, Blender's) holding the joint nodes, each with a random rest rotation; a skin
    listing the joints in shuffled order; a stray node that is no joint. The scene positions are
    the BVH skeleton's in metres. Returns each joint's rest world rotation."""
    rng = np.random.default_rng(seed)
    to_inner = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # Y-up +Z -> Z-up -Y
    armature = np.eye(4)
    armature[:3, :3] = to_inner.T * 0.01
    world_rot = {}
    nodes = [pygltflib.Node(name="Armature", rotation=_quat(to_inner.T), scale=[0.01] * 3, children=[])]
    pos = skeleton.rest_positions * 0.01  # scene metres
    worlds = []
    for k, p in enumerate(skeleton.parents):
        rot = axis_angle_to_matrix(rng.normal(0, 1.0, 3))
        world = np.eye(4)
        world[:3, :3] = rot * 0.01  # the Armature's scale is inherited
        world[:3, 3] = pos[k]
        worlds.append(world)
        world_rot[skeleton.names[k]] = rot
        parent_world = armature if p < 0 else worlds[p]
        local = np.linalg.inv(parent_world) @ world
        nodes.append(
            pygltflib.Node(
                name=skeleton.names[k],
                translation=[float(v) for v in local[:3, 3]],
                rotation=_quat(local[:3, :3] / np.cbrt(np.linalg.det(local[:3, :3]))),
                children=[],
            )
        )
        nodes[0 if p < 0 else 1 + p].children.append(1 + k)
    nodes.append(pygltflib.Node(name="Light_helper", translation=[1.0, 2.0, 3.0]))
    for node in nodes:
        node.children = node.children or None
    joints = [1 + k for k in rng.permutation(skeleton.num_joints)]
    gltf = pygltflib.GLTF2(
        asset=pygltflib.Asset(version="2.0"),
        scene=0,
        scenes=[pygltflib.Scene(nodes=[0, len(nodes) - 1])],
        nodes=nodes,
        skins=[pygltflib.Skin(joints=[int(j) for j in joints])],
    )
    gltf.save_binary(str(path))
    return world_rot


def evaluate_on_model(model: Path, animation_file: Path, frames: np.ndarray) -> dict[str, np.ndarray]:
    """World positions of the model's nodes with the animation file's channels applied by node name
    (what a user does with our GLB on their own model): {node name: (F, 3)}."""
    src = pygltflib.GLTF2().load(str(model))
    anim_gltf = pygltflib.GLTF2().load(str(animation_file))
    blob = anim_gltf.binary_blob()

    def accessor(i):
        acc = anim_gltf.accessors[i]
        view = anim_gltf.bufferViews[acc.bufferView]
        width = {"VEC3": 3, "VEC4": 4, "SCALAR": 1}[acc.type]
        data = np.frombuffer(blob, np.float32, acc.count * width, view.byteOffset + (acc.byteOffset or 0))
        return data.reshape(acc.count, width).astype(np.float64)

    overrides: dict[tuple[str, str], np.ndarray] = {}
    anim = anim_gltf.animations[0]
    for ch in anim.channels:
        overrides[(anim_gltf.nodes[ch.target.node].name, ch.target.path)] = accessor(
            anim.samplers[ch.sampler].output
        )
    parent = {c: i for i, n in enumerate(src.nodes) for c in (n.children or [])}
    out = {}
    for f in frames:
        world: dict[int, np.ndarray] = {}

        def get(i, f=f, world=world):
            if i not in world:
                node = src.nodes[i]
                t = overrides.get((node.name, "translation"), [node.translation or [0, 0, 0]] * (f + 1))[f]
                q = overrides.get((node.name, "rotation"), [node.rotation or [0, 0, 0, 1]] * (f + 1))[f]
                local = np.eye(4)
                local[:3, :3] = quat_to_matrix(
                    np.asarray(q, dtype=np.float64), convention="xyzw"
                ) * np.asarray(node.scale or [1, 1, 1])
                local[:3, 3] = t
                world[i] = local if i not in parent else get(parent[i]) @ local
            return world[i]

        for i, node in enumerate(src.nodes):
            out.setdefault(node.name, []).append(get(i)[:3, 3])
    return {k: np.asarray(v) for k, v in out.items()}


def test_glb_user_rig_with_rest_rotations(tmp_path, rigs, wild):
    bvh_rig = rigs["mixamo"]
    model = tmp_path / "character.glb"
    rest_rot = make_user_glb(model, bvh_rig.skeleton)
    (tmp_path / "character.yaml").write_text(
        (rigs_dir() / "mixamo.yaml")
        .read_text()
        .replace("rest: skeletons/mixamo.bvh", "rest: character.glb")
        .replace("units: cm", "units: auto")
    )
    rig = load_rig(tmp_path / "character.yaml")
    skel = rig.skeleton
    assert skel.kind == "glb" and skel.has_rest_rotations and skel.anchor_name == "Armature"
    assert "Light_helper" not in skel.names and skel.num_joints == bvh_rig.skeleton.num_joints
    assert rig.unit_scale == 1.0  # scene metres, found by `auto`
    for name in ("mixamorig:Hips", "mixamorig:LeftHandThumb2"):
        np.testing.assert_allclose(skel.rest_rotations[skel.names.index(name)], rest_rot[name], atol=1e-6)
    np.testing.assert_allclose(
        skel.rest_positions, bvh_rig.skeleton.rest_positions[[bvh_rig.names.index(n) for n in skel.names]] * 0.01,
        atol=1e-6,
    )  # fmt: skip

    # Rest rotations do not change the pose: same world positions as the BVH rig (in metres).
    rm = retarget_to_rig(wild, rig)
    ref = retarget_to_rig(wild, bvh_rig)
    order = [bvh_rig.names.index(n) for n in skel.names]
    np.testing.assert_allclose(rm.positions, ref.positions[:, order] * 0.01, atol=1e-7)

    out = export_to_rig(wild, rig, tmp_path / "out", ("bvh", "glb"))
    glb_report(out["glb"])
    # Our animation applied by node name to the user's own file puts every joint where it belongs.
    frames = np.array([0, 11, 29])
    on_model = evaluate_on_model(model, out["glb"], frames)
    for k, name in enumerate(skel.names):
        np.testing.assert_allclose(on_model[name], rm.positions[frames, k], atol=2e-5, err_msg=name)
    # Unanimated joints keep the file's own rest rotation.
    ours = pygltflib.GLTF2().load(str(out["glb"]))
    theirs = pygltflib.GLTF2().load(str(model))
    for name in ("mixamorig:HeadTop_End", "mixamorig:LeftToe_End"):
        a = next(n for n in ours.nodes if n.name == name).rotation
        b = next(n for n in theirs.nodes if n.name == name).rotation
        assert abs(abs(np.dot(a, b)) - 1) < 1e-9, name
    # And the round trip holds through both files.
    assert arm_error(wild, round_trip(wild, rig, out["bvh"].read_text())) < 1e-4
    assert arm_error(wild, round_trip(wild, rig, rig_bvh_text(read_rig_glb(out["glb"], rig)))) < 1e-3


def test_glb_skeleton_errors(tmp_path, rigs):
    (tmp_path / "junk.glb").write_bytes(b"glTF\x02\x00\x00\x00garbage")
    with pytest.raises(InputFileError, match="not a readable glTF rig"):
        read_skeleton(tmp_path / "junk.glb")
    model = tmp_path / "stretched.glb"
    make_user_glb(model, rigs["vrm"].skeleton)
    gltf = pygltflib.GLTF2().load(str(model))
    gltf.nodes[0].scale = [0.01, 0.02, 0.01]
    gltf.save_binary(str(model))
    with pytest.raises(InputFileError, match="non-uniform"):
        read_skeleton(model)


# -- files -------------------------------------------------------------------------------------------


def test_glb_files_are_valid_and_vrma_carries_the_humanoid(tmp_path, rigs, hello):
    for name in ("mixamo", "generic"):
        out = export_to_rig(hello, rigs[name], tmp_path / name, "glb")
        assert list(out) == ["glb"]
        report = glb_report(out["glb"])
        assert report["numInfos"] == 0, report["messages"]
        gltf = pygltflib.GLTF2().load(str(out["glb"]))
        assert len(gltf.skins[0].joints) == rigs[name].skeleton.num_joints
        assert gltf.animations[0].channels and gltf.meshes
    out = export_to_rig(hello, rigs["vrm"], tmp_path / "vrm", ("glb",), name="take")
    assert set(out) == {"glb", "vrma"} and out["vrma"].name == "take.vrma"
    for kind, path in out.items():
        report = glb_report(path)
        infos = {m["code"] for m in report["messages"] if m["severity"] == "info"}
        assert infos <= {"UNSUPPORTED_EXTENSION", "NODE_EMPTY"}, infos  # the validator knows no VRM
        gltf = pygltflib.GLTF2.load_binary(str(path))
        ext = gltf.extensions["VRMC_vrm_animation"]
        assert ext["specVersion"] == "1.0" and gltf.extensionsUsed == ["VRMC_vrm_animation"]
        bones = ext["humanoid"]["humanBones"]
        assert {"hips", "leftHand", "rightThumbMetacarpal", "leftLittleDistal"} <= set(bones)
        assert all(gltf.nodes[b["node"]].name == name for name, b in bones.items())
        assert bool(gltf.meshes) == (kind == "glb")  # the .vrma is animation only
        translated = {
            gltf.nodes[c.target.node].name
            for c in gltf.animations[0].channels
            if c.target.path == "translation"
        }
        assert translated == {"hips"}  # VRMA: translation on the hips only
    with pytest.raises(ExportError, match="not a VRM 1.0 humanoid"):
        save_rig_glb(retarget_to_rig(hello, rigs["vrm0"]), tmp_path / "x.vrma", vrma=True)


def test_bvh_keeps_the_rig_conventions(rigs, hello):
    text = rig_bvh_text(retarget_to_rig(hello, rigs["generic"]))
    bvh = parse_bvh(text, source="generic")
    shipped = read_bvh(rigs_dir() / "skeletons" / "generic.bvh")
    assert bvh.names == shipped.names
    np.testing.assert_allclose(bvh.offsets, shipped.offsets)
    assert bvh.channels[1] == ["Xrotation", "Yrotation", "Zrotation"]  # the rig's own Euler order
    assert bvh.num_frames == hello.num_frames and bvh.fps == hello.fps
    assert "-0.000000" not in text


# -- CLI, API, errors ----------------------------------------------------------------------------


def test_cli_exports_the_three_rigs(tmp_path, hello):
    save_npz(hello, tmp_path / "m.npz")
    for name in ("mixamo", "vrm", "generic"):
        r = runner.invoke(app, ["export", str(tmp_path / "m.npz"), "--rig", name, "--to", "bvh,glb,npz",
                                "-o", str(tmp_path / name)])  # fmt: skip
        assert r.exit_code == 0, r.output
        files = sorted(p.name for p in (tmp_path / name).iterdir())
        expected = ["m.bvh", "m.glb", "m.npz"] + (["m.vrma"] if name == "vrm" else [])
        assert files == expected
        assert read_bvh(tmp_path / name / "m.bvh").names == list(load_rig(name).names)
        assert load_motion(tmp_path / name / "m.npz").num_frames == hello.num_frames  # npz stays SMPL-X
        glb_report(tmp_path / name / "m.glb")


def test_cli_fbx(tmp_path, hello):
    from gesticulator.rigs.blender import find_blender

    save_npz(hello, tmp_path / "m.npz")
    args = [
        "export",
        str(tmp_path / "m.npz"),
        "--rig",
        "mixamo",
        "--to",
        "bvh,fbx",
        "-o",
        str(tmp_path / "o"),
    ]
    if find_blender() is not None:
        pytest.skip("Blender is installed: the FBX path is covered by the slow test below")
    r = runner.invoke(app, args)
    assert r.exit_code != 0 and "needs Blender" in r.output
    assert not (tmp_path / "o").exists()  # failed before writing anything


@pytest.mark.slow
def test_cli_fbx_with_blender(tmp_path, hello):
    from gesticulator.rigs.blender import find_blender

    if find_blender() is None:
        pytest.skip("Blender not installed")
    out = export_to_rig(hello, "mixamo", tmp_path, ("bvh", "fbx"))
    assert out["fbx"].stat().st_size > 0 and out["bvh"].is_file()


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, hello):
    save_npz(hello, tmp_path / "m.npz")
    mixamo = (rigs_dir() / "mixamo.yaml").read_text()
    skeleton = (rigs_dir() / "skeletons" / "mixamo.bvh").resolve()
    (tmp_path / "typo.yaml").write_text(
        mixamo.replace("rest: skeletons/mixamo.bvh", f"rest: {skeleton}").replace("Spine1\n", "Spine9\n")
    )
    (tmp_path / "gone.yaml").write_text(mixamo.replace("skeletons/mixamo.bvh", "nowhere.bvh"))
    (tmp_path / "junk.bvh").write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 zero 0\n")
    (tmp_path / "corrupt.yaml").write_text(mixamo.replace("skeletons/mixamo.bvh", "junk.bvh"))
    (tmp_path / "norest.yaml").write_text(mixamo.replace("rest: skeletons/mixamo.bvh\n", ""))
    (tmp_path / "badrest.yaml").write_text(mixamo.replace("rest: skeletons/mixamo.bvh", "rest: 5"))
    cases = [
        ("nope", "unknown rig 'nope' (shipped rigs: generic, mixamo, vrm, vrm0)"),
        (tmp_path / "missing.yaml", "rig joint map not found"),
        (tmp_path / "typo.yaml", "names 1 joint(s) not in the file: mixamorig:Spine9 (closest: Spine"),
        (tmp_path / "gone.yaml", "rig skeleton not found"),
        (tmp_path / "corrupt.yaml", "OFFSET has non-numeric values"),
        (tmp_path / "norest.yaml", "names no rest-pose skeleton"),
        (tmp_path / "badrest.yaml", "'rest' must be the path"),
    ]
    for rig, message in cases:
        with pytest.raises(InputFileError) as info:
            load_rig(rig)
        assert message in str(info.value) and "\n" not in str(info.value), (rig, str(info.value))
        out = tmp_path / "out"
        r = runner.invoke(
            app, ["export", str(tmp_path / "m.npz"), "--rig", str(rig), "--to", "bvh,glb,npz", "-o", str(out)]
        )
        assert r.exit_code != 0 and message in " ".join(r.output.split()), (rig, r.output)
        assert not out.exists(), rig
    with pytest.raises(Exception, match="unknown rig format 'fbz'"):
        export_to_rig(hello, "vrm", tmp_path / "o", "bvh,fbz")


def test_rest_key_is_ignored_by_the_importer(tmp_path, rigs, hello):
    """One YAML serves both directions: the importer reads a rig YAML as a joint map."""
    text = rig_bvh_text(retarget_to_rig(hello, rigs["vrm"]))
    (tmp_path / "v.bvh").write_text(text)
    back = retarget_bvh(tmp_path / "v.bvh", rigs_dir() / "vrm.yaml", fps=None, betas=hello.betas)
    assert arm_error(hello, back) < 1e-4
    assert load_joint_map(rigs_dir() / "vrm.yaml").rest == "skeletons/vrm.bvh"


def test_explicit_skeleton_and_joint_map_objects(rigs, hello):
    jm = replace(load_joint_map(rigs_dir() / "generic.yaml"), rest=None)
    rig = load_rig(jm, skeleton=rigs_dir() / "skeletons" / "generic.bvh")
    np.testing.assert_allclose(
        retarget_to_rig(hello, rig).positions, retarget_to_rig(hello, rigs["generic"]).positions
    )


def test_import_stays_light():
    code = "import sys, gesticulator.rigs; print(sorted(m for m in ('torch', 'faiss', 'mannequin') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.replace("'", '"')) == []
