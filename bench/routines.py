"""Routine turns on the embedded default: how long a customer waits for the agent's reply.

One `stockade serve` with the bundled models; scripted BAA conversations (by default the
development set, routines/builtin/baa-dev.yaml) are played once to warm up, then again while each
turn's round trip is timed. A turn decided by embeddings costs one embeddings call through the API
in process (two when the message takes back what it first said); a near-tie adds a constrained
chat completion. Run with `make bench`, or alone:

    .venv/bin/python bench/routines.py [--script FILE] [--embeddings MODEL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import server_env, serving  # noqa: E402
from stockade.routines.deployment import CLASSIFIER_MODEL  # noqa: E402
from stockade.routines.evaluation import Script, load_script  # noqa: E402
from stockade.routines.service import BUILTIN_DIRECTORY  # noqa: E402


def play(http: httpx.Client, script: Script, timings: dict[str, list[float]]) -> None:
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
            timings.setdefault(decision["stage"] if decision else "opening", []).append(elapsed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--script", type=Path, default=BUILTIN_DIRECTORY / "baa-dev.yaml")
    parser.add_argument("--embeddings", default=CLASSIFIER_MODEL)
    args = parser.parse_args()
    script = load_script(args.script)
    data_dir = Path(tempfile.mkdtemp(prefix="stockade-routines-"))
    env = server_env(data_dir, STOCKADE_ROUTINES__SALES_CONTACT="sales@example.com")
    deployments = [("chat", "smollm2-135m-instruct", 500), ("embeddings", args.embeddings, 500)]
    timings: dict[str, list[float]] = {"opening": [], "embeddings": [], "model": []}
    with (
        serving(env, data_dir, deployments) as server,
        httpx.Client(base_url=server.url, headers={"api-key": server.key}, timeout=300) as http,
    ):
        play(http, script, {"opening": [], "embeddings": [], "model": []})  # warm-up
        play(http, script, timings)
    timings["all"] = [value for values in list(timings.values()) for value in values]
    print(f"Routine turns ({args.script.name}, {len(script.conversations)} conversations; "
          f"embeddings {args.embeddings}), round trip in ms")
    print(f"{'turn decided by':<16} {'turns':>6} {'p50':>8} {'p95':>8} {'max':>8}")
    for stage, values in timings.items():
        if values:
            values.sort()
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            print(f"{stage:<16} {len(values):>6} {statistics.median(values):>8.1f} {p95:>8.1f} {values[-1]:>8.1f}")


if __name__ == "__main__":
    main()
