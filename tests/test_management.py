"""Deployments and keys, managed through the CLI and the management API: in process against the
app on the fake models, and a few against a running server (the CLI and the server on one store,
the CLI over HTTP, what reaches the disk of a real server)."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path

import openai
import pytest
from openai import AzureOpenAI

from conftest import API_VERSION, App, Server, run_cli, server_env, with_store
from fake_model import CHAT_MODEL, EMBEDDING_MODEL
from stockade.names import DEPLOYMENT_NAME_RULE

HELLO = [{"role": "user", "content": "Hello"}]


def hello(sdk: AzureOpenAI, deployment: str = "gpt-4o") -> openai.types.chat.ChatCompletion:
    return sdk.chat.completions.create(model=deployment, messages=HELLO, max_tokens=1)


def eventually(check, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    """For a real server, which re-reads the store every 0.2 s in tests."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, openai.APIStatusError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# -- models ------------------------------------------------------------------------------------


def test_models_list_shows_the_bundled_models(tmp_path: Path) -> None:
    listed = json.loads(run_cli(with_store(server_env(tmp_path)), "--json", "models", "list").stdout)
    models = {m["id"]: m for m in listed}
    assert models["smollm2-135m-instruct"]["kind"] == "chat"
    assert models["all-minilm-l6-v2"]["kind"] == "embeddings"


def test_resource_models_route_lists_azure_model_objects(fake: App) -> None:
    models = {m.id: m for m in fake.azure().models.list()}
    assert models[CHAT_MODEL].capabilities["chat_completion"] is True


def test_classic_models_route_needs_an_api_version_and_v1_does_not(fake: App) -> None:
    with fake.http() as http:
        assert http.get("/openai/models").status_code == 404
        assert http.get(f"/openai/models/{EMBEDDING_MODEL}?api-version={API_VERSION}").json()["id"] == EMBEDDING_MODEL
        assert http.get("/openai/v1/models").status_code == 200
        assert http.get("/v1/models/nothing-here").status_code == 404


# -- deployments -------------------------------------------------------------------------------


def test_a_deployment_created_by_the_cli_serves_calls(fake: App) -> None:
    name = f"dep-{uuid.uuid4().hex[:6]}"
    fake.cli("deployments", "create", "--name", name, "--model", CHAT_MODEL, "--capacity", "2")
    shown = fake.cli_json("deployments", "show", name)
    assert shown["capacity"] == 2 and shown["backend"] == "local"  # type: ignore[index]
    assert hello(fake.azure(), name).choices[0].message.content


def test_deployment_update_and_delete_take_effect_without_restart(fake: App) -> None:
    name = f"dep-{uuid.uuid4().hex[:6]}"
    fake.cli("deployments", "create", "--name", name, "--model", CHAT_MODEL)
    fake.cli("deployments", "update", name, "--capacity", "7")
    assert fake.cli_json("deployments", "show", name)["capacity"] == 7  # type: ignore[index]
    fake.cli("deployments", "delete", name, "--yes")
    with pytest.raises(openai.NotFoundError):
        hello(fake.azure(), name)


def test_duplicate_deployment_name_is_refused(fake: App) -> None:
    result = fake.cli("deployments", "create", "--name", "gpt-4o", "--model", CHAT_MODEL, check=False)
    assert result.returncode == 1 and "already exists" in result.stderr


def test_unknown_model_is_refused_with_a_hint(fake: App) -> None:
    result = fake.cli("deployments", "create", "--name", "x", "--model", "gpt-9", check=False)
    assert result.returncode == 1 and "stockade models list" in result.stderr


def test_a_deployment_name_with_a_slash_gets_the_naming_rule(fake: App) -> None:
    result = fake.cli("deployments", "create", "--name", "dep/1", "--model", CHAT_MODEL, check=False)
    assert result.returncode == 1 and DEPLOYMENT_NAME_RULE[:40] in " ".join(result.stderr.split())


def test_the_api_answers_a_deployment_path_with_a_slash_with_the_naming_rule(fake: App) -> None:
    with fake.http() as http:
        response = http.put("/management/deployments/dep/1", json={"model": CHAT_MODEL})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "name"
    assert DEPLOYMENT_NAME_RULE in response.json()["error"]["message"]


def test_a_deployment_name_ending_in_a_newline_is_refused(fake: App) -> None:
    with fake.http() as http:
        response = http.put("/management/deployments/dep%0A", json={"model": CHAT_MODEL})
        listed = http.get("/management/deployments").json()["data"]
    assert response.status_code == 400 and "unprintable" in response.json()["error"]["message"]
    assert "dep" not in {d["name"] for d in listed}


def test_a_question_mark_in_a_deployment_name_does_not_cut_the_name(fake: App) -> None:
    result = fake.cli("deployments", "create", "--name", "cut?here", "--model", CHAT_MODEL, check=False)
    assert result.returncode == 1 and "cut?here" in result.stderr
    assert "cut" not in {d["name"] for d in fake.cli_json("deployments", "list")}  # type: ignore[union-attr]


