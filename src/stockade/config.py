"""Settings: a TOML file (``stockade.toml`` or ``--config``) overlaid by ``STOCKADE_*`` variables.

Nested values use ``__`` in variable names, e.g. ``STOCKADE_LOCAL__CHAT_WORKERS=2``.
"""

from __future__ import annotations

import base64
import binascii
import os
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from stockade.billing.prices import Price, instant

CONFIG_ENV = "STOCKADE_CONFIG"
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"  # the server's, and its model workers' at debug
DEFAULT_CONFIG_FILE = "stockade.toml"
STORE_FILE = "stockade.db"  # the SQLite store in data_dir, unless database_url names another
# Values the starter file sets so that a fresh install works end to end, to be replaced; a
# setting still starting with this is reported by `stockade routines check`.
PLACEHOLDER = "PLACEHOLDER"
STARTER_CONFIG = f"""\
# Stockade's settings. `stockade serve` wrote this file because the directory it ran in had no
# stockade.toml; it is never overwritten. Every setting: docs/configuration.md. STOCKADE_*
# environment variables win over this file; --config or STOCKADE_CONFIG names another file.

[routines]
# {PLACEHOLDER}: how your customers reach your sales team (an address, a phone number, a page).
# The built-in BAA routine gives it, word for word, to customers who ask about ChatGPT
# Enterprise; `stockade routines check` warns while it is still this placeholder.
sales_contact = "{PLACEHOLDER}: set routines.sales_contact in stockade.toml"

# Store conversations' message text, not only their step trace (off by default):
# keep_messages = true

# A routine's functions implemented by your own systems (docs/routines.md):
# [routines.webhooks]
# delete_payment_method = "https://billing.example.com/stockade/delete-payment-method"
"""


class UpstreamSettings(BaseModel):
    """An OpenAI-compatible server Stockade forwards to (vLLM, llama-server, Ollama, OpenAI, Azure)."""

    url: str = Field(description="Base URL, e.g. http://gpu-host:8000/v1 or https://res.openai.azure.com")
    kind: Literal["openai", "azure"] = "openai"
    api_key: SecretStr | None = None
    api_version: str = Field("2024-10-21", description="Sent as api-version when kind is azure")
    models: list[str] = Field(default_factory=list, description="Chat models deployable from it")
    embedding_models: list[str] = Field(
        default_factory=list, description="Embedding models deployable from it"
    )
    max_connections: int = 100
    timeout_seconds: float = 600.0


class LocalModelSettings(BaseModel):
    chat_workers: int = Field(1, ge=1, description="llama.cpp processes per chat model")
    threads: int = Field(0, ge=0, description="CPU threads per llama.cpp process; 0 = all cores")
    context_tokens: int = Field(8192, ge=256, description="llama.cpp context window")
    reply_tokens: int | None = Field(
        None,
        ge=1,
        description="The most tokens a local model writes in any reply, as llama-server's "
        "--n-predict: a request's own limit (max_tokens, max_completion_tokens, "
        "max_output_tokens) above it is lowered to it; default: the request's limit, or as "
        "many as the context leaves",
    )
    queue_size: int = Field(32, ge=1, description="Requests that may wait for a busy model")
    wait_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a call waits while a model has no running worker (loading or "
        "restarting) before it gets 503 with Retry-After",
    )


class LimitSettings(BaseModel):
    window_seconds: int = Field(
        10,
        description="Per-minute limits are also enforced over windows this long (Azure uses 1 or "
        "10 seconds); must divide 60",
    )
    default_max_tokens: int = Field(
        1024, ge=1, description="Completion tokens reserved per choice when a call sets no max_tokens"
    )
    default_quota: int = Field(
        1000, ge=1, description="Each model's quota in capacity units (1 = 1,000 TPM) unless set"
    )
    replicas: int = Field(
        1,
        ge=1,
        description="Replicas sharing Redis; while Redis is unreachable each enforces 1/replicas "
        "of every limit",
    )

    @field_validator("window_seconds")
    @classmethod
    def _divides_minute(cls, value: int) -> int:
        if value < 1 or 60 % value:
            raise ValueError("window_seconds must divide 60 (1, 2, 3, 5, 6, 10, 15, 20, 30 or 60)")
        return value


