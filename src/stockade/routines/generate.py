"""Writing a routine from a help-center article through a chat deployment.

As the cookbook's method does, a model turns the article into numbered steps and functions. Here
its answer is constrained to a JSON Schema of steps, so that even a small model returns something
that renders as a routine; the rendering adds the method's fixed ending (ask whether there is
anything else, then `case_resolution`), and the checker reviews the result like any routine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from stockade.routines.checker import Finding, check
from stockade.routines.model import RESOLUTION_FUNCTION, Routine
from stockade.routines.parser import RoutineSyntaxError, parse_routine

API_VERSION = "2024-10-21"
MAX_TOKENS = 1200
MAX_TEXT = 300  # characters per step: bounds, with the item counts, what a looping model can emit
ANYTHING_ELSE = "Is there anything else I can assist you with today?"

Request = Callable[..., Any]  # (method, path, body) → JSON, as the command line's session has it

INSTRUCTIONS = """You turn a customer-service help-center article into a routine that a support \
agent follows step by step. Skip nothing the article says, in a logical order. Each step is one \
action: say something to the customer (quote it word for word), ask the customer something, call \
a function for data or actions, or branch on what the customer answers ("the customer requires \
…"). Define every function you call with its purpose. Do not end with closing the case: that is \
added for you."""

LEAF = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": ["say", "call"]},
        "text": {"type": "string", "maxLength": MAX_TEXT},
    },
    "required": ["kind", "text"],
    "additionalProperties": False,
}
SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 120},
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": ["say", "ask", "branch", "call"]},
                    "text": {"type": "string", "maxLength": MAX_TEXT},
                    "steps": {"type": "array", "items": LEAF, "maxItems": 8},
                },
                "required": ["kind", "text", "steps"],
                "additionalProperties": False,
            },
            "minItems": 1,
            "maxItems": 10,
        },
        "functions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 60},
                    "purpose": {"type": "string", "maxLength": MAX_TEXT},
                },
                "required": ["name", "purpose"],
                "additionalProperties": False,
            },
            "maxItems": 6,
        },
    },
    "required": ["title", "steps", "functions"],
    "additionalProperties": False,
}


class GenerationError(Exception):
    pass


def _function_name(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.strip().lower()).strip("_") or "unnamed_function"


def _line(kind: str, text: str) -> str:
    text = text.strip().replace('"', "'")
    if kind == "call":
        return f"Call the `{_function_name(text)}` function."
    if kind == "ask":
        return f'Ask the customer: "{text if text.endswith("?") else text + "?"}"'
    return f'Inform the customer: "{text}"'


def render(draft: dict[str, Any]) -> str:
    """The routine Markdown of a drafted routine, in the shape of the built-in ones."""
    lines = [f"# Routine: {draft.get('title') or 'Untitled'}", "", "### Routine", ""]
    number = 0
    for step in draft.get("steps", []):
        number += 1
        kind, text = step.get("kind"), str(step.get("text", "")).strip()
        if kind == "branch":
            condition = text.removeprefix("If ").removeprefix("if ").rstrip(":, ")
            lines.append(f"{number}. If {condition}, then:")
            for letter, inner in zip("abcdefghijklmnopqrstuvwxyz", step.get("steps", []), strict=False):
                lines.append(f"   - {letter}. {_line(inner.get('kind', 'say'), str(inner.get('text', '')))}")
        else:
            lines.append(f"{number}. {_line(str(kind), text)}")
        lines.append("")
    lines += [f"{number + 1}. Ask the customer if there is anything else you can assist with:",
              f'   - "{ANYTHING_ELSE}"', "", f"{number + 2}. Call the `{RESOLUTION_FUNCTION}` function.",
              "", "---", "", "**Function Definitions:**", ""]
    functions = [*draft.get("functions", []),
                 {"name": RESOLUTION_FUNCTION, "purpose": "Finalizes the case and marks it as resolved."}]
    seen = set()
    for function in functions:
        name = _function_name(str(function.get("name", "")))
        if name in seen:
            continue
        seen.add(name)
        lines += [f"- `{name}`:", f"  - **Purpose**: {str(function.get('purpose', '')).strip()}",
                  "  - **Parameters**: None.", ""]
    return "\n".join(lines)


def generate_routine(
    article: str, name: str, deployment: str, request: Request
) -> tuple[Routine, list[Finding]]:
    reply = request(
        "POST",
        f"/openai/deployments/{deployment}/chat/completions",
        {
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": f"ARTICLE:\n{article}"},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "routine", "schema": SCHEMA, "strict": True},
            },
            "temperature": 0,
            "max_tokens": MAX_TOKENS,
        },
        **{"api-version": API_VERSION},
    )
    content = reply["choices"][0]["message"].get("content") or ""
    try:
        draft = json.loads(content)
    except ValueError:
        raise GenerationError(
            f"the deployment's answer was cut off after {MAX_TOKENS} tokens; try a larger model "
            "or a shorter article"
        ) from None
    name = name.removesuffix("-article")
    try:
        routine = parse_routine(render(draft), name)
    except RoutineSyntaxError as exc:
        raise GenerationError(f"the drafted routine does not parse: {exc}") from None
    return routine, check(routine)
