"""Round trip SMPL-X -> rig -> SMPL-X for every shipped rig: how much of the motion survives?

    python benchmarks/rig_roundtrip.py [--png docs/rigs_side_by_side.png]

For each rig (mixamo, vrm, vrm0, generic) and motion (the shipped example npz files, plus the
BEAT2 take ../shared/data/beat2_sample/2_scott_0_1_1.npz when present) the motion is retargeted
onto the rig, written as the rig's BVH (text, as a user gets it) and as its GLB, and both are
imported back with the library importer (`retarget_bvh(rig_bvh, rig_map, fps=None)`; the GLB is
evaluated like a viewer and turned into the same kind of BVH first). Columns:

- `BVH` / `GLB`: elbow and wrist positions relative to the pelvis, imported onto the motion's own
  body shape, vs the original: mean / max mm (target: max <= 20 mm);
- `neutral`: the same, imported with the importer's default neutral body (what `library import`
  does), after scaling the pelvis-relative positions to the original's arm length;
- `bone °`: the rig's own bones (each mapped joint to its primary child) vs the SMPL-X bones,
  direction error in degrees, mean / max (0 by construction; nonzero only where the rig folds
  joints the map skips);
- `ms/frame`: retargeting + BVH text + GLB bytes, per frame.

`--png` draws a few frames of the SMPL-X original next to each rig (joint positions read back
from the rig's BVH file, shown in SMPL-X axes, front view) for a visual check.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from gesticulator.io import load_motion
from gesticulator.io.bvh import parse_bvh
from gesticulator.library.retarget import Retargeter, retarget_bvh
from gesticulator.motion import skeleton as sk
from gesticulator.motion.kinematics import forward_kinematics, rest_skeleton
from gesticulator.resources import data_dir
from gesticulator.rigs import available_rigs, load_rig, retarget_to_rig, rig_bvh_text, save_rig_glb
from gesticulator.rigs.readback import read_rig_glb
from gesticulator.types import Motion

REPO = Path(__file__).resolve().parents[1]
BEAT2 = REPO.parent / "shared" / "data" / "beat2_sample" / "2_scott_0_1_1.npz"
J = sk.JOINT_INDEX
ARM_JOINTS = [J[n] for n in ("left_elbow", "right_elbow", "left_wrist", "right_wrist")]


def arm_length(betas: np.ndarray) -> float:
    rest = rest_skeleton(betas).rest_positions
    return float(
        sum(
            np.linalg.norm(rest[J[f"{s}_{b}"]] - rest[J[f"{s}_{a}"]])
            for s in ("left", "right")
            for a, b in (("shoulder", "elbow"), ("elbow", "wrist"))
        )
        / 2
    )


def arm_errors(original: Motion, back: Motion, *, rescale: bool = False) -> np.ndarray:
    """(F, 4) distances (metres) between pelvis-relative elbow/wrist positions."""
    a = forward_kinematics(original).positions
    b = forward_kinematics(back).positions
    a = a[:, ARM_JOINTS] - a[:, :1]
    b = b[:, ARM_JOINTS] - b[:, :1]
    if rescale:
        b = b * arm_length(original.betas) / arm_length(back.betas)
    return np.linalg.norm(a - b, axis=-1)


def fmt(err_m: np.ndarray, unit: str = "cm") -> str:
    scale, digits = (100.0, 2) if unit == "cm" else (1000.0, 4)
    return f"{err_m.mean() * scale:.{digits}f} / {err_m.max() * scale:.{digits}f}"


def motions() -> list[tuple[str, Motion]]:
    out = [(p.name, load_motion(p)) for p in sorted(data_dir("examples").glob("*.npz"))]
    if BEAT2.is_file():
        out.append((BEAT2.name, load_motion(BEAT2)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--png", type=Path, default=None, help="write a side-by-side still here")
    ap.add_argument("--frames", type=int, default=None, help="use only the first N frames of each motion")
    args = ap.parse_args(argv)

    rigs = {name: load_rig(name) for name in available_rigs()}
    print("| rig | motion | frames | BVH mean / max mm | GLB mean / max mm | neutral mean / max cm | "
          "bone ° mean / max | ms/frame |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for motion_name, motion in motions():
            if args.frames:
                motion = Motion(
                    poses=motion.poses[: args.frames],
                    trans=motion.trans[: args.frames],
                    betas=motion.betas,
                    fps=motion.fps,
                )
            for rig_name, rig in rigs.items():
                t0 = time.perf_counter()
                rig_motion = retarget_to_rig(motion, rig)
                text = rig_bvh_text(rig_motion)
                glb = save_rig_glb(rig_motion, Path(tmp) / f"{rig_name}.glb")
                per_frame = (time.perf_counter() - t0) / motion.num_frames * 1e3
                bvh = parse_bvh(text, source=f"{rig_name}.bvh")
                back = retarget_bvh(bvh, rig.joint_map, fps=None, betas=motion.betas)
                err_bvh = arm_errors(motion, back)
                from_glb = parse_bvh(rig_bvh_text(read_rig_glb(glb, rig)), source=f"{rig_name}.glb")
                err_glb = arm_errors(
                    motion, retarget_bvh(from_glb, rig.joint_map, fps=None, betas=motion.betas)
                )
                neutral = arm_errors(motion, retarget_bvh(bvh, rig.joint_map, fps=None), rescale=True)
                rt = Retargeter(bvh, rig.joint_map, betas=motion.betas)
                bones = rt.bone_errors(motion)
                primary = np.concatenate([bones[b.name] for b in rt.bones()])
                worst = max(worst, err_bvh.max(), err_glb.max())
                print(f"| {rig_name} | {motion_name} | {motion.num_frames} | {fmt(err_bvh, 'mm')} | {fmt(err_glb, 'mm')} | "
                      f"{fmt(neutral)} | {primary.mean():.4f} / {primary.max():.4f} | {per_frame:.2f} |")  # fmt: skip
    print(
        f"\nworst elbow/wrist error (BVH and GLB paths, own body shape): {worst * 1000:.4f} mm (target 20 mm)"
    )
    if args.png:
        _, motion = motions()[0]
        draw_side_by_side(motion, rigs, args.png)
        print(f"wrote {args.png}")
    return 0 if worst <= 0.02 else 1


# -- the picture ---------------------------------------------------------------------------------


def draw_side_by_side(motion: Motion, rigs: dict, path: Path, frames: tuple[float, ...] = (0.2, 0.6)) -> None:
    """Columns: SMPL-X, then each rig (joint positions read back from its BVH text, in SMPL-X axes
    and metres); rows: a front and a side view of each picked frame. Each figure stands on its
    own lowest joint (example motions are not always on the floor)."""
    from PIL import Image, ImageDraw

    from gesticulator.io.atomic import atomic_path

    cell, pad = 260, 22
    picks = [int(f * (motion.num_frames - 1)) for f in frames]
    columns: list[tuple[str, np.ndarray, list[int], list[str]]] = [
        ("SMPL-X (original)", forward_kinematics(motion).positions, list(sk.PARENTS), list(sk.JOINT_NAMES))
    ]
    for name, rig in rigs.items():
        bvh = parse_bvh(rig_bvh_text(retarget_to_rig(motion, rig)), source=name)
        pos = bvh.world_positions() @ rig.axes.T * rig.unit_scale  # SMPL-X axes, metres
        columns.append((f"{name} rig", pos, list(bvh.parents), list(bvh.names)))
    views = [(f, view) for f in picks for view in ("front", "side")]
    image = Image.new("RGB", (cell * len(columns), cell * len(views) + pad), (246, 244, 240))
    draw = ImageDraw.Draw(image)
    for c, (label, *_) in enumerate(columns):
        draw.text((c * cell + 10, 6), label, fill=(30, 30, 30))
    scale = cell / 2.15  # metres -> pixels
    for r, (f, view) in enumerate(views):
        top = pad + r * cell
        draw.line([(0, top), (image.width, top)], fill=(220, 216, 208), width=1)
        for c, (_, pos, parents, names) in enumerate(columns):
            p = pos[f]
            # Front: looking at the face, the figure's left (+X) on the viewer's right. Side: seen
            # from the figure's right (camera on -X), forward (+Z) to the viewer's right.
            h = p[:, 0] if view == "front" else p[:, 2]
            h = h - h[0]
            v = p[:, 1] - p[:, 1].min()
            ox, oy = c * cell + cell / 2, top + cell - 12
            draw.line([(c * cell + 12, oy), (c * cell + cell - 12, oy)], fill=(200, 196, 188), width=1)
            for j, parent in enumerate(parents):
                if parent < 0:
                    continue
                name = names[j].lower()  # the body's left in red, its right in blue
                colour = (
                    (200, 70, 60) if "left" in name else (60, 90, 200) if "right" in name else (70, 70, 70)
                )
                a = (ox + h[parent] * scale, oy - v[parent] * scale)
                b = (ox + h[j] * scale, oy - v[j] * scale)
                draw.line([a, b], fill=colour, width=2)
            if c == 0:
                draw.text((c * cell + 10, top + 6), f"frame {f}, {view}", fill=(110, 110, 110))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


if __name__ == "__main__":
    raise SystemExit(main())
