"""Reading a routine written in Markdown, in the shape of the cookbook's generated routines.

Numbered lines are steps and indented lines (lettered or not) are their sub-steps. "If …, then:"
opens a branch; a quoted message is said word for word (asked, if it ends with "?"); a backticked
name in a "call" line is a function call. After "Function Definitions", each backticked name
starts a function with its **Purpose**, **Parameters** and optionally **Effect** (read or write)
and **Confirmation** (required or not).

Beside ``NAME.md``, an optional ``NAME.examples.yaml`` gives, for branches, how customers say they
apply in their own words ("we call your models from our backend" for "a BAA for the API"): the
routine's condition alone names a product, and customers often describe it instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from stockade.routines.model import RESOLUTION_FUNCTION, Effect, Function, Kind, Routine, Step

TOP_LEVEL = re.compile(r"^(\d+)\.\s+(.+)$")
SUB_STEP = re.compile(r"^\s+(?:[-*]\s+)?(?:([a-z]{1,4})\.\s+)?(.+)$")
QUOTE = re.compile(r"[\"“]([^\"”]+)[\"”]")
FUNCTION_NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")
CONDITION = re.compile(r"^if\s+(.+?),?\s+then\b", re.IGNORECASE)
FIELD = re.compile(r"^\*\*(\w+)\*\*:?\s*(.*)$")
PARAMETER = re.compile(r"^`(\w+)`\s*(?:\(([^)]*)\))?\s*:?\s*(.*)$")
DEFINITIONS = re.compile(r"function definitions", re.IGNORECASE)
SECTION_END = re.compile(r"^\\?-{3,}\s*$")
EXAMPLES_SUFFIX = ".examples.yaml"
JSON_TYPES = {"string", "integer", "number", "boolean", "array", "object"}

# Conditions on what the customer tells the agent are decidable from the conversation; anything
# else (an approval, an account's state) needs a function to find it out.
CUSTOMER_STATEMENT = re.compile(
    r"^the customer\s+(?:(?:does not|doesn't|do not)\s+)?"
    r"(?:requires?|needs?|wants?|asks?|says?|requests?|confirms?|agrees?|declines?|refuses?|"
    r"prefers?|chooses?|mentions?|reports?|would like|is asking|is interested|is requesting|"
    r"has a question|answers?)\b",
    re.IGNORECASE,
)
# Functions whose names start so only look things up; others change something.
READ_VERBS = ("provide", "get", "list", "check", "lookup", "look_up", "find", "show", "fetch",
              "verify", "search", "describe", "read")


class RoutineSyntaxError(ValueError):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


@dataclass
class _Draft:
    number: str
    text: str
    line: int
    children: list[tuple[str | None, str, int]] = field(default_factory=list)


def parse_routine(source: str, name: str) -> Routine:
    lines = source.splitlines()
    title = next((line.lstrip("#").strip() for line in lines if line.startswith("# ")), name)
    title = re.sub(r"^routine:\s*", "", title, flags=re.IGNORECASE)
    start = next((i + 1 for i, line in enumerate(lines) if re.match(r"^#+\s*routine\s*$", line, re.I)), 0)
    end = next(
        (i for i in range(start, len(lines))
         if SECTION_END.match(lines[i]) or DEFINITIONS.search(lines[i])),
        len(lines),
    )
    drafts = _drafts(lines, start, end)
    if not drafts:
        raise RoutineSyntaxError("no numbered steps found (a routine is a numbered list: `1. …`)")
    functions = _functions(lines[end:], end)
    called = {step.function for draft in drafts for step in _steps_of(draft) if step.function}
    steps: list[Step] = []
    for draft in drafts:
        # "Thank the customer and ask for clarification:" is a heading; its sub-steps are the steps.
        steps.extend([_branch(draft, called)] if CONDITION.match(draft.text) else _steps_of(draft))
    return Routine(name=name, title=title, source=source, steps=tuple(steps), functions=functions)


def examples_path(path: Path) -> Path:
    """Where a routine's examples file sits: ``baa.md`` → ``baa.examples.yaml``."""
    return path.with_suffix(EXAMPLES_SUFFIX)


def load_routine(path: Path) -> Routine:
    """The routine in ``path``, with the phrasings of its examples file if it has one."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutineSyntaxError(f"cannot read {path}: {exc}") from None
    routine = parse_routine(source, path.stem)
    examples = examples_path(path)
    try:
        text = examples.read_text(encoding="utf-8")
    except FileNotFoundError:
        return routine  # the file is optional
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutineSyntaxError(f"cannot read {examples}: {exc}") from None
    return replace(routine, examples=parse_examples(text, examples.name))


def parse_examples(text: str, name: str) -> dict[str, tuple[str, ...]]:
    """An examples file: ``branches:`` mapping a branch's step id to the phrasings customers use
    when it applies. Which ids name branches is the checker's business (checker.py)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RoutineSyntaxError(f"{name} is not valid YAML: {exc}") from None
    branches = data.get("branches") if isinstance(data, dict) else None
    if not isinstance(branches, dict) or set(data) != {"branches"}:
        raise RoutineSyntaxError(
            f"{name} must hold one mapping, `branches:`, from a branch's step id to a list of "
            "phrasings"
        )
    examples: dict[str, tuple[str, ...]] = {}
    for step_id, phrasings in branches.items():
        if not isinstance(phrasings, list) or not all(isinstance(p, str) and p.strip() for p in phrasings):
            raise RoutineSyntaxError(f"{name}: branch {step_id!r} must list phrasings, each a non-empty string")
        examples[str(step_id)] = tuple(p.strip() for p in phrasings)
    return examples


