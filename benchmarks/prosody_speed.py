"""How fast is prosody extraction? Prints a markdown table of real-time factors (RTF = compute
seconds / audio seconds, lower is faster; the budget is 0.1 on 2 cores).

    python benchmarks/prosody_speed.py            # ~1 min: includes one run with an empty numba cache
    python benchmarks/prosody_speed.py --quick    # skip the empty-cache run

Audio: the BEAT2 take ../shared/data/beat2_sample/2_scott_0_1_1.wav (64 s) with its TextGrid when
present, else 60 s of synthetic voiced/unvoiced "speech". Columns:
- cold, empty cache: a fresh process whose NUMBA_CACHE_DIR is an empty folder, i.e. the very first
  run after installing (librosa's kernels are JIT-compiled);
- cold, cached: a fresh process reusing the compiled kernels (every later run);
- warm: best of 3 in this process.
Components run in order in the fresh process, so the first one (decode) also pays for importing
numpy/soundfile, and onsets pays for importing librosa and loading or compiling its kernels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _timing import best_of  # benchmarks/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parents[1]
TAKE = REPO.parent / "shared" / "data" / "beat2_sample" / "2_scott_0_1_1"

# Runs in a fresh interpreter. Mode "components": each component in pipeline order, so the first
# librosa step (onsets) also pays for importing librosa and loading or compiling its kernels.
# Mode "<fps>": one end-to-end extract_prosody, timed from before the first import.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from gesticulator.speech import prosody as P
timings = {"import": time.perf_counter() - t0}
wav, textgrid, mode = sys.argv[1], sys.argv[2], sys.argv[3]
transcript = None
if textgrid:
    from gesticulator.speech.transcripts import read_textgrid
    transcript = read_textgrid(textgrid)

def step(name, fn):
    t = time.perf_counter(); out = fn(); timings[name] = time.perf_counter() - t; return out

if mode == "components":
    y, duration = step("decode", lambda: P._prepare(wav, P.SR))
    step("onsets", lambda: P._onsets(y))
    rms = step("rms", lambda: P._rms(y))
    step("f0 (yin)", lambda: P._f0(y, P.FINE_HOP, rms))
else:
    fps = float(mode)
    step(f"extract_prosody fps {mode}", lambda: P.extract_prosody(wav, fps=fps, transcript=transcript))
    timings[f"extract_prosody fps {mode}"] = time.perf_counter() - t0  # imports included
print(json.dumps(timings))
"""


def audio_source(tmp: Path) -> tuple[Path, str, str]:
    wav = TAKE.with_suffix(".wav")
    if wav.exists():
        grid = TAKE.with_suffix(".TextGrid")
        return wav, str(grid) if grid.exists() else "", "BEAT2 2_scott_0_1_1"
    import numpy as np
    import soundfile as sf

    # 60 s alternating 250 ms sawtooth "vowels" (gliding pitch) and 150 ms noise "consonants".
    sr, rng = 16000, np.random.default_rng(0)
    parts = []
    for i in range(150):
        t = np.arange(int(0.25 * sr)) / sr
        f = 120 + 40 * np.sin(i) + 30 * t
        parts.append(0.3 * (2 * ((np.cumsum(f) / sr) % 1.0) - 1))
        parts.append(0.05 * rng.standard_normal(int(0.15 * sr)))
    path = tmp / "synthetic.wav"
    sf.write(path, np.concatenate(parts).astype(np.float32), sr)
    return path, "", "synthetic 60 s"


def fresh_process(wav: Path, grid: str, numba_cache: str, modes: list[str]) -> dict:
    """Timings from one fresh interpreter per mode, merged."""
    env = {**os.environ, "NUMBA_CACHE_DIR": numba_cache}
    timings: dict = {}
    for mode in modes:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(wav), grid, mode],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
        )
        if out.returncode != 0:
            raise SystemExit(f"benchmark child failed:\n{out.stderr}")
        timings.update(json.loads(out.stdout.strip().splitlines()[-1]))
    return timings


def main() -> None:
    quick = "--quick" in sys.argv
    from gesticulator.speech import prosody as P

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        wav, grid, label = audio_source(tmp)
        cache = P.configure_numba_cache() or str(tmp / "numba")
        empty_cache = None
        if not quick:  # every mode gets its own empty cache: each one compiles from scratch
            empty_cache = {}
            for mode in ("components", "30"):
                empty_cache.update(fresh_process(wav, grid, str(tmp / f"empty_cache_{mode}"), [mode]))
        fresh_process(wav, grid, cache, ["30"])  # make sure the user cache is filled
        cached = fresh_process(wav, grid, cache, ["components", "30", "7.5"])

        transcript = None
        if grid:
            from gesticulator.speech.transcripts import read_textgrid

            transcript = read_textgrid(grid)
        y, duration = P._prepare(wav, P.SR)
        rms = P._rms(y)
        warm = {
            "import": 0.0,
            "decode": best_of(lambda: P._prepare(wav, P.SR)),
            "onsets": best_of(lambda: P._onsets(y)),
            "rms": best_of(lambda: P._rms(y)),
            "f0 (yin)": best_of(lambda: P._f0(y, P.FINE_HOP, rms)),
            "f0 (pyin, for reference)": best_of(lambda: P._f0(y, P.FINE_HOP, rms, method="pyin"), 1),
            "extract_prosody fps 30": best_of(
                lambda: P.extract_prosody(wav, fps=30.0, transcript=transcript)
            ),
            "extract_prosody fps 7.5": best_of(
                lambda: P.extract_prosody(wav, fps=7.5, transcript=transcript)
            ),
            "extract_prosody fps 30 from samples": best_of(
                lambda: P.extract_prosody(y, P.SR, fps=30.0, transcript=transcript)
            ),
        }

    rows = list(warm)
    print(
        f"Prosody extraction speed on {label} ({duration:.1f} s audio, {os.cpu_count()} CPUs), RTF = s / audio s\n"
    )
    print("cold = a fresh process; extract_prosody rows there include all imports (the real cold start).\n")
    header = ["step", "cold, empty numba cache", "cold, cached", "warm"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))

    def cell(d: dict | None, key: str) -> str:
        if d is None or key not in d:
            return "-"
        s = d[key]
        return f"{s:.2f} s ({s / duration:.3f}x)"

    for key in rows:
        print(f"| {key} | {cell(empty_cache, key)} | {cell(cached, key)} | {cell(warm, key)} |")


if __name__ == "__main__":
    main()
