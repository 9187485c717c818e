"""The default semantic selector: picks gestures from candidate windows without any LLM.

Evidence, strongest first:

1. **Trigger match** – a window's words equal one of the gesture's triggers (after lower-casing,
   punctuation stripping and light stemming: "skyrocketed" ~ "skyrocket"). Longer triggers win
   over shorter ones they contain ("right away" beats "right", "wait a second" beats "second").
2. **Semantic match** – no trigger matches but the window's embedding score is very high (a
   paraphrase such as "gigantic" for a "huge" trigger). The index score is a soft maximum that
   exceeds 1 when several texts agree, so the bar sits near 1 (`semantic_threshold`).
3. **Sentence support** – every candidate must be supported by the whole sentence: the sentence's
   score for that gesture (sentence windows score every gesture) must reach a floor. This is what
   keeps idioms quiet: in "I'm a big fan of jazz" "big" matches big_wide exactly, but the sentence
   is not about size, and its big_wide score stays low.

Then rules: the stroke lands on a content, deictic or number word (never "of", "the", "is"), on
the word of the window that carries the meaning; pronoun pointing (I/me/my -> point_self,
you/your -> point_you) and lone here/there only when stressed (prosody) or in a clear reference,
and with lower priority than content gestures; enumerations ("first… second…", "three reasons",
digits) -> count_N. Finally `schedule` enforces density (a gesture budget over sliding time
windows, keeping the most confident events), minimum spacing and no back-to-back repeats.

    sel = EmbeddedSelector(library, density="normal")
    events = sel.select(transcript, find_candidates(transcript, library, index))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gesticulator.semantics.candidates import is_anchor_word, normalise_word, stem, trigger_stems
from gesticulator.semantics.scorer import KINDS, CandidateScorer
from gesticulator.types import CandidateWindow, Prosody, SemanticEvent, Transcript

if TYPE_CHECKING:
    from gesticulator.library.store import Library
    from gesticulator.speech.markup import ScriptMarks

# Semantic gestures per minute of each density level (a lively presenter makes one every 4-5 s),
# and the sliding window the budget is counted over.
DENSITY_PER_MINUTE = {"low": 6.0, "normal": 15.0, "high": 24.0}
BUDGET_WINDOW_S = 20.0
# The same gesture twice in a row is a repeat only this close together (apexes, seconds):
# "three ideas… third" may both count three; "huge… huge" two seconds apart may not.
REPEAT_WINDOW_S = 6.0
# Seconds between two strokes: two-handed gestures / both one-handed / either a head gesture.
MIN_SPACING = 1.0
ONE_HAND_SPACING = 0.8
HEAD_SPACING = 0.6

POINT_SELF_WORDS = frozenset("i me my mine myself i'm i've i'd i'll".split())
POINT_YOU_WORDS = frozenset("you your yours yourself yourselves you're you've you'll you'd".split())
WEAK_DEICTIC_WORDS = frozenset("here there this that they them those".split())
# Idioms in which a pronoun is a filler, never a reference ("you know", "I mean").
_PRONOUN_FILLERS = {("you", "know"), ("i", "mean"), ("i", "guess"), ("you", "see"), ("thank", "you")}

ORDINALS = {"first": 1, "firstly": 1, "second": 2, "secondly": 2, "third": 3, "thirdly": 3,
            "fourth": 4, "fourthly": 4, "fifth": 5, "fifthly": 5}  # fmt: skip
CARDINALS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
COUNT_IDS = {1: "count_one", 2: "count_two", 3: "count_three", 4: "count_four", 5: "count_five"}
COUNT_NUMBER = {v: k for k, v in COUNT_IDS.items()}
# A count continuing a run of counts ("first… second…") outranks a content gesture it collides
# with: a list that skips "second" reads as a mistake, a missed "huge" does not.
ENUMERATION_CONFIDENCE = 0.98
# "one of them", "two more", "no one": a number that does not enumerate
# A number is part of a bigger number ("two hundred", "three million", "five percent"), or a
# label after a noun that names a place or an item of a series ("platform two", "gate three",
# "page four", "room five"): neither is a speaker counting on their fingers.
_SCALE_WORDS = (
    "hundred hundreds thousand thousands million millions billion billions trillion dozen percent %"
)
_NOT_COUNTED_NEXT = frozenset(f"of another day more {_SCALE_WORDS} point".split())
_NOT_COUNTED_PREV = frozenset(
    "no any every some the this that which each platform gate page room floor terminal track "
    "channel bus route exit apartment suite seat row table figure appendix version".split()
)
WH_WORDS = frozenset("why what how where which who".split())
# Quantity words that show a count as clearly as a number does ("both teams", "a single line").
COUNT_QUANTITY_WORDS = frozenset("both single twice pair couple".split())
_COUNT_QUANTITY_STEMS = frozenset(stem(w) for w in COUNT_QUANTITY_WORDS)
# A one-word trigger whose window scores below this matched by stem only, not by meaning.
STEM_ONLY_MIN_SCORE = 0.9
# "a second", "for a second": a moment, not an enumeration; "second fiddle", "first hand": idioms
_ORDINAL_TIME_PREV = frozenset("a one split".split())
_ORDINAL_IDIOM_NEXT = frozenset(
    "fiddle hand hand-hand nature thought thoughts guess guessing opinion wind sight glance person class rate".split()
)
# A question word asking a real question gets the open-palms question gesture; "how many",
# "how much", "what time" ask for a fact, and a speaker rarely shrugs at them.
_FACT_QUESTION_NEXT = frozenset("many much long old time".split())
# "give me/us": a request, not an offer
_REQUEST_OBJECTS = frozenset("me us".split())
# With the learned scorer the evidence floors are looser: it sees more candidates and decides.
POOL_TRIGGER_FLOOR = 0.53  # the hand-set floor: what keeps "a big fan" quiet
POOL_SEMANTIC_THRESHOLD = 0.80
POOL_SEMANTIC_FLOOR = 0.40


@dataclass
class Candidate:
    """One proposed event before scheduling."""

    gesture_id: str
    word_index: int
    score: float  # the window's similarity for this gesture
    sentence_score: float
    confidence: float
    kind: str  # trigger | semantic | count | deictic
    trigger_len: int  # words in the matched trigger (0 for semantic)
    reason: str
    window_size: int = 1  # words in the window that proposed it
    word_score: float = 0.0  # the anchor word's own (1-word window) score for the gesture
    stem_only: bool = False  # a one-word trigger matched by its stem, not its exact form
    features: dict[str, float] | None = None  # what the learned scorer reads (`candidate_features`)


class EmbeddedSelector:
    """Choose semantic gesture events from candidate windows (the default, LLM-free selector).

    Thresholds (tuned on the dev split of tests/data/semantic_sentences.yaml, see
    benchmarks/semantic_accuracy.py):

    - `trigger_floor`: a trigger match needs the sentence's score for its gesture >= this;
    - `semantic_threshold`: a non-trigger window needs a score >= this (and the sentence >=
      `semantic_floor`);
    - `stress_threshold`: prosody word emphasis at which a pronoun counts as stressed;
    - `min_spacing` / `one_hand_spacing` / `head_spacing`: seconds between strokes (two-handed /
      both one-handed / either a head gesture);
    - `density`: low | normal | high | "none" (no budget; spacing and repeat rules still apply).
    """

    name = "embedded"

    def __init__(
        self,
        library: Library,
        *,
        trigger_floor: float = 0.53,
        semantic_threshold: float = 0.95,
        semantic_floor: float = 0.55,
        stress_threshold: float = 0.6,
        min_spacing: float = MIN_SPACING,
        one_hand_spacing: float = ONE_HAND_SPACING,
        head_spacing: float = HEAD_SPACING,
        density: str = "normal",
        pronoun_gestures: bool = True,
        scorer: CandidateScorer | str | None = "default",
    ):
        self.library = library
        # The learned evidence combiner (`gesticulator.semantics.scorer`): it sees a wider pool of
        # candidates (looser floors) and keeps those whose probability of being right clears its
        # threshold. None: the hand-set floors above decide alone.
        self.scorer = CandidateScorer.load() if scorer == "default" else scorer
        self.semantic_hits = 2  # a window's top hits that may propose a paraphrase
        if self.scorer is not None:
            self.semantic_hits = 3
            trigger_floor = min(trigger_floor, POOL_TRIGGER_FLOOR)
            semantic_threshold = min(semantic_threshold, POOL_SEMANTIC_THRESHOLD)
            semantic_floor = min(semantic_floor, POOL_SEMANTIC_FLOOR)
        self.trigger_floor = trigger_floor
        self.semantic_threshold = semantic_threshold
        self.semantic_floor = semantic_floor
        self.stress_threshold = stress_threshold
        self.min_spacing = min_spacing
        self.one_hand_spacing = one_hand_spacing
        self.head_spacing = head_spacing
        self.density = density
        self.pronoun_gestures = pronoun_gestures
        # trigger stems -> gesture ids, and each gesture's handedness / category
        self._handedness = {g.id: g.handedness for g in library.gestures()}
        self.category = {g.id: g.category for g in library.gestures()}
        self._triggers = trigger_stems(library)  # trigger stems -> gesture ids
        self._max_trigger_len = max((len(t) for t in self._triggers), default=1)

    # -- public -------------------------------------------------------------------------------------
    def select(
        self,
        transcript: Transcript,
        windows: Sequence[CandidateWindow],
        marks: ScriptMarks | None = None,
        prosody: Prosody | None = None,
        *,
        density: str | None = None,
    ) -> list[SemanticEvent]:
        """Events sorted by time. `marks` (script markup): [no-gesture] spans are honoured and
        [density:…] changes the budget from its word on; forced [gesture:…] marks are applied by
        the Planner. `density` overrides the selector's default level."""
        cands = self.propose(transcript, windows, marks, prosody)
        if self.scorer is not None:
            probs = self.scorer.probability([c.features for c in cands])
            for c, p in zip(cands, probs, strict=True):
                c.confidence = float(p)
            # "First… second… third…": an enumeration is structure, not a word's meaning; a count
            # that continues a run of counts in the talk is kept and wins its word.
            numbers = {(c.word_index, COUNT_NUMBER[c.gesture_id]) for c in cands if c.kind == "count"}
            for c in cands:
                if c.kind == "count" and any(
                    abs(n - COUNT_NUMBER[c.gesture_id]) == 1 and i != c.word_index for i, n in numbers
                ):
                    c.confidence = max(c.confidence, ENUMERATION_CONFIDENCE)
            cands = [c for c in cands if c.confidence >= self.scorer.threshold]
        best = self._resolve(cands)
        events = [self._event(c, transcript, prosody) for c in best]
        return schedule(
            events,
            transcript,
            handedness=self._handedness,
            density=density or self.density,
            marks=marks,
            min_spacing=self.min_spacing,
            one_hand_spacing=self.one_hand_spacing,
            head_spacing=self.head_spacing,
        )

    def propose(
        self,
        transcript: Transcript,
        windows: Sequence[CandidateWindow],
        marks: ScriptMarks | None = None,
        prosody: Prosody | None = None,
    ) -> list[Candidate]:
        """Every candidate event the evidence and rules allow (before one-per-word resolution and
        scheduling), each with its `features` for the learned scorer."""
        words = transcript.words
        norms = [normalise_word(w.word) for w in words]
        stems = [stem(n) for n in norms]
        emphasis = None
        if prosody is not None and len(prosody.word_emphasis) == len(words):
            emphasis = [float(x) for x in prosody.word_emphasis]
        sent_scores: dict[int, dict[str, float]] = {}
        sent_counters: dict[int, dict[str, float]] = {}  # likeness to each gesture's counter-examples
        uni: dict[int, dict[str, float]] = {}  # 1-word window scores, to find the meaning word
        for w in windows:
            if w.kind == "sentence":
                sent_scores[w.sentence] = {h.gesture_id: h.score for h in w.hits}
                sent_counters[w.sentence] = {h.gesture_id: h.counter for h in w.hits}
            elif w.first_word == w.last_word:
                uni[w.first_word] = {h.gesture_id: h.score for h in w.hits}

        # Title Case inside a sentence is a name ("the cafe is called Thumbs Up", "Big Ben"): a
        # trigger spelled that way is not meant.
        first_words = {s.first_word for s in transcript.sentences}
        titled = [
            i not in first_words
            and w.word.lstrip("\"'“‘(")[:1].isupper()
            and norms[i] not in POINT_SELF_WORDS
            for i, w in enumerate(words)
        ]
        cands: list[Candidate] = []
        for w in windows:
            if w.kind == "sentence":
                continue
            if w.last_word > w.first_word and all(titled[w.first_word : w.last_word + 1]):
                continue
            cands += self._window_candidates(w, norms, stems, sent_scores.get(w.sentence, {}), uni)
        cands += self._count_candidates(transcript, norms)
        cands += self._speech_act_candidates(transcript, norms)
        cands = [c for c in cands if self._rules_ok(c, transcript, norms, emphasis)]
        if marks is not None:
            cands = [c for c in cands if marks.gesture_allowed(c.word_index)]
        rivals: dict[int, set[str]] = {}
        for c in cands:
            rivals.setdefault(c.word_index, set()).add(c.gesture_id)
        # the 2-4 word windows holding each word, with their scores per gesture
        phrases: dict[int, list[dict[str, float]]] = {}
        phrase_counters: dict[int, list[dict[str, float]]] = {}
        for w in windows:
            if w.kind != "sentence" and w.last_word > w.first_word:
                hits = {h.gesture_id: h.score for h in w.hits}
                counters = {h.gesture_id: h.counter for h in w.hits}
                for i in range(w.first_word, w.last_word + 1):
                    phrases.setdefault(i, []).append(hits)
                    phrase_counters.setdefault(i, []).append(counters)
        for c in cands:
            c.features = candidate_features(
                c, transcript, norms, sent_scores, self.category, len(rivals[c.word_index]) - 1, sent_counters
            )
            # Is the word's phrase more like one of the gesture's counter-examples ("stop by")?
            c.features["context_counter"] = max(
                (cs.get(c.gesture_id, 0.0) for cs in phrase_counters.get(c.word_index, ())), default=0.0
            )
            # Does the meaning survive the word's neighbours? "big" alone is big_wide; "a big fan"
            # is not. The best score for the gesture of a 2-4 word window holding the word.
            context = max(
                (hits.get(c.gesture_id, 0.0) for hits in phrases.get(c.word_index, ())), default=c.word_score
            )
            c.features["context_score"] = context
            c.features["context_drop"] = max(0.0, max(c.word_score, c.score) - context)
        return cands

    # -- evidence -----------------------------------------------------------------------------------
    def _window_candidates(self, w, norms, stems, sent, uni) -> list[Candidate]:
        out: list[Candidate] = []
        span = range(w.first_word, w.last_word + 1)
        key = tuple(stems[i] for i in span)
        trig_ids = self._triggers.get(key, set())
        scores = {h.gesture_id: h for h in w.hits}
        for gid in trig_ids:
            s = scores[gid].score if gid in scores else 1.0
            ss = sent.get(gid, 0.0)
            if len(key) == 1 and s < STEM_ONLY_MIN_SCORE:
                # only the crude stem matched ("touch" ~ "touched"): the word itself must also
                # mean the gesture, by its own embedding score
                continue
            # idioms: the trigger's word is there but the sentence is not about the gesture's
            # meaning ("a big fan of jazz") -> its sentence-level score stays low
            # numbers are literal: "a single line" counts whatever the sentence is about
            counted = gid.startswith("count_") and (len(key) >= 2 or key[0] in _COUNT_QUANTITY_STEMS)
            if ss < self.trigger_floor and not counted:
                continue
            anchor = self._anchor(w, gid, norms, uni)
            if anchor is None:
                continue
            conf = _sigmoid((ss - self.trigger_floor) / 0.06) * min(1.0, 0.75 + 0.1 * len(key))
            out.append(
                Candidate(
                    gid,
                    anchor,
                    s,
                    ss,
                    conf,
                    "trigger",
                    len(key),
                    f"trigger '{w.text}' ({s:.2f}; sentence {ss:.2f}) in '{_ctx(norms, w)}'",
                    window_size=len(key),
                    word_score=uni.get(anchor, {}).get(gid, 0.0),
                    stem_only=len(key) == 1 and norms[w.first_word] != key[0],
                )  # fmt: skip
            )
        for h in w.hits[: self.semantic_hits]:
            if h.gesture_id in trig_ids or h.score < self.semantic_threshold:
                continue
            if _fragment_of(key, h.matched_text):
                # "right" ~ "exactly right": a piece of a trigger phrase, not a paraphrase of it
                continue
            ss = sent.get(h.gesture_id, 0.0)
            if ss < self.semantic_floor:
                continue
            anchor = self._anchor(w, h.gesture_id, norms, uni)
            if anchor is None:
                continue
            conf = _sigmoid((h.score - self.semantic_threshold) / 0.05) * _sigmoid(
                (ss - self.semantic_floor) / 0.05
            )
            out.append(
                Candidate(
                    h.gesture_id,
                    anchor,
                    h.score,
                    ss,
                    conf,
                    "semantic",
                    0,
                    f"'{w.text}' ~ '{h.matched_text}' ({h.score:.2f}; sentence {ss:.2f})",
                    window_size=len(key),
                    word_score=uni.get(anchor, {}).get(h.gesture_id, 0.0),
                )  # fmt: skip
            )
        return out

    def _anchor(self, w: CandidateWindow, gid: str, norms, uni) -> int | None:
        """The word of the window that carries the gesture's meaning: the anchor-able word whose
        own (1-word) score for the gesture is highest; ties and unknowns go to the first one."""
        best, best_s = None, -1.0
        for i in range(w.first_word, w.last_word + 1):
            n = norms[i]
            if not self._anchorable(n, norms, i):
                continue
            s = uni.get(i, {}).get(gid, 0.0)
            if s > best_s:
                best, best_s = i, s
        if best is None and w.last_word > w.first_word and norms[w.first_word]:
            # a phrase trigger made only of small words ("that's it", "no way", "all of it")
            # carries its meaning as a whole: stroke where it starts
            return w.first_word
        return best

    def _anchorable(self, n: str, norms, i: int) -> bool:
        # Function words never carry a stroke; question words may (checked in _rules_ok: only in
        # a question), and so may a leading "No" ("No, that's wrong").
        return is_anchor_word(n) or n in WH_WORDS or (n == "no" and (i == 0 or not norms[i - 1]))

    def _count_candidates(self, transcript: Transcript, norms) -> list[Candidate]:
        """Enumerations: ordinals, small cardinals before a noun, digits 1-5."""
        out = []
        for s in transcript.sentences:
            for i in range(s.first_word, s.last_word + 1):
                n = norms[i]
                nxt = norms[i + 1] if i + 1 <= s.last_word else ""
                prev = norms[i - 1] if i > s.first_word else ""
                num = None
                if (
                    n in ORDINALS
                    and (prev not in ("at", "the") or i == s.first_word)
                    and prev not in _ORDINAL_TIME_PREV
                    and nxt not in _ORDINAL_IDIOM_NEXT
                ):
                    num = ORDINALS[n]
                elif (
                    n in CARDINALS
                    and n != "one"
                    and nxt
                    and nxt not in _NOT_COUNTED_NEXT
                    and prev not in _NOT_COUNTED_PREV
                ):
                    num = CARDINALS[n]
                elif (
                    n.isdigit()
                    and 1 <= int(n) <= 5
                    and nxt not in _NOT_COUNTED_NEXT
                    and prev not in _NOT_COUNTED_PREV
                ):
                    num = int(n)
                if num is None:
                    continue
                out.append(Candidate(COUNT_IDS[num], i, 1.0, 1.0, 0.85, "count", 1, f"enumeration '{n}'"))
        return out

    def _speech_act_candidates(self, transcript: Transcript, norms) -> list[Candidate]:
        """Gestures that mark what a sentence DOES rather than what a word means: an open question
        ("Why does this keep happening?") gets palms-up on its question word, a flat "No," that
        opens a sentence gets a head shake. Only when the library has those gestures."""
        known = self.category
        out = []
        for s in transcript.sentences:
            last = transcript.words[s.last_word].word.rstrip("\"')”’")
            if last.endswith("?") and "palms_up_question" in known:
                for i in range(s.first_word, s.last_word + 1):
                    if norms[i] in WH_WORDS:
                        nxt = norms[i + 1] if i + 1 <= s.last_word else ""
                        if nxt not in _FACT_QUESTION_NEXT:
                            out.append(
                                Candidate(
                                    "palms_up_question",
                                    i,
                                    1.0,
                                    1.0,
                                    0.8,
                                    "act",
                                    1,
                                    f"question '{norms[i]}…?'",
                                )
                            )
                        break
            first = transcript.words[s.first_word].word
            if norms[s.first_word] == "no" and (
                first.rstrip().endswith((",", "!", ".")) or s.first_word == s.last_word
            ):
                if "head_shake" in known:
                    out.append(Candidate("head_shake", s.first_word, 1.0, 1.0, 0.8, "act", 1, "a flat 'No'"))
        return out

    # -- rules --------------------------------------------------------------------------------------
    def _rules_ok(self, c: Candidate, transcript: Transcript, norms, emphasis) -> bool:
        n = norms[c.word_index]
        sent = next(s for s in transcript.sentences if s.first_word <= c.word_index <= s.last_word)
        nxt = norms[c.word_index + 1] if c.word_index + 1 <= sent.last_word else ""
        prev = norms[c.word_index - 1] if c.word_index > sent.first_word else ""
        stressed = emphasis is not None and emphasis[c.word_index] >= self.stress_threshold
        raw = transcript.words[c.word_index].word.lstrip("\"'“‘(")
        if (
            raw[:1].isupper()
            and c.word_index != sent.first_word
            and n not in POINT_SELF_WORDS
            and c.trigger_len <= 1
        ):
            # a capitalised word inside a sentence is a name: "Big Ben", "Five Guys", "Great Wall"
            return False
        if c.gesture_id == "offer_palm" and nxt in _REQUEST_OBJECTS:
            return False  # "give me a minute" asks; it does not offer
        if c.gesture_id.startswith("count_") and c.kind != "count":
            # counting gestures come from enumeration rules ("forty" is not "five"), from phrase
            # triggers ("a couple of", "number one") and from a few exact quantity words
            if not (c.kind == "trigger" and (c.trigger_len >= 2 or n in COUNT_QUANTITY_WORDS)):
                return False
        if c.gesture_id in ("point_self", "point_you"):
            if not self.pronoun_gestures:
                return False
            if (n, nxt) in _PRONOUN_FILLERS or (prev, n) in _PRONOUN_FILLERS:
                return False
            if emphasis is not None:
                return stressed or c.trigger_len >= 2
            c.confidence *= 0.55  # below content gestures when they compete
            return True
        if n in WEAK_DEICTIC_WORDS and c.trigger_len <= 1 and c.kind != "count":
            if emphasis is not None:
                return stressed
            # existential "there is", "that is": no pointing; clause-final "here"/"there" is fine
            return n in ("here", "there") and nxt in ("", ) or (n in ("here", "there") and nxt not in (
                "is", "are", "was", "were", "'s", "be", "will", "has", "have"))  # fmt: skip
        if n in WH_WORDS:
            return transcript.words[sent.last_word].word.rstrip("\"')").endswith("?")
        return True

    def _resolve(self, cands: list[Candidate]) -> list[Candidate]:
        """One candidate per word, and longer trigger matches beat shorter ones they overlap."""
        by_word: dict[int, Candidate] = {}
        rank = _rank if self.scorer is None else (lambda c: c.confidence)
        for c in sorted(cands, key=rank, reverse=True):
            if c.word_index not in by_word:
                by_word[c.word_index] = c
        return sorted(by_word.values(), key=lambda c: c.word_index)

    def _event(self, c: Candidate, transcript: Transcript, prosody: Prosody | None) -> SemanticEvent:
        w = transcript.words[c.word_index]
        apex = w.start + 0.35 * (w.end - w.start)
        if prosody is not None and len(prosody.word_peak_times) == len(transcript.words):
            t = float(prosody.word_peak_times[c.word_index])
            if math.isfinite(t) and w.start <= t <= w.end:
                apex = t
        return SemanticEvent(
            gesture_id=c.gesture_id,
            word_index=c.word_index,
            word=w.word,
            start=w.start,
            apex=apex,
            end=w.end,
            confidence=round(min(1.0, max(0.0, c.confidence)), 3),
            source="embedded",
            reason=c.reason,
        )


