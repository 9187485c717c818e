"""Script -> Piper TTS -> Whisper ASR round trip: are the words right, and are the word times?

For each script: synthesise it (bundled Piper voice), write the wav, transcribe the wav with the
bundled ASR (faster-whisper tiny.en), then
- WER of the ASR words against the script (jiwer; both sides normalised the same way: lower case,
  no punctuation, numbers/symbols spelled out, contractions expanded);
- |TTS word start - ASR word start| over the script words the ASR heard (sequence alignment);
- TTS speed: real-time factor (synthesis seconds / audio seconds).

    python benchmarks/speak_roundtrip.py [--keep DIR]

Targets: WER <= 5 %, median |start difference| <= 0.15 s. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import jiwer
import numpy as np

from gesticulator.speech.align import align_script, merge_word_fragments, normalize_words
from gesticulator.speech.asr import get_transcriber
from gesticulator.speech.markup import script_words, strip_markup
from gesticulator.speech.tts import load_voice, save_speech, speak

SCRIPTS = [
    "Hello everyone! Today I have three big ideas for you. Let's start with the first one.",
    "Our revenue grew by 25% last year. That's 1,200 new customers in 12 months, and we're not done yet.",
    "Dr. Smith arrived at 3:30 p.m. on Monday. She brought two reports, a laptop, and a very old map.",
    "Is this the right way? I'm not sure... Let me check the map again. Yes, turn left at the bridge.",
    "The ticket costs $45, but students pay only $20. Doors open at 7 o'clock; the show starts at 8.",
    "[gesture:thumbs_up] Great work, team! [density:high] We shipped version 2.5 on time. "
    "[no-gesture]Thank you all.[/no-gesture]",
    "First, mix the flour and the sugar. Second, add 3 eggs, one at a time. Finally, bake it for 40 minutes.",
    "In 2019 we had just five people. Now there are more than 300 of us, working in 14 countries around the world.",
]

WER_TARGET = 0.05
START_TARGET = 0.15


def normalized_text(text: str) -> str:
    return " ".join(t for toks in normalize_words(text.split()) for t in toks)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="keep the wavs and transcripts in this folder")
    args = ap.parse_args()

    t0 = time.perf_counter()
    load_voice()
    voice_load = time.perf_counter() - t0
    asr = get_transcriber("default")
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="speak_roundtrip_"))

    rows = []
    all_refs, all_hyps, all_deltas = [], [], []
    tts_time = audio_time = 0.0
    for k, script in enumerate(SCRIPTS):
        result = speak(script)
        wav, _ = save_speech(result, out_dir, stem=f"script{k}")
        heard = asr.transcribe(wav)
        plain, _ = strip_markup(script)
        # Whisper times "1,200" as "1" + ",200"; glue such pieces before scoring (align does too).
        heard_text = " ".join(w.word for w in merge_word_fragments(heard.words))
        ref, hyp = normalized_text(plain), normalized_text(heard_text)
        wer = jiwer.wer(ref, hyp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            aligned = align_script(plain, heard)
        deltas = [
            abs(tts.start - a.start)
            for tts, a, ok in zip(
                result.transcript.words, aligned.transcript.words, aligned.matched, strict=True
            )
            if ok
        ]
        assert len(result.transcript.words) == len(script_words(plain))
        rows.append(
            (
                k,
                len(result.transcript.words),
                result.duration,
                result.synthesis_seconds,
                wer,
                deltas,
                heard_text,
            )
        )
        all_refs.append(ref)
        all_hyps.append(hyp)
        all_deltas += deltas
        tts_time += result.synthesis_seconds
        audio_time += result.duration

    print("| script | words | audio s | TTS RTF | WER | median abs start diff s | p90 s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for k, n, dur, syn, wer, deltas, _ in rows:
        print(
            f"| {k} | {n} | {dur:.1f} | {syn / dur:.3f} | {wer:.1%} | "
            f"{statistics.median(deltas):.3f} | {np.percentile(deltas, 90):.3f} |"
        )
    total_wer = jiwer.wer(all_refs, all_hyps)
    med = statistics.median(all_deltas)
    print(
        f"| **all** | {sum(r[1] for r in rows)} | {audio_time:.1f} | {tts_time / audio_time:.3f} | "
        f"**{total_wer:.1%}** | **{med:.3f}** | {np.percentile(all_deltas, 90):.3f} |"
    )
    print(f"\nvoice load (cold, includes the in-memory alignment patch): {voice_load:.1f} s")
    print(f"targets: WER <= {WER_TARGET:.0%} -> {'met' if total_wer <= WER_TARGET else 'MISSED'}; "
          f"median |start diff| <= {START_TARGET} s -> {'met' if med <= START_TARGET else 'MISSED'}")  # fmt: skip
    for k, *_, text in rows:
        if rows[k][4] > 0:
            print(f"- script {k} heard as: {text}")
    return 0 if total_wer <= WER_TARGET and med <= START_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
