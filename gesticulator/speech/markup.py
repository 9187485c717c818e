"""Presenter script markup, and what a "word" of a script is.

A presenter writes a plain script and may steer the gestures inline:

    Great news [gesture:thumbs_up] everyone! [density:low] Now the details.
    [no-gesture]Terms and conditions apply.[/no-gesture]

- ``[gesture:ID]``   force gesture ID on the next word;
- ``[no-gesture]`` … ``[/no-gesture]``   no semantic gesture on the words inside;
- ``[density:low|normal|high]``   how often to gesture, from the next word on.

`strip_markup` returns the plain text (what is spoken) and `ScriptMarks` whose word indices refer
to `script_words(plain_text)`: the one tokenisation that TTS, script alignment and the planner
share, so index k means the same word everywhere. Literal brackets are written ``\\[`` ``\\]``.

Every bracket is a tag: a typo such as ``[gestur:x]`` is an error naming the tag and its line and
column, never text that would be read aloud.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from gesticulator.errors import InputFileError

DENSITY_LEVELS = ("low", "normal", "high")
_TAG_NAMES = ("gesture", "no-gesture", "/no-gesture", "density")
_GESTURE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")

# Tokens with no letter or digit are punctuation (a dash, an ellipsis, a quote) and belong to the
# neighbouring word; these symbols however are read aloud ("and", "percent", ...) so they count.
_SPOKEN_SYMBOLS = frozenset("&%+=@$€£#")
# Closing quotes/brackets that may follow sentence-final punctuation: `He said "no."`
_CLOSERS = "\"')]}»”’"
SENTENCE_END = (".", "!", "?", "…")
# Abbreviations whose final period does not end a sentence (lower case, with the period).
ABBREVIATIONS = frozenset(
    "mr. mrs. ms. dr. prof. st. sr. jr. vs. e.g. i.e. approx. fig. no. vol. dept. mt. ft. ave. "
    "inc. ltd. co. corp. jan. feb. mar. apr. jun. jul. aug. sep. sept. oct. nov. dec.".split()
)


class MarkupError(InputFileError):
    """A malformed or unknown markup tag in a script."""


@dataclass(frozen=True)
class GestureMark:
    """Force gesture `gesture` on word `word`."""

    word: int
    gesture: str


@dataclass(frozen=True)
class NoGestureSpan:
    """No semantic gesture on words first_word..last_word (inclusive)."""

    first_word: int
    last_word: int

    def __contains__(self, word: int) -> bool:
        return self.first_word <= word <= self.last_word


@dataclass(frozen=True)
class DensityMark:
    """Gesture density `level` from word `word` on (until the next density mark)."""

    word: int
    level: str


@dataclass
class ScriptMarks:
    """Everything the markup asked for, in word indices of `script_words(plain_text)`."""

    gestures: list[GestureMark] = field(default_factory=list)
    no_gesture: list[NoGestureSpan] = field(default_factory=list)
    density: list[DensityMark] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.gestures or self.no_gesture or self.density)

    def gesture_allowed(self, word: int) -> bool:
        return not any(word in span for span in self.no_gesture)

    def density_at(self, word: int, default: str = "normal") -> str:
        level = default
        for mark in self.density:  # sorted by word
            if mark.word <= word:
                level = mark.level
        return level

    def forced_gesture(self, word: int) -> str | None:
        for mark in self.gestures:
            if mark.word == word:
                return mark.gesture
        return None

    def to_dict(self) -> dict:
        return {
            "gestures": [{"word": m.word, "gesture": m.gesture} for m in self.gestures],
            "no_gesture": [{"first_word": s.first_word, "last_word": s.last_word} for s in self.no_gesture],
            "density": [{"word": m.word, "level": m.level} for m in self.density],
        }


# -- words and sentences ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptWord:
    text: str  # as written, with its punctuation ("Hello," "3.5%" "isn't")
    start: int  # character span in the text
    end: int


def _is_wordlike(token: str) -> bool:
    return any(c.isalnum() for c in token) or any(c in _SPOKEN_SYMBOLS for c in token)


def script_words(text: str) -> list[ScriptWord]:
    """Whitespace tokens; a token with nothing to say ("—", "...", a lone quote) is glued to the
    word before it (or after it, at the very start) so every word is something spoken."""
    tokens = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    words: list[list] = []
    pending: list[tuple[str, int, int]] = []  # leading punctuation waiting for its first word
    for tok, s, e in tokens:
        if _is_wordlike(tok):
            if pending:
                s = pending[0][1]
                tok = "".join(p[0] for p in pending) + tok
                pending = []
            words.append([tok, s, e])
        elif words:
            words[-1][0] += tok
            words[-1][2] = e
        else:
            pending.append((tok, s, e))
    return [ScriptWord(t, s, e) for t, s, e in words]


def strip_closers(word: str) -> str:
    return word.rstrip(_CLOSERS)


def ends_sentence(words: list[str], i: int) -> bool:
    """Does words[i] end a sentence? Terminal punctuation, except after abbreviations ("Dr.",
    "e.g."), single-letter initials ("J.") and before a word that starts in lower case."""
    if i == len(words) - 1:
        return True
    w = strip_closers(words[i]).rstrip(",;:")
    if not w.endswith(SENTENCE_END):
        return False
    if w.endswith(("!", "?")):
        return True
    nxt = words[i + 1].lstrip(_CLOSERS + "\"'(“‘[¿¡-—")
    if nxt[:1].islower() or nxt[:1].isdigit():
        return False
    core = re.sub(r"^\W+", "", w.lower())
    if core in ABBREVIATIONS:
        return False
    if re.fullmatch(r"[a-z]\.", core):  # an initial: "J. R. R. Tolkien"
        return False
    return True


def sentence_spans(words: list[str]) -> list[tuple[int, int]]:
    """(first_word, last_word) of each sentence."""
    spans: list[tuple[int, int]] = []
    first = 0
    for i in range(len(words)):
        if ends_sentence(words, i):
            spans.append((first, i))
            first = i + 1
    return spans


# -- markup ----------------------------------------------------------------------------------------

_TAG_RE = re.compile(r"\\[\[\]]|\[|\]")


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {col}"


def _err(text: str, pos: int, problem: str, fix: str) -> MarkupError:
    if not problem.isprintable():  # keep the message on one line whatever the tag holds
        problem = "".join(c if c.isprintable() else repr(c)[1:-1] for c in problem)
    return MarkupError(f"script markup: {problem} at {_where(text, pos)}", fix)


_MARKUP_HELP = "use [gesture:ID], [no-gesture]…[/no-gesture] or [density:low|normal|high]; write \\[ for a literal bracket"


def strip_markup(text: str) -> tuple[str, ScriptMarks]:
    """The spoken text without tags, and the marks as word indices of `script_words(plain)`."""
    plain: list[str] = []
    plain_len = 0
    last_char = ""  # the last character of the plain text so far
    # (kind, value, plain offset, source position) in order of appearance
    events: list[tuple[str, str, int, int]] = []
    after_tag = False

    def emit(chunk: str) -> None:
        nonlocal plain_len, last_char, after_tag
        # "Great [gesture:x] news" must read "Great news": where a tag sat between two blanks
        # (or at the start), the blanks after it go.
        if after_tag and last_char in ("", " ", "\t", "\n"):
            chunk = chunk.lstrip(" \t")
        if chunk:
            plain.append(chunk)
            plain_len += len(chunk)
            last_char = chunk[-1]
            after_tag = False

    pos = 0
    while (m := _TAG_RE.search(text, pos)) is not None:
        emit(text[pos : m.start()])
        tok = m.group()
        if tok in ("\\[", "\\]"):
            emit(tok[1])
            pos = m.end()
            continue
        if tok == "]":
            raise _err(text, m.start(), "']' without a matching '['", _MARKUP_HELP)
        close = text.find("]", m.end())
        nxt_open = text.find("[", m.end())
        # A tag never spans lines: "[gesture:x" followed by a line break is a missing ']'.
        if close < 0 or (0 <= nxt_open < close) or len(text[m.start() : close + 1].splitlines()) > 1:
            raise _err(
                text, m.start(), f"unclosed tag {text[m.start() : m.start() + 20]!r}", "close it with ']'"
            )
        raw = text[m.start() : close + 1]
        kind, value = _parse_tag(text, m.start(), raw)
        events.append((kind, value, plain_len, m.start()))
        pos = close + 1
        after_tag = True
    emit(text[pos:])
    plain_text = "".join(plain)
    return plain_text, _events_to_marks(text, plain_text, events)


def _parse_tag(text: str, pos: int, raw: str) -> tuple[str, str]:
    inner = raw[1:-1].strip()
    name, sep, value = inner.partition(":")
    name = name.strip().lower().replace("_", "-")
    value = value.strip()
    if name not in _TAG_NAMES:
        close = difflib.get_close_matches(name, _TAG_NAMES, n=1, cutoff=0.6)
        hint = (
            f"did you mean [{close[0]}{':…' if close[0] in ('gesture', 'density') else ''}]?"
            if close
            else _MARKUP_HELP
        )
        raise _err(text, pos, f"unknown tag {raw}", hint)
    if name == "gesture":
        if not value:
            raise _err(text, pos, f"empty gesture id in {raw}", "name a gesture, e.g. [gesture:thumbs_up]")
        if not _GESTURE_ID.fullmatch(value):
            raise _err(
                text, pos, f"bad gesture id {value!r} in {raw}", "ids use letters, digits, '_', '-' and '.'"
            )
        return name, value
    if name == "density":
        if value.lower() not in DENSITY_LEVELS:
            raise _err(
                text,
                pos,
                f"bad density {value!r} in {raw}",
                "use [density:low], [density:normal] or [density:high]",
            )
        return name, value.lower()
    if sep:  # [no-gesture:x]
        raise _err(text, pos, f"{raw} takes no value", f"write [{name}]")
    return name, ""


def _events_to_marks(text: str, plain: str, events: list[tuple[str, str, int, int]]) -> ScriptMarks:
    words = script_words(plain)
    marks = ScriptMarks()

    def next_word(offset: int) -> int | None:
        # The word the tag stands before (a tag inside a word applies to that word).
        for k, w in enumerate(words):
            if w.end > offset:
                return k
        return None

    open_span: tuple[int, int] | None = None  # (plain offset, source position)
    for kind, value, offset, src in events:
        if kind == "gesture":
            k = next_word(offset)
            if k is None:
                raise _err(
                    text,
                    src,
                    f"[gesture:{value}] has no word after it",
                    "put the tag before the word it belongs to",
                )
            marks.gestures.append(GestureMark(k, value))
        elif kind == "density":
            k = next_word(offset)
            if k is None:
                raise _err(
                    text,
                    src,
                    f"[density:{value}] has no word after it",
                    "put the tag before the words it applies to",
                )
            marks.density.append(DensityMark(k, value))
        elif kind == "no-gesture":
            if open_span is not None:
                raise _err(
                    text,
                    src,
                    "[no-gesture] inside another [no-gesture]",
                    "close the first span with [/no-gesture]",
                )
            open_span = (offset, src)
        else:  # /no-gesture
            if open_span is None:
                raise _err(
                    text,
                    src,
                    "[/no-gesture] without an opening [no-gesture]",
                    "add [no-gesture] where the span starts",
                )
            inside = [k for k, w in enumerate(words) if w.start < offset and w.end > open_span[0]]
            if inside:  # an empty span forbids nothing; it is harmless, so it is not an error
                marks.no_gesture.append(NoGestureSpan(inside[0], inside[-1]))
            open_span = None
    if open_span is not None:
        raise _err(text, open_span[1], "unclosed [no-gesture]", "end the span with [/no-gesture]")
    return marks
