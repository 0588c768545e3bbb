"""``stockade prices``: what each model costs, from which date; stored prices are added and
deleted here, those of stockade.toml are changed in the file."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

prices_app = typer.Typer(help="Prices per model, with dated changes (docs/usage.md).", no_args_is_help=True)
errors = Console(stderr=True)
PRICES = "/management/prices"
WHEN = "a date or time (2026-12-01, 2026-12-01T10:00:00Z; UTC) or epoch seconds"


def _from(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(rows: list[dict[str, Any]], currency: str) -> Table:
    table = Table("model", "from", f"input /M ({currency})", "output /M", "batch discount", "PTU-hour", "source")
    for p in rows:
        table.add_row(
            p["model"], _from(p["effective_from"]), f"{p['input_per_million']:g}", f"{p['output_per_million']:g}",
            f"{p['batch_discount']:.0%}", "" if p["hourly_rate"] is None else f"{p['hourly_rate']:g}",
            "stored" if p["source"] == "store" else "stockade.toml",
        )
    return table


@prices_app.command("list")
def prices_list(ctx: typer.Context) -> None:
    """Every price, of stockade.toml and stored, by model and date."""
    prices = ctx.obj.call("GET", PRICES)
    ctx.obj.emit(prices["data"], _table(prices["data"], prices["currency"]))


@prices_app.command("set")
def prices_set(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A model name as deployments use it (`stockade models list`)")],
    input_per_million: Annotated[float, typer.Option("--input", help="Per million prompt tokens", min=0)],
    output_per_million: Annotated[float, typer.Option("--output", help="Per million completion tokens", min=0)],
    batch_discount: Annotated[float, typer.Option(help="Share taken off for batch lines", min=0, max=1)] = 0.5,
    hourly_rate: Annotated[
        float | None, typer.Option(help="Per PTU and hour, for ProvisionedManaged deployments", min=0)
    ] = None,
    effective_from: Annotated[str | None, typer.Option("--from", help=f"From when: {WHEN}; default: now")] = None,
) -> None:
    """Price a model from a date on; calls made before keep the price they had. The same model
    and date again replaces that row. Running servers apply it on their next re-read."""
    body = {"model": model, "input_per_million": input_per_million, "output_per_million": output_per_million,
            "batch_discount": batch_discount, "hourly_rate": hourly_rate}
    if effective_from is not None:
        body["effective_from"] = effective_from
    price = ctx.obj.call("POST", PRICES, body)
    ctx.obj.emit(price, _table([price], ctx.obj.settings.billing.currency))


@prices_app.command("delete")
def prices_delete(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The model, as `stockade prices list` shows it")],
    effective_from: Annotated[str, typer.Option("--from", help=f"The row's date, as the list shows it: {WHEN}")],
) -> None:
    """Delete a stored price; calls already recorded keep the cost they were given."""
    ctx.obj.call("DELETE", f"{PRICES}/{urllib.parse.quote(model, safe='')}", effective_from=effective_from)
    errors.print(f"Deleted the price of {model} from {effective_from}.")
