"""What ``stockade safety eval`` reports of the prompt shields: the shipped detector scored on
the shipped splits, each shield on the examples it reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stockade.safety.classifier.metrics import Score, score
from stockade.safety.shields import dataset
from stockade.safety.shields.dataset import Split
from stockade.safety.shields.model import Detector
from stockade.safety.shields.shield import Shield


@dataclass(frozen=True, slots=True)
class ShieldEvaluation:
    split: Split
    scores: dict[Shield, Score]
    missed: dict[Shield, list[str]]  # attacks not detected
    false_alarms: dict[Shield, list[str]]  # benign texts detected as attacks

    def as_dict(self) -> dict[str, object]:
        return {
            str(shield): {
                **s.as_dict(), "missed": self.missed[shield], "false_alarms": self.false_alarms[shield],
            }
            for shield, s in self.scores.items()
        }


def evaluate(detector: Detector, split: Split) -> ShieldEvaluation:
    scores, missed, false_alarms = {}, {}, {}
    for shield in Shield:
        examples = dataset.load(split, shield)
        truth = np.array([e.attack for e in examples])
        found = np.array([detector.detect([e.text], shield) for e in examples])
        scores[shield] = score(truth, found)
        missed[shield] = [e.text for e, t, f in zip(examples, truth, found, strict=True) if t and not f]
        false_alarms[shield] = [e.text for e, t, f in zip(examples, truth, found, strict=True) if f and not t]
    return ShieldEvaluation(split, scores, missed, false_alarms)
