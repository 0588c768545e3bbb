"""``stockade usage``: the metadata of recent calls, and their totals per deployment, key, model
or day, as a table or exported as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stockade.cli.output import when

usage_app = typer.Typer(help="Metadata of calls (never their content), and their totals.", no_args_is_help=True)
errors = Console(stderr=True)
COLUMNS = ("calls", "prompt_tokens", "completion_tokens", "cost", "errors", "throttled",
           "latency_p50_ms", "latency_p95_ms")

Since = Annotated[
    str | None, typer.Option(help="From: a date or time (2026-12-01, 2026-12-01T10:00:00Z; UTC) or epoch seconds")
]
Until = Annotated[str | None, typer.Option(help="Until (not included); default: now")]
Key = Annotated[str | None, typer.Option(help="Only the calls of the key or identity of this name or id")]
Deployment = Annotated[str | None, typer.Option(help="Only this deployment's calls")]


class By(StrEnum):
    deployment = "deployment"
    key = "key"
    model = "model"
    day = "day"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@usage_app.command("list")
def usage_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    deployment: Deployment = None,
    key: Key = None,
    since: Since = None,
    until: Until = None,
) -> None:
    """The most recent calls: time, deployment, key, status, tokens, latency and cost."""
    data = ctx.obj.call(
        "GET", "/management/usage", limit=limit, deployment=deployment, key=key, since=since, until=until
    )["data"]
    table = Table("time", "operation", "deployment", "key", "status", "prompt", "completion", "ms", "cost")
    for r in data:
        table.add_row(
            when(r["ts"]), r["operation"], r["deployment"] or "", r["key_name"] or r["key_id"] or "",
            str(r["status"]), str(r["prompt_tokens"]), str(r["completion_tokens"]),
            f"{r['latency_ms']:.1f}", _money(r["cost"]),
        )
    ctx.obj.emit(data, table)


@usage_app.command("summary")
def usage_summary(
    ctx: typer.Context,
    by: Annotated[By, typer.Option(help="One row per deployment, key, model or UTC day")],
    since: Since = None,
    until: Until = None,
    deployment: Deployment = None,
    key: Key = None,
    output_format: Annotated[Format, typer.Option("--format", help="table, or csv or json to export")] = Format.table,
    output: Annotated[Path | None, typer.Option(help="Write the csv or json here instead of stdout")] = None,
) -> None:
    """Calls, tokens, cost, errors, 429s and p50/p95 latency per group over a time range (the
    last 30 days by default), with the total. Provisioned deployments' hours count in their
    deployment, model and day; docs/usage.md says how."""
    chosen = Format.json if ctx.obj.as_json and output_format is Format.table else output_format
    if output is not None and chosen is Format.table:
        errors.print("[red]error:[/red] --output writes --format csv or --format json")
        raise typer.Exit(2)
    summary = ctx.obj.call(
        "GET", "/management/usage/summary", by=by.value, since=since, until=until,
        deployment=deployment, key=key,
    )
    if chosen is Format.table:
        ctx.obj.emit(summary, _table(summary))
        return
    text = json.dumps(summary, indent=2) + "\n" if chosen is Format.json else _csv(summary)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        errors.print(f"Wrote {len(summary['data'])} rows and the total to {output}.")


def _csv(summary: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["group", *COLUMNS, "currency"])
    for group, row in [*((r["group"], r) for r in summary["data"]), ("total", summary["total"])]:
        writer.writerow([group, *("" if row[c] is None else row[c] for c in COLUMNS), summary["currency"]])
    return buffer.getvalue()


def _table(summary: dict[str, Any]) -> Table:
    table = Table(
        summary["by"], "calls", "prompt", "completion", f"cost ({summary['currency']})", "errors", "429s",
        "p50 ms", "p95 ms",
        caption=f"{when(summary['since'])} to {when(summary['until'])} (local time)",
    )
    rows = summary["data"]
    for number, (group, row) in enumerate([*((r["group"], r) for r in rows), ("total", summary["total"])]):
        table.add_row(
            "[bold]total[/bold]" if number == len(rows) else escape(group),
            f"{row['calls']:,}", f"{row['prompt_tokens']:,}", f"{row['completion_tokens']:,}",
            _money(row["cost"]), f"{row['errors']:,}", f"{row['throttled']:,}",
            _ms(row["latency_p50_ms"]), _ms(row["latency_p95_ms"]),
            end_section=number == len(rows) - 1,
        )
    return table


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:,.4f}"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"
