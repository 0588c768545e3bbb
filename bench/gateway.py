"""Gateway overhead: Stockade and a bare passthrough in front of one fixed-cost mock, in one run.

The mock upstream is nginx (one worker, no access log) answering every chat request with the
canned completion of tests/mock_upstream.py, so that the mock costs as little CPU as possible next
to what is measured. Nine legs, all against that one mock:

- mock direct: the mock called straight, the floor every other leg is compared with;
- bare passthrough: bench/passthrough.py, Starlette, uvicorn, aiohttp and orjson with one header
  check and nothing else, the reference Stockade's goal is set against (issue 12);
- Stockade with an API key, and with a bearer token from its own token service, one worker
  process; auth, rate limiting (limits set far above what is sent), usage records and the access
  log stay on, as in production (the passthrough logs nothing);
- Stockade with a 200-token clinical prompt, on a deployment with the default content filter
  policy (nothing to run without a classifier) and on one whose policy screens the prompt and
  the reply with the profanity list and a custom blocklist of 20 terms and 2 patterns: the
  difference between the two is what that screening adds (issue 15);
- Stockade with that prompt holding a name, a medical record number, a date of birth and a phone
  number, on a deployment whose policy redacts PHI (Presidio and spaCy's small English model):
  its latency minus the unscreened leg's is what PHI redaction adds, analysis, replacement and
  restoring the reply (issue 15). At about 50 ms a request it is left out of the throughput
  runs, where 32 waiting connections would only measure the analyzer's queue;
- Stockade's Responses API, `POST /openai/v1/responses` with the same one-line prompt, run on the
  chat path underneath: with `store: false`, what building Responses objects adds; stored (the
  default), what sealing and writing each response to the store adds too (issue 19);
- Stockade with that 200-token prompt on the default policy, on a server whose
  `safety.classifier` is `local`: what turning the bundled classifier on would add to every
  deployment, the prompt and the canned reply both rated (issue 15).

How it is measured. Each gateway is one process, pinned to one CPU; this client, wrk and the mock
share the other, so that the gateway under test has a core to itself as far as this run goes (the
machine may be shared; on a single CPU nothing is pinned). A change in the machine's speed must
reach every leg alike, so the legs are interleaved, in ROUNDS rounds of:

- latency at 1 connection: each leg gets a keep-alive httpx client of its own and WARM_UP
  requests, then LATENCY_REQUESTS timed sequential `POST`s, in blocks of BLOCK, the legs taken in
  turn block by block. The percentiles are over every round's timed requests; a leg's *added*
  latency is its percentile minus the mock direct's;
- throughput at 32 connections: `wrk -t1 -c32` for WRK_SECONDS on each leg in turn; a leg's
  requests/s is its best round, since other work on the machine can only slow a round down.

In both, the CPU time a leg's server (every thread, and any child process) used, over the
requests it served meanwhile, is its CPU per request. Other work on the machine stretches that
far less than it stretches time: at 32 connections the passthrough's CPU per request over
Stockade's is the requests/s ratio a core of its own each would give, and at 1 connection
Stockade's CPU per request minus the passthrough's is the computing part of its added latency.

Run with `make bench`; `--only TEXT…` measures only the legs whose names hold one of them (and
the two references).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from mock_upstream import reply  # noqa: E402

from conftest import free_port, run_cli, start_server, stop  # noqa: E402

MAX_TOKENS = 16
BODY = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": MAX_TOKENS}
# About 200 tokens of plain clinical prose, for the content filter's cost (issue 15's goal is set
# for a 200-token prompt): the filter legs differ from each other only in the deployment's policy.
CLINICAL = (
    "The patient is a 58-year-old man seen for follow-up of type 2 diabetes and hypertension. "
    "He reports good adherence to metformin and lisinopril, walks thirty minutes most days, and "
    "has cut down on sugary drinks. Home glucose readings range from 110 to 160 before breakfast. "
    "He denies chest pain, shortness of breath, blurred vision or numbness in the feet. On "
    "examination his blood pressure is 132 over 84, his weight is down two kilograms since the "
    "last visit, and the foot examination is normal with intact sensation. The latest HbA1c is "
    "7.2 percent, down from 7.9 three months ago, and kidney function is stable. Please draft a "
    "short summary of this visit for the referring physician, with the plan: continue the "
    "current medication, repeat the HbA1c and a lipid panel in three months, and review the "
    "retinal screening results when they arrive."
)
LONG_BODY = {"messages": [{"role": "user", "content": CLINICAL}], "max_tokens": MAX_TOKENS}
# The same prompt with identifiers for PHI protection to find and replace (a few tokens longer).
IDENTIFIED = CLINICAL.replace(
    "The patient is a 58-year-old man",
    "The patient, John Smith (MRN 4417203, DOB 03/14/1967, phone 617-555-0143), is a 58-year-old man",
)
PHI_BODY = {"messages": [{"role": "user", "content": IDENTIFIED}], "max_tokens": MAX_TOKENS}
RESPONSES_PATH = "/openai/v1/responses"
RESPONSE_BODY = {"model": "bench", "input": "Hello", "max_output_tokens": MAX_TOKENS}
# The screened policy: the profanity list and a custom blocklist of exact terms and patterns,
# none of which the prompt or the canned reply contains, so every call is screened and passes.
BLOCKLIST_TERMS = [f"project-codename-{n}" for n in range(20)]
BLOCKLIST_PATTERNS = [r"\b\d{3}-\d{2}-\d{4}\b", r"\bacct[- ]?\d{8,12}\b"]
ROUNDS = 5
WARM_UP = 100
LATENCY_REQUESTS = 600
BLOCK = 50
WRK_SECONDS = 3
CONNECTIONS = 32
PASSTHROUGH_KEY = "bench-passthrough-key"
CHAT_PATH = "/openai/deployments/bench/chat/completions?api-version=2024-10-21"
SCREENED_PATH = "/openai/deployments/bench-screened/chat/completions?api-version=2024-10-21"
PHI_PATH = "/openai/deployments/bench-phi/chat/completions?api-version=2024-10-21"
PHI_LEG = "  ... PHI redacted"
CLASSIFIED_LEG = "  ... local classifier"
RESPONSES_LEG = "stockade, Responses API, store: false"
STORED_LEG = "  ... stored"

NGINX_CONFIG = """\
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    # Never close a connection the gateway or wrk keeps alive: reconnecting is not what is measured.
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location = /v1/chat/completions {{ return 200 '{body}'; }}
    }}
}}
"""


@dataclass(frozen=True)
class Started:
    """A server this run started."""

    url: str  # scheme, host and port
    pid: int


@dataclass(frozen=True)
class Leg:
    """One way of reaching the mock: which server chat completions are posted to, and how."""

    name: str
    server: Started
    path: str
    headers: dict[str, str]
    body: dict[str, object] = field(default_factory=lambda: BODY)
    throughput: bool = True  # measured with wrk as well as at 1 connection

    @property
    def url(self) -> str:
        return self.server.url + self.path


@dataclass
class CpuUse:
    """CPU time a leg's server used, and the requests it served meanwhile."""

    seconds: float = 0.0
    requests: int = 0

    @property
    def per_request_us(self) -> float:
        return self.seconds / self.requests * 1e6


