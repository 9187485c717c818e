"""FBX through Blender (gesticulator/rigs/blender.py), run as a separate process.

Tests marked `blender` run Blender for real and skip when none is found: `make test-blender`
(bpy in .venv-blender), or set GESTICULATOR_BLENDER to a blender executable or a Python with bpy.
They convert BVHs to FBX and re-import each FBX in a fresh Blender to count its bones, frames and
rate and to check a joint's position against our own forward kinematics.

The others run everywhere: finding Blender, its absence and its failures, with small shell
scripts standing in for Blender.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import stat
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gesticulator.cli import app as cli_app
from gesticulator.errors import ExportError, MissingDependencyError
from gesticulator.io import read_bvh, save_bvh, save_glb, save_npz
from gesticulator.motion import JOINT_NAMES, joint_positions
from gesticulator.rigs import blender as bl
from gesticulator.rigs.blender import BlenderCommand, bvh_to_fbx, find_blender, inspect_fbx

from .conftest import smooth_motion

SHIPPED_RIGS = ("mixamo", "vrm", "generic")


def zup(p: np.ndarray) -> np.ndarray:
    """Y-up (BVH, SMPL-X) to Blender's world: Z up, the figure facing -Y."""
    return np.array([p[0], -p[2], p[1]])


@pytest.fixture
def blender() -> BlenderCommand:
    """The real Blender, or skip. A variable naming something unusable fails the test instead:
    the user asked for that Blender."""
    found = find_blender()
    if found is None:
        pytest.skip(f"no Blender found: {bl.HOW_TO_ENABLE}")
    return found