# -- keys --------------------------------------------------------------------------------------


def test_management_api_needs_a_key(fake: App) -> None:
    assert fake.client.get("/management/deployments").status_code == 401


def test_cli_without_key_for_remote_endpoint_explains_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in server_env(tmp_path).items() if k != "STOCKADE_API_KEY"}
    result = run_cli(env, "--endpoint", "http://127.0.0.1:9", "deployments", "list", check=False)
    assert result.returncode == 1 and "--api-key" in result.stderr


def test_application_key_with_user_role_calls_models_but_cannot_manage(fake: App) -> None:
    created = fake.cli_json("keys", "create", "--name", f"app-{uuid.uuid4().hex[:6]}", "--role", "openai-user")
    key = created["key"]  # type: ignore[index]
    assert hello(fake.azure(key)).choices
    with fake.http(key) as http:
        response = http.put("/management/deployments/x", json={"model": CHAT_MODEL})
    assert response.status_code == 401 and response.json()["error"]["code"] == "PermissionDenied"


def test_key_scoped_to_a_deployment_cannot_call_another(fake: App) -> None:
    key = fake.cli_json("keys", "create", "--name", f"scoped-{uuid.uuid4().hex[:6]}", "--deployment", "gpt-4o")["key"]  # type: ignore[index]
    assert hello(fake.azure(key)).choices
    with pytest.raises(openai.AuthenticationError) as caught:
        fake.azure(key).embeddings.create(model="text-embedding-3-small", input="hi")
    assert caught.value.code == "PermissionDenied"


def test_a_scoped_key_refused_another_deployment_is_told_which_it_lacks(fake: App) -> None:
    key = fake.cli_json("keys", "create", "--name", f"scoped-{uuid.uuid4().hex[:6]}", "--deployment", "gpt-4o")["key"]  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError) as caught:
        fake.azure(key).embeddings.create(model="text-embedding-3-small", input="hi")
    message = caught.value.body["message"]  # type: ignore[index]
    assert "only the deployment 'gpt-4o', not 'text-embedding-3-small'" in message
    assert "--deployment text-embedding-3-small" in message


def test_a_scoped_key_refused_a_routine_conversation_is_told_which_deployment_it_lacks(fake: App) -> None:
    key = fake.cli_json("keys", "create", "--name", f"scoped-{uuid.uuid4().hex[:6]}", "--deployment", "gpt-4o")["key"]  # type: ignore[index]
    with fake.http(key) as http:
        response = http.post("/routines/conversations", json={
            "routine": "baa", "deployment": "gpt-4o", "embeddings_deployment": "text-embedding-3-small"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "PermissionDenied"
    assert "not 'text-embedding-3-small'" in response.json()["error"]["message"]


def test_revoked_key_stops_working(fake: App) -> None:
    created = fake.cli_json("keys", "create", "--name", f"gone-{uuid.uuid4().hex[:6]}")
    assert hello(fake.azure(created["key"])).choices  # type: ignore[index]
    fake.cli("keys", "revoke", created["id"])  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError):
        hello(fake.azure(created["key"]))  # type: ignore[index]


def test_regenerated_admin_key_replaces_the_old_secret(fake: App) -> None:
    old = fake.cli_json("keys", "regenerate", "key2")["key"]  # type: ignore[index]
    new = fake.cli_json("keys", "regenerate", "key2")["key"]  # type: ignore[index]
    assert hello(fake.azure(new)).choices
    with pytest.raises(openai.AuthenticationError):
        hello(fake.azure(old))


def test_keys_list_never_shows_secrets(fake: App) -> None:
    listed = fake.cli("keys", "list").stdout + fake.cli("--json", "keys", "list").stdout
    assert fake.key not in listed
    assert {"key1", "key2"} <= {k["name"] for k in json.loads(fake.cli("--json", "keys", "list").stdout)}


def test_store_holds_key_digests_not_secrets(fake: App) -> None:
    with sqlite3.connect(fake.data_dir / "stockade.db") as db:
        hashes = [row[0] for row in db.execute("select secret_hash from api_keys")]
    assert fake.key not in hashes and all(len(h) == 64 for h in hashes)


# -- usage records -----------------------------------------------------------------------------


def record(app: App, request_id: str) -> dict:
    app.flush_usage()
    (match,) = [r for r in app.cli_json("usage", "list", "--limit", "200") if r["request_id"] == request_id]  # type: ignore[union-attr]
    return match  # type: ignore[no-any-return]


def test_every_call_is_recorded_as_metadata(fake: App) -> None:
    raw = fake.azure().chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=3)
    recorded = record(fake, raw.headers["x-request-id"])
    assert recorded["deployment"] == "gpt-4o" and recorded["model"] == CHAT_MODEL
    assert recorded["status"] == 200 and recorded["completion_tokens"] == 3 and recorded["prompt_tokens"] == 2
    assert recorded["latency_ms"] > 0 and recorded["key_id"]