@dataclass
class Measured:
    latencies_ms: list[float] = field(default_factory=list)  # at 1 connection, every round's
    rates: list[float] = field(default_factory=list)  # requests/s at 32 connections, one a round
    cpu_sequential: CpuUse = field(default_factory=CpuUse)  # while its latency was measured
    cpu_loaded: CpuUse = field(default_factory=CpuUse)  # during its wrk runs

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies_ms, n=100)[q - 1]


# -- the servers ---------------------------------------------------------------------------------


def wait_until_listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def running(argv: list[str], port: int, core: int | None = None) -> Iterator[Started]:
    process = subprocess.Popen(argv)
    try:
        wait_until_listening(process, port)
        pin(process, core)
        yield Started(f"http://127.0.0.1:{port}", process.pid)
    finally:
        stop(process)


def nginx_mock(workdir: Path) -> contextlib.AbstractContextManager[Started]:
    """nginx with its own prefix and configuration in workdir."""
    body = reply(MAX_TOKENS).decode()
    if any(char in body for char in "'\\$"):  # nginx would read these inside the quoted string
        raise SystemExit("the canned reply cannot be quoted in nginx.conf")
    prefix, port = workdir / "nginx", free_port()
    prefix.mkdir()
    config = prefix / "nginx.conf"
    config.write_text(NGINX_CONFIG.format(prefix=prefix, port=port, body=body))
    # -e: nginx opens its error log before reading the configuration; keep it out of /var/log.
    argv = ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(config)]
    return running(argv, port)


