"""Files through the real openai SDK: upload, list a page at a time, retrieve, download and
delete, on the classic routes (AzureOpenAI) and the v1 routes (OpenAI); expiry and its purge."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import openai
import pytest
import sqlalchemy as sa
from openai import AzureOpenAI, OpenAI

from conftest import API_VERSION, App, in_process
from stockade.batch.files import LONGEST_EXPIRY, SHORTEST_EXPIRY, Files
from stockade.errors import NotFound
from stockade.store.tables import files


def batch_lines(count: int, deployment: str = "gpt-4o", text: str = "Hi") -> bytes:
    return b"".join(
        json.dumps({
            "custom_id": f"task-{n}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": deployment, "messages": [{"role": "user", "content": text}], "max_tokens": 10},
        }).encode() + b"\n"
        for n in range(count)
    )


def v1_client(app: App) -> OpenAI:
    return OpenAI(
        base_url=f"{app.client.base_url}/openai/v1", api_key=app.key, http_client=app.client, max_retries=0
    )


@pytest.fixture(params=["azure", "v1"])
def client(request: pytest.FixtureRequest, fake: App) -> AzureOpenAI | OpenAI:
    return fake.azure() if request.param == "azure" else v1_client(fake)


def test_an_uploaded_batch_file_reads_back_byte_for_byte(client: AzureOpenAI | OpenAI) -> None:
    content = batch_lines(3, text="Grüße, 👋")
    uploaded = client.files.create(file=("input.jsonl", content), purpose="batch")
    assert (uploaded.status, uploaded.purpose, uploaded.bytes, uploaded.filename) == (
        "processed", "batch", len(content), "input.jsonl")
    assert client.files.retrieve(uploaded.id).id == uploaded.id
    assert client.files.content(uploaded.id).content == content


def test_a_deleted_file_is_gone(client: AzureOpenAI | OpenAI) -> None:
    uploaded = client.files.create(file=("input.jsonl", batch_lines(1)), purpose="batch")
    deleted = client.files.delete(uploaded.id)
    assert (deleted.id, deleted.deleted) == (uploaded.id, True)
    with pytest.raises(openai.NotFoundError, match="not found"):
        client.files.retrieve(uploaded.id)


def test_files_are_listed_newest_first_a_page_at_a_time(client: AzureOpenAI | OpenAI) -> None:
    purpose = "user_data"
    ids = [client.files.create(file=(f"{n}.txt", b"data"), purpose=purpose).id for n in range(5)]
    page = client.files.list(purpose=purpose, limit=2)
    assert page.has_more is True and len(page.data) == 2
    listed = [f.id for f in client.files.list(purpose=purpose, limit=2)]  # the SDK follows the cursor
    assert listed[:5] == ids[::-1]
    oldest_first = [f.id for f in client.files.list(purpose=purpose, order="asc")]
    assert oldest_first[-5:] == ids
    for file_id in ids:
        client.files.delete(file_id)


def test_the_list_names_its_first_and_last_ids(fake: App) -> None:
    ids = [fake.azure().files.create(file=("x.txt", b"x"), purpose="evals").id for _ in range(3)]
    with fake.http() as http:
        listed = http.get("/openai/files", params={"api-version": API_VERSION, "purpose": "evals",
                                                    "limit": 2, "after": ids[2]}).json()
    assert (listed["object"], listed["first_id"], listed["last_id"], listed["has_more"]) == (
        "list", ids[1], ids[0], False)


def test_waiting_for_processing_returns_at_once(client: AzureOpenAI | OpenAI) -> None:
    uploaded = client.files.create(file=("input.jsonl", batch_lines(2)), purpose="batch")
    # poll_interval would sleep an hour if the file were not processed already.
    assert client.files.wait_for_processing(uploaded.id, poll_interval=3600).status == "processed"


def test_the_classic_routes_need_an_api_version(fake: App) -> None:
    with fake.http() as http:
        assert http.get("/openai/files").status_code == 404
        assert http.get("/openai/v1/files").status_code == 200


def test_an_expiry_in_the_sdks_spelling_is_kept(fake: App) -> None:
    uploaded = fake.azure().files.create(
        file=("input.jsonl", batch_lines(1)), purpose="batch",
        expires_after={"anchor": "created_at", "seconds": SHORTEST_EXPIRY},
    )
    assert uploaded.expires_at == uploaded.created_at + SHORTEST_EXPIRY


def test_an_expiry_in_azures_dotted_spelling_is_kept(fake: App) -> None:
    with fake.http() as http:
        response = http.post(
            "/openai/files", params={"api-version": API_VERSION},
            # After the file, as in Azure's curl sample.
            files=[("purpose", (None, b"batch")), ("file", ("in.jsonl", batch_lines(1))),
                   ("expires_after.seconds", (None, str(LONGEST_EXPIRY).encode())),
                   ("expires_after.anchor", (None, b"created_at"))],
        )
    assert response.status_code == 201, response.text
    uploaded = response.json()
    assert uploaded["expires_at"] == uploaded["created_at"] + LONGEST_EXPIRY


@pytest.mark.parametrize("seconds", [SHORTEST_EXPIRY - 1, LONGEST_EXPIRY + 1])
def test_an_expiry_outside_azures_range_is_refused(fake: App, seconds: int) -> None:
    with pytest.raises(openai.BadRequestError, match="1209600") as refused:
        fake.azure().files.create(
            file=("input.jsonl", batch_lines(1)), purpose="batch",
            expires_after={"anchor": "created_at", "seconds": seconds},
        )
    assert refused.value.code == "invalid_value"


def test_an_unknown_purpose_is_refused(fake: App) -> None:
    with pytest.raises(openai.BadRequestError, match="purpose"):
        fake.azure().files.create(file=("x.txt", b"x"), purpose="batch_output")  # type: ignore[arg-type]


def test_a_body_that_is_not_multipart_is_refused(fake: App) -> None:
    with fake.http() as http:
        response = http.post("/openai/v1/files", json={"purpose": "batch"})
    assert response.status_code == 400
    assert "multipart/form-data" in response.json()["error"]["message"]


def test_a_body_declaring_more_than_the_limit_is_refused_before_authentication(fake: App) -> None:
    limit = fake.settings.batch.max_file_bytes
    with fake.anonymous(**{"content-length": str(limit * 2), "content-type": "multipart/form-data"}) as http:
        response = http.post("/openai/v1/files", content=b"")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_too_large"


def test_a_file_for_a_zero_retention_deployment_is_refused(fake: App) -> None:
    fake.deploy("private-chat")
    store = fake.resource.store
    store.update_deployment("private-chat", fake.settings.limits.default_quota, zero_data_retention=True)
    with pytest.raises(openai.BadRequestError, match="zero data retention") as refused:
        fake.azure().files.create(file=("in.jsonl", batch_lines(1, "private-chat")), purpose="batch")
    assert refused.value.code == "ZeroDataRetention"
    assert "private-chat" in str(refused.value.message)


# -- expiry -----------------------------------------------------------------------------------


def test_expired_files_are_purged(tmp_path: Path) -> None:
    now = [1_900_000_000.0]
    with in_process(tmp_path, deployments=()) as app:
        resource = app.resource
        clocked = Files(resource.store, resource.files.sealer, resource.settings, clock=lambda: now[0])
        kept = app.call(clocked.upload, None, "batch", "kept.jsonl", _once(batch_lines(1)), None)
        expiring = app.call(clocked.upload, None, "batch", "old.jsonl", _once(batch_lines(1)), SHORTEST_EXPIRY)
        now[0] += SHORTEST_EXPIRY - 1
        assert app.call(clocked.purge) == 0
        now[0] += 1
        assert app.call(clocked.purge) == 1
        with pytest.raises(NotFound):
            app.call(clocked.get, expiring.id)
        assert app.call(clocked.get, kept.id).id == kept.id


async def _once(content: bytes):  # type: ignore[no-untyped-def]
    yield content


def test_a_file_that_expired_while_no_server_ran_is_purged_at_start(tmp_path: Path) -> None:
    with in_process(tmp_path) as first:
        uploaded = first.azure().files.create(
            file=("in.jsonl", batch_lines(1)), purpose="batch",
            expires_after={"anchor": "created_at", "seconds": SHORTEST_EXPIRY},
        )
        kept = first.azure().files.create(file=("in.jsonl", batch_lines(1)), purpose="batch")
    # The expiry passes while the server is down.
    store = first.resource.store
    with sa.create_engine(store.url).begin() as connection:
        connection.execute(files.update().where(files.c.id == uploaded.id).values(expires_at=1.0))
    with in_process(tmp_path, deployments=()) as second:
        with pytest.raises(openai.NotFoundError):
            second.azure().files.retrieve(uploaded.id)
        assert second.azure().files.retrieve(kept.id).id == kept.id


# -- encryption at rest -----------------------------------------------------------------------


def test_neither_the_store_nor_the_data_directory_holds_an_uploaded_line(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    with in_process(tmp_path) as app:
        uploaded = app.azure().files.create(file=("in.jsonl", batch_lines(3, text=marker)), purpose="batch")
        assert marker.encode() in app.azure().files.content(uploaded.id).content
        on_disk = [path for path in tmp_path.rglob("*") if path.is_file()]
        assert any(path.name.endswith("-wal") for path in on_disk)  # read while the server runs
        for path in on_disk:
            assert marker.encode() not in path.read_bytes(), path
