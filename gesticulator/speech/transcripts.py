"""Read word-timed transcripts from the formats people have, and write ours.

- ``.json``: the documented schema ``{"language": "en", "words": [{"word", "start", "end"}, ...]}``
  (a bare list of words is accepted too);
- ``.TextGrid``: Praat, long or short text format, UTF-8 or UTF-16 (BEAT/BEAT2 and
  Montreal-Forced-Aligner word tiers): the tier named like "words" is used, else the first
  interval tier; empty and silence intervals are skipped;
- ``.srt`` / ``.vtt``: subtitle cues. Cues only time whole lines, so each cue's time is shared
  among its words in proportion to their length (source "srt"/"vtt", confidence None); styling
  tags, speaker labels, sound descriptions and cue settings are removed.

Every malformed file gives a one-line `InputFileError` naming the file and, where it can, the line.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import warnings
from pathlib import Path

from pydantic import ValidationError

from gesticulator.errors import ExportError, InputFileError
from gesticulator.io.atomic import write_text_atomic
from gesticulator.io.text import decode_text
from gesticulator.types import Transcript, Word


class TranscriptWarning(UserWarning):
    """A transcript that is usable but odd: words out of time order, or (given with a recording)
    words that do not fit it."""


TRANSCRIPT_SUFFIXES = (".json", ".textgrid", ".srt", ".vtt")
# Interval labels aligners use for "no word here".
_SILENCE_LABELS = {"", "sil", "sp", "spn", "<sil>", "<sp>", "<eps>", "<unk>", "{sl}", "#", "<p:>"}


def read_transcript(path: str | os.PathLike) -> Transcript:
    """A `Transcript` from a .json, .TextGrid, .srt or .vtt file (chosen by suffix)."""
    p = Path(path).expanduser()
    readers = {".json": _read_json, ".textgrid": _read_textgrid, ".srt": _read_srt, ".vtt": _read_vtt}
    suffix = p.suffix.lower()
    if suffix not in readers:
        raise InputFileError(
            f"{p.name}: unknown transcript format {p.suffix or '(no suffix)'!r}",
            "use a .json, .TextGrid, .srt or .vtt file",
        )
    return in_time_order(readers[suffix](p, _load_text(p)), p.name)


def in_time_order(transcript: Transcript, name: str) -> Transcript:
    """The transcript with its words sorted by (start, end) and its sentences rebuilt, with a
    `TranscriptWarning`, when they are not in time order (an edited or concatenated file):
    sentences are spans of word indices, so words out of order made a sentence that ends before
    it starts. Sentences given in the file refer to the old order and are rebuilt too."""
    words = transcript.words
    if all(b.start >= a.start for a, b in zip(words, words[1:], strict=False)):
        return transcript
    warnings.warn(
        f"{name}: words are not in time order; sorted them by start time — check the transcript",
        TranscriptWarning,
        stacklevel=3,
    )
    return Transcript(
        language=transcript.language,
        words=sorted(words, key=lambda w: (w.start, w.end)),
        source=transcript.source,
        duration=transcript.duration,
    )


def read_json_transcript(path: str | os.PathLike) -> Transcript:
    p = Path(path).expanduser()
    return in_time_order(_read_json(p, _load_text(p)), p.name)


def read_textgrid(path: str | os.PathLike) -> Transcript:
    """Words of a Praat TextGrid (whatever its suffix): the "words" tier, else the first interval tier."""
    p = Path(path).expanduser()
    return in_time_order(_read_textgrid(p, _load_text(p)), p.name)


def read_srt(path: str | os.PathLike) -> Transcript:
    p = Path(path).expanduser()
    return in_time_order(_read_srt(p, _load_text(p)), p.name)


def read_vtt(path: str | os.PathLike) -> Transcript:
    p = Path(path).expanduser()
    return in_time_order(_read_vtt(p, _load_text(p)), p.name)


def _load_text(p: Path) -> str:
    if not p.exists():
        raise InputFileError(f"transcript file not found: {p}", "check the path")
    if p.is_dir():
        raise InputFileError(
            f"{p} is a folder, not a transcript", "pass a .json, .TextGrid, .srt or .vtt file"
        )
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputFileError(f"cannot read {p}: {e.strerror}", "check the file's permissions") from e
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise InputFileError(f"{p.name} is empty", "pass a transcript with at least one word")
    return _decode(p, data)


def write_transcript(transcript: Transcript, path: str | os.PathLike) -> Path:
    """Write the transcript as JSON (the documented schema), atomically."""
    p = Path(path)
    if p.suffix.lower() != ".json":
        raise ExportError(
            f"cannot write a transcript as {p.suffix or 'a file without suffix'}",
            "transcripts are written as .json",
        )
    return write_text_atomic(p, transcript.model_dump_json(indent=2) + "\n")


def _decode(p: Path, data: bytes) -> str:
    """Text from bytes: BOMs first (Praat writes UTF-16 with a BOM), then UTF-8, then (old Praat
    files, Windows editors) Windows-1252 with a warning; see `gesticulator.io.text`."""
    return decode_text(data, p.name)


def _bad(p: Path, problem: str, fix: str, line: int | None = None) -> InputFileError:
    where = f"{p.name} line {line}" if line else p.name
    return InputFileError(f"{where}: {_one_line(problem)}", fix)


def _one_line(s: str) -> str:
    """Escape line breaks and other unprintable characters that came from the file (a JSON key
    with a newline, a label with a form feed) so the error stays on one line."""
    return s if s.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


# -- JSON ------------------------------------------------------------------------------------------


def _read_json(p: Path, text: str) -> Transcript:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _bad(p, f"not valid JSON ({e.msg}, column {e.colno})", "fix the JSON syntax", e.lineno) from e
    except RecursionError:
        raise _bad(p, "JSON nested too deeply", _JSON_FIX) from None
    except ValueError as e:  # e.g. an integer literal beyond Python's 4300-digit limit
        raise _bad(p, f"not valid JSON ({str(e).splitlines()[0][:80]})", "fix the JSON values") from None
    if isinstance(data, list):
        data = {"words": data}
    if not isinstance(data, dict):
        raise _bad(p, f"expected a JSON object with 'words', got {type(data).__name__}", _JSON_FIX)
    if "words" not in data:
        raise _bad(p, "no 'words' list", _JSON_FIX)
    try:
        t = Transcript.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"]).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        raise _bad(p, f"{loc or 'transcript'}: {msg}" + _bad_value(err), _JSON_FIX) from None
    if not t.source:
        t.source = "json"
    return t


_JSON_FIX = 'expected {"language": "en", "words": [{"word": "Hello", "start": 0.0, "end": 0.42}, ...]}'


def _bad_value(err: dict) -> str:
    if err.get("type") in ("missing", "extra_forbidden") or "input" not in err:
        return ""
    value = repr(err["input"])
    return f" (got {value[:40]})" if not isinstance(err["input"], dict | list) else ""


# -- Praat TextGrid --------------------------------------------------------------------------------

# A TextGrid (long or short text format) is a stream of values; the long format only adds
# "key =" labels and "[n]" indices. Tokenising the values alone reads both formats the same way.
_TG_TOKEN = re.compile(
    r'"(?P<str>(?:[^"]|"")*)"|(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<flag><exists>|<absent>)'
    r"|\[[^\]\n]*\]|!.*|[A-Za-z_][A-Za-z_0-9?]*|\s+|.",
)


class _TokenStream:
    def __init__(self, p: Path, text: str):
        self.p = p
        self.tokens: list[tuple[str, str, int]] = []  # (kind, value, line)
        line = 1
        for m in _TG_TOKEN.finditer(text):
            kind = m.lastgroup
            if kind == "str":
                self.tokens.append(("str", m.group("str").replace('""', '"'), line))
            elif kind in ("num", "flag"):
                self.tokens.append((kind, m.group(kind), line))
            line += m.group().count("\n")
        self.pos = 0

    def _next(self, expected: str) -> tuple[str, str, int]:
        if self.pos >= len(self.tokens):
            last = self.tokens[-1][2] if self.tokens else None
            raise _bad(
                self.p,
                f"TextGrid ends early (expected {expected})",
                "the file is cut off; re-export it from Praat",
                last,
            )
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def string(self, what: str) -> str:
        kind, value, line = self._next(what)
        if kind != "str":
            raise _bad(self.p, f"expected {what} (a quoted string), found {value!r}", _TG_FIX, line)
        return value

    def number(self, what: str) -> tuple[float, int]:
        kind, value, line = self._next(what)
        if kind != "num":
            raise _bad(self.p, f"expected {what} (a number), found {value!r}", _TG_FIX, line)
        x = float(value)
        if not math.isfinite(x):  # "1e999" tokenises as a number but overflows to inf
            raise _bad(self.p, f"{what} is out of range: {value[:40]}", _TG_FIX, line)
        return x, line

    def count(self, what: str) -> int:
        x, line = self.number(what)
        if x < 0 or x != int(x):
            raise _bad(self.p, f"{what} must be a whole number >= 0, found {x:g}", _TG_FIX, line)
        return int(x)

    def flag(self) -> str:
        kind, value, line = self._next("<exists>")
        if kind != "flag":
            raise _bad(self.p, f"expected <exists>, found {value!r}", _TG_FIX, line)
        return value


_TG_FIX = "save it from Praat as a text file (long or short format)"


def _read_textgrid(p: Path, text: str) -> Transcript:
    ts = _TokenStream(p, text)
    if ts.string('File type "ooTextFile"') != "ooTextFile":
        raise _bad(p, "not a Praat text file (no 'ooTextFile' header)", _TG_FIX, 1)
    if (cls := ts.string('Object class "TextGrid"')) != "TextGrid":
        raise _bad(p, f"object class is {cls!r}, not 'TextGrid'", _TG_FIX, 2)
    _xmin, _ = ts.number("xmin")
    xmax, _ = ts.number("xmax")
    if ts.flag() == "<absent>":
        raise _bad(p, "the TextGrid has no tiers", "export the grid with its word tier")
    n_tiers = ts.count("the number of tiers")
    tiers: list[tuple[str, list[tuple[float, float, str, int]]]] = []
    for _ in range(n_tiers):
        tier_class = ts.string("a tier class")
        name = ts.string("a tier name")
        ts.number("tier xmin")
        ts.number("tier xmax")
        size = ts.count("the number of intervals")
        if tier_class == "IntervalTier":
            items = []
            for _ in range(size):
                start, line = ts.number("interval xmin")
                end, _ = ts.number("interval xmax")
                label = ts.string("interval text")
                items.append((start, end, label, line))
            tiers.append((name, items))
        elif tier_class == "TextTier":  # point tier: time + mark; not words, skip it
            for _ in range(size):
                ts.number("point time")
                ts.string("point mark")
        else:
            raise _bad(p, f"unknown tier class {tier_class!r}", _TG_FIX)
    if not tiers:
        raise _bad(p, "no interval tier (only point tiers)", "add a word tier with intervals")

    name, items = _word_tier(tiers)
    words: list[Word] = []
    for start, end, label, line in items:
        label = label.strip()
        if label.lower() in _SILENCE_LABELS:
            continue
        if end < start or start < 0:
            raise _bad(p, f"interval {label!r} in tier {name!r} has bad times {start}..{end}", _TG_FIX, line)
        words.append(Word(word=label, start=start, end=end))
    if not words:
        raise _bad(p, f"the word tier {name!r} has no words", "pass a TextGrid with a labelled word tier")
    return Transcript(words=words, source="textgrid", duration=max(xmax, words[-1].end))


def _word_tier(tiers: list) -> tuple:
    for name, items in tiers:
        if name.strip().lower() in ("words", "word"):
            return name, items
    for name, items in tiers:
        if "word" in name.lower():
            return name, items
    return tiers[0]


# -- SRT / WebVTT ----------------------------------------------------------------------------------

# Hours are bounded (a thousand years of video) so a corrupt timing is an error, not an overflow.
_TIME = r"(?:(\d{1,7}):)?(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
_CUE_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(.*)$")
# Speaker labels: "JOHN:", "DR. SMITH:" (all capitals) or ">> " / "- " dialogue markers.
_SPEAKER = re.compile(r"^\s*(?:>>+\s*|-\s+|[A-Z][A-Z0-9 .'\-]{1,30}:\s+)")
_SOUND = re.compile(r"\[[^\]]*\]|\([^)]*\)|♪+")  # [MUSIC], (laughs), ♪


def _seconds(groups: tuple) -> float:
    h, m, s, ms = groups
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def _clean_cue_line(line: str) -> str:
    line = re.sub(r"<[^>]*>", " ", line)  # <i>, <b>, <font ...>, <v Speaker>, <c.x>, <00:01.500>
    line = re.sub(r"\{\\[^}]*\}", " ", line)  # ASS override tags some SRTs carry: {\an8}
    line = html.unescape(line)
    line = _SPEAKER.sub("", line)
    return _SOUND.sub(" ", line)


def _cue_words(text: str, start: float, end: float) -> list[Word]:
    tokens = [t for t in text.split() if any(c.isalnum() for c in t)]
    if not tokens:
        return []
    # Cues time whole lines only: share the cue among its words by character count (longer words
    # take longer to say), which is closer to speech than equal shares.
    weights = [len(t) for t in tokens]
    total = sum(weights)
    out, t = [], start
    for tok, wgt in zip(tokens, weights, strict=True):
        nxt = t + (end - start) * wgt / total
        out.append(Word(word=tok, start=round(t, 4), end=round(nxt, 4), confidence=None))
        t = nxt
    return out


def _read_cues(p: Path, lines: list[str], first: int, fmt: str) -> Transcript:
    """Cue blocks (optional id line, timing line, text lines) separated by blank lines."""
    words: list[Word] = []
    i = first
    n = len(lines)
    last_end = 0.0
    while i < n:
        if not lines[i].strip():
            i += 1
            continue
        block_start = i
        block = []
        while i < n and lines[i].strip():
            block.append(lines[i])
            i += 1
        if fmt == "vtt" and re.match(r"^(NOTE|STYLE|REGION)\b", block[0]):
            continue
        k = next((j for j, ln in enumerate(block[:2]) if "-->" in ln), None)
        if k is None:
            raise _bad(
                p, f"cue without a timing line (expected 'start --> end', found {block[0].strip()[:40]!r})",
                f"fix the {fmt.upper()} cue", block_start + 1,
            )  # fmt: skip
        m = _CUE_TIMING.match(block[k])
        if not m:
            raise _bad(
                p, f"bad cue timing {block[k].strip()[:60]!r}",
                "timings look like 00:00:01,000 --> 00:00:02,500", block_start + k + 1,
            )  # fmt: skip
        start, end = _seconds(m.groups()[0:4]), _seconds(m.groups()[4:8])
        if end < start:
            raise _bad(
                p,
                f"cue ends ({end:.3f}s) before it starts ({start:.3f}s)",
                "fix the cue timing",
                block_start + k + 1,
            )
        # Roll-up captions overlap: start a cue's words no earlier than the previous cue's end.
        start = max(start, min(last_end, end))
        text = " ".join(_clean_cue_line(ln) for ln in block[k + 1 :])
        cue = _cue_words(text, start, end)
        if cue:
            words += cue
            last_end = end
    if not words:
        raise _bad(p, "no spoken words in any cue", f"pass a {fmt.upper()} file with text in its cues")
    return Transcript(words=words, source=fmt, duration=last_end)


def _read_srt(p: Path, text: str) -> Transcript:
    return _read_cues(p, text.splitlines(), 0, "srt")


def _read_vtt(p: Path, text: str) -> Transcript:
    lines = text.splitlines()
    if not lines or not re.match(r"^WEBVTT(\s|$)", lines[0].lstrip("\ufeff")):
        raise _bad(p, "not a WebVTT file (the first line must be 'WEBVTT')", "add the WEBVTT header", 1)
    # The header block runs to the first blank line.
    i = 1
    while i < len(lines) and lines[i].strip():
        i += 1
    return _read_cues(p, lines, i, "vtt")
