"""Precision, recall and F1 of severities, per category and per "flagged at or above" threshold."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from stockade.safety.base import Category, Severity
from stockade.safety.classifier.model import CATEGORIES, THRESHOLDS

Severities = npt.NDArray[np.int64]  # (examples, categories)


@dataclass(frozen=True, slots=True)
class Score:
    precision: float
    recall: float
    f1: float
    support: int  # examples labelled at or above the threshold
    flagged: int  # examples the classifier put at or above it

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def score(truth: npt.NDArray[np.bool_], flagged: npt.NDArray[np.bool_]) -> Score:
    hits = int((truth & flagged).sum())
    precision = hits / int(flagged.sum()) if flagged.any() else 1.0 if not truth.any() else 0.0
    recall = hits / int(truth.sum()) if truth.any() else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(precision, recall, f1, int(truth.sum()), int(flagged.sum()))


def table(labels: Severities, predicted: Severities) -> dict[Category, dict[Severity, Score]]:
    return {
        category: {t: score(labels[:, ci] >= t, predicted[:, ci] >= t) for t in THRESHOLDS}
        for ci, category in enumerate(CATEGORIES)
    }


def mean_f1(labels: Severities, predicted: Severities) -> float:
    """The mean F1 over every category and threshold: what cross-validation maximises."""
    scores = [s.f1 for row in table(labels, predicted).values() for s in row.values()]
    return float(np.mean(scores))
