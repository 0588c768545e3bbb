"""``stockade budgets``: what a key, a deployment or the whole resource may spend in a day or a
month, the thresholds that alert, and whether the budget refuses calls once spent."""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from stockade.cli.output import when

budgets_app = typer.Typer(
    help="Budgets: spending limits per key, deployment or resource, with alerts.", no_args_is_help=True
)
errors = Console(stderr=True)
BUDGETS = "/management/budgets"
BAR_WIDTH = 20


def _path(name: str) -> str:
    return f"{BUDGETS}/{urllib.parse.quote(name, safe='')}"


def _bar(budget: dict[str, Any]) -> Table:
    """Spent of amount as a bar, and the figures beside it (red once past the last threshold)."""
    spent, amount = budget["spent"], budget["amount"]
    over = spent >= amount * max(budget["thresholds"], default=1.0)
    bar = ProgressBar(total=amount, completed=min(spent, amount), width=BAR_WIDTH,
                      complete_style="red" if over else "green")
    cell = Table.grid(padding=(0, 1))
    cell.add_row(bar, Text(f"{spent:,.2f} / {amount:,.2f} {budget['currency']}", no_wrap=True))
    return cell


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table("name", "scope", "period", "spent", "held", "alerts", "hard", "resets")
    for b in rows:
        fired = ", ".join(f"{t:.0%}" for t in b["alerts_fired"])
        table.add_row(
            b["name"], b["scope"] if b["target"] is None else f"{b['scope']} {b['target']}", b["period"],
            _bar(b), f"{b['held']:,.4f}", f"{fired or '-'} of {', '.join(f'{t:.0%}' for t in b['thresholds'])}",
            "yes" if b["hard"] else "no", when(b["period_end"]),
        )
    return table


Thresholds = Annotated[
    list[float] | None,
    typer.Option("--threshold", help="A share of the amount that alerts, e.g. 0.8; repeat it (default 0.5, 0.8, 1.0)"),
]
Webhook = Annotated[str | None, typer.Option(help="URL each alert is POSTed to (JSON)")]


@budgets_app.command("create")
def budgets_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The budget's name")],
    amount: Annotated[float, typer.Option(help="What may be spent each period, in billing.currency")],
    scope: Annotated[str, typer.Option(help="key, deployment or resource")] = "resource",
    target: Annotated[str | None, typer.Option(help="The key's or deployment's name (not for resource)")] = None,
    period: Annotated[str, typer.Option(help="day or month (UTC)")] = "month",
    thresholds: Thresholds = None,
    hard: Annotated[bool, typer.Option("--hard/--soft", help="Refuse calls once it is spent, or only alert")] = False,
    webhook: Webhook = None,
) -> None:
    """Create a budget."""
    body: dict[str, Any] = {"name": name, "scope": scope, "target": target, "period": period,
                            "amount": amount, "hard": hard, "webhook": webhook}
    if thresholds:
        body["thresholds"] = thresholds
    created = ctx.obj.call("POST", BUDGETS, body)
    ctx.obj.emit(created, _table([created]))


@budgets_app.command("list")
def budgets_list(ctx: typer.Context) -> None:
    """Every budget: spent of its amount this period, held by calls under way, alerts fired."""
    data = ctx.obj.call("GET", BUDGETS)["data"]
    ctx.obj.emit(data, _table(data))


@budgets_app.command("show")
def budgets_show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The budget's name")]) -> None:
    """One budget."""
    shown = ctx.obj.call("GET", _path(name))
    ctx.obj.emit(shown, _table([shown]))


@budgets_app.command("update")
def budgets_update(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The budget's name")],
    amount: Annotated[float | None, typer.Option(help="What may be spent each period")] = None,
    period: Annotated[str | None, typer.Option(help="day or month (UTC)")] = None,
    thresholds: Thresholds = None,
    hard: Annotated[bool | None, typer.Option("--hard/--soft", help="Refuse calls once spent, or only alert")] = None,
    webhook: Webhook = None,
    no_webhook: Annotated[bool, typer.Option("--no-webhook", help="Remove the webhook")] = False,
) -> None:
    """Change a budget; what is not given stays as it is."""
    changes: dict[str, Any] = {
        field: value
        for field, value in (("amount", amount), ("period", period), ("thresholds", thresholds or None),
                             ("hard", hard), ("webhook", webhook))
        if value is not None
    }
    if no_webhook:
        changes["webhook"] = None
    updated = ctx.obj.call("PATCH", _path(name), changes)
    ctx.obj.emit(updated, _table([updated]))


@budgets_app.command("delete")
def budgets_delete(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The budget's name")]) -> None:
    """Delete a budget (and the record of the alerts it fired)."""
    ctx.obj.call("DELETE", _path(name))
    errors.print(f"Deleted budget {name}.")
