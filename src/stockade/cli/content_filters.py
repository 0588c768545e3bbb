"""``stockade content-filters`` and ``stockade blocklists``: content filter policies and the
custom blocklists they use."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from stockade.cli.output import when
from stockade.safety.base import Category
from stockade.safety.policy import Direction, PhiMode, ShieldMode, Streaming

content_filters_app = typer.Typer(
    help="Content filter policies (Azure's RAI policies): what deployments screen and block.",
    no_args_is_help=True,
)
blocklists_app = typer.Typer(help="Custom blocklists: exact terms and regular expressions.", no_args_is_help=True)

errors = Console(stderr=True)
ALL = "all"

Rules = Annotated[
    list[str] | None,
    typer.Option(
        "--rule",
        help="CATEGORY[.DIRECTION]=THRESHOLD[:ACTION], repeatable: CATEGORY is hate, sexual, "
        "violence, self_harm or all; DIRECTION prompt or completion (both when left out); "
        "THRESHOLD low, medium or high; ACTION block or annotate. E.g. violence.completion=high:annotate",
    ),
]
Profanity = Annotated[bool | None, typer.Option("--profanity/--no-profanity", help="The built-in profanity list")]
Blocklists = Annotated[
    list[str] | None, typer.Option("--blocklist", help="A custom blocklist to use, repeatable (replaces the list)")
]
NoBlocklists = Annotated[bool, typer.Option("--no-blocklists", help="Use no custom blocklist")]
FailOpen = Annotated[
    bool | None,
    typer.Option("--fail-open/--fail-closed", help="When a filter fails: pass the text unscreened, or refuse it (default)"),
]
Jailbreak = Annotated[
    ShieldMode | None,
    typer.Option("--jailbreak", metavar="MODE", help="Prompt shield for user and system messages: off, annotate or block"),
]
IndirectAttack = Annotated[
    ShieldMode | None,
    typer.Option(
        "--indirect-attack", metavar="MODE",
        help="Prompt shield for tool results and <documents> in messages: off, annotate or block",
    ),
]
Phi = Annotated[
    PhiMode | None,
    typer.Option(
        "--phi", metavar="MODE",
        help="PHI protection on prompts: off, annotate, block, redact (the model sees placeholders) "
        "or pseudonymize (realistic surrogates); the reply gets the values back",
    ),
]
PhiEntities = Annotated[
    list[str] | None,
    typer.Option("--phi-entity", help="An identifier PHI protection looks for, repeatable (replaces the list; "
                 "all of HIPAA Safe Harbor's by default): PERSON, US_SSN, MEDICAL_RECORD_NUMBER, ..."),
]
Pii = Annotated[
    ShieldMode | None,
    typer.Option(
        "--pii", metavar="MODE",
        help="PII in completions (Azure's personally_identifiable_information): off, annotate, or "
        "block (the choice ends with finish_reason content_filter)",
    ),
]
PiiEntities = Annotated[
    list[str] | None,
    typer.Option("--pii-entity", help="An identifier looked for in completions, repeatable (replaces the list; "
                 "all of HIPAA Safe Harbor's by default): PERSON, PHONE_NUMBER, US_SSN, ..."),
]
StreamingMode = Annotated[
    Streaming | None,
    typer.Option(
        "--streaming", metavar="MODE",
        help="Streams: blocking (text sent once screened, the default) or asynchronous (text sent "
        "at once, screened behind it; a violation ends the stream within a bounded lag)",
    ),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")]


def _path(base: str, name: str) -> str:
    return f"/management/{base}/{urllib.parse.quote(name, safe='')}"


def _rule(spec: str) -> tuple[list[str], list[str], dict[str, str]]:
    """The categories, directions and rule one --rule names."""
    target, _, setting = spec.partition("=")
    category, _, direction = target.partition(".")
    threshold, _, action = setting.partition(":")
    categories = [c.value for c in Category] if category == ALL else [category]
    directions = [direction] if direction else [d.value for d in Direction]
    if not threshold or not all(c in Category._value2member_map_ for c in categories) or not all(
        d in Direction._value2member_map_ for d in directions
    ):
        raise typer.BadParameter(
            f"{spec!r} is not CATEGORY[.DIRECTION]=THRESHOLD[:ACTION] (e.g. hate=low or "
            "violence.completion=high:annotate)",
            param_hint="--rule",
        )
    return categories, directions, {"threshold": threshold, **({"action": action} if action else {})}


def _identifiers(mode: PhiMode | ShieldMode | None, entities: list[str] | None) -> dict[str, Any]:
    """The ``phi`` or ``pii`` field: what the options give of its mode and entities."""
    return {**({"mode": mode.value} if mode else {}), **({"entities": entities} if entities else {})}


def _body(rules: list[str] | None, profanity: bool | None, blocklists: list[str] | None,
          no_blocklists: bool, fail_open: bool | None, *, jailbreak: ShieldMode | None,
          indirect_attack: ShieldMode | None, streaming: Streaming | None, phi: dict[str, Any],
          pii: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    categories: dict[str, dict[str, dict[str, str]]] = {}
    for spec in rules or ():
        names, directions, rule = _rule(spec)
        for category in names:
            for direction in directions:
                categories.setdefault(category, {})[direction] = rule
    if categories:
        body["categories"] = categories
    if profanity is not None:
        body["profanity"] = profanity
    if no_blocklists or blocklists:
        body["blocklists"] = [] if no_blocklists else blocklists
    if fail_open is not None:
        body["fail_open"] = fail_open
    for field, mode in (("jailbreak", jailbreak), ("indirect_attack", indirect_attack), ("streaming", streaming)):
        if mode is not None:
            body[field] = mode.value
    for field, setting in (("phi", phi), ("pii", pii)):
        if setting:
            body[field] = setting
    return body


def _policies_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("name", "built in", "rules (prompt / completion)", "profanity", "blocklists", "shields",
                  "phi", "pii", "streaming", "fail open")
    for p in rows:
        rules = ", ".join(
            f"{category} {'/'.join(_shown_rule(r) for r in directions.values())}"
            for category, directions in p["categories"].items()
        )
        table.add_row(
            p["name"], "yes" if p["built_in"] else "", rules, "on" if p["profanity"] else "off",
            ", ".join(p["blocklists"]), _shown_shields(p), p["phi"]["mode"], p["pii"]["mode"], p["streaming"],
            "yes" if p["fail_open"] else "no",
        )
    return table


def _shown_shields(policy: dict[str, Any]) -> str:
    return ", ".join(
        f"{shield} ({policy[shield]})" for shield in ("jailbreak", "indirect_attack") if policy.get(shield, "off") != "off"
    )


def _shown_rule(rule: dict[str, str]) -> str:
    return rule["threshold"] + ("" if rule["action"] == "block" else " (annotate)")


def _save(ctx: typer.Context, method: str, name: str, body: dict[str, Any]) -> None:
    policy = ctx.obj.call(method, _path("content-filters", name), body)
    ctx.obj.emit(policy, _policies_table([policy]))


def _saving(method: str, doc: str) -> Callable[..., None]:
    """The create (PUT) or update (PATCH) command: the same options, a whole policy or a change."""

    def command(
        ctx: typer.Context, name: str, rule: Rules = None, profanity: Profanity = None,
        blocklist: Blocklists = None, no_blocklists: NoBlocklists = False, fail_open: FailOpen = None,
        jailbreak: Jailbreak = None, indirect_attack: IndirectAttack = None,
        phi: Phi = None, phi_entity: PhiEntities = None, pii: Pii = None, pii_entity: PiiEntities = None,
        streaming: StreamingMode = None,
    ) -> None:
        body = _body(rule, profanity, blocklist, no_blocklists, fail_open, jailbreak=jailbreak,
                     indirect_attack=indirect_attack, streaming=streaming, phi=_identifiers(phi, phi_entity),
                     pii=_identifiers(pii, pii_entity))
        _save(ctx, method, name, body)

    command.__doc__ = doc
    return command


content_filters_app.command("create")(_saving(
    "PUT",
    """Create a policy; what it does not set is Azure's default (medium, block, both directions),
    with the prompt shields, PHI protection and PII on completions off, and streams screened
    before they are sent.""",
))
content_filters_app.command("update")(_saving(
    "PATCH", "Change what is given; running servers pick it up without a restart."
))


@content_filters_app.command("list")
def content_filters_list(ctx: typer.Context) -> None:
    """All policies, the built-in default among them."""
    data = ctx.obj.call("GET", "/management/content-filters")["data"]
    ctx.obj.emit(data, _policies_table(data))


@content_filters_app.command("show")
def content_filters_show(ctx: typer.Context, name: str) -> None:
    """One policy."""
    policy = ctx.obj.call("GET", _path("content-filters", name))
    ctx.obj.emit(policy, _policies_table([policy]))


@content_filters_app.command("delete")
def content_filters_delete(ctx: typer.Context, name: str, yes: Yes = False) -> None:
    """Delete a policy that no deployment uses."""
    if not yes and not typer.confirm(f"Delete content filter policy {name!r}?"):
        raise typer.Exit(1)
    ctx.obj.call("DELETE", _path("content-filters", name))
    errors.print(f"Deleted content filter policy {name}.")


# -- blocklists -----------------------------------------------------------------------------------


def _blocklists_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("name", "description", "items", "created")
    for b in rows:
        table.add_row(b["name"], b["description"], str(len(b["items"])), when(b["created_at"]))
    return table


def _items_table(blocklist: dict[str, Any]) -> Table:
    table = Table("id", "kind", "pattern", "added")
    for item in blocklist["items"]:
        table.add_row(item["id"], item["kind"], item["pattern"], when(item["created_at"]))
    return table


@blocklists_app.command("create")
def blocklists_create(
    ctx: typer.Context, name: str,
    description: Annotated[str, typer.Option(help="What the list is for")] = "",
) -> None:
    """Create an empty blocklist; add terms with `stockade blocklists add-item`."""
    blocklist = ctx.obj.call("PUT", _path("blocklists", name), {"description": description})
    ctx.obj.emit(blocklist, _blocklists_table([blocklist]))


@blocklists_app.command("list")
def blocklists_list(ctx: typer.Context) -> None:
    """All blocklists."""
    data = ctx.obj.call("GET", "/management/blocklists")["data"]
    ctx.obj.emit(data, _blocklists_table(data))


@blocklists_app.command("show")
def blocklists_show(ctx: typer.Context, name: str) -> None:
    """One blocklist's items."""
    blocklist = ctx.obj.call("GET", _path("blocklists", name))
    ctx.obj.emit(blocklist, _items_table(blocklist))