def test_failed_calls_are_recorded_too(fake: App) -> None:
    with fake.http("wrong") as http:
        response = http.post(f"/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}", json={"messages": HELLO})
    recorded = record(fake, response.headers["x-request-id"])
    assert recorded["status"] == 401 and recorded["key_id"] is None


def application_key(app: App, role: str = "openai-user") -> dict:
    return app.cli_json("keys", "create", "--name", f"usage-{uuid.uuid4().hex[:6]}", "--role", role)  # type: ignore[return-value]


def test_usage_records_name_the_key_that_made_the_call_even_once_revoked(fake: App) -> None:
    key = application_key(fake)
    raw = fake.azure(key["key"]).chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=1)
    fake.cli("keys", "revoke", key["id"])
    recorded = record(fake, raw.headers["x-request-id"])
    assert (recorded["key_name"], recorded["key_id"]) == (key["name"], key["id"])


def test_an_openai_user_key_sees_its_own_usage_only(fake: App) -> None:
    mine, theirs = application_key(fake), application_key(fake)
    hello(fake.azure(mine["key"]))
    hello(fake.azure(theirs["key"]))
    fake.flush_usage()
    with fake.http(mine["key"]) as http:
        response = http.get("/management/usage", params={"limit": 200})
    assert response.status_code == 200
    assert {r["key_id"] for r in response.json()["data"]} == {mine["id"]}


def test_a_contributor_sees_everyones_usage(fake: App) -> None:
    user, contributor = application_key(fake), application_key(fake, "contributor")
    hello(fake.azure(user["key"]))
    fake.flush_usage()
    with fake.http(contributor["key"]) as http:
        response = http.get("/management/usage", params={"limit": 200})
    assert user["id"] in {r["key_id"] for r in response.json()["data"]}


def test_an_openai_user_key_cannot_read_the_metrics(fake: App) -> None:
    with fake.http(application_key(fake)["key"]) as http:
        response = http.get("/metrics")
    assert response.status_code == 401 and response.json()["error"]["code"] == "PermissionDenied"
    with fake.http() as http:
        assert http.get("/metrics").status_code == 200


# -- against a running server ------------------------------------------------------------------


def test_a_deployment_created_by_the_cli_serves_a_running_server(server: Server) -> None:
    name = f"dep-{uuid.uuid4().hex[:6]}"
    server.cli("deployments", "create", "--name", name, "--model", "smollm2-135m-instruct", "--capacity", "2")
    sdk = AzureOpenAI(azure_endpoint=server.url + "/", api_key=server.key, api_version=API_VERSION, max_retries=0)
    assert eventually(lambda: hello(sdk, name)).choices[0].message.content is not None


def test_cli_manages_a_remote_server_with_a_key(server: Server) -> None:
    listed = server.cli_json("--endpoint", server.url, "--api-key", server.key, "deployments", "list")
    assert "gpt-4o" in {d["name"] for d in listed}  # type: ignore[union-attr]


def test_prompts_and_replies_never_reach_the_store_or_the_log(server: Server, azure: AzureOpenAI) -> None:
    marker = f"PHI-{uuid.uuid4().hex}"
    reply = azure.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": f"Patient {marker} has a cough. Repeat the id."}], max_tokens=30
    )
    embedded = azure.embeddings.with_raw_response.create(model="text-embedding-3-small", input=[marker])
    request_id = embedded.headers["x-request-id"]

    def recorded() -> None:  # the usage batch, written every 0.1 s, holds the last call
        assert request_id in {r["request_id"] for r in server.cli_json("usage", "list", "--limit", "20")}  # type: ignore[union-attr]

    eventually(recorded)
    at_rest = b"".join(p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file())
    assert marker.encode() not in at_rest
    answer = reply.choices[0].message.content.strip()
    if len(answer) > 20:
        assert answer.encode() not in at_rest


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [("/management/roles", {"role": "openai-user", "object_id": "oid\u0000"}, "object_id"),
     ("/management/roles", {"role": "openai-user", "object_id": "oid", "tenant_id": "\u0000"}, "tenant_id")],
)
def test_a_nul_character_in_a_management_field_is_a_400_naming_it(
    fake: App, path: str, body: dict, param: str
) -> None:
    """PostgreSQL cannot store NUL in text: refused on every store, not a 500 on that one."""
    with fake.http() as http:
        response = http.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize("where", ["before", "after"])
def test_json_output_is_asked_for_before_or_after_the_subcommand(fake: App, where: str) -> None:
    args = ["--json", "deployments", "list"] if where == "before" else ["deployments", "list", "--json"]
    listed = json.loads(fake.cli(*args).stdout)
    assert "gpt-4o" in {deployment["name"] for deployment in listed}
