"""Fits the local classifier on the train split and writes the shipped weights:
``python -m stockade.safety.classifier.train [--output PATH]``.

Deterministic: the same data gives the same weights. The regularisation strength and class
weighting are chosen by cross-validation on the train split alone, folds grouped by the pattern an
example was filled from (fills of one pattern in both a fit and its check would flatter
everything); the held-out split is never read here.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.model_selection import GroupKFold  # type: ignore[import-untyped]

from stockade.safety.classifier import dataset
from stockade.safety.classifier.features import Embedder
from stockade.safety.classifier.metrics import mean_f1
from stockade.safety.classifier.model import CATEGORIES, THRESHOLDS, WEIGHTS, Heads

C_GRID = (4.0, 16.0, 64.0, 256.0)
CLASS_WEIGHTS = (None, "balanced")
FOLDS = 5

Targets = npt.NDArray[np.int64]  # (examples, categories) severities, as dataset.severities gives
Features = npt.NDArray[np.float32]  # (examples, dimensions)


def featurize(embedder: Embedder, texts: Sequence[str]) -> Features:
    """One vector per example, the mean over all its tokens: the heads learn what a whole example
    (one or two sentences) means, and serving rates parts of about that size."""
    ids = embedder.token_ids(list(texts))
    return np.concatenate([embedder.window_features(i, [(0, len(i))]) for i in ids]).astype(np.float32)


def fit(x: Features, y: Targets, c: float, class_weight: str | None) -> Heads:
    """One logistic regression per category and threshold: is the text at least that severe?"""
    shape = (len(CATEGORIES), len(THRESHOLDS))
    coef = np.zeros((*shape, x.shape[1]), dtype=np.float32)
    intercept = np.zeros(shape, dtype=np.float32)
    for (ci, _), (ti, threshold) in itertools.product(enumerate(CATEGORIES), enumerate(THRESHOLDS)):
        flagged = y[:, ci] >= threshold
        if flagged.all() or not flagged.any():  # nothing to tell apart: a constant head
            intercept[ci, ti] = 1.0 if flagged.all() else -1.0
            continue
        head = LogisticRegression(C=c, class_weight=class_weight, max_iter=5000)
        head.fit(x, flagged)
        coef[ci, ti], intercept[ci, ti] = head.coef_[0], head.intercept_[0]
    return Heads(coef, intercept)


def choose(x: Features, y: Targets, groups: Sequence[str]) -> tuple[float, str | None]:
    """The (C, class weight) with the best grouped cross-validated mean F1 over all thresholds."""
    folds = list(GroupKFold(n_splits=FOLDS).split(x, y, groups))

    def score(c: float, weight: str | None) -> float:
        predicted = np.zeros_like(y)
        for fitted, checked in folds:
            predicted[checked] = fit(x[fitted], y[fitted], c, weight).levels(x[checked])
        return mean_f1(y, predicted)

    return max(itertools.product(C_GRID, CLASS_WEIGHTS), key=lambda option: score(*option))


def train() -> tuple[Heads, tuple[float, str | None]]:
    examples = dataset.load("train")
    x, y = featurize(Embedder(), [e.text for e in examples]), dataset.severities([e.labels for e in examples])
    chosen = choose(x, y, [e.group for e in examples])
    return fit(x, y, *chosen), chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=WEIGHTS, help=f"where to write the weights (default {WEIGHTS})")
    args = parser.parse_args()
    heads, (c, weight) = train()
    heads.save(args.output)
    print(f"wrote {args.output}: C={c}, class_weight={weight}, chosen by {FOLDS}-fold grouped cross-validation on train")


if __name__ == "__main__":
    main()
