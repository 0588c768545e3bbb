"""The prompt shields' detector: per shield, one logistic head over a window's mean MiniLM token
vector and its lexical signals, in numpy.

A text is read in the windows the harm classifier uses (each sentence, a long one in overlapping
windows), and whole when short; it is an attack when any window's head says so, so an injection
hidden among ordinary sentences is not diluted by them. The weights ship in the package
(weights.npz); ``python -m stockade.safety.shields.train`` reproduces them.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from stockade.safety.classifier.features import Embedder, shared_embedder
from stockade.safety.classifier.model import spans
from stockade.safety.classifier.weights import WeightsFile
from stockade.safety.shields import lexical
from stockade.safety.shields.shield import Shield

WEIGHTS = Path(__file__).resolve().parent / "weights.npz"
SHIELDS = tuple(Shield)
# A text of at most this many tokens is also read whole: what the heads were fitted on (the
# examples are one to three sentences), and a two-sentence attack reads as one.
WHOLE_TOKENS = 64

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Heads:
    """coef: (shields, dimensions + signals); intercept: (shields,)."""

    coef: Matrix
    intercept: Matrix

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, coef=self.coef, intercept=self.intercept,
            shields=np.array([s.value for s in SHIELDS]), signals=np.array(lexical.NAMES),
        )

    @classmethod
    def load(cls, path: Path, dimensions: int) -> Heads:
        weights = WeightsFile(path, "the prompt shields'", "python -m stockade.safety.shields.train")
        arrays = weights.read(("coef", "intercept", "shields", "signals"))
        coef, intercept = arrays["coef"], arrays["intercept"]
        shields, signals = [str(s) for s in arrays["shields"]], tuple(str(s) for s in arrays["signals"])
        width = dimensions + len(lexical.NAMES)
        if shields != [s.value for s in SHIELDS] or signals != lexical.NAMES or coef.shape != (len(SHIELDS), width):
            raise weights.misfit()
        return cls(coef.astype(np.float32), intercept.astype(np.float32))

    def logits(self, features: Matrix) -> Matrix:
        """(windows, shields) of (windows, dimensions + signals) features: > 0 is an attack."""
        return np.asarray(features @ self.coef.T + self.intercept, dtype=np.float32)


class Featurizer:
    """Each window's normalised mean token vector, with its lexical signals appended."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    @property
    def width(self) -> int:
        return self.embedder.dimensions + len(lexical.NAMES)

    def windows(self, text: str) -> Matrix:
        """(windows, width) features of the parts of ``text`` the detector reads."""
        ids, starts = self.embedder.tokens(text)
        if not len(ids):
            return np.zeros((0, self.width), dtype=np.float32)
        parts = spans(starts, text)
        if len(ids) <= WHOLE_TOKENS and len(parts) > 1:
            parts.append((0, len(ids)))
        return self.features(text, ids, starts, parts)

    def whole(self, text: str) -> Matrix:
        """(1, width): the text read as one window, as the heads are fitted."""
        ids, starts = self.embedder.tokens(text)
        return self.features(text, ids, starts, [(0, len(ids))])

    def features(
        self, text: str, ids: npt.NDArray[np.int64], starts: npt.NDArray[np.int64], parts: list[tuple[int, int]],
    ) -> Matrix:
        bounds = np.append(starts, len(text))  # where each token starts, and the text's end
        tokens = np.array(parts, dtype=np.int64).reshape(-1, 2)
        characters = np.stack([bounds[tokens[:, 0]], bounds[tokens[:, 1]]], axis=1)
        signals = lexical.window_signals(lexical.matches(text), characters)
        return np.concatenate([self.embedder.window_vectors(ids, parts), signals], axis=1).astype(np.float32)


class Detector:
    """Says whether texts carry a jailbreak or an indirect attack. Loads the shipped weights once;
    ``detect`` is CPU work of about a millisecond for a 200-token prompt, so callers on the event
    loop run it in a thread."""

    def __init__(self, weights: Path = WEIGHTS, embedder: Embedder | None = None) -> None:
        self.featurizer = Featurizer(embedder or shared_embedder())
        self.heads = Heads.load(weights, self.featurizer.embedder.dimensions)

    def detect(self, texts: Sequence[str], shield: Shield) -> bool:
        """Whether any of ``texts`` is an attack of that kind."""
        column = SHIELDS.index(shield)
        return any(self.score(text)[column] > 0 for text in texts)

    def score(self, text: str) -> Matrix:
        """(shields,): each shield's highest logit over the text's windows (-inf for no words)."""
        features = self.featurizer.windows(text)
        if not len(features):
            return np.full(len(SHIELDS), -np.inf, dtype=np.float32)
        return np.asarray(self.heads.logits(features).max(axis=0), dtype=np.float32)


_loading = threading.Lock()


def shared_detector() -> Detector:
    """The process's one detector, loaded on first use (its token table is 47 MB): a deployment
    whose policy turns no shield on never loads it. The first requests may come at once, each in
    its own thread; the lock makes them share one load. Raises ``ClassifierUnavailable`` when it
    cannot load; the next call tries again."""
    with _loading:
        return _loaded()


@functools.cache
def _loaded() -> Detector:
    return Detector()
