"""The ``stockade`` command: run the service and manage models, deployments and keys."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from stockade.cli.client import CommandError, ManagementClient
from stockade.config import Settings, load_settings

app = typer.Typer(
    help="Stockade: an Azure-OpenAI-compatible LLM service that runs on your own machines.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
models_app = typer.Typer(help="Models that can be deployed.", no_args_is_help=True)
deployments_app = typer.Typer(help="Deployments: your names for models.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: the resource's key1/key2 and application keys.", no_args_is_help=True)
usage_app = typer.Typer(help="Metadata of recent calls (never their content).", no_args_is_help=True)
quota_app = typer.Typer(
    help="Quota per model, which deployments' capacity draws from.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
app.add_typer(deployments_app, name="deployments")
app.add_typer(keys_app, name="keys")
app.add_typer(usage_app, name="usage")
app.add_typer(quota_app, name="quota")

console = Console()
errors = Console(stderr=True)


class Context:
    def __init__(self, settings: Settings, endpoint: str | None, api_key: str | None, as_json: bool):
        self.settings = settings
        self.as_json = as_json
        self.client = ManagementClient(settings, endpoint, api_key)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        try:
            result = self.client.request(method, path, body, **params)
        except CommandError as exc:
            errors.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        if self.client.created_keys:
            show_created_keys(self.client.created_keys)
        return result

    def emit(self, data: Any, table: Table | None = None) -> None:
        if self.as_json or table is None:
            console.print_json(json.dumps(data))
        else:
            console.print(table)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option(help="Configuration file (default: ./stockade.toml)", envvar="STOCKADE_CONFIG")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data directory (default: ./.stockade)", envvar="STOCKADE_DATA_DIR")
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(help="Manage a running server at this URL instead of the local data directory", envvar="STOCKADE_ENDPOINT"),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="Key for --endpoint", envvar="STOCKADE_API_KEY")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = False,
) -> None:
    try:
        settings = load_settings(config, data_dir=data_dir)
    except Exception as exc:
        errors.print(f"[red]error:[/red] invalid configuration: {exc}")
        raise typer.Exit(2) from None
    ctx.obj = Context(settings, endpoint, api_key, as_json)


def show_created_keys(keys: dict[str, str]) -> None:
    errors.print("[bold green]Created the resource's admin keys[/bold green] (shown only this once):")
    for name, secret in keys.items():
        errors.print(f"  {name}: [bold]{secret}[/bold]")
    errors.print(
        "Keep them in your secret store. [bold]stockade keys list[/bold] shows the keys that exist; "
        "[bold]stockade keys regenerate key1[/bold] replaces a lost one."
    )


def _time(value: float | None) -> str:
    return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


# -- serve -------------------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000)")] = None,
) -> None:
    """Run the service."""
    import uvicorn

    from stockade.api import create_app
    from stockade.core import Resource

    settings: Settings = ctx.obj.settings
    host = host or settings.host
    port = port or settings.port
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    resource = Resource(settings)
    errors.print(
        f"[bold]Stockade[/bold] on http://{host}:{port}/  store: {settings.store_url}"
    )
    application = create_app(resource, on_keys_created=show_created_keys)
    uvicorn.run(
        application,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        access_log=settings.access_log,
        timeout_graceful_shutdown=10,
    )


# -- models ------------------------------------------------------------------------------------


@models_app.command("list")
def models_list(ctx: typer.Context) -> None:
    """Models that deployments can use: the local ones and those of configured upstreams."""
    data = ctx.obj.call("GET", "/management/models")["data"]
    table = Table("model", "kind", "backend", "context", "description")
    for m in data:
        table.add_row(m["id"], m["kind"], m["backend"], str(m["context_tokens"] or ""), m["description"])
    ctx.obj.emit(data, table)


# -- deployments -------------------------------------------------------------------------------


def _deployment_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("name", "model", "backend", "capacity (k TPM)", "created", "updated")
    for d in rows:
        table.add_row(
            d["name"], d["model"], d["backend"], str(d["capacity"]), _time(d["created_at"]), _time(d["updated_at"])
        )
    return table


@deployments_app.command("create")
def deployments_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="The deployment name clients pass as `model`")],
    model: Annotated[str, typer.Option(help="A model from `stockade models list`")],
    backend: Annotated[str | None, typer.Option(help="Needed only when several backends offer the model")] = None,
    capacity: Annotated[int, typer.Option(help="Thousands of tokens per minute", min=1)] = 10,
) -> None:
    """Deploy a model under a name of your choosing."""
    body = {"model": model, "backend": backend, "capacity": capacity}
    d = ctx.obj.call("PUT", f"/management/deployments/{name}", body)
    ctx.obj.emit(d, _deployment_table([d]))


@deployments_app.command("list")
def deployments_list(ctx: typer.Context) -> None:
    """All deployments."""
    data = ctx.obj.call("GET", "/management/deployments")["data"]
    ctx.obj.emit(data, _deployment_table(data))


@deployments_app.command("show")
def deployments_show(ctx: typer.Context, name: str) -> None:
    """One deployment."""
    d = ctx.obj.call("GET", f"/management/deployments/{name}")
    ctx.obj.emit(d, _deployment_table([d]))


@deployments_app.command("update")
def deployments_update(
    ctx: typer.Context,
    name: str,
    model: Annotated[str | None, typer.Option(help="Serve another model under this name")] = None,
    backend: Annotated[str | None, typer.Option()] = None,
    capacity: Annotated[int | None, typer.Option(help="Thousands of tokens per minute", min=1)] = None,
) -> None:
    """Change a deployment's model or capacity; running servers pick it up without a restart."""
    body = {k: v for k, v in {"model": model, "backend": backend, "capacity": capacity}.items() if v is not None}
    d = ctx.obj.call("PATCH", f"/management/deployments/{name}", body)
    ctx.obj.emit(d, _deployment_table([d]))


