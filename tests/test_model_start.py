"""A server starts its deployed models when it starts, and a model deployed while it serves, in
the background: no call waits for a model nobody started, and serving does not wait for them.

The model here is the fake chat model with a start-up the test holds, so that "still loading"
lasts exactly as long as the test wants."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest

from conftest import App, in_process, run_cli
from fake_model import FakeChatModel
from stockade.backends.base import ChatModel, EmbeddingModel, ModelHost, ModelSpec

MODEL = "held-chat"
DEADLINE = 30  # seconds: what "eventually" means on a busy machine


class HeldStart:
    """A fake chat model's spec whose start-ups begin, and then wait until the test releases them."""

    def __init__(self) -> None:
        self.begun = threading.Event()
        self.release = threading.Event()

    def spec(self) -> ModelSpec:
        def factory(host: ModelHost) -> ChatModel | EmbeddingModel:
            return HeldChatModel(host.settings.local.context_tokens, self)

        return ModelSpec(MODEL, "chat", "local", "a fake whose start the test holds",
                         context_tokens=2048, factory=factory)


class HeldChatModel(FakeChatModel):
    def __init__(self, context_tokens: int, held: HeldStart) -> None:
        super().__init__(context_tokens)
        self.held = held

    async def start(self) -> None:
        self.held.begun.set()
        await asyncio.to_thread(self.held.release.wait, DEADLINE)
        await super().start()


@pytest.fixture
def held() -> Iterator[HeldStart]:
    holder = HeldStart()
    yield holder
    holder.release.set()


def model_state(app: App) -> str:
    response = app.anonymous().get("/healthz")
    assert response.status_code == 200, response.text
    state: str = response.json()["models"][MODEL]["state"]
    return state


def test_the_deployed_models_start_with_the_server_and_serving_does_not_wait(
    tmp_path: Path, held: HeldStart
) -> None:
    held.release.set()
    with in_process(tmp_path, [("chat", MODEL, 10)], local_models=[held.spec()]):
        pass  # the deployment is in the store
    held.begun.clear()
    held.release.clear()
    with in_process(tmp_path, (), local_models=[held.spec()]) as app:
        # The app serves while the start it began on its own is still held.
        assert held.begun.wait(DEADLINE), "the server did not start its deployed model"
        assert model_state(app) == "starting"
        held.release.set()
        until(lambda: model_state(app) == "ready", "the model became ready")


def test_a_model_deployed_while_serving_starts_without_a_call(tmp_path: Path, held: HeldStart) -> None:
    with in_process(tmp_path, (), local_models=[held.spec()]) as app:
        assert not held.begun.is_set()
        created = app.http().put("/management/deployments/chat", json={"model": MODEL})
        assert created.status_code == 201, created.text
        assert held.begun.wait(DEADLINE), "the new deployment's model did not start"
        held.release.set()


def test_a_model_the_command_line_deployed_starts_at_the_servers_next_read_of_the_store(
    tmp_path: Path, held: HeldStart
) -> None:
    with in_process(tmp_path, (), local_models=[held.spec()]) as app:
        with mock.patch("stockade.backends.registry.discover_local_models", lambda: [held.spec()]):
            run_cli(app.env, "deployments", "create", "--name", "chat", "--model", MODEL)
        app.refresh()  # what the server's periodic re-read does
        assert held.begun.wait(DEADLINE), "the model deployed from the command line did not start"
        held.release.set()


def test_the_command_line_starts_no_model(tmp_path: Path, held: HeldStart) -> None:
    with in_process(tmp_path, (), local_models=[held.spec()]) as app:
        pass
    # The CLI opens the store for one command: deploying there must not load the model.
    with mock.patch("stockade.backends.registry.discover_local_models", lambda: [held.spec()]):
        run_cli(app.env, "deployments", "create", "--name", "chat", "--model", MODEL)
    assert not held.begun.is_set()


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)
