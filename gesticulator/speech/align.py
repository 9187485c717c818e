"""Give a script's exact wording the timing of a recording of it.

A presenter's script says "3.5%", "Dr. Smith" and "isn't"; the recogniser hears "3.5 percent",
"Doctor Smith" and "is not", and mishears a few words. `align_script_to_words` keeps every script
word (with its punctuation) and takes its start/end from the recognised word it corresponds to:

1. both sides are normalised into comparable tokens (lower case, no punctuation, numbers spelled
   out, symbols and contractions expanded: "3.5%" -> three point five percent, "isn't" -> is not);
2. the two token sequences are aligned: long exact runs are anchored first (difflib), and the
   stretches between anchors are aligned by Needleman-Wunsch with a substitution cost from
   spelling similarity, so "colour"/"color" match but "the"/"a" do not;
3. script words without a match get times interpolated between their matched neighbours (in
   proportion to their length) and confidence 0, so callers can tell measured from guessed.

The fraction of script words found in the recording is reported; under `MISMATCH_THRESHOLD` a
`ScriptMismatchWarning` says the script does not match the audio (it never raises for that).
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass

import numpy as np

from gesticulator.errors import InputFileError
from gesticulator.speech.markup import script_words, sentence_spans, strip_markup
from gesticulator.types import Sentence, Transcript, Word

MISMATCH_THRESHOLD = 0.5  # below this fraction of matched script words, warn
MATCH_SIMILARITY = 0.5  # token similarity from which an aligned pair counts as the same word
# Stretches between anchors larger than this many DP cells fall back to difflib's exact matches
# only: a 2000 x 2000 table is where the O(n*m) alignment stops being instant.
_MAX_DP_CELLS = 4_000_000


class ScriptMismatchWarning(UserWarning):
    """The script and the recording share too few words for the timing to be trusted."""


# -- normalisation ---------------------------------------------------------------------------------

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")]
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip

_CONTRACTIONS = {
    "won't": "will not", "can't": "can not", "cannot": "can not", "shan't": "shall not",
    "ain't": "is not", "let's": "let us", "y'all": "you all", "o'clock": "oclock",
}  # fmt: skip
_S_IS = {"it", "that", "what", "there", "here", "he", "she", "who", "where", "how", "when", "why", "this"}
_SUFFIXES = (
    ("n't", " not"),
    ("'re", " are"),
    ("'ll", " will"),
    ("'ve", " have"),
    ("'m", " am"),
    ("'d", " would"),
)
_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "=": " equals ", "@": " at ", "#": " number "}
_CURRENCY = {"$": "dollars", "€": "euros", "£": "pounds"}
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def number_to_words(n: int) -> list[str]:
    """Cardinal number words: 1234 -> one thousand two hundred thirty four (no "and")."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    for value, name in _SCALES:
        if n >= value:
            rest = number_to_words(n % value) if n % value else []
            return number_to_words(n // value) + [name] + rest
    raise AssertionError("unreachable")


def _ordinal(words: list[str]) -> list[str]:
    last = words[-1]
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return words[:-1] + [last]


def _number_tokens(text: str) -> list[str]:
    """A digit string (maybe with thousands commas, decimals) as words: 3.05 -> three point zero five."""
    whole, _, frac = text.replace(",", "").partition(".")
    out = number_to_words(int(whole)) if whole else []
    if frac:
        out += ["point"] + [_ONES[int(d)] for d in frac]
    return out


def _clock(m: re.Match) -> str:
    hour, minutes = m.group(1), m.group(2)
    suffix = f" {m.group(3)} m" if m.lastindex and m.lastindex >= 3 else ""
    return (hour if minutes == "00" else f"{hour} {minutes}") + suffix


def normalize_word(word: str) -> list[str]:
    """Comparable tokens for one written or recognised word (possibly several, possibly none)."""
    w = word.lower().replace("’", "'").replace("‘", "'").strip()
    w = w.strip("\"'“”«»()[]{}")
    if w in _CONTRACTIONS:
        w = _CONTRACTIONS[w]
    else:
        for suffix, full in _SUFFIXES:
            if w.endswith(suffix) and len(w) > len(suffix):
                w = w[: -len(suffix)] + full
                break
        else:
            if w.endswith("'s") and w[:-2] in _S_IS:
                w = w[:-2] + " is"
    for sym, spoken in _SYMBOLS.items():
        w = w.replace(sym, spoken)
    for sym, spoken in _CURRENCY.items():  # "$3.50" -> "3.50 dollars"
        w = re.sub(re.escape(sym) + rf"\s*({_NUMBER.pattern})", rf"\1 {spoken}", w)
    # Clock times: "3:30" and "3.30pm" are both said "three thirty (p m)".
    # ("8:00" is "eight", without the zeros.)
    w = re.sub(r"\b(\d{1,2})[.:](\d{2})\s*([ap])\.?m\b\.?", _clock, w)
    w = re.sub(r"\b(\d{1,2}):(\d{2})\b", _clock, w)
    w = re.sub(r"(\d)\s*([ap])\.?m\b\.?", r"\1 \2 m", w)  # 3pm, 3 p.m.
    if w in ("pm", "p.m.", "p.m"):
        w = "p m"
    out: list[str] = []
    for piece in re.split(r"[\s\-–—/:]+", w):
        # Letters and numbers that are glued together ("q3", "5th", "1990s") are separate tokens.
        for m in re.finditer(r"(\d+(?:,\d{3})*(?:\.\d+)?)(st|nd|rd|th)?|[^\W\d_]+", piece):
            if m.group(1):
                tokens = _number_tokens(m.group(1))
                out += _ordinal(tokens) if m.group(2) and "." not in m.group(1) else tokens
            else:
                out.append(m.group())
    return out


_AM_PM = re.compile(r"^[ap]\.?m\.?[,.;:!?]*$", re.IGNORECASE)
_DOTTED_CLOCK = re.compile(r"^(\d{1,2})\.(\d{2})$")


def normalize_words(words: list[str]) -> list[list[str]]:
    """`normalize_word` for each word, with the one rule that needs a neighbour: "3.30 p.m." is
    a clock time (three thirty), where "3.30" alone is a decimal."""
    out = []
    for k, w in enumerate(words):
        nxt = words[k + 1] if k + 1 < len(words) else ""
        if _AM_PM.match(nxt) and (m := _DOTTED_CLOCK.match(w.strip())):
            w = f"{m.group(1)}:{m.group(2)}"
        out.append(normalize_word(w))
    return out


# -- sequence alignment ----------------------------------------------------------------------------


def needleman_wunsch(
    sub_cost: np.ndarray, gap_a: np.ndarray, gap_b: np.ndarray
) -> list[tuple[int | None, int | None]]:
    """Global alignment of sequences a (rows) and b (columns).

    sub_cost[i, j]: cost of pairing a[i] with b[j]; gap_a[i]: cost of leaving a[i] unpaired;
    gap_b[j]: likewise for b[j]. Returns the path as (i, j), (i, None) or (None, j) in order.
    Each row is computed with numpy: the in-row gap recurrence D[i,j] = min(T[j], D[i,j-1] + g[j])
    is a running minimum of T[k] - G[k] shifted by the cumulative gap cost G.
    """
    n, m = sub_cost.shape
    gap_a = np.asarray(gap_a, dtype=np.float64)
    gap_b = np.asarray(gap_b, dtype=np.float64)
    G = np.concatenate([[0.0], np.cumsum(gap_b)])  # G[j]: cost of skipping b[:j]
    D = np.empty((n + 1, m + 1))
    D[0] = G
    for i in range(1, n + 1):
        prev = D[i - 1]
        t = np.empty(m + 1)
        t[0] = prev[0] + gap_a[i - 1]
        t[1:] = np.minimum(prev[:-1] + sub_cost[i - 1], prev[1:] + gap_a[i - 1])
        D[i] = G + np.minimum.accumulate(t - G)
    # Backtrace, preferring pairs, then gaps in a, then gaps in b (ties are equally good).
    path: list[tuple[int | None, int | None]] = []
    i, j = n, m
    eps = 1e-9
    while i > 0 or j > 0:
        here = D[i, j]
        if i > 0 and j > 0 and abs(here - (D[i - 1, j - 1] + sub_cost[i - 1, j - 1])) < eps:
            path.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and abs(here - (D[i - 1, j] + gap_a[i - 1])) < eps:
            path.append((i - 1, None))
            i -= 1
        else:
            path.append((None, j - 1))
            j -= 1
    path.reverse()
    return path


def _bigrams(token: str) -> frozenset[str]:
    t = f"#{token}#"
    return frozenset(t[k : k + 2] for k in range(len(t) - 1))


def token_similarity(a: list[str], b: list[str]) -> np.ndarray:
    """(len(a), len(b)) Dice similarity of character bigrams: 1 for equal tokens, ~0.8 for
    colour/color, 0 for unrelated words."""
    ga = [_bigrams(t) for t in a]
    gb = [_bigrams(t) for t in b]
    sim = np.zeros((len(a), len(b)))
    for i, x in enumerate(ga):
        for j, y in enumerate(gb):
            if a[i] == b[j]:
                sim[i, j] = 1.0
            else:
                sim[i, j] = 2 * len(x & y) / (len(x) + len(y))
    return sim


def align_tokens(a: list[str], b: list[str]) -> list[tuple[int, int, float]]:
    """Pairs (i, j, similarity) of tokens of a and b that correspond, in order."""
    pairs: list[tuple[int, int, float]] = []
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    # Anchor on exact runs of 3+ tokens (single "the" matches are left to the DP, which sees them
    # in context); the stretches between anchors are aligned with similarity costs.
    anchors = [blk for blk in sm.get_matching_blocks() if blk.size >= 3 or blk.size == 0]
    ai = bi = 0
    for blk in anchors:
        pairs += _align_gap(a, b, ai, blk.a, bi, blk.b)
        pairs += [(blk.a + k, blk.b + k, 1.0) for k in range(blk.size)]
        ai, bi = blk.a + blk.size, blk.b + blk.size
    return pairs


def _align_gap(
    a: list[str], b: list[str], a0: int, a1: int, b0: int, b1: int
) -> list[tuple[int, int, float]]:
    if a1 <= a0 or b1 <= b0:
        return []
    sa, sb = a[a0:a1], b[b0:b1]
    if len(sa) * len(sb) > _MAX_DP_CELLS:
        sm = difflib.SequenceMatcher(None, sa, sb, autojunk=False)
        return [
            (a0 + blk.a + k, b0 + blk.b + k, 1.0) for blk in sm.get_matching_blocks() for k in range(blk.size)
        ]
    sim = token_similarity(sa, sb)
    # Pairing costs 0 (same) to 2 (unrelated) and a gap 1, so an unrelated pair is no better than
    # leaving both unpaired and a near-miss (sim > 0.5) beats two gaps.
    path = needleman_wunsch(2.0 * (1.0 - sim), np.ones(len(sa)), np.ones(len(sb)))
    return [(a0 + i, b0 + j, float(sim[i, j])) for i, j in path if i is not None and j is not None]


# -- script alignment ------------------------------------------------------------------------------


@dataclass
class ScriptAlignment:
    transcript: Transcript  # the script's words with times; confidence 0 = interpolated
    matched: list[bool]  # per script word: timed from the recording (True) or interpolated
    match_fraction: float  # fraction of script words found in the recording

    @property
    def ok(self) -> bool:
        return self.match_fraction >= MISMATCH_THRESHOLD


def align_script(script_text: str, asr: Transcript) -> ScriptAlignment:
    """The script's words (with punctuation) timed from a transcript of its recording.

    Markup tags in the script are removed first (they are never spoken), so word k here is word
    k of `strip_markup(script_text)[0]`.
    """
    plain, _ = strip_markup(script_text)
    words = [w.text for w in script_words(plain)]
    if not words:
        raise InputFileError("the script has no words to align", "pass the text that was spoken")

    # Flatten both sides into normalised tokens that remember their word.
    s_tok: list[str] = []
    s_owner: list[int] = []
    for k, toks in enumerate(normalize_words(words)):
        s_tok += toks
        s_owner += [k] * len(toks)
    a_tok: list[str] = []
    a_time: list[tuple[float, float]] = []
    a_conf: list[float] = []
    heard = merge_word_fragments(asr.words)
    for w, toks in zip(heard, normalize_words([w.word for w in heard]), strict=True):
        # A recognised word that stands for several tokens ("2024") shares its time among them
        # in proportion to their length.
        lengths = np.array([len(t) for t in toks], dtype=float)
        edges = w.start + (w.end - w.start) * np.concatenate([[0.0], np.cumsum(lengths)]) / max(
            lengths.sum(), 1.0
        )
        for t, s, e in zip(toks, edges[:-1], edges[1:], strict=True):
            a_tok.append(t)
            a_time.append((float(s), float(e)))
            a_conf.append(1.0 if w.confidence is None else w.confidence)

    # Per script word: earliest/latest matched time, and how much of it matched how well.
    n = len(words)
    start = np.full(n, np.inf)
    end = np.full(n, -np.inf)
    score = np.zeros(n)
    for i, j, sim in align_tokens(s_tok, a_tok):
        if sim < MATCH_SIMILARITY:
            continue
        k = s_owner[i]
        start[k] = min(start[k], a_time[j][0])
        end[k] = max(end[k], a_time[j][1])
        score[k] += sim * a_conf[j]
    n_tok = np.bincount(np.asarray(s_owner, dtype=int), minlength=n) if s_owner else np.zeros(n)
    matched = np.isfinite(start)
    confidence = np.where(matched, score / np.maximum(n_tok, 1), 0.0).clip(0.0, 1.0)

    total = asr.duration if asr.duration is not None else (asr.words[-1].end if asr.words else 0.0)
    start, end = _interpolate(words, start, end, matched, total)
    out_words = [
        Word(word=w, start=float(s), end=float(e), confidence=float(c))
        for w, s, e, c in zip(words, start, end, confidence, strict=True)
    ]
    fraction = float(matched.mean())
    sentences = [
        Sentence(
            text=" ".join(words[a : b + 1]),
            start=out_words[a].start,
            end=out_words[b].end,
            first_word=a,
            last_word=b,
        )
        for a, b in sentence_spans(words)
    ]
    transcript = Transcript(
        language=asr.language,
        words=out_words,
        sentences=sentences,
        source=f"script+{asr.source or 'asr'};matched={fraction:.2f}",
        duration=asr.duration,
    )
    if fraction < MISMATCH_THRESHOLD:
        warnings.warn(
            f"the script does not match the audio: only {fraction:.0%} of its {n} words were heard in "
            "the recording; the other word times are interpolated",
            ScriptMismatchWarning,
            stacklevel=3,
        )
    return ScriptAlignment(transcript=transcript, matched=matched.tolist(), match_fraction=fraction)


_FRAGMENT = re.compile(r"^[,.'’:%][\w%]")


def merge_word_fragments(words: list[Word]) -> list[Word]:
    """Glue recogniser word pieces back together: Whisper can time "1,200" as "1" + ",200",
    "3:30" as "3" + ".30", "o'clock" as "o" + "'clock"; a piece that starts with punctuation
    followed by a letter or digit continues the word before it."""
    out: list[Word] = []
    for w in words:
        if out and _FRAGMENT.match(w.word):
            prev = out[-1]
            conf = (
                None
                if prev.confidence is None or w.confidence is None
                else min(prev.confidence, w.confidence)
            )
            out[-1] = Word(
                word=prev.word + w.word, start=prev.start, end=max(prev.end, w.end), confidence=conf
            )
        else:
            out.append(w)
    return out


def align_script_to_words(script_text: str, asr: Transcript) -> Transcript:
    """The script's exact wording with the recording's timing (see `align_script` for details).

    Words with confidence 0 were not heard and have interpolated times; the transcript's
    `source` ends in ``;matched=F`` with F the fraction of script words that were heard.
    """
    return align_script(script_text, asr).transcript


def _interpolate(
    words: list[str], start: np.ndarray, end: np.ndarray, matched: np.ndarray, total: float
) -> tuple[np.ndarray, np.ndarray]:
    """Unmatched runs share the time between their matched neighbours by character length."""
    start, end = start.copy(), end.copy()
    n = len(words)
    k = 0
    while k < n:
        if matched[k]:
            k += 1
            continue
        r = k
        while r < n and not matched[r]:
            r += 1
        lo = end[k - 1] if k > 0 else 0.0
        hi = start[r] if r < n else max(total, lo)
        hi = max(hi, lo)
        lengths = np.array([max(len(re.sub(r"\W", "", w)), 1) for w in words[k:r]], dtype=float)
        edges = lo + (hi - lo) * np.concatenate([[0.0], np.cumsum(lengths)]) / lengths.sum()
        start[k:r], end[k:r] = edges[:-1], edges[1:]
        k = r
    # Overlapping recognised words (rare, from some recognisers) must not give a word that ends
    # before it starts.
    end = np.maximum(end, start)
    return start, end
