"""Prices: set in stockade.toml and through `stockade prices …`, dated so that past usage keeps
its price; every usage record carries its cost when written."""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
import uuid
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from conftest import App, in_process
from fake_model import CHAT_MODEL, EMBEDDING_MODEL
from stockade.billing.prices import PROVISIONED, Price, PriceTable, combined
from stockade.config import Settings
from stockade.store import UsageRecord

HELLO = [{"role": "user", "content": "hello there"}]
CONFIGURED = [{"model": EMBEDDING_MODEL, "input_per_million": 0.02, "output_per_million": 0.0,
               "effective_from": "2025-01-01"}]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with in_process(
        tmp_path_factory.mktemp("prices"),
        (("gpt-4o", CHAT_MODEL, 100), ("text-embedding-3-small", EMBEDDING_MODEL, 100)),
        STOCKADE_BILLING__PRICES=json.dumps(CONFIGURED),
    ) as running:
        yield running


def record(**changes: object) -> UsageRecord:
    base = UsageRecord(1_800_000_000.0, "r", "chat.completions", "gpt-4o", "m", "k", 200, 1_000_000, 500_000, 5.0)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def cost_of_last_call(app: App, deployment: str = "gpt-4o") -> float | None:
    app.azure().chat.completions.create(model=deployment, messages=HELLO, max_tokens=2)
    app.flush_usage()
    (last,) = app.resource.store.recent_usage(1, deployment)
    return last[0].cost


def set_price(app: App, model: str, *args: str) -> dict:
    return app.cli_json("prices", "set", model, *args)  # type: ignore[return-value]


# -- the price table -----------------------------------------------------------------------------


def test_a_call_is_priced_by_the_row_in_effect_when_it_was_made() -> None:
    table = PriceTable([Price("m", 100.0, 1.0, 2.0), Price("m", 200.0, 10.0, 20.0)])
    assert table.cost("m", 1_000_000, 0, at=150.0) == 1.0
    assert table.cost("m", 1_000_000, 0, at=200.0) == 10.0
    assert table.cost("m", 1_000_000, 0, at=99.0) is None
    assert table.cost("other", 1_000_000, 0, at=150.0) is None


def test_a_batch_line_gets_the_batch_discount() -> None:
    table = PriceTable([Price("m", 0.0, 2.0, 4.0, batch_discount=0.5)])
    assert table.cost("m", 1_000_000, 1_000_000, at=1.0, batch=True) == 3.0


def test_a_stored_price_replaces_the_configured_one_of_the_same_date_only() -> None:
    table = combined([Price("m", 0.0, 1.0, 1.0), Price("m", 50.0, 2.0, 2.0)], [Price("m", 50.0, 3.0, 3.0)])
    assert [(p.effective_from, p.input_per_million) for p in table] == [(0.0, 1.0), (50.0, 3.0)]


# -- records priced when written -------------------------------------------------------------------


def test_the_resource_prices_a_batch_line_at_the_discount(app: App) -> None:
    set_price(app, "m", "--input", "2", "--output", "4", "--from", "2020-01-01", "--batch-discount", "0.25")
    app.refresh()
    assert app.resource.priced(record()).cost == 4.0
    assert app.resource.priced(record(batch_id="batch_1")).cost == 3.0


def test_a_record_whose_model_has_no_price_costs_null(app: App) -> None:
    assert app.resource.priced(record(model="unpriced")).cost is None
    assert app.resource.priced(record(model=None)).cost is None


def test_a_price_change_keeps_the_cost_of_calls_made_before_it(app: App) -> None:
    set_price(app, CHAT_MODEL, "--input", "1000000", "--output", "0", "--from", "2020-01-01")
    before = cost_of_last_call(app)
    set_price(app, CHAT_MODEL, "--input", "3000000", "--output", "0", "--from", str(time.time()))
    after = cost_of_last_call(app)
    assert before is not None and after == pytest.approx(3 * before)
    (first,) = [r for r, _ in app.resource.store.recent_usage(2, "gpt-4o")][1:]
    assert first.cost == before


def test_a_provisioned_deployments_calls_cost_nothing_per_token(app: App) -> None:
    set_price(app, CHAT_MODEL, "--input", "5", "--output", "5", "--from", "2020-01-01", "--hourly-rate", "2")
    name = f"ptu-{uuid.uuid4().hex[:6]}"
    app.cli("deployments", "create", "--name", name, "--model", CHAT_MODEL, "--capacity", "1", "--sku", PROVISIONED)
    assert cost_of_last_call(app, name) == 0.0


