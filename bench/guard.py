"""What the guard-model classifier adds to a chat call: p50 and p99, through a loopback upstream.

One loopback upstream (bare ASGI on uvicorn, a process of its own) serves both the chat model
and the guard model, as one vLLM would serve two models: a canned chat reply, and text
completions answered as Llama Guard 3 ("safe") or ShieldGemma ("No", with log probabilities)
would. It computes nothing, so what is measured is Stockade's side of the guard calls: the
prompt format, the HTTP hop, admission and metering on the guard deployment, and the parsing.
A real guard model adds its own inference time (tens of milliseconds on a GPU) on top.

Legs, on one store, each a `stockade serve` process with one worker, all sent bench/gateway.py's
200-token clinical prompt (max_tokens 16):

- no classifier: the default policy with nothing to run;
- llama-guard-3: two guard calls per request (the prompt, then the completion);
- shieldgemma: eight (one per harm type, four at a time, for each).

The legs are interleaved, BLOCK requests at a time, so that a change in the machine's speed
reaches them alike. Run with `make bench`, or `python bench/guard.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from gateway import LONG_BODY, wait_until_listening  # noqa: E402
from mock_upstream import read_body  # noqa: E402

from conftest import free_port, run_cli, start_server, stop  # noqa: E402

ROUNDS = 10
BLOCK = 20  # requests per leg per round
WARM_UP = 20
CHAT = "/openai/deployments/bench/chat/completions?api-version=2024-10-21"
SHIELDGEMMA_FIRST_TOKEN = {"No": -0.02, "Yes": -4.0, "The": -7.0}


def completion(request: dict[str, object]) -> dict[str, object]:
    if "messages" in request:
        choice: dict[str, object] = {"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": "A short summary."}}
    elif request.get("logprobs"):
        choice = {"index": 0, "finish_reason": "length", "text": "No",
                  "logprobs": {"tokens": ["No"], "token_logprobs": [-0.02],
                               "top_logprobs": [SHIELDGEMMA_FIRST_TOKEN], "text_offset": [0]}}
    else:
        choice = {"index": 0, "finish_reason": "stop", "text": "safe", "logprobs": None}
    return {"id": "x", "object": "text_completion", "created": 1, "model": request["model"],
            "choices": [choice], "usage": {"prompt_tokens": 200, "completion_tokens": 3, "total_tokens": 203}}


async def upstream(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    payload = orjson.dumps(completion(orjson.loads(body)))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


@contextlib.contextmanager
def serving_upstream() -> Iterator[str]:
    import subprocess

    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--upstream", str(port)])
    try:
        wait_until_listening(process, port)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(process)


@contextlib.contextmanager
def gateway(env: dict[str, str], log: Path, **safety: str) -> Iterator[str]:
    port = free_port()
    settings = {f"STOCKADE_SAFETY__{name.upper()}": value for name, value in safety.items()}
    process = start_server({**env, **settings}, log, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def store(workdir: Path, url: str) -> dict[str, str]:
    config = workdir / "stockade.toml"
    config.write_text(f'[upstreams.vllm]\nurl = "{url}"\nmodels = ["chat-model", "guard-model"]\n')
    env = {**os.environ, "STOCKADE_DATA_DIR": str(workdir), "STOCKADE_CONFIG": str(config),
           "STOCKADE_WORKERS": "1", "STOCKADE_TELEMETRY__DIAGNOSTIC_LOG": "off"}
    for model in ("chat-model", "guard-model"):
        run_cli(env, "quota", "set", model, "--capacity", "100000")
    run_cli(env, "deployments", "create", "--name", "bench", "--model", "chat-model", "--capacity", "100000")
    run_cli(env, "deployments", "create", "--name", "guard", "--model", "guard-model", "--capacity", "100000")
    return env


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--upstream":
        import uvicorn

        uvicorn.run(upstream, host="127.0.0.1", port=int(sys.argv[2]), loop="uvloop", http="httptools",
                    log_level="warning", access_log=False, lifespan="off")
        return
    workdir = Path(tempfile.mkdtemp(prefix="stockade-bench-guard-"))
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(serving_upstream())
        env = store(workdir, url)
        key = json.loads(run_cli(env, "--json", "keys", "regenerate", "key1").stdout)["key"]
        guard = {"classifier": "guard", "guard_deployment": "guard"}
        legs = {
            "no classifier": stack.enter_context(gateway(env, workdir / "none.log")),
            "llama-guard-3": stack.enter_context(gateway(env, workdir / "llama.log", **guard)),
            "shieldgemma": stack.enter_context(
                gateway(env, workdir / "gemma.log", **guard, guard_format="shieldgemma")
            ),
        }
        clients = {leg: stack.enter_context(httpx.Client(base_url=base, headers={"api-key": key}))
                   for leg, base in legs.items()}
        timings: dict[str, list[float]] = {leg: [] for leg in legs}
        for client in clients.values():
            for _ in range(WARM_UP):
                client.post(CHAT, json=LONG_BODY).raise_for_status()
        for _ in range(ROUNDS):
            for leg, client in clients.items():
                for _ in range(BLOCK):
                    started = time.perf_counter()
                    response = client.post(CHAT, json=LONG_BODY)
                    timings[leg].append((time.perf_counter() - started) * 1000)
                    response.raise_for_status()
    print(f"Guard-model classifier, ms per chat call, {ROUNDS} interleaved rounds of {BLOCK} "
          f"(load average {os.getloadavg()[0]:.1f})")
    base50, base99 = percentiles(timings["no classifier"])
    print(f"{'leg':<16} {'calls':>6} {'p50':>8} {'p99':>8} {'added p50':>10} {'added p99':>10}")
    for leg, values in timings.items():
        p50, p99 = percentiles(values)
        print(f"{leg:<16} {len(values):>6} {p50:>8.2f} {p99:>8.2f} {p50 - base50:>10.2f} {p99 - base99:>10.2f}")
    with sqlite3.connect(workdir / "stockade.db") as db:
        made = db.execute("select count(*) from usage_records where key_id = 'guard'").fetchone()[0]
    print(f"Guard calls recorded: {made} (2 per llama-guard-3 request, 8 per shieldgemma request)")


def percentiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return statistics.median(values), cuts[98]


if __name__ == "__main__":
    main()
