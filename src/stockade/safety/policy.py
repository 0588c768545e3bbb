"""Content filter policies, as Azure's RAI policies: per category and direction, a severity
threshold and an action, plus the profanity filter and custom blocklists a policy turns on."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stockade.safety.base import Category, Severity
from stockade.safety.phi.entities import DEFAULT_ENTITIES

DEFAULT_POLICY = "default"


class Direction(enum.StrEnum):
    PROMPT = "prompt"
    COMPLETION = "completion"


class Action(enum.StrEnum):
    BLOCK = "block"
    ANNOTATE = "annotate"  # results only: the text passes


class ShieldMode(enum.StrEnum):
    """What a prompt shield (or PII screening on completions) does: not run, report what it
    detects, or block it too."""

    OFF = "off"
    ANNOTATE = "annotate"
    BLOCK = "block"


class Streaming(enum.StrEnum):
    """How a streamed completion is screened, as Azure's streaming modes."""

    BLOCKING = "blocking"  # text is sent only once screened (Azure's default)
    ASYNCHRONOUS = "asynchronous"  # text is sent as it comes, screened behind it (annotations follow)


# The thresholds a policy may set; "safe" would block everything, which Azure does not offer.
THRESHOLDS = {str(s): s for s in (Severity.LOW, Severity.MEDIUM, Severity.HIGH)}


@dataclass(frozen=True, slots=True)
class Rule:
    """A text of ``threshold`` severity or above is filtered when the action is block."""

    threshold: Severity = Severity.MEDIUM
    action: Action = Action.BLOCK

    def filters(self, severity: Severity) -> bool:
        return self.action is Action.BLOCK and severity >= self.threshold


class PhiMode(enum.StrEnum):
    """What PHI protection does with the identifiers it finds in a prompt."""

    OFF = "off"
    ANNOTATE = "annotate"  # results only
    BLOCK = "block"  # 400 content_filter
    REDACT = "redact"  # the model sees placeholders; the reply gets the values back
    PSEUDONYMIZE = "pseudonymize"  # the model sees realistic surrogates; the reply the values


@dataclass(frozen=True, slots=True)
class PhiRule:
    mode: PhiMode = PhiMode.OFF
    entities: tuple[str, ...] = DEFAULT_ENTITIES

    @property
    def replaces(self) -> bool:
        return self.mode in (PhiMode.REDACT, PhiMode.PSEUDONYMIZE)


@dataclass(frozen=True, slots=True)
class PiiRule:
    """Azure's ``personally_identifiable_information`` on completions: the identifiers the
    model itself writes, looked for with PHI protection's analyzer."""

    mode: ShieldMode = ShieldMode.OFF
    entities: tuple[str, ...] = DEFAULT_ENTITIES


def _default_rules() -> dict[tuple[Category, Direction], Rule]:
    return {(category, direction): Rule() for category in Category for direction in Direction}


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    rules: Mapping[tuple[Category, Direction], Rule] = field(default_factory=_default_rules)
    profanity: bool = False
    blocklists: tuple[str, ...] = ()
    # Only when set does a filter that cannot run let the text through (annotated with an error).
    fail_open: bool = False
    # Prompt shields; off by default, unlike Azure's, for what they cost (docs/safety.md).
    jailbreak: ShieldMode = ShieldMode.OFF
    indirect_attack: ShieldMode = ShieldMode.OFF
    phi: PhiRule = PhiRule()
    pii: PiiRule = PiiRule()
    streaming: Streaming = Streaming.BLOCKING

    def rule(self, category: Category, direction: Direction) -> Rule:
        return self.rules[(category, direction)]

    def config(self) -> dict[str, Any]:
        """The policy as the store keeps it and the management API shows it."""
        return {
            "categories": {
                category.value: {
                    direction.value: {
                        "threshold": str(self.rule(category, direction).threshold),
                        "action": self.rule(category, direction).action.value,
                    }
                    for direction in Direction
                }
                for category in Category
            },
            "profanity": self.profanity,
            "blocklists": list(self.blocklists),
            "fail_open": self.fail_open,
            "jailbreak": self.jailbreak.value,
            "indirect_attack": self.indirect_attack.value,
            "phi": {"mode": self.phi.mode.value, "entities": list(self.phi.entities)},
            "pii": {"mode": self.pii.mode.value, "entities": list(self.pii.entities)},
            "streaming": self.streaming.value,
        }


# Azure's default: medium threshold, block, on prompts and completions, for the four categories.
DEFAULT = Policy(DEFAULT_POLICY)


def policy_from_config(name: str, config: Mapping[str, Any], base: Policy | None = None) -> Policy:
    """A policy from the fields ``config`` gives, the others taken from ``base`` (Azure's default
    when none). The management API has checked the values' spelling already."""
    start = base or Policy(name)
    rules = dict(start.rules)
    for category, directions in (config.get("categories") or {}).items():
        for direction, rule in directions.items():
            key = (Category(category), Direction(direction))
            current = rules[key]
            rules[key] = Rule(
                THRESHOLDS[rule["threshold"]] if rule.get("threshold") else current.threshold,
                Action(rule["action"]) if rule.get("action") else current.action,
            )
    phi = config.get("phi") or {}
    pii = config.get("pii") or {}
    return Policy(
        name,
        rules,
        profanity=bool(config.get("profanity", start.profanity)),
        blocklists=tuple(config.get("blocklists", start.blocklists)),
        fail_open=bool(config.get("fail_open", start.fail_open)),
        jailbreak=ShieldMode(config.get("jailbreak", start.jailbreak)),
        indirect_attack=ShieldMode(config.get("indirect_attack", start.indirect_attack)),
        phi=PhiRule(PhiMode(phi.get("mode", start.phi.mode)), tuple(phi.get("entities", start.phi.entities))),
        pii=PiiRule(ShieldMode(pii.get("mode", start.pii.mode)), tuple(pii.get("entities", start.pii.entities))),
        streaming=Streaming(config.get("streaming", start.streaming)),
    )
