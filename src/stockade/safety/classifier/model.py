"""The local severity classifier: ordinal linear heads over pooled MiniLM token vectors, in numpy.

Per category there are three heads, one per threshold (low, medium, high), each a logistic
regression saying whether the text is at least that severe; the severity is the highest threshold
whose head says yes. The weights ship in the package (weights.npz); ``python -m
stockade.safety.classifier.train`` reproduces them.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from stockade.safety.base import Category, Severity
from stockade.safety.classifier.features import Embedder, TokenIds, shared_embedder
from stockade.safety.classifier.weights import WeightsFile

WEIGHTS = Path(__file__).resolve().parent / "weights.npz"
CATEGORIES = tuple(Category)
THRESHOLDS = (Severity.LOW, Severity.MEDIUM, Severity.HIGH)

# A text is rated sentence by sentence, a long sentence in windows of WINDOW tokens every STRIDE
# tokens, and each category takes its worst part: in one mean over the whole text a harmful
# sentence would be diluted by whatever surrounds it (padding is the obvious way to hide one).
# With these sizes, any span of up to WINDOW - STRIDE tokens lies whole in some window, beside at
# most STRIDE tokens of anything else; the training examples' sentences are mostly 10-25 tokens.
WINDOW = 16
STRIDE = 4
SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Heads:
    """coef: (categories, thresholds, dimensions); intercept: (categories, thresholds)."""

    coef: Matrix
    intercept: Matrix

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, coef=self.coef, intercept=self.intercept, categories=np.array([c.value for c in CATEGORIES]),
        )

    @classmethod
    def load(cls, path: Path, dimensions: int) -> Heads:
        weights = WeightsFile(path, "the local safety classifier's", "python -m stockade.safety.classifier.train")
        arrays = weights.read(("coef", "intercept", "categories"))
        coef, intercept = arrays["coef"], arrays["intercept"]
        shape = (len(CATEGORIES), len(THRESHOLDS))
        categories = [str(c) for c in arrays["categories"]]
        if categories != [c.value for c in CATEGORIES] or coef.shape != (*shape, dimensions) or intercept.shape != shape:
            raise weights.misfit()
        return cls(coef.astype(np.float32), intercept.astype(np.float32))

    def levels(self, vectors: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.int64]:
        """(vectors, categories) severities of (vectors, dimensions) window vectors."""
        flat = self.coef.reshape(-1, self.coef.shape[-1])
        logits = (vectors @ flat.T).reshape(len(vectors), *self.intercept.shape) + self.intercept
        return highest(logits > 0)


LEVELS = np.array([int(t) for t in THRESHOLDS], dtype=np.int64)


def highest(passed: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """The highest threshold passed (0, safe, when none) along the last axis, the thresholds'."""
    return np.asarray(np.max(np.where(passed, LEVELS, 0), axis=-1), dtype=np.int64)


def spans(starts: TokenIds, text: str) -> list[tuple[int, int]]:
    """(start, end) token indices of the windows to rate: each sentence of ``text`` whole when
    short, in windows of WINDOW tokens every STRIDE when long. ``starts`` are where its tokens
    start in ``text``."""
    ends = np.array([m.end() for m in SENTENCE_END.finditer(text)], dtype=np.int64)
    sentence = np.searchsorted(ends, starts, side="right")  # of each token
    cuts = [0, *(np.flatnonzero(np.diff(sentence)) + 1).tolist(), len(starts)]
    found: list[tuple[int, int]] = []
    for first, end in itertools.pairwise(cuts):
        found += windows(first, end)
    return found


def windows(first: int, end: int) -> list[tuple[int, int]]:
    if end - first <= WINDOW:
        return [(first, end)]
    return [(start, start + WINDOW) for start in [*range(first, end - WINDOW, STRIDE), end - WINDOW]]


class LocalClassifier:
    """The default :class:`~stockade.safety.Classifier`: loads the shipped weights once, and rates
    texts in a thread (a 200-token prompt takes about a millisecond of CPU, too long to hold the
    event loop: docs/performance.md)."""

    def __init__(self, weights: Path = WEIGHTS, embedder: Embedder | None = None) -> None:
        self.embedder = embedder or shared_embedder()
        self.heads = Heads.load(weights, self.embedder.features)

    async def classify(self, texts: Sequence[str]) -> list[dict[Category, Severity]]:
        return await asyncio.to_thread(self.rate, texts)

    def rate(self, texts: Sequence[str]) -> list[dict[Category, Severity]]:
        return [self.rate_one(text) for text in texts]

    def rate_one(self, text: str) -> dict[Category, Severity]:
        ids, starts = self.embedder.tokens(text)
        if not len(ids):  # nothing to rate: no words, so no harm
            return dict.fromkeys(CATEGORIES, Severity.SAFE)
        worst = self.heads.levels(self.embedder.window_features(ids, spans(starts, text))).max(axis=0)
        return {category: Severity(int(level)) for category, level in zip(CATEGORIES, worst, strict=True)}