def passthrough(upstream: str, core: int | None) -> contextlib.AbstractContextManager[Started]:
    """bench/passthrough.py in front of upstream (a base URL, as in Stockade's configuration)."""
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "passthrough.py"), str(port), upstream, PASSTHROUGH_KEY]
    return running(argv, port, core)


@contextlib.contextmanager
def stockade(env: dict[str, str], log: Path, core: int | None, *serve_args: str) -> Iterator[Started]:
    """`stockade serve` with serve_args on env's store."""
    port = free_port()
    process = start_server(env, log, port, *serve_args)
    try:
        pin(process, core)
        yield Started(f"http://127.0.0.1:{port}", process.pid)
    finally:
        stop(process)


def pin(process: subprocess.Popen[bytes], core: int | None) -> None:
    """Move every thread of a running process onto one CPU (threads it starts later follow)."""
    if core is not None:
        subprocess.run(["taskset", "-a", "-p", "-c", str(core), str(process.pid)],
                       stdout=subprocess.DEVNULL, check=True)


def cores() -> tuple[int | None, int | None]:
    """(this client's, the gateways') CPU; None, None where there is only one to use."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None
    return available[0], available[-1]


def cpu_seconds(pid: int) -> float:
    """The CPU time every thread of a process and of its descendants (nginx's worker, uvicorn's
    worker processes) has used so far, to the nanosecond (schedstat)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):  # a process that ended meanwhile
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])  # ppid
    tree, nanoseconds = [pid], 0
    while tree:
        member = tree.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{member}/task").iterdir():
                nanoseconds += int((task / "schedstat").read_text().split()[0])
        tree += [child for child, parent in parents.items() if parent == member]
    return nanoseconds / 1e9


@contextlib.contextmanager
def counting_cpu(leg: Leg, use: CpuUse) -> Iterator[None]:
    """Add the CPU time the leg's server uses during the block to use."""
    before = cpu_seconds(leg.server.pid)
    yield
    use.seconds += cpu_seconds(leg.server.pid) - before


# -- the measurements ----------------------------------------------------------------------------


def time_requests(legs: list[Leg], measured: dict[str, Measured]) -> None:
    """LATENCY_REQUESTS sequential requests to each leg, each leg on a keep-alive connection of
    its own, in blocks of BLOCK taking the legs in turn: a slower moment of the machine reaches
    them alike. An untimed request opens each block: the blocks before it let other processes
    run, and what 1 connection measures is a request that follows the same client's last."""
    with contextlib.ExitStack() as stack:
        calls = [(leg, stack.enter_context(httpx.Client(timeout=10)),
                  {**leg.headers, "content-type": "application/json"}, json.dumps(leg.body).encode())
                 for leg in legs]
        for leg, client, headers, payload in calls:
            for _ in range(WARM_UP):  # connections, caches
                client.post(leg.url, content=payload, headers=headers).raise_for_status()
        for _ in range(LATENCY_REQUESTS // BLOCK):
            for leg, client, headers, payload in calls:
                result = measured[leg.name]
                with counting_cpu(leg, result.cpu_sequential):
                    client.post(leg.url, content=payload, headers=headers).raise_for_status()
                    for _ in range(BLOCK):
                        started = time.perf_counter()
                        client.post(leg.url, content=payload, headers=headers).raise_for_status()
                        result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.cpu_sequential.requests += BLOCK + 1


def load(leg: Leg, workdir: Path) -> tuple[int, float]:
    """One wrk run on the leg: the requests it completed, and its requests per second."""
    script = workdir / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(leg.body))}",
             'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in leg.headers.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{WRK_SECONDS}s", "-s", str(script), leg.url],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    errors = [line for line in out if "Non-2xx" in line or "Socket errors" in line]
    if errors:
        raise SystemExit(f"wrk saw errors on {leg.name}: {errors[0]}")
    completed = next(line for line in out if " requests in " in line).split()[0]
    rate = next(line for line in out if line.startswith("Requests/sec")).split()[1]
    return int(completed), float(rate)


