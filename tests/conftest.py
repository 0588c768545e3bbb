"""Shared fixtures: the app in process over a fake model (the fast tier), a real `stockade serve`
process on loopback (marked ``server``), and the CLI run in process through Typer's runner."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import httpx2
import pytest
import sqlalchemy as sa
from _pytest.mark.expression import Expression
from openai import AzureOpenAI
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from starlette.testclient import TestClient
from typer.testing import CliRunner

from fake_model import CHAT_MODEL, EMBEDDING_MODEL, FAKE_MODELS
from json_server import serve_json
from stockade.api import create_app
from stockade.backends.base import ModelSpec
from stockade.cli.main import app as cli_app
from stockade.config import Settings
from stockade.core import Resource
from stockade.core.resource import prepare_store
from stockade.quotas import Limiter, LocalLimiter
from stockade.safety import Classifier

API_VERSION = "2024-10-21"
# The first api-version whose classic routes have the Responses API.
RESPONSES_API_VERSION = "2025-03-01-preview"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TESTS = Path(__file__).resolve().parent


SALES_CONTACT = "sales@stockade.test, +1 555 0100"
# The session server replies in the customer's language in conversations of this routine only.
TRANSLATING_ROUTINE = "baa-translated"
# The session server sends this routine function to a webhook the routines tests serve here.
WEBHOOK_FUNCTION = "delete_payment_method"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


WEBHOOK_PORT = free_port()


@dataclass
class Server:
    url: str
    key: str
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args, check=check)

    def cli_json(self, *args: str) -> object:
        return json.loads(self.cli("--json", *args).stdout)

    def settle(self, timeout: float = 30) -> None:
        """Wait until the server has re-read the store since the CLI's last change: a key created
        now works there only once it has. (The local CLI writes the store; a server sees it on its
        next periodic re-read.) Each probe comes from an address of its own, so that its refusals
        count as no one's failed attempts."""
        probe = self.cli_json("keys", "create", "--name", f"probe-{uuid.uuid4().hex[:8]}")
        assert isinstance(probe, dict)
        source = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
        deadline = time.monotonic() + timeout
        while httpx.get(
            f"{self.url}/openai/models", params={"api-version": API_VERSION}, verify=False, timeout=30,
            headers={"api-key": probe["key"], "x-forwarded-for": source},
        ).status_code == 401:
            assert time.monotonic() < deadline, "the server never re-read the store"
            time.sleep(0.05)


# -- what a test may start: the fast tier (`make test-fast`) starts no server and loads no model --

FORBIDDEN: set[str] = set()  # "server" and "model" when the -m expression deselects them


def pytest_configure(config: pytest.Config) -> None:
    expression = config.option.markexpr
    if expression:
        compiled = Expression.compile(expression)
        FORBIDDEN.update(m for m in ("server", "model") if not compiled.evaluate(lambda name, m=m: name == m))
    if "model" in FORBIDDEN:
        from stockade.backends import local

        def no_weights(_package: str) -> Path:
            forbid("model")
            raise AssertionError

        local.package_dir = no_weights  # every bundled model finds its weights through this

        from stockade.safety.phi import analyzer

        def no_spacy(_model: str) -> object:
            forbid("model")
            raise AssertionError

        analyzer._engine = no_spacy  # PHI protection's Presidio and spaCy model load through this


def forbid(what: str) -> None:
    if what in FORBIDDEN:
        raise AssertionError(f"a test not marked {what!r} tried to start one: mark it (see conftest.py)")


