"""`stockade files`: upload, list, show, download, delete and rekey, on the app's data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_files import batch_lines

from conftest import App
from stockade.batch.files import SHORTEST_EXPIRY


def uploaded(fake: App, path: Path, *options: str) -> dict[str, Any]:
    result = fake.cli_json("files", "upload", str(path), *options)
    assert isinstance(result, dict)
    return result


def test_an_uploaded_file_is_listed_shown_and_downloaded_as_it_was(fake: App, tmp_path: Path) -> None:
    source = tmp_path / "input.jsonl"
    source.write_bytes(batch_lines(4))
    file = uploaded(fake, source)
    assert (file["status"], file["purpose"], file["bytes"]) == ("processed", "batch", source.stat().st_size)
    assert file["id"] in [f["id"] for f in fake.cli_json("files", "list")]  # type: ignore[union-attr]
    assert file["id"] in fake.cli("files", "show", file["id"]).stdout
    target = tmp_path / "copy.jsonl"
    fake.cli("files", "download", file["id"], "-o", str(target))
    assert target.read_bytes() == source.read_bytes()


def test_a_download_goes_to_standard_output_without_a_path(fake: App, tmp_path: Path) -> None:
    source = tmp_path / "input.jsonl"
    source.write_bytes(batch_lines(1))
    file = uploaded(fake, source)
    assert fake.cli("files", "download", file["id"]).stdout.encode() == source.read_bytes()


def test_an_upload_may_set_an_expiry(fake: App, tmp_path: Path) -> None:
    source = tmp_path / "input.jsonl"
    source.write_bytes(batch_lines(1))
    file = uploaded(fake, source, "--expires-after", str(SHORTEST_EXPIRY))
    assert file["expires_at"] == file["created_at"] + SHORTEST_EXPIRY


def test_a_refused_upload_names_the_line_at_fault(fake: App, tmp_path: Path) -> None:
    source = tmp_path / "input.jsonl"
    source.write_bytes(batch_lines(2) + b"not json\n")
    result = fake.cli("files", "upload", str(source), check=False)
    assert result.returncode == 1
    assert "line 3: not valid JSON" in result.stderr


def test_a_deleted_file_is_not_shown(fake: App, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(b"notes")
    file = uploaded(fake, source, "--purpose", "user_data")
    fake.cli("files", "delete", file["id"])
    shown = fake.cli("files", "show", file["id"], check=False)
    assert shown.returncode == 1 and "not found" in shown.stderr


def test_rekey_says_how_many_values_it_resealed(fake: App) -> None:
    # Every value is sealed with the data directory's one key already.
    assert "Resealed 0 stored values" in fake.cli("files", "rekey").stderr
