"""Azure's asynchronous filter mode, the screening of tool-call arguments and the inner error's
spelling per api-version, through the openai SDK against the app in process over the fake model
(whose ``say:`` prompts choose the reply, and a forced tool call's string arguments)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import openai
import pytest

from conftest import App, in_process
from fake_model import CHAT_MODEL
from stockade.backends.base import Delta, Events, Usage
from stockade.core.filtering import WINDOW_CHARS, Annotation, Filtering, Screened
from stockade.safety import Category, Severity
from stockade.safety.blocklists import compile_blocklist
from stockade.safety.policy import Policy, Streaming
from stockade.safety.screen import Screen
from stockade.telemetry import Call

BLOCKING = "blocking-dep"  # the "words" list, streams screened before they are sent
ASYNC = "async-dep"  # the same list, in asynchronous mode
TERM = "forbidden"  # the one exact term of the list: its tail is len(TERM)
SPLIT = "forb|idden"  # TERM as a reply in two pieces: a prompt holding it whole is refused
INNOCENT = "The weather today is mild and the harbour is quiet; ships come in slowly. " * 3
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
FORCED = {"type": "function", "function": {"name": "get_weather"}}


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def pieces(text: str, size: int = 5) -> str:
    """``text`` as a ``say:`` reply in pieces of ``size`` characters."""
    return "say:" + "|".join(text[i:i + size] for i in range(0, len(text), size))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    deployments = [(BLOCKING, CHAT_MODEL, 300), (ASYNC, CHAT_MODEL, 300)]
    with in_process(tmp_path_factory.mktemp("streaming"), deployments) as running:
        running.cli("blocklists", "create", "words")
        running.cli("blocklists", "add-item", "words", TERM)
        running.cli("content-filters", "create", "held", "--blocklist", "words")
        running.cli("content-filters", "create", "behind", "--blocklist", "words", "--streaming", "asynchronous")
        running.cli("deployments", "update", BLOCKING, "--content-filter", "held")
        running.cli("deployments", "update", ASYNC, "--content-filter", "behind")
        yield running


def events(app: App, deployment: str, prompt: str, **options: Any) -> list[dict[str, Any]]:
    """The stream's events as sent, before [DONE]."""
    with app.http().stream(
        "POST", f"/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21",
        json={"messages": user(prompt), "stream": True, **options},
    ) as response:
        assert response.status_code == 200, response.read()
        lines = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def is_annotation(event: dict[str, Any]) -> bool:
    return event["id"] == "" and bool(event["choices"])


def sent_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0].get("delta", {}).get("content") or "" for c in chunks if c["choices"])


# -- the policy's streaming mode ----------------------------------------------------------------


def test_a_policy_streams_in_blocking_mode_unless_it_says_otherwise(app: App) -> None:
    shown = app.cli_json("content-filters", "show", "held")
    assert isinstance(shown, dict) and shown["streaming"] == "blocking"
    default = app.cli_json("content-filters", "show", "default")
    assert isinstance(default, dict) and default["streaming"] == "blocking"


def test_the_streaming_mode_is_set_and_changed_from_the_command_line(app: App) -> None:
    app.cli("content-filters", "create", "switching", "--streaming", "asynchronous")
    app.cli("content-filters", "update", "switching", "--streaming", "blocking")
    shown = app.cli_json("content-filters", "show", "switching")
    assert isinstance(shown, dict) and shown["streaming"] == "blocking"
    assert "asynchronous" in app.cli("content-filters", "show", "behind").stdout
    app.cli("content-filters", "delete", "switching", "--yes")


def test_an_unknown_streaming_mode_is_a_400_naming_the_field(app: App) -> None:
    response = app.http().put("/management/content-filters/eager", json={"streaming": "eager"})
    assert response.status_code == 400
    assert "streaming" in response.json()["error"]["message"]


# -- asynchronous mode ----------------------------------------------------------------------------


def test_asynchronous_mode_sends_the_first_text_before_any_check(app: App) -> None:
    sent = events(app, ASYNC, pieces(INNOCENT))
    first_text = next(i for i, e in enumerate(sent) if sent_text([e]))
    first_annotation = next(i for i, e in enumerate(sent) if is_annotation(e))
    assert first_text < first_annotation
    assert sent_text([sent[first_text]]) == INNOCENT[:5]  # one piece as the model gave it, not a window


