"""One request's replacements. Each value found (by entity and spelling, whatever its case) has
one stand-in, the same in every message of the request: a placeholder (``<PERSON_1>``) when
redacting, a realistic surrogate when pseudonymizing. The model's reply gets the values back."""

from __future__ import annotations

import json
import random
import re
import secrets
from collections import Counter
from collections.abc import Sequence
from typing import Any

from stockade.safety.phi.analyzer import Finding
from stockade.safety.phi.surrogates import surrogate

_SURROGATE_TRIES = 20
_anonymizer: Any = None


def _engine() -> Any:
    global _anonymizer
    if _anonymizer is None:
        from presidio_anonymizer import AnonymizerEngine

        _anonymizer = AnonymizerEngine()
    return _anonymizer


class Substitutions:
    def __init__(self, pseudonyms: bool, texts: Sequence[str] = (), rng: random.Random | None = None) -> None:
        """``texts``, the request's, are what a surrogate must not already appear in: putting the
        values back would otherwise change text that was never replaced."""
        self.pseudonyms = pseudonyms
        self._taken = "\n".join(texts).casefold()
        self._rng = rng or random.Random(secrets.randbits(64))
        self._by_value: dict[tuple[str, str], str] = {}
        self.originals: dict[str, str] = {}  # stand-in: the value it replaces
        self._counts: Counter[str] = Counter()
        self._pattern: re.Pattern[str] | None = None

    def __bool__(self) -> bool:
        return bool(self.originals)

    def stand_in(self, entity: str, value: str) -> str:
        key = (entity, value.casefold())
        if key not in self._by_value:
            self._by_value[key] = self._new(entity, value)
            self.originals[self._by_value[key]] = value
            self._pattern = None
        return self._by_value[key]

    def _new(self, entity: str, value: str) -> str:
        if self.pseudonyms:
            for _ in range(_SURROGATE_TRIES):
                candidate = surrogate(self._rng, entity, value)
                folded = candidate.casefold()
                if folded not in self._taken and all(folded != s.casefold() for s in self.originals):
                    return candidate
        self._counts[entity] += 1  # a placeholder, also when no fresh surrogate could be found
        return f"<{entity}_{self._counts[entity]}>"

    def apply(self, text: str, findings: Sequence[Finding]) -> str:
        """``text`` with each finding replaced by its stand-in (Presidio's anonymizer, with an
        operator per entity that asks this request's table)."""
        if not findings:
            return text
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        results = [RecognizerResult(f.entity, f.start, f.end, f.score) for f in findings]
        operators = {
            entity: OperatorConfig("custom", {"lambda": lambda value, entity=entity: self.stand_in(entity, value)})
            for entity in {f.entity for f in findings}
        }
        return str(_engine().anonymize(text, results, operators, merge_entities_with_spaces=False).text)

    @property
    def pattern(self) -> re.Pattern[str]:
        """Any stand-in, the longest first; a surrogate only as a whole word."""
        if self._pattern is None:
            alternatives = "|".join(re.escape(s) for s in sorted(self.originals, key=len, reverse=True))
            self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)" if self.pseudonyms else alternatives)
        return self._pattern

    def restore(self, text: str) -> str:
        if not self.originals:
            return text
        return self.pattern.sub(lambda m: self.originals[m.group()], text)

    def restore_json(self, text: str) -> str:
        """In a JSON document (tool-call arguments): the values put back as JSON string content."""
        if not self.originals:
            return text
        return self.pattern.sub(lambda m: json.dumps(self.originals[m.group()])[1:-1], text)
