"""Small formatting helpers shared by the command's modules."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table

UNLIMITED = 100_000  # columns: wider than any table, to measure one's natural width


def when(value: float | None) -> str:
    """A timestamp as local time, or nothing."""
    return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` without cutting or breaking a word of it: ids, names and secrets are typed
    or copied next. Columns wrap between words only; when even that does not fit the terminal,
    each row is printed as lines of ``column: value`` instead."""
    unlimited = console.options.update_width(UNLIMITED)
    measures = [
        [Measurement.get(console, unlimited, cell) for cell in (column.header, *column.cells)]
        for column in table.columns
    ]
    shortest = [max(m.minimum for m in column) for column in measures]
    longest = [max(m.maximum for m in column) for column in measures]
    chrome = Measurement.get(console, unlimited, table).maximum - sum(longest)
    widths = _fitted(shortest, longest, console.width - chrome)
    if widths is None:
        _print_records(console, table)
        return
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width
    console.print(table)


def _fitted(shortest: list[int], longest: list[int], room: int) -> list[int] | None:
    """Column widths within ``room``, none below its longest word; the spare room goes first to
    the columns that need least of it to be whole on one line. None if the words alone do not fit."""
    widths = list(shortest)
    spare = room - sum(widths)
    if spare < 0:
        return None
    for i in sorted(range(len(widths)), key=lambda i: longest[i] - shortest[i]):
        grown = min(longest[i] - widths[i], spare)
        widths[i] += grown
        spare -= grown
    return widths


def _print_records(console: Console, table: Table) -> None:
    headers = [column.header for column in table.columns]
    rows: list[list[RenderableType]] = [list(cells) for cells in zip(*(c.cells for c in table.columns), strict=True)]
    for number, row in enumerate(rows):
        if number:
            console.print()
        for header, cell in zip(headers, row, strict=True):
            if cell:
                console.print(f"{header}: ", cell, sep="", soft_wrap=True)
