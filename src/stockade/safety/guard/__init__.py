"""The guard-model classifier: a chat deployment running a safety model (Llama Guard 3,
ShieldGemma) rates texts through that model's own prompt format. See docs/safety.md."""

from stockade.safety.guard.classifier import GuardClassifier
from stockade.safety.guard.formats import (
    FORMATS,
    GuardAnswer,
    GuardFormat,
    GuardPrompt,
    GuardUnreadable,
)

__all__ = ["FORMATS", "GuardAnswer", "GuardClassifier", "GuardFormat", "GuardPrompt", "GuardUnreadable"]
