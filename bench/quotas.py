"""Quota accuracy: replicas sharing one deployment's limit through Redis, driven past it.

For 1, 2 and 4 replicas (on PostgreSQL and Redis, in front of tests/mock_upstream.py), clients
send calls as fast as the limit refuses them for more than a minute. The mock counts the tokens it
really receives; over the first whole clock minute of the run that is divided by the deployment's
TPM. Every 429 is checked: both retry headers present and consistent, and pointing at the end of a
window or of the minute, which is when the limiter admits again. Run with `make bench`.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
from openai import AsyncAzureOpenAI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import (  # noqa: E402
    API_VERSION,
    mock_upstream,
    postgres_schema_url,
    replica_env,
    run_cli,
    start_replicas,
    stop,
)

CAPACITY = 60  # 60,000 TPM and 360 RPM: 10,000 tokens and 60 calls per 10-second window
TPM = CAPACITY * 1000
WINDOW_MS = 10_000
MAX_TOKENS = 191  # with the 9-token prompt estimate, each call reserves 200 tokens
RESERVATION = 200
CLIENTS = 8
PAUSE = 0.01  # between one client's calls, so the refused do not starve the admitted of CPU
TOLERANCE_MS = 3


@dataclass
class Tally:
    admitted: int = 0
    refused: int = 0
    good_hints: int = 0
    bad_hints: list[str] = field(default_factory=list)


def hint_is_correct(sent: float, received: float, headers: httpx.Headers) -> bool:
    """The hint must name the end of the window (or the minute) the refusal happened in."""
    if "retry-after-ms" not in headers or "retry-after" not in headers:
        return False
    wait_ms = int(headers["retry-after-ms"])
    if headers["retry-after"] != str(math.ceil(wait_ms / 1000)) or not 0 < wait_ms <= 120_000:
        return False
    earliest, latest = sent * 1000 + wait_ms, received * 1000 + wait_ms
    for period in (WINDOW_MS, 60_000):
        end = (math.floor(sent * 1000 / period) + 1) * period
        if earliest - TOLERANCE_MS <= end <= latest + TOLERANCE_MS:
            return True
    return False


async def drive(urls: list[str], key: str, deployment: str, until: float, tally: Tally) -> None:
    clients = [AsyncAzureOpenAI(azure_endpoint=url + "/", api_key=key, api_version=API_VERSION,
                                max_retries=0) for url in urls]

    async def client_loop(index: int) -> None:
        sdk = clients[index % len(clients)]
        while time.time() < until:
            sent = time.time()
            try:
                await sdk.chat.completions.create(
                    model=deployment, messages=[{"role": "user", "content": "Hello"}],
                    max_tokens=MAX_TOKENS,
                )
                tally.admitted += 1
            except openai.RateLimitError as exc:
                tally.refused += 1
                if hint_is_correct(sent, time.time(), exc.response.headers):
                    tally.good_hints += 1
                else:
                    tally.bad_hints.append(str(dict(exc.response.headers)))
            await asyncio.sleep(PAUSE)

    try:
        await asyncio.gather(*(client_loop(i) for i in range(CLIENTS)))
    finally:
        for sdk in clients:
            await sdk.close()


def run(replicas: int) -> tuple[float, Tally]:
    workdir = Path(tempfile.mkdtemp(prefix=f"stockade-quota-{replicas}-"))
    with postgres_schema_url() as database_url, mock_upstream() as upstream:
        env = replica_env(workdir, database_url, upstream, "redis://127.0.0.1:6379/0",
                          STOCKADE_TELEMETRY__DIAGNOSTIC_LOG="off")
        name = f"quota-bench-{uuid.uuid4().hex[:8]}"
        run_cli(env, "deployments", "create", "--name", name, "--model", "mock-model",
                "--capacity", str(CAPACITY))
        servers = start_replicas(env, workdir, replicas)
        try:
            now = time.time()
            minute_start = (math.floor(now / 60) + 1) * 60  # the first whole minute of the run
            if minute_start - now < 5:
                minute_start += 60
            tally = Tally()
            asyncio.run(drive([s.url for s in servers], servers[0].key, name, minute_start + 63, tally))
            delivered = httpx.get(f"{upstream}/tally").json()
        finally:
            for server in servers:
                stop(server.process)
    tokens = sum(t for arrived, t in delivered if minute_start <= arrived < minute_start + 60)
    return tokens / TPM, tally


def main() -> None:
    os.environ.setdefault("STOCKADE_LOG_LEVEL", "warning")
    print(f"deployment: {TPM:,} TPM, {CAPACITY * 6} RPM, 10-second windows; "
          f"each call reserves {RESERVATION} tokens; goal 0.98 to {1 + RESERVATION / TPM:.4f}")
    print(f"{'replicas':>8}{'admitted/limit':>16}{'admitted':>10}{'429s':>8}{'correct hints':>15}")
    bad: list[str] = []
    for replicas in (1, 2, 4):
        ratio, tally = run(replicas)
        share = tally.good_hints / tally.refused if tally.refused else float("nan")
        print(f"{replicas:>8}{ratio:>16.4f}{tally.admitted:>10}{tally.refused:>8}{share:>15.2%}")
        bad += tally.bad_hints
    for example in bad[:5]:
        print("429 with a wrong hint:", example)


if __name__ == "__main__":
    main()
