"""``stockade batches``: submit a file of requests as a batch job, follow it, read its results.

The commands call the data plane's v1 routes (``/openai/v1/batches``, ``/openai/v1/files``), as
the openai SDK would, through the same client as every other command (a server with
``--endpoint``, or the local store in process). A batch runs in the servers: locally, ``--wait``
follows one only while a `stockade serve` runs on the same store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stockade.cli.client import CommandError, Session
from stockade.cli.files import FILES, save_content
from stockade.cli.output import when

batches_app = typer.Typer(
    help="Batch jobs: a JSONL file of requests, run on the capacity interactive calls leave.",
    no_args_is_help=True,
)
errors = Console(stderr=True)

BATCHES = "/openai/v1/batches"
FINISHED = frozenset({"completed", "failed", "expired", "cancelled"})


def _path(batch_id: str) -> str:
    return f"{BATCHES}/{batch_id}"


def _counts(batch: dict[str, Any]) -> tuple[int, int, int]:
    """Lines done, failed and remaining (Azure's counts may be null)."""
    counts = batch.get("request_counts") or {}
    total, completed, failed = (counts.get(k) or 0 for k in ("total", "completed", "failed"))
    return completed, failed, max(total - completed - failed, 0)


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table("id", "status", "deployment", "done", "failed", "remaining", "created", "output file", "error file")
    for b in rows:
        done, failed, remaining = _counts(b)
        table.add_row(
            b["id"], b["status"], b.get("model") or "", str(done), str(failed), str(remaining),
            when(b["created_at"]), b["output_file_id"] or "", b["error_file_id"] or "",
        )
    return table


def _requests(file: Path) -> Iterator[tuple[int, bytes, dict[str, Any] | None]]:
    """Each line of the file, numbered from 1, with its body when it is a request with one
    (lines that are not pass as they are, for the server's check to report with the rest)."""
    with file.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                body = json.loads(line)["body"]
            except (ValueError, KeyError, TypeError):
                body = None
            yield number, line, body if isinstance(body, dict) else None


def _check_deployment(file: Path, deployment: str) -> None:
    """A file runs on one deployment: a line naming another stops the submission before any
    upload."""
    for number, _, body in _requests(file):
        named = body.get("model") if body else None
        if named is not None and named != deployment:
            raise CommandError(
                f"line {number} of {file} names the deployment {named!r}, not {deployment!r}: a "
                f"batch runs on one deployment. Submit with --deployment {named}, or change the "
                "line's body.model."
            )


def _lines_for(file: Path, deployment: str) -> Iterator[bytes]:
    """The file's lines, a line without ``body.model`` given ``deployment``."""
    for _, line, body in _requests(file):
        if body is not None and body.get("model") is None:
            request = json.loads(line)
            request["body"]["model"] = deployment
            line = json.dumps(request).encode() + b"\n"
        yield line


class _Reader:
    """Lines read as a file is: an upload sends them as they are made, none held but the next."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self._lines = lines
        self._pending = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            line = next(self._lines, None)
            if line is None:
                break
            self._pending += line
        taken = self._pending if size < 0 else self._pending[:size]
        chunk = bytes(taken)
        del self._pending[:len(chunk)]
        return chunk


def _endpoint(file: Path) -> str:
    """The url the file's first request names: the batch's endpoint (the server checks the rest)."""
    with file.open("rb") as lines:
        for line in lines:
            if line.strip():
                try:
                    url = json.loads(line).get("url")
                except (ValueError, AttributeError):
                    break
                if isinstance(url, str):
                    return url
                break
    raise CommandError(
        f"the first line of {file} is not a request with a url (such as /chat/completions): "
        "each line is {\"custom_id\": ..., \"method\": \"POST\", \"url\": ..., \"body\": {...}}"
    )


def _followed(session: Session, batch: dict[str, Any], poll_seconds: float) -> dict[str, Any]:
    """Poll the batch until it ends, with a progress bar of its lines on stderr."""
    columns = (
        TextColumn("{task.description}"), BarColumn(),
        TextColumn("{task.fields[done]} done, {task.fields[failed]} failed, {task.fields[remaining]} remaining"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors) as progress:
        task = progress.add_task(batch["status"], total=None, done=0, failed=0, remaining="?")
        while True:
            done, failed, remaining = _counts(batch)
            total = done + failed + remaining
            progress.update(
                task, description=batch["status"], total=total or None, completed=done + failed,
                done=done, failed=failed, remaining=remaining,
            )
            if batch["status"] in FINISHED:
                return batch
            time.sleep(poll_seconds)
            batch = session.request("GET", _path(batch["id"]))


@batches_app.command("submit")
def batches_submit(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSONL, one request a line", exists=True, dir_okay=False)],
    deployment: Annotated[str, typer.Option(help="The deployment every line runs on")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow the batch until it ends")] = False,
    poll_seconds: Annotated[float, typer.Option(help="How often --wait asks", min=0.01)] = 2.0,
) -> None:
    """Upload FILE and create a batch job from it. Lines without body.model run on --deployment;
    a line naming another deployment is refused before anything is sent."""
    endpoint = _endpoint(file)
    _check_deployment(file, deployment)
    with ctx.obj.client.session(create_store=True) as session:
        uploaded = session.upload(FILES, {"purpose": "batch"}, file.name, _Reader(_lines_for(file, deployment)))
        batch = session.request(
            "POST", BATCHES, {"input_file_id": uploaded["id"], "endpoint": endpoint, "completion_window": "24h"}
        )
        if wait:
            batch = _followed(session, batch, poll_seconds)
    ctx.obj.emit(batch, _table([batch]))
    if wait and batch["status"] != "completed":
        errors.print(f"The batch ended {batch['status']}: `stockade batches show {batch['id']}` says why.")
        raise typer.Exit(1)


@batches_app.command("list")
def batches_list(
    ctx: typer.Context, limit: Annotated[int, typer.Option(help="How many, newest first", min=1, max=1000)] = 20
) -> None:
    """Batch jobs, newest first."""
    data = ctx.obj.call("GET", BATCHES, limit=limit)["data"]
    ctx.obj.emit(data, _table(data))


@batches_app.command("show")
def batches_show(ctx: typer.Context, batch_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """One batch job: its status, counts and files; why it failed, if it did."""
    batch = ctx.obj.call("GET", _path(batch_id))
    ctx.obj.emit(batch, _table([batch]))
    if not ctx.obj.as_json:
        for error in (batch.get("errors") or {}).get("data") or []:
            line = f" (line {error['line']})" if error.get("line") else ""
            errors.print(f"{error['code']}{line}: {error['message']}", soft_wrap=True)


@batches_app.command("cancel")
def batches_cancel(ctx: typer.Context, batch_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Cancel a batch job: lines running finish, the rest are cancelled; results so far are kept."""
    batch = ctx.obj.call("POST", f"{_path(batch_id)}/cancel")
    ctx.obj.emit(batch, _table([batch]))


@batches_app.command("results")
def batches_results(
    ctx: typer.Context,
    batch_id: Annotated[str, typer.Argument(metavar="ID")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")] = None,
    failed: Annotated[bool, typer.Option("--errors", help="The error file: the lines that failed")] = False,
) -> None:
    """A batch's output file (or error file), one JSON line per request."""
    with ctx.obj.client.session() as session:
        batch = session.request("GET", _path(batch_id))
        which = "error_file_id" if failed else "output_file_id"
        if not batch[which]:
            raise CommandError(_no_file(batch, failed))
        save_content(session, batch[which], output)


def _no_file(batch: dict[str, Any], failed: bool) -> str:
    if batch["status"] not in FINISHED:
        return f"batch {batch['id']} is {batch['status']}: its files are written when it ends"
    if failed:
        return f"batch {batch['id']} has no error file: no line failed"
    return f"batch {batch['id']} has no output file: every line failed; see them with --errors"
