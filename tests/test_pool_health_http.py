"""What HTTP clients see of a local model's worker pool while it heals: /healthz stays 200 and
says each model's state, /readyz is 503 in Azure's error envelope until a worker runs, and a call
meanwhile gets 503 with retry hints, never a 500 or a hang.

The app runs in process over a chat model whose generation runs in a real worker process of the
``Steered`` runner (tests/runners.py), killed with real signals, its loading steered to hang.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2

from conftest import API_VERSION, App, in_process
from stockade.backends.base import (
    ChatModel,
    EmbeddingModel,
    Events,
    ModelHost,
    ModelSpec,
    PoolSpec,
    Prepared,
)
from stockade.requests import ChatRequest, CompletionRequest

MODEL = "steered-chat"
DEADLINE = 60  # seconds for a worker process to start on a busy two-core machine


class SteeredChat:
    """A chat model whose every answer comes from a Steered worker process."""

    def __init__(self, host: ModelHost, control: Path) -> None:
        self.workers = host.worker_pool(PoolSpec(
            name=MODEL, runner="runners:Steered", options={"control": str(control)},
            wait_seconds=0.3,  # how long a call waits for a loading worker before its 503
        ))

    async def start(self) -> None:
        await self.workers.start()

    async def prepare(self, request: ChatRequest | CompletionRequest) -> Prepared:
        return Prepared(1, None)

    async def generate(self, prepared: Prepared) -> Events:
        async for event in self.workers.stream("generate", None):
            yield event

    async def close(self) -> None:
        await self.workers.close()


def steered(control: Path) -> ModelSpec:
    def factory(host: ModelHost) -> ChatModel | EmbeddingModel:
        return SteeredChat(host, control)
    return ModelSpec(MODEL, "chat", "local", "a worker process tests kill", context_tokens=2048,
                     factory=factory)


def until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while not (answer := condition()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)
    return answer


def probe(app: App, path: str, status: int, state: str) -> Callable[[], httpx2.Response | None]:
    """A poll of /healthz or /readyz that answers the response once it has ``status`` and the
    model is in ``state``."""
    def poll() -> httpx2.Response | None:
        response = app.anonymous().get(path)
        if response.status_code == status and response.json()["models"][MODEL]["state"] == state:
            return response
        return None
    return poll


def chat(app: App) -> httpx2.Response:
    return app.http().post(
        "/openai/deployments/chat/chat/completions", params={"api-version": API_VERSION},
        json={"messages": [{"role": "user", "content": "are you there?"}]}, timeout=DEADLINE,
    )


def assert_refused_with_retry_hints(response: httpx2.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after-ms"]) >= 1
    assert int(response.headers["retry-after"]) >= 1
    assert set(response.json()["error"]) >= {"code", "message"}


def test_probes_and_calls_while_a_worker_dies_fails_to_load_and_heals(tmp_path: Path) -> None:
    control = tmp_path / "control"
    control.write_text("")
    loader = Path(f"{control}.pid")
    with in_process(tmp_path / "data", [("chat", MODEL, 500)],
                    local_models=[steered(control)]) as app:
        # The first probe starts the deployed model if warm-up has not; it becomes ready.
        ready = until(probe(app, "/readyz", 200, "ready"), "the model was ready")
        assert ready.json()["models"][MODEL] == {"state": "ready", "workers": 1, "processes": 1,
                                                  "busy": 0, "waiting": 0}
        served = chat(app)
        assert served.status_code == 200, served.text
        assert served.json()["choices"][0]["message"]["content"] == "healed"

        # Its worker dies; the replacement's loading hangs.
        control.write_text("hang")
        killed = int(loader.read_text())
        os.kill(killed, signal.SIGKILL)
        not_ready = until(probe(app, "/readyz", 503, "starting"), "/readyz said not ready")
        error = not_ready.json()["error"]
        assert error["code"] and MODEL in error["message"]
        health = until(probe(app, "/healthz", 200, "starting"), "/healthz said starting")
        assert health.json()["status"] == "ok"
        assert health.json()["models"][MODEL]["workers"] == 0
        until(lambda: loader.read_text() != str(killed), "a replacement began loading")
        assert_refused_with_retry_hints(chat(app))  # after wait_seconds, not a hang

        # The replacement dies while loading: every load has failed, callers are told at once.
        os.kill(int(loader.read_text()), signal.SIGKILL)
        until(probe(app, "/readyz", 503, "failed"), "/readyz said failed")
        until(probe(app, "/healthz", 200, "failed"), "/healthz stayed 200 and said failed")
        refused = chat(app)
        assert_refused_with_retry_hints(refused)
        assert "no running worker" in refused.json()["error"]["message"]

        # The backoff's next load is let through: ready again, and calls are served.
        control.write_text("")
        until(probe(app, "/readyz", 200, "ready"), "the model was ready again")
        healed = chat(app)
        assert healed.status_code == 200, healed.text
        assert healed.json()["choices"][0]["message"]["content"] == "healed"
