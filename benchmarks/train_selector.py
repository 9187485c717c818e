"""Fit the embedded selector's learned scorer on labelled sentences, choosing its settings by
cross-validation, and write checkpoints/selector_scorer.json.

    python benchmarks/train_selector.py                  # fit on dev + test + holdouts 1-3
    python benchmarks/train_selector.py --dry-run        # cross-validation table only

Training sets: tests/data/semantic_sentences.yaml (dev, test), semantic_sentences_holdout.yaml,
semantic_sentences_holdout2.yaml and semantic_sentences_holdout3.yaml (each was an independent
check until it had been measured; then it became training data). The fourth held-out set
(semantic_sentences_holdout4.yaml) is never read here: it is the independent check, printed by
benchmarks/semantic_accuracy.py.

Each sentence is planned alone (as in semantic_accuracy.py); every candidate the selector proposes
(looser floors than without a scorer) is labelled 1 when a labelled gesture with its id sits within
one word of it, left out when its id is only `acceptable` there, else 0. Settings (regularisation,
threshold) are chosen by 5-fold cross-validation grouped by sentence, scoring the selections the
selector then makes (one per word, spacing, no repeats) with the benchmark's F1, among settings
whose no-gesture false-positive rate stays <= 10 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import semantic_accuracy as sa  # noqa: E402

from gesticulator.semantics.candidates import find_candidates  # noqa: E402
from gesticulator.semantics.embedded import (  # noqa: E402
    POOL_SEMANTIC_FLOOR,
    POOL_SEMANTIC_THRESHOLD,
    POOL_TRIGGER_FLOOR,
    EmbeddedSelector,
)
from gesticulator.semantics.planner import Planner, transcript_from_text  # noqa: E402
from gesticulator.semantics.scorer import default_path, fit_scorer  # noqa: E402

TRAIN_SPLITS = ("dev", "test", "holdout", "holdout2", "holdout3")
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
THRESHOLDS = tuple(np.round(np.arange(0.25, 0.76, 0.05), 2))
MAX_FP_RATE = 0.10


def label(item: dict, cand) -> int | None:
    """1 where the benchmark would count the candidate as a hit, None where its id is only
    `acceptable` there, else 0."""
    if any(sa.matches(exp, cand.gesture_id, cand.word_index) for exp in sa.expected_words(item)):
        return 1
    if cand.gesture_id in set(item.get("acceptable") or []):
        return None
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="print the cross-validation, write nothing")
    ap.add_argument("--out", default=str(default_path()))
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)

    sources = (sa.DATA, sa.HOLDOUT, sa.HOLDOUT2, sa.HOLDOUT3)
    items = [i for p in sources for i in sa.load_items(p) if i["split"] in TRAIN_SPLITS]
    planner = Planner.load()
    lib, index = planner.library, planner.index
    pool = EmbeddedSelector(
        lib,
        scorer=None,
        trigger_floor=POOL_TRIGGER_FLOOR,
        semantic_threshold=POOL_SEMANTIC_THRESHOLD,
        semantic_floor=POOL_SEMANTIC_FLOOR,
    )
    pool.semantic_hits = 3
    t0 = time.perf_counter()
    data = []  # (item, transcript, windows, candidates)
    for it in items:
        tr = transcript_from_text(it["text"])
        windows = find_candidates(tr, lib, index)
        data.append((it, tr, windows, pool.propose(tr, windows)))
    n_cands = sum(len(d[3]) for d in data)
    print(f"{len(items)} sentences ({', '.join(TRAIN_SPLITS)}), {n_cands} candidates, "
          f"{time.perf_counter() - t0:.0f} s\n")  # fmt: skip

    rng = np.random.default_rng(0)
    fold_of = rng.permutation(len(data)) % args.folds

    def training_rows(idx):
        x, y = [], []
        for i in idx:
            it, _, _, cands = data[i]
            for c in cands:
                lab = label(it, c)
                if lab is not None:
                    x.append(c.features)
                    y.append(lab)
        return x, y

    def evaluate(scorer, idx) -> dict:
        sel = EmbeddedSelector(lib, scorer=scorer, density="none")
        rows = []
        for i in idx:
            it, tr, windows, _ = data[i]
            rows.append((it, sa.score_sentence(it, sel.select(tr, windows, density="none"))))
        return sa.summarise(rows)

    print("| C | threshold | CV precision | CV recall | CV F1 | CV no-gesture FP |")
    print("|---|---|---|---|---|---|")
    results = []
    for c in C_GRID:
        fold_scorers = []
        for k in range(args.folds):
            x, y = training_rows([i for i in range(len(data)) if fold_of[i] != k])
            fold_scorers.append(fit_scorer(x, y, c=c))
        for th in THRESHOLDS:
            rows = []
            for k, scorer in enumerate(fold_scorers):
                scorer.threshold = float(th)
                rows += evaluate(scorer, [i for i in range(len(data)) if fold_of[i] == k])["rows"]
            res = sa.summarise(rows)
            results.append((c, float(th), res))
            print(f"| {c} | {th:.2f} | {res['precision']:.3f} | {res['recall']:.3f} | {res['f1']:.3f} | "
                  f"{res['neg_fp']}/{res['neg']} = {res['fp_rate']:.1%} |")  # fmt: skip
    ok = [r for r in results if r[2]["fp_rate"] <= MAX_FP_RATE] or results
    c, th, best = max(ok, key=lambda r: r[2]["f1"])
    print(f"\nChosen: C = {c}, threshold = {th:.2f}: cross-validated F1 {best['f1']:.3f}, "
          f"no-gesture FP {best['fp_rate']:.1%}")  # fmt: skip
    x, y = training_rows(range(len(data)))
    info = {
        "trained_on": [str(p.relative_to(REPO)) for p in sources],
        "splits": list(TRAIN_SPLITS),
        "sentences": len(data),
        "candidates": len(y),
        "positives": int(sum(y)),
        "c": c,
        "cv_folds": args.folds,
        "cv_f1": round(best["f1"], 4),
        "cv_precision": round(best["precision"], 4),
        "cv_recall": round(best["recall"], 4),
        "cv_no_gesture_fp": round(best["fp_rate"], 4),
        "made_by": "benchmarks/train_selector.py",
    }
    scorer = fit_scorer(x, y, c=c, threshold=th, info=info)
    full = evaluate(scorer, range(len(data)))
    print(f"Fitted on all {len(data)} sentences: training-set F1 {full['f1']:.3f} "
          f"(FP {full['fp_rate']:.1%}); the independent check is holdout4 in semantic_accuracy.py")  # fmt: skip
    print("\nWeights (standardised features):")
    for name, w in sorted(zip(scorer.names, scorer.weights, strict=True), key=lambda t: -abs(t[1])):
        print(f"  {name:20s} {w:+.3f}")
    if not args.dry_run:
        print(f"\nwrote {scorer.save(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
