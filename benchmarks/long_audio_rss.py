"""Hour-long speech through `gesticulator animate`: peak memory (RSS) and wall time by length.

Builds N minutes of speech by looping real speech with its word timings into a WAV and a matching
word-timed transcript (each loop's word times shifted by its offset): the BEAT2 takes in
../shared/data/beat2_sample that have TextGrids (read in place, never copied), or without them a
few sentences spoken by the bundled Piper voice with its own word timings. Then it runs
`gesticulator animate WAV --transcript JSON --formats npz` as a fresh process per length and
records that process's peak RSS (VmHWM, the kernel's high-water mark of its own memory, which it
reports as it exits; ru_maxrss from wait4 where /proc is missing) and its wall time, and prints a
table. Not ru_maxrss alone: a child started by vfork counts its parent's resident set until it
execs, so measured from a big process (a test session that loaded Whisper) every length read
~1.9 GB. Lengths are measured one after the other, never in parallel.

    python benchmarks/long_audio_rss.py                  # 1, 10 and 60 minutes, with the transcript
    python benchmarks/long_audio_rss.py --minutes 3 10   # other lengths
    python benchmarks/long_audio_rss.py --asr            # without a transcript: speech recognition too

An hour takes ~6 minutes of wall time on 2 CPU cores (with --asr add ~8 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BEAT2 = REPO.parent / "shared" / "data" / "beat2_sample"
TAKES = ["2_scott_0_1_1", "2_scott_0_2_2", "2_scott_0_3_3", "2_scott_0_4_4"]
SR = 16000
GAP_SECONDS = 0.5  # silence between loops
TTS_TEXT = (
    "Good morning everyone, and thank you for coming. Today I want to talk about three big ideas. "
    "First, our city needs more trees. Second, the buses should run all night. "
    "And third, every school deserves a library. So let me explain why each one matters to you."
)


@dataclass
class Source:
    samples: np.ndarray  # mono float32 at 16 kHz
    words: list[tuple[str, float, float]]  # (word, start, end) seconds
    name: str


def sources() -> list[Source]:
    """The BEAT2 takes with word TextGrids when present, else Piper TTS speech."""
    from gesticulator.speech.audio import load_audio
    from gesticulator.speech.transcripts import read_textgrid

    takes = [t for t in TAKES if (BEAT2 / f"{t}.wav").exists() and (BEAT2 / f"{t}.TextGrid").exists()]
    if takes:
        out = []
        for t in takes:
            words = [(w.word, w.start, w.end) for w in read_textgrid(BEAT2 / f"{t}.TextGrid").words]
            out.append(Source(load_audio(BEAT2 / f"{t}.wav", SR), words, f"BEAT2 {t}"))
        return out
    import soxr

    from gesticulator.speech.tts import speak

    speech = speak(TTS_TEXT, seed=0)
    samples = soxr.resample(speech.samples.astype(np.float32), speech.sample_rate, SR).astype(np.float32)
    words = [(w.word, w.start, w.end) for w in speech.transcript.words]
    return [Source(samples, words, "Piper TTS")]


def build(wav: Path, transcript: Path, minutes: float, srcs: list[Source] | None = None) -> tuple[float, int]:
    """Loop the sources into `wav` (written as it goes: one loop in memory at a time) and their
    words, shifted, into `transcript`. Returns (seconds, words)."""
    import soundfile as sf

    srcs = srcs or sources()
    target = int(minutes * 60 * SR)
    gap = np.zeros(int(GAP_SECONDS * SR), np.float32)
    words: list[dict] = []
    written, k = 0, 0
    with sf.SoundFile(str(wav), "w", samplerate=SR, channels=1, subtype="PCM_16", format="WAV") as f:
        while written < target:
            src = srcs[k % len(srcs)]
            chunk = src.samples[: target - written]
            offset = written / SR
            f.write(chunk)
            written += len(chunk)
            end = written / SR
            words += [
                {"word": w, "start": round(s + offset, 3), "end": round(e + offset, 3)}
                for w, s, e in src.words
                if e + offset <= end
            ]
            pad = gap[: target - written]
            f.write(pad)
            written += len(pad)
            k += 1
    transcript.write_text(json.dumps({"language": "en", "words": words}))
    return written / SR, len(words)


@dataclass
class Run:
    minutes: float
    words: int
    wall_s: float
    peak_rss_mb: float
    returncode: int
    timings: dict
    stderr: str


# Runs the CLI and, at exit, writes this process's VmHWM (kB) to $GESTICULATOR_HWM_FILE.
_HWM_WRAPPER = """
import atexit, os, runpy, sys

