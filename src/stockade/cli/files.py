"""``stockade files``: upload, list, show, download and delete files (the v1 routes), and reseal
them with the first encryption key."""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from stockade.cli.client import Session
from stockade.cli.output import when

files_app = typer.Typer(help="Files: batch input files and the outputs of batches.", no_args_is_help=True)
errors = Console(stderr=True)
FILES = "/openai/v1/files"


def _path(file_id: str, *rest: str) -> str:
    return "/".join((FILES, urllib.parse.quote(file_id, safe=""), *rest))


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table("id", "filename", "purpose", "bytes", "status", "created", "expires")
    for f in rows:
        table.add_row(
            f["id"], f["filename"], f["purpose"], f"{f['bytes']:,}", f["status"], when(f["created_at"]),
            when(f["expires_at"]),
        )
    return table


class _Reported:
    """A file read for sending, the bytes read shown on a progress bar."""

    def __init__(self, file: BinaryIO, advance: Any) -> None:
        self._file = file
        self._advance = advance

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._advance(len(data))
        return data

    def fileno(self) -> int:  # how httpx learns the length to declare
        return self._file.fileno()


@files_app.command("upload")
def files_upload(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The file; a batch input file is JSONL", exists=True, dir_okay=False)],
    purpose: Annotated[str, typer.Option(help="batch, or another upload purpose")] = "batch",
    expires_after: Annotated[
        int | None, typer.Option(help="Delete it this many seconds after the upload (14 to 30 days)")
    ] = None,
) -> None:
    """Upload a file; a batch input file is checked line by line, and refused whole, naming the
    lines at fault, if any line is wrong."""
    fields = {"purpose": purpose}
    if expires_after is not None:
        fields |= {"expires_after[anchor]": "created_at", "expires_after[seconds]": str(expires_after)}
    columns = (*Progress.get_default_columns()[:1], BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with path.open("rb") as file, Progress(*columns, console=errors, transient=True) as progress:
        task = progress.add_task(f"Uploading {path.name}", total=path.stat().st_size)
        reported = _Reported(file, lambda size: progress.advance(task, size))
        with ctx.obj.client.session(create_store=True) as session:
            uploaded = session.upload(FILES, fields, path.name, reported)
    ctx.obj.emit(uploaded, _table([uploaded]))


@files_app.command("list")
def files_list(
    ctx: typer.Context,
    purpose: Annotated[str | None, typer.Option(help="Only files for this purpose")] = None,
) -> None:
    """The files, newest first."""
    data = ctx.obj.call("GET", FILES, purpose=purpose)["data"]
    ctx.obj.emit(data, _table(data))


@files_app.command("show")
def files_show(ctx: typer.Context, file_id: Annotated[str, typer.Argument(help="The id from `files list`")]) -> None:
    """One file."""
    shown = ctx.obj.call("GET", _path(file_id))
    ctx.obj.emit(shown, _table([shown]))


@files_app.command("download")
def files_download(
    ctx: typer.Context,
    file_id: Annotated[str, typer.Argument(help="The id from `files list`")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write it (default: standard output)")] = None,
) -> None:
    """A file's contents."""
    with ctx.obj.client.session() as session:
        save_content(session, file_id, output)


def save_content(session: Session, file_id: str, output: Path | None) -> None:
    """A file's contents to ``output``, or to standard output."""
    if output is None:
        session.download(_path(file_id, "content"), sys.stdout.buffer)
        return
    try:
        with output.open("wb") as sink:
            session.download(_path(file_id, "content"), sink)
    except BaseException:
        output.unlink(missing_ok=True)  # a part of the file would pass for all of it
        raise
    errors.print(f"Wrote {output}.")


@files_app.command("delete")
def files_delete(ctx: typer.Context, file_id: Annotated[str, typer.Argument(help="The id from `files list`")]) -> None:
    """Delete a file."""
    ctx.obj.call("DELETE", _path(file_id))
    errors.print(f"Deleted file {file_id}.")


@files_app.command("rekey")
def files_rekey(ctx: typer.Context) -> None:
    """Reseal with the first of batch.encryption_keys everything an older key sealed; the older
    keys can then be removed from the configuration."""
    result = ctx.obj.call("POST", "/management/files/rekey")
    if ctx.obj.as_json:
        ctx.obj.emit(result)
        return
    errors.print(
        f"Resealed {result['resealed']} stored values with the first key; the older keys may now "
        "be removed from batch.encryption_keys."
    )
