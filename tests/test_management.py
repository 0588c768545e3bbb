"""Deployments and keys, managed through the CLI and the management API of a running server."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

import httpx
import openai
import pytest
from openai import AzureOpenAI

from conftest import API_VERSION, Server, run_cli

HELLO = [{"role": "user", "content": "Hello"}]


def client(server: Server, key: str) -> AzureOpenAI:
    return AzureOpenAI(azure_endpoint=server.url + "/", api_key=key, api_version=API_VERSION, max_retries=0)


def eventually(check, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, openai.APIStatusError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_models_list_shows_the_bundled_models(server: Server) -> None:
    models = {m["id"]: m for m in server.cli_json("models", "list")}
    assert models["smollm2-135m-instruct"]["kind"] == "chat"
    assert models["all-minilm-l6-v2"]["kind"] == "embeddings"


def test_resource_models_route_lists_azure_model_objects(azure: AzureOpenAI) -> None:
    models = {m.id: m for m in azure.models.list()}
    assert models["smollm2-135m-instruct"].capabilities["chat_completion"] is True


def test_deployment_created_by_the_cli_serves_a_running_server(server: Server) -> None:
    name = f"dep-{uuid.uuid4().hex[:6]}"
    server.cli("deployments", "create", "--name", name, "--model", "smollm2-135m-instruct", "--capacity", "2")
    shown = server.cli_json("deployments", "show", name)
    assert shown["capacity"] == 2 and shown["backend"] == "local"
    reply = eventually(lambda: client(server, server.key).chat.completions.create(model=name, messages=HELLO, max_tokens=2))
    assert reply.choices[0].message.content is not None


def test_deployment_update_and_delete_take_effect_without_restart(server: Server) -> None:
    name = f"dep-{uuid.uuid4().hex[:6]}"
    server.cli("deployments", "create", "--name", name, "--model", "smollm2-135m-instruct")
    server.cli("deployments", "update", name, "--capacity", "7")
    assert server.cli_json("deployments", "show", name)["capacity"] == 7
    server.cli("deployments", "delete", name, "--yes")

    def gone() -> None:
        with pytest.raises(openai.NotFoundError):
            client(server, server.key).chat.completions.create(model=name, messages=HELLO, max_tokens=2)

    eventually(gone)


def test_duplicate_deployment_name_is_refused(server: Server) -> None:
    result = server.cli("deployments", "create", "--name", "gpt-4o", "--model", "smollm2-135m-instruct", check=False)
    assert result.returncode == 1 and "already exists" in result.stderr


def test_unknown_model_is_refused_with_a_hint(server: Server) -> None:
    result = server.cli("deployments", "create", "--name", "x", "--model", "gpt-9", check=False)
    assert result.returncode == 1 and "stockade models list" in result.stderr


def test_management_api_needs_a_key(server: Server) -> None:
    assert httpx.get(server.url + "/management/deployments").status_code == 401


def test_cli_manages_a_remote_server_with_a_key(server: Server) -> None:
    listed = server.cli_json("--endpoint", server.url, "--api-key", server.key, "deployments", "list")
    assert "gpt-4o" in {d["name"] for d in listed}


def test_cli_without_key_for_remote_endpoint_explains_what_to_do(server: Server) -> None:
    env_without_key = {k: v for k, v in server.env.items() if k != "STOCKADE_API_KEY"}
    result = run_cli(env_without_key, "--endpoint", server.url, "deployments", "list", check=False)
    assert result.returncode == 1 and "--api-key" in result.stderr


def test_application_key_with_user_role_calls_models_but_cannot_manage(server: Server) -> None:
    created = server.cli_json("keys", "create", "--name", f"app-{uuid.uuid4().hex[:6]}", "--role", "openai-user")
    key = created["key"]
    eventually(lambda: client(server, key).chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=2))
    response = httpx.put(server.url + "/management/deployments/x", headers={"api-key": key}, json={"model": "smollm2-135m-instruct"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "PermissionDenied"


def test_key_scoped_to_a_deployment_cannot_call_another(server: Server) -> None:
    key = server.cli_json("keys", "create", "--name", f"scoped-{uuid.uuid4().hex[:6]}", "--deployment", "gpt-4o")["key"]
    eventually(lambda: client(server, key).chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=2))
    with pytest.raises(openai.AuthenticationError) as caught:
        client(server, key).embeddings.create(model="text-embedding-3-small", input="hi")
    assert caught.value.code == "PermissionDenied"


def test_revoked_key_stops_working(server: Server) -> None:
    created = server.cli_json("keys", "create", "--name", f"gone-{uuid.uuid4().hex[:6]}")
    eventually(lambda: client(server, created["key"]).chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=1))
    server.cli("keys", "revoke", created["id"])

    def refused() -> None:
        with pytest.raises(openai.AuthenticationError):
            client(server, created["key"]).chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=1)

    eventually(refused)


def test_regenerated_admin_key_replaces_the_old_secret(server: Server) -> None:
    old = server.cli_json("keys", "regenerate", "key2")["key"]
    new = server.cli_json("keys", "regenerate", "key2")["key"]
    eventually(lambda: client(server, new).chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=1))
    with pytest.raises(openai.AuthenticationError):
        client(server, old).chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=1)


def test_keys_list_never_shows_secrets(server: Server) -> None:
    listed = server.cli("keys", "list").stdout + server.cli("--json", "keys", "list").stdout
    assert server.key not in listed
    assert {"key1", "key2"} <= {k["name"] for k in json.loads(server.cli("--json", "keys", "list").stdout)}


def test_store_holds_key_digests_not_secrets(server: Server) -> None:
    with sqlite3.connect(server.data_dir / "stockade.db") as db:
        hashes = [row[0] for row in db.execute("select secret_hash from api_keys")]
    assert server.key not in hashes and all(len(h) == 64 for h in hashes)


def test_every_call_is_recorded_as_metadata(server: Server, azure: AzureOpenAI) -> None:
    raw = azure.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=3)
    request_id = raw.headers["x-request-id"]
    records = eventually(lambda: _record(server, request_id))
    assert records["deployment"] == "gpt-4o" and records["model"] == "smollm2-135m-instruct"
    assert records["status"] == 200 and records["completion_tokens"] == 3 and records["prompt_tokens"] > 0
    assert records["latency_ms"] > 0 and records["key_id"]


def test_failed_calls_are_recorded_too(server: Server) -> None:
    response = httpx.post(
        server.url + f"/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}",
        headers={"api-key": "wrong"}, json={"messages": HELLO},
    )
    record = eventually(lambda: _record(server, response.headers["x-request-id"]))
    assert record["status"] == 401 and record["key_id"] is None


def _record(server: Server, request_id: str) -> dict:
    matches = [r for r in server.cli_json("usage", "list", "--limit", "200") if r["request_id"] == request_id]
    assert matches
    return matches[0]


def test_prompts_and_replies_never_reach_the_store_or_the_log(server: Server, azure: AzureOpenAI) -> None:
    marker = f"PHI-{uuid.uuid4().hex}"
    reply = azure.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": f"Patient {marker} has a cough. Repeat the id."}], max_tokens=30
    )
    azure.embeddings.create(model="text-embedding-3-small", input=[marker])
    time.sleep(0.5)
    at_rest = b"".join(p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file())
    assert marker.encode() not in at_rest
    answer = reply.choices[0].message.content.strip()
    if len(answer) > 20:
        assert answer.encode() not in at_rest


def test_classic_models_route_needs_an_api_version_and_v1_does_not(http: httpx.Client) -> None:
    assert http.get("/openai/models").status_code == 404
    assert http.get(f"/openai/models/all-minilm-l6-v2?api-version={API_VERSION}").json()["id"] == "all-minilm-l6-v2"
    assert http.get("/openai/v1/models").status_code == 200
    assert http.get("/v1/models/nothing-here").status_code == 404
