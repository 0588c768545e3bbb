"""The ``stockade`` command: run the service and manage models, deployments and keys."""

from __future__ import annotations

import enum
import functools
import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from stockade.billing.prices import PROVISIONED
from stockade.cli.batches import batches_app
from stockade.cli.budgets import budgets_app
from stockade.cli.client import CommandError, ManagementClient, store_location
from stockade.cli.content_filters import blocklists_app, content_filters_app
from stockade.cli.files import files_app
from stockade.cli.output import print_table, when
from stockade.cli.prices import prices_app
from stockade.cli.routines import cases_app, chat, routines_app
from stockade.cli.safety import safety_app
from stockade.cli.usage import usage_app
from stockade.config import DEFAULT_CONFIG_FILE, Settings, load_settings, write_starter_config
from stockade.core.resource import admin_keys_file
from stockade.store import shown_url

GLOBAL_FLAGS = ("--json",)


class _Stockade(TyperGroup):
    """Takes the global flags after a subcommand too: `stockade deployments list --json` as well
    as `stockade --json deployments list` (click reads a group's options only before its
    subcommand)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        moved = [arg for arg in args[:end] if arg in GLOBAL_FLAGS]
        rest = [arg for arg in args[:end] if arg not in GLOBAL_FLAGS] + args[end:]
        return super().parse_args(ctx, moved + rest)

    def invoke(self, ctx: Any) -> Any:
        # A command that meets a CommandError outside its own handling (opening a session on a
        # missing store, say) ends with the one clear line, not a traceback.
        try:
            return super().invoke(ctx)
        except CommandError as exc:
            show_error(exc)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Stockade,
    help="Stockade: an Azure-OpenAI-compatible LLM service that runs on your own machines.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
models_app = typer.Typer(help="Models that can be deployed.", no_args_is_help=True)
deployments_app = typer.Typer(help="Deployments: your names for models.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: the resource's key1/key2 and application keys.", no_args_is_help=True)
quota_app = typer.Typer(
    help="Quota per model, which deployments' capacity draws from.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
app.add_typer(deployments_app, name="deployments")
app.add_typer(keys_app, name="keys")
app.add_typer(usage_app, name="usage")
app.add_typer(prices_app, name="prices")
identities_app = typer.Typer(
    help="Managed identities: tokens for your applications, as Azure App Service gives them.",
    no_args_is_help=True,
)
principals_app = typer.Typer(
    help="Service principals: client id and secret for OAuth 2.0 client credentials.",
    no_args_is_help=True,
)
roles_app = typer.Typer(help="Role assignments for tokens' principals and keys.", no_args_is_help=True)
network_app = typer.Typer(help="Network rules: which addresses may call.", no_args_is_help=True)
local_auth_app = typer.Typer(help="Key (local) authentication, as Azure's disableLocalAuth.", no_args_is_help=True)
signing_keys_app = typer.Typer(help="The token service's signing keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log of management actions.", no_args_is_help=True)
app.add_typer(quota_app, name="quota")
app.add_typer(identities_app, name="identities")
app.add_typer(principals_app, name="principals")
app.add_typer(roles_app, name="roles")
app.add_typer(network_app, name="network")
app.add_typer(local_auth_app, name="local-auth")
app.add_typer(signing_keys_app, name="signing-keys")
app.add_typer(audit_app, name="audit")
app.add_typer(routines_app, name="routines")
app.add_typer(cases_app, name="cases")
app.add_typer(content_filters_app, name="content-filters")
app.add_typer(blocklists_app, name="blocklists")
app.add_typer(safety_app, name="safety")
app.add_typer(batches_app, name="batches")
app.add_typer(budgets_app, name="budgets")
app.add_typer(files_app, name="files")
app.command()(chat)

console = Console()
errors = Console(stderr=True)


class Context:
    def __init__(
        self, settings: Settings, endpoint: str | None, api_key: str | None, token: str | None,
        as_json: bool, *, config: Path | None, reload: Callable[[], Settings],
    ):
        self.settings = settings
        self.config = config  # the file named by --config or STOCKADE_CONFIG, if any
        self.reload = reload  # the settings read again, as the command line was given them
        self.as_json = as_json
        self.client = ManagementClient(settings, endpoint, api_key, token)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        try:
            return self.client.request(method, path, body, **params)
        except CommandError as exc:
            show_error(exc)
            raise typer.Exit(1) from None
        finally:
            self._tell_what_was_created()

    def _tell_what_was_created(self) -> None:
        if self.client.created_store:
            errors.print(
                f"There was no store here: started a new one, {escape(store_location(self.settings))}. "
                "A server running on another store does not see it; to manage that one, pass its "
                "--data-dir (or --config), or reach it with --endpoint URL --api-key KEY.",
                soft_wrap=True,
            )
        if self.client.created_keys:
            show_created_keys(self.settings, self.client.created_keys)

    def emit(self, data: Any, table: Table | None = None) -> None:
        if self.as_json or table is None:
            console.print_json(json.dumps(data))
        else:
            print_table(console, table)


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
    token: Annotated[
        str | None,
        typer.Option(help="Or a bearer token for --endpoint", envvar="STOCKADE_TOKEN"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = False,
) -> None:
    load = functools.partial(load_settings, config, data_dir=data_dir)
    try:
        settings = load()
    except Exception as exc:
        errors.print(f"[red]error:[/red] invalid configuration: {exc}")
        raise typer.Exit(2) from None
    ctx.obj = Context(settings, endpoint, api_key, token, as_json, config=config, reload=load)


def show_error(exc: CommandError) -> None:
    # Unwrapped: the message names paths and commands to copy; the terminal wraps it.
    errors.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)


def show_created_keys(settings: Settings, keys: dict[str, str]) -> None:
    """Say where the new admin keys were written. The secrets themselves go to an interactive
    terminal only: stderr is a log otherwise (a service manager's journal)."""
    errors.print(
        f"[bold green]Created the resource's admin keys[/bold green] {' and '.join(keys)}, written to "
        f"{escape(str(admin_keys_file(settings)))} (readable only by its owner).",
        soft_wrap=True,
    )
    if _interactive(errors):
        for name, secret in keys.items():
            errors.print(f"  {name}: [bold]{secret}[/bold]", soft_wrap=True)
    errors.print(
        "Keep them in your secret store, then delete the file. [bold]stockade keys list[/bold] shows "
        "the keys that exist; [bold]stockade keys regenerate key1[/bold] replaces a lost one.",
        soft_wrap=True,
    )


def _interactive(stream: Console) -> bool:
    isatty = getattr(stream.file, "isatty", None)
    return bool(isatty and isatty())


# -- serve -------------------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000)")] = None,
    tls_certificate: Annotated[
        Path | None, typer.Option("--tls-cert", help="Serve HTTPS with this PEM certificate (chain)")
    ] = None,
    tls_private_key: Annotated[Path | None, typer.Option("--tls-key", help="Its PEM private key")] = None,
    tls_self_signed: Annotated[
        bool, typer.Option("--tls-self-signed", help="Serve HTTPS with a generated self-signed certificate")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="HTTP worker processes on the one port (default: the `workers` setting, else one "
            "per core); they share rate limits and local models",
        ),
    ] = None,
) -> None:
    """Run the service."""
    from stockade.cli.tls import self_signed_certificate
    from stockade.replica import serve as serve_replica

    settings: Settings = ctx.obj.settings
    if ctx.obj.config is None and _wrote_starter_config(Path(DEFAULT_CONFIG_FILE).resolve()):
        settings = ctx.obj.reload()
    changes: dict[str, Any] = {
        "host": host or settings.host,
        "port": port or settings.port,
        "workers": workers or settings.workers,
    }
    if tls_self_signed or (settings.tls_self_signed and not tls_certificate):
        tls_certificate, tls_private_key = self_signed_certificate(settings.data_dir / "tls")
        changes["tls_self_signed"] = True
        errors.print(
            f"Serving HTTPS with the self-signed certificate {tls_certificate}; clients trust it "
            f"with [bold]REQUESTS_CA_BUNDLE={tls_certificate}[/bold] (azure-identity, requests) "
            f"or [bold]SSL_CERT_FILE={tls_certificate}[/bold] (httpx, the openai SDK)."
        )
    if tls_certificate or tls_private_key:
        if not (tls_certificate and tls_private_key):
            errors.print("[red]error:[/red] --tls-cert and --tls-key go together")
            raise typer.Exit(2)
        changes.update(tls_certificate=tls_certificate, tls_private_key=tls_private_key)
    settings = settings.model_copy(update=changes)
    errors.print(
        f"[bold]Stockade[/bold] on {settings.public_url}/  store: {escape(shown_url(settings.store_url))}",
        soft_wrap=True,
    )
    serve_replica(settings, functools.partial(show_created_keys, settings))


