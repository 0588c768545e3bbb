"""Static checks of a routine, run before any conversation follows it."""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass

from stockade.config import RoutineSettings, is_placeholder
from stockade.routines.baa import SETTINGS_READ
from stockade.routines.model import RESOLUTION_FUNCTION, Kind, Routine, Step
from stockade.routines.plan import Plan, exclusive


class Severity(enum.StrEnum):
    ERROR = "error"  # the routine cannot be followed as written
    WARNING = "warning"  # it can, and here is how Stockade handles the gap
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    step: str | None
    message: str

    def to_dict(self) -> dict[str, str | None]:
        return {"severity": self.severity.value, "step": self.step, "message": self.message}


def check(routine: Routine) -> list[Finding]:
    findings: list[Finding] = []
    findings += _functions(routine)
    findings += _branches(routine)
    findings += _alternatives(routine)
    findings += _ending(routine)
    findings += _examples(routine)
    return findings


def _examples(routine: Routine) -> list[Finding]:
    """An examples file's ids must name branches: phrasings of a step no answer is classified
    into would be silently ignored."""
    branches = {step.id for step in routine.walk() if step.kind is Kind.BRANCH}
    return [
        Finding(Severity.ERROR, step_id,
                f"the examples file gives phrasings for step {step_id}, which is not a branch; "
                f"examples are for branches ({', '.join(sorted(branches)) or 'this routine has none'})")
        for step_id in routine.examples if step_id not in branches
    ]


def has_errors(findings: list[Finding]) -> bool:
    return any(finding.severity is Severity.ERROR for finding in findings)


def check_settings(routine: Routine, settings: RoutineSettings, implemented: set[str]) -> list[Finding]:
    """What this installation lacks to run the routine's functions: a conversation that reaches
    one of them fails it and is handed to a person."""
    findings = []
    for name in routine.functions:
        if name in settings.webhooks:
            continue  # the user's own system answers, whatever the settings say
        if name not in implemented:
            findings.append(Finding(
                Severity.WARNING, None,
                f"`{name}` has no implementation here, so a conversation that reaches it is "
                f"handed to a person: set routines.webhooks.{name} to your system's URL, or "
                "register a `stockade.routine_functions` entry point",
            ))
        elif (setting := SETTINGS_READ.get(name)) is not None:
            value = getattr(settings, setting)
            if not value:
                findings.append(Finding(
                    Severity.WARNING, None,
                    f"`{name}` needs routines.{setting}, which is not set, so a conversation that "
                    f"reaches it is handed to a person: set it in stockade.toml (or "
                    f"STOCKADE_ROUTINES__{setting.upper()})",
                ))
            elif is_placeholder(value):
                findings.append(Finding(
                    Severity.WARNING, None,
                    f"routines.{setting} is still a placeholder ({value!r}), which `{name}` gives "
                    f"customers as it is: set it in stockade.toml",
                ))
    return findings


def _functions(routine: Routine) -> list[Finding]:
    findings = []
    called: set[str] = set()
    for step in routine.walk():
        if step.function is None:
            continue
        called.add(step.function)
        if step.function not in routine.functions:
            findings.append(Finding(
                Severity.ERROR, step.id,
                f"calls `{step.function}`, which the function definitions do not define",
            ))
    for name in routine.functions:
        if name not in called:
            findings.append(Finding(Severity.WARNING, None, f"`{name}` is defined but no step calls it"))
    for name, function in routine.functions.items():
        if not function.purpose:
            findings.append(Finding(Severity.WARNING, None, f"`{name}` has no **Purpose**"))
    return findings


def _branches(routine: Routine) -> list[Finding]:
    findings = []
    previous: Step | None = None
    for step in routine.steps:
        if step.kind is Kind.BRANCH:
            if not step.observable:
                findings.append(Finding(
                    Severity.WARNING, step.id,
                    f"the branch depends on whether {step.condition}, which nothing in the "
                    "conversation can reveal (no customer statement or function result decides "
                    "it). Stockade never takes it on its own: its messages become an answer, "
                    "given word for word when the customer asks about it, after which the "
                    "conversation returns to the step it was on",
                ))
            elif previous is None or previous.kind not in (Kind.ASK, Kind.BRANCH):
                findings.append(Finding(
                    Severity.ERROR, step.id,
                    f"unreachable: no question comes before this branch, so the customer is never "
                    f"asked anything that would tell whether {step.condition}",
                ))
            for inner in step.steps:
                if inner.kind is Kind.RESOLVE:
                    findings.append(Finding(
                        Severity.ERROR, inner.id, "closes the case inside a branch; close it once, as the last step",
                    ))
        previous = step
    return findings


def _alternatives(routine: Routine) -> list[Finding]:
    """How the branches after one question combine: independent ones may all be taken by one
    answer, and run in the routine's order; a branch and its denial exclude each other."""
    findings = []
    for ask, branches in Plan.of(routine).decisions.items():
        for one, other in itertools.combinations(branches, 2):
            if exclusive(one, other):
                message = (f"branches {one.id} and {other.id} exclude each other (one denies the "
                           "other's condition): an answer takes at most one of them")
            else:
                message = (f"branches {one.id} and {other.id} are independent: an answer that "
                           f"satisfies both runs {one.id}, then {other.id}")
            findings.append(Finding(Severity.NOTE, ask, message))
    return findings


def _ending(routine: Routine) -> list[Finding]:
    findings = []
    resolutions = [i for i, step in enumerate(routine.steps) if step.kind is Kind.RESOLVE]
    for step in routine.steps[resolutions[0] + 1:] if resolutions else ():
        findings.append(Finding(
            Severity.ERROR, step.id, f"unreachable: it comes after `{RESOLUTION_FUNCTION}`",
        ))
    last = routine.steps[-1]
    if not resolutions:
        findings.append(Finding(
            Severity.ERROR, last.id,
            f"the routine does not end by calling `{RESOLUTION_FUNCTION}`, so no conversation "
            "ever closes its case",
        ))
    before_last = routine.steps[-2] if len(routine.steps) > 1 else None
    if before_last is None or before_last.kind is not Kind.ASK:
        findings.append(Finding(
            Severity.WARNING, last.id,
            "the customer is not asked whether there is anything else before the case is closed",
        ))
    return findings
