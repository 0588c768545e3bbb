"""`stockade routines …`, `stockade chat` and the scripted evaluation, as a user runs them: the
checks and listings on a local data directory, what needs the model against the real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import SALES_CONTACT, Server, run_cli, server_env, with_store
from stockade.routines.parser import parse_routine
from stockade.routines.service import BUILTIN_DIRECTORY

BAA_FILE = BUILTIN_DIRECTORY / "baa.md"
BAA = parse_routine(BAA_FILE.read_text(), "baa")


def remote(server: Server, *args: str) -> list[str]:
    return ["--endpoint", server.url, "--api-key", server.key, *args]


def test_the_scripted_baa_conversations_all_follow_the_routine(server: Server) -> None:
    deployments = ["--deployment", "gpt-4o", "--embeddings-deployment", "text-embedding-3-small"]
    result = server.cli("--json", *remote(server, "routines", "eval", *deployments), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
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
    result = server.cli("--json", *remote(server, "routines", "eval", str(script)), check=False)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert (report["conversations"], report["passed"], report["turns"]) == (2, 1, 4)
    assert report["function_call_recall"] == 0.0
    failures = report["failures"]["wants-a-person-then-keeps-going"]
    assert "turn 3: the conversation had ended (handed_off)" in failures


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
