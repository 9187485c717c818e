"""ASR accuracy and word-timing benchmark on the BEAT2 takes that have word TextGrids.

For each take: WER against the TextGrid words (both sides normalised: lower case, no punctuation,
simple numbers spelled out), word timing error over the words both sides agree on (Levenshtein
alignment of the normalised tokens), real-time factor; plus the cold start (import + model load).

    python benchmarks/asr_beat2.py [--beam 5] [--no-vad] [--raw-times] [--takes 2_scott_0_1_1 ...]

Targets: WER <= 15 %, median |start error| <= 0.10 s. Needs ../shared/data/beat2_sample (research
data, not shipped); exits 0 with a note when it is absent.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "beat2_sample"
TAKES = ["2_scott_0_1_1", "2_scott_0_2_2", "2_scott_0_3_3", "2_scott_0_4_4"]
# MFA marks words it could not align as "spn" (spoken noise): not a word anyone said.
_NOT_WORDS = {"", "spn", "sil", "sp", "<unk>"}


# -- reference words -----------------------------------------------------------------------------


@dataclass
class RefWord:
    word: str
    start: float
    end: float


def read_reference(path: Path) -> list[RefWord]:
    """Words of a BEAT TextGrid: via gesticulator.speech.transcripts when it exists, else a
    minimal parser of the long-format Praat TextGrid "words" tier."""
    try:
        from gesticulator.speech.transcripts import read_textgrid  # written by another module owner
    except ImportError:
        return _parse_textgrid_words(path)
    t = read_textgrid(path)
    return [RefWord(w.word, w.start, w.end) for w in t.words if w.word.strip().lower() not in _NOT_WORDS]


def _parse_textgrid_words(path: Path) -> list[RefWord]:
    tier = None
    xmin = xmax = None
    out: list[RefWord] = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if m := re.match(r'name = "(.*)"', line):
            tier = m.group(1)
        elif tier != "words":
            continue
        elif m := re.match(r"xmin = ([\d.eE+-]+)", line):
            xmin = float(m.group(1))
        elif m := re.match(r"xmax = ([\d.eE+-]+)", line):
            xmax = float(m.group(1))
        elif m := re.match(r'text = "(.*)"', line):
            text = m.group(1).strip()
            if text.lower() not in _NOT_WORDS and xmin is not None and xmax is not None:
                out.append(RefWord(text, xmin, xmax))
    return out


# -- normalisation -------------------------------------------------------------------------------

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number_words(n: int) -> str:
    """0..9999 spelled out; 4-digit numbers 1100-2099 read as years ("nineteen ninety")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if 1100 <= n < 2100 and n % 100 and not 2000 <= n < 2010:
        return f"{_number_words(n // 100)} {_number_words(n % 100)}"
    if n < 1000:
        rest = n % 100
        return f"{_ONES[n // 100]} hundred" + (f" {_number_words(rest)}" if rest else "")
    rest = n % 1000
    return f"{_number_words(n // 1000)} thousand" + (f" {_number_words(rest)}" if rest else "")


def normalise_tokens(text: str) -> list[str]:
    """Lower case, punctuation out (apostrophes inside words kept), hyphens split, numbers spelled."""
    text = text.lower().replace("’", "'").replace("%", " percent")
    text = re.sub(r"[-–—/]", " ", text)
    tokens: list[str] = []
    for tok in text.split():
        tok = re.sub(r"[^\w']", "", tok).strip("'")
        if not tok:
            continue
        if tok.isdigit() and len(tok) <= 4:
            tokens.extend(_number_words(int(tok)).split())
        else:
            tokens.append(tok)
    return tokens


def _tokens_with_times(words) -> tuple[list[str], list[tuple[float, float]]]:
    """Normalised tokens and, per token, the (start, end) of the word it came from."""
    toks, times = [], []
    for w in words:
        for t in normalise_tokens(w.word):
            toks.append(t)
            times.append((w.start, w.end))
    return toks, times


@dataclass
class TakeResult:
    take: str
    duration: float
    seconds: float
    wer: float
    ref_words: int
    matched: int
    start_err: list[float]  # signed, asr - ref
    end_err: list[float]

    @property
    def rtf(self) -> float:
        return self.seconds / self.duration


