"""Routine turns on the embedded default: how long a customer waits for the agent's reply.

One `stockade serve` with the bundled models; the scripted BAA conversations
(routines/builtin/baa-dev.yaml, the development set) are played once to warm up, then again while each turn's
round trip is timed. A turn decided by embeddings costs one embeddings call through the API in
process; a near-tie adds a constrained chat completion. Run with `make bench`.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import server_env, serving  # noqa: E402
from stockade.routines.evaluation import load_script  # noqa: E402
from stockade.routines.service import BUILTIN_DIRECTORY  # noqa: E402


def play(http: httpx.Client, timings: dict[str, list[float]]) -> None:
    script = load_script(BUILTIN_DIRECTORY / "baa-dev.yaml")
    for scripted in script.conversations:
        conversation = http.post("/routines/conversations", json={"routine": script.routine}).json()
        for turn in scripted.turns:
            started = time.perf_counter()
            reply = http.post(
                f"/routines/conversations/{conversation['id']}/messages", json={"content": turn.customer}
            )
            elapsed = (time.perf_counter() - started) * 1000
            reply.raise_for_status()
            decision = next((e for e in reply.json()["events"] if e["kind"] == "decision"), None)
            timings[decision["stage"] if decision else "opening"].append(elapsed)


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="stockade-routines-"))
    env = server_env(data_dir, STOCKADE_ROUTINES__SALES_CONTACT="sales@example.com")
    deployments = [("chat", "smollm2-135m-instruct", 500), ("embeddings", "all-minilm-l6-v2", 500)]
    timings: dict[str, list[float]] = {"opening": [], "embeddings": [], "model": []}
    with (
        serving(env, data_dir, deployments) as server,
        httpx.Client(base_url=server.url, headers={"api-key": server.key}, timeout=300) as http,
    ):
        play(http, {"opening": [], "embeddings": [], "model": []})  # warm-up
        play(http, timings)
    print("Routine turns (BAA script, embedded models), round trip in ms")
    print(f"{'turn decided by':<16} {'turns':>6} {'p50':>8} {'p95':>8} {'max':>8}")
    for stage, values in timings.items():
        if values:
            values.sort()
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            print(f"{stage:<16} {len(values):>6} {statistics.median(values):>8.1f} {p95:>8.1f} {values[-1]:>8.1f}")


if __name__ == "__main__":
    main()