def measure(legs: list[Leg], workdir: Path) -> dict[str, Measured]:
    measured = {leg.name: Measured() for leg in legs}
    for _ in range(ROUNDS):
        time_requests(legs, measured)
        for leg in legs:
            if not leg.throughput:
                continue
            result = measured[leg.name]
            with counting_cpu(leg, result.cpu_loaded):
                completed, rate = load(leg, workdir)
            result.cpu_loaded.requests += completed
            result.rates.append(rate)
    return measured


# -- the report ----------------------------------------------------------------------------------

Column = tuple[str, int, int]  # heading, width, decimals
THROUGHPUT: list[Column] = [("req/s", 8, 0), ("/ bare", 9, 2), ("/ mock", 9, 3), ("CPU us/req", 12, 1),
                            ("CPU: bare/it", 14, 2)]
LATENCY: list[Column] = [("p50", 8, 3), ("p99", 9, 3), ("added p50", 11, 3), ("added p99", 11, 3),
                         ("CPU us/req", 12, 1), ("over bare", 11, 3), ("CPU over bare", 15, 1)]


def table(title: str, columns: list[Column], rows: list[tuple[str, list[float | None]]]) -> None:
    """A figure of None leaves its cell blank."""
    print(title)
    print(f"{'leg':24}" + "".join(f"{heading:>{width}}" for heading, width, _ in columns))
    for name, figures in rows:
        cells = (" " * width if figure is None else f"{figure:{width}.{decimals}f}"
                 for figure, (_, width, decimals) in zip(figures, columns, strict=True))
        print(f"{name:24}" + "".join(cells))