def candidate_features(
    c: Candidate,
    transcript: Transcript,
    norms: Sequence[str],
    sent_scores: dict[int, dict[str, float]],
    category: dict[str, str],
    rivals: int = 0,
    sent_counters: dict[int, dict[str, float]] | None = None,
) -> dict[str, float]:
    """The learned scorer's view of a candidate (names: `scorer.feature_names()`)."""
    k, sent = next(
        (k, s) for k, s in enumerate(transcript.sentences) if s.first_word <= c.word_index <= s.last_word
    )
    scores = sent_scores.get(k, {})
    ss = scores.get(c.gesture_id, c.sentence_score)
    counter = (sent_counters or {}).get(k, {}).get(c.gesture_id, 0.0)
    others = [v for g, v in scores.items() if g != c.gesture_id]
    rank = 1 + sum(1 for v in others if v > ss)
    n = norms[c.word_index]
    semantic = float(c.kind == "semantic")
    f = {f"kind_{kind}": float(c.kind == kind) for kind in KINDS}
    f.update(
        trigger_len=float(min(c.trigger_len, 4)),
        phrase_trigger=float(c.trigger_len >= 2),
        stem_only=float(c.stem_only),
        window_score=c.score,
        window_size=float(c.window_size),
        word_score=c.word_score,
        sentence_score=ss,
        sentence_margin=ss - max(others, default=0.0),
        sentence_top1=float(rank == 1),
        sentence_top3=float(rank <= 3),
        sentence_max=max(scores.values(), default=ss),  # how gesture-worthy the sentence is at all
        counter_score=counter,  # the sentence's likeness to the gesture's counter-examples
        counter_margin=ss - counter if counter > 0 else 0.0,
        semantic_x_window=semantic * c.score,
        semantic_x_word=semantic * c.word_score,
        trigger_x_sentence=float(c.kind == "trigger") * ss,
        rivals=float(rivals),
        first_word=float(c.word_index == sent.first_word),
        question=float(transcript.words[sent.last_word].word.rstrip("\"')”’").endswith("?")),
        pronoun=float(n in POINT_SELF_WORDS or n in POINT_YOU_WORDS),
        weak_deictic=float(n in WEAK_DEICTIC_WORDS),
        sentence_words=(sent.last_word - sent.first_word + 1) / 20.0,
    )
    f[f"cat_{category.get(c.gesture_id, '')}"] = 1.0
    return f