def _drafts(lines: list[str], start: int, end: int) -> list[_Draft]:
    drafts: list[_Draft] = []
    for index in range(start, end):
        line = lines[index].rstrip()
        if not line.strip():
            continue
        top = TOP_LEVEL.match(line)
        if top:
            drafts.append(_Draft(top.group(1), top.group(2).strip(), index + 1))
            continue
        sub = SUB_STEP.match(line)
        if sub and drafts:
            drafts[-1].children.append((sub.group(1), sub.group(2).strip(), index + 1))
        elif not line.startswith("#") and drafts:
            raise RoutineSyntaxError(f"a line outside any step: {line.strip()!r}", index + 1)
    return drafts


def _leaf(step_id: str, text: str) -> Step:
    quote = QUOTE.search(text)
    function = FUNCTION_NAME.search(text)
    if function and re.search(r"\bcall", text, re.IGNORECASE):
        kind = Kind.RESOLVE if function.group(1) == RESOLUTION_FUNCTION else Kind.CALL
        return Step(step_id, kind, text, function=function.group(1))
    if quote:
        message = quote.group(1).strip()
        kind = Kind.ASK if message.endswith("?") else Kind.SAY
        return Step(step_id, kind, text, text=message)
    kind = Kind.ASK if re.match(r"^ask\b", text, re.IGNORECASE) else Kind.SAY
    return Step(step_id, kind, text)


def _steps_of(draft: _Draft) -> list[Step]:
    if not draft.children:
        return [_leaf(draft.number, draft.text)]
    steps, unlabelled = [], 0
    for label, text, _line in draft.children:
        if label is None:
            unlabelled += 1
            step_id = f"{draft.number}.{unlabelled}"
        else:
            step_id = f"{draft.number}{label}"
        steps.append(_leaf(step_id, text))
    return steps


def _branch(draft: _Draft, called: set[str]) -> Step:
    condition = CONDITION.match(draft.text)
    assert condition is not None
    if not draft.children:
        raise RoutineSyntaxError(f"step {draft.number} is a branch without steps", draft.line)
    text = condition.group(1).strip()
    return Step(
        draft.number,
        Kind.BRANCH,
        draft.text,
        condition=text,
        observable=observable(text, called),
        steps=tuple(_steps_of(draft)),
    )


def observable(condition: str, called: set[str]) -> bool:
    """Whether the conversation itself can tell if a condition holds."""
    if CUSTOMER_STATEMENT.match(condition):
        return True
    return any(name in called for name in FUNCTION_NAME.findall(condition))


def _functions(lines: list[str], offset: int) -> dict[str, Function]:
    fields: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    in_parameters = False
    for index, raw in enumerate(lines):
        line = re.sub(r"^\\?[-*]\s+", "", raw.strip()).strip()
        if not line or DEFINITIONS.search(line) or SECTION_END.match(raw.strip()):
            continue
        start = re.match(r"^`([A-Za-z_][A-Za-z0-9_]*)`\s*:?\s*$", line)
        if start:
            current = fields.setdefault(start.group(1), {"parameter_lines": [], "line": offset + index + 1})
            in_parameters = False
            continue
        if current is None:
            continue
        field_match = FIELD.match(line)
        if field_match:
            key, value = field_match.group(1).lower(), field_match.group(2).strip()
            current[key] = value
            in_parameters = key == "parameters" and not re.match(r"^none\b", value, re.IGNORECASE)
            if in_parameters and value:
                current["parameter_lines"].append(value)
        elif in_parameters:
            current["parameter_lines"].append(line)
    return {name: _function(name, spec) for name, spec in fields.items()}


def _function(name: str, spec: dict[str, Any]) -> Function:
    properties: dict[str, Any] = {}
    required = []
    for text in spec["parameter_lines"]:
        parameter = PARAMETER.match(text)
        if not parameter:
            raise RoutineSyntaxError(
                f"function {name}: a parameter is written as `name` (type): description, not {text!r}",
                spec["line"],
            )
        notes = [part.strip().lower() for part in (parameter.group(2) or "").split(",")]
        json_type = next((note for note in notes if note in JSON_TYPES), "string")
        properties[parameter.group(1)] = {"type": json_type, "description": parameter.group(3)}
        if "optional" not in notes:
            required.append(parameter.group(1))
    effect_text = spec.get("effect", "").lower()
    if effect_text.startswith(("read", "write")):
        effect = Effect.READ if effect_text.startswith("read") else Effect.WRITE
    else:
        effect = Effect.READ if name.lower().startswith(READ_VERBS) else Effect.WRITE
    confirmation = spec.get("confirmation", "").lower()
    if confirmation:
        confirm = not confirmation.startswith(("no", "not"))
    else:
        # Closing the case is the agent's own bookkeeping; other writes act for the customer.
        confirm = effect is Effect.WRITE and name != RESOLUTION_FUNCTION
    return Function(
        name=name,
        purpose=spec.get("purpose", "").rstrip("."),
        parameters={
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        },
        effect=effect,
        confirm=confirm,
    )