def _wrote_starter_config(path: Path) -> bool:
    """A fresh install's settings, so that it runs end to end: only where there are none."""
    try:
        written = write_starter_config(path)
    except OSError as exc:  # a read-only working directory: serve on the defaults
        errors.print(f"[yellow]warning:[/yellow] could not write starter settings to {path}: {exc}")
        return False
    if written:
        errors.print(
            f"Wrote starter settings to [bold]{path}[/bold]: replace its PLACEHOLDER values "
            "before customers see them."
        )
    return written


# -- models ------------------------------------------------------------------------------------


@models_app.command("list")
def models_list(ctx: typer.Context) -> None:
    """Models that deployments can use: the local ones and those of configured upstreams."""
    data = ctx.obj.call("GET", "/management/models")["data"]
    table = Table("model", "kind", "backend", "context", "description")
    for m in data:
        table.add_row(m["id"], m["kind"], m["backend"], str(m["context_tokens"] or ""), m["description"])
    ctx.obj.emit(data, table)


@models_app.command("add")
def models_add(
    ctx: typer.Context,
    gguf: Annotated[Path, typer.Option(help="A GGUF chat model file (a path on the server's machine)")],
    name: Annotated[str | None, typer.Option(help="The model's id (default: the file name without .gguf)")] = None,
) -> None:
    """Make a GGUF file of your own deployable: `stockade deployments create --model ID` then
    serves it with llama.cpp. The file stays where it is; every server on this store must find it
    at the same path."""
    body = {"gguf": str(gguf.expanduser().absolute()), "name": name}
    m = ctx.obj.call("POST", "/management/models", body)
    table = Table("model", "kind", "context")
    table.add_column("file", overflow="fold")  # a path to copy: folded, never cut
    table.add_row(m["id"], m["kind"], str(m["context_tokens"] or ""), m["path"])
    ctx.obj.emit(m, table)


