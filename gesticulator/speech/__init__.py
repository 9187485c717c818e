"""Speech in: audio decoding, speech recognition, transcripts, TTS, alignment and prosody.

Submodules are imported lazily: `import gesticulator.speech` stays cheap (no numpy-heavy or
model imports) until a name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule that defines it
_LAZY = {
    "load_audio": "audio",
    "audio_duration": "audio",
    "probe_audio": "audio",
    "iter_audio_chunks": "audio",
    "save_wav": "audio",
    "AudioInfo": "audio",
    "AudioChunk": "audio",
    "Transcriber": "asr",
    "FasterWhisperTranscriber": "asr",
    "WhisperXTranscriber": "asr",
    "get_transcriber": "asr",
    "transcribe": "asr",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
