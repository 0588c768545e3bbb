"""The typed form of a routine: steps of five kinds, branch conditions and function contracts."""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

RESOLUTION_FUNCTION = "case_resolution"


class Kind(enum.StrEnum):
    SAY = "say"  # tell the customer something (quoted: word for word)
    ASK = "ask"  # ask something and wait for the answer
    BRANCH = "branch"  # if <condition>, then <steps>
    CALL = "call"  # run a function and tell the customer its result
    RESOLVE = "resolve"  # close the case: the routine's last step


class Effect(enum.StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Function:
    """A function's contract: what it is for, its parameters as JSON Schema, and what it does."""

    name: str
    purpose: str
    parameters: dict[str, Any]
    effect: Effect
    confirm: bool  # a write that waits for the customer's yes

    @classmethod
    def from_schema(cls, schema: dict[str, Any]) -> Function:
        """The contract back from ``schema()``, as the routines API shows it."""
        return cls(schema["name"], schema["description"], schema["parameters"],
                   Effect(schema["x-effect"]), schema["x-confirm"])

    def schema(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.purpose,
            "parameters": self.parameters,
            "x-effect": self.effect.value,
            "x-confirm": self.confirm,
        }


@dataclass(frozen=True, slots=True)
class Step:
    id: str  # "1a", "2i", "4.1": the number, letter or position the routine gives it
    kind: Kind
    instruction: str  # the routine's own line, for reviewers and traces
    text: str | None = None  # the quoted message of a say or ask
    function: str | None = None  # of a call or resolve
    condition: str | None = None  # of a branch
    observable: bool = True  # of a branch: can the conversation reveal whether it holds?
    steps: tuple[Step, ...] = ()  # of a branch

    @property
    def quoted(self) -> bool:
        return self.text is not None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "kind": self.kind.value, "instruction": self.instruction}
        if self.text is not None:
            data["text"] = self.text
        if self.function is not None:
            data["function"] = self.function
        if self.kind is Kind.BRANCH:
            data["condition"] = self.condition
            data["observable"] = self.observable
            data["steps"] = [step.to_dict() for step in self.steps]
        return data


@dataclass(frozen=True, slots=True)
class Routine:
    name: str
    title: str
    source: str = field(repr=False)
    steps: tuple[Step, ...]
    functions: dict[str, Function]
    # Branch step id → how customers say that branch applies, in their own words: the routine's
    # examples file (parser.py), which the classifier compares answers with.
    examples: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """The digest of the source and examples: a trace names exactly what the conversation
        followed."""
        examples = json.dumps(self.examples, sort_keys=True, ensure_ascii=False) if self.examples else ""
        return hashlib.sha256((self.source + examples).encode()).hexdigest()[:12]

    def walk(self) -> list[Step]:
        """Every step, branches before their own steps, in the routine's order."""
        found: list[Step] = []
        for step in self.steps:
            found.append(step)
            found.extend(step.steps)
        return found

    def step(self, step_id: str) -> Step:
        for step in self.walk():
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "version": self.version,
            "steps": [step.to_dict() for step in self.steps],
            "functions": [function.schema() for function in self.functions.values()],
            "examples": {step_id: list(phrasings) for step_id, phrasings in self.examples.items()},
        }
