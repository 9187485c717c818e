"""The semantic planner: transcript (+ script markup, + prosody) -> SemanticPlan.

    planner = Planner.load()                       # default library + index, loaded once (cached)
    plan = planner.plan(transcript, marks=marks, prosody=prosody)
    plan = planner.plan_text("Sales went [gesture:rise_increase] up. [density:low] Then ...")
    plan.model_dump_json()   # {"events": [{gesture_id, word_index, word, start, apex, end,
                             #   confidence, source, reason}], "selector", "density",
                             #   "library_hash", "warnings"}

Steps: `find_candidates` (one batched index search) -> selector.select(...) -> script markup:
``[gesture:id]`` forces that gesture on its word (source "markup"; an unknown id is a one-line
CatalogError naming it and close ids), ``[no-gesture]`` spans drop every event inside them,
``[density:…]`` changes the density from its word on.

The selector is "embedded" (`EmbeddedSelector`) or any object with
``.select(transcript, windows, marks=None, prosody=None) -> list[SemanticEvent]`` (e.g. the LLM
selector); a `density=` keyword is passed only when its `select` accepts one. The output of a
non-embedded selector is re-checked by `schedule` (spacing, density, no back-to-back repeats) so
every plan obeys the same rules. `plan.selector` names it by its `name` attribute.
"""

from __future__ import annotations

import difflib
import inspect
import threading
from typing import Any

from gesticulator.library.schema import CatalogError
from gesticulator.semantics.candidates import find_candidates
from gesticulator.semantics.embedded import (
    HEAD_SPACING,
    MIN_SPACING,
    ONE_HAND_SPACING,
    EmbeddedSelector,
    schedule,
)
from gesticulator.speech.markup import ScriptMarks, script_words, sentence_spans, strip_markup
from gesticulator.types import Prosody, SemanticEvent, SemanticPlan, Sentence, Transcript, Word

WORD_GAP_S = 0.1
SENTENCE_PAUSE_S = 0.5


def transcript_from_text(text: str, wps: float = 2.8, *, start: float = 0.0) -> Transcript:
    """A transcript with synthetic times for a plain text (no audio): words in `script_words`
    order (the markup's word indices), each 1/wps s long including a WORD_GAP_S gap, and a
    SENTENCE_PAUSE_S pause after each sentence."""
    toks = [w.text for w in script_words(text)]
    slot = 1.0 / wps
    dur = max(0.05, slot - WORD_GAP_S)
    words: list[Word] = []
    sentences: list[Sentence] = []
    t = start
    for first, last in sentence_spans(toks):
        for i in range(first, last + 1):
            words.append(Word(word=toks[i], start=round(t, 4), end=round(t + dur, 4)))
            t += slot
        t += SENTENCE_PAUSE_S
        sentences.append(Sentence.of(words, first, last))
    return Transcript(words=words, sentences=sentences, source="text", duration=round(t, 4) if words else 0)


_LOAD_CACHE: dict[str, Planner] = {}
_LOAD_LOCK = threading.Lock()


