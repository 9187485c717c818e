"""How fast are the motion core and the exporters? Prints a markdown table.

    python benchmarks/io_speed.py

Uses the BEAT2 sample motion (../shared/data/beat2_sample/2_scott_0_1_1.npz) when present, else a
synthetic 60 s motion. Each step is timed in a fresh process (cold: imports and model set-up
included) and again warm in this process (best of 3).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _timing import best_of  # benchmarks/ is on sys.path when a script runs

from gesticulator.io import load_npz, read_bvh, save_bvh, save_glb, save_npz
from gesticulator.motion import forward_kinematics, resample
from gesticulator.types import Motion

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "beat2_sample" / "2_scott_0_1_1.npz"


def source_motion() -> tuple[Motion, str]:
    if SAMPLE.exists():
        return load_npz(SAMPLE), "BEAT2 2_scott_0_1_1"
    rng = np.random.default_rng(0)
    t = np.arange(1800)[:, None] / 30
    poses = 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0, 165) * t + rng.uniform(0, 6, 165))
    return Motion(poses=poses, trans=np.zeros((1800, 3)), fps=30), "synthetic 60 s"


def cold(snippet: str, path: Path) -> float:
    """Wall seconds of one step in a fresh interpreter (imports and caches included)."""
    code = (
        "import time; t=time.perf_counter();"
        "from gesticulator.io import load_npz, save_bvh, save_glb, save_npz, read_bvh;"
        "from gesticulator.motion import forward_kinematics;"
        f"m=load_npz({str(path)!r}); {snippet}; print(time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    motion, label = source_motion()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = save_npz(motion, d / "src.npz")
        save_bvh(motion, d / "m.bvh")
        rows = [
            ("load npz", lambda: load_npz(src), "pass"),
            ("forward kinematics (55 joints)", lambda: forward_kinematics(motion), "forward_kinematics(m)"),
            ("resample 30 -> 60 fps (slerp)", lambda: resample(motion, 60), "m.resample(60)"),
            ("save npz", lambda: save_npz(motion, d / "o.npz"), f"save_npz(m, {str(d / 'c.npz')!r})"),
            ("save BVH", lambda: save_bvh(motion, d / "o.bvh"), f"save_bvh(m, {str(d / 'c.bvh')!r})"),
            ("read BVH", lambda: read_bvh(d / "m.bvh"), f"read_bvh({str(d / 'm.bvh')!r})"),
            (
                "save GLB (skinned mesh)",
                lambda: save_glb(motion, d / "o.glb"),
                f"save_glb(m, {str(d / 'c.glb')!r})",
            ),
        ]
        print(f"Motion: {label}, {motion.num_frames} frames, {motion.duration:.1f} s\n")
        print("| step | warm s | cold s (fresh process) | output MB |")
        print("|---|---:|---:|---:|")
        sizes = {"save npz": "o.npz", "save BVH": "o.bvh", "save GLB (skinned mesh)": "o.glb"}
        for name, fn, snippet in rows:
            warm = best_of(fn)
            cold_s = cold(snippet, src)
            size = f"{(d / sizes[name]).stat().st_size / 1e6:.2f}" if name in sizes else ""
            print(f"| {name} | {warm:.3f} | {cold_s:.2f} | {size} |")


if __name__ == "__main__":
    main()