@models_app.command("remove")
def models_remove(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The id of a model added with `stockade models add`")],
) -> None:
    """Forget a model added from a file (the file itself is left alone)."""
    ctx.obj.call("DELETE", f"/management/models/{model}")
    errors.print(f"Removed model {model}; its file is left where it is.")


# -- deployments -------------------------------------------------------------------------------


def _deployment_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("name", "model", "backend", "sku", "capacity", "content filter", "created", "updated")
    for d in rows:
        table.add_row(
            d["name"], d["model"], d["backend"], d["sku"],
            f"{d['capacity']} PTU" if d["sku"] == PROVISIONED else f"{d['capacity']}k TPM",
            d["content_filter"] or "default", when(d["created_at"]), when(d["updated_at"]),
        )
    return table


class SkuName(enum.StrEnum):
    Standard = "Standard"
    ProvisionedManaged = PROVISIONED


ZERO_DATA_RETENTION_HELP = "Refuse files and batches for it (they keep request bodies at rest)"
ZeroDataRetention = Annotated[bool, typer.Option(help=ZERO_DATA_RETENTION_HELP)]
Sku = Annotated[
    SkuName | None,
    typer.Option(help="Standard (billed per token) or ProvisionedManaged (capacity in PTUs, billed per hour)"),
]
BatchTokenQuota = Annotated[
    int | None,
    typer.Option(help="Tokens its unfinished batches may hold (default: batch.token_quota)", min=1),
]


def _deployment_path(name: str) -> str:
    # Quoted whole, so that '?', '#' or '/' in a name cannot change which URL is called.
    return f"/management/deployments/{urllib.parse.quote(name, safe='')}"


