"""The rhythm model: beat motion that follows the voice.

    from gesticulator.rhythm import RhythmModel, ForcedSpan
    model = RhythmModel.load("default")
    motion = model.generate("talk.wav", seed=0)

Pieces, one file each (audiocraft's split: codec, language model, thin wrapper):

- `representation`  Motion <-> per-part 6D arrays (upper body 13 joints, hands 30 joints)
- `features`        audio -> token-rate conditioning features (7.5 tokens/s)
- `tokenizer`       `MotionTokenizer`: residual VQ-VAE per part, x4 downsampling
- `lm`              `RhythmGPT`: causal transformer over coarse codes + residual head, `generate`
- `model`           `RhythmModel`: load / generate / encode / decode, forced spans
- `data`            dataset readers (BEAT2 layout, BVH + wav), feature cache, windows
- `train`           `train_rhythm` (tokenizer then GPT, resumable, time budget), `export_checkpoint`

Submodules are imported lazily so `import gesticulator.rhythm` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Sampling defaults: the model's own distribution, untrimmed. A lower temperature or a top-k cut
#: trims the fast, large beats first: on held-out BEAT2 audio (benchmarks/rhythm_eval.py) hand
#: speed was 0.58x the real take at 0.9 / top-k 64 and 0.68x at 1.0 / no cut, BC 0.707 vs 0.741.
#: Here (not in `model`) so the splice settings and the CLI read them without importing torch.
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_K: int | None = None
#: Pauses this long or longer rest (rest-pose codes in their middle); shorter ones from
#: HOLD_PAUSE_SECONDS on are held (`RhythmModel.hold_pauses`).
REST_PAUSE_SECONDS = 1.2
HOLD_PAUSE_SECONDS = 0.5

_LAZY = {
    "RhythmModel": "model",
    "ForcedSpan": "model",
    "audio_features": "features",
    "num_tokens": "features",
    "TOKEN_RATE": "features",
    "FEATURE_DIM": "features",
    "MotionTokenizer": "tokenizer",
    "TokenizerConfig": "tokenizer",
    "RhythmGPT": "lm",
    "GPTConfig": "lm",
    "train_rhythm": "train",
    "export_checkpoint": "train",
    "load_config": "train",
    "RhythmTrainConfig": "train",
    "load_dataset": "data",
    "motion_to_parts": "representation",
    "parts_to_motion": "representation",
}

__all__ = sorted([*_LAZY, "DEFAULT_TEMPERATURE", "DEFAULT_TOP_K", "HOLD_PAUSE_SECONDS", "REST_PAUSE_SECONDS"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
