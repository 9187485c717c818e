"""gesticulator: speech in, meaningful full-body SMPL-X gesture animation out.

    from gesticulator import Gesticulator
    g = Gesticulator.load()
    g.animate("talk.wav", seed=0).save("out/")

`Gesticulator`, `AnimationResult` and `Timeline` are imported on first use (`gesticulator.api`),
so `import gesticulator` stays fast.
"""

from __future__ import annotations

from typing import Any

from gesticulator.errors import GesticulatorError
from gesticulator.types import Motion

__version__ = "0.1.0"

_LAZY = {
    "Gesticulator": "gesticulator.api",
    "AnimationResult": "gesticulator.api",
    "Timeline": "gesticulator.api",
}

__all__ = ["AnimationResult", "GesticulatorError", "Gesticulator", "Motion", "Timeline", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