@deployments_app.command("create")
def deployments_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="The deployment name clients pass as `model`")],
    model: Annotated[str, typer.Option(help="A model from `stockade models list`")],
    backend: Annotated[str | None, typer.Option(help="Needed only when several backends offer the model")] = None,
    capacity: Annotated[int, typer.Option(help="Thousands of tokens per minute; PTUs if provisioned", min=1)] = 10,
    zero_data_retention: ZeroDataRetention = False,
    batch_token_quota: BatchTokenQuota = None,
    sku: Sku = None,
) -> None:
    """Deploy a model under a name of your choosing."""
    body = {
        "model": model, "backend": backend, "capacity": capacity,
        "zero_data_retention": zero_data_retention, "batch_token_quota": batch_token_quota,
        "sku": (sku or SkuName.Standard).value,
    }
    d = ctx.obj.call("PUT", _deployment_path(name), body)
    ctx.obj.emit(d, _deployment_table([d]))


@deployments_app.command("list")
def deployments_list(ctx: typer.Context) -> None:
    """All deployments."""
    data = ctx.obj.call("GET", "/management/deployments")["data"]
    ctx.obj.emit(data, _deployment_table(data))


@deployments_app.command("show")
def deployments_show(ctx: typer.Context, name: str) -> None:
    """One deployment."""
    d = ctx.obj.call("GET", _deployment_path(name))
    ctx.obj.emit(d, _deployment_table([d]))


@deployments_app.command("update")
def deployments_update(
    ctx: typer.Context,
    name: str,
    model: Annotated[str | None, typer.Option(help="Serve another model under this name")] = None,
    backend: Annotated[str | None, typer.Option()] = None,
    capacity: Annotated[int | None, typer.Option(help="Thousands of tokens per minute", min=1)] = None,
    content_filter: Annotated[
        str | None, typer.Option(help="A policy from `stockade content-filters list`")
    ] = None,
    zero_data_retention: Annotated[bool | None, typer.Option(help=ZERO_DATA_RETENTION_HELP)] = None,
    batch_token_quota: BatchTokenQuota = None,
    sku: Sku = None,
) -> None:
    """Change a deployment's model, capacity, sku, content filter policy, data retention or
    batch quota; running servers pick it up without a restart."""
    changes = {
        "model": model, "backend": backend, "capacity": capacity, "content_filter": content_filter,
        "zero_data_retention": zero_data_retention, "batch_token_quota": batch_token_quota,
        "sku": sku and sku.value,
    }
    body = {k: v for k, v in changes.items() if v is not None}
    d = ctx.obj.call("PATCH", _deployment_path(name), body)
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
    ctx.obj.call("DELETE", _deployment_path(name))
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
            "…" + k["hint"], when(k["created_at"]),
        )
    return table


def _show_secret(ctx: typer.Context, key: dict[str, Any]) -> None:
    if ctx.obj.as_json:
        ctx.obj.emit(key)
        return
    print_table(console, _key_table([key]))
    console.print(f"key: [bold]{key['key']}[/bold]", soft_wrap=True)
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


# -- identities and service principals ---------------------------------------------------------


def _identity_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("name", "id", "client id", "object id", "secret ends with", "secret set")
    for i in rows:
        table.add_row(i["name"], i["id"], i["client_id"], i["object_id"], "…" + i["hint"],
                      when(i["secret_created_at"]))
    return table


def _show_identity_secret(ctx: typer.Context, identity: dict[str, Any]) -> None:
    if ctx.obj.as_json:
        ctx.obj.emit(identity)
        _show_warnings(identity)
        return
    print_table(console, _identity_table([identity]))
    for name, value in identity["environment"].items():
        console.print(f"{name}=[bold]{value}[/bold]", soft_wrap=True)
    _show_warnings(identity)
    errors.print(
        "Set these in the application's environment. The secret is shown only this once; "
        "Stockade keeps only its hash."
    )
    if identity["kind"] == "service-principal":
        errors.print(
            "azure-identity: ClientSecretCredential(tenant_id, client_id, client_secret, "
            "authority=AZURE_AUTHORITY_HOST, disable_instance_discovery=True)."
        )
    errors.print(
        f"Give it a role: [bold]stockade roles assign --identity {identity['id']} "
        "--role openai-user[/bold]",
        soft_wrap=True,
    )


def _show_warnings(shown: dict[str, Any]) -> None:
    for warning in shown.get("warnings", []):
        errors.print(f"[yellow]warning:[/yellow] {escape(warning)}")