def _report_hwm():
    try:
        with open("/proc/self/status") as status:
            kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
        with open(os.environ["GESTICULATOR_HWM_FILE"], "w") as out:
            out.write(kb)
    except (OSError, StopIteration):
        pass

atexit.register(_report_hwm)
sys.argv = ["gesticulator", *sys.argv[1:]]
runpy.run_module("gesticulator.cli", run_name="__main__")
"""


def measure(wav: Path, transcript: Path | None, out: Path, *extra: str) -> Run:
    """`gesticulator animate` in its own process: wall time and that process's peak RSS."""
    cmd = [sys.executable, "-c", _HWM_WRAPPER, "animate", str(wav), "-o", str(out), "--formats", "npz"]
    if transcript is not None:
        cmd += ["--transcript", str(transcript)]
    cmd += list(extra)
    with tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        hwm_file = Path(tmp) / "hwm"
        env = {**os.environ, "GESTICULATOR_HWM_FILE": str(hwm_file)}
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (ru_maxrss in KB)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
        peak_kb = float(hwm_file.read_text()) if hwm_file.is_file() else float(usage.ru_maxrss)
    timeline = out / "timeline.json"
    timings = json.loads(timeline.read_text())["timings"] if timeline.is_file() else {}
    words = len(json.loads(transcript.read_text())["words"]) if transcript is not None else 0
    seconds = float(json.loads(timeline.read_text())["inputs"]["duration"]) if timeline.is_file() else 0.0
    return Run(seconds / 60, words, wall, peak_kb / 1024, proc.returncode, timings, stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0, 60.0])
    ap.add_argument("--asr", action="store_true", help="also run without a transcript (speech recognition)")
    ap.add_argument("--keep", type=Path, help="keep the generated audio, transcripts and outputs here")
    args = ap.parse_args(argv)

    srcs = sources()
    print(
        f"speech: {', '.join(s.name for s in srcs)} ({sum(len(s.samples) for s in srcs) / SR:.0f} s), looped"
    )
    rows: list[tuple[str, Run]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for minutes in args.minutes:
            wav, tr = folder / f"speech_{minutes:g}min.wav", folder / f"speech_{minutes:g}min.json"
            seconds, n = build(wav, tr, minutes, srcs)
            print(f"built {seconds / 60:.1f} min, {n} words ({wav.stat().st_size / 1e6:.0f} MB)", flush=True)
            modes = [("transcript", tr)] + ([("ASR", None)] if args.asr else [])
            for mode, transcript in modes:
                run = measure(wav, transcript, folder / f"out_{minutes:g}min_{mode}")
                if run.returncode != 0:
                    print(f"  {mode}: FAILED (exit {run.returncode})\n{run.stderr[-2000:]}")
                    return 1
                print(f"  {mode}: {run.wall_s:.0f} s, peak RSS {run.peak_rss_mb:.0f} MB", flush=True)
                rows.append((mode, run))

    print("\n| audio (min) | words given | mode | wall (s) | RTF | peak RSS (MB) | slowest stages (s) |")
    print("|---|---|---|---|---|---|---|")
    for mode, r in rows:
        top = sorted(r.timings.items(), key=lambda kv: -kv[1])[:3]
        stages = ", ".join(f"{k} {v:.0f}" for k, v in top)
        words = r.words if mode == "transcript" else "-"
        print(
            f"| {r.minutes:.1f} | {words} | {mode} | {r.wall_s:.0f} | {r.wall_s / (r.minutes * 60):.3f} "
            f"| {r.peak_rss_mb:.0f} | {stages} |"
        )
    given = [r for m, r in rows if m == "transcript"]
    if len(given) >= 2:
        a, b = given[-2], given[-1]
        slope = (b.peak_rss_mb - a.peak_rss_mb) / max(b.minutes - a.minutes, 1e-9)
        print(
            f"\npeak RSS grows {slope:.1f} MB per minute of audio between {a.minutes:g} and {b.minutes:g} min"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