@deployments_app.command("delete")
def deployments_delete(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Delete a deployment; calls to its name then get 404 DeploymentNotFound."""
    if not yes and not typer.confirm(f"Delete deployment {name!r}?"):
        raise typer.Exit(1)
    ctx.obj.call("DELETE", f"/management/deployments/{name}")
    errors.print(f"Deleted deployment {name}.")


# -- keys --------------------------------------------------------------------------------------


def _per_minute(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _key_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("name", "id", "kind", "role", "deployment", "TPM", "RPM", "ends with", "created")
    for k in rows:
        table.add_row(
            k["name"], k["id"], k["kind"], k["role"], k["deployment"] or "(all)",
            _per_minute(k["tokens_per_minute"]), _per_minute(k["requests_per_minute"]),
            "…" + k["hint"], _time(k["created_at"]),
        )
    return table


def _show_secret(ctx: typer.Context, key: dict[str, Any]) -> None:
    if ctx.obj.as_json:
        ctx.obj.emit(key)
        return
    console.print(_key_table([key]))
    console.print(f"key: [bold]{key['key']}[/bold]")
    errors.print("This is the only time the key is shown; Stockade keeps only its hash.")


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """Active keys (their secrets are never shown again after creation)."""
    data = ctx.obj.call("GET", "/management/keys")["data"]
    ctx.obj.emit(data, _key_table(data))


@keys_app.command("regenerate")
def keys_regenerate(ctx: typer.Context, name: Annotated[str, typer.Argument(help="key1 or key2")]) -> None:
    """Replace key1 or key2 with a new secret; the old one stops working at once."""
    _show_secret(ctx, ctx.obj.call("POST", f"/management/keys/{name}/regenerate"))


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A name for the application")],
    role: Annotated[str, typer.Option(help="openai-user, openai-contributor or contributor")] = "openai-user",
    deployment: Annotated[str | None, typer.Option(help="Limit the key to one deployment")] = None,
    tpm: Annotated[int | None, typer.Option(help="The key's own tokens-per-minute limit", min=1)] = None,
    rpm: Annotated[int | None, typer.Option(help="The key's own requests-per-minute limit", min=1)] = None,
) -> None:
    """Create an application key with a role, optionally limited to one deployment and rate."""
    body = {"name": name, "role": role, "deployment": deployment,
            "tokens_per_minute": tpm, "requests_per_minute": rpm}
    _show_secret(ctx, ctx.obj.call("POST", "/management/keys", body))


@keys_app.command("update")
def keys_update(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The id from `keys list`")],
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute; 0 removes the limit", min=0)] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute; 0 removes the limit", min=0)] = None,
) -> None:
    """Change an application key's own rate limits; running servers apply them at once."""
    body = {field: value or None
            for field, value in (("tokens_per_minute", tpm), ("requests_per_minute", rpm))
            if value is not None}
    key = ctx.obj.call("PATCH", f"/management/keys/{key_id}", body)
    ctx.obj.emit(key, _key_table([key]))


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The id from `keys list`")]) -> None:
    """Revoke an application key."""
    ctx.obj.call("DELETE", f"/management/keys/{key_id}")
    errors.print(f"Revoked key {key_id}.")


# -- quota -------------------------------------------------------------------------------------


@quota_app.command("show")
def quota_show(ctx: typer.Context) -> None:
    """Each model's quota, the capacity its deployments hold, and their use over the last minute."""
    data = ctx.obj.call("GET", "/management/quotas")["data"]
    table = Table("model", "deployment", "capacity", "TPM", "RPM", "tokens, last min", "calls, last min")
    for quota in data:
        table.add_row(
            f"[bold]{quota['model']}[/bold]", "", f"{quota['allocated']} of {quota['quota']}",
            f"{quota['quota'] * 1000:,} quota", "", "", "", end_section=not quota["deployments"],
        )
        for i, d in enumerate(quota["deployments"]):
            table.add_row(
                "", d["name"], str(d["capacity"]), f"{d['tokens_per_minute']:,}",
                f"{d['requests_per_minute']:,}", f"{d['tokens_last_minute']:,}",
                f"{d['requests_last_minute']:,}", end_section=i == len(quota["deployments"]) - 1,
            )
    ctx.obj.emit(data, table)


@quota_app.command("set")
def quota_set(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A model from `stockade models list`")],
    capacity: Annotated[int, typer.Option(help="Thousands of tokens per minute for all its deployments", min=1)],
) -> None:
    """Set a model's quota: the capacity all its deployments may hold together."""
    quota = ctx.obj.call("PUT", f"/management/quotas/{model}", {"capacity": capacity})
    errors.print(
        f"Quota of {model}: {quota['quota']} ({quota['quota'] * 1000:,} TPM), "
        f"{quota['allocated']} allocated, {quota['available']} available."
    )
    if ctx.obj.as_json:
        ctx.obj.emit(quota)


# -- usage -------------------------------------------------------------------------------------


@usage_app.command("list")
def usage_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    deployment: Annotated[str | None, typer.Option()] = None,
) -> None:
    """The most recent calls: time, deployment, key, status, tokens and latency."""
    data = ctx.obj.call("GET", "/management/usage", limit=limit, deployment=deployment)["data"]
    table = Table("time", "operation", "deployment", "key", "status", "prompt", "completion", "ms")
    for r in data:
        table.add_row(
            _time(r["ts"]), r["operation"], r["deployment"] or "", r["key_id"] or "", str(r["status"]),
            str(r["prompt_tokens"]), str(r["completion_tokens"]), f"{r['latency_ms']:.1f}",
        )
    ctx.obj.emit(data, table)
