"""The batch routes over HTTP, in process on the fake models: which routes need an api-version,
list pagination, and who may see and cancel a batch. What a batch does is test_batch_*'s."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from openai import AuthenticationError, OpenAI

from conftest import API_VERSION, App, in_process


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with in_process(tmp_path_factory.mktemp("batches-api")) as running:
        running.deploy("other")
        yield running


def lines(deployment: str = "gpt-4o", count: int = 2) -> bytes:
    return b"".join(
        json.dumps({"custom_id": f"r-{i}", "method": "POST", "url": "/chat/completions",
                    "body": {"model": deployment, "messages": [{"role": "user", "content": "Hi"}]}}).encode() + b"\n"
        for i in range(count)
    )


def created(app: App, deployment: str = "gpt-4o") -> dict:
    client = app.sdk(api_key=app.key)
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(lines(deployment))), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id, endpoint="/chat/completions", completion_window="24h"
    ).model_dump()


def v1(app: App, key: str) -> OpenAI:
    return OpenAI(base_url=f"{app.client.base_url}/openai/v1/", api_key=key, http_client=app.client, max_retries=0)


def test_the_classic_routes_answer_404_without_an_api_version(app: App) -> None:
    with app.http() as http:
        response = http.get("/openai/batches")
    assert response.status_code == 404
    assert "api-version" in response.json()["error"]["message"]


def test_the_v1_routes_need_no_api_version(app: App) -> None:
    batch = created(app)
    with app.http() as http:
        response = http.get(f"/openai/v1/batches/{batch['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == batch["id"]


def test_a_create_without_an_input_file_names_the_parameter(app: App) -> None:
    with app.http() as http:
        response = http.post("/openai/batches", params={"api-version": API_VERSION},
                             json={"endpoint": "/chat/completions", "completion_window": "24h"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input_file_id"


def test_a_list_pages_with_after_and_says_where_it_ends(app: App) -> None:
    for _ in range(3):
        created(app)
    with app.http() as http:
        first = http.get("/openai/v1/batches", params={"limit": 2}).json()
        second = http.get("/openai/v1/batches", params={"limit": 2, "after": first["last_id"]}).json()
    assert first["object"] == "list"
    assert (first["first_id"], first["last_id"]) == (first["data"][0]["id"], first["data"][1]["id"])
    assert first["has_more"] is True
    assert not {b["id"] for b in first["data"]} & {b["id"] for b in second["data"]}


def test_the_sdk_pages_through_every_batch(app: App) -> None:
    ids = {created(app)["id"] for _ in range(3)}
    listed = [b.id for b in v1(app, app.key).batches.list(limit=1)]
    assert ids <= set(listed)
    assert len(listed) == len(set(listed))


def test_a_key_for_another_deployment_may_neither_see_nor_cancel_a_batch(app: App) -> None:
    batch = created(app, "gpt-4o")
    key = app.cli_json("keys", "create", "--name", "other-only", "--role", "openai-user", "--deployment", "other")["key"]  # type: ignore[index]
    client = v1(app, key)
    with pytest.raises(AuthenticationError):
        client.batches.retrieve(batch["id"])
    with pytest.raises(AuthenticationError):
        client.batches.cancel(batch["id"])


def test_a_key_for_one_deployment_may_not_list_every_batch(app: App) -> None:
    key = app.cli_json("keys", "create", "--name", "scoped-lister", "--role", "openai-user", "--deployment", "other")["key"]  # type: ignore[index]
    with app.http(key) as http:
        assert http.get("/openai/v1/batches").status_code == 401


def test_a_key_for_the_deployment_reads_its_batch(app: App) -> None:
    batch = created(app, "other")
    key = app.cli_json("keys", "create", "--name", "other-user", "--role", "openai-user", "--deployment", "other")["key"]  # type: ignore[index]
    client = v1(app, key)
    assert client.batches.retrieve(batch["id"]).id == batch["id"]
