"""Scripted conversations and the adherence figures they give.

A script (YAML) names a routine and lists conversations; each turn gives the customer's message
and what must follow: the steps visited, the functions called, and at the end the conversation's
and the case's status. Conversations run through the conversations API, so the figures measure
the service as deployed; they are created as evaluations, whose cases case lists leave out.

A script is one *set* (a development set tuned against, a held-out set that is not), reported on
its own. Each conversation runs k times and counts towards pass^k only if every run passes.
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
    name: str  # the set's: `set` in the file, else the file's name
    routine: str
    conversations: tuple[Scripted, ...]
    held_out: bool = False  # a measurement (`held_out: true`), not a test the routine must pass


def load_script(path: Path) -> Script:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScriptError(f"cannot read {path}: {exc}") from None
    try:
        return Script(
            name=str(data.get("set") or path.stem),
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
            held_out=bool(data.get("held_out", False)),
        )
    except (KeyError, TypeError) as exc:
        raise ScriptError(
            f"{path}: a script has `routine` and `conversations` (and optionally `set`, `held_out`), each with `name` and `turns` "
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
    left_open: bool = False  # still open when the script, and so the customer, had finished
    differences: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.adherent_turns == self.turns and self.final_ok and not self.claimed_not_taken and (
            self.matching_calls == self.expected_calls == self.made_calls
        )


@dataclass
class Report:
    """One set's conversations, each run k times: ``runs[i]`` holds every conversation's i-th run."""

    name: str
    runs: list[list[Outcome]]
    held_out: bool = False

    @property
    def outcomes(self) -> list[Outcome]:
        return [outcome for run in self.runs for outcome in run]

    @property
    def conversations(self) -> int:
        return len(self.runs[0]) if self.runs else 0

    def _sum(self, name: str) -> int:
        return sum(getattr(outcome, name) for outcome in self.outcomes)

    @property
    def passed(self) -> int:
        """Conversations that passed on every run."""
        return sum(all(each) for each in zip(*((o.passed for o in run) for run in self.runs), strict=True))

    @property
    def pass_k(self) -> float:
        return self.passed / self.conversations if self.conversations else 1.0

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
    def left_open(self) -> int:
        """Runs that left the conversation open after the customer's last turn."""
        return self._sum("left_open")

    def runs_passed(self, index: int) -> int:
        """How many of its runs the ``index``-th conversation passed."""
        return sum(run[index].passed for run in self.runs)

    def to_dict(self) -> dict[str, Any]:
        failures: dict[str, list[str]] = {}
        for run_number, run in enumerate(self.runs, 1):
            for o in run:
                if not o.passed:
                    failures.setdefault(o.name, []).extend(f"run {run_number}: {d}" for d in o.differences)
        return {
            "set": self.name,
            "held_out": self.held_out,
            "conversations": self.conversations,
            "runs": len(self.runs),
            "passed": self.passed,
            "pass_k": self.pass_k,
            "turns": self._sum("turns"),
            "step_adherence": self.step_adherence,
            "function_call_precision": self.precision,
            "function_call_recall": self.recall,
            "claimed_not_taken_rate": self.claimed_not_taken_rate,
            "left_open": self.left_open,
            "failures": failures,
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
    outcome.left_open = reply.get("status") == "open" and scripted.status not in (None, "open")
    if scripted.status and reply.get("status") != scripted.status:
        outcome.final_ok = False
        outcome.differences.append(f"ended {reply.get('status')}, expected {scripted.status}")
    if scripted.case:
        case = request("GET", f"/management/cases/{conversation['case']}", None)
        if case["status"] != scripted.case:
            outcome.final_ok = False
            outcome.differences.append(f"case {case['status']}, expected {scripted.case}")
    return outcome


def evaluate(
    script: Script,
    runs: int,
    functions: list[Function],
    request: Request,
    ran: Callable[[Scripted], None] = lambda scripted: None,
    **create: Any,
) -> Report:
    """Every conversation of ``script``, ``runs`` times over (``ran`` is told as each ends)."""
    report = Report(script.name, [], script.held_out)
    for _ in range(runs):
        run = []
        for scripted in script.conversations:
            run.append(run_conversation(scripted, script.routine, functions, request, **create))
            ran(scripted)
        report.runs.append(run)
    return report
