"""Batch throughput against the deployment's limits, and what a running batch does to interactive
latency.

One `stockade serve` (one HTTP worker per core, or `--workers N`; the embedded SQLite store) in front of tests/mock_upstream.py
serves one deployment of capacity CAPACITY: CAPACITY x 6 calls and CAPACITY x 1,000 tokens a
minute, enforced over 10-second windows. Each line (and each interactive call) asks for MAX_TOKENS,
so calls, not tokens, bind; batch lines may use the limits less `batch.headroom`.

- **Without a batch**: after WARM_UP calls not timed, INTERACTIVE sequential chat calls through the openai SDK, PAUSE apart, on
  the deployment; their latency percentiles.
- **With a batch**: a LINES-line batch submitted as the guide does (files.create, batches.create,
  then batches.retrieve every POLL seconds until it ends), and the same interactive calls while it
  runs. Lines/s is taken from the mock upstream's record of when each batch line reached it, over
  the whole 10-second windows between the first line and the last (a window cut by the start or
  the end would not be one the limiter filled), and compared with what the limits allow it:
  (1 - headroom) x RPM / 60. Timing the lines where they arrive needs no fast polling, which would
  add calls of its own beside the interactive ones it measures.

Goals (issue 16): lines/s ≥ 0.9 of the allowed rate; interactive p95 with the batch ≤ 1.1 x without.
Run with `make bench`.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from openai import AzureOpenAI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import API_VERSION, launch, mock_upstream, run_cli, server_env, stop  # noqa: E402

CAPACITY = 1000  # 1,000,000 TPM and 6,000 RPM: 1,000 calls per 10-second window
RPM = CAPACITY * 6
HEADROOM = 0.05  # batch.headroom's default
WINDOW = 10.0
LINES = 10_000
MAX_TOKENS = 10
INTERACTIVE = 300
WARM_UP = 50  # interactive calls first, not timed: a server just started is slower at first
PAUSE = 0.25  # between interactive calls: under 4 a second, within the headroom's 5 a second
POLL = 2.0  # seconds between batches.retrieve calls, as a client waiting for its batch
DEPLOYMENT = "bench-batch"
MESSAGES = [{"role": "user", "content": "Hello"}]
LINE_MESSAGES = [{"role": "user", "content": "Hello from a batch line"}]  # told apart at the upstream
# HTTP workers: `stockade serve`'s default, one per core. With two or more, batch lines run in the
# replica's batch process; `--workers 1` runs them in its one process.
WORKERS = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else os.cpu_count() or 1


def input_file() -> bytes:
    lines = (
        json.dumps({"custom_id": f"line-{i}", "method": "POST", "url": "/chat/completions",
                    "body": {"model": DEPLOYMENT, "messages": LINE_MESSAGES, "max_tokens": MAX_TOKENS}})
        for i in range(LINES)
    )
    return ("\n".join(lines) + "\n").encode()


def interactive(
    client: AzureOpenAI, stop_when: threading.Event | None = None, calls: int = INTERACTIVE
) -> list[float]:
    """Latencies of ``calls`` sequential calls (or of calls until ``stop_when`` is set)."""
    latencies: list[float] = []
    while len(latencies) < calls if stop_when is None else not stop_when.is_set():
        started = time.perf_counter()
        client.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES, max_tokens=MAX_TOKENS)
        latencies.append(time.perf_counter() - started)
        time.sleep(PAUSE)
    return latencies


def p95(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[94]


def whole_window_rate(arrivals: list[float]) -> tuple[float, int]:
    """Lines/s over the whole windows between the first line's arrival and the last's; and how
    many windows that was."""
    first = (min(arrivals) // WINDOW + 1) * WINDOW
    last = (max(arrivals) // WINDOW) * WINDOW
    windows = round((last - first) / WINDOW)
    if windows < 1:
        raise RuntimeError("the batch ran for less than one whole window: raise LINES")
    return sum(first <= t < last for t in arrivals) / (last - first), windows


def line_arrivals(upstream: str) -> list[float]:
    """When each batch line reached the mock upstream since its tally was last cleared."""
    tally = httpx.get(f"{upstream}/tally").json()
    prompts = httpx.get(f"{upstream}/prompts").json()
    line = LINE_MESSAGES[-1]["content"]
    return [arrived for (arrived, _), prompt in zip(tally, prompts, strict=True) if prompt == line]


def run_batch(client: AzureOpenAI) -> tuple[list[float], dict[str, object]]:
    uploaded = client.files.create(file=("bench.jsonl", io.BytesIO(input_file())), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions",
                                  completion_window="24h")
    done = threading.Event()
    latencies: list[float] = []
    calls = threading.Thread(target=lambda: latencies.extend(interactive(client, done)))
    calls.start()
    try:
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(POLL)
            batch = client.batches.retrieve(batch.id)
    finally:
        done.set()
        calls.join()
    return latencies, batch.model_dump()


def main() -> None:
    os.environ.setdefault("STOCKADE_LOG_LEVEL", "warning")
    workdir = Path(tempfile.mkdtemp(prefix="stockade-batch-bench-"))
    with mock_upstream() as upstream:
        config = workdir / "stockade.toml"
        config.write_text(f'[upstreams.mock]\nurl = "{upstream}/v1"\nmodels = ["mock-model"]\n')
        env = server_env(workdir, STOCKADE_CONFIG=str(config), STOCKADE_TELEMETRY__DIAGNOSTIC_LOG="off",
                         STOCKADE_BATCH__POLL_SECONDS="0.2", STOCKADE_BATCH__HEADROOM=str(HEADROOM),
                         STOCKADE_WORKERS=str(WORKERS))
        run_cli(env, "deployments", "create", "--name", DEPLOYMENT, "--model", "mock-model",
                "--capacity", str(CAPACITY))
        server = launch(env, workdir)
        try:
            client = AzureOpenAI(azure_endpoint=server.url + "/", api_key=server.key,
                                 api_version=API_VERSION, max_retries=0)
            interactive(client, calls=WARM_UP)
            alone = interactive(client)
            httpx.delete(f"{upstream}/tally")
            beside, batch = run_batch(client)
            arrivals = line_arrivals(upstream)
        finally:
            stop(server.process)
    allowed = (1 - HEADROOM) * RPM / 60
    rate, windows = whole_window_rate(arrivals)
    print(f"replica: {WORKERS} HTTP worker(s), batch lines in {'its batch process' if WORKERS > 1 else 'its one process'}")
    print(f"deployment: {RPM:,} RPM, {CAPACITY * 1000:,} TPM, 10-second windows; headroom {HEADROOM:.0%}")
    print(f"batch: {LINES:,} lines, status {batch['status']}, counts {batch['request_counts']}")
    print(f"batch lines/s over {windows} whole windows: {rate:.1f}; allowed {allowed:.1f}; "
          f"ratio {rate / allowed:.3f} (goal >= 0.9)")
    print(f"interactive p50/p95 without the batch: {statistics.median(alone) * 1000:.1f} / "
          f"{p95(alone) * 1000:.1f} ms ({len(alone)} calls)")
    print(f"interactive p50/p95 with the batch:    {statistics.median(beside) * 1000:.1f} / "
          f"{p95(beside) * 1000:.1f} ms ({len(beside)} calls); p95 ratio {p95(beside) / p95(alone):.2f} "
          "(goal <= 1.1)")


if __name__ == "__main__":
    main()