def _create_identity(ctx: typer.Context, kind: str, name: str) -> None:
    _show_identity_secret(ctx, ctx.obj.call("POST", "/management/identities", {"name": name, "kind": kind}))


def _list_identities(ctx: typer.Context, kind: str) -> None:
    data = ctx.obj.call("GET", "/management/identities", kind=kind)["data"]
    ctx.obj.emit(data, _identity_table(data))


def _reset_identity_secret(ctx: typer.Context, identity: str) -> None:
    _show_identity_secret(ctx, ctx.obj.call("POST", f"/management/identities/{identity}/secret"))


def _delete_identity(ctx: typer.Context, identity: str) -> None:
    ctx.obj.call("DELETE", f"/management/identities/{identity}")
    errors.print(f"Deleted {identity} and its role assignments.")


IdentityName = Annotated[str, typer.Option(help="A name for the application using it")]
IdentityReference = Annotated[str, typer.Argument(help="Its name or id")]


@identities_app.command("create")
def identities_create(ctx: typer.Context, name: IdentityName) -> None:
    """Create a managed identity; prints IDENTITY_ENDPOINT and IDENTITY_HEADER for the app."""
    _create_identity(ctx, "managed", name)


@identities_app.command("list")
def identities_list(ctx: typer.Context) -> None:
    """Managed identities (their secrets are never shown again)."""
    _list_identities(ctx, "managed")


@identities_app.command("reset-secret")
def identities_reset_secret(ctx: typer.Context, identity: IdentityReference) -> None:
    """A new IDENTITY_HEADER; the old one stops working at once."""
    _reset_identity_secret(ctx, identity)


@identities_app.command("delete")
def identities_delete(ctx: typer.Context, identity: IdentityReference) -> None:
    """Delete a managed identity and its role assignments."""
    _delete_identity(ctx, identity)


@principals_app.command("create")
def principals_create(ctx: typer.Context, name: IdentityName) -> None:
    """Create a service principal; prints its client id and secret (once) and the tenant."""
    _create_identity(ctx, "service-principal", name)


@principals_app.command("list")
def principals_list(ctx: typer.Context) -> None:
    """Service principals (their secrets are never shown again)."""
    _list_identities(ctx, "service-principal")


@principals_app.command("reset-secret")
def principals_reset_secret(ctx: typer.Context, principal: IdentityReference) -> None:
    """A new client secret; the old one stops working at once."""
    _reset_identity_secret(ctx, principal)


@principals_app.command("delete")
def principals_delete(ctx: typer.Context, principal: IdentityReference) -> None:
    """Delete a service principal and its role assignments."""
    _delete_identity(ctx, principal)


# -- roles -------------------------------------------------------------------------------------


@roles_app.command("assign")
def roles_assign(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help="openai-user, openai-contributor or contributor")],
    identity: Annotated[str | None, typer.Option(help="A managed identity or service principal of this service")] = None,
    object_id: Annotated[str | None, typer.Option(help="The oid of another issuer's principal")] = None,
    tenant_id: Annotated[str | None, typer.Option(help="Its tid (default: this service's tenant)")] = None,
    key: Annotated[str | None, typer.Option(help="An application key's id")] = None,
    deployment: Annotated[str | None, typer.Option(help="Scope: one deployment (default: the whole resource)")] = None,
) -> None:
    """Give a principal a role at the resource or at one deployment."""
    body = {"role": role, "identity": identity, "object_id": object_id, "tenant_id": tenant_id,
            "key_id": key, "deployment": deployment}
    assignment = ctx.obj.call("POST", "/management/roles", body)
    ctx.obj.emit(assignment, _roles_table([assignment]))


def _roles_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("id", "role", "scope", "principal", "assigned")
    for a in rows:
        principal = f"key {a['key_id']}" if a["key_id"] else f"{a['object_id']} (tenant {a['tenant_id']})"
        table.add_row(a["id"], a["role"], a["deployment"] or "(resource)", principal, when(a["created_at"]))
    return table


@roles_app.command("list")
def roles_list(ctx: typer.Context) -> None:
    """All role assignments."""
    data = ctx.obj.call("GET", "/management/roles")["data"]
    ctx.obj.emit(data, _roles_table(data))


