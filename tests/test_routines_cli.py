"""`stockade routines …`, `stockade chat` and the scripted evaluation, as a user runs them: the
checks and listings on a local data directory, what needs the model against the real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import (
    SALES_CONTACT,
    App,
    Server,
    offer,
    opening_call_routine,
    run_cli,
    server_env,
    with_store,
)
from stockade.routines.parser import load_routine, parse_routine
from stockade.routines.service import BUILTIN_DIRECTORY

BAA_FILE = BUILTIN_DIRECTORY / "baa.md"
BAA = load_routine(BAA_FILE)  # with its examples file, as served


def remote(server: Server, *args: str) -> list[str]:
    return ["--endpoint", server.url, "--api-key", server.key, *args]


def test_the_development_set_of_baa_conversations_all_follow_the_routine(server: Server) -> None:
    # On the embeddings deployment routines choose by default: the multilingual model's.
    args = ["routines", "eval", str(BUILTIN_DIRECTORY / "baa-dev.yaml"), "--runs", "1", "--deployment", "gpt-4o"]
    result = server.cli("--json", *remote(server, *args), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    (report,) = json.loads(result.stdout)["sets"]
    assert (report["set"], report["runs"]) == ("development", 1)
    assert report["conversations"] >= 20
    assert report["passed"] == report["conversations"]
    assert report["step_adherence"] == 1.0
    assert (report["function_call_precision"], report["function_call_recall"]) == (1.0, 1.0)
    assert report["claimed_not_taken_rate"] == 0.0


ENDS_EARLY = """
routine: baa
conversations:
- name: wants-a-person-then-keeps-going
  turns:
  - customer: I need a BAA.
    steps: [1a]
  - customer: Let me talk to a real person.
    steps: ['5.1']
  - customer: For the API.
    steps: ['2', 2a, 2b, 2c, 2d, 2e, 2i, 2f, '5.1']
    calls: [provide_list_of_zero_retention_endpoints]
- name: api-direct
  turns:
  - customer: Hello, I need a Business Associate Agreement.
    steps: [1a]
"""


def test_eval_scores_a_conversation_that_ends_early_as_failed_and_goes_on(
    server: Server, tmp_path: Path
) -> None:
    script = tmp_path / "ends-early.yaml"
    script.write_text(ENDS_EARLY)
    result = server.cli("--json", *remote(server, "routines", "eval", str(script), "--runs", "1"), check=False)
    assert result.returncode == 1, result.stderr
    (report,) = json.loads(result.stdout)["sets"]
    assert (report["conversations"], report["passed"], report["turns"]) == (2, 1, 4)
    assert report["function_call_recall"] == 0.0
    failures = report["failures"]["wants-a-person-then-keeps-going"]
    assert "run 1: turn 3: the conversation had ended (handed_off)" in failures


def test_chat_runs_the_baa_routine_in_the_terminal(server: Server) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stockade", *remote(server, "chat", "--routine", "baa")],
        input="Hi, I need a BAA.\nFor ChatGPT Enterprise.\nNo, that's all.\n",
        env={**server.env, "COLUMNS": "400"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert BAA.step("1a").text in result.stdout
    assert BAA.step("3a").text in result.stdout
    assert SALES_CONTACT in result.stdout
    assert "The conversation is resolved." in result.stdout


def test_check_reports_the_unobservable_branch_and_passes(tmp_path: Path) -> None:
    result = run_cli(server_env(tmp_path), "routines", "check", str(BAA_FILE))
    assert "step 4" in result.stdout and "not approved" in result.stdout


def test_check_fails_a_routine_that_cannot_be_followed(tmp_path: Path) -> None:
    broken = tmp_path / "broken.md"
    broken.write_text(BAA_FILE.read_text().replace("6. Call the `case_resolution` function.", ""))
    result = run_cli(server_env(tmp_path), "routines", "check", str(broken), check=False)
    assert result.returncode == 1
    assert "case_resolution" in result.stdout


def test_routines_list_offers_the_built_in_baa_routine(tmp_path: Path) -> None:
    listed = json.loads(run_cli(with_store(server_env(tmp_path)), "--json", "routines", "list").stdout)
    assert {"name": "baa", "version": BAA.version} .items() <= next(r for r in listed if r["name"] == "baa").items()  # type: ignore[union-attr]


def test_generate_writes_a_routine_that_parses_and_is_checked(server: Server, tmp_path: Path) -> None:
    output = tmp_path / "baa-routine.md"
    result = server.cli(
        *remote(server, "routines", "generate", str(BUILTIN_DIRECTORY / "baa-article.md"),
                "--deployment", "gpt-4o", "--output", str(output)),
        check=False,
    )
    assert output.exists(), result.stdout + result.stderr
    routine = parse_routine(output.read_text(), "baa")
    assert routine.steps[-1].function == "case_resolution"
    assert "Review it before use" in result.stdout


# -- a routine whose function fails, on the fake models ----------------------------------------

UNIMPLEMENTED = "find_latest_order"  # no entry point or webhook implements it
FAILS_SCRIPT = """
routine: {routine}
conversations:
- name: the-function-fails
  turns:
  - customer: Hi, where is my order?
    steps: ['1']
    calls: [find_latest_order]
