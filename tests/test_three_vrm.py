"""The VRM Animation (.vrma) written for the `vrm` rig, played by three-vrm (the library web pages
and VRM apps use) in Node: every humanoid bone lands where our own retargeting puts it.

The model is the rig's stand-in GLB made a VRM 1.0 avatar (the `VRMC_vrm` extension naming its
humanoid bones), as a user's VRoid model would be. Skips when Node or tests/three_vrm/node_modules
(`make node-deps`) is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest

from gesticulator.io import load_motion
from gesticulator.resources import example
from gesticulator.rigs import export_to_rig, load_rig, retarget_to_rig

HERE = Path(__file__).parent / "three_vrm"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None or not (HERE / "node_modules" / "@pixiv" / "three-vrm").is_dir(),
    reason="node and tests/three_vrm/node_modules are needed (make node-deps)",
)


def vrm_avatar(rig_glb: Path, vrma: Path, out: Path) -> Path:
    """The rig GLB (skeleton + stand-in mesh) as a VRM 1.0 model: the .vrma's humanoid bones,
    mapped to the GLB's nodes of the same names; its own animation dropped."""
    gltf = pygltflib.GLTF2().load_binary(str(rig_glb))
    animation = pygltflib.GLTF2().load_binary(str(vrma))
    nodes = {n.name: i for i, n in enumerate(gltf.nodes)}
    bones = animation.extensions["VRMC_vrm_animation"]["humanoid"]["humanBones"]
    human = {bone: {"node": nodes[animation.nodes[b["node"]].name]} for bone, b in bones.items()}
    gltf.extensionsUsed = sorted({*(gltf.extensionsUsed or []), "VRMC_vrm"})
    meta = {
        "name": "gesticulator vrm stand-in", "version": "1", "authors": ["gesticulator tests"],
        "licenseUrl": "https://vrm.dev/licenses/1.0/", "avatarPermission": "everyone",
        "commercialUsage": "personalNonProfit", "creditNotation": "required",
        "allowRedistribution": False, "modification": "prohibited",
        "allowExcessivelyViolentUsage": False, "allowExcessivelySexualUsage": False,
        "allowPoliticalOrReligiousUsage": False, "allowAntisocialOrHateUsage": False,
    }  # fmt: skip
    gltf.extensions = {
        **(gltf.extensions or {}),
        "VRMC_vrm": {"specVersion": "1.0", "meta": meta, "humanoid": {"humanBones": human}},
    }
    gltf.animations = []
    gltf.save_binary(str(out))
    return out


def test_vrma_plays_in_three_vrm_where_we_put_every_bone(tmp_path):
    motion = load_motion(example("hello_demo.npz"))
    rig = load_rig("vrm")
    files = export_to_rig(motion, rig, tmp_path, "glb", name="take")
    model = vrm_avatar(files["glb"], files["vrma"], tmp_path / "avatar.vrm")
    frames = [0, 15, 40, 77, motion.num_frames - 1]
    run = subprocess.run(
        [NODE, str(HERE / "play_vrma.mjs"), str(model), str(files["vrma"]), *(f"{k / motion.fps:.6f}" for k in frames)],
        capture_output=True, text=True, timeout=120, cwd=HERE,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    played = json.loads(run.stdout)
    assert played["duration"] == pytest.approx((motion.num_frames - 1) / motion.fps, abs=1e-3)
    ours = retarget_to_rig(motion, rig)
    index = {name: j for j, name in enumerate(rig.skeleton.names)}
    assert len(played["frames"][0]["positions"]) == 52  # body, fingers, legs: every bone mapped
    worst = 0.0
    for k, frame in zip(frames, played["frames"], strict=True):
        for bone, position in frame["positions"].items():
            expected = ours.positions[k, index[bone]] * rig.unit_scale  # the vrm rig: metres, glTF axes
            worst = max(worst, float(np.linalg.norm(np.asarray(position) - expected)))
    print(f"three-vrm vs our retargeting, worst bone: {worst * 1000:.4f} mm")
    assert worst < 1e-4, worst  # float32 keys
    toes = [frame["positions"]["leftToes"][1] for frame in played["frames"]]
    assert min(toes) > 0.0 and max(toes) < 0.05  # standing on the floor, not under it
