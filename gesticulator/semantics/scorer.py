"""The embedded selector's learned evidence combiner: logistic regression over candidate features.

The selector's evidence (a trigger match, the phrase's and the word's embedding scores, how much
the whole sentence is about the gesture and how far ahead of the other gestures it is, the kind of
word, the gesture's category…) used to meet hand-set floors one at a time. This module weighs it
all at once: P(a candidate is a gesture a person would place there) = sigmoid(w · features + b),
with weights fitted on labelled sentences (`fit_scorer`, driven by `benchmarks/train_selector.py`)
and a threshold chosen by cross-validation. The features are gesture-agnostic (categories, not
ids), so gestures a user adds to the library are scored the same way.

Applying it needs numpy only; fitting uses scikit-learn. The fitted model ships as
`checkpoints/selector_scorer.json` (a few hundred bytes of weights and the figures it was chosen on).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gesticulator.errors import InputFileError

SCORER_FORMAT = "gesticulator-selector-scorer"
SCORER_VERSION = 1
DEFAULT_FILE = "selector_scorer.json"
CATEGORIES = ("emblem", "metaphoric", "deictic", "iconic", "beat", "adaptor")
KINDS = ("trigger", "semantic", "count", "act")


def feature_names() -> tuple[str, ...]:
    """The features, in the order the weights use (see `embedded.candidate_features`)."""
    return (
        *(f"kind_{k}" for k in KINDS),
        "trigger_len",
        "phrase_trigger",
        "stem_only",
        "window_score",
        "window_size",
        "word_score",
        "sentence_score",
        "sentence_margin",
        "sentence_top1",
        "sentence_top3",
        "sentence_max",
        "context_score",
        "context_drop",
        "counter_score",
        "counter_margin",
        "context_counter",
        "semantic_x_window",
        "semantic_x_word",
        "trigger_x_sentence",
        "rivals",
        "first_word",
        "question",
        "pronoun",
        "weak_deictic",
        "sentence_words",
        *(f"cat_{c}" for c in CATEGORIES),
    )


def default_path() -> Path:
    from gesticulator.resources import data_dir

    try:
        return data_dir("checkpoints") / DEFAULT_FILE
    except FileNotFoundError:
        return Path("checkpoints") / DEFAULT_FILE


@dataclass
class CandidateScorer:
    """Standardised features -> logistic regression -> probability; keep at >= `threshold`."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    info: dict[str, Any] = field(default_factory=dict)

    def matrix(self, features: Sequence[dict[str, float]]) -> np.ndarray:
        x = np.array([[float(f.get(n, 0.0)) for n in self.names] for f in features], dtype=np.float64)
        return x.reshape(len(features), len(self.names))

    def probability(self, features: Sequence[dict[str, float]]) -> np.ndarray:
        """(N,) probabilities for N feature dicts (missing features count as 0)."""
        if not features:
            return np.zeros(0)
        z = ((self.matrix(features) - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    # -- files ---------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> CandidateScorer | None:
        """The scorer in `path` (default: the shipped one). None when the default is not installed
        (the selector then falls back to its hand-set floors); a bad explicit file is an error."""
        p = Path(path) if path is not None else default_path()
        if not p.is_file():
            if path is None:
                return None
            raise InputFileError(f"selector scorer not found: {p}", "check the path")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            if d.get("format") != SCORER_FORMAT or d.get("version") != SCORER_VERSION:
                raise ValueError("not a selector scorer of this version")
            return cls(
                names=tuple(d["features"]),
                mean=np.asarray(d["mean"], dtype=np.float64),
                scale=np.asarray(d["scale"], dtype=np.float64),
                weights=np.asarray(d["weights"], dtype=np.float64),
                bias=float(d["bias"]),
                threshold=float(d["threshold"]),
                info=dict(d.get("info", {})),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise InputFileError(f"{p} is not a valid selector scorer ({e})", "retrain it") from None

    def save(self, path: str | os.PathLike) -> Path:
        from gesticulator.io.atomic import write_text_atomic

        d = {
            "format": SCORER_FORMAT,
            "version": SCORER_VERSION,
            "features": list(self.names),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "weights": [round(float(v), 6) for v in self.weights],
            "bias": round(float(self.bias), 6),
            "threshold": round(float(self.threshold), 4),
            "info": self.info,
        }
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(p, json.dumps(d, indent=1) + "\n")
        return p


def fit_scorer(
    features: Sequence[dict[str, float]],
    labels: Sequence[int],
    *,
    c: float = 1.0,
    threshold: float = 0.5,
    info: dict[str, Any] | None = None,
) -> CandidateScorer:
    """Fit the logistic regression (L2, strength 1/c, balanced classes off: the base rate is part
    of what it learns) on feature dicts with 0/1 labels."""
    from sklearn.linear_model import LogisticRegression

    names = feature_names()
    scorer = CandidateScorer(
        names, np.zeros(len(names)), np.ones(len(names)), np.zeros(len(names)), 0.0, threshold
    )
    x = scorer.matrix(features)
    y = np.asarray(labels, dtype=int)
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    model = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
    return CandidateScorer(
        names, mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]), threshold,
        dict(info or {}),
    )  # fmt: skip
