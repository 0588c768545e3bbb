"""The command line's local store: a read never creates one, a change starts one and says so, and
the admin keys minted with it go to an owner-only file, their secrets to a terminal only."""

from __future__ import annotations

import io
import json
import sqlite3
import stat
from pathlib import Path

import pytest
from rich.console import Console

from conftest import (
    App,
    environment,
    in_process,
    postgres_schema_url,
    run_cli,
    server_env,
    with_store,
)
from stockade.cli import main
from stockade.config import Settings
from stockade.core.resource import ADMIN_KEYS_FILE, prepare_store


def admin_keys(data_dir: Path) -> dict[str, str]:
    lines = (data_dir / ADMIN_KEYS_FILE).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if not line.startswith("#"))


# -- a read on a missing store ------------------------------------------------------------------


def test_a_read_without_a_store_creates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "nothing-here"
    result = run_cli(server_env(data_dir), "deployments", "list", check=False)
    assert result.returncode == 1
    assert not data_dir.exists()


def test_a_read_without_a_store_says_where_it_looked_and_how_to_reach_the_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "nothing-here"
    stderr = run_cli(server_env(data_dir), "keys", "list", check=False).stderr
    assert str(data_dir.resolve() / "stockade.db") in stderr
    assert "--data-dir" in stderr and "--endpoint" in stderr


def test_a_routine_evaluation_without_a_store_ends_with_the_same_clear_error(tmp_path: Path) -> None:
    result = run_cli(server_env(tmp_path / "nothing-here"), "routines", "eval", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no Stockade store")


def test_a_read_of_a_database_without_the_tables_creates_none(tmp_path: Path) -> None:
    database = tmp_path / "empty.db"
    sqlite3.connect(database).close()
    url = f"sqlite:///{database}"
    result = run_cli(server_env(tmp_path, STOCKADE_DATABASE_URL=url), "deployments", "list", check=False)
    assert result.returncode == 1 and url in result.stderr
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []


@pytest.mark.postgres
def test_a_read_of_a_postgresql_schema_without_the_tables_creates_none(tmp_path: Path) -> None:
    with postgres_schema_url() as url:
        result = run_cli(server_env(tmp_path, STOCKADE_DATABASE_URL=url), "deployments", "list", check=False)
        assert result.returncode == 1 and "has no Stockade tables" in result.stderr
        # A change then creates the tables in that same schema, and the read finds them.
        run_cli(server_env(tmp_path, STOCKADE_DATABASE_URL=url), "keys", "create", "--name", "app")
        assert run_cli(server_env(tmp_path, STOCKADE_DATABASE_URL=url), "deployments", "list").returncode == 0


def test_a_read_of_an_existing_store_works(tmp_path: Path) -> None:
    env = with_store(server_env(tmp_path))
    assert json.loads(run_cli(env, "--json", "deployments", "list").stdout) == []


# -- a change on a missing store ----------------------------------------------------------------


def test_a_change_without_a_store_starts_one_and_says_so(tmp_path: Path) -> None:
    data_dir = tmp_path / "new"
    stderr = run_cli(server_env(data_dir), "keys", "create", "--name", "app").stderr
    assert "started a new one" in stderr and str(data_dir.resolve() / "stockade.db") in stderr
    assert json.loads(run_cli(server_env(data_dir), "--json", "keys", "list").stdout)


# -- the admin keys -----------------------------------------------------------------------------


def test_the_admin_keys_are_written_to_a_file_only_the_owner_may_read(tmp_path: Path) -> None:
    with in_process(tmp_path, deployments=()):
        mode = stat.S_IMODE((tmp_path / ADMIN_KEYS_FILE).stat().st_mode)
    assert mode == 0o600


def test_the_admin_keys_file_holds_working_keys(tmp_path: Path) -> None:
    with in_process(tmp_path, deployments=()) as app:
        keys = admin_keys(tmp_path)
        assert keys["key1"] == app.key
        assert app.azure(keys["key2"]).models.list().data


def test_the_admin_keys_file_is_written_once(fake: App) -> None:
    (fake.data_dir / ADMIN_KEYS_FILE).unlink()
    fake.cli("deployments", "list")  # opens the store again: its keys exist, none is created
    assert not (fake.data_dir / ADMIN_KEYS_FILE).exists()


def test_regenerating_an_admin_key_takes_its_stale_secret_out_of_the_keys_file(tmp_path: Path) -> None:
    with in_process(tmp_path, deployments=()) as app:
        before = admin_keys(tmp_path)
        app.cli("keys", "regenerate", "key1")
        after = admin_keys(tmp_path)
        text = (tmp_path / ADMIN_KEYS_FILE).read_text()
    assert "key1" not in after and after["key2"] == before["key2"]
    assert before["key1"] not in text and "key1 was regenerated" in text


def test_a_several_worker_serve_writes_the_keys_file_too(tmp_path: Path) -> None:
    with environment(server_env(tmp_path)):
        created = prepare_store(Settings())
    assert admin_keys(tmp_path) == created


def test_the_cli_starting_a_store_prints_no_admin_key_to_a_log(tmp_path: Path) -> None:
    result = run_cli(server_env(tmp_path), "keys", "create", "--name", "app")
    keys = admin_keys(tmp_path)
    assert str(tmp_path.resolve() / ADMIN_KEYS_FILE) in result.stderr
    assert not any(secret in result.stdout + result.stderr for secret in keys.values())


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_new_admin_keys_are_shown_to_an_interactive_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    stderr = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(main, "errors", Console(file=stderr, width=80, color_system=None))
    main.show_created_keys(Settings(data_dir=tmp_path), {"key1": "secret-one", "key2": "secret-two"})
    assert ("secret-one" in stderr.getvalue()) is terminal
    assert str(tmp_path.resolve() / ADMIN_KEYS_FILE) in stderr.getvalue()
