"""Gateway overhead: Stockade in front of a fixed-cost mock upstream versus the mock called directly.

Auth, rate limiting and usage logging stay on, as in production. Prints the latency Stockade adds at
one connection (p50/p99) and the requests per second one Stockade worker sustains at 32
connections (measured with wrk), once with an API key and once with a bearer token from the
built-in token service. Run with `make bench`.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import free_port, launch, run_cli, stop  # noqa: E402

BODY = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16}
LATENCY_REQUESTS = 3000
WRK_SECONDS = 15
CONNECTIONS = 32


def latencies(url: str, headers: dict[str, str], count: int) -> list[float]:
    payload = json.dumps(BODY).encode()
    headers = {**headers, "content-type": "application/json"}
    samples = []
    with httpx.Client(timeout=10) as client:
        for _ in range(200):  # warm-up: connections, caches
            client.post(url, content=payload, headers=headers).raise_for_status()
        for _ in range(count):
            started = time.perf_counter()
            client.post(url, content=payload, headers=headers).raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=1000)[int(q * 10) - 1]


def requests_per_second(url: str, headers: dict[str, str], workdir: Path) -> float:
    script = workdir / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(BODY))}",
             'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{WRK_SECONDS}s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    non_2xx = [line for line in out.splitlines() if "Non-2xx" in line]
    if non_2xx:
        raise SystemExit(f"wrk saw errors: {non_2xx[0]}")
    return float(next(line for line in out.splitlines() if line.startswith("Requests/sec")).split()[1])


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


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk (make bench installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="stockade-bench-"))
    mock_port = free_port()
    mock = subprocess.Popen([sys.executable, str(ROOT / "tests" / "mock_upstream.py"), str(mock_port)])
    config = workdir / "stockade.toml"
    config.write_text(f'[upstreams.mock]\nurl = "http://127.0.0.1:{mock_port}/v1"\nmodels = ["mock-model"]\n')
    env = {**os.environ, "STOCKADE_DATA_DIR": str(workdir), "STOCKADE_CONFIG": str(config)}
    # Limits stay on, as in production, with room for far more than the benchmark sends:
    # 100,000 capacity = 100M TPM and 600,000 RPM (10,000 calls per second).
    run_cli(env, "quota", "set", "mock-model", "--capacity", "100000")
    run_cli(env, "deployments", "create", "--name", "bench", "--model", "mock-model",
            "--capacity", "100000")
    gateway = launch(env, workdir)
    try:
        direct_url = f"http://127.0.0.1:{mock_port}/v1/chat/completions"
        gateway_url = f"{gateway.url}/openai/deployments/bench/chat/completions?api-version=2024-10-21"
        credentials = {"api key": {"api-key": gateway.key},
                       "bearer token": {"authorization": f"Bearer {managed_identity_token(env, gateway.url)}"}}
        direct = latencies(direct_url, {}, LATENCY_REQUESTS)
        direct_rps = requests_per_second(direct_url, {}, workdir)
        through = {name: latencies(gateway_url, auth, LATENCY_REQUESTS) for name, auth in credentials.items()}
        gateway_rps = {name: requests_per_second(gateway_url, auth, workdir) for name, auth in credentials.items()}
    finally:
        stop(gateway.process)
        mock.terminate()
    for name in credentials:
        print(f"{'stockade with ' + name:34}{'direct':>10}{'stockade':>10}{'added':>10}")
        for label, q in (("latency p50, 1 connection (ms)", 50), ("latency p99, 1 connection (ms)", 99)):
            d, g = percentile(direct, q), percentile(through[name], q)
            print(f"{label:34}{d:10.3f}{g:10.3f}{g - d:10.3f}")
        print(f"{'requests/s, 32 connections':34}{direct_rps:10.0f}{gateway_rps[name]:10.0f}")
    with sqlite3.connect(workdir / "stockade.db") as db:
        recorded = db.execute("select count(*) from usage_records").fetchone()[0]
    print(f"usage records written during the run: {recorded}")


if __name__ == "__main__":
    main()
