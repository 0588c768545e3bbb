"""The Responses API, in process against the fake model through the openai SDK: creating,
streaming, storing, chaining, function tools, what is refused, and the chat path's limits and
filters underneath. The real model, the Agents SDK and Codex are in test_responses_clients.py."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import sqlalchemy as sa
from openai import OpenAI

from conftest import RESPONSES_API_VERSION, App, in_process
from fake_model import CHAT_MODEL

DEPLOYMENT = "gpt-4o"
ZERO_RETENTION = "zdr"
FILTERED = "filtered"
TERM = "forbidden"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
DAY = 86_400


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    deployments = [(DEPLOYMENT, CHAT_MODEL, 400), (ZERO_RETENTION, CHAT_MODEL, 300), (FILTERED, CHAT_MODEL, 300)]
    with in_process(tmp_path_factory.mktemp("responses"), deployments) as running:
        running.cli("deployments", "update", ZERO_RETENTION, "--zero-data-retention")
        running.cli("blocklists", "create", "words")
        running.cli("blocklists", "add-item", "words", TERM)
        running.cli("content-filters", "create", "held", "--blocklist", "words")
        running.cli("deployments", "update", FILTERED, "--content-filter", "held")
        yield running


@pytest.fixture(scope="module")
def azure(app: App) -> openai.AzureOpenAI:
    return app.sdk(api_version=RESPONSES_API_VERSION, api_key=app.key)


@pytest.fixture(scope="module")
def v1(app: App) -> OpenAI:
    return OpenAI(base_url=f"{app.client.base_url}/openai/v1/", api_key=app.key, http_client=app.client, max_retries=0)


def post(app: App, body: dict[str, Any], path: str = "/openai/v1/responses") -> Any:
    return app.http().post(path, json={"model": DEPLOYMENT, **body})


def stream_events(app: App, body: dict[str, Any], headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The events of a streamed response as sent: each ``event:`` line's name checked against
    its data's type."""
    with app.http().stream("POST", "/openai/v1/responses", json={"model": DEPLOYMENT, "stream": True, **body},
                           headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    events = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert names == [event["type"] for event in events]
    return events


def error_of(response: Any) -> dict[str, Any]:
    return response.json()["error"]


# -- creating ---------------------------------------------------------------------------------


def test_a_response_holds_the_models_text_as_an_output_message(azure: openai.AzureOpenAI) -> None:
    response = azure.responses.create(model=DEPLOYMENT, input="Tell me about the sea.")
    assert response.status == "completed"
    assert response.output_text.startswith("The sea is wide")
    [message] = response.output
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert response.id.startswith("resp_")


def test_usage_counts_the_input_and_output_tokens(azure: openai.AzureOpenAI) -> None:
    response = azure.responses.create(model=DEPLOYMENT, input="one two three")
    assert response.usage is not None
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens == len(response.output_text.split())
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_the_v1_route_serves_the_openai_client(v1: OpenAI) -> None:
    assert v1.responses.create(model=DEPLOYMENT, input="Hello").status == "completed"


def test_a_string_input_is_one_user_message(azure: openai.AzureOpenAI) -> None:
    as_string = azure.responses.create(model=DEPLOYMENT, input="Hello there")
    as_items = azure.responses.create(
        model=DEPLOYMENT, input=[{"role": "user", "content": [{"type": "input_text", "text": "Hello there"}]}]
    )
    assert as_string.usage.input_tokens == as_items.usage.input_tokens  # type: ignore[union-attr]


def test_instructions_reach_the_model_ahead_of_the_input(azure: openai.AzureOpenAI) -> None:
    bare = azure.responses.create(model=DEPLOYMENT, input="Hello")
    instructed = azure.responses.create(model=DEPLOYMENT, input="Hello", instructions="Be brief")
    assert instructed.usage.input_tokens > bare.usage.input_tokens  # type: ignore[union-attr]
    assert instructed.instructions == "Be brief"


def test_max_output_tokens_ends_the_response_incomplete(azure: openai.AzureOpenAI) -> None:
    response = azure.responses.create(model=DEPLOYMENT, input="Hello", max_output_tokens=4)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert len(response.output_text.split()) == 4


def test_the_request_settings_are_echoed_back(azure: openai.AzureOpenAI) -> None:
    response = azure.responses.create(
        model=DEPLOYMENT, input="Hello", temperature=0.5, top_p=0.9, metadata={"ticket": "T-1"}, user="u-1",
    )
    assert (response.temperature, response.top_p, response.metadata, response.user) == (0.5, 0.9, {"ticket": "T-1"}, "u-1")


def test_json_schema_format_is_passed_to_the_model_as_chats_response_format(app: App) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    response = post(app, {"input": "Hi", "text": {"format": {"type": "json_schema", "name": "x", "schema": schema}}})
    assert response.status_code == 200
    assert response.json()["text"]["format"] == {"type": "json_schema", "name": "x", "schema": schema}


# -- streaming --------------------------------------------------------------------------------


def test_a_stream_sends_the_full_event_sequence(app: App) -> None:
    types = [event["type"] for event in stream_events(app, {"input": "Hello", "max_output_tokens": 3})]
    assert types == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.incomplete",
    ]


