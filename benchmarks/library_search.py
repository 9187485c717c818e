"""How well and how fast does the gesture search index find the right gesture? Prints markdown.

    python benchmarks/library_search.py            # accuracy, misses, latency, build time, scaling
    python benchmarks/library_search.py --tune     # also grid-search the Scoring on the dev split
    python benchmarks/library_search.py --scale 1000,10000   # library sizes for the scaling table

Queries: tests/data/paraphrase_queries.yaml (phrases as a speaker would say them, each with the
expected gesture id of the default library, split into dev (used for tuning) and test (held out)).
Accuracy is reported per split; tune only on dev.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from gesticulator.library import Library
from gesticulator.library.index import (
    CANDIDATE_GESTURES,
    CANDIDATE_TEXTS,
    DEFAULT_SCORING,
    EXACT_SEARCH_MAX_VECTORS,
    FLAT_MAX_VECTORS,
    GestureIndex,
    Scoring,
    TextEmbedder,
    _Meta,
    choose_factory,
    make_faiss_index,
)

REPO = Path(__file__).resolve().parents[1]
QUERIES = REPO / "tests" / "data" / "paraphrase_queries.yaml"


def load_queries(path: Path = QUERIES) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["queries"]


def ranks(
    index: GestureIndex, queries: list[dict], vectors: np.ndarray, k: int = 5
) -> list[tuple[int | None, list]]:
    """Per query: (rank of the expected id in the top k, 1-based, or None; the hits)."""
    out = []
    for q, hits in zip(queries, index.search_vectors(vectors, k), strict=True):
        got = [h.id for h in hits]
        out.append((got.index(q["expected"]) + 1 if q["expected"] in got else None, hits))
    return out


def accuracy(
    rows: list[tuple[int | None, list]], queries: list[dict], split: str | None = None
) -> tuple[float, float, float, int]:
    """(top-1, top-5, MRR@5, n) over a split (None: all)."""
    sel = [r for r, q in zip(rows, queries, strict=True) if split is None or q["split"] == split]
    n = len(sel)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    top1 = sum(1 for r, _ in sel if r == 1) / n
    top5 = sum(1 for r, _ in sel if r is not None) / n
    mrr = sum(1 / r for r, _ in sel if r is not None) / n
    return top1, top5, mrr, n


def tune(index: GestureIndex, queries: list[dict], vectors: np.ndarray) -> Scoring:
    """Grid search on the dev split (the test split is not looked at); prints the best settings."""
    dev = [i for i, q in enumerate(queries) if q["split"] == "dev"]
    dq, dv = [queries[i] for i in dev], vectors[dev]
    configs = {Scoring(top_m=1, temperature=0.0)}
    for d, m, t, top_m, temp in itertools.product(
        (0.9, 1.0), (0.9, 1.0), (0.9, 1.0), (2, 3, 5, 8, 12, 100), (0.05, 0.1, 0.15, 0.2)
    ):
        configs.add(Scoring(description=d, meaning=m, trigger=t, example=1.0, top_m=top_m, temperature=temp))
    grid = []
    for sc in configs:
        index.scoring = sc
        grid.append((accuracy(ranks(index, dq, dv), dq)[:3], sc))
    # best dev top-1, then top-5, then MRR; ties: the smaller bonus (count-robust), then the default
    grid.sort(
        key=lambda x: (x[0], -x[1].temperature * np.log(x[1].top_m), x[1] == DEFAULT_SCORING), reverse=True
    )
    print(f"\n### Scoring grid on the dev split (best 10 of {len(grid)})\n")
    print(
        "| description | meaning | trigger | example | top_m | temperature | dev top-1 | dev top-5 | dev MRR |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (top1, top5, mrr), s in grid[:10]:
        print(
            f"| {s.description} | {s.meaning} | {s.trigger} | {s.example} | {s.top_m} | {s.temperature} | {top1:.3f} | {top5:.3f} | {mrr:.3f} |"
        )
    for label, sc in (("plain max", Scoring(top_m=1, temperature=0.0)), ("default", DEFAULT_SCORING)):
        m = next(m for m, s in grid if s == sc)
        print(f"\n{label} {sc}: dev top-1 {m[0]:.3f}, top-5 {m[1]:.3f}, MRR {m[2]:.3f}")
    index.scoring = DEFAULT_SCORING
    return grid[0][1]


def replicated(
    index: GestureIndex, n_gestures: int, factory: str, rng: np.random.Generator
) -> tuple[GestureIndex, float]:
    """An index of `n_gestures` made by copying the real gestures' vectors with small noise."""
    base = index.index.reconstruct_n(0, index.num_vectors)
    m = index.meta
    per_copy = len(m.gesture_ids)
    copies = -(-n_gestures // per_copy)
    vg = np.concatenate([m.vec_gesture + c * per_copy for c in range(copies)]).astype(np.int32)
    keep = np.flatnonzero(vg < n_gestures)
    vecs = base[np.tile(np.arange(len(base)), copies)[keep]]  # one allocation
    for a in range(0, len(vecs), 100_000):  # noise and renormalise in chunks (float32 throughout)
        chunk = vecs[a : a + 100_000]
        chunk += 0.02 * rng.standard_normal(chunk.shape, dtype=np.float32)
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
    meta = _Meta(
        [f"{m.gesture_ids[i % per_copy]}__{i // per_copy}" for i in range(n_gestures)],
        vg[keep],
        np.tile(m.vec_kind, copies)[keep],
        [m.vec_text[i % len(m.vec_text)] for i in keep],
    )
    start = time.perf_counter()
    fi = make_faiss_index(vecs, factory)
    build = time.perf_counter() - start
    del vecs
    return GestureIndex(fi, meta, embedder=index.embedder, library_hash="bench", factory=factory), build


def time_search(index: GestureIndex, qv: np.ndarray, k: int = 5) -> tuple[float, float]:
    """(ms per query searching one at a time, ms per query in one batch), excluding the encode."""
    index.search_vectors(qv[:2], k)  # warm-up
    n = min(len(qv), 50)
    start = time.perf_counter()
    for i in range(n):
        index.search_vectors(qv[i : i + 1], k)
    single = (time.perf_counter() - start) / n * 1e3
    start = time.perf_counter()
    index.search_vectors(qv, k)
    batch = (time.perf_counter() - start) / len(qv) * 1e3
    return single, batch


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tune", action="store_true", help="grid-search the scoring on the dev split")
    ap.add_argument(
        "--scale",
        default="1000,10000,100000",
        help="library sizes (gestures) for the scaling table; '' to skip",
    )
    ap.add_argument(
        "--hnsw", action="store_true", help="also time an HNSW32 index in the scaling table (slow build)"
    )
    ap.add_argument(
        "--threads", type=int, default=None, help="torch/FAISS threads (default: their own defaults)"
    )
    ap.add_argument("--queries", type=Path, default=QUERIES)
    args = ap.parse_args(argv)

    if args.threads:
        import faiss
        import torch

        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    load_at_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    queries = load_queries(args.queries)
    library = Library.load()
    texts = [q["query"] for q in queries]

    start = time.perf_counter()
    embedder = TextEmbedder()
    embedder.encode(["warm up"])
    model_load = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        index = GestureIndex.for_library(library, embedder, index_dir=tmp)  # cold: embeds every text
        build = time.perf_counter() - start
        start = time.perf_counter()
        again = GestureIndex.for_library(library, embedder, index_dir=tmp)
        load = time.perf_counter() - start
        assert not again.built
    shipped = GestureIndex.for_library(library, embedder)  # the index shipped in indexes/ (built if stale)

    qv = embedder.encode(texts)
    if args.tune:
        best = tune(index, queries, qv)
        print(f"\nbest on dev: {best}")

    rows = ranks(index, queries, qv)
    # latency of the full path (encode + FAISS + aggregation)
    index.search(texts[0])
    single_ms = []
    for t in texts:
        start = time.perf_counter()
        index.search(t)
        single_ms.append((time.perf_counter() - start) * 1e3)
    start = time.perf_counter()
    index.search_batch(texts)
    batch_ms = (time.perf_counter() - start) / len(texts) * 1e3
    faiss_single, faiss_batch = time_search(index, qv)

    ids_covered = sorted({q["expected"] for q in queries})
    print("\n### Gesture search on the default library\n")
    print(
        f"library: {len(library)} gestures, content hash {library.content_hash()}; "
        f"index {index.factory}, key {index.key}; shipped index: {shipped.path}"
    )
    print(
        f"queries: {len(queries)} ({sum(q['split'] == 'dev' for q in queries)} dev / "
        f"{sum(q['split'] == 'test' for q in queries)} test), covering {len(ids_covered)} of {len(library)} ids"
    )
    import faiss
    import torch

    print(f"scoring: {index.scoring}")
    print(
        f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, FAISS threads "
        f"{faiss.omp_get_max_threads()}, load average at start {load_at_start}\n"
    )
    print("| metric | value |")
    print("|---|---|")
    for split in (None, "dev", "test"):
        top1, top5, mrr, n = accuracy(rows, queries, split)
        label = split or "all"
        print(f"| top-1 accuracy ({label}, n={n}) | {top1:.3f} |")
        print(f"| top-5 accuracy ({label}, n={n}) | {top5:.3f} |")
        print(f"| MRR@5 ({label}) | {mrr:.3f} |")
    print(
        f"| search latency, one query (encode+search), mean / median | {statistics.mean(single_ms):.2f} / {statistics.median(single_ms):.2f} ms |"
    )
    print(f"| search latency, batched ({len(texts)} queries, one encode) | {batch_ms:.2f} ms/query |")
    print(
        f"| FAISS search + aggregation only, single / batched | {faiss_single:.3f} / {faiss_batch:.3f} ms/query |"
    )
    print(f"| index build (embed {index.num_vectors} texts + FAISS + save) | {build:.2f} s |")
    print(f"| index load from disk (verified) | {load * 1e3:.1f} ms |")
    print(f"| model load (once per process) | {model_load:.2f} s |")
    print(f"| vectors | {index.num_vectors} ({index.num_vectors / len(library):.1f} per gesture) |")

    misses = [(q, r, hits) for q, (r, hits) in zip(queries, rows, strict=True) if r != 1]
    print(f"\n### Misses at top-1 ({len(misses)})\n")
    print("| split | query | expected | got (top-1, matched text) | expected's rank |")
    print("|---|---|---|---|---|")
    for q, r, hits in misses:
        h = hits[0]
        print(
            f"| {q['split']} | {q['query']} | {q['expected']} | {h.id} ({h.matched_text!r}) | {r or '>5'} |"
        )

    sizes = [int(s) for s in args.scale.split(",") if s.strip()]
    if sizes:
        rng = np.random.default_rng(0)
        print("\n### Retrieval latency vs library size (vectors replicated with noise; encode excluded)\n")
        print(
            f"Up to {EXACT_SEARCH_MAX_VECTORS} vectors every text is scored; beyond, the {CANDIDATE_TEXTS} nearest "
            f"texts pick {CANDIDATE_GESTURES} candidate gestures whose texts are then all scored. The default index "
            f"type switches from Flat (exact) to IVF above {FLAT_MAX_VECTORS} vectors. Copies of a gesture are "
            "near-duplicates (noise 0.02), the hardest possible distractors: accuracy here counts any copy of the "
            "expected gesture."
        )
        print(
            "A query's encode adds about "
            f"{statistics.median(single_ms) - faiss_single:.1f} ms regardless of library size.\n"
        )
        print(
            "| gestures | vectors | index | build s | single ms/query | batched ms/query | top-1 acc (original id) | top-1 = Flat's |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for n in sizes:
            n_vectors = round(n * index.num_vectors / len(index))
            factories = ["Flat"] + (
                [choose_factory(n_vectors)] if choose_factory(n_vectors) != "Flat" else []
            )
            if args.hnsw and n_vectors > 10_000:
                factories.append("HNSW32")
            flat_top = None
            for factory in factories:
                big, bt = replicated(index, n, factory, rng)
                single, batched = time_search(big, qv)
                # copies of a gesture are near-duplicates: compare the original gesture ids
                top = [h[0].id.split("__")[0] for h in big.search_vectors(qv, 1)]
                acc = np.mean([t == q["expected"] for t, q in zip(top, queries, strict=True)])
                if factory == "Flat":
                    flat_top, agree = top, "-"
                else:
                    agree = f"{np.mean([a == b for a, b in zip(top, flat_top, strict=True)]):.3f}"
                print(
                    f"| {n} | {big.num_vectors} | {factory} | {bt:.2f} | {single:.3f} | {batched:.3f} | {acc:.3f} | {agree} |",
                    flush=True,
                )
                del big
                gc.collect()


if __name__ == "__main__":
    sys.exit(main())
