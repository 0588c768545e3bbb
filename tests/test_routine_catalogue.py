"""Which routines conversations may follow, and how their settings are checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from stockade.config import RoutineSettings
from stockade.errors import InvalidRequest
from stockade.routines.service import BUILTIN_DIRECTORY, Catalogue

BAA = (BUILTIN_DIRECTORY / "baa.md").read_text()


def test_an_edited_routine_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "mine.md"
    path.write_text(BAA)
    catalogue = Catalogue(tmp_path)
    before = catalogue.get("mine").version
    path.write_text(BAA.replace("1-2 business days", "2-3 business days"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert catalogue.get("mine").version != before


def test_an_unchanged_file_is_not_parsed_again(tmp_path: Path) -> None:
    (tmp_path / "mine.md").write_text(BAA)
    catalogue = Catalogue(tmp_path)
    assert catalogue.get("mine") is catalogue.get("mine")


def test_a_routine_with_errors_is_not_offered(tmp_path: Path) -> None:
    (tmp_path / "broken.md").write_text(BAA.replace("6. Call the `case_resolution` function.", ""))
    with pytest.raises(InvalidRequest, match="routines check"):
        Catalogue(tmp_path).get("broken")


def test_articles_are_not_routines() -> None:
    assert "baa-article" not in Catalogue(None).scan()


def test_another_endpoint_for_the_agents_needs_a_key() -> None:
    with pytest.raises(ValidationError, match=r"routines\.api_key"):
        RoutineSettings(endpoint="https://other-stockade:8000")
