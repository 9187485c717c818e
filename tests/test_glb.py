"""GLB export: Khronos-valid, and the file's own skinning reproduces mannequin-x's mesh.

The equivalence tests read the written .glb back with pygltflib and evaluate it the way a glTF
viewer does (node TRS -> world matrices, x inverse bind matrices, linear blend with JOINTS_0 /
WEIGHTS_0), so they check the file, not the writer's intermediate arrays.

The validator tests need Node.js and `npm ci --prefix tests/gltf_validator`; they are skipped
(with that hint) when either is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest

from gesticulator.errors import ExportError
from gesticulator.io.glb import JOINT_NAMES, MESH_NODE_NAME, ROOT_NODE_NAME, save_glb
from gesticulator.motion import skeleton as sk
from gesticulator.motion.kinematics import forward_kinematics, shape10
from gesticulator.motion.rotations import quat_to_matrix
from gesticulator.types import Motion

VALIDATOR_DIR = Path(__file__).resolve().parent / "gltf_validator"
BEAT2_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "beat2_sample" / "2_scott_0_1_1.npz"

VERTEX_TOLERANCE = 1e-3  # metres: skinned GLB vs mannequin-x vertices
JOINT_TOLERANCE = 1e-4  # metres: GLB joint nodes vs forward_kinematics


# -- motions ------------------------------------------------------------------------------------


def synthetic_motion(num_frames: int = 60, fps: float = 30.0) -> Motion:
    """A non-trivial motion: the pelvis turns past 180 degrees (exercises quaternion sign
    continuity) and walks, spine/neck/arms/fingers swing smoothly, and the body shape is not the
    mean one (exercises shape-dependent bones and mesh)."""
    t = np.arange(num_frames) / fps
    s = np.linspace(0.0, 1.0, num_frames)
    rot = np.zeros((num_frames, 55, 3))
    rot[:, 0, 1] = 1.3 * np.pi * s  # pelvis yaw 0 -> 234 degrees
    rot[:, 0, 0] = 0.2 * np.sin(2 * np.pi * 0.7 * t)
    j = sk.JOINT_INDEX
    rot[:, j["spine1"], 0] = 0.3 * np.sin(2 * np.pi * 0.5 * t)
    rot[:, j["spine3"], 2] = 0.2 * np.sin(2 * np.pi * 0.9 * t)
    rot[:, j["neck"], 1] = 0.5 * np.sin(2 * np.pi * 0.4 * t)
    rot[:, j["left_shoulder"], 2] = -0.9 + 0.6 * np.sin(2 * np.pi * 0.8 * t)
    rot[:, j["right_shoulder"], 0] = 0.3 * np.sin(2 * np.pi * t)
    rot[:, j["right_shoulder"], 1] = 0.4
    rot[:, j["right_shoulder"], 2] = 1.0 + 0.3 * np.cos(2 * np.pi * t)
    rot[:, j["left_elbow"], 1] = -1.2 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.6 * t))
    rot[:, j["right_wrist"], 0] = 0.6 * np.sin(2 * np.pi * 1.1 * t)
    rot[:, j["left_knee"], 0] = 0.8 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    for finger in ("left_index1", "left_middle2", "right_thumb1", "right_pinky3"):
        rot[:, j[finger], 2] = 0.7 * (0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t))
    trans = np.stack([0.3 * np.sin(2 * np.pi * 0.3 * t), 0.02 * np.sin(2 * np.pi * t), 0.5 * s], axis=1)
    betas = np.random.default_rng(0).normal(0.0, 1.0, 10)
    return Motion(poses=rot.reshape(num_frames, -1), trans=trans, betas=betas, fps=fps)


def beat2_motion() -> Motion:
    if not BEAT2_SAMPLE.is_file():
        pytest.skip(f"BEAT2 sample not found at {BEAT2_SAMPLE}")
    from gesticulator.io import load_npz

    return load_npz(BEAT2_SAMPLE)


# -- reading a GLB back and evaluating it like a viewer ------------------------------------------

_DTYPES = {5126: np.float32, 5123: np.uint16, 5125: np.uint32, 5121: np.uint8}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


class GlbFile:
    def __init__(self, path: Path):
        self.gltf = pygltflib.GLTF2.load_binary(path)
        self.blob = self.gltf.binary_blob()

    def accessor(self, index: int) -> np.ndarray:
        acc = self.gltf.accessors[index]
        view = self.gltf.bufferViews[acc.bufferView]
        assert view.byteStride in (None, 0), "test reader handles tightly packed views only"
        dtype = np.dtype(_DTYPES[acc.componentType])
        width = _WIDTH[acc.type]
        start = view.byteOffset + (acc.byteOffset or 0)
        data = np.frombuffer(self.blob, dtype=dtype, count=acc.count * width, offset=start)
        return data.reshape(acc.count, width) if width > 1 else data

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.gltf.nodes]

    def node_index(self, name: str) -> int:
        return self.node_names.index(name)

    def world_matrices(self, frames: np.ndarray) -> np.ndarray:
        """(F, N, 4, 4) world matrix of every node at the given keyframes (sampled at their exact
        key times, so the value is the stored key, no interpolation)."""
        gltf = self.gltf
        n = len(gltf.nodes)
        translation = np.zeros((len(frames), n, 3))
        rotation = np.zeros((len(frames), n, 4))
        rotation[..., 3] = 1.0
        for i, node in enumerate(gltf.nodes):
            assert node.matrix is None and node.scale is None
            if node.translation is not None:
                translation[:, i] = node.translation
            if node.rotation is not None:
                rotation[:, i] = node.rotation
        animation = gltf.animations[0]
        for ch in animation.channels:
            sampler = animation.samplers[ch.sampler]
            values = self.accessor(sampler.output)
            if ch.target.path == "translation":
                translation[:, ch.target.node] = values[frames]
            else:
                assert ch.target.path == "rotation"
                rotation[:, ch.target.node] = values[frames]
        local = np.zeros((len(frames), n, 4, 4))
        local[..., :3, :3] = quat_to_matrix(rotation, convention="xyzw")
        local[..., :3, 3] = translation
        local[..., 3, 3] = 1.0
        parent = {c: i for i, node in enumerate(gltf.nodes) for c in (node.children or [])}
        world = np.zeros_like(local)
        done = [False] * n

        def visit(i: int) -> None:
            if done[i]:
                return
            if i in parent:
                visit(parent[i])
                world[:, i] = world[:, parent[i]] @ local[:, i]
            else:
                world[:, i] = local[:, i]
            done[i] = True

        for i in range(n):
            visit(i)
        return world

    def skinned_vertices(self, frames: np.ndarray) -> np.ndarray:
        """(F, V, 3) linear-blend-skinned vertices, glTF's skinning formula."""
        gltf = self.gltf
        mesh_node = gltf.nodes[self.node_index(MESH_NODE_NAME)]
        skin = gltf.skins[mesh_node.skin]
        prim = gltf.meshes[mesh_node.mesh].primitives[0]
        positions = self.accessor(prim.attributes.POSITION).astype(np.float64)
        joints = self.accessor(prim.attributes.JOINTS_0).astype(np.int64)
        weights = self.accessor(prim.attributes.WEIGHTS_0).astype(np.float64)
        # Accessor matrices are column-major.
        inverse_bind = self.accessor(skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
        world = self.world_matrices(frames)[:, skin.joints]  # (F, J, 4, 4)
        joint_matrices = world @ inverse_bind
        homogeneous = np.concatenate([positions, np.ones((len(positions), 1))], axis=1)
        blended = np.einsum("vk,fvkij->fvij", weights, joint_matrices[:, joints])
        return np.einsum("fvij,vj->fvi", blended, homogeneous)[..., :3]

    def key_times(self) -> np.ndarray:
        animation = self.gltf.animations[0]
        return self.accessor(animation.samplers[0].input)


def mannequin_vertices(motion: Motion, frames: np.ndarray) -> np.ndarray:
    from mannequin import Mannequin

    model = Mannequin("wooden", shape=shape10(motion.betas).astype(np.float32), flat_hand_mean=False)
    rot = motion.rotations[frames].astype(np.float64)
    pose = {
        "shape": np.repeat(shape10(motion.betas)[None], len(frames), 0),
        "body_pose": rot[:, 1:22],
        "head_pose": rot[:, 22:25],
        "hand_pose": rot[:, 25:55],
        "pelvis_rotation": rot[:, 0],
        "global_translation": motion.trans[frames].astype(np.float64),
    }
    return model.vertices(pose)


def joint_errors(glb: GlbFile, motion: Motion, frames: np.ndarray) -> float:
    """Max distance between the GLB's joint nodes and forward_kinematics, over SMPL-X joints the
    mannequin has (jaw and eyes are not in the GLB)."""
    world = glb.world_matrices(frames)
    fk = forward_kinematics(motion).positions[frames]
    errors = []
    for smplx, m in enumerate(sk.MANNEQUIN_INDEX):
        if m is None:
            continue
        node = glb.node_index(sk.JOINT_NAMES[smplx])
        errors.append(np.linalg.norm(world[:, node, :3, 3] - fk[:, smplx], axis=-1).max())
    return float(max(errors))


def skinning_error(glb: GlbFile, motion: Motion, frames: np.ndarray) -> float:
    ours = glb.skinned_vertices(frames)
    theirs = mannequin_vertices(motion, frames)
    return float(np.linalg.norm(ours - theirs, axis=-1).max())


# -- the Khronos validator -------------------------------------------------------------------


def validate(path: Path) -> dict:
    node = shutil.which("node")
    if node is None or not (VALIDATOR_DIR / "node_modules" / "gltf-validator").is_dir():
        pytest.skip(
            "glTF validator not installed: needs Node.js, then `npm ci --prefix tests/gltf_validator`"
        )
    result = subprocess.run(
        [node, str(VALIDATOR_DIR / "validate.mjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # exit 1 = errors found; the report is asserted on below
    )
    assert result.returncode in (0, 1), f"validator crashed: {result.stderr}"
    report = json.loads(result.stdout)
    print(json.dumps({k: report[k] for k in ("numErrors", "numWarnings", "numInfos", "numHints")}))
    for message in report["messages"]:
        print(f"  {message['severity']}: {message['code']} at {message['pointer']}: {message['message']}")
    return report


def assert_clean(report: dict, expected_infos: tuple[str, ...] = ()) -> None:
    issues = [f"{m['severity']} {m['code']} {m['pointer']}: {m['message']}" for m in report["messages"]]
    assert report["numErrors"] == 0, issues
    # The writer produces no warnings or infos today (no unused objects, exact min/max,
    # normalised weights and quaternions); any that appear are a regression worth a look.
    assert report["numWarnings"] == 0, issues
    infos = [f"{m['code']} {m['pointer']}" for m in report["messages"] if m["severity"] == "info"]
    assert infos == list(expected_infos), issues


# -- tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> Motion:
    return synthetic_motion()


@pytest.fixture(scope="module")
def synthetic_glb(synthetic: Motion, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_glb(synthetic, tmp_path_factory.mktemp("glb") / "synthetic.glb")


def test_skinned_mesh_matches_mannequin(synthetic: Motion, synthetic_glb: Path) -> None:
    glb = GlbFile(synthetic_glb)
    frames = np.array([0, 13, 29, 44, 59])
    vertex_error = skinning_error(glb, synthetic, frames)
    joint_error = joint_errors(glb, synthetic, frames)
    print(
        f"synthetic: max vertex error {vertex_error * 1e3:.4f} mm, max joint error {joint_error * 1e3:.4f} mm"
    )
    assert vertex_error < VERTEX_TOLERANCE
    assert joint_error < JOINT_TOLERANCE
    # The comparison is not vacuous: the mesh really moves between these frames.
    moved = np.linalg.norm(glb.skinned_vertices(frames[:1]) - glb.skinned_vertices(frames[-1:]), axis=-1)
    assert moved.max() > 0.3


def test_every_joint_moving(motion: Motion, tmp_path: Path) -> None:
    """conftest's `motion` swings all 55 joints (fingers, jaw and eyes included) at once."""
    glb = GlbFile(save_glb(motion, tmp_path / "all_joints.glb"))
    frames = np.array([0, 20, 40, 59])
    assert skinning_error(glb, motion, frames) < VERTEX_TOLERANCE
    assert joint_errors(glb, motion, frames) < JOINT_TOLERANCE


def test_structure(synthetic: Motion, synthetic_glb: Path) -> None:
    glb = GlbFile(synthetic_glb)
    gltf = glb.gltf
    root = gltf.nodes[glb.node_index(ROOT_NODE_NAME)]
    assert gltf.scenes[gltf.scene].nodes == [glb.node_index(ROOT_NODE_NAME), glb.node_index(MESH_NODE_NAME)]
    assert [gltf.nodes[c].name for c in root.children] == ["pelvis"]
    joint_names = [gltf.nodes[j].name for j in gltf.skins[0].joints]
    assert tuple(joint_names) == JOINT_NAMES and len(joint_names) == 54
    assert "left_hand" in joint_names and "jaw" not in joint_names
    # Rest pose is the T-pose: identity rotations, translations only.
    for j in gltf.skins[0].joints:
        assert gltf.nodes[j].rotation is None and gltf.nodes[j].translation is not None
    # Hierarchy follows SMPL-X: left_elbow's parent is left_shoulder, fingers hang off left_hand.
    parent = {c: gltf.nodes[i].name for i, n in enumerate(gltf.nodes) for c in (n.children or [])}
    assert parent[glb.node_index("left_elbow")] == "left_shoulder"
    assert parent[glb.node_index("left_index1")] == "left_hand"
    assert parent[glb.node_index("left_hand")] == "left_wrist"

    prim = gltf.meshes[0].primitives[0]
    assert gltf.accessors[prim.attributes.JOINTS_0].componentType == 5123  # unsigned short
    weights = glb.accessor(prim.attributes.WEIGHTS_0).astype(np.float64)
    assert np.abs(weights.sum(axis=1) - 1.0).max() < 1e-6
    normals = glb.accessor(prim.attributes.NORMAL).astype(np.float64)
    assert np.abs(np.linalg.norm(normals, axis=1) - 1.0).max() < 1e-5

    # One key per frame at the motion's rate; rotation keys are sign-continuous.
    np.testing.assert_allclose(glb.key_times(), np.arange(synthetic.num_frames) / synthetic.fps, atol=1e-6)
    animation = gltf.animations[0]
    paths = [c.target.path for c in animation.channels]
    assert paths.count("translation") == 1 and paths.count("rotation") == 52
    for ch in animation.channels:
        if ch.target.path == "rotation":
            q = glb.accessor(animation.samplers[ch.sampler].output)
            assert np.all(np.sum(q[1:] * q[:-1], axis=1) > 0), gltf.nodes[ch.target.node].name


def test_synthetic_passes_validator(synthetic_glb: Path) -> None:
    assert_clean(validate(synthetic_glb))


def test_skeleton_only(synthetic: Motion, tmp_path: Path) -> None:
    path = save_glb(synthetic, tmp_path / "skeleton.glb", mesh=False)
    glb = GlbFile(path)
    assert not glb.gltf.meshes and not glb.gltf.materials
    assert len(glb.gltf.nodes) == 55  # root + 54 joints
    # The skin stays (importers make an armature only from a skin's joints).
    assert [glb.gltf.nodes[j].name for j in glb.gltf.skins[0].joints] == list(JOINT_NAMES)
    assert joint_errors(glb, synthetic, np.arange(0, 60, 7)) < JOINT_TOLERANCE
    assert path.stat().st_size < save_glb(synthetic, tmp_path / "full.glb").stat().st_size
    # The one expected note: no mesh uses the skin.
    assert_clean(validate(path), expected_infos=("UNUSED_OBJECT /skins/0",))


def test_single_frame(tmp_path: Path) -> None:
    motion = synthetic_motion().slice(10, 11)
    glb = GlbFile(save_glb(motion, tmp_path / "one.glb"))
    assert skinning_error(glb, motion, np.array([0])) < VERTEX_TOLERANCE
    assert_clean(validate(tmp_path / "one.glb"))


def test_size_of_a_minute(tmp_path: Path) -> None:
    motion = synthetic_motion(num_frames=1800)
    size = save_glb(motion, tmp_path / "minute.glb").stat().st_size
    assert size < 5_000_000, f"60 s at 30 fps is {size / 1e6:.1f} MB"


@pytest.mark.shared_data
def test_beat2_sample(tmp_path: Path) -> None:
    motion = beat2_motion()
    path = save_glb(motion, tmp_path / "beat2.glb")
    glb = GlbFile(path)
    frames = np.linspace(0, motion.num_frames - 1, 6).astype(int)
    vertex_error = skinning_error(glb, motion, frames)
    joint_error = joint_errors(glb, motion, frames)
    print(
        f"BEAT2: max vertex error {vertex_error * 1e3:.4f} mm, max joint error {joint_error * 1e3:.4f} mm, "
    )
    print(f"BEAT2: {motion.num_frames} frames, {path.stat().st_size / 1e6:.2f} MB")
    assert vertex_error < VERTEX_TOLERANCE
    assert joint_error < JOINT_TOLERANCE
    assert path.stat().st_size < 6_000_000
    assert_clean(validate(path))


def test_export_errors(synthetic: Motion, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError, match="a_file"):
        save_glb(synthetic, blocker / "out.glb")  # parent is a file: cannot create the folder
    (tmp_path / "taken.glb").mkdir()
    with pytest.raises(ExportError, match="taken.glb"):
        save_glb(synthetic, tmp_path / "taken.glb")  # a directory stands at the path
    with pytest.raises(ExportError, match=r"\.glb"):
        save_glb(synthetic, tmp_path / "out.gltf")
    with pytest.raises(ExportError, match="no frames"):
        save_glb(synthetic.copy(poses=synthetic.poses[:0], trans=synthetic.trans[:0]), tmp_path / "empty.glb")
    # Failed writes leave nothing behind (no temp files either).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "taken.glb"]