def test_a_configured_price_applies_without_any_command(app: App) -> None:
    app.azure().embeddings.create(model="text-embedding-3-small", input="hello there world")
    app.flush_usage()
    (last,) = app.resource.store.recent_usage(1, "text-embedding-3-small")
    assert last[0].cost == pytest.approx(last[0].prompt_tokens * 0.02 / 1e6)


# -- stockade prices ---------------------------------------------------------------------------------


def test_prices_list_shows_configured_and_stored_rows_with_their_source(app: App) -> None:
    set_price(app, "listed-model", "--input", "2.5", "--output", "10", "--from", "2026-01-01")
    listed = {(p["model"], p["effective_from"]): p for p in app.cli_json("prices", "list")}  # type: ignore[union-attr]
    assert listed[("listed-model", 1767225600.0)]["source"] == "store"
    assert listed[(EMBEDDING_MODEL, 1735689600.0)]["source"] == "config"
    table = app.cli("prices", "list").stdout
    assert "listed-model" in table and "2026-01-01T00:00:00Z" in table and "stockade.toml" in table


def test_a_stored_price_can_be_deleted_by_its_date(app: App) -> None:
    set_price(app, "doomed", "--input", "1", "--output", "1", "--from", "2026-02-01")
    app.cli("prices", "delete", "doomed", "--from", "2026-02-01T00:00:00Z")
    assert not [p for p in app.cli_json("prices", "list") if p["model"] == "doomed"]  # type: ignore[union-attr]
    again = app.cli("prices", "delete", "doomed", "--from", "2026-02-01", check=False)
    assert again.returncode == 1 and "stockade prices list" in again.stderr


def test_a_configured_price_cannot_be_deleted_through_the_api(app: App) -> None:
    result = app.cli("prices", "delete", EMBEDDING_MODEL, "--from", "2025-01-01", check=False)
    assert result.returncode == 1 and "stockade.toml" in result.stderr


def test_price_changes_are_audited(app: App) -> None:
    set_price(app, "audited", "--input", "1", "--output", "1", "--from", "2026-03-01")
    app.cli("prices", "delete", "audited", "--from", "2026-03-01")
    actions = [(e["action"], e["target"]) for e in app.cli_json("audit", "list", "--action", "prices.")]  # type: ignore[union-attr]
    assert ("prices.set", "audited from 1772323200.0") in actions
    assert ("prices.delete", "audited from 1772323200.0") in actions


@pytest.mark.parametrize("body", [
    {"model": "m", "input_per_million": -1, "output_per_million": 1},
    {"model": "m", "input_per_million": 1},
    {"model": "m", "input_per_million": 1, "output_per_million": 1, "batch_discount": 2},
    {"model": "m", "input_per_million": 1, "output_per_million": 1, "effective_from": "someday"},
    {"model": "", "input_per_million": 1, "output_per_million": 1},
    {"model": "m\x00", "input_per_million": 1, "output_per_million": 1},
])
def test_a_bad_price_is_a_400(app: App, body: dict) -> None:
    with app.http() as http:
        response = http.post("/management/prices", json=body)
    assert response.status_code == 400 and response.json()["error"]["message"]


def test_an_openai_user_key_cannot_set_prices(app: App) -> None:
    key = app.cli_json("keys", "create", "--name", f"p-{uuid.uuid4().hex[:6]}")
    with app.http(key["key"]) as http:  # type: ignore[index]
        response = http.post("/management/prices", json={"model": "m", "input_per_million": 1, "output_per_million": 1})
        assert http.get("/management/prices").status_code == 200
    assert response.status_code == 401 and response.json()["error"]["code"] == "PermissionDenied"


@pytest.mark.parametrize(("price", "field"), [
    ({"input_per_million": -1.0}, "input_per_million"),
    ({"batch_discount": 1.5}, "batch_discount"),
    ({"effective_from": "next tuesday"}, "effective_from"),
])
def test_a_bad_configured_price_names_the_setting(price: dict, field: str) -> None:
    row = {"model": "m", "input_per_million": 1.0, "output_per_million": 1.0, **price}
    with pytest.raises(ValidationError, match=field):
        Settings(billing={"prices": [row]})


def test_a_configured_date_may_be_a_toml_date_or_a_time() -> None:
    prices = Settings(billing={"prices": [
        {"model": "m", "input_per_million": 1, "output_per_million": 1, "effective_from": datetime.date(2026, 1, 1)},
        {"model": "m", "input_per_million": 1, "output_per_million": 1, "effective_from": "2026-01-01T06:00:00+06:00"},
    ]}).billing.prices
    assert [p.effective_from for p in prices] == [1767225600.0, 1767225600.0]
