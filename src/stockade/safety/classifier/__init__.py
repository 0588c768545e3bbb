"""The local severity classifier: trained in this repository on a dataset the team wrote, shipped
with its weights, run on the CPU with no network. See docs/safety.md for how well it does."""

from stockade.safety.classifier.errors import ClassifierUnavailable
from stockade.safety.classifier.model import LocalClassifier

__all__ = ["ClassifierUnavailable", "LocalClassifier"]
