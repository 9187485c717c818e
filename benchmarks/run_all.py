"""Run every benchmark and print their tables: python benchmarks/run_all.py"""

import runpy
from pathlib import Path

HERE = Path(__file__).resolve().parent
# asr_long_audio.py (a 60-minute file, ~10 minutes) and long_audio_rss.py (animate on 60 minutes,
# ~5 minutes) are left out; run them on their own.
for name in (
    "io_speed.py",
    "render_speed.py",
    "library_search.py",
    "retarget_check.py",
    "asr_beat2.py",
    "speak_roundtrip.py",
    "prosody_speed.py",
    "semantic_accuracy.py",
    "motion_reference.py",
    "rhythm_eval.py",
    "animate_eval.py",
    "batch_throughput.py",
):
    print(f"\n## {name}\n", flush=True)
    runpy.run_path(str(HERE / name), run_name="__main__")
