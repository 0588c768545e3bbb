"""A policy compiled for the request path: which filters run on a text, and Azure's
``content_filter_results`` for what they found.

Only the filters that run put keys in the results (Azure sends none for the others): the harm
categories only when a classifier is configured, ``profanity``, ``custom_blocklists`` and the
prompt shields (``jailbreak``, ``indirect_attack``, on prompts) and
``personally_identifiable_information`` (on completions) only when the policy turns them on.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stockade.errors import ContentFilterFailed
from stockade.safety.base import Category, Classifier, Severity
from stockade.safety.blocklists import CompiledBlocklist, Matcher
from stockade.safety.classifier.errors import ClassifierUnavailable
from stockade.safety.phi.entities import CATEGORY as PII
from stockade.safety.phi.pii import PII_TAIL
from stockade.safety.policy import Direction, Policy, ShieldMode
from stockade.safety.shields import Detector, Shield, parts, shared_detector
from stockade.tracebacks import without_messages

if TYPE_CHECKING:
    from stockade.safety.phi.guard import PhiGuard
    from stockade.safety.phi.pii import PiiScreen

log = logging.getLogger(__name__)

PROFANITY = "profanity"
CUSTOM_BLOCKLISTS = "custom_blocklists"
NOT_FILTERED = {"code": "content_filter_error", "message": "The contents are not filtered"}


@dataclass(frozen=True, slots=True)
class Decision:
    """What a filter decided, as metadata: never the text that triggered it."""

    direction: Direction
    category: str
    action: str  # "block", "annotate" (found, let through) or "error" (failed open)


@dataclass(frozen=True, slots=True)
class Verdict:
    results: dict[str, Any]
    filtered: bool
    decisions: tuple[Decision, ...]


class Screen:
    def __init__(
        self,
        policy: Policy,
        blocklists: Sequence[CompiledBlocklist],
        profanity: Matcher | None,
        classifier: Classifier | None,
        detector: Callable[[], Detector] = shared_detector,
        phi: PhiGuard | None = None,
        pii: PiiScreen | None = None,
    ) -> None:
        """``detector`` gives the prompt shields' detector, loaded on first use (in a thread);
        ``pii`` screens completions for PII, when the policy turns it on."""
        self.policy = policy
        self.phi = phi  # PHI protection, when the policy turns it on: a stage of its own
        self.pii = pii
        self.blocklists = tuple(blocklists)
        self.profanity = profanity
        self.classifier = classifier
        self.detector = detector
        modes = {Shield.JAILBREAK: policy.jailbreak, Shield.INDIRECT_ATTACK: policy.indirect_attack}
        self.shields = {shield: mode for shield, mode in modes.items() if mode is not ShieldMode.OFF}
        # Nothing to run: the request path skips screening altogether.
        self.idle = (
            not self.blocklists and profanity is None and classifier is None and not self.shields and pii is None
        )
        matchers = [b.matcher for b in self.blocklists] + ([profanity] if profanity else [])
        self.tail = max([m.tail for m in matchers] + ([PII_TAIL] if pii else []), default=0)
        self.matches_off_loop = any(m.has_patterns for m in matchers)

    async def check(
        self, texts: Sequence[str], direction: Direction, *, final: bool = True, roles: Sequence[str] | None = None,
        reread: int = 0, callers: re.Pattern[str] | None = None, redact: bool = False,
    ) -> Verdict:
        """Screen ``texts``; ``final`` False for a streamed completion's unfinished text; ``roles``
        the chat messages' (None: a user's texts), which say what the prompt shields read.
        ``reread``, ``callers`` and ``redact`` are for PII on completions (``PiiScreen.check``).
        Raises ``ContentFilterFailed`` if a filter fails and the policy fails closed."""
        try:
            return await self._check(texts, direction, final, roles, reread, callers, redact)
        except Exception as exc:
            # A classifier's own account of why it cannot run is written for the operator; any
            # other message may quote the text screened, so the traceback goes without it.
            reason = str(exc) if isinstance(exc, ClassifierUnavailable) else None
            log.error("content filter of policy %r failed: %s\n%s", self.policy.name,
                      reason or "", without_messages(exc))
            if not self.policy.fail_open:
                raise ContentFilterFailed(self.policy.name, reason) from None
            return Verdict({"error": dict(NOT_FILTERED)}, False, (Decision(direction, "error", "error"),))

    async def _check(
        self, texts: Sequence[str], direction: Direction, final: bool, roles: Sequence[str] | None,
        reread: int, callers: re.Pattern[str] | None, redact: bool,
    ) -> Verdict:
        results: dict[str, Any] = {}
        decisions: list[Decision] = []
        if self.classifier is not None:
            for category, severity in (await self._severities(texts)).items():
                rule = self.policy.rule(category, direction)
                filtered = rule.filters(severity)
                results[category.value] = {"filtered": filtered, "severity": str(severity)}
                if severity >= rule.threshold:
                    decisions.append(Decision(direction, category.value, "block" if filtered else "annotate"))
        if self.shields and direction is Direction.PROMPT:
            await asyncio.to_thread(self._shield, texts, roles, results, decisions)
        if self.matches_off_loop:
            await asyncio.to_thread(self._match, texts, direction, final, results, decisions)
        else:  # exact terms only: a few microseconds, less than a thread's hop
            self._match(texts, direction, final, results, decisions)
        if self.pii is not None and direction is Direction.COMPLETION:
            results[PII] = await self.pii.check(texts, reread=reread, callers=callers, redact=redact)
            if results[PII]["detected"]:
                decisions.append(Decision(direction, PII, "block" if self.pii.blocks else "annotate"))
        filtered = any(value.get("filtered") for value in results.values())
        return Verdict(results, filtered, tuple(decisions))

    def _match(
        self, texts: Sequence[str], direction: Direction, final: bool,
        results: dict[str, Any], decisions: list[Decision],
    ) -> None:
        """The profanity list's and the blocklists' results and decisions, added to those given."""
        if self.profanity is not None:
            detected = any(self.profanity.found(text, final=final) for text in texts)
            results[PROFANITY] = {"filtered": detected, "detected": detected}
            if detected:
                decisions.append(Decision(direction, PROFANITY, "block"))
        if self.blocklists:
            hits = [b.name for b in self.blocklists if any(b.matcher.found(t, final=final) for t in texts)]
            results[CUSTOM_BLOCKLISTS] = {
                "filtered": bool(hits),
                "details": [{"filtered": True, "id": name} for name in hits],
            }
            if hits:
                decisions.append(Decision(direction, CUSTOM_BLOCKLISTS, "block"))

    def _shield(
        self, texts: Sequence[str], roles: Sequence[str] | None, results: dict[str, Any], decisions: list[Decision],
    ) -> None:
        """The prompt shields' results and decisions, added to those given. CPU work: in a thread."""
        detector = self.detector()
        for shield, read in parts(texts, roles, frozenset(self.shields)).items():
            detected = detector.detect(read, shield)
            filtered = detected and self.shields[shield] is ShieldMode.BLOCK
            results[shield.value] = {"filtered": filtered, "detected": detected}
            if detected:
                decisions.append(Decision(Direction.PROMPT, shield.value, "block" if filtered else "annotate"))

    async def _severities(self, texts: Sequence[str]) -> dict[Category, Severity]:
        """The highest severity the classifier gives any of the texts, per category."""
        assert self.classifier is not None
        rated = await self.classifier.classify(texts)
        if len(rated) != len(texts):
            raise ValueError(f"the classifier rated {len(rated)} of {len(texts)} texts")
        return {
            category: max((r[category] for r in rated), default=Severity.SAFE) for category in Category
        }