def test_every_event_carries_the_next_sequence_number(app: App) -> None:
    events = stream_events(app, {"input": "Hello"})
    assert [event["sequence_number"] for event in events] == list(range(len(events)))


def test_a_stream_ends_with_the_completed_response_holding_all_the_text(app: App) -> None:
    events = stream_events(app, {"input": "Hello"})
    deltas = "".join(event["delta"] for event in events if event["type"] == "response.output_text.delta")
    final = events[-1]
    assert final["type"] == "response.completed"
    assert final["response"]["output"][0]["content"][0]["text"] == deltas
    assert final["response"]["usage"]["output_tokens"] > 0


def test_a_stream_is_decided_by_the_body_whatever_the_accept_header(app: App) -> None:
    # The Agents SDK streams with "Accept: application/json".
    events = stream_events(app, {"input": "Hello"}, headers={"accept": "application/json"})
    assert events[-1]["type"] == "response.completed"


def test_the_sdk_reads_a_stream_to_its_final_response(azure: openai.AzureOpenAI) -> None:
    with azure.responses.stream(model=DEPLOYMENT, input="Hello") as stream:
        text = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.output_text == text and text


# -- stored responses -------------------------------------------------------------------------


def test_a_response_is_stored_and_retrieved_by_default(azure: openai.AzureOpenAI) -> None:
    created = azure.responses.create(model=DEPLOYMENT, input="Hello")
    assert created.store is True
    retrieved = azure.responses.retrieve(created.id)
    assert retrieved.output_text == created.output_text and retrieved.id == created.id


def test_a_streamed_response_is_stored_as_its_final_event_shows_it(app: App, azure: openai.AzureOpenAI) -> None:
    final = stream_events(app, {"input": "Hello"})[-1]["response"]
    assert azure.responses.retrieve(final["id"]).model_dump()["output"] == openai.types.responses.Response.model_validate(final).model_dump()["output"]


def test_a_deleted_response_is_gone(azure: openai.AzureOpenAI) -> None:
    created = azure.responses.create(model=DEPLOYMENT, input="Hello")
    azure.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        azure.responses.retrieve(created.id)