class Planner:
    """Plans semantic gestures for transcripts with one library, index and selector."""

    def __init__(self, library=None, index=None, *, selector: Any = "embedded", density: str = "normal"):
        if library is None:
            from gesticulator.library.store import Library

            library = Library.load()
        if index is None:
            from gesticulator.library.index import GestureIndex

            index = GestureIndex.for_library(library)
        self.library = library
        self.index = index
        self.density = density
        if selector == "embedded":
            selector = EmbeddedSelector(library, density=density)
        elif isinstance(selector, str):
            raise ValueError(f"unknown selector {selector!r}: use 'embedded' or an object with .select()")
        self.selector = selector
        self._library_hash = library.content_hash()

    @classmethod
    def load(cls, *, density: str = "normal") -> Planner:
        """The default library + its index, loaded once per process (the embedding model too)."""
        with _LOAD_LOCK:
            if density not in _LOAD_CACHE:
                base = next(iter(_LOAD_CACHE.values()), None)
                if base is not None:
                    _LOAD_CACHE[density] = cls(base.library, base.index, density=density)
                else:
                    _LOAD_CACHE[density] = cls(density=density)
            return _LOAD_CACHE[density]

    # -- planning ------------------------------------------------------------------------------------
    def plan(
        self,
        transcript: Transcript,
        *,
        marks: ScriptMarks | None = None,
        prosody: Prosody | None = None,
        density: str | None = None,
    ) -> SemanticPlan:
        density = density or self.density
        forced = self._check_forced(marks)
        windows = find_candidates(transcript, self.library, self.index)
        select = self.selector.select
        kwargs: dict[str, Any] = {"marks": marks, "prosody": prosody}
        if "density" in inspect.signature(select).parameters:
            kwargs["density"] = density
        events = list(select(transcript, windows, **kwargs))
        # The LLM selector records what it dropped or fell back on; the plan carries it.
        warnings: list[str] = list(getattr(self.selector, "warnings", []) or [])
        hand = {g.id: g.handedness for g in self.library.gestures()}
        unknown = [e for e in events if e.gesture_id not in self.library]
        if unknown:
            warnings.append(
                f"selector proposed unknown gestures, dropped: {sorted({e.gesture_id for e in unknown})}"
            )
            events = [e for e in events if e.gesture_id in self.library]
        if marks is not None:
            events = [e for e in events if marks.gesture_allowed(e.word_index)]
        keep = [
            self._forced_event(transcript, w, gid, prosody) for w, gid in forced if w < len(transcript.words)
        ]
        if len(keep) < len(forced):
            warnings.append("some [gesture:…] marks point past the end of the transcript")
        forced_words = {e.word_index for e in keep}
        events = [e for e in events if e.word_index not in forced_words]
        if keep or not isinstance(self.selector, EmbeddedSelector):
            # Re-schedule around the forced events (and for foreign selectors, enforce the rules).
            # Spacing: the embedded selector's settings, or the module defaults for other selectors.
            sel = self.selector
            events = schedule(
                events,
                transcript,
                handedness=hand,
                density=density,
                marks=marks,
                min_spacing=getattr(sel, "min_spacing", MIN_SPACING),
                one_hand_spacing=getattr(sel, "one_hand_spacing", ONE_HAND_SPACING),
                head_spacing=getattr(sel, "head_spacing", HEAD_SPACING),
                keep=keep,
            )
        return SemanticPlan(
            events=sorted(events, key=lambda e: e.apex),
            selector=getattr(self.selector, "name", type(self.selector).__name__),
            density=density,
            library_hash=self._library_hash,
            warnings=warnings,
        )

    def plan_text(
        self, script: str, *, wps: float = 2.8, prosody: Prosody | None = None, density: str | None = None
    ) -> SemanticPlan:
        """Plan a script (markup allowed) with synthetic word times (`transcript_from_text`)."""
        plain, marks = strip_markup(script)
        return self.plan(transcript_from_text(plain, wps), marks=marks, prosody=prosody, density=density)

    # -- markup -------------------------------------------------------------------------------------
    def _check_forced(self, marks: ScriptMarks | None) -> list[tuple[int, str]]:
        if marks is None:
            return []
        for m in marks.gestures:
            if m.gesture not in self.library:
                close = difflib.get_close_matches(m.gesture, self.library.ids(), n=3, cutoff=0.5)
                hint = f"did you mean {', '.join(close)}?" if close else "see `gesticulator library list`"
                raise CatalogError(f"[gesture:{m.gesture}] names an unknown gesture id {m.gesture!r}", hint)
        return [(m.word, m.gesture) for m in marks.gestures]

    def _forced_event(
        self, transcript: Transcript, w: int, gid: str, prosody: Prosody | None
    ) -> SemanticEvent:
        word = transcript.words[w]
        apex = word.start + 0.35 * (word.end - word.start)
        if prosody is not None and len(prosody.word_peak_times) == len(transcript.words):
            t = float(prosody.word_peak_times[w])
            if word.start <= t <= word.end:
                apex = t
        return SemanticEvent(
            gesture_id=gid, word_index=w, word=word.word, start=word.start, apex=apex, end=word.end,
            confidence=1.0, source="markup", reason=f"forced by [gesture:{gid}]",
        )  # fmt: skip


__all__ = ["Planner", "transcript_from_text", "SENTENCE_PAUSE_S", "WORD_GAP_S"]
