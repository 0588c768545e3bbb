"""The evaluation's figures: sets reported apart, and pass^k over k runs of each conversation."""

from __future__ import annotations

from pathlib import Path

from stockade.routines.evaluation import Outcome, Report, load_script

SCRIPT = """
routine: baa
conversations:
- name: api-direct
  turns:
  - customer: Hello, I need a BAA.
    steps: [1a]
"""


def outcome(name: str, *, passed: bool = True, left_open: bool = False) -> Outcome:
    return Outcome(name, turns=1, adherent_turns=1 if passed else 0, left_open=left_open)


def test_a_conversation_counts_towards_pass_k_only_if_every_run_passes() -> None:
    report = Report("held-out", [
        [outcome("steady"), outcome("flaky")],
        [outcome("steady"), outcome("flaky", passed=False)],
        [outcome("steady"), outcome("flaky")],
    ])
    assert (report.passed, report.pass_k) == (1, 0.5)
    assert [report.runs_passed(0), report.runs_passed(1)] == [3, 2]


def test_failures_name_the_run_they_happened_in() -> None:
    failed = outcome("flaky", passed=False)
    failed.differences.append("turn 1: steps [], expected ['1a']")
    report = Report("held-out", [[outcome("flaky")], [failed]])
    assert report.to_dict()["failures"] == {"flaky": ["run 2: turn 1: steps [], expected ['1a']"]}


def test_runs_that_left_the_conversation_open_are_counted() -> None:
    report = Report("held-out", [[outcome("a", left_open=True)], [outcome("a", left_open=True)]])
    assert report.to_dict()["left_open"] == 2


def test_a_set_is_named_by_its_set_key(tmp_path: Path) -> None:
    script = tmp_path / "baa-extra.yaml"
    script.write_text("set: regressions\n" + SCRIPT)
    assert load_script(script).name == "regressions"


def test_a_set_without_a_set_key_is_named_after_its_file(tmp_path: Path) -> None:
    script = tmp_path / "baa-extra.yaml"
    script.write_text(SCRIPT)
    assert load_script(script).name == "baa-extra"


def test_a_set_is_a_test_unless_marked_held_out(tmp_path: Path) -> None:
    script = tmp_path / "baa-extra.yaml"
    script.write_text(SCRIPT)
    assert load_script(script).held_out is False
    script.write_text("held_out: true\n" + SCRIPT)
    assert load_script(script).held_out is True