def report(measured: dict[str, Measured], direct: str, bare: str) -> None:
    floor, reference = measured[direct], measured[bare]
    best = {name: max(leg.rates) for name, leg in measured.items() if leg.rates}
    rows: list[tuple[str, list[float | None]]] = []
    for name, leg in measured.items():
        if not leg.rates:
            continue
        cpu = leg.cpu_loaded.per_request_us
        rows.append((name, [best[name], best[name] / best[bare], best[name] / best[direct], cpu,
                            reference.cpu_loaded.per_request_us / cpu]))
    table(f"Throughput at {CONNECTIONS} connections (wrk -t1 -c{CONNECTIONS}), "
          f"best of {ROUNDS} rounds of {WRK_SECONDS} s", THROUGHPUT, rows)
    print("  / bare, / mock: its requests/s over theirs. CPU: its server's CPU time per request, and the\n"
          "  passthrough's over it, which is the requests/s ratio a core of its own each would give")
    rows = []
    for name, leg in measured.items():
        gateway, stockade_leg = name != direct, name not in (direct, bare)
        p50, p99, cpu = leg.percentile(50), leg.percentile(99), leg.cpu_sequential.per_request_us
        rows.append((name, [
            p50, p99,
            p50 - floor.percentile(50) if gateway else None,
            p99 - floor.percentile(99) if gateway else None,
            cpu,
            p50 - reference.percentile(50) if stockade_leg else None,  # = its added p50 minus bare's
            cpu - reference.cpu_sequential.per_request_us if stockade_leg else None,
        ]))
    table(f"Latency at 1 connection (ms), {ROUNDS} x {LATENCY_REQUESTS} requests a leg in blocks of "
          f"{BLOCK}, the legs in turn", LATENCY, rows)
    print("  added: minus the mock direct's. Over bare: Stockade's added p50 minus the passthrough's, and\n"
          "  its CPU time per request (us) minus the passthrough's, the part of that spent computing")
    print("Goals (issue 12): Stockade >= 0.80 x the passthrough's requests/s; over bare <= 0.1 ms")
    compared = [
        ("Content filter (issue 15), screened", "  ... screened", "stockade, 200-token prompt"),
        ("PHI redaction (issue 15), redacted", PHI_LEG, "stockade, 200-token prompt"),
        ("The local classifier on the default policy (issue 15), classified", CLASSIFIED_LEG,
         "stockade, 200-token prompt"),
        ("The Responses API (issue 19), store: false", RESPONSES_LEG, "stockade, api key"),
        ("The Responses API (issue 19), stored", STORED_LEG, RESPONSES_LEG),
    ]
    for what, name, base in compared:
        if name not in measured or base not in measured:  # left out by --only
            continue
        added, plain = measured[name], measured[base]
        print(f"{what} minus {base.strip()}: p50 "
              f"{added.percentile(50) - plain.percentile(50):+.3f} ms, p99 "
              f"{added.percentile(99) - plain.percentile(99):+.3f} ms, CPU "
              f"{added.cpu_sequential.per_request_us - plain.cpu_sequential.per_request_us:+.1f} us/req")
    print(f"Requests/s in each of the {ROUNDS} rounds:")
    for name, leg in measured.items():
        if leg.rates:
            print(f"  {name:22}" + "".join(f"{rate:9.0f}" for rate in leg.rates))


