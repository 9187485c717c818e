"""Reference figures for judging generated motion: the real BEAT2 take against two sanity baselines.
Prints markdown tables.

    python benchmarks/motion_reference.py        # ~15 s

Motions (63.5 s each, 30 fps):
- real: the BEAT2 take ../shared/data/beat2_sample/2_scott_0_1_1 (SMPL-X npz), with its own audio;
- rest: the SMPL-X rest pose held still (the floor: no beats, no movement);
- jitter: the real take's mean pose plus independent Gaussian noise (0.05 rad per axis per frame)
  on the upper-body and hand joints (a motion with beats everywhere and no relation to speech).
Audio: the take's own wav, and four other takes of the same speaker (2_scott_0_2_2 ... 0_5_5,
audio only), each cut or zero-padded to the motion's length.

Columns (definitions in gesticulator/eval/metrics.py):
- BC own / BC vs other takes / lift: EMAGE's beat consistency with the default (intended)
  threshold; lift = BC own - mean BC vs the other takes;
- L1 div: upper body + hands (43 joints) and all 55 joints (EMAGE's L1div), pelvis-relative, m;
- hand speed: mean pelvis-relative wrist speed while speaking (TextGrid word times, gaps < 0.5 s
  bridged), m/s; jerk: mean wrist jerk magnitude while speaking, m/s^3;
- frozen: stretches > 2 s while speaking where the upper body moves < 0.05 m/s (count, longest).
A second table gives BC on the real take under EMAGE's code (`emage_compat=True`) and other
normalisations, for comparison with published numbers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "beat2_sample"
TAKE = DATA / "2_scott_0_1_1"
OTHERS = [DATA / f"2_scott_0_{i}_{i}.wav" for i in range(2, 6)]


def baselines(real):
    from gesticulator.motion.skeleton import pose_mask
    from gesticulator.types import Motion

    rest = Motion.rest(real.num_frames, fps=real.fps, betas=real.betas)
    rng = np.random.default_rng(0)
    poses = np.repeat(real.poses.mean(axis=0, keepdims=True), real.num_frames, axis=0)
    cols = pose_mask("upper", "hands")
    poses[:, cols] += rng.normal(0.0, 0.05, size=(real.num_frames, int(cols.sum())))
    trans = np.repeat(real.trans.mean(axis=0, keepdims=True), real.num_frames, axis=0)
    jitter = Motion(poses=poses, trans=trans, betas=real.betas, fps=real.fps)
    return rest, jitter


def main() -> int:
    needed = [TAKE.with_suffix(".npz"), TAKE.with_suffix(".wav"), TAKE.with_suffix(".TextGrid"), *OTHERS]
    missing = [p for p in needed if not p.exists()]
    if missing:
        print(f"motion_reference: research data not present ({missing[0]}); nothing to measure.")
        return 0

    from gesticulator.eval import bc_lift, beat_consistency, motion_stats, speech_mask_from_transcript
    from gesticulator.io import load_npz
    from gesticulator.motion import joint_positions
    from gesticulator.speech.transcripts import read_textgrid

    start = time.perf_counter()
    real = load_npz(TAKE.with_suffix(".npz"))
    mask = speech_mask_from_transcript(read_textgrid(TAKE.with_suffix(".TextGrid")), real.num_frames)
    own = TAKE.with_suffix(".wav")
    rest, jitter = baselines(real)

    rows = []
    positions = {}
    for name, motion in (("real BEAT2 take", real), ("rest pose", rest), ("random jitter", jitter)):
        p = joint_positions(motion)
        positions[name] = p
        lift = bc_lift(p, own, OTHERS)
        stats = motion_stats(p, mask)
        rows.append((name, lift, stats))

    others = [p.stem.replace("2_scott_0_", "take ") for p in OTHERS]
    print(
        f"Reference motion figures: BEAT2 2_scott_0_1_1 ({real.duration:.1f} s, "
        f"speaking {mask.mean():.0%} of frames by its TextGrid)\n"
    )
    header = [
        "motion",
        "BC own",
        *(f"BC vs {o}" for o in others),
        "BC vs others (mean)",
        "lift",
        "L1 div upper+hands (m)",
        "L1 div all 55 (m)",
        "hand speed speaking (m/s)",
        "jerk speaking (m/s³)",
        "frozen > 2 s (count, longest)",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, lift, s in rows:
        cells = [
            name,
            f"{lift.own:.3f}",
            *(f"{o:.3f}" for o in lift.others),
            f"{lift.other_mean:.3f}",
            f"{lift.lift:+.3f}",
            f"{s.l1_diversity:.2f}",
            f"{s.l1_diversity_all:.2f}",
            f"{s.hand_speed:.3f}",
            f"{s.jerk:.1f}",
            f"{s.frozen_count}, {s.frozen_longest:.1f} s",
        ]
        print("| " + " | ".join(cells) + " |")

    p = positions["real BEAT2 take"]
    variants = [
        ("default: intended threshold, pelvis-relative speed table", {}),
        ("EMAGE's code: shifted threshold, world speed table (emage_compat)", {"emage_compat": True}),
        ("intended threshold, world speed table", {"reference_speed": "beat2_world"}),
        ("shifted threshold, pelvis-relative table", {"emage_compat": True, "reference_speed": "beat2"}),
        ("no threshold", {"threshold": 0.0}),
    ]
    print("\nBC of the real take under other settings:\n")
    print("| setting | BC own | BC vs others (mean) | lift |")
    print("|---|---|---|---|")
    for label, options in variants:
        if options:
            lift = bc_lift(p, own, OTHERS, **options)
        else:
            lift = rows[0][1]
        print(f"| {label} | {lift.own:.3f} | {lift.other_mean:.3f} | {lift.lift:+.3f} |")
    unmasked = beat_consistency(p, own, trim=0.0)
    print(f"\n(no 2 s trim: BC own {unmasked:.3f}; computed in {time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