class ConnectionSettings(BaseModel):
    """Limits every HTTP connection meets before its request reaches the application, and so
    before authentication (replica/http_protocol.py; docs/reliability.md, Connection limits)."""

    max_header_bytes: int = Field(
        32 * 1024, ge=1024, description="Largest request line and headers; larger: 431, and closed"
    )
    header_timeout_seconds: float = Field(10.0, gt=0, description="To send a whole request head; then 408")
    # Between two reads, as nginx's client_body_timeout: a body shorter than its Content-Length stalls.
    body_timeout_seconds: float = Field(30.0, gt=0, description="Longest pause in a request body; then 408")
    keep_alive_seconds: float = Field(5.0, gt=0, description="An idle keep-alive connection's life")
    max_connections: int = Field(
        1000, ge=1, description="Connections (or requests in progress) per HTTP worker; past it 503"
    )


COGNITIVE_SERVICES = "https://cognitiveservices.azure.com"


class IssuerSettings(BaseModel):
    """An identity provider whose tokens are accepted, e.g. a Microsoft Entra tenant."""

    issuer: str = Field(description="The exact iss claim, e.g. https://sts.windows.net/<tenant>/")
    jwks_url: str | None = Field(
        None, description="Where its signing keys are published; fetched, cached, refreshed on an unknown kid"
    )
    jwks_file: Path | None = Field(None, description="Or a JWKS file of its keys, for closed networks")
    audiences: list[str] = Field(
        default_factory=lambda: [COGNITIVE_SERVICES], description="Accepted aud values"
    )
    tenants: list[str] = Field(default_factory=list, description="Accepted tid values; empty = any")


class AuthSettings(BaseModel):
    issuers: list[IssuerSettings] = Field(default_factory=list)
    audiences: list[str] = Field(
        default_factory=lambda: [COGNITIVE_SERVICES],
        description="Resources the built-in token service issues tokens for",
    )
    clock_skew_seconds: int = Field(60, ge=0, le=600, description="Allowed clock skew for exp and nbf")
    token_lifetime_seconds: int = Field(3600, ge=300, le=86400)
    public_url: str | None = Field(
        None,
        description="The URL clients reach this service at; names the token service's issuer. "
        "Default: from host, port and TLS",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Encrypts the token service's signing keys in the store; replicas must share "
        "it. Default: a key file in data_dir",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Addresses (CIDR) whose X-Forwarded-For is believed"
    )
    failed_attempts_per_minute: int = Field(
        20, ge=1, description="Failed authentications a source may make per minute before 429"
    )


class SafetySettings(BaseModel):
    """Content safety (docs/safety.md)."""

    classifier: Literal["none", "local", "guard"] = Field(
        "none",
        description="What rates the four harm categories: none (only blocklists and profanity "
        "run), local, the bundled classifier, or guard, a guard model on a chat deployment (the "
        "guard_* settings). Off by default: the local one's held-out figures do not yet meet the "
        "goal (docs/safety.md)",
    )
    guard_deployment: str | None = Field(
        None, description="With classifier guard: the chat deployment that serves the guard model"
    )
    guard_format: Literal["llama-guard-3", "shieldgemma"] = Field(
        "llama-guard-3", description="The guard model's prompt format: llama-guard-3 or shieldgemma"
    )
    guard_unsafe_severity: Literal["low", "medium", "high"] = Field(
        "high",
        description="The severity of a bare unsafe verdict (Llama Guard's; ShieldGemma's Yes when "
        "the backend gives no log probabilities)",
    )
    guard_timeout: float = Field(
        5.0, gt=0, le=600, description="Seconds a guard check may take (all its calls); then it fails closed"
    )

    @model_validator(mode="after")
    def _guard_has_deployment(self) -> SafetySettings:
        if self.classifier == "guard" and not self.guard_deployment:
            raise ValueError(
                "safety.classifier = \"guard\" needs safety.guard_deployment, the name of the chat "
                "deployment that serves the guard model"
            )
        return self


AES_KEY_BYTES = 32


def aes_key(text: str) -> bytes:
    """An AES-256 key written in base64; ValueError says what is wrong and how to make one."""
    how = "make one with `openssl rand -base64 32`"
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"is not base64; {how}") from None
    if len(key) != AES_KEY_BYTES:
        raise ValueError(f"has {len(key)} bytes, not {AES_KEY_BYTES}; {how}")
    return key