def managed_identity_token(env: dict[str, str], url: str) -> str:
    """A token for a managed identity holding OpenAI User, from the server's own token service."""
    identity = json.loads(run_cli(env, "--json", "identities", "create", "--name", "bench").stdout)
    run_cli(env, "roles", "assign", "--identity", identity["id"], "--role", "openai-user")
    time.sleep(1.5)  # the server re-reads role assignments every refresh_seconds
    response = httpx.get(
        f"{url}/msi/token",
        params={"api-version": "2019-08-01", "resource": "https://cognitiveservices.azure.com"},
        headers={"x-identity-header": identity["environment"]["IDENTITY_HEADER"]},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def stockade_env(workdir: Path, upstream: str) -> dict[str, str]:
    """A store in workdir with one deployment, "bench", on the mock."""
    config = workdir / "stockade.toml"
    config.write_text(f'[upstreams.mock]\nurl = "{upstream}"\nmodels = ["mock-model"]\n')
    # One worker process, as the passthrough has; `stockade serve --workers N` overrides it.
    env = {**os.environ, "STOCKADE_DATA_DIR": str(workdir), "STOCKADE_CONFIG": str(config),
           "STOCKADE_WORKERS": "1"}
    # Limits stay on, as in production, with room for far more than the benchmark sends:
    # 100,000 capacity = 100M TPM and 600,000 RPM (10,000 calls per second), for each of two deployments
    # (and 1,000 for the PHI leg, which serves about 20 calls a second).
    run_cli(env, "quota", "set", "mock-model", "--capacity", "201000")
    run_cli(env, "deployments", "create", "--name", "bench", "--model", "mock-model",
            "--capacity", "100000")
    run_cli(env, "deployments", "create", "--name", "bench-screened", "--model", "mock-model",
            "--capacity", "100000")
    run_cli(env, "blocklists", "create", "bench")
    for term in BLOCKLIST_TERMS:
        run_cli(env, "blocklists", "add-item", "bench", term)
    for pattern in BLOCKLIST_PATTERNS:
        run_cli(env, "blocklists", "add-item", "bench", pattern, "--regex")
    run_cli(env, "content-filters", "create", "screened", "--profanity", "--blocklist", "bench")
    run_cli(env, "deployments", "update", "bench-screened", "--content-filter", "screened")
    run_cli(env, "deployments", "create", "--name", "bench-phi", "--model", "mock-model",
            "--capacity", "1000")
    run_cli(env, "content-filters", "create", "phi", "--phi", "redact")
    run_cli(env, "deployments", "update", "bench-phi", "--content-filter", "phi")
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description="Gateway overhead against a fixed-cost mock.")
    parser.add_argument("--only", nargs="+", default=[], metavar="TEXT",
                        help="measure only the legs whose names hold one of these (and the two references)")
    only = parser.parse_args().only
    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed: apt-get install wrk nginx (make bench installs them)")
    workdir = Path(tempfile.mkdtemp(prefix="stockade-bench-"))
    client_core, gateway_core = cores()
    if client_core is not None:
        # Everything started from here (wrk, the mock) inherits this CPU; gateways are moved.
        os.sched_setaffinity(0, {client_core})
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        mock = stack.enter_context(nginx_mock(workdir))
        upstream = f"{mock.url}/v1"
        bare = stack.enter_context(passthrough(upstream, gateway_core))
        env = stockade_env(workdir, upstream)
        key = json.loads(run_cli(env, "--json", "keys", "regenerate", "key1").stdout)["key"]
        gateway = stack.enter_context(stockade(env, workdir / "stockade.log", gateway_core))
        # Two HTTP workers and the hub, unpinned: what a second core buys, limits still exact.
        two_workers = stack.enter_context(
            stockade(env, workdir / "stockade-2-workers.log", None, "--workers", "2")
        )
        classified = stack.enter_context(stockade(
            {**env, "STOCKADE_SAFETY__CLASSIFIER": "local"}, workdir / "stockade-classifier.log", gateway_core
        ))
        token = managed_identity_token(env, gateway.url)
        legs = [
            Leg("mock direct (nginx)", mock, "/v1/chat/completions", {}),
            Leg("bare passthrough", bare, CHAT_PATH, {"api-key": PASSTHROUGH_KEY}),
            Leg("stockade, api key", gateway, CHAT_PATH, {"api-key": key}),
            Leg("stockade, bearer token", gateway, CHAT_PATH, {"authorization": f"Bearer {token}"}),
            Leg("stockade, api key, 2 workers", two_workers, CHAT_PATH, {"api-key": key}),
            Leg("stockade, 200-token prompt", gateway, CHAT_PATH, {"api-key": key}, LONG_BODY),
            Leg("  ... screened", gateway, SCREENED_PATH, {"api-key": key}, LONG_BODY),
            Leg(PHI_LEG, gateway, PHI_PATH, {"api-key": key}, PHI_BODY, throughput=False),
            Leg(CLASSIFIED_LEG, classified, CHAT_PATH, {"api-key": key}, LONG_BODY),
            Leg(RESPONSES_LEG, gateway, RESPONSES_PATH, {"api-key": key}, {**RESPONSE_BODY, "store": False}),
            Leg(STORED_LEG, gateway, RESPONSES_PATH, {"api-key": key}, RESPONSE_BODY),
        ]
        if only:
            legs = legs[:2] + [leg for leg in legs[2:] if any(text in leg.name for text in only)]
        measured = measure(legs, workdir)
    pinning = (f"gateways on CPU {gateway_core}; this client, wrk and the mock on CPU {client_core}"
               if client_core is not None else "one CPU: nothing pinned")
    print(f"Gateway overhead, {ROUNDS} interleaved rounds; {pinning}")
    before, after = (" ".join(f"{value:.2f}" for value in loads) for loads in (load_before, os.getloadavg()))
    print(f"Load average (1, 5, 15 min) before: {before}, after: {after}")
    report(measured, direct=legs[0].name, bare=legs[1].name)
    with sqlite3.connect(workdir / "stockade.db") as db:
        recorded = db.execute("select count(*) from usage_records").fetchone()[0]
    print(f"Usage records written during the run: {recorded}")


if __name__ == "__main__":
    main()