@roles_app.command("remove")
def roles_remove(ctx: typer.Context, assignment_id: Annotated[str, typer.Argument(help="The id from `roles list`")]) -> None:
    """Remove a role assignment; running servers apply it at once."""
    ctx.obj.call("DELETE", f"/management/roles/{assignment_id}")
    errors.print(f"Removed role assignment {assignment_id}.")


# -- resource access settings ------------------------------------------------------------------


def _show_access(ctx: typer.Context, properties: dict[str, Any]) -> None:
    if ctx.obj.as_json:
        ctx.obj.emit(properties)
        return
    acls = properties["network_acls"]
    console.print(f"key authentication: [bold]{'disabled' if properties['disable_local_auth'] else 'enabled'}[/bold]")
    console.print(f"network default action: [bold]{acls['default_action']}[/bold]")
    console.print("allowed ranges: " + (", ".join(acls["ip_rules"]) or "(none)"))
    console.print(f"token issuer: {properties['issuer']}")


def _update_resource(ctx: typer.Context, body: dict[str, Any]) -> None:
    _show_access(ctx, ctx.obj.call("PATCH", "/management/resource", body))


@network_app.command("show")
def network_show(ctx: typer.Context) -> None:
    """The default action and allowed ranges."""
    _show_access(ctx, ctx.obj.call("GET", "/management/resource"))


@network_app.command("default")
def network_default(ctx: typer.Context, action: Annotated[str, typer.Argument(help="allow or deny")]) -> None:
    """Allow every address, or deny all but the allowed ranges."""
    _update_resource(ctx, {"network_acls": {"default_action": action}})


def _edit_rules(ctx: typer.Context, add: list[str], remove: list[str]) -> None:
    rules = ctx.obj.call("GET", "/management/resource")["network_acls"]["ip_rules"]
    rules = [r for r in rules + add if r not in remove]
    _update_resource(ctx, {"network_acls": {"ip_rules": rules}})


@network_app.command("allow")
def network_allow(ctx: typer.Context, ranges: Annotated[list[str], typer.Argument(help="IPv4/IPv6 addresses or CIDR ranges")]) -> None:
    """Let these ranges through when the default action is deny."""
    _edit_rules(ctx, ranges, [])


@network_app.command("remove")
def network_remove(ctx: typer.Context, ranges: Annotated[list[str], typer.Argument(help="Ranges as `network show` lists them")]) -> None:
    """Stop letting these ranges through."""
    _edit_rules(ctx, [], ranges)


@local_auth_app.command("disable")
def local_auth_disable(ctx: typer.Context) -> None:
    """Refuse API keys: only tokens are accepted (the local command line keeps working)."""
    _update_resource(ctx, {"disable_local_auth": True})


@local_auth_app.command("enable")
def local_auth_enable(ctx: typer.Context) -> None:
    """Accept API keys again."""
    _update_resource(ctx, {"disable_local_auth": False})


# -- signing keys ------------------------------------------------------------------------------


def _signing_keys_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("kid", "created", "state")
    for k in rows:
        table.add_row(k["kid"], when(k["created_at"]), "retired (still published)" if k["retired_at"] else "signing")
    return table


@signing_keys_app.command("list")
def signing_keys_list(ctx: typer.Context) -> None:
    """The published keys: the one that signs and the one before it."""
    data = ctx.obj.call("GET", "/management/signing-keys")["data"]
    ctx.obj.emit(data, _signing_keys_table(data))


@signing_keys_app.command("rotate")
def signing_keys_rotate(ctx: typer.Context) -> None:
    """Sign with a new key. Tokens of the previous key stay valid; older keys' tokens stop working."""
    key = ctx.obj.call("POST", "/management/signing-keys/rotate")
    ctx.obj.emit(key, _signing_keys_table([key]))


# -- audit -------------------------------------------------------------------------------------


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    action: Annotated[str | None, typer.Option(help="Only actions starting with this, e.g. roles.")] = None,
) -> None:
    """Recent management actions: when, who, from where, what, and the outcome."""
    data = ctx.obj.call("GET", "/management/audit", limit=limit, action=action)["data"]
    table = Table("time", "who", "from", "action", "target", "status")
    for e in data:
        table.add_row(when(e["ts"]), e["actor"], e["source"], e["action"], e["target"] or "", str(e["status"]))
    ctx.obj.emit(data, table)