def test_asynchronous_mode_sends_all_of_a_clean_text_and_annotations_covering_it(app: App) -> None:
    sent = events(app, ASYNC, pieces(INNOCENT))
    assert sent_text(sent) == INNOCENT
    annotations = [e for e in sent if is_annotation(e)]
    assert all((a["object"], a["created"], a["model"]) == ("", 0, "") for a in annotations)
    choices = [a["choices"][0] for a in annotations]
    assert all(set(c) == {"index", "finish_reason", "content_filter_results", "content_filter_offsets"} for c in choices)
    assert all(c["finish_reason"] is None for c in choices)
    checked = [c["content_filter_offsets"]["check_offset"] for c in choices]
    assert checked == sorted(checked) and checked[-1] == len(INNOCENT)
    assert all(
        c["content_filter_offsets"]["start_offset"] <= c["content_filter_offsets"]["check_offset"]
        <= c["content_filter_offsets"]["end_offset"] for c in choices
    )
    finishing = [e for e in sent if e["choices"] and e["choices"][0].get("finish_reason") == "stop"]
    assert len(finishing) == 1 and sent.index(finishing[0]) > sent.index(annotations[-1])


def test_a_violation_in_asynchronous_mode_ends_the_choice_with_a_content_filter_annotation(app: App) -> None:
    sent = events(app, ASYNC, pieces(INNOCENT) + "|" + SPLIT + "|" + pieces(" " + INNOCENT).removeprefix("say:"))
    last = [e for e in sent if e["choices"]][-1]
    assert is_annotation(last)
    assert last["choices"][0]["finish_reason"] == "content_filter"
    assert last["choices"][0]["content_filter_results"]["custom_blocklists"]["filtered"] is True
    assert not any(e["choices"][0].get("finish_reason") == "stop" for e in sent if e["choices"])


@pytest.mark.parametrize("after", [5, 500], ids=["small-pieces", "one-large-piece"])
def test_a_violation_is_signalled_within_the_documented_bound(app: App, after: int) -> None:
    # Our bound: no more than the tail (here the term's length) and a window of text go out
    # past the last character screened, however large the model's pieces.
    reply = INNOCENT + "|" + SPLIT + "|" + pieces(" " + INNOCENT * 4, after).removeprefix("say:")
    sent = sent_text(events(app, ASYNC, "say:" + reply))
    violation_end = len(INNOCENT) + len(TERM)
    assert sent[:violation_end].endswith(TERM)
    assert len(sent) - violation_end <= len(TERM) + WINDOW_CHARS


def test_the_openai_sdk_reads_an_asynchronous_stream(app: App) -> None:
    stream = app.azure().chat.completions.create(model=ASYNC, messages=user(pieces(INNOCENT)), stream=True)
    chunks = list(stream)
    annotations = [c for c in chunks if c.id == "" and c.choices]
    assert annotations and all(c.choices[0].delta is None for c in annotations)
    offsets = annotations[-1].choices[0].model_dump()["content_filter_offsets"]
    assert offsets["check_offset"] == len(INNOCENT)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].delta)
    assert text == INNOCENT


def test_the_openai_sdk_stream_helper_reads_an_asynchronous_stream(app: App) -> None:
    with app.azure().chat.completions.stream(model=ASYNC, messages=user(pieces(INNOCENT))) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == INNOCENT


def test_a_text_completion_streams_in_asynchronous_mode(app: App) -> None:
    stream = app.azure().completions.create(model=ASYNC, prompt=pieces(INNOCENT), max_tokens=500, stream=True)
    chunks = [c for c in stream if c.choices]
    annotations = [c for c in chunks if c.id == ""]
    assert annotations[-1].choices[0].model_dump()["content_filter_offsets"]["check_offset"] == len(INNOCENT)
    assert "".join(c.choices[0].text or "" for c in chunks if c.id) == INNOCENT