"""
ON_FAKES = ["--deployment", "gpt-4o", "--embeddings-deployment", "text-embedding-3-small"]


def one_line(text: str) -> str:
    """Output as one line: the terminal's wrapping undone."""
    return " ".join(text.split())


def failing_script(fake: App, tmp_path: Path, routine: str) -> Path:
    offer(fake, routine, opening_call_routine(UNIMPLEMENTED))
    script = tmp_path / "fails.yaml"
    script.write_text(FAILS_SCRIPT.format(routine=routine))
    return script


def test_eval_prints_the_error_of_a_function_that_failed(fake: App, tmp_path: Path) -> None:
    script = failing_script(fake, tmp_path, "order-eval")
    result = fake.cli("routines", "eval", str(script), "--runs", "1", *ON_FAKES, check=False)
    assert result.returncode == 1
    assert f"`{UNIMPLEMENTED}` failed: no implementation is registered for `{UNIMPLEMENTED}`" in one_line(result.stdout)


def test_a_held_out_set_that_fails_is_reported_without_failing_the_command(fake: App, tmp_path: Path) -> None:
    script = failing_script(fake, tmp_path, "order-eval-held-out")
    script.write_text("held_out: true\n" + script.read_text())
    result = fake.cli("--json", "routines", "eval", str(script), "--runs", "2", *ON_FAKES, check=False)
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)["sets"]
    assert (report["held_out"], report["runs"], report["passed"], report["pass_k"]) == (True, 2, 0, 0.0)


def test_eval_cases_are_left_out_of_cases_list_unless_asked_for(fake: App, tmp_path: Path) -> None:
    script = failing_script(fake, tmp_path, "order-eval-cases")
    fake.cli("routines", "eval", str(script), "--runs", "1", *ON_FAKES, check=False)
    listed = fake.cli_json("cases", "list", "--limit", "1000")
    everything = fake.cli_json("cases", "list", "--include-evaluations", "--limit", "1000")
    assert isinstance(listed, list) and isinstance(everything, list)
    assert [c for c in listed if c["routine"] == "order-eval-cases"] == []
    assert [c["evaluation"] for c in everything if c["routine"] == "order-eval-cases"] == [True]


def test_chat_shows_a_failed_function_and_the_hand_off(fake: App) -> None:
    routine = offer(fake, "order-chat", opening_call_routine(UNIMPLEMENTED))
    result = fake.cli("chat", "--routine", routine, input="Hi, where is my order?\n")
    shown = one_line(result.stdout)
    assert f"1: {UNIMPLEMENTED} failed: no implementation is registered for `{UNIMPLEMENTED}`" in shown
    assert "The conversation is handed_off." in shown


def test_check_warns_while_the_sales_contact_is_unset(tmp_path: Path) -> None:
    result = run_cli(server_env(tmp_path, COLUMNS="400"), "routines", "check", str(BAA_FILE))
    assert "needs routines.sales_contact, which is not set" in result.stdout