def test_deleting_an_unknown_response_is_a_404(azure: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        azure.responses.delete("resp_nothing")


def test_store_false_keeps_nothing(azure: openai.AzureOpenAI) -> None:
    created = azure.responses.create(model=DEPLOYMENT, input="Hello", store=False)
    assert created.store is False
    with pytest.raises(openai.NotFoundError):
        azure.responses.retrieve(created.id)


def test_a_zero_retention_deployment_stores_nothing_whatever_store_says(azure: openai.AzureOpenAI) -> None:
    created = azure.responses.create(model=ZERO_RETENTION, input="Hello", store=True)
    assert created.store is False
    with pytest.raises(openai.NotFoundError):
        azure.responses.retrieve(created.id)


def test_input_items_are_listed_with_the_ids_the_caller_gave(azure: openai.AzureOpenAI) -> None:
    created = azure.responses.create(model=DEPLOYMENT, input=[
        {"type": "message", "id": "msg_mine", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"role": "user", "content": "and you?"},
    ])
    items = azure.responses.input_items.list(created.id, order="asc").data
    assert items[0].id == "msg_mine"
    assert items[1].id.startswith("msg_") and items[1].content[0].text == "and you?"  # type: ignore[union-attr]


def test_input_items_come_newest_first_a_page_at_a_time(azure: openai.AzureOpenAI) -> None:
    created = azure.responses.create(model=DEPLOYMENT, input=[
        {"type": "message", "id": f"msg_{n}", "role": "user", "content": f"line {n}"} for n in range(5)
    ])
    first = azure.responses.input_items.list(created.id, limit=2)
    assert [item.id for item in first.data] == ["msg_4", "msg_3"] and first.has_more
    rest = azure.responses.input_items.list(created.id, limit=10, after="msg_3")
    assert [item.id for item in rest.data] == ["msg_2", "msg_1", "msg_0"] and not rest.has_more


def test_a_stored_response_is_sealed_at_rest(app: App, azure: openai.AzureOpenAI) -> None:
    created = azure.responses.create(model=DEPLOYMENT, input="my secret diagnosis is gout")
    engine = sa.create_engine(app.settings.store_url)
    with engine.connect() as connection:
        data = connection.scalar(sa.text("SELECT data FROM responses WHERE id = :id"), {"id": created.id})
    engine.dispose()
    assert b"gout" not in data and b"The sea" not in data


@contextlib.contextmanager
def past_retention(app: App) -> Iterator[None]:
    """The stored responses' clock a second past the retention of those stored now."""
    stored = app.resource.responses.stored
    clock = stored.clock
    stored.clock = lambda: clock() + app.settings.responses.retention_days * DAY + 1
    try:
        yield
    finally:
        stored.clock = clock


def test_a_response_past_its_retention_is_purged(app: App, azure: openai.AzureOpenAI) -> None:
    created = azure.responses.create(model=DEPLOYMENT, input="Hello")
    with past_retention(app):
        assert app.call(app.resource.responses.stored.purge) >= 1
    with pytest.raises(openai.NotFoundError):
        azure.responses.retrieve(created.id)


def test_a_response_past_its_retention_is_not_served_even_before_the_purge(app: App, azure: openai.AzureOpenAI) -> None:
    created = azure.responses.create(model=DEPLOYMENT, input="Hello")
    with past_retention(app), pytest.raises(openai.NotFoundError):
        azure.responses.retrieve(created.id)


def test_a_caller_without_access_to_its_deployment_cannot_read_a_stored_response(
    app: App, azure: openai.AzureOpenAI,
) -> None:
    created = azure.responses.create(model=DEPLOYMENT, input="Hello")
    key = app.cli_json("keys", "create", "--name", "reader-elsewhere", "--deployment", ZERO_RETENTION)["key"]  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError):
        app.sdk(api_version=RESPONSES_API_VERSION, api_key=key).responses.retrieve(created.id)


# -- chains and function tools ----------------------------------------------------------------


def test_previous_response_id_continues_the_conversation(azure: openai.AzureOpenAI) -> None:
    first = azure.responses.create(model=DEPLOYMENT, input="Hello")
    alone = azure.responses.create(model=DEPLOYMENT, input="And then?")
    chained = azure.responses.create(model=DEPLOYMENT, input="And then?", previous_response_id=first.id)
    # The chain's input and output are the model's prompt too.
    assert chained.usage.input_tokens > alone.usage.input_tokens + first.usage.output_tokens  # type: ignore[union-attr]
    assert chained.previous_response_id == first.id


def test_an_unknown_previous_response_is_a_404_naming_it(app: App) -> None:
    response = post(app, {"input": "Hi", "previous_response_id": "resp_unknown"})
    assert response.status_code == 404
    assert error_of(response)["param"] == "previous_response_id"


def test_a_forced_function_call_is_an_output_item_with_a_call_id(azure: openai.AzureOpenAI) -> None:
    response = azure.responses.create(
        model=DEPLOYMENT, input="say:Paris", tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
    )
    [call] = response.output
    assert call.type == "function_call"
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id and call.id.startswith("fc_")


def test_a_function_result_sent_with_previous_response_id_gets_an_answer(azure: openai.AzureOpenAI) -> None:
    called = azure.responses.create(
        model=DEPLOYMENT, input="say:Paris", tools=[WEATHER], tool_choice="required",  # type: ignore[list-item]
    )
    [call] = called.output
    answered = azure.responses.create(
        model=DEPLOYMENT, previous_response_id=called.id, tools=[WEATHER],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature": 21}'}],  # type: ignore[union-attr]
    )
    assert answered.status == "completed" and answered.output_text


def test_a_streamed_function_call_sends_its_arguments_as_deltas(app: App) -> None:
    events = stream_events(app, {"input": "say:Par|is", "tools": [WEATHER], "tool_choice": "required"})
    arguments = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    [done] = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert json.loads(arguments) == {"city": "Paris"} and done["arguments"] == arguments
    assert events[-1]["response"]["output"][0]["type"] == "function_call"


def test_a_function_in_a_namespace_is_called_with_its_namespace(app: App) -> None:
    tools = [{"type": "namespace", "name": "travel", "description": "Travel tools", "tools": [WEATHER]}]
    response = post(app, {"input": "say:Rome", "tools": tools, "tool_choice": "required"})
    [call] = response.json()["output"]
    assert (call["namespace"], call["name"]) == ("travel", "get_weather")