class BatchSettings(BaseModel):
    """Files and batch jobs (docs/batch.md)."""

    encryption_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Keys sealing file contents at rest (32 bytes, base64): the first seals, all "
        "open; put a new key first, then `stockade files rekey`. Empty: data_dir/files.key",
    )
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1, description="Largest upload (Azure: 200 MB)")
    max_file_lines: int = Field(100_000, ge=1, description="Most requests in a batch input file")
    max_files: int = Field(
        500, ge=1, description="Files the resource may hold without an expiry (Azure: 500)"
    )
    token_quota: int = Field(
        200_000_000, ge=1,
        description="Tokens a deployment's unfinished batches may hold (Azure's enqueued-token "
        "quota); a deployment's own batch_token_quota wins",
    )
    headroom: float = Field(
        0.05, ge=0, lt=1,
        description="Share of each deployment's rate limits that batch lines leave to interactive calls",
    )
    concurrency: int = Field(16, ge=1, description="Batch lines a replica runs at once")
    lease_seconds: float = Field(
        30.0, gt=0, description="How long a line claimed by a replica that stopped stays claimed"
    )
    poll_seconds: float = Field(1.0, gt=0, description="How often a replica looks for batch work")

    @field_validator("encryption_keys")
    @classmethod
    def _aes_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for number, key in enumerate(keys):
            try:
                aes_key(key.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"encryption_keys[{number}] {exc}") from None
        return keys


class ResponsesSettings(BaseModel):
    """The Responses API's stored responses (docs/responses.md)."""

    retention_days: float = Field(
        30.0, gt=0,
        description="How long a stored response (`store`, the default) is kept, sealed, before it "
        "is purged (Azure: 30 days). Zero-retention deployments store none",
    )
    longest_chain: int = Field(
        1000, ge=1, description="Most stored responses a previous_response_id chain may hold",
    )


class RoutineSettings(BaseModel):
    """Support agents that follow routines (docs/routines.md)."""

    directory: Path | None = Field(
        None, description="Routine Markdown files to offer besides the built-in ones; default data_dir/routines"
    )
    chat_deployment: str | None = Field(
        None, description="The chat deployment conversations use unless one is named; default: the first"
    )
    chat_deployments: dict[str, str] = Field(
        default_factory=dict,
        description="Routine name → the chat deployment its conversations use unless one is named: "
                    "a larger model for tie-breaks and phrasing; before chat_deployment",
    )
    model_tie_breaks: list[str] = Field(
        default_factory=list,
        description="Routines whose near-ties between options their chat deployment settles, instead "
                    "of the nearest option; for a chat model larger than the bundled one, which "
                    "chose worse than the nearest option (docs/routines.md)",
    )
    embeddings_deployment: str | None = Field(
        None, description="The embeddings deployment for classifying answers; default: the first "
                          "of universal-sentence-encoder-multilingual-v3, else the first"
    )
    reply_in_customer_language: list[str] = Field(
        default_factory=list,
        description="Routines whose messages also go out translated into the customer's language "
                    "(Spanish, French, German or Portuguese) by their chat deployment, beside the "
                    "routine's own words; off for every routine by default",
    )
    keep_messages: bool = Field(
        False,
        description="Store conversations' message text. Off, only the step trace (no text) is kept",
    )
    sales_contact: str = Field(
        "", description="How customers reach sales, as provide_sales_contact_information tells them"
    )
    webhooks: dict[str, str] = Field(
        default_factory=dict, description="Function name → URL of the user's own implementation"
    )
    endpoint: str | None = Field(
        None,
        description="Another Stockade whose API the agents call; default: this one, in process",
    )
    api_key: SecretStr | None = Field(None, description="A key for that endpoint")

    @model_validator(mode="after")
    def _endpoint_has_key(self) -> RoutineSettings:
        if self.endpoint and self.api_key is None:
            raise ValueError("routines.endpoint needs routines.api_key, a key for that Stockade")
        return self


class PriceSettings(BaseModel):
    """A model's price from a date on (docs/usage.md)."""

    model: str = Field(description="A model name as deployments use it (`stockade models list`)")
    input_per_million: float = Field(ge=0, description="Per million prompt tokens, in billing.currency")
    output_per_million: float = Field(ge=0, description="Per million completion tokens")
    batch_discount: float = Field(0.5, ge=0, le=1, description="Share taken off for batch lines")
    hourly_rate: float | None = Field(
        None, ge=0, description="Per PTU and hour, for ProvisionedManaged deployments"
    )
    effective_from: float = Field(
        0.0, description="From when: an ISO 8601 date or time (UTC), or seconds since the epoch; default: always"
    )

    @field_validator("effective_from", mode="before")
    @classmethod
    def _instant(cls, value: Any) -> float:
        return instant(value)

    def price(self) -> Price:
        return Price(
            self.model, self.effective_from, self.input_per_million, self.output_per_million,
            self.batch_discount, self.hourly_rate,
        )


