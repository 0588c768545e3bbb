"""Conversations on a resource that keeps message text, and whose agent meets a rate limit: in
process on the fake models with a limiter clock the tests hold still, but for the scripted
evaluation, which needs the real models and so the session's real server."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import App, ManualClock, Server, in_process
from fake_model import CHAT_MODEL, EMBEDDING_MODEL
from stockade.quotas import LocalLimiter
from stockade.routines.parser import parse_routine
from stockade.routines.service import BUILTIN_DIRECTORY

BAA = parse_routine((BUILTIN_DIRECTORY / "baa.md").read_text(), "baa")
# Capacity 1 is 6 requests a minute: one in each 10-second window.
TINY_EMBEDDINGS = "tiny-embeddings"


DEPLOYMENTS = [("gpt-4o", CHAT_MODEL, 100), ("text-embedding-3-small", EMBEDDING_MODEL, 100), (TINY_EMBEDDINGS, EMBEDDING_MODEL, 1)]


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def keeping_app(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[App]:
    with in_process(tmp_path_factory.mktemp("keeping"), DEPLOYMENTS,
                    limiter=LocalLimiter(10, clock=clock), STOCKADE_ROUTINES__KEEP_MESSAGES="true") as running:
        yield running


@pytest.fixture
def http(keeping_app: App) -> Iterator[httpx.Client]:
    with keeping_app.http() as client:
        yield client


def start(http: httpx.Client, **body: str) -> str:
    response = http.post("/routines/conversations", json={"routine": "baa", **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def post(http: httpx.Client, conversation: str, text: str) -> httpx.Response:
    return http.post(f"/routines/conversations/{conversation}/messages", json={"content": text})


def test_with_keep_messages_on_the_conversation_shows_its_messages_in_order(http: httpx.Client) -> None:
    conversation = start(http)
    post(http, conversation, "Hi, I need a BAA.")
    shown = http.get(f"/routines/conversations/{conversation}").json()
    assert shown["messages"] == [
        {"role": "customer", "content": "Hi, I need a BAA."},
        {"role": "agent", "content": BAA.step("1a").text},
    ]


def test_with_keep_messages_on_the_text_is_in_the_store(http: httpx.Client, keeping_app: App) -> None:
    conversation = start(http)
    post(http, conversation, "Hello, BAA please. Keep-canary-51c2")
    with sqlite3.connect(keeping_app.data_dir / "stockade.db") as db:
        stored = db.execute(
            "select content from conversation_messages where conversation_id = ?", (conversation,)
        ).fetchall()
    assert ("Hello, BAA please. Keep-canary-51c2",) in stored


def test_a_turn_over_the_agents_rate_limit_is_a_429_and_leaves_the_conversation_as_it_was(
    http: httpx.Client, keeping_app: App, clock: ManualClock
) -> None:
    conversation = start(http, embeddings_deployment=TINY_EMBEDDINGS)
    post(http, conversation, "Hi, I need a BAA.")  # the opening needs no model
    before = http.get(f"/routines/conversations/{conversation}").json()
    sdk = keeping_app.azure()
    clock.next_window(10)
    sdk.embeddings.create(model=TINY_EMBEDDINGS, input="the window's one request")

    refused = post(http, conversation, "It's for the API.")

    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert TINY_EMBEDDINGS in refused.json()["error"]["message"]
    after = http.get(f"/routines/conversations/{conversation}").json()
    assert (after["step"], after["updated_at"]) == (before["step"], before["updated_at"])
    assert after["trace"] == before["trace"] and after["messages"] == before["messages"]


SHORT_SCRIPT = """
routine: baa
conversations:
- name: api-direct
  turns:
  - customer: Hello, I need a BAA.
    steps: [1a]
  - customer: It's for the API.
    steps: ['2', 2a, 2b, 2c, 2d, 2e, 2i, 2f, '5.1']
    calls: [provide_list_of_zero_retention_endpoints]
  - customer: No, that's all.
    steps: ['6']
    calls: [case_resolution]
  final: {status: resolved, case: resolved}
"""


def test_the_evaluation_waits_out_the_agents_rate_limit(server: Server, tmp_path: Path) -> None:
    script = tmp_path / "short.yaml"
    script.write_text(SHORT_SCRIPT)
    tiny = f"tiny-{uuid.uuid4().hex[:6]}"
    server.cli("deployments", "create", "--name", tiny, "--model", "universal-sentence-encoder-multilingual-v3",
               "--capacity", "1")
    server.settle()
    # The tiny deployment takes one request per window: the evaluation meets 429s and waits them out.
    result = server.cli(
        "--json", "--endpoint", server.url, "--api-key", server.key,
        "routines", "eval", str(script), "--runs", "1", "--deployment", "gpt-4o", "--embeddings-deployment", tiny,
    )
    (report,) = json.loads(result.stdout)["sets"]
    assert (report["passed"], report["step_adherence"]) == (1, 1.0)
