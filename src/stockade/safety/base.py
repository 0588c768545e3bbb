"""The categories and severities of Azure's content filters, and the one interface classifiers
implement: texts in, a severity per category out."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol


class Category(enum.StrEnum):
    """Azure's harm categories, spelled as on the wire (`content_filter_results` keys)."""

    HATE = "hate"
    SEXUAL = "sexual"
    VIOLENCE = "violence"
    SELF_HARM = "self_harm"


class Severity(enum.IntEnum):
    """Ordered, so that a policy's threshold is a comparison; ``str(severity)`` is the wire
    spelling (`"safe"`, `"low"`, `"medium"`, `"high"`)."""

    SAFE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    def __str__(self) -> str:
        return self.name.lower()


class Classifier(Protocol):
    """Rates texts for each category. It raises when it cannot rate them: callers fail closed."""

    async def classify(self, texts: Sequence[str]) -> list[dict[Category, Severity]]: ...