class BillingSettings(BaseModel):
    """What calls cost (docs/usage.md)."""

    currency: str = Field("USD", description="The currency prices are in, as summaries show it")
    prices: list[PriceSettings] = Field(
        default_factory=list,
        description="Prices per model; `stockade prices set` adds more, and replaces these at the same date",
    )


class TelemetrySettings(BaseModel):
    diagnostic_log: str = Field(
        "stdout",
        description="Where the per-request JSON diagnostic log goes: stdout, off, or a file path "
        "(appended to)",
    )
    diagnostic_flush_seconds: float = Field(
        0.25, gt=0, description="How often buffered diagnostic log lines are written"
    )
    otlp_endpoint: str | None = Field(
        None,
        description="Base URL of an OTLP/HTTP collector (e.g. http://127.0.0.1:4318); traces go "
        "to its /v1/traces. Unset: no traces are made",
    )
    otlp_headers: dict[str, str] = Field(
        default_factory=dict, description="Headers sent with every export, e.g. a collector's key"
    )
    service_name: str = Field("stockade", description="The traces' service.name")
    trace_sample_ratio: float = Field(
        1.0, ge=0, le=1, description="The share of calls traced (a caller's sampled parent wins)"
    )

    @property
    def traces_url(self) -> str | None:
        if self.otlp_endpoint is None:
            return None
        base = self.otlp_endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else base + "/v1/traces"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STOCKADE_", env_nested_delimiter="__", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="HTTP worker processes serving the port; they share rate limits and local "
        "models (default: one per core)",
    )
    data_dir: Path = Path(".stockade")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is SQLite in data_dir"
    )
    max_body_bytes: int = Field(16 * 1024 * 1024, description="Larger request bodies get 413")
    refresh_seconds: float = Field(
        1.0, description="How often a server re-reads deployments and keys changed elsewhere"
    )
    usage_flush_seconds: float = 0.5
    log_level: str = "info"
    local: LocalModelSettings = LocalModelSettings()
    connections: ConnectionSettings = ConnectionSettings()
    limits: LimitSettings = LimitSettings()
    redis_url: str | None = Field(
        None, description="redis://host:6379/0 to share rate limits across replicas"
    )
    upstreams: dict[str, UpstreamSettings] = Field(default_factory=dict)
    auth: AuthSettings = AuthSettings()
    routines: RoutineSettings = RoutineSettings()
    batch: BatchSettings = BatchSettings()
    responses: ResponsesSettings = ResponsesSettings()
    billing: BillingSettings = BillingSettings()
    safety: SafetySettings = SafetySettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    tls_certificate: Path | None = Field(None, description="PEM certificate (chain) to serve HTTPS with")
    tls_private_key: Path | None = Field(None, description="Its PEM private key")
    tls_self_signed: bool = Field(
        False, description="Serve HTTPS with a certificate generated in data_dir/tls"
    )

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / STORE_FILE).resolve()}"

    @property
    def public_url(self) -> str:
        if self.auth.public_url:
            return self.auth.public_url.rstrip("/")
        scheme = "https" if self.tls_certificate or self.tls_self_signed else "http"
        if self.host in ("127.0.0.1", "::1"):
            host = "localhost"
        elif self.host in ("0.0.0.0", "::"):
            host = socket.getfqdn()
        else:
            host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_FILE)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings; an explicit file wins over ``STOCKADE_CONFIG`` and ``./stockade.toml``."""
    if config_file is not None:
        if not config_file.is_file():
            raise FileNotFoundError(f"configuration file {config_file} does not exist")
        os.environ[CONFIG_ENV] = str(config_file)
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def is_placeholder(value: str) -> bool:
    return value.startswith(PLACEHOLDER)


def write_starter_config(path: Path) -> bool:
    """Write the starter settings to ``path`` unless a file is there; True if written."""
    try:
        with path.open("x", encoding="utf-8") as file:  # "x": never replaces an existing file
            file.write(STARTER_CONFIG)
    except FileExistsError:
        return False
    return True