def _rank(c: Candidate) -> tuple:
    kind = {"count": 3, "act": 3, "trigger": 2, "semantic": 1}.get(c.kind, 0)
    return (kind, c.trigger_len, c.confidence)


def _fragment_of(stems: tuple[str, ...], text: str) -> bool:
    """Are the window's word stems a strict part of `text`'s words?"""
    other = [stem(normalise_word(x)) for x in text.split() if normalise_word(x)]
    return len(stems) < len(other) and all(s in other for s in stems)


def _ctx(norms, w: CandidateWindow) -> str:
    a, b = max(0, w.first_word - 2), w.last_word + 3
    return " ".join(x for x in norms[a:b] if x)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


# -- scheduling -------------------------------------------------------------------------------------
def schedule(
    events: Sequence[SemanticEvent],
    transcript: Transcript,
    *,
    handedness: dict[str, str] | None = None,
    density: str = "normal",
    marks: ScriptMarks | None = None,
    min_spacing: float = MIN_SPACING,
    one_hand_spacing: float = ONE_HAND_SPACING,
    head_spacing: float = HEAD_SPACING,
    keep: Sequence[SemanticEvent] = (),
) -> list[SemanticEvent]:
    """Keep the most confident events that fit the rules, sorted by apex.

    Rules: at most DENSITY_PER_MINUTE[level] * BUDGET_WINDOW_S / 60 events in any
    BUDGET_WINDOW_S-second window (level = the event word's density: `marks.density_at` over the
    default `density`; "none" = no budget); at least `min_spacing` s between two apexes
    (`one_hand_spacing` when both gestures are one-handed, `head_spacing` when one is a head
    gesture); never the same gesture twice in a row within REPEAT_WINDOW_S seconds. `keep` events
    (e.g. forced by markup) are placed first and always kept. Public so other selectors (the LLM
    one) can reuse it.
    """
    hand = handedness or {}

    def spacing(a: str, b: str) -> float:
        ha, hb = hand.get(a, "both"), hand.get(b, "both")
        if ha == "none" or hb == "none":
            return head_spacing
        if ha in ("left", "right") and hb in ("left", "right"):
            return one_hand_spacing
        return min_spacing

    def budget(level: str) -> float:
        if level not in DENSITY_PER_MINUTE:
            return math.inf
        return max(1, round(DENSITY_PER_MINUTE[level] * BUDGET_WINDOW_S / 60.0))

    accepted: list[SemanticEvent] = list(keep)
    for e in sorted(events, key=lambda e: (-e.confidence, e.apex)):
        if any(abs(e.apex - a.apex) < spacing(e.gesture_id, a.gesture_id) for a in accepted):
            continue
        level = marks.density_at(e.word_index, density) if marks is not None else density
        cap = budget(level)
        if cap != math.inf:
            times = sorted([a.apex for a in accepted] + [e.apex])
            # the densest BUDGET_WINDOW_S window containing e
            if any(
                sum(1 for t in times if lo <= t < lo + BUDGET_WINDOW_S) > cap
                for lo in [t for t in times if e.apex - BUDGET_WINDOW_S < t <= e.apex]
            ):
                continue
        before = [a for a in accepted if a.apex < e.apex]
        after = [a for a in accepted if a.apex > e.apex]
        prev = max(before, key=lambda a: a.apex) if before else None
        nxt = min(after, key=lambda a: a.apex) if after else None
        if any(
            n is not None and n.gesture_id == e.gesture_id and abs(n.apex - e.apex) < REPEAT_WINDOW_S
            for n in (prev, nxt)
        ):
            continue
        accepted.append(e)
    return sorted(accepted, key=lambda e: e.apex)


__all__ = [
    "BUDGET_WINDOW_S",
    "DENSITY_PER_MINUTE",
    "HEAD_SPACING",
    "MIN_SPACING",
    "ONE_HAND_SPACING",
    "EmbeddedSelector",
    "schedule",
]