# Fixtures that start a real `stockade serve` with real models deployed (here and in test modules);
# modules that start servers in the test body say so with a module-level ``pytestmark``.
REAL_SERVER_FIXTURES = {"server", "secure", "two_workers", "gateway"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by the markers added here
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & REAL_SERVER_FIXTURES:
            item.add_marker(pytest.mark.model)
        if "model" in {m.name for m in item.iter_markers()}:
            item.add_marker(pytest.mark.server)  # the real models load only in a real server


# -- the command line, in process --------------------------------------------------------------


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ is exactly ``env`` for the block (the CLI reads its settings from it, and
    ``--config`` writes STOCKADE_CONFIG into it), then what it was."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(
    env: dict[str, str], *args: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`stockade ARGS` in this process through Typer's runner, as a completed process; ``input``
    is what the user types."""
    with environment(env):
        result = CliRunner().invoke(cli_app, list(args), input=input, catch_exceptions=False)
    completed = subprocess.CompletedProcess(["stockade", *args], result.exit_code, result.stdout, result.stderr)
    if check and result.exit_code != 0:
        raise AssertionError(f"stockade {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return completed


def start_server(
    env: dict[str, str], log_path: Path, port: int, *args: str, scheme: str = "http"
) -> subprocess.Popen[bytes]:
    forbid("server")
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "stockade", "serve", "--port", str(port), *args],
        env=env,
        # Where it writes its starter stockade.toml when no configuration is named: not the checkout.
        cwd=log_path.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"stockade serve exited:\n{log_path.read_text()}")
        try:
            # Only whether it answers: the certificate of an HTTPS server is the test's to check.
            health = httpx.get(f"{scheme}://127.0.0.1:{port}/healthz", timeout=1, verify=False)
            if health.status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.25)
    process.kill()
    raise AssertionError(f"stockade serve did not start:\n{log_path.read_text()}")


def children(pid: int) -> list[int]:
    """The process's child processes, from every one of its threads."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@contextlib.contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A database URL on a fresh PostgreSQL schema, dropped afterwards."""
    schema = f"stockade_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is needed: {exc}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def mock_upstream(delay: float = 0.0) -> Iterator[str]:
    """tests/mock_upstream.py on a free port, waiting ``delay`` seconds before each reply;
    yields its base URL."""
    forbid("server")
    port = free_port()
    process = subprocess.Popen([sys.executable, str(TESTS / "mock_upstream.py"), str(port), str(delay)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/tally", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Settings for a test server on its own data directory, quick to notice changes; any
    configuration file of the caller's environment is ignored unless ``extra`` names one."""
    env = {key: value for key, value in os.environ.items() if key != "STOCKADE_CONFIG"}
    return {
        **env,
        "STOCKADE_DATA_DIR": str(data_dir),
        "STOCKADE_LOCAL__CONTEXT_TOKENS": "2048",
        "STOCKADE_REFRESH_SECONDS": "0.2",
        "STOCKADE_USAGE_FLUSH_SECONDS": "0.1",
        # One process unless a test says otherwise: the failed-attempt limits are per process.
        "STOCKADE_WORKERS": "1",
        **extra,
    }


def with_store(env: dict[str, str]) -> dict[str, str]:
    """``env`` once its store exists, as after the first `stockade serve` there: the command
    line refuses to read a store that is not there."""
    with environment(env):
        prepare_store(Settings())
    return env


def replica_env(
    tmp: Path, database_url: str, upstream: str, redis_url: str | None, **extra: str
) -> dict[str, str]:
    """Settings for replicas on one store and, if ``redis_url``, one Redis, in front of the mock
    upstream."""
    config = tmp / "stockade.toml"
    config.write_text(f'[upstreams.mock]\nurl = "{upstream}/v1"\nmodels = ["mock-model"]\n')
    shared = {} if redis_url is None else {"STOCKADE_REDIS_URL": redis_url}
    return server_env(
        tmp,
        STOCKADE_CONFIG=str(config),
        STOCKADE_DATABASE_URL=database_url,
        **shared,
        **extra,
    )


def start_replicas(env: dict[str, str], data_dir: Path, count: int) -> list[Server]:
    """``count`` servers on one store, all taking the same key1."""
    key = json.loads(run_cli(env, "--json", "keys", "regenerate", "key1").stdout)["key"]
    replicas = []
    for index in range(count):
        port = free_port()
        process = start_server(env, data_dir / f"replica-{index}.log", port)
        replicas.append(Server(f"http://127.0.0.1:{port}", key, data_dir, env, process))
    return replicas


def launch(env: dict[str, str], data_dir: Path) -> Server:
    """Take key1 through the CLI, then start `stockade serve` on a free port."""
    key = json.loads(run_cli(env, "--json", "keys", "regenerate", "key1").stdout)["key"]
    port = free_port()
    process = start_server(env, data_dir / "server.log", port)
    return Server(f"http://127.0.0.1:{port}", key, data_dir, env, process)


@contextlib.contextmanager
def serving(
    env: dict[str, str], data_dir: Path, deployments: Iterable[tuple[str, str, int] | tuple[str, str, int, str]]
) -> Iterator[Server]:
    """Deploy each (name, model, capacity[, backend]) through the CLI, then serve until the block
    ends. Deploying first means the models are loaded before the first test."""
    for name, model, capacity, *backend in deployments:
        chosen = ["--backend", backend[0]] if backend else []
        run_cli(env, "deployments", "create", "--name", name, "--model", model, "--capacity", str(capacity), *chosen)
    running = launch(env, data_dir)
    try:
        yield running
    finally:
        stop(running.process)


@pytest.fixture(scope="session", autouse=True)
def away_from_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test runs in an empty directory: the stockade.toml that `make serve` writes into the
    checkout (or an operator's own) must not change what the tests see."""
    os.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("stockade")
    env = server_env(
        data_dir,
        STOCKADE_MAX_BODY_BYTES=str(1024 * 1024),
        # Many tests send wrong keys on purpose; test_identity.py covers the limit itself.
        STOCKADE_AUTH__FAILED_ATTEMPTS_PER_MINUTE="10000",
        STOCKADE_ROUTINES__SALES_CONTACT=SALES_CONTACT,
        STOCKADE_ROUTINES__REPLY_IN_CUSTOMER_LANGUAGE=json.dumps([TRANSLATING_ROUTINE]),
        STOCKADE_ROUTINES__WEBHOOKS=json.dumps({WEBHOOK_FUNCTION: f"http://127.0.0.1:{WEBHOOK_PORT}/hook"}),
    )
    deployments = [
        ("gpt-4o", "smollm2-135m-instruct", 500),
        ("text-embedding-3-small", "all-minilm-l6-v2", 500),
        # The one routines choose by default: their classifier is tuned for it.
        ("multilingual-embeddings", "universal-sentence-encoder-multilingual-v3", 500),
    ]
    with serving(env, data_dir, deployments) as running:
        yield running


@pytest.fixture(scope="session")
def azure(server: Server):  # type: ignore[no-untyped-def]
    from openai import AzureOpenAI

    return AzureOpenAI(azure_endpoint=server.url + "/", api_key=server.key, api_version=API_VERSION)


@pytest.fixture(scope="session")
def openai_v1(server: Server):  # type: ignore[no-untyped-def]
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/openai/v1/", api_key=server.key)


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"api-key": server.key}, timeout=120) as client:
        yield client


def streamed_tool_calls(stream: Iterable[Any]) -> tuple[list[Any], str | None]:
    """The tool-call deltas of a streamed chat completion, and its last finish reason."""
    calls: list[Any] = []
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            calls += choice.delta.tool_calls or []
            finish = choice.finish_reason or finish
    return calls, finish


# -- the app in process, over the fake models ---------------------------------------------------


class ManualClock:
    """Milliseconds that pass only when a test says so: a LocalLimiter's clock. It starts at the
    beginning of a minute, so at the beginning of a window too."""

    def __init__(self) -> None:
        self.now = 1_800_000_000_000 - 1_800_000_000_000 % 60_000

    def __call__(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        """A stand-in for time.sleep: waiting out a Retry-After moves the clock instead."""
        self.now += round(seconds * 1000)

    def next_window(self, seconds: int) -> None:
        self.now += seconds * 1000 - self.now % (seconds * 1000)


@dataclass
class App:
    """`create_app` over a Resource on a SQLite store in a temporary directory, served through
    Starlette's TestClient (which runs the app's lifespan): the fast tier's stand-in for a server."""

    client: TestClient
    resource: Resource
    settings: Settings
    key: str  # key1
    env: dict[str, str]  # for the CLI on the same data directory

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def azure(self, key: str | None = None, max_retries: int = 0) -> AzureOpenAI:
        return self.sdk(api_key=key or self.key, max_retries=max_retries)

    def sdk(self, api_version: str = API_VERSION, **options: Any) -> AzureOpenAI:
        """The openai SDK on the app, with the credential (and other options) given."""
        return AzureOpenAI(
            azure_endpoint=str(self.client.base_url), api_version=api_version, http_client=self.client,
            **{"max_retries": 0, **options},
        )

    def http(self, key: str | None = None) -> httpx2.Client:
        """A client of the app sending ``key`` (key1 by default) with every request. (Starlette's
        TestClient and the openai SDK are built on httpx2, httpx's successor.)"""
        client = self.client
        return httpx2.Client(transport=client._transport, base_url=client.base_url, headers={"api-key": key or self.key})

    def anonymous(self, **headers: str) -> httpx2.Client:
        """A client of the app sending no credential but these headers."""
        return httpx2.Client(transport=self.client._transport, base_url=self.client.base_url, headers=headers)

    def deploy(self, name: str, model: str = CHAT_MODEL, capacity: int = 500) -> None:
        self.call(self.resource.create_deployment, name, model, None, capacity)

    def call(self, function, *args):  # type: ignore[no-untyped-def]
        """Run a coroutine function of the resource on the app's event loop."""
        assert self.client.portal is not None
        return self.client.portal.call(function, *args)

    def flush_usage(self) -> None:
        """Write the usage records of the calls so far, as the periodic batch would."""
        self.call(self.resource.usage.flush)

    def refresh(self) -> None:
        """What the server's periodic re-read does: see what the CLI changed in the store."""
        self.call(self.resource.refresh)

    def cli(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """The CLI on the app's data directory, knowing the fake models as the app does; the app
        sees its changes at once."""
        with mock.patch("stockade.backends.registry.discover_local_models", lambda: list(FAKE_MODELS)):
            result = run_cli(self.env, *args, check=check, input=input)
        self.refresh()
        return result

    def cli_json(self, *args: str) -> object:
        return json.loads(self.cli("--json", *args).stdout)


FAST_SETTINGS = {
    "STOCKADE_LOCAL__CONTEXT_TOKENS": "2048",
    # Usage reaches the store when a test calls App.flush_usage, never behind its back.
    "STOCKADE_USAGE_FLUSH_SECONDS": "3600",
    "STOCKADE_TELEMETRY__DIAGNOSTIC_LOG": "off",
}


@contextlib.contextmanager
def in_process(
    data_dir: Path,
    deployments: Iterable[tuple[str, str, int]] = (("gpt-4o", CHAT_MODEL, 500), ("text-embedding-3-small", EMBEDDING_MODEL, 500)),
    *,
    limiter: Limiter | None = None,
    peer: str = "127.0.0.1",
    local_models: Sequence[ModelSpec] = FAKE_MODELS,
    classifier: Classifier | None = None,
    **settings: str,
) -> Iterator[App]:
    """The app over the fake models (or ``local_models``) with these deployments; ``settings``
    are STOCKADE_ variables (as a server would read them), ``peer`` the address requests come
    from, ``classifier`` the content filters' harm classifier. On a data directory an earlier app
    used, it serves what that one stored."""
    env = server_env(data_dir, **{**FAST_SETTINGS, **settings})
    with environment(env):
        config = Settings()
    resource = Resource(config, limiter=limiter, local_models=local_models, classifier=classifier)
    created: dict[str, str] = {}
    app = create_app(resource, on_keys_created=created.update)
    with TestClient(app, base_url="http://stockade.test", client=(peer, 50000)) as client:
        if "key1" not in created:  # a data directory an earlier app created: a fresh key1
            assert client.portal is not None
            _, created["key1"] = client.portal.call(resource.regenerate_admin_key, "key1")
        running = App(client, resource, config, created["key1"], env)
        for name, model, capacity in deployments:
            running.deploy(name, model, capacity)
        yield running


@contextlib.contextmanager
def on_manual_clock(data_dir: Path, clock: ManualClock, window_seconds: int) -> Iterator[App]:
    """The app in process without deployments, its rate limits in windows of
    ``window_seconds`` on ``clock``."""
    limiter = LocalLimiter(window_seconds, clock=clock)
    with in_process(data_dir, (), limiter=limiter, STOCKADE_LIMITS__WINDOW_SECONDS=str(window_seconds)) as running:
        yield running


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The app in process with the session server's deployments, on the fake models."""
    with in_process(
        tmp_path_factory.mktemp("fake"),
        STOCKADE_MAX_BODY_BYTES=str(1024 * 1024),
        STOCKADE_AUTH__FAILED_ATTEMPTS_PER_MINUTE="10000",
    ) as running:
        yield running


# -- a routine of the user's own: remove a saved card through the webhook --------------------


def card_routine(title: str, *, announcement: str | None = None, confirmation: bool = True) -> str:
    """The routine's Markdown; ``announcement`` is said just before the call."""
    said = f'   - a. Inform the customer: "{announcement}"\n' if announcement else ""
    call = "b" if announcement else "a"
    confirm = "" if confirmation else "  - **Confirmation**: not required\n"
    return f"""# Routine: {title}

1. Ask the customer: "Would you like me to remove your saved card from your account?"

2. If the customer wants to remove their saved card, then:
{said}   - {call}. Call the `{WEBHOOK_FUNCTION}` function.

3. Ask the customer if there is anything else you can assist with:
   - "Is there anything else I can assist you with today?"

4. Call the `case_resolution` function.

---

**Function Definitions:**

- `{WEBHOOK_FUNCTION}`:
  - **Purpose**: Removes the customer's saved card
  - **Parameters**: None.
{confirm}- `case_resolution`:
  - **Purpose**: Finalizes the case and marks it as resolved.
  - **Parameters**: None.
"""


def opening_call_routine(function: str) -> str:
    """A routine whose first step calls ``function``, on the customer's opening message: no
    answer is classified before it, so the fake models can run it."""
    return f"""# Routine: Call {function} at once

1. Call the `{function}` function.

2. Ask the customer if there is anything else you can assist with:
   - "Is there anything else I can assist you with today?"

3. Call the `case_resolution` function.

---

**Function Definitions:**

- `{function}`:
  - **Purpose**: Gives the customer what they came for
  - **Parameters**: None.
  - **Confirmation**: not required
- `case_resolution`:
  - **Purpose**: Finalizes the case and marks it as resolved.
  - **Parameters**: None.
"""


def offer(server: Server | App, name: str, markdown: str) -> str:
    """Put a routine where the server (or the app) finds the user's own; returns its name."""
    directory = server.data_dir / "routines"
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.md").write_text(markdown)
    return name


@pytest.fixture
def held_webhook() -> Iterator[threading.Event]:
    """The user's system behind the webhook, answering only once the test sets the event."""
    release = threading.Event()

    def answer(_method: str, _path: str, _body: object) -> object:
        release.wait(60)
        return {"message": "Your saved card is removed.", "data": {"removed": True}}

    with serve_json(answer, WEBHOOK_PORT):
        yield release
        release.set()


@pytest.fixture
def slow_routine(server: Server) -> str:
    """A routine that announces the removal, then calls the webhook without asking first."""
    removal = card_routine(
        "Remove a saved card at once",
        announcement="One moment while I remove your saved card.",
        confirmation=False,
    )
    return offer(server, "remove-card-at-once", removal)


# -- a browser: Debian's headless Chromium, for the web pages (tests marked ``browser``) ---------

# Flags for a browser on a closed network, as the machine's notes give them.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """One browser for a module's tests."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        yield driver
    finally:
        driver.quit()
