"""Where the rhythm model's lift comes from: TTS speech (its training domain) vs real speech.

    python benchmarks/rhythm_lift_domains.py --corpus CORPUS [--takes 8] [--seeds 0,1,2]

BC lift (own audio minus the mean over other takes' audio, the intended metric; see
`gesticulator.eval.metrics.bc_lift`) for:
- the bootstrap corpus's own motion on its own TTS audio (what the model was trained to imitate),
  CORPUS being a folder made by `gesticulator data bootstrap` (its last `--takes` takes);
- the default model generating on that TTS audio, with and without the pause hold;
- the default model on the held-out BEAT2 audio takes, with and without the pause hold
  (`hold_pause_seconds`), over `--seeds`.
Each other-audio set is the other takes of the same domain. Skips BEAT2 rows when
../shared/data/beat2_sample is absent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BEAT2 = REPO.parent / "shared" / "data" / "beat2_sample"


def lifts(motions, audios) -> np.ndarray:
    from gesticulator.eval.metrics import bc_lift
    from gesticulator.motion.kinematics import joint_positions

    out = []
    for i, motion in enumerate(motions):
        others = [a for j, a in enumerate(audios) if j != i][:4]
        out.append(bc_lift(joint_positions(motion), audios[i], others).lift)
    return np.asarray(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True, help="a bootstrap corpus folder")
    ap.add_argument("--takes", type=int, default=8)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--model", default="default")
    args = ap.parse_args(argv)
    from gesticulator.io.npz import load_npz
    from gesticulator.rhythm.model import RhythmModel
    from gesticulator.speech.audio import load_audio

    model = RhythmModel.load(args.model)
    seeds = [int(s) for s in args.seeds.split(",")]
    wavs = sorted((args.corpus / "wave16k").glob("*.wav"))[-args.takes :]
    if len(wavs) < 2:
        print(f"need at least 2 takes in {args.corpus / 'wave16k'}")
        return 1
    tts = [load_audio(w, sr=16000) for w in wavs]
    rows = []
    corpus_motion = [load_npz(args.corpus / "smplxflame_30" / f"{w.stem}.npz") for w in wavs]
    rows.append(("bootstrap corpus motion, its TTS audio", lifts(corpus_motion, tts)))
    tts_feats = [model.features(a) for a in tts]
    for label, hold in (("pause hold", {}), ("no hold", {"hold_pause_seconds": None})):
        gen = [
            model.generate(f, seconds=len(a) / 16000, seed=0, **hold)
            for f, a in zip(tts_feats, tts, strict=True)
        ]
        rows.append((f"model, TTS audio, {label} (seed 0)", lifts(gen, tts)))
    if BEAT2.is_dir():
        names = [f"2_scott_0_{k}_{k}" for k in range(2, 6)]
        real = [load_audio(BEAT2 / f"{n}.wav", sr=16000) for n in names]
        feats = [model.features(a) for a in real]
        for label, hold in (
            ("model, BEAT2 audio, pause hold", {}),
            ("model, BEAT2 audio, no hold", {"hold_pause_seconds": None}),
        ):
            per_seed = [
                lifts([model.generate(f, seconds=len(a) / 16000, seed=s, **hold) for f, a in zip(feats, real, strict=True)], real)
                for s in seeds
            ]  # fmt: skip
            rows.append((f"{label} (seeds {args.seeds})", np.concatenate(per_seed)))
    print("| motion, audio | takes x seeds | lift mean | min | max |\n|---|---|---|---|---|")
    for label, v in rows:
        print(f"| {label} | {len(v)} | {v.mean():+.4f} | {v.min():+.3f} | {v.max():+.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
