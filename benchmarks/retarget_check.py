"""How closely does retargeting follow the source? Prints a markdown table of per-bone direction
error (degrees) between the SMPL-X result and the ZEGGS/BEAT source skeleton.

    python benchmarks/retarget_check.py [--start 10 --end 14]

Uses ../shared/data/zeggs_sample/067_Speech_2_x_1_0.bvh with the shipped `beat_zeggs75` joint
map; skips (exit 0) when the research data is absent. Main bones (each joint to its primary
child) are matched by construction; "folded" bones span a source joint the map skips (Spine3,
Neck1), so the skipped joint's bend shows as error; side bones (pelvis->hips, spine3->collars,
wrist->other knuckles) only match as well as the two skeletons' proportions agree, a constant
offset rather than a motion error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from gesticulator.io.bvh import read_bvh
from gesticulator.library.retarget import Retargeter, load_joint_map
from gesticulator.motion.kinematics import forward_kinematics
from gesticulator.motion.skeleton import JOINT_INDEX

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "zeggs_sample" / "067_Speech_2_x_1_0.bvh"
ARM = tuple(f"{s}_{a}->" for s in ("left", "right") for a in ("shoulder", "elbow", "wrist"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bvh", type=Path, default=SAMPLE)
    ap.add_argument("--joint-map", default="beat_zeggs75")
    ap.add_argument("--start", type=float, default=None, help="seconds (default: whole file)")
    ap.add_argument("--end", type=float, default=None)
    args = ap.parse_args(argv)
    if not args.bvh.is_file():
        print(f"skipped: research data not present ({args.bvh})")
        return 0

    bvh = read_bvh(args.bvh)
    t0 = time.perf_counter()
    rt = Retargeter(bvh, load_joint_map(args.joint_map))
    frames = rt.frame_range(args.start, args.end)
    motion = rt.motion(frames)
    elapsed = time.perf_counter() - t0
    errs = rt.bone_errors(motion, frames, secondary=True)
    bones = rt.bones(secondary=True)

    n = motion.num_frames
    print(f"{args.bvh.name}: {n} frames at {bvh.fps:g} fps ({n / bvh.fps:.1f} s), joint map '{rt.joint_map.name}', "
          f"retargeted in {elapsed:.2f} s ({n / elapsed:.0f} frames/s)\n")  # fmt: skip
    print("| bone (SMPL-X) | source bone | kind | mean ° | max ° |")
    print("|---|---|---|---:|---:|")
    arm = []
    for b in sorted(bones, key=lambda b: (not b.primary, bool(b.folded), b.smplx)):
        e = errs[b.name]
        kind = "side" if not b.primary else (f"folded ({', '.join(b.folded)})" if b.folded else "main")
        src = f"{bvh.names[b.source[0]]}->{bvh.names[b.source[1]]}"
        print(f"| {b.name} | {src} | {kind} | {e.mean():.3f} | {e.max():.3f} |")
        if b.primary and b.name.startswith(ARM):
            arm.append(e)
    # Twist check: the palm's normal (wrist->middle knuckle x pinky->index knuckle) in both skeletons.
    smplx_p = forward_kinematics(motion).positions
    _, src_p = rt.source_world(frames)
    for side in ("left", "right"):
        names = [f"{side}_{n}" for n in ("wrist", "middle1", "pinky1", "index1")]
        if not all(JOINT_INDEX[n] in rt.mapping for n in names):
            continue
        j = [JOINT_INDEX[n] for n in names]
        s = [rt.mapping[k] for k in j]

        def normal(p, i):
            return np.cross(p[:, i[1]] - p[:, i[0]], p[:, i[3]] - p[:, i[2]])

        a, b = normal(smplx_p, j), normal(src_p, s)
        e = np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, axis=-1)))
        print(f"| {side} palm normal | {bvh.names[s[0]]} knuckles | twist | {e.mean():.3f} | {e.max():.3f} |")
    if arm:
        allarm = np.concatenate(arm)
        print(f"\narm bones (upper arm, forearm, hand): mean {allarm.mean():.3f}°, max {allarm.max():.3f}°")
    return 0


if __name__ == "__main__":
    sys.exit(main())