def evaluate(take: str, transcript, ref: list[RefWord], seconds: float, duration: float) -> TakeResult:
    import jiwer

    hyp_toks, hyp_times = _tokens_with_times(transcript.words)
    ref_toks, ref_times = _tokens_with_times(ref)
    if not hyp_toks:
        return TakeResult(take, duration, seconds, 1.0, len(ref_toks), 0, [], [])
    # One Levenshtein alignment gives both the WER and the word pairs for timing: the words both
    # sides agree on ("equal" runs). (difflib's longest-block matching goes wrong on looped text.)
    out = jiwer.process_words(" ".join(ref_toks), " ".join(hyp_toks))
    start_err, end_err = [], []
    for chunk in out.alignments[0]:
        if chunk.type != "equal":
            continue
        for k in range(chunk.ref_end_idx - chunk.ref_start_idx):
            (rs, re_), (hs, he) = ref_times[chunk.ref_start_idx + k], hyp_times[chunk.hyp_start_idx + k]
            start_err.append(hs - rs)
            end_err.append(he - re_)
    return TakeResult(take, duration, seconds, out.wer, len(ref_toks), len(start_err), start_err, end_err)


def _abs_stats(errs: list[float]) -> tuple[float, float]:
    a = [abs(e) for e in errs]
    return (statistics.median(a), statistics.fmean(a)) if a else (float("nan"), float("nan"))


def table(results: list[TakeResult]) -> str:
    head = (
        "| take | dur (s) | WER | matched | start err median / mean (s) | end err median / mean (s) "
        "| start bias (s) | within 0.1 s | RTF |\n|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]

    def row(name, dur, wer, ref_n, matched, s, e, secs):
        sm, sa = _abs_stats(s)
        em, ea = _abs_stats(e)
        bias = statistics.median(s) if s else float("nan")
        within = sum(abs(x) <= 0.1 for x in s) / max(1, len(s))
        rows.append(
            f"| {name} | {dur:.1f} | {wer:.1%} | {matched}/{ref_n} | {sm:.3f} / {sa:.3f} | {em:.3f} / {ea:.3f} "
            f"| {bias:+.3f} | {within:.0%} | {secs / dur:.3f} |"
        )

    for r in results:
        row(r.take, r.duration, r.wer, r.ref_words, r.matched, r.start_err, r.end_err, r.seconds)
    if len(results) > 1:
        # Overall WER weights each take by its reference length, like one long transcript would.
        n = sum(r.ref_words for r in results)
        wer = sum(r.wer * r.ref_words for r in results) / n
        row(
            "**all**", sum(r.duration for r in results), wer, n, sum(r.matched for r in results),
            [e for r in results for e in r.start_err], [e for r in results for e in r.end_err],
            sum(r.seconds for r in results),
        )  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--model", default="default", help="transcriber name or model folder (default: bundled tiny.en)"
    )
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--no-vad", action="store_true")
    ap.add_argument("--takes", nargs="*", default=TAKES)
    ap.add_argument(
        "--raw-times",
        action="store_true",
        help="Whisper's own word times (no lag correction, no pause snapping)",
    )
    args = ap.parse_args(argv)

    takes = [t for t in args.takes if (DATA / f"{t}.wav").exists() and (DATA / f"{t}.TextGrid").exists()]
    if not takes:
        print(f"BEAT2 sample not present under {DATA}; nothing to benchmark.")
        return 0

    t0 = time.perf_counter()
    from gesticulator.speech.asr import get_transcriber
    from gesticulator.speech.audio import audio_duration

    timing = dict(timing_offset=0.0, refine_timing=False) if args.raw_times else {}
    transcriber = get_transcriber(args.model, beam_size=args.beam, vad=not args.no_vad, **timing)
    transcriber.load()
    cold = time.perf_counter() - t0

    results = []
    for take in takes:
        wav = DATA / f"{take}.wav"
        ref = read_reference(DATA / f"{take}.TextGrid")
        t = time.perf_counter()
        transcript = transcriber.transcribe(wav)
        secs = time.perf_counter() - t
        results.append(evaluate(take, transcript, ref, secs, audio_duration(wav)))

    print(f"\nASR on BEAT2 ({transcriber.source}, beam {args.beam}, vad {'off' if args.no_vad else 'on'}); "
          f"word times {'raw' if args.raw_times else 'refined'}; cold start (import + model load) {cold:.2f} s\n")  # fmt: skip
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
