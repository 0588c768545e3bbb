"""Fits the prompt shields' heads on the train split and writes the shipped weights:
``python -m stockade.safety.shields.train [--output PATH]``.

Deterministic: the same data gives the same weights. Per shield, the features (token vectors,
lexical signals, or both), the regularisation strength and the class weighting are chosen by
cross-validation on the train split alone, folds grouped by the pattern an example was filled
from, each example judged as serving judges it (its worst window); the held-out split is never
read here.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.model_selection import GroupKFold  # type: ignore[import-untyped]

from stockade.safety.classifier.features import Embedder
from stockade.safety.classifier.metrics import score
from stockade.safety.shields import dataset, lexical
from stockade.safety.shields.model import SHIELDS, WEIGHTS, Featurizer, Heads, Matrix
from stockade.safety.shields.shield import Shield

# What the heads read, as the factors on the token vectors' columns and on the signals' columns.
# The signals are 0 or 1 where a unit vector's entries are about 0.05, so scaling them down lets
# one regularisation strength suit both kinds.
FEATURE_SETS = {
    "vectors": (1.0, 0.0), "signals": (0.0, 1.0),
    "both": (1.0, 1.0), "both, signals x0.3": (1.0, 0.3), "both, signals x0.1": (1.0, 0.1),
}
C_GRID = (1.0, 4.0, 16.0, 64.0, 256.0)
CLASS_WEIGHTS = (None, "balanced")
FOLDS = 5

Option = tuple[str, float, str | None]


@dataclass(frozen=True, slots=True)
class Examples:
    """A shield's training examples as features: each whole, each as serving reads it."""

    whole: Matrix  # (examples, width)
    windows: list[Matrix]  # per example, (windows, width)
    attack: npt.NDArray[np.bool_]
    groups: list[str]

    @classmethod
    def of(cls, featurizer: Featurizer, examples: Sequence[dataset.Example]) -> Examples:
        return cls(
            whole=np.concatenate([featurizer.whole(e.text) for e in examples]),
            windows=[featurizer.windows(e.text) for e in examples],
            attack=np.array([e.attack for e in examples]),
            groups=[e.group for e in examples],
        )


def factors(width: int, features: str) -> Matrix:
    """Each column's factor in a feature set: the token vectors come first, then the signals."""
    vectors, signals = FEATURE_SETS[features]
    column = np.full(width, vectors, dtype=np.float32)
    column[width - len(lexical.NAMES):] = signals
    return column


def fit(data: Examples, rows: npt.NDArray[np.int64], option: Option) -> tuple[Matrix, float]:
    """One head: fitted on each chosen example whole, and on every window of the benign ones
    (an attack's windows are not all attacks; a benign text's are all benign)."""
    features, c, weight = option
    benign = [data.windows[i] for i in rows if not data.attack[i]]
    scaled = factors(data.whole.shape[1], features)
    x = np.concatenate([data.whole[rows], *benign]) * scaled
    y = np.concatenate([data.attack[rows], np.zeros(sum(len(w) for w in benign), dtype=bool)])
    head = LogisticRegression(C=c, class_weight=weight, max_iter=5000)
    head.fit(x, y)
    # Folded into the weights, so that serving reads the features as they are.
    return (head.coef_[0] * scaled).astype(np.float32), float(head.intercept_[0])


def predict(data: Examples, rows: npt.NDArray[np.int64], coef: Matrix, intercept: float) -> npt.NDArray[np.bool_]:
    return np.array([bool(len(data.windows[i])) and (data.windows[i] @ coef + intercept).max() > 0 for i in rows])


def choose(data: Examples) -> Option:
    """The option with the best grouped cross-validated F1 (the first of equals, in grid order)."""
    folds = list(GroupKFold(n_splits=FOLDS).split(data.whole, data.attack, data.groups))

    def f1(option: Option) -> float:
        predicted = np.zeros_like(data.attack)
        for fitted, checked in folds:
            predicted[checked] = predict(data, checked, *fit(data, fitted, option))
        return score(data.attack, predicted).f1

    options = list(itertools.product(FEATURE_SETS, C_GRID, CLASS_WEIGHTS))
    return max(options, key=f1)


def train() -> tuple[Heads, dict[Shield, Option]]:
    featurizer = Featurizer(Embedder())
    coef = np.zeros((len(SHIELDS), featurizer.width), dtype=np.float32)
    intercept = np.zeros(len(SHIELDS), dtype=np.float32)
    chosen = {}
    for index, shield in enumerate(SHIELDS):
        data = Examples.of(featurizer, dataset.load("train", shield))
        chosen[shield] = choose(data)
        coef[index], intercept[index] = fit(data, np.arange(len(data.attack)), chosen[shield])
    return Heads(coef, intercept), chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=WEIGHTS, help=f"where to write the weights (default {WEIGHTS})")
    args = parser.parse_args()
    heads, chosen = train()
    heads.save(args.output)
    for shield, (features, c, weight) in chosen.items():
        print(f"{shield}: features={features}, C={c}, class_weight={weight}")
    print(f"wrote {args.output}, options chosen by {FOLDS}-fold grouped cross-validation on train")


if __name__ == "__main__":
    main()
