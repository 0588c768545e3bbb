"""Scripted conversations and the adherence figures they give.

A script (YAML) names a routine and lists conversations; each turn gives the customer's message
and what must follow: the steps visited, the functions called, and at the end the conversation's
and the case's status. Conversations run through the conversations API, so the figures measure
the service as deployed; they are created as evaluations, whose cases case lists leave out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stockade.routines.claims import unbacked_claims
from stockade.routines.model import Function

# (method, path, JSON body) → JSON reply, raising on an error status.
Request = Callable[[str, str, dict[str, Any] | None], Any]


class ScriptError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Turn:
    customer: str
    steps: tuple[str, ...]
    calls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Scripted:
    name: str
    turns: tuple[Turn, ...]
    status: str | None  # the conversation's at the end
    case: str | None  # the case's at the end


@dataclass(frozen=True, slots=True)
class Script:
    routine: str
    conversations: tuple[Scripted, ...]


def load_script(path: Path) -> Script:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScriptError(f"cannot read {path}: {exc}") from None
    try:
        return Script(
            routine=str(data["routine"]),
            conversations=tuple(
                Scripted(
                    name=str(conversation["name"]),
                    turns=tuple(
                        Turn(str(turn["customer"]),
                             tuple(str(s) for s in turn.get("steps", ())),
                             tuple(str(c) for c in turn.get("calls", ())))
                        for turn in conversation["turns"]
                    ),
                    status=conversation.get("final", {}).get("status"),
                    case=conversation.get("final", {}).get("case"),
                )
                for conversation in data["conversations"]
            ),
        )
    except (KeyError, TypeError) as exc:
        raise ScriptError(
            f"{path}: a script has `routine` and `conversations`, each with `name` and `turns` "
            f"(`customer`, `steps`, `calls`) and optionally `final` ({exc!r} is missing or wrong)"
        ) from None


@dataclass
class Outcome:
    """One scripted conversation as it went."""

    name: str
    turns: int = 0
    adherent_turns: int = 0
    expected_calls: int = 0
    made_calls: int = 0
    matching_calls: int = 0
    claimed_not_taken: int = 0
    final_ok: bool = True
    differences: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.adherent_turns == self.turns and self.final_ok and not self.claimed_not_taken and (
            self.matching_calls == self.expected_calls == self.made_calls
        )


@dataclass
class Report:
    outcomes: list[Outcome]

    def _sum(self, name: str) -> int:
        return sum(getattr(outcome, name) for outcome in self.outcomes)

    @property
    def step_adherence(self) -> float:
        return self._sum("adherent_turns") / max(self._sum("turns"), 1)

    @property
    def precision(self) -> float:
        made = self._sum("made_calls")
        return self._sum("matching_calls") / made if made else 1.0

    @property
    def recall(self) -> float:
        expected = self._sum("expected_calls")
        return self._sum("matching_calls") / expected if expected else 1.0

    @property
    def claimed_not_taken_rate(self) -> float:
        return self._sum("claimed_not_taken") / max(self._sum("turns"), 1)

    @property
    def passed(self) -> int:
        return sum(outcome.passed for outcome in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversations": len(self.outcomes),
            "passed": self.passed,
            "turns": self._sum("turns"),
            "step_adherence": self.step_adherence,
            "function_call_precision": self.precision,
            "function_call_recall": self.recall,
            "claimed_not_taken_rate": self.claimed_not_taken_rate,
            "failures": {o.name: o.differences for o in self.outcomes if not o.passed},
        }


def served_functions(routine: str, request: Request) -> list[Function]:
    """The routine's function contracts as the service runs it, for checking claims."""
    shown = request("GET", f"/routines/{routine}", None)
    return [Function.from_schema(schema) for schema in shown["functions"]]


def run_conversation(
    scripted: Scripted, routine: str, functions: list[Function], request: Request, **create: Any
) -> Outcome:
    outcome = Outcome(scripted.name)
    conversation = request(
        "POST", "/routines/conversations", {"routine": routine, "evaluation": True, **create}
    )
    reply: dict[str, Any] = conversation
    for number, turn in enumerate(scripted.turns, 1):
        if reply["status"] != "open":  # ended early: the turns left are missed, not an error
            left = scripted.turns[number - 1:]
            outcome.turns += len(left)
            outcome.expected_calls += sum(len(each.calls) for each in left)
            outcome.differences.append(f"turn {number}: the conversation had ended ({reply['status']})")
            break
        reply = request(
            "POST", f"/routines/conversations/{conversation['id']}/messages", {"content": turn.customer}
        )
        events = reply["events"]
        visited = tuple(event["step"] for event in events if event["kind"] == "step")
        called = [event["function"] for event in events if event["kind"] == "function" and event["ok"]]
        outcome.turns += 1
        if visited == turn.steps:
            outcome.adherent_turns += 1
        else:
            outcome.differences.append(
                f"turn {number}: steps {list(visited)}, expected {list(turn.steps)}"
            )
        outcome.differences += [
            f"turn {number}: `{event['function']}` failed: {event['error']}"
            for event in events if event["kind"] == "function" and not event["ok"]
        ]
        matching = sum((Counter(called) & Counter(turn.calls)).values())
        outcome.expected_calls += len(turn.calls)
        outcome.made_calls += len(called)
        outcome.matching_calls += matching
        if Counter(called) != Counter(turn.calls):
            outcome.differences.append(f"turn {number}: called {called}, expected {list(turn.calls)}")
        text = "\n".join(message["text"] for message in reply["messages"])
        unbacked = unbacked_claims(text, functions, set(called))
        if unbacked:
            outcome.claimed_not_taken += 1
            outcome.differences.append(f"turn {number}: claims without an action: {unbacked}")
    if scripted.status and reply.get("status") != scripted.status:
        outcome.final_ok = False
        outcome.differences.append(f"ended {reply.get('status')}, expected {scripted.status}")
    if scripted.case:
        case = request("GET", f"/management/cases/{conversation['case']}", None)
        if case["status"] != scripted.case:
            outcome.final_ok = False
            outcome.differences.append(f"case {case['status']}, expected {scripted.case}")
    return outcome