@blocklists_app.command("delete")
def blocklists_delete(ctx: typer.Context, name: str, yes: Yes = False) -> None:
    """Delete a blocklist and its items, if no policy uses it."""
    if not yes and not typer.confirm(f"Delete blocklist {name!r} and its items?"):
        raise typer.Exit(1)
    ctx.obj.call("DELETE", _path("blocklists", name))
    errors.print(f"Deleted blocklist {name}.")


@blocklists_app.command("add-item")
def blocklists_add_item(
    ctx: typer.Context, name: str,
    pattern: Annotated[str, typer.Argument(help="The term, or the regular expression with --regex")],
    regex: Annotated[bool, typer.Option("--regex", help="PATTERN is a regular expression")] = False,
) -> None:
    """Add a term (matched case-insensitively as a whole word) or a regular expression."""
    item = ctx.obj.call(
        "POST", _path("blocklists", name) + "/items", {"kind": "regex" if regex else "exact", "pattern": pattern}
    )
    ctx.obj.emit(item, _items_table({"items": [item]}))


@blocklists_app.command("remove-item")
def blocklists_remove_item(
    ctx: typer.Context, name: str,
    item_id: Annotated[str, typer.Argument(help="The id from `stockade blocklists show`")],
) -> None:
    """Remove an item."""
    ctx.obj.call("DELETE", _path("blocklists", name) + f"/items/{urllib.parse.quote(item_id, safe='')}")
    errors.print(f"Removed item {item_id} from blocklist {name}.")