@pytest.fixture
def no_blender(tmp_path, monkeypatch) -> None:
    """No variable set, no .venv-blender, no `blender` on PATH."""
    monkeypatch.delenv(bl.ENV_BLENDER, raising=False)
    monkeypatch.delenv(bl.ENV_BLENDER_PYTHON, raising=False)
    monkeypatch.setattr(bl, "LOCAL_ENV", tmp_path / "no-venv-blender")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def fake_blender(folder: Path, body: str, name: str = "blender") -> Path:
    """An executable shell script standing in for Blender."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


@pytest.fixture
def bvh(tmp_path) -> Path:
    return save_bvh(smooth_motion(10), tmp_path / "in" / "m.bvh")


# -- without Blender -------------------------------------------------------------------------------


def test_absent_blender_is_a_one_line_error_and_writes_nothing(no_blender, bvh, tmp_path):
    assert find_blender() is None
    out = tmp_path / "out"
    with pytest.raises(MissingDependencyError) as e:
        bvh_to_fbx(bvh, out / "m.fbx")
    message = str(e.value)
    assert "\n" not in message and message.startswith("FBX export needs Blender, which was not found")
    for how in ("make blender", "apt install blender", "GESTICULATOR_BLENDER"):
        assert how in message
    assert not out.exists()
    # a variable naming nothing is an error too, not a silent fallback
    os.environ[bl.ENV_BLENDER] = str(tmp_path / "nowhere" / "blender")
    try:
        with pytest.raises(MissingDependencyError, match=r"GESTICULATOR_BLENDER=.*nowhere.* does not exist"):
            bvh_to_fbx(bvh, out / "m.fbx")
    finally:
        del os.environ[bl.ENV_BLENDER]
    assert not out.exists()


def test_a_python_without_bpy_is_refused(no_blender, monkeypatch):
    assert importlib.util.find_spec("bpy") is None  # never in the main environment
    monkeypatch.setenv(bl.ENV_BLENDER_PYTHON, sys.executable)
    with pytest.raises(
        MissingDependencyError, match="neither a blender executable nor a Python that has bpy"
    ):
        find_blender()


def test_finds_blender_in_order(no_blender, tmp_path, monkeypatch):
    on_path = fake_blender(tmp_path / "empty-bin", "exit 0")
    assert find_blender() == BlenderCommand("blender", on_path, "PATH")
    # an executable with another name is told apart by its --version
    other = fake_blender(
        tmp_path / "opt", 'echo "Blender 3.4.1"; echo "	build date: 2023-01-05"', name="b3d"
    )
    monkeypatch.setenv(bl.ENV_BLENDER_PYTHON, str(other))
    assert find_blender() == BlenderCommand("blender", other, bl.ENV_BLENDER_PYTHON)
    monkeypatch.setenv(bl.ENV_BLENDER, "blender")  # a command name is looked up on PATH
    assert find_blender() == BlenderCommand("blender", on_path, bl.ENV_BLENDER)
    assert find_blender().argv(Path("s.py"), "fbx", "{}") == [
        str(on_path), "-b", "--factory-startup", "--python-exit-code", "1", "--python", "s.py", "--", "fbx", "{}",
    ]  # fmt: skip
    not_blender = fake_blender(tmp_path / "opt", "echo 'GNU bash, version 5.2'", name="bash5")
    monkeypatch.setenv(bl.ENV_BLENDER, str(not_blender))
    with pytest.raises(MissingDependencyError, match="neither"):
        find_blender()


def test_blender_failure_is_an_export_error_with_its_last_line(no_blender, bvh, tmp_path):
    fake_blender(
        tmp_path / "empty-bin",
        "echo 'Blender 5.0.1 (hash abc)'\n"
        "echo 'Traceback (most recent call last):' >&2\n"
        "echo 'RuntimeError: Error: cannot write the file' >&2\n"
        "echo 'GESTICULATOR_ERROR RuntimeError: Error: cannot write the file' >&2\n"
        "echo 'Blender quit' >&2\n"
        "exit 1",
    )
    out = tmp_path / "out"
    with pytest.raises(ExportError) as e:
        bvh_to_fbx(bvh, out / "m.fbx")
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(
        "Blender failed converting m.bvh to FBX: RuntimeError: Error: cannot write"
    )
    assert list(out.iterdir()) == []  # the temporary file is gone too
    # a crash without the script's marker: the last line of stderr says what happened
    fake_blender(tmp_path / "empty-bin", "echo 'Segmentation fault (core dumped)' >&2; exit 139")
    with pytest.raises(ExportError, match=r"m\.bvh to FBX: Segmentation fault \(core dumped\)"):
        bvh_to_fbx(bvh, out / "m.fbx")
    # success claimed without an answer is a failure as well
    fake_blender(tmp_path / "empty-bin", "exit 0")
    with pytest.raises(ExportError, match="no output"):
        bvh_to_fbx(bvh, out / "m.fbx")
    assert list(out.iterdir()) == []


def test_blender_that_hangs_is_stopped(no_blender, bvh, tmp_path):
    sleep = shutil.which("sleep", path="/usr/bin:/bin")  # PATH is empty here
    fake_blender(tmp_path / "empty-bin", f"exec {sleep} 60")
    with pytest.raises(ExportError, match=r"did not finish converting m\.bvh to FBX within 0\.5 s"):
        bvh_to_fbx(bvh, tmp_path / "out" / "m.fbx", timeout=0.5)
    assert list((tmp_path / "out").iterdir()) == []


def test_script_markers_match():
    script = bl.SCRIPT.read_text(encoding="utf-8")
    assert f'RESULT = "{bl.RESULT_MARKER}"' in script and f'ERROR = "{bl.ERROR_MARKER}"' in script
    # the script must run inside Blender's Python: bpy, mathutils and the standard library only
    imports = set(re.findall(r"^(?:from|import) (\w+)", script, flags=re.M))
    assert imports <= {"bpy", "mathutils", "json", "math", "re", "sys", "traceback"}, imports


def test_axes_by_name_or_vector():
    assert bl.axis_pair("Y", "Z") == ("Y", "Z") and bl.axis_pair("z", "-y") == ("Z", "-Y")
    assert bl.axis_pair(np.array([0, 0, 1.0]), [0, -1.0, 0]) == ("Z", "-Y")  # a rig's axes rows
    with pytest.raises(ExportError, match="lie along one axis"):
        bl.axis_pair("Y", "-Y")
    with pytest.raises(ExportError, match="not along a coordinate axis"):
        bl.axis_pair([0, 0.7, 0.7], "Z")
    with pytest.raises(ExportError, match="not one of"):
        bl.axis_pair("up", "Z")


def test_bvh_units_are_detected():
    assert bl.bvh_scale(np.array([[0, 0, 0], [0, 170.0, 0]])) == 0.01  # centimetres
    assert bl.bvh_scale(np.array([[0, 0, 0], [0, 1.7, 0]])) == 1.0  # metres


# -- with Blender ----------------------------------------------------------------------------------


def fbx_global_setting(fbx: Path, name: str) -> float:
    """A GlobalSettings property of a binary FBX: after its name come three strings (type, label,
    flags) and the value, typed D (double) or I (int32)."""
    data = fbx.read_bytes()
    at = data.index(b"S" + struct.pack("<I", len(name)) + name.encode()) + 5 + len(name)
    for _ in range(3):
        assert data[at : at + 1] == b"S"
        at += 5 + struct.unpack_from("<I", data, at + 1)[0]
    kind = data[at : at + 1]
    return struct.unpack_from("<d" if kind == b"D" else "<i", data, at + 1)[0]


@pytest.mark.blender
def test_smplx_bvh_to_fbx(blender, tmp_path):
    motion = smooth_motion(90)
    bvh = save_bvh(motion, tmp_path / "take.bvh")
    fbx = bvh_to_fbx(bvh, tmp_path / "take.fbx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.bvh", "take.fbx"]  # no temp left
    # what Unity and Unreal read first: metres (UnitScaleFactor 100 = 100 cm per unit), Y up
    # (UpAxis 1) and Z the front axis (FrontAxis 2), as Blender writes "Y up, -Z forward", and
    # 30 fps (TimeMode 6)
    settings = {
        k: fbx_global_setting(fbx, k)
        for k in ("UnitScaleFactor", "UpAxis", "UpAxisSign", "FrontAxis", "FrontAxisSign", "TimeMode")
    }
    assert settings == {
        "UnitScaleFactor": 100.0,
        "UpAxis": 1,
        "UpAxisSign": 1,
        "FrontAxis": 2,
        "FrontAxisSign": 1,
        "TimeMode": 6,
    }

    info = inspect_fbx(fbx, probe=("left_wrist", 40))
    assert info.bones == 55 and set(info.bone_names) == set(JOINT_NAMES)  # no leaf bones added
    assert (info.frame_start, info.frame_end, info.frames, info.fps) == (0, 89, 90, 30.0)
    assert info.action_count == 1 and info.actions[0].endswith("take")
    parents = read_bvh(bvh).parents
    links = len(parents) - 1 + len(set(range(len(parents))) - set(parents))  # joint->child, leaf->tip
    assert info.skinned_meshes == 1 and info.mesh_vertices == 6 * links  # an octahedron per link
    np.testing.assert_allclose(info.armature_scale, 1.0, atol=1e-6)  # units baked in
    rest = read_bvh(bvh).rest_positions() / 100.0
    assert info.height == pytest.approx(np.ptp(rest[:, 1]), abs=1e-4)
    ours = joint_positions(motion)[40, JOINT_NAMES.index("left_wrist")]
    np.testing.assert_allclose(info.probe, zup(ours), atol=1e-4)


@pytest.mark.blender
def test_smplx_fbx_with_the_glb_mesh_in_metres_at_24_fps(blender, tmp_path):
    motion = smooth_motion(48, seed=3, fps=24.0)
    bvh = save_bvh(motion, tmp_path / "m.bvh", units="m")
    glb = save_glb(motion, tmp_path / "m.glb")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # says why when the GLB's mesh was not used
        fbx = bvh_to_fbx(bvh, tmp_path / "m.fbx", glb=glb)
    info = inspect_fbx(fbx, probe=("right_index3", 47))
    assert (info.bones, info.frames, info.frame_start, info.fps) == (55, 48, 0, 24.0)
    assert info.skinned_meshes == 1 and info.mesh_vertices > 20000  # the wooden mannequin
    assert 1.0 < info.height < 2.2  # metres: the BVH's units were recognised
    ours = joint_positions(motion)[47, JOINT_NAMES.index("right_index3")]
    np.testing.assert_allclose(info.probe, zup(ours), atol=1e-4)


@pytest.mark.blender
def test_smplx_export_fbx_through_the_cli(blender, tmp_path):
    motion = smooth_motion(30)
    npz = save_npz(motion, tmp_path / "talk.npz")
    out = tmp_path / "out"
    r = CliRunner().invoke(cli_app, ["export", str(npz), "--to", "bvh,glb,fbx", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["talk.bvh", "talk.fbx", "talk.glb"]
    info = inspect_fbx(out / "talk.fbx")
    assert (info.bones, info.frames, info.fps, info.action_count) == (55, 30, 30.0, 1)
    assert info.skinned_meshes == 1 and info.mesh_vertices > 20000  # the GLB's mannequin


def _rig_params():
    try:
        from gesticulator.rigs import available_rigs
    except ImportError:
        return list(SHIPPED_RIGS)
    return sorted(set(SHIPPED_RIGS) | set(available_rigs()))


@pytest.mark.blender
@pytest.mark.parametrize("rig_name", _rig_params())
def test_shipped_rigs_export_fbx_through_the_cli(blender, rig_name, tmp_path):
    from gesticulator.rigs import load_rig

    motion = smooth_motion(45)
    npz = save_npz(motion, tmp_path / "talk.npz")
    out = tmp_path / "out"
    r = CliRunner().invoke(
        cli_app, ["export", str(npz), "--rig", rig_name, "--to", "bvh,glb,fbx", "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert {"talk.bvh", "talk.glb", "talk.fbx"} <= {p.name for p in out.iterdir()}
    rig = load_rig(rig_name)
    bvh = read_bvh(out / "talk.bvh")
    assert bl.bvh_scale(bvh.rest_positions()) == pytest.approx(rig.unit_scale)
    joint = bvh.names[-1]  # a leaf: every rotation above it shows in its position
    info = inspect_fbx(out / "talk.fbx", probe=(joint, 30))
    assert info.bones == len(rig.names) and set(info.bone_names) == set(rig.names) == set(bvh.names)
    assert (info.frame_start, info.frames, info.fps) == (0, motion.num_frames, motion.fps)
    assert info.action_count == 1 and info.skinned_meshes == 1
    np.testing.assert_allclose(info.armature_scale, 1.0, atol=1e-6)
    # Standing up and facing front whatever the rig's own axes (generic: Z up, facing -Y): the
    # joint where the rig's file puts it, turned into SMPL-X's axes (rig.axes), then Blender's.
    rest = bvh.rest_positions() @ rig.axes.T * rig.unit_scale
    assert info.height == pytest.approx(np.ptp(rest[:, 1]), abs=1e-4)
    p = bvh.world_positions()[30, bvh.names.index(joint)]
    np.testing.assert_allclose(info.probe, zup(rig.axes @ p * rig.unit_scale), atol=1e-4)