class FailsAfter:
    """A classifier that rates ``calls`` times (the prompt's among them), then breaks."""

    def __init__(self, calls: int) -> None:
        self.calls = calls

    async def classify(self, texts: Sequence[str]) -> list[dict[Category, Severity]]:
        self.calls -= 1
        if self.calls < 0:
            raise RuntimeError("the classifier is down")
        return [dict.fromkeys(Category, Severity.SAFE) for _ in texts]


def test_a_filter_failing_behind_an_asynchronous_stream_ends_it_with_an_error(tmp_path: Path) -> None:
    # The prompt and two windows are rated; the third window's check fails.
    with in_process(tmp_path, [(ASYNC, CHAT_MODEL, 300)], classifier=FailsAfter(3)) as broken:
        broken.cli("content-filters", "create", "behind", "--streaming", "asynchronous")
        broken.cli("deployments", "update", ASYNC, "--content-filter", "behind")
        stream = broken.azure().chat.completions.create(
            model=ASYNC, messages=user(pieces(INNOCENT)), stream=True
        )
        sent = ""
        with pytest.raises(openai.APIError, match="refused rather than passed unscreened"):
            for chunk in stream:
                sent += chunk.choices[0].delta.content or "" if chunk.choices and chunk.choices[0].delta else ""
    assert sent == INNOCENT[: 3 * WINDOW_CHARS]  # sent before the failing check, nothing after it


def test_usage_comes_last_in_asynchronous_mode(app: App) -> None:
    sent = events(app, ASYNC, pieces(INNOCENT), stream_options={"include_usage": True})
    assert sent[-1]["choices"] == [] and sent[-1]["usage"]["completion_tokens"] > 0
    assert all(e["usage"] is None for e in sent[1:-1])


# -- tool calls -----------------------------------------------------------------------------------


def forced(app: App, deployment: str, said: str, **options: Any) -> Any:
    return app.azure().chat.completions.create(
        model=deployment, messages=user("say:" + said), tools=[WEATHER], tool_choice=FORCED, **options  # type: ignore[list-item]
    )


def test_a_clean_tool_call_passes_with_its_results(app: App) -> None:
    choice = forced(app, BLOCKING, "Paris").choices[0]
    assert choice.finish_reason == "tool_calls"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Paris"}  # type: ignore[index, union-attr]
    assert choice.model_dump()["content_filter_results"]["custom_blocklists"]["filtered"] is False


def test_a_tool_call_with_blocked_arguments_ends_the_choice_without_it(app: App) -> None:
    choice = forced(app, BLOCKING, f"the {SPLIT} city").choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.message.tool_calls is None
    assert choice.model_dump()["content_filter_results"]["custom_blocklists"]["filtered"] is True


def test_escaped_arguments_are_screened_as_their_text(app: App) -> None:
    # The fake writes arguments with json.dumps, which escapes non-ASCII text: the list's term
    # "café" is found in "caf\u00e9" all the same.
    app.cli("blocklists", "add-item", "words", "café")
    choice = forced(app, BLOCKING, "the caf|é").choices[0]
    assert choice.finish_reason == "content_filter"


@pytest.mark.parametrize("deployment", [BLOCKING, ASYNC])
def test_a_streamed_tool_call_with_blocked_arguments_is_never_sent(app: App, deployment: str) -> None:
    sent = events(app, deployment, f"say:the {SPLIT} city", tools=[WEATHER], tool_choice=FORCED)
    choices = [e["choices"][0] for e in sent if e["choices"]]
    assert not any((c.get("delta") or {}).get("tool_calls") for c in choices)
    assert choices[-1]["finish_reason"] == "content_filter"


@pytest.mark.parametrize("deployment", [BLOCKING, ASYNC])
def test_a_clean_streamed_tool_call_is_sent_whole_with_its_finish(app: App, deployment: str) -> None:
    stream = forced(app, deployment, "Paris", stream=True)
    with_calls = [c for c in stream if c.choices and c.choices[0].delta and c.choices[0].delta.tool_calls]
    assert len(with_calls) == 1
    call = with_calls[0].choices[0]
    assert call.finish_reason == "tool_calls"
    assert json.loads(call.delta.tool_calls[0].function.arguments) == {"city": "Paris"}  # type: ignore[arg-type, index, union-attr]


# -- tool-call fragments, as an upstream streams them -------------------------------------------


