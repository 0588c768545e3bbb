"""The local severity classifier: hashed n-gram features and ordinal linear heads, run with numpy.

Per category there are three heads, one per threshold (low, medium, high), each a logistic
regression saying whether the text is at least that severe; the severity is the highest threshold
whose head says yes. The weights ship in the package (weights.npz); ``python -m
stockade.safety.classifier.train`` reproduces them.
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from stockade.safety.base import Category, Severity
from stockade.safety.classifier import features

WEIGHTS = Path(__file__).resolve().parent / "weights.npz"
CATEGORIES = tuple(Category)
THRESHOLDS = (Severity.LOW, Severity.MEDIUM, Severity.HIGH)

# Texts are rated in windows of WINDOW tokens, overlapping by half, and each category takes its
# worst window: in one vector a harmful sentence would be diluted by whatever surrounds it. The
# training examples are one or two sentences (mostly under 30 tokens), so a window holds a whole
# example-sized span, and with this overlap every span of up to STRIDE tokens lies whole in one.
WINDOW = 48
STRIDE = WINDOW // 2

Matrix = npt.NDArray[np.float32]


class ClassifierUnavailable(RuntimeError):
    """The classifier cannot rate texts (its weights are missing or unreadable): fail closed."""


@dataclass(frozen=True, slots=True)
class Heads:
    """coef: (categories, thresholds, features); intercept: (categories, thresholds)."""

    coef: Matrix
    intercept: Matrix

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, coef=self.coef, intercept=self.intercept, dimensions=np.int64(features.DIMENSIONS),
            categories=np.array([c.value for c in CATEGORIES]),
        )

    @classmethod
    def load(cls, path: Path) -> Heads:
        try:
            with np.load(path, allow_pickle=False) as data:
                coef, intercept = data["coef"], data["intercept"]
                dimensions, categories = int(data["dimensions"]), [str(c) for c in data["categories"]]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise ClassifierUnavailable(
                f"the local safety classifier's weights at {path} are missing or unreadable ({exc}); "
                "reinstall stockade, or rebuild them with `python -m stockade.safety.classifier.train`"
            ) from exc
        shape = (len(CATEGORIES), len(THRESHOLDS))
        if (
            dimensions != features.DIMENSIONS or categories != [c.value for c in CATEGORIES]
            or coef.shape != (*shape, dimensions) or intercept.shape != shape
        ):
            raise ClassifierUnavailable(
                f"the local safety classifier's weights at {path} do not fit this version of stockade; "
                "rebuild them with `python -m stockade.safety.classifier.train`"
            )
        return cls(coef.astype(np.float32), intercept.astype(np.float32))

    def logits(self, tokens: list[str]) -> Matrix:
        """(categories, thresholds) decision values for one window: positive means "at least"."""
        indices, values = features.vector(tokens)
        return self.coef[:, :, indices] @ values + self.intercept

    def severities(self, tokens: list[str]) -> dict[Category, Severity]:
        rated = highest(self.logits(tokens) > 0)
        return {category: Severity(int(level)) for category, level in zip(CATEGORIES, rated, strict=True)}


LEVELS = np.array([int(t) for t in THRESHOLDS], dtype=np.int64)


def highest(passed: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """The highest threshold passed (0, safe, when none) along the last axis, the thresholds'."""
    return np.asarray(np.max(np.where(passed, LEVELS, 0), axis=-1), dtype=np.int64)


def windows(tokens: list[str]) -> list[list[str]]:
    if len(tokens) <= WINDOW:
        return [tokens]
    starts = list(range(0, len(tokens) - WINDOW, STRIDE)) + [len(tokens) - WINDOW]
    return [tokens[start : start + WINDOW] for start in starts]


class LocalClassifier:
    """The default :class:`~stockade.safety.Classifier`: loads the shipped weights once, and rates
    texts in a thread (a 200-token prompt takes a few hundred microseconds of CPU, too long to
    hold the event loop)."""

    def __init__(self, weights: Path = WEIGHTS) -> None:
        self.heads = Heads.load(weights)

    async def classify(self, texts: Sequence[str]) -> list[dict[Category, Severity]]:
        return await asyncio.to_thread(self.rate, texts)

    def rate(self, texts: Sequence[str]) -> list[dict[Category, Severity]]:
        return [self.rate_one(text) for text in texts]

    def rate_one(self, text: str) -> dict[Category, Severity]:
        rated = [self.heads.severities(window) for window in windows(features.words(text))]
        return {category: max(r[category] for r in rated) for category in CATEGORIES}
