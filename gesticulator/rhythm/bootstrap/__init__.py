"""The bootstrap corpus: speech from Piper over talk-like text, motion from a procedural co-speech
synthesizer driven by that speech's prosody (issue 6, `gesticulator data bootstrap`).

    from gesticulator.rhythm.bootstrap import build_corpus, synthesize
    summary = build_corpus("data/bootstrap", hours=3.0, seed=0, workers=2)

See `corpus` (layout, reproducibility, resume), `synth` (the motion) and `texts` (the text).
"""

from gesticulator.rhythm.bootstrap.corpus import (
    CorpusSettings,
    CorpusSummary,
    build_corpus,
    main,
    plan_items,
    read_manifest,
)
from gesticulator.rhythm.bootstrap.synth import SynthPlan, SynthSettings, synthesize, synthesize_with_plan
from gesticulator.rhythm.bootstrap.texts import Talk, make_talk

__all__ = [
    "CorpusSettings",
    "CorpusSummary",
    "SynthPlan",
    "SynthSettings",
    "Talk",
    "build_corpus",
    "main",
    "make_talk",
    "plan_items",
    "read_manifest",
    "synthesize",
    "synthesize_with_plan",
]
