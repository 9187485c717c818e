"""The semantic planner on the default library (real MiniLM + FAISS, loaded once per module)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gesticulator.library.schema import CatalogError
from gesticulator.semantics import (
    Planner,
    find_candidates,
    is_anchor_word,
    normalise_word,
    transcript_from_text,
)
from gesticulator.semantics.embedded import EmbeddedSelector, schedule
from gesticulator.types import SemanticEvent, SemanticPlan

REPO = Path(__file__).resolve().parents[1]
LABELLED = REPO / "tests" / "data" / "semantic_sentences.yaml"
HOLDOUT = REPO / "tests" / "data" / "semantic_sentences_holdout.yaml"
HOLDOUT2 = REPO / "tests" / "data" / "semantic_sentences_holdout2.yaml"
HOLDOUT3 = REPO / "tests" / "data" / "semantic_sentences_holdout3.yaml"
HOLDOUT4 = REPO / "tests" / "data" / "semantic_sentences_holdout4.yaml"
# Regression floors, a little under what the shipped selector (with its learned scorer) measures
# (benchmarks/semantic_accuracy.py): test split F1 0.791, holdout 0.697, holdout2 0.719, holdout3
# 0.672 (all four in the scorer's training data), the fourth independently written holdout 0.755
# (FP 7.5 %; the targets are F1 0.75, FP 10 %).
TEST_F1_FLOOR = 0.74
HOLDOUT_F1_FLOOR = 0.65
HOLDOUT2_F1_FLOOR = 0.67
HOLDOUT3_F1_FLOOR = 0.62
HOLDOUT4_F1_FLOOR = 0.71


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner.load()


def _events(planner, text, density="high"):
    return [
        (e.gesture_id, e.word.strip(".,!?").lower()) for e in planner.plan_text(text, density=density).events
    ]


@pytest.mark.parametrize(
    "text,gesture,word",
    [
        ("This is a huge opportunity for all of us.", "big_wide", "huge"),
        ("Sales went up by forty percent last year.", "rise_increase", "up"),
        ("I did it right away.", "fast_flick", "away"),
        ("Tomorrow we launch the beta.", "point_forward_future", "tomorrow"),
    ],
)
def test_clear_sentences(planner, text, gesture, word):
    assert (gesture, word) in _events(planner, text)


def test_counting(planner):
    ev = _events(planner, "First, we cut costs. Second, we grow sales. Third, we hire.")
    assert [g for g, _ in ev if g.startswith("count_")] == ["count_one", "count_two", "count_three"]


def test_numbers_in_bigger_numbers_and_labels_are_not_counted(planner):
    # "two hundred", "three million", "platform two", "page 4": a quantity or a label, not a list
    for text in (
        "The banner should be two hundred pixels wide.",
        "The city has three million residents.",
        "The train leaves from platform two.",
        "The diagram is on page 4 of the handout.",
    ):
        assert not [g for g, _ in _events(planner, text) if g.startswith("count_")], text
    assert ("count_two", "two") in _events(planner, "There are two reasons for this.")


def test_function_words_never_get_events(planner):
    text = "It is of the and in the on that. We are at the top of the world, and all of it was over there."
    tr = transcript_from_text(text)
    plan = planner.plan(tr, density="high")
    for e in plan.events:
        n = normalise_word(e.word)
        # the one exception: a phrase trigger made only of small words ("all of it", "no way")
        small_phrase = e.reason.startswith("trigger '") and not any(
            is_anchor_word(x) for x in e.reason.split("'")[1].split()
        )
        assert is_anchor_word(n) or n in ("why", "what", "how", "where", "which", "who") or small_phrase, e


def test_idiom_is_quiet(planner):
    assert not [
        g for g, _ in _events(planner, "He's a big fan of jazz and plays on weekends.") if g == "big_wide"
    ]


def test_candidates_shape_and_speed(planner):
    import time

    text = " ".join(["We grew revenue by thirty percent, which is a huge step forward for all of us."] * 10)
    tr = transcript_from_text(text)
    t0 = time.perf_counter()
    windows = find_candidates(tr, planner.library, planner.index)
    assert time.perf_counter() - t0 < 2.0  # generous: CI machines vary; the benchmark reports it
    kinds = {w.kind for w in windows}
    assert kinds == {"window", "sentence"}
    sent = next(w for w in windows if w.kind == "sentence")
    assert len(sent.hits) == len(planner.index)  # sentence windows score every gesture
    assert all(len(w.hits) <= 8 for w in windows if w.kind == "window")


def _ev(gid, t, conf=0.5, w=0):
    return SemanticEvent(
        gesture_id=gid,
        word_index=w,
        word="x",
        start=t,
        apex=t,
        end=t + 0.3,
        confidence=conf,
        source="embedded",
    )


def test_schedule_spacing_repeats_density():
    tr = transcript_from_text("word " * 200)
    hand = {"a": "both", "b": "both", "c": "right"}
    # spacing: two two-handed gestures 0.5 s apart -> the more confident one stays
    out = schedule([_ev("a", 1.0, 0.4), _ev("b", 1.5, 0.9)], tr, handedness=hand, density="none")
    assert [e.gesture_id for e in out] == ["b"]
    # no back-to-back repeat close together; far apart the same gesture may come back
    out = schedule([_ev("a", 1.0, 0.9), _ev("a", 5.0, 0.8)], tr, handedness=hand, density="none")
    assert len(out) == 1
    out = schedule([_ev("a", 1.0, 0.9), _ev("a", 12.0, 0.8)], tr, handedness=hand, density="none")
    assert len(out) == 2
    # density budget: 40 events 1.5 s apart over 60 s -> about the level's rate per minute
    many = [_ev("a" if i % 2 else "b", 1.0 + 1.5 * i, 0.5 + i / 100) for i in range(40)]
    for level, rate in (("low", 6), ("normal", 15), ("high", 24)):
        n = len(schedule(many, tr, handedness=hand, density=level))
        assert rate * 0.6 <= n <= rate * 1.1, (level, n)


def test_markup_force_forbid_density(planner):
    plan = planner.plan_text("This is a [gesture:thumbs_up] huge opportunity.")
    forced = [e for e in plan.events if e.source == "markup"]
    assert [(e.gesture_id, e.word) for e in forced] == [("thumbs_up", "huge")]
    assert "big_wide" not in plan.gesture_ids()
    plan = planner.plan_text("[no-gesture]This is a huge opportunity.[/no-gesture] Sales went up.")
    assert all(e.word_index >= 5 for e in plan.events) and plan.events
    text = " ".join(f"Sales went up and costs went down, a huge and tiny thing {i}." for i in range(8))
    high = planner.plan_text("[density:high]" + text)
    low = planner.plan_text("[density:low]" + text)
    assert len(low.events) < len(high.events)


def test_unknown_forced_id(planner):
    with pytest.raises(CatalogError) as err:
        planner.plan_text("This is [gesture:thumb_up] great.")
    msg = str(err.value)
    assert "thumb_up" in msg and "thumbs_up" in msg and "\n" not in msg


def test_plan_json_shape(planner):
    plan = planner.plan_text("First, sales went up. Second, costs fell.")
    data = json.loads(plan.model_dump_json())
    assert set(data) == {"events", "selector", "density", "library_hash", "warnings"}
    assert data["selector"] == "embedded" and data["library_hash"]
    keys = {"gesture_id", "word_index", "word", "start", "apex", "end", "confidence", "source", "reason"}
    for e in data["events"]:
        assert set(e) == keys
        assert e["start"] <= e["apex"] <= e["end"] and 0 <= e["confidence"] <= 1 and e["reason"]
    assert SemanticPlan.model_validate(data) == plan


def test_custom_selector(planner):
    class Fixed:
        name = "fixed"

        def select(self, transcript, windows, marks=None, prosody=None):
            w = transcript.words[1]
            return [SemanticEvent(gesture_id="clap", word_index=1, word=w.word, start=w.start, apex=w.start,
                                  end=w.end, confidence=0.9, source="llm")]  # fmt: skip

    p = Planner(planner.library, planner.index, selector=Fixed())
    plan = p.plan_text("Great news everyone.")
    assert plan.selector == "fixed" and plan.gesture_ids() == ["clap"]


def test_labelled_test_split(planner):
    if not LABELLED.is_file():
        pytest.skip("tests/data/semantic_sentences.yaml missing")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import semantic_accuracy as sa

    items = [i for i in sa.load_items(LABELLED) if i["split"] == "test"]
    res = sa.evaluate(
        Planner(planner.library, planner.index, selector=EmbeddedSelector(planner.library)), items
    )
    assert res["f1"] >= TEST_F1_FLOOR, res["f1"]


@pytest.mark.parametrize(
    "path,floor",
    [
        (HOLDOUT, HOLDOUT_F1_FLOOR),
        (HOLDOUT2, HOLDOUT2_F1_FLOOR),
        (HOLDOUT3, HOLDOUT3_F1_FLOOR),
        (HOLDOUT4, HOLDOUT4_F1_FLOOR),
    ],
)
def test_labelled_holdouts(planner, path, floor):
    if not path.is_file():
        pytest.skip(f"{path.name} missing")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import semantic_accuracy as sa

    items = sa.load_items(path)
    assert len(items) >= 150 and sum(1 for i in items if not i["expected"]) >= 40
    for it in items:  # labels point at the words they name
        for e in it["expected"]:
            assert it["text"].split()[e["word_index"]] == e["word"], it["id"]
    res = sa.evaluate(Planner(planner.library, planner.index), items)
    assert res["f1"] >= floor, res["f1"]


# -- the learned scorer ----------------------------------------------------------------------------
def test_shipped_scorer_loads_and_weighs_evidence_the_right_way():
    from gesticulator.semantics.scorer import CandidateScorer, feature_names

    scorer = CandidateScorer.load()
    assert scorer is not None and scorer.names == feature_names()
    assert 0.0 < scorer.threshold < 1.0 and scorer.info["sentences"] >= 400
    base = {"kind_trigger": 1.0, "window_score": 0.9, "word_score": 0.8, "sentence_score": 0.5,
            "sentence_margin": 0.0, "window_size": 1.0, "trigger_len": 1.0, "cat_emblem": 1.0}  # fmt: skip
    better = dict(base, sentence_score=0.7, sentence_margin=0.15, sentence_top1=1.0, window_score=1.0)
    p = scorer.probability([base, better])
    assert p.shape == (2,) and 0 <= p[0] < p[1] <= 1


def test_a_counter_example_in_a_user_library_silences_a_false_trigger(planner, tmp_path):
    """A user who sees a gesture fire where it should not adds the sentence to that gesture's
    `not_examples` in their own library; the planner then leaves it out there (and elsewhere
    keeps it)."""
    import yaml

    from gesticulator.library import Library
    from gesticulator.library.index import GestureIndex

    false_trigger = "Let's stop here for a coffee break."
    assert ("stop_palm", "stop") in _events(planner, false_trigger)
    gesture = yaml.safe_load(planner.library.entry("stop_palm").file.read_text(encoding="utf-8"))
    gesture["not_examples"] = [*gesture.get("not_examples", []), false_trigger]
    for take in gesture["takes"]:  # the user's file points at the default library's clips
        take["clip"] = str(planner.library.clip_path("stop_palm", take["id"]))
    (tmp_path / "gestures").mkdir()
    (tmp_path / "gestures" / "stop_palm.yaml").write_text(yaml.safe_dump(gesture), encoding="utf-8")
    library = Library.load([tmp_path])  # layered over the default library
    mine = Planner(library, GestureIndex.for_library(library, planner.index.embedder))
    assert ("stop_palm", "stop") not in _events(mine, false_trigger)
    assert ("stop_palm", "stop") in _events(mine, "Please stop, this is dangerous.")


def test_scorer_save_load_round_trip_and_bad_files(tmp_path):
    from gesticulator.errors import InputFileError
    from gesticulator.semantics.scorer import CandidateScorer, fit_scorer

    feats = [{"window_score": s, "kind_trigger": 1.0} for s in (0.2, 0.3, 0.4, 0.8, 0.9, 1.0)]
    scorer = fit_scorer(feats, [0, 0, 0, 1, 1, 1], c=10.0, threshold=0.5, info={"note": "toy"})
    back = CandidateScorer.load(scorer.save(tmp_path / "s.json"))
    assert back.info == {"note": "toy"} and back.threshold == 0.5
    p = back.probability(feats)
    assert (p[:3] < 0.5).all() and (p[3:] > 0.5).all()
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(InputFileError, match="not a valid selector scorer"):
        CandidateScorer.load(tmp_path / "bad.json")
    with pytest.raises(InputFileError, match="not found"):
        CandidateScorer.load(tmp_path / "missing.json")


def test_selector_without_scorer_uses_its_hand_set_floors(planner):
    sel = EmbeddedSelector(planner.library, scorer=None)
    assert sel.scorer is None and sel.trigger_floor == 0.53 and sel.semantic_hits == 2
    p = Planner(planner.library, planner.index, selector=sel)
    assert ("big_wide", "huge") in [
        (e.gesture_id, e.word.strip(".").lower()) for e in p.plan_text("It is huge.").events
    ]
