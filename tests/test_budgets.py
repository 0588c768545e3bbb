"""Budgets in process, over the fake models: holds that refuse a call which could overspend, under
concurrency too; thresholds that fire once per period to a webhook and the audit log; periods on
an injected clock; every route that spends (classic, v1, batch lines); the management API and the
command line.

Prices are one currency unit per token in and out, so a chat call of "Hello" (2 prompt tokens)
with max_tokens 10 holds 12 and, the fake model always writing all 10, costs 12.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai import AsyncAzureOpenAI, OpenAI
from prometheus_client import REGISTRY
from test_batch_jobs import IDLE_RUNNER, contents, create, line, run_to_end, runner, upload

from conftest import API_VERSION, App, in_process
from fake_model import CHAT_MODEL, EMBEDDING_MODEL
from json_server import serve_json
from stockade.billing import PROVISIONED
from stockade.store import UsageRecord

CALL_COST = 12.0  # "Hello" (2 prompt tokens) and max_tokens=10, at 1 per token


def priced(app: App, model: str = CHAT_MODEL, per_token: float = 1.0) -> None:
    """Give ``model`` a price of ``per_token`` for each token in and out, from always on, as
    `stockade prices set` does."""
    per_million = per_token * 1e6
    response = app.http().post("/management/prices", json={
        "model": model, "input_per_million": per_million, "output_per_million": per_million, "effective_from": 0,
    })
    assert response.status_code == 201, response.text


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with in_process(tmp_path, **IDLE_RUNNER) as running:
        priced(running)
        yield running


def budget(app: App, name: str, amount: float, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "scope": "deployment", "target": "gpt-4o", "amount": amount, **fields}
    response = app.http().post("/management/budgets", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def shown(app: App, name: str) -> dict[str, Any]:
    response = app.http().get(f"/management/budgets/{name}")
    assert response.status_code == 200, response.text
    return response.json()


def chat(client: OpenAI, deployment: str = "gpt-4o") -> object:
    return client.chat.completions.create(
        model=deployment, messages=[{"role": "user", "content": "Hello"}], max_tokens=10
    )


def refusals(name: str) -> float:
    return REGISTRY.get_sample_value("stockade_budget_refusals_total", {"budget": name}) or 0.0


# -- holds ---------------------------------------------------------------------------------------


def test_a_hard_budget_refuses_a_call_whose_maximum_cost_would_pass_its_amount(app: App) -> None:
    budget(app, "small", 20, hard=True)
    chat(app.azure())  # holds 12 of 20, then spends 12
    with pytest.raises(openai.RateLimitError) as caught:
        chat(app.azure())  # 12 spent + 12 held > 20
    error = caught.value
    assert error.code == "insufficient_quota"
    assert error.response.headers["x-should-retry"] == "false"
    assert "'small'" in error.message and "12.0000 of its 20 USD" in error.message
    assert "resets at" in error.message
    assert shown(app, "small")["spent"] == CALL_COST


def test_a_budget_that_only_alerts_lets_calls_past_its_amount(app: App) -> None:
    budget(app, "soft", 20)
    for _ in range(3):
        chat(app.azure())
    assert shown(app, "soft")["spent"] == 3 * CALL_COST


def test_the_openai_sdk_does_not_retry_a_call_refused_by_a_budget(app: App) -> None:
    budget(app, "no-retry", 5, hard=True)
    before = refusals("no-retry")
    with pytest.raises(openai.RateLimitError):
        chat(app.sdk(api_key=app.key, max_retries=2))  # the SDK's default retries
    assert refusals("no-retry") == before + 1


def test_concurrent_calls_cannot_together_overspend_a_hard_budget(app: App) -> None:
    budget(app, "shared", 100, hard=True)

    async def burst() -> list[object]:
        transport = httpx2.ASGITransport(app=app.client.app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://stockade.test") as http:
            client = AsyncAzureOpenAI(  # type: ignore[call-overload]
                azure_endpoint="http://stockade.test", api_key=app.key, api_version=API_VERSION,
                http_client=http, max_retries=0,
            )
            calls = [
                client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "Hello"}], max_tokens=10
                )
                for _ in range(30)
            ]
            return await asyncio.gather(*calls, return_exceptions=True)

    results = app.call(burst)
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(results) - len(refused) == 8  # 8 x 12 = 96; a ninth would pass 100
    assert all(r.code == "insufficient_quota" for r in refused)
    state = shown(app, "shared")
    assert state["spent"] == 96 and state["held"] == 0


def test_a_budget_on_another_deployment_costs_this_one_nothing(app: App) -> None:
    budget(app, "elsewhere", 1, hard=True, target="text-embedding-3-small")
    chat(app.azure())
    assert shown(app, "elsewhere")["spent"] == 0


def test_a_key_budget_holds_the_calls_of_that_key_only(app: App) -> None:
    key = app.cli_json("keys", "create", "--name", "team-a", "--role", "openai-user")
    assert isinstance(key, dict)
    budget(app, "team-a", 20, hard=True, scope="key", target="team-a")
    chat(app.azure(key["key"]))
    with pytest.raises(openai.RateLimitError):
        chat(app.azure(key["key"]))
    chat(app.azure())  # key1 spends from no budget
    assert shown(app, "team-a")["spent"] == CALL_COST


def test_a_resource_budget_covers_every_deployment_and_the_v1_route(app: App) -> None:
    budget(app, "everything", 20, hard=True, scope="resource", target=None)
    v1 = OpenAI(base_url=str(app.client.base_url) + "/openai/v1/", api_key=app.key,
                http_client=app.client, max_retries=0)
    chat(v1)
    with pytest.raises(openai.RateLimitError) as caught:
        chat(v1)
    assert caught.value.code == "insufficient_quota"


def test_a_streamed_call_settles_when_its_stream_ends(app: App) -> None:
    budget(app, "streamed", 100, hard=True)
    stream = app.azure().chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hello"}], max_tokens=10, stream=True
    )
    assert shown(app, "streamed")["held"] == CALL_COST  # the stream is under way
    for _ in stream:
        pass
    state = shown(app, "streamed")
    assert state["spent"] == CALL_COST and state["held"] == 0


def test_an_embeddings_call_holds_and_spends_its_input(app: App) -> None:
    priced(app, EMBEDDING_MODEL)
    budget(app, "vectors", 100, hard=True, target="text-embedding-3-small")
    app.azure().embeddings.create(model="text-embedding-3-small", input="one two three")
    assert shown(app, "vectors")["spent"] == 3


def test_a_call_on_a_provisioned_deployment_costs_nothing(app: App) -> None:
    budget(app, "provisioned", 1, hard=True)
    app.resource.store.update_deployment("gpt-4o", app.settings.limits.default_quota, sku=PROVISIONED)
    app.refresh()
    for _ in range(3):
        chat(app.azure())
    assert shown(app, "provisioned")["spent"] == 0


def test_a_model_without_a_price_holds_nothing(app: App) -> None:
    response = app.http().delete(f"/management/prices/{CHAT_MODEL}", params={"effective_from": 0})
    assert response.status_code == 204, response.text
    budget(app, "unpriced", 1, hard=True)
    for _ in range(3):
        chat(app.azure())
    assert shown(app, "unpriced")["spent"] == 0


def test_a_batch_line_refused_by_a_hard_budget_fails_with_that_error_in_its_output(app: App) -> None:
    budget(app, "batches", 10, hard=True)  # a line holds 12 at the batch price of 6: one fits
    view = create(app, upload(app, [line("first", max_tokens=10), line("second", max_tokens=10)]))
    done = run_to_end(app, runner(app, concurrency=1), view.record.id)
    assert done["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    [failure] = contents(app, done["error_file_id"])
    assert failure["response"]["status_code"] == 429
    assert failure["response"]["body"]["error"]["code"] == "insufficient_quota"
    assert shown(app, "batches")["spent"] == CALL_COST / 2  # the batch discount


# -- periods -------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_new_period_starts_with_nothing_spent(app: App) -> None:
    clock = Clock(time.time())
    app.resource.spending.clock = clock
    budget(app, "daily", 20, hard=True, period="day")
    chat(app.azure())
    with pytest.raises(openai.RateLimitError) as caught:
        chat(app.azure())
    until_reset = int(caught.value.response.headers["retry-after-ms"])
    assert until_reset == pytest.approx((shown(app, "daily")["period_end"] - clock.now) * 1000, abs=1000)
    clock.now += 86_400
    chat(app.azure())
    state = shown(app, "daily")
    assert state["spent"] == CALL_COST and state["period_start"] <= clock.now < state["period_end"]


def test_a_period_is_seeded_from_the_costs_the_store_recorded_in_it(app: App) -> None:
    now = time.time()
    recorded = [
        UsageRecord(now, "earlier-call", "ChatCompletions_Create", "gpt-4o", CHAT_MODEL, None, 200, 5, 5, 1.0, cost=7.5),
        UsageRecord(now - 40 * 86_400, "last-period", "ChatCompletions_Create", "gpt-4o", CHAT_MODEL, None, 200,
                    5, 5, 1.0, cost=100.0),
    ]
    app.resource.store.insert_usage(recorded)
    budget(app, "seeded", 20, hard=True)
    assert shown(app, "seeded")["spent"] == 7.5
    chat(app.azure())  # 7.5 spent + 12 held: within 20
    with pytest.raises(openai.RateLimitError):
        chat(app.azure())  # 19.5 spent + 12 held: past it


# -- alerts --------------------------------------------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[Any]]]:
    received: list[Any] = []
    lock = threading.Lock()

    def answer(method: str, path: str, body: Any) -> Any:
        with lock:
            received.append(body)
        return {}

    with serve_json(answer) as port:
        yield f"http://127.0.0.1:{port}/alerts", received


def test_each_threshold_fires_its_webhook_and_an_audit_entry_once_per_period(
    app: App, webhook: tuple[str, list[Any]]
) -> None:
    url, received = webhook
    budget(app, "alerting", 30, webhook=url)
    for _ in range(4):  # 12 (40%), 24 (80%: 0.5 and 0.8 fire), 36 (1.0 fires), 48 (nothing new)
        chat(app.azure())
        app.call(app.resource.spending.alerts.drain)
    assert sorted(alert["threshold"] for alert in received) == [0.5, 0.8, 1.0]
    first = min(received, key=lambda alert: alert["threshold"])
    assert first == {
        "budget": "alerting", "scope": "deployment", "target": "gpt-4o", "period": "month",
        "period_start": first["period_start"], "period_end": first["period_end"],
        "threshold": 0.5, "spent": 24.0, "amount": 30.0, "currency": "USD",
    }
    audited = app.call(app.resource.access.audit, 50, "budgets.alert")
    assert len(audited) == 3 and all(event.status == 200 for event in audited)
    assert shown(app, "alerting")["alerts_fired"] == [0.5, 0.8, 1.0]


def test_a_threshold_another_replica_fired_is_not_fired_again(app: App, webhook: tuple[str, list[Any]]) -> None:
    url, received = webhook
    state = budget(app, "once", 20, webhook=url, thresholds=[0.5])
    assert app.resource.store.budgets.fire("once", state["period_start"], 0.5, 10.0, 0.0)  # the other replica
    chat(app.azure())
    app.call(app.resource.spending.alerts.drain)
    assert received == []


def test_an_unreachable_webhook_is_logged_and_audited_not_raised(app: App) -> None:
    budget(app, "unreachable", 10, webhook="http://127.0.0.1:9/alerts", thresholds=[0.5])
    chat(app.azure())
    app.call(app.resource.spending.alerts.drain)
    [event] = app.call(app.resource.access.audit, 50, "budgets.alert")
    assert event.status == 0


def test_thresholds_fire_again_in_a_new_period(app: App, webhook: tuple[str, list[Any]]) -> None:
    url, received = webhook
    clock = Clock(time.time())
    app.resource.spending.clock = clock
    budget(app, "each-day", 20, period="day", thresholds=[0.5], webhook=url)
    chat(app.azure())
    app.call(app.resource.spending.alerts.drain)
    clock.now += 86_400
    chat(app.azure())
    app.call(app.resource.spending.alerts.drain)
    starts = [alert["period_start"] for alert in received]
    assert len(starts) == 2 and starts[1] - starts[0] == 86_400


# -- the management API --------------------------------------------------------------------------


def test_a_budget_is_created_shown_listed_updated_and_deleted(app: App) -> None:
    created = budget(app, "crud", 50, hard=True, thresholds=[0.9, 0.5])
    assert created["thresholds"] == [0.5, 0.9] and created["spent"] == 0 and created["held"] == 0
    assert created["currency"] == "USD" and created["alerts_fired"] == []
    listed = app.http().get("/management/budgets").json()
    assert listed["object"] == "list" and [b["name"] for b in listed["data"]] == ["crud"]
    assert set(listed["data"][0]) == {
        "name", "scope", "target", "period", "amount", "currency", "thresholds", "hard", "webhook",
        "period_start", "period_end", "spent", "held", "alerts_fired",
    }
    updated = app.http().patch("/management/budgets/crud", json={"amount": 75, "hard": False}).json()
    assert updated["amount"] == 75 and updated["hard"] is False and updated["thresholds"] == [0.5, 0.9]
    assert app.http().delete("/management/budgets/crud").status_code == 204
    assert app.http().get("/management/budgets/crud").status_code == 404
    actions = [event.action for event in app.call(app.resource.access.audit, 50, None)]
    assert {"budgets.create", "budgets.update", "budgets.delete"} <= set(actions)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -1}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"scope": "team"}, "scope"),
        ({"period": "week"}, "period"),
        ({"thresholds": []}, "thresholds"),
        ({"thresholds": [0]}, "thresholds"),
        ({"webhook": "ftp://hooks.example/x"}, "webhook"),
        ({"webhook": "not a url"}, "webhook"),
        ({"name": "a/b"}, "name"),
        ({"scope": "resource", "target": "gpt-4o"}, "target"),
        ({"scope": "key", "target": None}, "target"),
        ({"scope": "key", "target": "nobody"}, "target"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_budget_is_refused_with_a_400_naming_the_field(app: App, body: dict[str, Any], param: str) -> None:
    sent = {"name": "bad", "scope": "deployment", "target": "gpt-4o", "amount": 10, **body}
    response = app.http().post("/management/budgets", json=sent)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"].startswith(param)


def test_a_budget_of_a_deployment_that_does_not_exist_is_refused(app: App) -> None:
    response = app.http().post(
        "/management/budgets", json={"name": "ghost", "scope": "deployment", "target": "ghost", "amount": 1}
    )
    assert response.status_code == 404


def test_a_second_budget_of_the_same_name_is_a_conflict(app: App) -> None:
    budget(app, "twice", 10)
    response = app.http().post("/management/budgets", json={"name": "twice", "scope": "resource", "amount": 1})
    assert response.status_code == 409


def test_an_update_may_not_null_a_required_field(app: App) -> None:
    budget(app, "kept", 10)
    response = app.http().patch("/management/budgets/kept", json={"amount": None})
    assert response.status_code == 400 and response.json()["error"]["param"] == "amount"


def test_a_caller_without_the_quota_permission_may_not_create_a_budget(app: App) -> None:
    key = app.cli_json("keys", "create", "--name", "user", "--role", "openai-user")
    assert isinstance(key, dict)
    response = app.http(key["key"]).post("/management/budgets", json={"name": "x", "scope": "resource", "amount": 1})
    assert response.json()["error"]["code"] == "PermissionDenied"  # 401, as Azure answers it
    assert app.http(key["key"]).get("/management/budgets").json()["error"]["code"] == "PermissionDenied"


# -- the command line ----------------------------------------------------------------------------


def test_the_cli_creates_lists_shows_updates_and_deletes_budgets(app: App) -> None:
    app.cli("budgets", "create", "monthly", "--amount", "40", "--scope", "deployment", "--target", "gpt-4o",
            "--hard", "--threshold", "0.5", "--threshold", "1")
    # The command line reads the store, whose usage records carry each call's cost.
    app.resource.store.insert_usage(
        [UsageRecord(time.time(), "a-call", "ChatCompletions_Create", "gpt-4o", CHAT_MODEL, None, 200, 2, 10, 1.0, cost=12.0)]
    )
    table = app.cli("budgets", "list").stdout
    assert "monthly" in table and "12.00 / 40.00 USD" in table and "━" in table
    shown_json = app.cli_json("budgets", "show", "monthly")
    assert isinstance(shown_json, dict) and shown_json["spent"] == CALL_COST and shown_json["hard"] is True
    updated = app.cli_json("budgets", "update", "monthly", "--amount", "80", "--soft")
    assert isinstance(updated, dict) and updated["amount"] == 80 and updated["hard"] is False
    app.cli("budgets", "delete", "monthly")
    assert app.cli_json("budgets", "list") == []


def test_the_cli_explains_a_bad_budget(app: App) -> None:
    result = app.cli("budgets", "create", "bad", "--amount", "-5", check=False)
    assert result.returncode == 1 and "amount" in result.stderr


def test_a_routine_conversation_is_held_to_the_budgets_of_the_deployments_it_calls(app: App) -> None:
    priced(app, EMBEDDING_MODEL)
    budget(app, "agents", 1, hard=True, scope="resource", target=None)  # less than any call holds
    http = app.http()
    conversation = http.post("/routines/conversations", json={"routine": "baa"}).json()
    messages = f"/routines/conversations/{conversation['id']}/messages"
    assert http.post(messages, json={"content": "Hello, I need a BAA."}).status_code == 200  # the routine's own words
    response = http.post(messages, json={"content": "For the API, please."})  # classified by the models
    assert response.status_code == 429
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["code"] == "insufficient_quota" and "over budget" in error["message"] and "'agents'" in error["message"]
