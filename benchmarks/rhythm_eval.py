"""The rhythm model on held-out real data (BEAT2 sample, never trained on), as markdown tables.

    python benchmarks/rhythm_eval.py                    # the shipped default model, seed 0
    python benchmarks/rhythm_eval.py --model runs/x     # another checkpoint / run folder
    python benchmarks/rhythm_eval.py --seeds 0,1,2

Prints tokenizer reconstruction on the BEAT2 take with motion (2_scott_0_1_1), and for the four
audio-only takes (2_scott_0_2_2 ... 0_5_5): BC against own audio and the lift over the other
takes' audio (intended metric and EMAGE's code), L1 diversity, hand speed and jerk while speaking,
frozen stretches, compared with the real take; then the generation speed on a 60 s stretch of
speech after load (median of 3), the issue's real-time-factor target being <= 0.02.
Same as `gesticulator eval --data ../shared/data/beat2_sample`. Skips when ../shared is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "beat2_sample"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--seeds", default="0")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"## Rhythm model evaluation\n\nskipped: {DATA} is absent (BEAT2 sample needed)")
        return 0
    from gesticulator.eval.rhythm import evaluate_rhythm_model
    from gesticulator.rhythm.model import RhythmModel
    from gesticulator.speech.audio import load_audio

    t0 = time.perf_counter()
    model = RhythmModel.load(args.model)
    load_s = time.perf_counter() - t0
    print(f"## Rhythm model evaluation ({args.model}: {model.info.get('name', '?')}, load {load_s:.1f} s)\n")
    for seed in [int(s) for s in args.seeds.split(",")]:
        report = evaluate_rhythm_model(model, DATA, seed=seed)
        print(report.markdown())
        print()

    # speed on 60 s of real speech: two takes joined, features precomputed (then features alone)
    y = np.concatenate(
        [load_audio(DATA / "2_scott_0_2_2.wav", sr=16000), load_audio(DATA / "2_scott_0_3_3.wav")]
    )
    y = y[: 60 * 16000]
    feats = model.features(y)
    gen, fe = [], []
    for _ in range(3):
        a = time.perf_counter()
        model.generate(feats, seconds=60.0, seed=0)
        b = time.perf_counter()
        model.features(y)
        c = time.perf_counter()
        gen.append(b - a)
        fe.append(c - b)
    g, f = float(np.median(gen)), float(np.median(fe))
    print("### Generation speed, 60 s of speech, after load (median of 3)\n")
    print("| stage | seconds | real-time factor |\n|---|---|---|")
    print(f"| generate (GPT + decode) | {g:.2f} | {g / 60:.4f} |")
    print(f"| audio features | {f:.2f} | {f / 60:.4f} |")
    print(f"| total | {g + f:.2f} | {(g + f) / 60:.4f} |")
    print(f"\nTarget: generation RTF <= 0.02 (a minute in <= 1.2 s): {'met' if g / 60 <= 0.02 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
