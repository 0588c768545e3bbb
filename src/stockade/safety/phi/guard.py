"""A policy's PHI protection, compiled: what it looks for, what it does with what it finds, and
Azure's ``personally_identifiable_information`` result for each prompt."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stockade.errors import ContentFilterFailed
from stockade.safety.phi.analyzer import PhiAnalyzer
from stockade.safety.phi.entities import CATEGORY, result
from stockade.safety.phi.substitution import Substitutions
from stockade.safety.policy import Direction, PhiMode, Policy
from stockade.safety.screen import NOT_FILTERED, Decision
from stockade.tracebacks import without_messages

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Protected:
    prompts: list[list[str]]  # each prompt's texts, as the model may see them
    results: list[dict[str, Any]]  # what each prompt adds to its content_filter_results
    substitutions: Substitutions | None  # None when nothing was replaced
    decisions: tuple[Decision, ...]
    blocked: bool


class PhiGuard:
    def __init__(self, policy: Policy, analyzer: PhiAnalyzer) -> None:
        self.policy = policy
        self.rule = policy.phi
        self.analyzer = analyzer

    async def protect(self, prompts: Sequence[Sequence[str]]) -> Protected:
        """Find the identifiers in every text of every prompt (the same value replaced the same
        way in all of them). Raises ``ContentFilterFailed`` if the analyzer fails and the
        policy fails closed."""
        texts = [text for prompt in prompts for text in prompt]
        try:
            found = await self.analyzer.find(texts, self.rule.entities)
        except Exception as exc:
            # The traceback without its message: a message may quote the text analyzed.
            log.error("PHI analysis of policy %r failed:\n%s", self.policy.name, without_messages(exc))
            if not self.policy.fail_open:
                raise ContentFilterFailed(self.policy.name) from None
            return Protected(
                [list(p) for p in prompts], [{"error": dict(NOT_FILTERED)} for _ in prompts], None,
                (Decision(Direction.PROMPT, CATEGORY, "error"),), False,
            )
        substitutions = (
            Substitutions(self.rule.mode is PhiMode.PSEUDONYMIZE, texts) if self.rule.replaces else None
        )
        protected, results, offset = [], [], 0
        for prompt in prompts:
            findings = found[offset:offset + len(prompt)]
            offset += len(prompt)
            if substitutions is not None:
                prompt = [substitutions.apply(text, f) for text, f in zip(prompt, findings, strict=True)]
            protected.append(list(prompt))
            entities = {f.entity for fs in findings for f in fs}
            results.append({CATEGORY: result(
                entities, blocks=self.rule.mode is PhiMode.BLOCK, redacted=entities if self.rule.replaces else (),
            )})
        detected = any(found)
        blocked = detected and self.rule.mode is PhiMode.BLOCK
        action = "block" if self.rule.mode is PhiMode.BLOCK else self.rule.mode.value
        decisions = (Decision(Direction.PROMPT, CATEGORY, action),) if detected else ()
        return Protected(protected, results, substitutions or None, decisions, blocked)