def guarded(items: list[Delta | Usage], streaming: Streaming = Streaming.BLOCKING) -> list[Any]:
    """What the stream guard makes of these model events under a policy listing TERM."""
    screen = Screen(Policy("p", streaming=streaming), [compile_blocklist("words", (("exact", TERM),))], None, None)

    async def model() -> AsyncIterator[Delta | Usage]:
        for item in items:
            yield item

    async def run() -> list[Any]:
        events: Events = model()
        return [item async for item in Filtering(screen, Call("test")).stream(events)]

    return asyncio.run(run())


def fragments(*arguments: str) -> list[Delta | Usage]:
    first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    rest = [Delta(0, tool_calls=[{"index": 0, "function": {"arguments": a}}]) for a in arguments]
    return [Delta(0, tool_calls=[first]), *rest, Delta(0, finish_reason="tool_calls"), Usage(3, 4)]


def test_a_term_split_across_argument_fragments_is_caught() -> None:
    out = guarded(fragments('{"city": "forb', 'idden"}'))
    assert not any(isinstance(i, Screened) and i.delta.tool_calls for i in out)
    assert [i.delta.finish_reason for i in out if isinstance(i, Screened)] == ["content_filter"]


def test_argument_fragments_are_sent_as_one_whole_call() -> None:
    out = guarded(fragments('{"city": ', '"Paris"}'))
    released = [i for i in out if isinstance(i, Screened)]
    assert len(released) == 1 and released[0].delta.finish_reason == "tool_calls"
    assert released[0].delta.tool_calls == [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]


def test_asynchronous_mode_holds_tool_calls_and_ends_a_blocked_one_with_an_annotation() -> None:
    out = guarded(fragments('{"city": "forb', 'idden"}'), Streaming.ASYNCHRONOUS)
    assert not any(isinstance(i, Delta) and i.tool_calls for i in out)
    assert [i.finish_reason for i in out if isinstance(i, Annotation)] == ["content_filter"]


# -- the inner error's spelling per api-version ---------------------------------------------------


def blocked(app: App, path: str) -> dict[str, Any]:
    response = app.http().post(path, json={"model": BLOCKING, "messages": user(f"a {TERM} prompt")})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "content_filter"
    return dict(error)


@pytest.mark.parametrize("version", ["2024-10-21", "2025-04-01-preview", "2024-02-01"])
def test_dated_api_versions_carry_responsible_ai_policy_violation(app: App, version: str) -> None:
    error = blocked(app, f"/openai/deployments/{BLOCKING}/chat/completions?api-version={version}")
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert error["innererror"]["content_filter_result"]["custom_blocklists"]["filtered"] is True


def test_the_2023_previews_carry_inner_error_with_plural_results(app: App) -> None:
    error = blocked(app, f"/openai/deployments/{BLOCKING}/chat/completions?api-version=2023-12-01-preview")
    assert "innererror" not in error
    assert error["inner_error"]["code"] == "ResponsibleAIPolicyViolation"
    assert error["inner_error"]["content_filter_results"]["custom_blocklists"]["filtered"] is True


@pytest.mark.parametrize("query", ["", "?api-version=v1", "?api-version=preview", "?api-version=latest"])
def test_the_v1_api_carries_content_filtered(app: App, query: str) -> None:
    error = blocked(app, f"/openai/v1/chat/completions{query}")
    assert error["innererror"]["code"] == "ContentFiltered"
    assert error["innererror"]["content_filter_result"]["custom_blocklists"]["filtered"] is True


def test_a_v1_route_called_with_a_dated_version_answers_as_that_version(app: App) -> None:
    error = blocked(app, "/openai/v1/chat/completions?api-version=2024-10-21")
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"


def test_the_openai_sdk_on_the_v1_api_sees_content_filtered(app: App) -> None:
    client = openai.OpenAI(
        base_url=f"{app.client.base_url}/openai/v1/", api_key=app.key, http_client=app.client, max_retries=0
    )
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=BLOCKING, messages=user(f"a {TERM} prompt"))  # type: ignore[arg-type]
    assert raised.value.code == "content_filter"
    assert raised.value.body["innererror"]["code"] == "ContentFiltered"  # type: ignore[index]