def test_a_namespaced_call_sent_back_as_input_reaches_the_model(app: App) -> None:
    tools = [{"type": "namespace", "name": "travel", "description": "Travel tools", "tools": [WEATHER]}]
    response = post(app, {"tools": tools, "input": [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "call_1", "namespace": "travel", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]})
    assert response.status_code == 200 and response.json()["status"] == "completed"


PATCH = {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch.",
         "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch" /(.|\\n)*/'}}


def test_a_custom_tool_is_called_with_its_input_as_text(app: App) -> None:
    response = post(app, {"input": "say:*** Begin Patch", "tools": [PATCH], "tool_choice": "required"})
    [call] = response.json()["output"]
    assert call["type"] == "custom_tool_call" and call["id"].startswith("ctc_")
    assert (call["name"], call["input"]) == ("apply_patch", "*** Begin Patch")


def test_a_streamed_custom_tool_call_sends_its_input_when_whole(app: App) -> None:
    events = stream_events(app, {"input": "say:*** Begin|Patch", "tools": [PATCH], "tool_choice": "required"})
    [done] = [e for e in events if e["type"] == "response.custom_tool_call_input.done"]
    assert done["input"] == "*** BeginPatch"
    assert not [e for e in events if e["type"].startswith("response.function_call_arguments")]


def test_a_custom_tool_call_and_its_output_sent_back_reach_the_model(app: App) -> None:
    response = post(app, {"tools": [PATCH], "input": [
        {"role": "user", "content": "fix it"},
        {"type": "custom_tool_call", "call_id": "call_9", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_9", "output": "Done!"},
    ]})
    assert response.status_code == 200 and response.json()["status"] == "completed"


# -- what is refused --------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "Hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": "Hi", "tools": [WEATHER, {"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[1].type"),
    ({"input": "Hi", "reasoning": {"effort": "high"}}, "reasoning.effort"),
    ({"input": "Hi", "text": {"verbosity": "low"}}, "text.verbosity"),
    ({"input": "Hi", "background": True}, "background"),
    ({"input": "Hi", "conversation": "conv_1"}, "conversation"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input[0].content[0].type"),
    ({"input": "Hi", "include": ["file_search_call.results"]}, "include[0]"),
    ({"input": "Hi", "tool_choice": {"type": "web_search_preview"}, "tools": [WEATHER]}, "tool_choice.type"),
])
def test_an_unsupported_feature_is_a_400_naming_its_parameter(app: App, body: dict[str, Any], param: str) -> None:
    response = post(app, body)
    assert response.status_code == 400
    assert error_of(response)["param"] == param
    assert error_of(response)["code"] == "unsupported_parameter"


@pytest.mark.parametrize(("item", "param"), [
    ({"type": "function_call", "name": "f", "arguments": "{}"}, "input[0].call_id"),
    ({"role": "robot", "content": "Hi"}, "input[0].role"),
    ({"role": "user"}, "input[0].content"),
    ({"type": "function_call_output", "call_id": "c", "output": 5}, "input[0].output"),
])
def test_a_malformed_input_item_is_a_400_naming_its_field(app: App, item: dict[str, Any], param: str) -> None:
    response = post(app, {"input": [item]})
    assert response.status_code == 400 and error_of(response)["param"] == param


def test_codex_s_requests_are_accepted(app: App) -> None:
    # What Codex CLI 0.171 sends beside its input: accepted, since none of it asks for a feature
    # that would be silently missing.
    response = post(app, {
        "input": "Hi", "tools": [WEATHER], "tool_choice": "auto", "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"}, "store": False, "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0193", "client_metadata": {"x-codex-turn-metadata": "{}"}, "stream": False,
    })
    assert response.status_code == 200, response.text


def test_reasoning_effort_none_is_accepted_on_a_local_model(app: App) -> None:
    assert post(app, {"input": "Hi", "reasoning": {"effort": "none"}}).status_code == 200


def test_a_bad_field_is_a_400_naming_it(app: App) -> None:
    response = post(app, {"input": "Hi", "max_output_tokens": "many"})
    assert response.status_code == 400 and error_of(response)["param"] == "max_output_tokens"


def test_no_input_and_no_previous_response_is_a_400(app: App) -> None:
    response = post(app, {})
    assert response.status_code == 400 and error_of(response)["param"] == "input"


def test_the_classic_route_needs_an_api_version_with_the_responses_api(app: App) -> None:
    response = post(app, {"input": "Hi"}, "/openai/responses?api-version=2024-10-21")
    assert response.status_code == 400
    assert "2025-03-01-preview and later" in error_of(response)["message"]


