"""The documentation shows the same zero-retention list that the agents give customers."""

from __future__ import annotations

from pathlib import Path

from stockade.routines.retention import markdown_table

DOC = Path(__file__).parent.parent / "docs" / "data-retention.md"


def test_the_documented_table_is_the_code_list() -> None:
    assert markdown_table() in DOC.read_text()
