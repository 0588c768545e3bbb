"""Hashed word and character n-grams: the features the local classifier is trained and run on.

One implementation serves both, so what training saw is what serving computes. Hashing (CRC-32,
which is stable across processes, unlike ``hash``) needs no vocabulary to ship: a text's features
are indices into a fixed-width weight matrix.
"""

from __future__ import annotations

import functools
import re
import zlib

import numpy as np
import numpy.typing as npt

DIMENSIONS = 1 << 16
CHAR_NGRAMS = (3, 4, 5)
WORD = re.compile(r"\w+")

Indices = npt.NDArray[np.int64]
Values = npt.NDArray[np.float32]


def words(text: str) -> list[str]:
    """The tokens the classifier counts and windows by."""
    return WORD.findall(text.lower())


def vector(tokens: list[str]) -> tuple[Indices, Values]:
    """The L2-normalised sparse vector of ``tokens``: sorted unique indices and their values."""
    if not tokens:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    bigrams = np.array([_hashed("b:" + a + " " + b) for a, b in zip(tokens, tokens[1:])], dtype=np.int64)
    signed = np.concatenate([*(_word_features(token) for token in tokens), bigrams])
    # The sign bit keeps colliding features from only ever adding up (the hashing trick).
    indices, inverse = np.unique(signed >> 1, return_inverse=True)
    values = np.bincount(inverse, weights=(signed & 1) * 2.0 - 1.0).astype(np.float32)
    norm = float(np.linalg.norm(values))
    return indices, values / norm if norm else values


@functools.lru_cache(maxsize=1 << 16)
def _word_features(token: str) -> Indices:
    padded = f" {token} "
    grams = ["w:" + token] + [
        padded[i : i + n] for n in CHAR_NGRAMS for i in range(len(padded) - n + 1)
    ]
    return np.array([_hashed(gram) for gram in grams], dtype=np.int64)


def _hashed(feature: str) -> int:
    """An index into DIMENSIONS shifted left by one, with the sign in the lowest bit."""
    h = zlib.crc32(feature.encode("utf-8"))
    return ((h % DIMENSIONS) << 1) | (h >> 31)