def test_the_classic_route_without_an_api_version_is_a_404(app: App) -> None:
    assert post(app, {"input": "Hi"}, "/openai/responses").status_code == 404


def test_an_unknown_deployment_is_a_404(app: App) -> None:
    response = app.http().post("/openai/v1/responses", json={"model": "nope", "input": "Hi"})
    assert response.status_code == 404 and error_of(response)["code"] == "DeploymentNotFound"


def test_context_errors_name_the_responses_parameter(app: App) -> None:
    response = post(app, {"input": "word " * 3000})
    assert response.status_code == 400
    assert error_of(response)["code"] == "context_length_exceeded"
    assert error_of(response).get("param") in (None, "input")


def test_truncation_auto_drops_the_oldest_items_to_fit(app: App) -> None:
    items = [{"role": "user", "content": "word " * 700} for _ in range(4)] + [{"role": "user", "content": "Hi"}]
    assert post(app, {"input": items}).status_code == 400
    response = post(app, {"input": items, "truncation": "auto"})
    assert response.status_code == 200 and response.json()["truncation"] == "auto"


# -- the service underneath -------------------------------------------------------------------


def test_a_response_is_metered_as_responses_create(app: App, azure: openai.AzureOpenAI) -> None:
    response = azure.responses.create(model=DEPLOYMENT, input="Hello", user="metered-user")
    app.flush_usage()
    engine = sa.create_engine(app.settings.store_url)
    with engine.connect() as connection:
        row = connection.execute(sa.text(
            "SELECT prompt_tokens, completion_tokens FROM usage_records WHERE operation = 'Responses_Create' "
            "ORDER BY ts DESC LIMIT 1"
        )).one()
    engine.dispose()
    assert tuple(row) == (response.usage.input_tokens, response.usage.output_tokens)  # type: ignore[union-attr]


def test_a_response_reports_the_rate_limits_left(app: App) -> None:
    response = post(app, {"input": "Hello"})
    assert int(response.headers["x-ratelimit-remaining-requests"]) >= 0


def test_a_blocked_prompt_is_a_400_in_the_responses_shape(app: App) -> None:
    response = post(app, {"model": FILTERED, "input": f"a {TERM} word"})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["type"], error["param"]) == ("content_filter", "invalid_request_error", "prompt")
    assert "status" not in error and "Azure OpenAI\u2019s content management policy" in error["message"]
    assert error["innererror"] == {"code": "ContentFiltered"}  # the v1 API's, since 2026-09


def test_a_blocked_prompt_on_a_dated_api_version_has_no_inner_error(app: App) -> None:
    response = post(app, {"model": FILTERED, "input": f"a {TERM} word"},
                    f"/openai/responses?api-version={RESPONSES_API_VERSION}")
    assert response.status_code == 400 and "innererror" not in error_of(response)


def test_the_sdk_raises_a_content_filter_error_for_a_blocked_prompt(azure: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        azure.responses.create(model=FILTERED, input=f"a {TERM} word")
    assert raised.value.code == "content_filter"


def test_a_blocked_prompt_fails_a_stream_as_azure_does(app: App) -> None:
    events = stream_events(app, {"model": FILTERED, "input": f"a {TERM} word"})
    assert [event["type"] for event in events] == ["response.created", "response.in_progress", "response.failed", "error"]
    assert events[-1]["code"] == "content_policy_violation"
    assert events[2]["response"]["error"]["code"] == "content_filter"


def test_a_filtered_deployment_annotates_the_response_in_azures_responses_shape(app: App) -> None:
    body = post(app, {"model": FILTERED, "input": "Hello"}).json()
    prompt, completion = body["content_filters"]
    assert (prompt["source_type"], prompt["blocked"]) == ("prompt", False)
    assert (completion["source_type"], completion["blocked"]) == ("completion", False)
    assert completion["content_filter_results"]["custom_blocklists"]["filtered"] is False


def test_a_blocked_completion_ends_the_response_incomplete(app: App) -> None:
    body = post(app, {"model": FILTERED, "input": "say:a forb|idden word"}).json()
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "content_filter"}
    assert TERM not in json.dumps(body["output"])
    assert body["content_filters"][-1]["blocked"] is True


def test_a_blocked_streamed_completion_ends_incomplete_without_the_term(app: App) -> None:
    events = stream_events(app, {"model": FILTERED, "input": "say:a forb|idden word"})
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "content_filter"}
    assert TERM not in json.dumps(events)


def test_an_unfiltered_deployment_sends_no_content_filters(app: App) -> None:
    assert "content_filters" not in post(app, {"input": "Hello"}).json()
