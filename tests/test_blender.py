"""The exported BVH and GLB open in real Blender with the right bones, frames and pose.

Runs when GESTICULATOR_BLENDER_PYTHON names a Python that has `bpy` (it pins an old numpy, so it
lives in its own environment: `python3 -m venv /opt/bpy && /opt/bpy/bin/pip install bpy`).
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gesticulator.io import save_bvh, save_glb
from gesticulator.motion import JOINT_NAMES, joint_positions

from .conftest import smooth_motion

BLENDER_PYTHON = os.environ.get("GESTICULATOR_BLENDER_PYTHON")
pytestmark = [
    pytest.mark.blender,
    pytest.mark.skipif(not BLENDER_PYTHON, reason="set GESTICULATOR_BLENDER_PYTHON to a Python with bpy"),
]
SCRIPT = Path(__file__).with_name("blender") / "open_check.py"


def blender_open(path: Path, frame: int, joint: str) -> dict:
    r = subprocess.run(
        [BLENDER_PYTHON, str(SCRIPT), str(path), str(frame), joint],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_bvh_and_glb_open_in_blender(tmp_path):
    motion = smooth_motion(90)
    ours = joint_positions(motion)[:, JOINT_NAMES.index("left_wrist")]
    zup = lambda p: np.array([p[0], -p[2], p[1]])  # noqa: E731 - Blender is Z-up

    save_bvh(motion, tmp_path / "m.bvh")
    bvh = blender_open(tmp_path / "m.bvh", 41, "left_wrist")  # BVH frames start at 1 in Blender
    assert bvh["bones"] == 55 and bvh["frame_range"] == [1.0, 90.0]
    np.testing.assert_allclose(bvh["joint_zup"], zup(ours[40]), atol=1e-3)

    save_glb(motion, tmp_path / "m.glb")
    glb = blender_open(tmp_path / "m.glb", 40, "left_wrist")  # glTF time 0 is frame 0
    assert glb["bones"] == 54 and glb["frame_range"] == [0.0, 89.0] and glb["mesh_vertices"] > 20000
    np.testing.assert_allclose(glb["joint_zup"], zup(ours[40]), atol=1e-3)
