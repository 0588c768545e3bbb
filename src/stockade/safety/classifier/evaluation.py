"""What ``stockade safety eval`` reports: the shipped classifier scored on the shipped splits."""

from __future__ import annotations

from dataclasses import dataclass

from stockade.safety.base import Category, Severity
from stockade.safety.classifier import dataset
from stockade.safety.classifier.dataset import Split
from stockade.safety.classifier.metrics import Score, table
from stockade.safety.classifier.model import LocalClassifier

# Azure's default policy blocks every category at medium and above.
DEFAULT_BLOCK_AT = Severity.MEDIUM


@dataclass(frozen=True, slots=True)
class Evaluation:
    split: Split
    examples: int
    scores: dict[Category, dict[Severity, Score]]
    high: int  # examples labelled high in some category
    unblocked_high: list[str]  # of those, the texts the default policy would let through
    benign: int  # examples labelled below medium in every category (the clinical ones among them)
    blocked_benign: int  # of those, how many the default policy would block

    def as_dict(self) -> dict[str, object]:
        return {
            "split": self.split,
            "examples": self.examples,
            "categories": {
                str(c): {str(t): s.as_dict() for t, s in row.items()} for c, row in self.scores.items()
            },
            "default_policy": {
                "block_at": str(DEFAULT_BLOCK_AT), "high_examples": self.high,
                "high_unblocked": len(self.unblocked_high), "unblocked_texts": self.unblocked_high,
                "benign_examples": self.benign, "benign_blocked": self.blocked_benign,
            },
        }


def evaluate(classifier: LocalClassifier, split: Split) -> Evaluation:
    examples = dataset.load(split)
    rated = classifier.rate([e.text for e in examples])
    labels, predicted = dataset.severities([e.labels for e in examples]), dataset.severities(rated)
    high = labels.max(axis=1) >= Severity.HIGH
    benign = labels.max(axis=1) < DEFAULT_BLOCK_AT
    passes = predicted.max(axis=1) < DEFAULT_BLOCK_AT
    return Evaluation(
        split=split, examples=len(examples), scores=table(labels, predicted), high=int(high.sum()),
        unblocked_high=[e.text for e, yes in zip(examples, high & passes, strict=True) if yes],
        benign=int(benign.sum()), blocked_benign=int((benign & ~passes).sum()),
    )
