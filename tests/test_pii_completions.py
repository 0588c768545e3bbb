"""PII on completions (Azure's ``personally_identifiable_information``) with the real Presidio
analyzer and spaCy model, through the openai SDK against the app in process. The backend is the
fake model, whose ``say:`` prompts choose the reply and the pieces it streams in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from conftest import App, in_process
from fake_model import CHAT_MODEL
from stockade.core.filtering import WINDOW_CHARS
from stockade.safety.phi.pii import PII_TAIL

pytestmark = pytest.mark.model  # Presidio's spaCy model

PHI = "personally_identifiable_information"
PHONE = "617-555-0143"
SSN = "345-67-8912"  # Presidio refuses the well-known sample SSNs as invalid
FILLER = "The weather today is mild and the harbour is quiet; ships come in slowly. " * 2
POLICIES = {
    "annotate": ("--pii", "annotate"),
    "block": ("--pii", "block"),
    "async": ("--pii", "block", "--streaming", "asynchronous"),
    # Names are redacted in prompts (and put back in the reply); completions are screened for all.
    "redact-names": ("--phi", "redact", "--phi-entity", "PERSON", "--pii", "annotate"),
    "redact-all": ("--phi", "redact", "--pii", "block"),
    "pseudonymize-all": ("--phi", "pseudonymize", "--pii", "block"),
}


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with in_process(tmp_path_factory.mktemp("pii"), [(name, CHAT_MODEL, 160) for name in POLICIES]) as running:
        for name, options in POLICIES.items():
            running.cli("content-filters", "create", f"pii-{name}", *options)
            running.cli("deployments", "update", name, "--content-filter", f"pii-{name}")
        yield running


LOOKUP = {
    "type": "function",
    "function": {
        "name": "look_up",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


def pii_result(choice: Any) -> dict[str, Any]:
    return choice.model_dump()["content_filter_results"][PHI]  # type: ignore[no-any-return]


# -- annotate -----------------------------------------------------------------------------------


def test_annotating_reports_the_completion_s_pii_and_lets_it_through(app: App) -> None:
    completion = app.azure().chat.completions.create(model="annotate", messages=user(f"say:Call {PHONE} now."))
    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == (f"Call {PHONE} now.", "stop")
    assert pii_result(choice) == {
        "filtered": False,
        "detected": True,
        "redacted_text": "Call ************ now.",
        "sub_categories": [{"sub_category": "phone_number", "filtered": False, "detected": True, "redacted": True}],
    }


def test_a_completion_without_pii_is_reported_clean(app: App) -> None:
    completion = app.azure().chat.completions.create(model="annotate", messages=user("say:All is well today."))
    assert pii_result(completion.choices[0]) == {"filtered": False, "detected": False, "sub_categories": []}


def test_pii_in_tool_call_arguments_is_reported_not_redacted(app: App) -> None:
    # The fake's forced tool call carries the reply as its argument; a call alone has no text to
    # redact, so nothing is marked redacted and no redacted_text is sent.
    completion = app.azure().chat.completions.create(
        model="annotate", messages=user(f"say:SSN {SSN}"), tools=[LOOKUP],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "look_up"}},
    )
    result = pii_result(completion.choices[0])
    assert "redacted_text" not in result
    assert result["sub_categories"] == [{"sub_category": "us_ssn", "filtered": False, "detected": True, "redacted": False}]


def test_pii_is_looked_for_in_completions_not_prompts(app: App) -> None:
    completion = app.azure().chat.completions.create(model="annotate", messages=user(f"My SSN is {SSN}. Hello?"))
    assert PHI not in completion.model_dump()["prompt_filter_results"][0]["content_filter_results"]


# -- block --------------------------------------------------------------------------------------


def test_blocking_ends_the_choice_with_content_filter_and_no_text(app: App) -> None:
    completion = app.azure().chat.completions.create(model="block", messages=user(f"say:Her SSN is {SSN}."))
    choice = completion.choices[0]
    assert (choice.finish_reason, choice.message.content) == ("content_filter", None)
    assert pii_result(choice) == {
        "filtered": True,
        "detected": True,
        "sub_categories": [{"sub_category": "us_ssn", "filtered": True, "detected": True, "redacted": False}],
    }


def test_blocking_ends_a_text_completion_with_content_filter(app: App) -> None:
    completion = app.azure().completions.create(model="block", prompt=f"say:SSN {SSN}", max_tokens=5)
    assert (completion.choices[0].finish_reason, completion.choices[0].text) == ("content_filter", "")


def test_blocking_ends_a_choice_whose_tool_call_arguments_hold_pii(app: App) -> None:
    completion = app.azure().chat.completions.create(
        model="block", messages=user(f"say:the patient with SSN {SSN}"), tools=[LOOKUP],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "look_up"}},
    )
    choice = completion.choices[0]
    assert (choice.finish_reason, choice.message.tool_calls) == ("content_filter", None)
    assert pii_result(choice)["sub_categories"][0]["sub_category"] == "us_ssn"


class Answer(BaseModel):
    text: str


def test_parse_raises_content_filter_finish_reason_error_on_a_blocked_completion(app: App) -> None:
    with pytest.raises(openai.ContentFilterFinishReasonError):
        app.azure().chat.completions.parse(
            model="block", messages=user(f'say:{{"text": "call {PHONE}"}}'), response_format=Answer
        )


def test_the_decision_is_recorded_as_metadata_without_the_text(app: App) -> None:
    app.azure().chat.completions.create(model="block", messages=user(f"say:SSN {SSN}"))
    app.flush_usage()
    record = app.http().get("/management/usage", params={"deployment": "block", "limit": 1}).json()["data"][0]
    assert record["content_filter"] == f"pii-block/completion/{PHI}/block"
    assert SSN not in str(record)


# -- streams --------------------------------------------------------------------------------------


def streamed(app: App, deployment: str, pieces: list[str]) -> tuple[str, list[Any]]:
    stream = app.azure().chat.completions.create(
        model=deployment, messages=user("say:" + "|".join(pieces)), stream=True, max_tokens=100,
    )  # max_tokens: what the rate limit reserves, so that the many streams of a test fit in a minute
    chunks = [c for c in stream if c.choices]
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices[0].delta), chunks


SPLITS = [
    (identifier, cut)
    for identifier in (PHONE, SSN)
    # From inside the identifier to where the guard's release point falls inside it.
    for cut in range(1, len(identifier) + PII_TAIL + 1)
]


@pytest.mark.parametrize(("identifier", "cut"), SPLITS, ids=[f"{i}-{c}" for i, c in SPLITS])
def test_no_part_of_a_streamed_identifier_is_sent_wherever_it_is_split(app: App, identifier: str, cut: int) -> None:
    reply = f"{FILLER}Call {identifier} if needed. {FILLER}"
    start = reply.index(identifier)
    sent, chunks = streamed(app, "block", [reply[:start + cut], reply[start + cut:]])
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert reply.startswith(sent) and len(sent) <= start


def test_a_clean_stream_is_sent_whole(app: App) -> None:
    sent, chunks = streamed(app, "block", [FILLER[:40], FILLER[40:]])
    assert sent == FILLER and chunks[-1].choices[0].finish_reason == "stop"


def test_asynchronous_mode_ends_the_choice_with_content_filter(app: App) -> None:
    pieces = [FILLER, f"Call {PHONE} now. ", FILLER, FILLER]
    sent, chunks = streamed(app, "async", pieces)
    last = chunks[-1]
    assert last.id == "" and last.choices[0].finish_reason == "content_filter"  # an annotation
    assert pii_result(last.choices[0])["filtered"] is True
    phone_end = len(FILLER) + len(f"Call {PHONE}")
    assert phone_end <= len(sent) <= phone_end + PII_TAIL + WINDOW_CHARS  # the documented bound


# -- the caller's own values, put back by PHI protection ----------------------------------------


def test_values_phi_protection_put_back_are_not_the_completion_s_pii(app: App) -> None:
    completion = app.azure().chat.completions.create(model="redact-names", messages=user("say:Patient Jane Doe is here."))
    choice = completion.choices[0]
    assert choice.message.content == "Patient Jane Doe is here."
    assert pii_result(choice)["detected"] is False


def test_an_identifier_beside_a_restored_value_is_still_the_completion_s_pii(app: App) -> None:
    # The prompt's name is redacted (the policy redacts names only); its phone number is not, so
    # the model writes it itself.
    completion = app.azure().chat.completions.create(
        model="redact-names", messages=user(f"say:Patient Jane Doe, phone {PHONE}.")
    )
    result = pii_result(completion.choices[0])
    assert [s["sub_category"] for s in result["sub_categories"]] == ["phone_number"]
    assert result["redacted_text"] == "Patient Jane Doe, phone ************."


@pytest.mark.parametrize("deployment", ["redact-all", "pseudonymize-all"])
def test_a_stream_of_restored_values_passes_a_blocking_policy(app: App, deployment: str) -> None:
    # The guard's windows (not the pieces) fall across the values.
    pieces = [FILLER, f"Patient Jane Doe, phone {PHONE}, SSN {SSN}. ", FILLER]
    sent, chunks = streamed(app, deployment, pieces)
    assert sent == "".join(pieces) and chunks[-1].choices[0].finish_reason == "stop"


# -- failing closed -----------------------------------------------------------------------------


def broken(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: Any) -> None:
        raise RuntimeError(f"the analyzer is down reading {SSN}")

    assert app.resource.safety.phi_analyzer is not None
    monkeypatch.setattr(app.resource.safety.phi_analyzer, "analyze", fail)


def test_a_failing_analyzer_refuses_the_completion(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken(app, monkeypatch)
    with pytest.raises(openai.InternalServerError) as raised:
        app.azure().chat.completions.create(model="block", messages=user(f"say:SSN {SSN}"))
    assert raised.value.code == "content_filter_error"
    assert "content filter of policy 'pii-block' failed" in caplog.text
    assert SSN not in caplog.text  # the exception's message may quote the text: it is not logged


def test_a_failing_analyzer_ends_a_stream_with_an_error(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    broken(app, monkeypatch)
    with pytest.raises(openai.APIError, match="refused rather than passed unscreened"):
        streamed(app, "block", [FILLER, FILLER])


def test_a_policy_that_fails_open_passes_the_completion_marked_unfiltered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with in_process(tmp_path, [("chat", CHAT_MODEL, 100)]) as fresh:
        fresh.cli("content-filters", "create", "open", "--pii", "block", "--fail-open")
        fresh.cli("deployments", "update", "chat", "--content-filter", "open")
        broken(fresh, monkeypatch)
        completion = fresh.azure().chat.completions.create(model="chat", messages=user(f"say:SSN {SSN}"))
    assert completion.choices[0].message.content == f"SSN {SSN}"
    assert completion.model_dump()["choices"][0]["content_filter_results"]["error"]["code"] == "content_filter_error"
