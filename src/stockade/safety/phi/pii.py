"""PII on completions: Azure's ``personally_identifiable_information`` category for the
identifiers a model writes, found by PHI protection's analyzer.

Two kinds of finding do not count. One that lies wholly in text a stream's guard re-reads (the
tail of what it already judged, read again for what spans the boundary) was judged then. One
that touches a value the caller sent, which PHI protection redacted and then put back in the
reply, is the caller's own: the model never saw it, so it did not produce it."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from stockade.safety.phi.analyzer import Finding, PhiAnalyzer
from stockade.safety.phi.entities import result
from stockade.safety.policy import PiiRule, ShieldMode

# How much of a streamed completion's text the guard holds back, unsent, when PII is screened:
# an identifier split across windows is then whole in a window judged before any of it is sent,
# if it is no longer than this.
PII_TAIL = 64
MASK = "*"  # as Azure AI Language's default redaction: each character of an identifier masked


def callers_values(values: Iterable[str]) -> re.Pattern[str] | None:
    """What finds the caller's own values (those PHI protection put back) in a reply: each where
    it stands alone, so that a short one (an age, "93") hides nothing the model wrote around it
    ("617-555-0193")."""
    alternatives = sorted({value for value in values if value}, key=len, reverse=True)
    if not alternatives:
        return None
    either = "|".join(re.escape(value) for value in alternatives)
    return re.compile(rf"(?<!\w)(?:{either})(?!\w)", re.IGNORECASE)


class PiiScreen:
    def __init__(self, rule: PiiRule, analyzer: PhiAnalyzer) -> None:
        self.rule = rule
        self.analyzer = analyzer
        self.blocks = rule.mode is ShieldMode.BLOCK

    async def check(
        self, texts: Sequence[str], *, reread: int = 0, callers: re.Pattern[str] | None = None,
        redact: bool = False,
    ) -> dict[str, Any]:
        """The category's result for ``texts`` (a choice's text first, then its tool calls'
        arguments). ``reread``: how many characters at the start of the first text were judged
        before; ``callers``: the caller's own values; ``redact``: add Azure's ``redacted_text``,
        the first text with what was found masked (when the policy annotates only). Raises if
        the analyzer cannot run."""
        found = await self.analyzer.find(texts, self.rule.entities)
        counted = [
            [f for f in findings if f.end > (reread if index == 0 else 0) and not _callers(text, f, callers)]
            for index, (text, findings) in enumerate(zip(texts, found, strict=True))
        ]
        entities = {f.entity for findings in counted for f in findings}
        if not redact or self.blocks or not counted[0]:
            return result(entities, blocks=self.blocks)
        return result(
            entities, blocks=self.blocks, redacted={f.entity for f in counted[0]},
            redacted_text=_masked(texts[0], counted[0]),
        )


def _callers(text: str, finding: Finding, callers: re.Pattern[str] | None) -> bool:
    if callers is None:
        return False
    return any(m.start() < finding.end and finding.start < m.end() for m in callers.finditer(text))


def _masked(text: str, findings: Collection[Finding]) -> str:
    masked = list(text)
    for finding in findings:
        masked[finding.start:finding.end] = MASK * (finding.end - finding.start)
    return "".join(masked)
