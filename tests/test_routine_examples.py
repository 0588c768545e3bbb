"""A routine's examples file: how customers say a branch applies, beside the routine's Markdown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockade.routines.checker import Severity, check
from stockade.routines.parser import RoutineSyntaxError, load_routine, parse_examples
from stockade.routines.plan import Plan
from stockade.routines.service import BUILTIN_DIRECTORY, Catalogue

BAA = (BUILTIN_DIRECTORY / "baa.md").read_text()
EXAMPLES = """branches:
  "2":
    - Our backend calls your models
  "4":
    - Can we be turned down?
"""


def routine_dir(tmp_path: Path, examples: str | None = EXAMPLES) -> Path:
    (tmp_path / "mine.md").write_text(BAA)
    if examples is not None:
        (tmp_path / "mine.examples.yaml").write_text(examples)
    return tmp_path / "mine.md"


def test_a_routine_without_an_examples_file_has_no_examples(tmp_path: Path) -> None:
    assert load_routine(routine_dir(tmp_path, None)).examples == {}


def test_the_examples_file_beside_a_routine_is_read_with_it(tmp_path: Path) -> None:
    routine = load_routine(routine_dir(tmp_path))
    assert routine.examples == {"2": ("Our backend calls your models",), "4": ("Can we be turned down?",)}


def test_a_branchs_phrasings_are_among_its_options_examples(tmp_path: Path) -> None:
    options = {o.id: o.examples for o in Plan.of(load_routine(routine_dir(tmp_path))).options("1a")}
    assert "Our backend calls your models" in options["branch:2"]
    assert "Our backend calls your models" not in options["branch:3"]


def test_a_topics_phrasings_are_among_its_options_examples(tmp_path: Path) -> None:
    options = {o.id: o.examples for o in Plan.of(load_routine(routine_dir(tmp_path))).options("1a")}
    assert "Can we be turned down?" in options["topic:4"]


def test_a_branch_changed_at_the_closing_question_keeps_its_phrasings(tmp_path: Path) -> None:
    options = {o.id: o.examples for o in Plan.of(load_routine(routine_dir(tmp_path))).options("5.1")}
    assert "Our backend calls your models" in options["branch:2"]


def test_the_version_changes_with_the_examples(tmp_path: Path) -> None:
    without = load_routine(routine_dir(tmp_path, None)).version
    assert load_routine(routine_dir(tmp_path)).version != without


def test_the_routines_api_shows_its_examples(tmp_path: Path) -> None:
    assert load_routine(routine_dir(tmp_path)).to_dict()["examples"]["2"] == ["Our backend calls your models"]


def test_phrasings_for_a_step_that_is_not_a_branch_are_an_error(tmp_path: Path) -> None:
    routine = load_routine(routine_dir(tmp_path, 'branches:\n  "2a":\n    - the API\n'))
    errors = [(f.step, f.message) for f in check(routine) if f.severity is Severity.ERROR]
    assert errors == [("2a", "the examples file gives phrasings for step 2a, which is not a branch; "
                              "examples are for branches (2, 3, 4)")]


@pytest.mark.parametrize(("text", "message"), [
    ("branches: [\n", "not valid YAML"),
    ("- a list\n", "one mapping, `branches:`"),
    ('branches:\n  "2": the API\n', "branch '2' must list phrasings"),
    ('branches:\n  "2": ["", "x"]\n', "branch '2' must list phrasings"),
    ('branches:\n  "2": [x]\nclosing: [bye]\n', "one mapping, `branches:`"),
])
def test_a_malformed_examples_file_is_refused_naming_the_file(text: str, message: str) -> None:
    with pytest.raises(RoutineSyntaxError, match=message) as raised:
        parse_examples(text, "mine.examples.yaml")
    assert "mine.examples.yaml" in str(raised.value)


def test_an_edited_examples_file_is_read_again(tmp_path: Path) -> None:
    examples = routine_dir(tmp_path).with_suffix(".examples.yaml")
    catalogue = Catalogue(tmp_path)
    before = catalogue.get("mine").version
    examples.write_text(EXAMPLES.replace("backend", "server"))
    os.utime(examples, ns=(examples.stat().st_atime_ns, examples.stat().st_mtime_ns + 1_000_000))
    assert catalogue.get("mine").examples["2"] == ("Our server calls your models",)
    assert catalogue.get("mine").version != before


def test_the_builtin_baa_routines_examples_name_its_branches() -> None:
    routine = Catalogue(None).get("baa")
    assert set(routine.examples) == {"2", "3", "4"}
    assert not [f for f in check(routine) if f.severity is Severity.ERROR]
