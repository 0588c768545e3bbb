"""What the command line prints at a narrow terminal: secrets, ids and names whole on one line,
tables that wrap their prose instead; and the warnings that go with a printed credential."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from conftest import App, in_process, server_env, with_store
from fake_model import CHAT_MODEL
from stockade.cli import main, routines
from stockade.cli.output import print_table
from stockade.routines.evaluation import Outcome, Report

WIDTHS = [80, 30]
LONG_NAME = "a-deployment-named-at-some-length-0123456789"


@pytest.fixture(params=WIDTHS)
def width(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """The command's output console this many columns wide, as a terminal of that size."""
    monkeypatch.setattr(main, "console", Console(width=request.param))
    return int(request.param)


def whole_on_a_line(text: str, output: str) -> bool:
    return any(text in line for line in output.splitlines())


def rendered(table: Table, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    print_table(console, table)
    return console.file.getvalue()  # type: ignore[attr-defined]


# -- secrets ------------------------------------------------------------------------------------


def test_a_service_principals_secret_is_printed_whole_on_one_line(fake: App, width: int) -> None:
    name = f"app-{uuid.uuid4().hex[:6]}"
    output = fake.cli("principals", "create", "--name", name).stdout
    (secret,) = re.findall(r"^AZURE_CLIENT_SECRET=(\S+)$", output, re.MULTILINE)
    (listed,) = [p for p in fake.cli_json("principals", "list") if p["name"] == name]  # type: ignore[union-attr, index]
    assert secret.endswith(listed["hint"])
    assert len(f"AZURE_CLIENT_SECRET={secret}") > width  # what used to be split


def test_an_application_keys_secret_is_printed_whole_on_one_line(fake: App, width: int) -> None:
    output = fake.cli("keys", "create", "--name", f"app-{uuid.uuid4().hex[:6]}").stdout
    (secret,) = re.findall(r"^key: (\S+)$", output, re.MULTILINE)
    assert fake.azure(secret).models.list().data


# -- tables -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_named(fake: App) -> Iterator[str]:
    fake.deploy(LONG_NAME, CHAT_MODEL, 1)
    yield LONG_NAME
    fake.cli("deployments", "delete", LONG_NAME, "--yes")


def test_deployment_names_and_models_are_whole_in_the_list(fake: App, long_named: str, width: int) -> None:
    output = fake.cli("deployments", "list").stdout
    assert whole_on_a_line(long_named, output) and whole_on_a_line(CHAT_MODEL, output)
    assert "…" not in output


def test_key_ids_and_names_are_whole_in_the_list(fake: App, width: int) -> None:
    name = f"an-application-key-named-at-length-{uuid.uuid4().hex[:6]}"
    created = fake.cli_json("keys", "create", "--name", name)
    output = fake.cli("keys", "list").stdout
    assert whole_on_a_line(name, output) and whole_on_a_line(created["id"], output)  # type: ignore[index]


def test_usage_rows_show_the_key_name_and_the_time_uncut(fake: App, width: int) -> None:
    name = f"usage-{uuid.uuid4().hex[:6]}"
    key = fake.cli_json("keys", "create", "--name", name)["key"]  # type: ignore[index]
    fake.azure(key).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    fake.flush_usage()
    output = fake.cli("usage", "list", "--limit", "1").stdout
    assert whole_on_a_line(name, output)
    assert re.search(r"\d{4}-\d\d-\d\d", output) and "…" not in output


def test_a_table_that_fits_wraps_its_prose_and_keeps_its_ids_whole() -> None:
    table = Table("id", "description")
    table.add_row("an-identifier-of-forty-characters-000000", "words that may go on several lines " * 3)
    output = rendered(table, 80)
    assert output.startswith("┏")  # still a table
    assert whole_on_a_line("an-identifier-of-forty-characters-000000", output)
    assert max(len(line) for line in output.splitlines()) <= 80


def test_a_table_too_wide_for_the_terminal_becomes_one_record_per_row() -> None:
    table = Table("id", "model")
    table.add_row("an-identifier-of-forty-characters-000000", "a-model-of-thirty-characters-0")
    table.add_row("another", "")
    output = rendered(table, 40)
    assert output.splitlines() == [
        "id: an-identifier-of-forty-characters-000000",
        "model: a-model-of-thirty-characters-0",
        "",
        "id: another",
    ]


# -- the authority host a service principal is given ---------------------------------------------


def test_a_principal_on_plain_http_comes_with_a_warning_on_how_to_serve_tls(fake: App) -> None:
    result = fake.cli("--json", "principals", "create", "--name", f"app-{uuid.uuid4().hex[:6]}")
    assert "--tls-self-signed" in result.stderr
    assert "https" in json.loads(result.stdout)["warnings"][0]


def test_a_principal_on_https_comes_without_a_warning(tmp_path: Path) -> None:
    with in_process(tmp_path, deployments=(), STOCKADE_AUTH__PUBLIC_URL="https://stockade.test:8443") as app:
        result = app.cli("--json", "principals", "create", "--name", "app")
    assert "warning" not in result.stderr
    assert "warnings" not in json.loads(result.stdout)


def test_a_local_command_prints_no_diagnostic_log_lines(tmp_path: Path) -> None:
    # A real process: the diagnostic log writes to the process's own stdout when it flushes.
    env = with_store(server_env(tmp_path))
    command = [sys.executable, "-m", "stockade", "deployments", "list"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "/management/deployments" not in result.stdout + result.stderr


def test_agent_text_is_printed_as_it_is_not_as_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    monkeypatch.setattr(routines, "console", console)
    routines._show_event({"kind": "message", "text": "Type [bold]yes[/bold] or [red]"}, trace=False)
    assert "Type [bold]yes[/bold] or [red]" in console.file.getvalue()  # type: ignore[attr-defined]


def test_an_evaluation_report_prints_each_conversation_name_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    monkeypatch.setattr(routines, "console", console)
    routines._print_report(Report("development", [[Outcome("unclear-then-enterprise-after-two-questions", turns=4)]]))
    assert whole_on_a_line("unclear-then-enterprise-after-two-questions", console.file.getvalue())  # type: ignore[attr-defined]
