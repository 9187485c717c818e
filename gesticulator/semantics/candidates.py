"""Candidate windows: which library gestures each phrase of a transcript might illustrate.

Every sentence is cut into sliding n-gram windows (1..4 words by default, never across a sentence
boundary) plus the whole sentence. Windows made only of function words ("of the", "it is") are
skipped: they carry no meaning a gesture could show. All window texts go to the index in ONE
`search_batch` call (one encoder pass), which keeps a 60 s talk (~150 words, ~500 windows) well
under half a second on CPU.

The result, a list of `CandidateWindow` (see gesticulator.types), is the shared input of every
selector: the embedded one (`EmbeddedSelector`) and the LLM one (`semantics/llm.py`).

    windows = find_candidates(transcript, library, index)
    windows[0]  # CandidateWindow(first_word=0, last_word=0, text="huge", kind="window", hits=[...])

Stability: the signature, the order of the output (per sentence: windows by first word then size,
then the sentence window) and the meaning of the fields are an API; selectors may rely on them.
Sentence windows carry hits for EVERY gesture of the library (not only the top k), so that a
selector can read a sentence-level score for any gesture it considers ("is this trigger supported
by what the sentence is about?").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from gesticulator.types import CandidateHit, CandidateWindow, Transcript

if TYPE_CHECKING:
    from gesticulator.library.index import GestureIndex
    from gesticulator.library.store import Library

DEFAULT_WINDOW_SIZES = (1, 2, 3, 4)

# Deictic and number words: short, frequent, and exactly what deictic / counting gestures show, so
# they are never treated as function words (even where a stopword list would drop them).
DEICTIC_WORDS = frozenset(
    "i me my mine myself i'm i've i'd i'll you your yours yourself yourselves you're you've you'll "
    "you'd y'all here there this that these those up down above below ago later now today tomorrow "
    "yesterday they them".split()
)
NUMBER_WORDS = frozenset(
    "one two three four five first second third fourth fifth firstly secondly thirdly fourthly "
    "fifthly once twice thrice both single pair couple half dozen".split()
)

# Function words: articles, auxiliaries, prepositions, conjunctions, pronouns, fillers. A gesture
# never lands on one of these, and a window made only of them is not searched.
FUNCTION_WORDS = (
    frozenset(
        """a an the and or but nor so yet if then than as of at by for from in into on onto to with
    without about over under out off via per is are was were be been being am do does did doing done
    have has had having will would shall should can could may might it its it's itself he him
    his she her hers we us our ours they their theirs them this that these those who whom whose which
    what when where why how there here just also too very really quite rather well oh um uh er ah
    like yeah okay ok not no any some such own same other another each few more most much many
    all both either neither ever even still again only own s t don't doesn't didn't isn't aren't
    wasn't weren't won't wouldn't can't couldn't shouldn't that's there's here's what's let's
    it'll it'd he's she's we're we've we'll they're they've they'll i you me my your
    get got gets go goes going went make makes made thing things way kind sort lot bit""".split()
    )
    - NUMBER_WORDS
)
# Deictic words the function list holds are still "speakable anchors" for deictic gestures; the
# selector decides (with prosody or context) whether they deserve one. Windows are searched when
# they hold at least one content, deictic or number word.

_EDGE_PUNCT = re.compile(r"^[^\w$%&@#€£']+|[^\w$%&@#€£']+$")


def normalise_word(word: str) -> str:
    """Lower case, curly quotes straightened, leading/trailing punctuation removed
    ("Huge," -> "huge", "“first”" -> "first", "isn't" stays)."""
    w = unicodedata.normalize("NFKC", word).replace("’", "'").replace("‘", "'").lower()
    w = _EDGE_PUNCT.sub("", w)
    return w.strip("'") if w.count("'") != 1 or w.startswith("'") or w.endswith("'") else w


def is_function_word(norm: str) -> bool:
    return norm in FUNCTION_WORDS or not norm


def is_anchor_word(norm: str) -> bool:
    """Can a gesture land on this (normalised) word? Content words, deictic and number words
    (digits too); never function words or empty tokens."""
    if not norm:
        return False
    if norm in DEICTIC_WORDS or norm in NUMBER_WORDS or norm.isdigit():
        return True
    return norm not in FUNCTION_WORDS and any(c.isalnum() for c in norm)


def stem(word: str) -> str:
    """A crude English stem, enough to match inflected triggers ("skyrocketed" ~ "skyrocket")."""
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    for suf in ("ingly", "edly", "ing", "ied", "ies", "ed", "es", "ly", "s"):
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            w = w[: -len(suf)]
            if suf in ("ied", "ies"):
                w += "y"
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":  # "stopped" -> "stopp" -> "stop"
        w = w[:-1]
    return w.rstrip("e")


def trigger_stems(library: Library) -> dict[tuple[str, ...], set[str]]:
    """Each trigger of the library as a tuple of word stems -> the gesture ids it triggers."""
    out: dict[tuple[str, ...], set[str]] = {}
    for g in library.gestures():
        for t in g.triggers:
            toks = tuple(stem(normalise_word(x)) for x in t.split() if normalise_word(x))
            if toks:
                out.setdefault(toks, set()).add(g.id)
    return out


SHORT_WINDOW = 2  # windows up to this many words are always searched; longer ones only on a trigger


def find_candidates(
    transcript: Transcript,
    library: Library,
    index: GestureIndex | None = None,
    *,
    k: int = 8,
    window_sizes: Sequence[int] = DEFAULT_WINDOW_SIZES,
    sentences: bool = True,
) -> list[CandidateWindow]:
    """Sliding n-gram windows of each sentence and whole sentences, each with its top-k gestures.

    `index` defaults to `GestureIndex.for_library(library)` (loaded or built once per call; pass it
    when planning repeatedly). Sentence windows (kind="sentence") carry every gesture's score.
    """
    if index is None:
        from gesticulator.library.index import GestureIndex

        index = GestureIndex.for_library(library)
    norms = [normalise_word(w.word) for w in transcript.words]
    stems = [stem(n) for n in norms]
    # Encoding is the cost (~2 ms per short phrase on CPU): single words and 2-word windows of
    # content words cover single-word triggers and paraphrases; any other window is searched only
    # when it IS a trigger phrase ("on the other hand", "went up"), which keeps a 60 s talk at
    # ~150 phrases instead of ~550.
    triggers = trigger_stems(library)
    windows: list[CandidateWindow] = []
    for si, sent in enumerate(transcript.sentences):
        lo, hi = sent.first_word, sent.last_word
        for first in range(lo, hi + 1):
            for n in sorted(set(window_sizes)):
                last = first + n - 1
                if last > hi:
                    break
                span = [x for x in norms[first : last + 1]]
                # A window must start and end on something searchable and hold a non-function
                # word; "of the" or "and the big" would only add noise or duplicate a neighbour.
                is_trigger = tuple(stems[first : last + 1]) in triggers
                if not span[0] or not span[-1]:
                    continue
                if not any(is_anchor_word(x) for x in span) and not (n > 1 and is_trigger):
                    # all small words: only a phrase trigger made of them ("that's it", "no way")
                    continue
                # Longer windows, and short ones with a function word at an edge ("a huge",
                # "went up"), add nothing over their content words unless they are a trigger.
                edge_fn = not (is_anchor_word(span[0]) and is_anchor_word(span[-1]))
                if (n > SHORT_WINDOW or (n > 1 and edge_fn)) and not is_trigger:
                    continue
                windows.append(
                    CandidateWindow(first_word=first, last_word=last, text=" ".join(span), sentence=si)
                )
        if sentences:
            text = " ".join(w.word for w in transcript.words[lo : hi + 1]).strip()
            if text:
                windows.append(
                    CandidateWindow(first_word=lo, last_word=hi, text=text, sentence=si, kind="sentence")
                )
    if not windows:
        return windows
    # One encoder pass for every distinct text; sentence windows ask for every gesture.
    texts = sorted({w.text for w in windows})
    vectors = _encode_cached(index, texts)
    row = {t: i for i, t in enumerate(texts)}
    n_all = len(index)
    short_texts = sorted({w.text for w in windows if w.kind != "sentence"})
    sent_texts = sorted({w.text for w in windows if w.kind == "sentence"})
    hits: dict[tuple[str, bool], list] = {}
    for group, kk, is_sent in ((short_texts, k, False), (sent_texts, n_all, True)):
        if not group:
            continue
        res = index.search_vectors(vectors[[row[t] for t in group]], kk)
        for t, h in zip(group, res, strict=True):
            hits[(t, is_sent)] = h
    for w in windows:
        w.hits = [
            CandidateHit(
                gesture_id=h.id,
                score=round(float(h.score), 4),
                matched_text=h.matched_text,
                counter=round(float(h.counter), 4),
            )
            for h in hits[(w.text, w.kind == "sentence")]
        ]
    return windows


_VECTOR_CACHE: dict[tuple[str, str], np.ndarray] = {}
_VECTOR_CACHE_MAX = 50_000


def _encode_cached(index: GestureIndex, texts: list[str]) -> np.ndarray:
    """Embed texts once per process: short phrases recur across sentences and talks."""
    name = index.embedder.name
    todo = [t for t in texts if (name, t) not in _VECTOR_CACHE]
    if todo:
        if len(_VECTOR_CACHE) + len(todo) > _VECTOR_CACHE_MAX:
            _VECTOR_CACHE.clear()
        for t, v in zip(todo, index.embedder.encode(todo), strict=True):
            _VECTOR_CACHE[(name, t)] = v
    return np.stack([_VECTOR_CACHE[(name, t)] for t in texts]).astype(np.float32)


__all__ = [
    "SHORT_WINDOW",
    "stem",
    "trigger_stems",
    "DEFAULT_WINDOW_SIZES",
    "DEICTIC_WORDS",
    "FUNCTION_WORDS",
    "NUMBER_WORDS",
    "find_candidates",
    "is_anchor_word",
    "is_function_word",
    "normalise_word",
]
