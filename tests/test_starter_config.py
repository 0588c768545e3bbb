"""A fresh install: the starter stockade.toml that `stockade serve` writes where there is none,
and its placeholders, which let the built-in routine run end to end until they are replaced."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from conftest import in_process, offer, opening_call_routine, run_cli, server_env
from stockade.config import PLACEHOLDER, STARTER_CONFIG, Settings, write_starter_config
from stockade.routines.service import BUILTIN_DIRECTORY

WIDE = {"COLUMNS": "400"}  # a path in a message stays on one line


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without a stockade.toml, as a fresh clone's."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def serving() -> Iterator[mock.MagicMock]:
    """`stockade serve` up to the point where it would start the server: the settings it would run."""
    with mock.patch("stockade.replica.serve") as serve:
        yield serve


def served_settings(serve: mock.MagicMock) -> Settings:
    [(settings, _keys_created)] = [call.args for call in serve.call_args_list]
    return settings


def test_serve_writes_a_starter_config_where_none_exists_and_says_where(
    fresh: Path, serving: mock.MagicMock
) -> None:
    result = run_cli(server_env(fresh / "data", **WIDE), "serve")
    assert (fresh / "stockade.toml").read_text() == STARTER_CONFIG
    assert f"Wrote starter settings to {fresh / 'stockade.toml'}" in result.stderr


def test_serve_runs_with_the_starter_config_it_wrote(fresh: Path, serving: mock.MagicMock) -> None:
    run_cli(server_env(fresh / "data"), "serve")
    assert served_settings(serving).routines.sales_contact.startswith(PLACEHOLDER)


def test_serve_never_overwrites_a_config_file(fresh: Path, serving: mock.MagicMock) -> None:
    (fresh / "stockade.toml").write_text("port = 8123\n")
    result = run_cli(server_env(fresh / "data"), "serve")
    assert (fresh / "stockade.toml").read_text() == "port = 8123\n"
    assert "Wrote" not in result.stderr
    assert served_settings(serving).port == 8123


def test_serve_writes_no_starter_when_a_config_file_is_named(fresh: Path, serving: mock.MagicMock) -> None:
    named = fresh / "elsewhere.toml"
    named.write_text("port = 8124\n")
    run_cli(server_env(fresh / "data"), "--config", str(named), "serve")
    assert not (fresh / "stockade.toml").exists()


def test_the_starter_sales_contact_lets_the_function_give_it(tmp_path: Path) -> None:
    starter = tmp_path / "stockade.toml"
    write_starter_config(starter)
    with in_process(tmp_path / "data", STOCKADE_CONFIG=str(starter)) as app, app.http() as http:
        routine = offer(app, "sales-at-once", opening_call_routine("provide_sales_contact_information"))
        conversation = http.post("/routines/conversations", json={"routine": routine}).json()
        reply = http.post(f"/routines/conversations/{conversation['id']}/messages", json={"content": "Hi"}).json()
    [call] = [event for event in reply["events"] if event["kind"] == "function"]
    assert call["ok"], call
    assert reply["status"] == "open"
    assert any(f"sales team at {PLACEHOLDER}" in message["text"] for message in reply["messages"])


def test_check_warns_while_the_starter_placeholder_is_in_use(tmp_path: Path) -> None:
    starter = tmp_path / "stockade.toml"
    write_starter_config(starter)
    env = server_env(tmp_path / "data", STOCKADE_CONFIG=str(starter), **WIDE)
    result = run_cli(env, "routines", "check", str(BUILTIN_DIRECTORY / "baa.md"))
    assert "routines.sales_contact is still a placeholder" in result.stdout
