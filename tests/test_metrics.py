"""The Prometheus series of calls, read from /metrics of the app in process: requests, tokens,
latency, time to first token and per output token, 429s by reason, local models' workers.
Deployments are created per test, so each test's series start at zero."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_batch_jobs import IDLE_RUNNER, TOO_LONG, create, line, run_to_end, runner, upload

from conftest import App, ManualClock, in_process, on_manual_clock
from fake_model import CHAT_MODEL, EMBEDDING_MODEL
from stockade.access.keys import ROUTINES_AGENT, Principal
from stockade.access.roles import OPENAI_USER, Grant
from stockade.telemetry import metrics

WINDOW = 10
SAY_HI = [{"role": "user", "content": "Say hi"}]


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[App]:
    with on_manual_clock(tmp_path_factory.mktemp("metrics"), clock, WINDOW) as running:
        yield running


@pytest.fixture
def admin(app: App, clock: ManualClock) -> Iterator[httpx.Client]:
    clock.next_window(WINDOW)
    with app.http() as client:
        yield client


def deploy(admin: httpx.Client, capacity: int = 60, model: str = CHAT_MODEL) -> str:
    name = f"d-{uuid.uuid4().hex[:8]}"
    response = admin.put(f"/management/deployments/{name}", json={"model": model, "capacity": capacity})
    assert response.status_code == 201, response.text
    return name


def sample(admin: httpx.Client, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` in /metrics whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(admin.get("/metrics").text):
        for found in family.samples:
            if found.name == name and labels.items() <= found.labels.items():
                total += found.value
    return total


def test_a_call_is_counted_by_deployment_model_key_operation_and_status(app: App, admin: httpx.Client) -> None:
    name = deploy(admin)
    app.azure().chat.completions.create(model=name, messages=SAY_HI, max_tokens=3)
    assert sample(admin, "stockade_requests_total", deployment=name, model=CHAT_MODEL, key="key1",
                  operation="ChatCompletions_Create", status="200") == 1


def test_a_refused_call_is_counted_with_its_status(app: App, admin: httpx.Client) -> None:
    name = deploy(admin)
    with pytest.raises(openai.BadRequestError):
        # Past the fake model's context: refused once the deployment is known.
        app.azure().chat.completions.create(model=name, messages=[{"role": "user", "content": TOO_LONG}])
    assert sample(admin, "stockade_requests_total", deployment=name, status="400") == 1


def test_prompt_and_completion_tokens_are_counted(app: App, admin: httpx.Client) -> None:
    name = deploy(admin)
    reply = app.azure().chat.completions.create(model=name, messages=SAY_HI, max_tokens=3)
    assert reply.usage is not None
    assert sample(admin, "stockade_tokens_total", deployment=name, key="key1", type="prompt") == reply.usage.prompt_tokens
    assert sample(admin, "stockade_tokens_total", deployment=name, type="completion") == reply.usage.completion_tokens


def test_embeddings_count_their_input_tokens(app: App, admin: httpx.Client) -> None:
    name = deploy(admin, model=EMBEDDING_MODEL)
    result = app.azure().embeddings.create(model=name, input="a short text")
    assert sample(admin, "stockade_tokens_total", deployment=name, type="prompt") == result.usage.prompt_tokens
    assert sample(admin, "stockade_request_duration_seconds_count", deployment=name,
                  operation="Embeddings_Create") == 1


def test_whole_call_latency_is_observed(app: App, admin: httpx.Client) -> None:
    name = deploy(admin)
    app.azure().chat.completions.create(model=name, messages=SAY_HI, max_tokens=3)
    assert sample(admin, "stockade_request_duration_seconds_count", deployment=name,
                  operation="ChatCompletions_Create") == 1
    assert sample(admin, "stockade_request_duration_seconds_sum", deployment=name) > 0


def test_a_stream_observes_time_to_first_token_and_per_output_token(app: App, admin: httpx.Client) -> None:
    name = deploy(admin)
    chunks = list(app.azure().chat.completions.create(model=name, messages=SAY_HI, max_tokens=5, stream=True))
    assert chunks
    assert sample(admin, "stockade_time_to_first_token_seconds_count", deployment=name, model=CHAT_MODEL) == 1
    assert sample(admin, "stockade_time_per_output_token_seconds_count", deployment=name) == 1
    first = sample(admin, "stockade_time_to_first_token_seconds_sum", deployment=name)
    whole = sample(admin, "stockade_request_duration_seconds_sum", deployment=name)
    assert 0 < first <= whole


def test_a_whole_reply_observes_time_to_first_token_too(app: App, admin: httpx.Client) -> None:
    name = deploy(admin)
    app.azure().chat.completions.create(model=name, messages=SAY_HI, max_tokens=5)
    assert sample(admin, "stockade_time_to_first_token_seconds_count", deployment=name) == 1


def test_a_deployments_request_limit_counts_a_429_with_its_reason(app: App, admin: httpx.Client) -> None:
    name = deploy(admin, capacity=1)  # 6 RPM: one call per 10-second window
    app.azure().chat.completions.create(model=name, messages=SAY_HI, max_tokens=3)
    with pytest.raises(openai.RateLimitError):
        app.azure().chat.completions.create(model=name, messages=SAY_HI, max_tokens=3)
    assert sample(admin, "stockade_throttled_requests_total", deployment=name, key="key1",
                  reason="deployment_requests") == 1
    assert sample(admin, "stockade_requests_total", deployment=name, status="429") == 1


def test_a_keys_token_limit_counts_a_429_under_the_keys_name(app: App, admin: httpx.Client) -> None:
    name = deploy(admin)
    key_name = f"k-{uuid.uuid4().hex[:6]}"
    created = admin.post("/management/keys", json={"name": key_name, "role": "openai-user",
                                                   "tokens_per_minute": 600})  # 100 tokens a window
    key = created.json()["key"]
    app.azure(key).chat.completions.create(model=name, messages=SAY_HI, max_tokens=80)
    with pytest.raises(openai.RateLimitError):
        app.azure(key).chat.completions.create(model=name, messages=SAY_HI, max_tokens=80)
    assert sample(admin, "stockade_throttled_requests_total", deployment=name, key=key_name,
                  reason="key_tokens") == 1


def test_a_local_models_workers_and_queue_are_what_healthz_reports(app: App, admin: httpx.Client) -> None:
    app.azure().chat.completions.create(model=deploy(admin), messages=SAY_HI, max_tokens=3)
    state = admin.get("/healthz").json()["models"][CHAT_MODEL]
    assert sample(admin, "stockade_model_workers", model=CHAT_MODEL) == state["workers"]
    assert sample(admin, "stockade_model_busy_workers", model=CHAT_MODEL) == state["busy"]
    assert sample(admin, "stockade_model_queue_depth", model=CHAT_MODEL) == state["waiting"]


def test_callers_are_labelled_by_their_name_in_the_store_and_others_as_other() -> None:
    assert metrics.key_label(Principal(id="k-1", name="team-a", grants=(Grant(OPENAI_USER),))) == "team-a"
    assert metrics.key_label(ROUTINES_AGENT) == "routines agent"
    # An Entra identity the store has no name for: its object id would grow the series unbounded.
    unnamed = "6f1d3c2e-0000-4000-8000-000000000000"
    assert metrics.key_label(Principal(id=unnamed, name=unnamed, grants=(Grant(OPENAI_USER),), kind="entra")) == "other"
    # A token from a trusted issuer for an identity with no role here: named by its client id.
    assert metrics.key_label(Principal(id=unnamed, name="some-client-id", grants=(), kind="entra")) == "other"
    assert metrics.key_label(None) == "other"


def test_batch_lines_are_counted_by_outcome(tmp_path: Path) -> None:
    with in_process(tmp_path, **IDLE_RUNNER) as batch_app, batch_app.http() as client:
        before = {outcome: sample(client, "stockade_batch_lines_total", outcome=outcome)
                  for outcome in ("completed", "failed")}
        view = create(batch_app, upload(batch_app, [line("fine"), line("long", TOO_LONG)]))
        run_to_end(batch_app, runner(batch_app), view.record.id)
        assert sample(client, "stockade_batch_lines_total", outcome="completed") == before["completed"] + 1
        assert sample(client, "stockade_batch_lines_total", outcome="failed") == before["failed"] + 1


def test_batch_lines_tokens_are_counted_with_the_calls_tokens(tmp_path: Path) -> None:
    with in_process(tmp_path, **IDLE_RUNNER) as batch_app, batch_app.http() as client:
        kinds = ("prompt", "completion")
        before = {kind: sample(client, "stockade_tokens_total", type=kind, key="key1") for kind in kinds}
        view = create(batch_app, upload(batch_app, [line("fine")]))
        run_to_end(batch_app, runner(batch_app), view.record.id)
        batch_app.flush_usage()
        (record,) = [r for r, _ in batch_app.resource.store.recent_usage(10) if r.batch_id == view.record.id]
        counted = {kind: sample(client, "stockade_tokens_total", type=kind, key="key1") - before[kind] for kind in kinds}
        assert counted == {"prompt": record.prompt_tokens, "completion": record.completion_tokens}
