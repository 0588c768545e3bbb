"""The guard-model classifier: texts rated by a guard model through its prompt format, on a
deployment that ``complete`` reaches (the resource's own inference core: any backend)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from stockade.safety.base import Category, Severity
from stockade.safety.guard.formats import GuardAnswer, GuardFormat, GuardPrompt

Complete = Callable[[GuardPrompt], Coroutine[Any, Any, GuardAnswer]]


class GuardClassifier:
    """Rates the texts of one ``classify`` call together, in one prompt per policy of the format:
    the texts are one prompt's messages (or one completion), which is what a policy decides on,
    and harm spread over several messages is seen whole. It costs one round trip per check
    however many messages a prompt has. Every text gets that one rating.

    Anything short of a readable answer within ``timeout`` seconds raises: callers fail closed."""

    def __init__(self, form: GuardFormat, complete: Complete, *, timeout: float, unsafe: Severity) -> None:
        self.format = form
        self.complete = complete
        self.timeout = timeout
        self.unsafe = unsafe

    async def classify(self, texts: Sequence[str]) -> list[dict[Category, Severity]]:
        if not any(text.strip() for text in texts):  # nothing to judge (a stream's last, empty window)
            return [dict.fromkeys(Category, Severity.SAFE) for _ in texts]
        prompts = self.format.prompts("\n\n".join(texts))
        # A task group: when one call fails or time runs out, the others are cancelled too.
        try:
            async with asyncio.timeout(self.timeout), asyncio.TaskGroup() as group:
                calls = [group.create_task(self.complete(prompt)) for prompt in prompts]
        except ExceptionGroup as failed:
            raise failed.exceptions[0]  # noqa: B904 (the first failure is the cause, as it was raised)
        rated = self.format.severities([call.result() for call in calls], self.unsafe)
        return [dict(rated) for _ in texts]
