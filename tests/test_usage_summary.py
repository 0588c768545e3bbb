"""GET /management/usage/summary and `stockade usage summary`: totals per deployment, key, model
or day, as the console and the CLI read them."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import App, in_process
from fake_model import CHAT_MODEL, EMBEDDING_MODEL

HELLO = [{"role": "user", "content": "hello there"}]  # 2 prompt tokens on the fake model
PRICES = [  # the chat model's price since 2020, and an older one no call here was made under
    {"model": CHAT_MODEL, "input_per_million": 1.0, "output_per_million": 1.0},
    {"model": CHAT_MODEL, "input_per_million": 1000.0, "output_per_million": 2000.0, "hourly_rate": 3.0,
     "effective_from": "2020-01-01"},
]
ROW = {"group", "calls", "prompt_tokens", "completion_tokens", "cost", "errors", "throttled",
       "latency_p50_ms", "latency_p95_ms"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with in_process(
        tmp_path_factory.mktemp("summary"),
        (("gpt-4o", CHAT_MODEL, 100), ("text-embedding-3-small", EMBEDDING_MODEL, 100)),
        STOCKADE_BILLING__CURRENCY="EUR",
        STOCKADE_BILLING__PRICES=json.dumps(PRICES),
    ) as running:
        yield running


def new_key(app: App, role: str = "openai-user") -> dict:
    return app.cli_json("keys", "create", "--name", f"sum-{uuid.uuid4().hex[:6]}", "--role", role)  # type: ignore[return-value]


def chat(app: App, key: str, times: int = 1) -> tuple[int, int]:
    """Chat calls with ``key``; the prompt and completion tokens the SDK saw them use, and their
    usage written, as the periodic batch would (the CLI reads the store)."""
    client = app.azure(key)
    used = [client.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=3).usage for _ in range(times)]
    app.flush_usage()
    return sum(u.prompt_tokens for u in used if u), sum(u.completion_tokens for u in used if u)


def summary(app: App, credential: str | None = None, **params: str) -> dict:
    with app.http(credential) as http:
        response = http.get("/management/usage/summary", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def refused(app: App, **params: str) -> dict:
    with app.http() as http:
        response = http.get("/management/usage/summary", params=params)
    assert response.status_code == 400, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


def test_a_summary_by_key_has_the_contracts_shape_and_the_calls_cost(app: App) -> None:
    key = new_key(app)
    prompt, completion = chat(app, key["key"], times=3)
    found = summary(app, by="key", key=key["name"])
    assert set(found) == {"object", "by", "since", "until", "currency", "data", "total"}
    assert (found["object"], found["by"], found["currency"]) == ("list", "key", "EUR")
    assert found["until"] - found["since"] == 30 * 86400
    (row,) = found["data"]
    assert set(row) == ROW and set(found["total"]) == ROW - {"group"}
    assert (row["group"], row["calls"], row["prompt_tokens"], row["completion_tokens"]) == (key["name"], 3, prompt, completion)
    assert row["cost"] == pytest.approx((prompt * 1000 + completion * 2000) / 1e6)
    assert (row["errors"], row["throttled"]) == (0, 0)
    assert 0 < row["latency_p50_ms"] <= row["latency_p95_ms"]
    assert {k: v for k, v in row.items() if k != "group"} == found["total"]


def test_errors_and_429s_are_counted_apart(app: App) -> None:
    key = new_key(app)
    app.cli("keys", "update", key["id"], "--rpm", "1")
    statuses = []
    with app.http(key["key"]) as http:
        for body in ({"messages": "not a list"}, {"messages": HELLO, "max_tokens": 1}, {"messages": HELLO}):
            statuses.append(http.post(
                "/openai/deployments/gpt-4o/chat/completions", params={"api-version": "2024-10-21"}, json=body,
            ).status_code)
    assert statuses == [400, 200, 429]
    total = summary(app, by="model", key=key["id"])["total"]
    assert (total["calls"], total["errors"], total["throttled"]) == (3, 1, 1)


def test_an_unpriced_model_costs_null_and_a_priced_one_a_number(app: App) -> None:
    key = new_key(app)
    chat(app, key["key"])
    app.azure(key["key"]).embeddings.create(model="text-embedding-3-small", input="hello")
    rows = {row["group"]: row for row in summary(app, by="model", key=key["name"])["data"]}
    assert rows[EMBEDDING_MODEL]["cost"] is None and rows[CHAT_MODEL]["cost"] > 0
    assert list(rows) == [CHAT_MODEL, EMBEDDING_MODEL]  # by cost, highest first


def test_a_summary_by_day_names_utc_days_in_order(app: App) -> None:
    key = new_key(app)
    chat(app, key["key"])
    found = summary(app, by="day", key=key["name"], since="2026-01-01", until=str(time.time() + 60))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert [row["group"] for row in found["data"]] == [today]
    assert found["since"] == 1767225600.0


def test_a_range_without_the_calls_has_no_rows_and_null_totals(app: App) -> None:
    found = summary(app, by="deployment", since="2021-01-01", until="2021-01-02T00:00:00Z")
    assert found["data"] == []
    assert found["total"] == {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": None, "errors": 0,
                              "throttled": 0, "latency_p50_ms": None, "latency_p95_ms": None}


def test_an_openai_user_key_sees_the_totals_of_its_own_calls_only(app: App) -> None:
    mine, theirs = new_key(app), new_key(app)
    chat(app, mine["key"], times=2)
    chat(app, theirs["key"])
    found = summary(app, mine["key"], by="key")
    assert [(row["group"], row["calls"]) for row in found["data"]] == [(mine["name"], 2)]
    assert summary(app, mine["key"], by="key", key=theirs["name"])["data"] == []


def test_a_contributor_sees_everyones_totals(app: App) -> None:
    user, contributor = new_key(app), new_key(app, "contributor")
    chat(app, user["key"])
    groups = {row["group"] for row in summary(app, contributor["key"], by="key")["data"]}
    assert user["name"] in groups


def test_a_revoked_keys_calls_still_show_under_its_name(app: App) -> None:
    key = new_key(app)
    chat(app, key["key"])
    app.cli("keys", "revoke", key["id"])
    (row,) = summary(app, by="key", key=key["name"])["data"]
    assert (row["group"], row["calls"]) == (key["name"], 1)


@pytest.mark.parametrize("by", [None, "", "hour", "deployment,key"])
def test_a_bad_by_is_a_400_naming_the_choices(app: App, by: str | None) -> None:
    error = refused(app, **({} if by is None else {"by": by}))
    assert error["param"] == "by" and "deployment, key, model, day" in error["message"]


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "nan", "-5", "1e400", "2026-12-01T25:00"])
def test_a_bad_date_is_a_400_saying_what_is_accepted(app: App, since: str) -> None:
    error = refused(app, by="day", since=since)
    assert error["param"] == "since" and "ISO 8601" in error["message"]
    assert error["code"] == "invalid_request_error"


def test_since_after_until_is_a_400(app: App) -> None:
    assert refused(app, by="day", since="2026-12-02", until="2026-12-01")["param"] == "since"


def test_an_unknown_key_is_a_400(app: App) -> None:
    error = refused(app, by="day", key="no-such-key")
    assert error["param"] == "key" and "stockade keys list" in error["message"]


# -- provisioned deployments --------------------------------------------------------------------


def test_a_provisioned_deployment_costs_its_hours_and_nothing_per_token(app: App) -> None:
    name = f"ptu-{uuid.uuid4().hex[:6]}"
    created = app.cli_json("deployments", "create", "--name", name, "--model", CHAT_MODEL, "--capacity", "2",
                           "--sku", "ProvisionedManaged")
    assert created["sku"] == "ProvisionedManaged"  # type: ignore[index]
    app.azure().chat.completions.create(model=name, messages=HELLO, max_tokens=3)
    app.flush_usage()
    record = next(r for r in app.cli_json("usage", "list", "--deployment", name))  # type: ignore[union-attr]
    assert record["cost"] == 0.0
    since = created["created_at"]  # type: ignore[index]
    until = since + 1800
    (row,) = summary(app, by="deployment", deployment=name, since=str(since), until=str(until))["data"]
    assert row["cost"] == pytest.approx(2 * 3.0 * 0.5)  # 2 PTUs for half an hour at 3.0 an hour
    by_key = summary(app, by="key", deployment=name, since=str(since), until=str(until))
    assert by_key["total"]["cost"] == 0.0  # hours are no caller's


def test_the_sku_can_be_changed_and_a_wrong_one_is_a_400(app: App) -> None:
    name = f"sku-{uuid.uuid4().hex[:6]}"
    app.cli("deployments", "create", "--name", name, "--model", CHAT_MODEL, "--capacity", "1")
    changed = app.cli_json("deployments", "update", name, "--sku", "ProvisionedManaged")
    assert changed["sku"] == "ProvisionedManaged"  # type: ignore[index]
    with app.http() as http:
        response = http.patch(f"/management/deployments/{name}", json={"sku": "Premium"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "sku"


# -- the command line ---------------------------------------------------------------------------


def test_the_cli_summary_prints_a_table_with_a_total(app: App) -> None:
    key = new_key(app)
    chat(app, key["key"])
    shown = app.cli("usage", "summary", "--by", "key", "--key", key["name"]).stdout
    assert key["name"] in shown and "total" in shown and "EUR" in shown


def test_the_cli_summary_exports_csv_with_a_total_row(app: App) -> None:
    key = new_key(app)
    prompt, completion = chat(app, key["key"], times=2)
    rows = list(csv.DictReader(io.StringIO(
        app.cli("usage", "summary", "--by", "key", "--key", key["name"], "--format", "csv").stdout
    )))
    assert [(r["group"], r["calls"], r["completion_tokens"]) for r in rows] == [
        (key["name"], "2", str(completion)), ("total", "2", str(completion))]
    assert float(rows[0]["cost"]) == pytest.approx((prompt * 1000 + completion * 2000) / 1e6)
    assert set(rows[0]) == ROW | {"currency"}


def test_the_cli_summary_writes_json_to_a_file(app: App, tmp_path: Path) -> None:
    key = new_key(app)
    chat(app, key["key"])
    out = tmp_path / "summary.json"
    app.cli("usage", "summary", "--by", "day", "--key", key["name"], "--format", "json", "--output", str(out),
            "--since", "2026-01-01")
    written = json.loads(out.read_text())
    assert written["by"] == "day" and written["total"]["calls"] == 1


def test_the_cli_summary_refuses_a_bad_date_with_the_apis_message(app: App) -> None:
    result = app.cli("usage", "summary", "--by", "day", "--since", "soon", check=False)
    assert result.returncode == 1 and "ISO 8601" in result.stderr


def test_usage_list_takes_a_key_and_a_time_range(app: App) -> None:
    key, other = new_key(app), new_key(app)
    chat(app, key["key"], times=2)
    chat(app, other["key"])
    listed = app.cli_json("usage", "list", "--key", key["name"], "--since", "2026-01-01")
    assert [r["key_id"] for r in listed] == [key["id"]] * 2  # type: ignore[union-attr]
    assert app.cli_json("usage", "list", "--key", key["name"], "--until", "2026-01-01") == []


@pytest.mark.parametrize("route", ["/management/usage/summary", "/management/usage"])
@pytest.mark.parametrize("param", ["deployment", "key"])
def test_a_nul_in_a_filter_is_a_400(app: App, route: str, param: str) -> None:
    with app.http() as http:
        response = http.get(route, params={"by": "day", param: "a\x00b"})
    assert response.status_code == 400 and response.json()["error"]["param"] == param
