"""PHI protection with the real Presidio analyzer and spaCy model: what it finds, and what the
model and the client see through the openai SDK against the app in process. The backend is the
fake model, recording what it is asked to run (its ``say:`` prompts choose the reply, so a reply
holds the stand-ins the model was given)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from conftest import App, in_process
from fake_model import (
    CHAT_MODEL,
    EMBEDDING_MODEL,
    FakeChatModel,
    FakeEmbeddingModel,
)
from stockade.backends.base import Embeddings, Events, ModelHost, ModelSpec, Prepared
from stockade.requests import ChatRequest, CompletionRequest
from stockade.safety.phi.analyzer import PhiAnalyzer

pytestmark = pytest.mark.model  # Presidio's spaCy model

PHI = "personally_identifiable_information"
PHONE = "617-555-0143"
SSN = "345-67-8912"  # Presidio refuses the well-known sample SSNs as invalid


@dataclass
class Seen:
    """What the backend was asked to run: each prompt's texts, and each embeddings input."""

    prompts: list[list[str]] = field(default_factory=list)
    inputs: list[list[str]] = field(default_factory=list)

    def last(self) -> str:
        return "\n".join(self.prompts[-1])


SEEN = Seen()


class RecordingChat(FakeChatModel):
    """Records a request's text when it runs (prepare also counts the original for admission)."""

    def __init__(self, context_tokens: int) -> None:
        super().__init__(context_tokens)
        self.texts: dict[int, list[str]] = {}

    async def prepare(self, request: ChatRequest | CompletionRequest) -> Prepared:
        prepared = await super().prepare(request)
        if isinstance(request, ChatRequest):
            self.texts[id(prepared.job)] = [m.text() for m in request.messages]
        else:
            self.texts[id(prepared.job)] = [request.prompt] if isinstance(request.prompt, str) else list(request.prompt)  # type: ignore[list-item]
        return prepared

    async def generate(self, prepared: Prepared) -> Events:
        SEEN.prompts.append(self.texts.pop(id(prepared.job)))
        async for item in super().generate(prepared):
            yield item


class RecordingEmbeddings(FakeEmbeddingModel):
    async def embed(self, prepared: Prepared) -> Embeddings:
        SEEN.inputs.append([str(item) for item in prepared.job])
        return await super().embed(prepared)


def _chat(host: ModelHost) -> RecordingChat:
    return RecordingChat(host.settings.local.context_tokens)


MODELS = (
    ModelSpec(CHAT_MODEL, "chat", "local", "records what it runs", context_tokens=2048, factory=_chat),
    ModelSpec(EMBEDDING_MODEL, "embeddings", "local", "records what it embeds", context_tokens=512,
              dimensions=8, factory=lambda _host: RecordingEmbeddings()),
)
MODES = ("annotate", "block", "redact", "pseudonymize")


def user(*texts: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text} for text in texts]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    deployments = [(mode, CHAT_MODEL, 200) for mode in MODES] + [("emb", EMBEDDING_MODEL, 200)]
    with in_process(tmp_path_factory.mktemp("phi"), deployments, local_models=MODELS) as running:
        for mode in MODES:
            running.cli("content-filters", "create", f"phi-{mode}", "--phi", mode)
            running.cli("deployments", "update", mode, "--content-filter", f"phi-{mode}")
        running.cli("deployments", "update", "emb", "--content-filter", "phi-redact")
        running.deploy("both", CHAT_MODEL, 200)
        running.cli("content-filters", "create", "phi-and-profanity", "--phi", "redact", "--profanity")
        running.cli("deployments", "update", "both", "--content-filter", "phi-and-profanity")
        yield running


# -- what the analyzer finds --------------------------------------------------------------------


@pytest.fixture(scope="module")
def analyzer() -> PhiAnalyzer:
    return PhiAnalyzer()


def found(analyzer: PhiAnalyzer, text: str) -> set[tuple[str, str]]:
    return {(f.entity, text[f.start:f.end]) for f in analyzer.analyze([text])[0]}


@pytest.mark.parametrize(("text", "entity", "value"), [
    ("Patient John Smith was admitted.", "PERSON", "John Smith"),
    ("We saw Mrs. Okafor about her knee.", "PERSON", "Okafor"),
    ("Hello, my name is Dana Whitfield and I need help.", "PERSON", "Dana Whitfield"),
    ("Date of birth 04/12/1951.", "DATE_TIME", "04/12/1951"),
    (f"Call her at {PHONE} after six.", "PHONE_NUMBER", PHONE),
    ("Fax: (617) 555-0199 for the referral.", "FAX_NUMBER", "(617) 555-0199"),
    ("Write to j.smith@mailbox.org today.", "EMAIL_ADDRESS", "j.smith@mailbox.org"),
    (f"Her SSN is {SSN}.", "US_SSN", SSN),
    ("MRN: 88213307, bed 4.", "MEDICAL_RECORD_NUMBER", "88213307"),
    ("Member ID XJ4482913 with Acme Health.", "HEALTH_PLAN_NUMBER", "XJ4482913"),
    ("Account number 5512-8891-22 is overdue.", "ACCOUNT_NUMBER", "5512-8891-22"),
    ("Nursing licence no. RN-448812 expires soon.", "LICENSE_NUMBER", "RN-448812"),
    ("The car's VIN is 1HGCM82633A004352.", "VEHICLE_IDENTIFIER", "1HGCM82633A004352"),
    ("Licence plate 7ABC123 was seen.", "VEHICLE_IDENTIFIER", "7ABC123"),
    ("Pacemaker serial no. PM-778812 was checked.", "DEVICE_IDENTIFIER", "PM-778812"),
    ("Results at https://portal.clinic-example.org/results for you.", "URL", "https://portal.clinic-example.org/results"),
    ("The login came from 10.2.3.4 last night.", "IP_ADDRESS", "10.2.3.4"),
    ("She lives at 12 Oak Street, Springfield.", "STREET_ADDRESS", "12 Oak Street"),
    ("Zip code 02118.", "ZIP_CODE", "02118"),
    ("Springfield, MA 01103.", "ZIP_CODE", "01103"),
    ("He is 93 years old.", "AGE_OVER_89", "93"),
    ("A 97-year-old man fell.", "AGE_OVER_89", "97"),
])
def test_the_analyzer_finds_each_safe_harbor_identifier(analyzer: PhiAnalyzer, text: str, entity: str, value: str) -> None:
    assert (entity, value) in found(analyzer, text)


@pytest.mark.parametrize("text", ["He is 45 years old.", "She felt better today.", "Take it twice a day."])
def test_ages_to_89_and_dates_without_a_number_are_not_identifiers(analyzer: PhiAnalyzer, text: str) -> None:
    assert found(analyzer, text) == set()


def test_a_value_found_in_one_message_is_found_in_every_other(analyzer: PhiAnalyzer) -> None:
    texts = ["Patient Jane Doe was admitted.", "jane doe"]
    assert [[f.entity for f in fs] for fs in analyzer.analyze(texts)] == [["PERSON"], ["PERSON"]]


def test_the_analyzer_loads_and_runs_with_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any) -> None:
        raise AssertionError("PHI protection tried the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    fresh = PhiAnalyzer()
    assert fresh.analyze(["Write to j.smith@mailbox.org."])[0][0].entity == "EMAIL_ADDRESS"


# -- redact ---------------------------------------------------------------------------------------


def test_the_model_sees_placeholders_and_the_client_the_values(app: App) -> None:
    completion = app.azure().chat.completions.create(
        model="redact", messages=user(f"say:Patient Jane Doe, phone {PHONE}.")
    )
    assert SEEN.last() == "say:Patient <PERSON_1>, phone <PHONE_NUMBER_1>."
    assert completion.choices[0].message.content == f"Patient Jane Doe, phone {PHONE}."


def test_the_same_value_has_the_same_placeholder_in_every_message(app: App) -> None:
    app.azure().chat.completions.create(
        model="redact",
        messages=[{"role": "system", "content": "The patient is Jane Doe."}, *user("Is Jane Doe well? Ask John Roe.")],
    )
    assert SEEN.prompts[-1] == ["The patient is <PERSON_1>.", "Is <PERSON_1> well? Ask <PERSON_2>."]


def test_a_streamed_reply_gets_the_values_back_even_when_a_placeholder_is_split(app: App) -> None:
    # The reply streams "Dear <PERS", "ON_1>, call ", "<PHONE_NUM", "BER_1>": placeholders cut in two.
    stream = app.azure().chat.completions.create(
        model="redact",
        messages=user(f"Patient Jane Doe, phone {PHONE}.", "say:Dear <PERS|ON_1>, call |<PHONE_NUM|BER_1>"),
        stream=True,
    )
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == f"Dear Jane Doe, call {PHONE}"
    assert not any("<" in piece or ">" in piece for piece in pieces)
    assert "Jane Doe" not in "\n".join(SEEN.prompts[-1])


def test_a_completions_prompt_is_redacted(app: App) -> None:
    completion = app.azure().completions.create(model="redact", prompt=f"say:SSN {SSN} on file", max_tokens=10)
    assert SEEN.last() == "say:SSN <US_SSN_1> on file"
    assert completion.choices[0].text == f"SSN {SSN} on file"


def test_embeddings_input_is_redacted(app: App) -> None:
    app.azure().embeddings.create(model="emb", input=[f"Jane Doe, SSN {SSN}", "no identifiers here"])
    assert SEEN.inputs[-1] == ["<PERSON_1>, SSN <US_SSN_1>", "no identifiers here"]


def test_the_prompt_results_say_what_was_found_and_redacted_never_the_text(app: App) -> None:
    completion = app.azure().chat.completions.create(model="redact", messages=user(f"Jane Doe, {PHONE}"))
    results = completion.model_dump()["prompt_filter_results"][0]["content_filter_results"]
    assert results[PHI] == {
        "filtered": False,
        "detected": True,
        "sub_categories": [
            {"sub_category": "person", "filtered": False, "detected": True, "redacted": True},
            {"sub_category": "phone_number", "filtered": False, "detected": True, "redacted": True},
        ],
    }
    assert PHONE not in str(results) and "Jane" not in str(results)


def test_a_policy_s_other_filters_and_phi_protection_report_side_by_side(app: App) -> None:
    stream = app.azure().chat.completions.create(model="both", messages=user(f"say:SSN {SSN}"), stream=True)
    chunks = list(stream)
    results = chunks[0].model_dump()["prompt_filter_results"][0]["content_filter_results"]
    assert results["profanity"] == {"filtered": False, "detected": False}
    assert results[PHI]["detected"] is True
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"SSN {SSN}"
    assert SEEN.last() == "say:SSN <US_SSN_1>"


def test_the_decision_is_recorded_as_metadata_without_the_text(app: App) -> None:
    app.azure().chat.completions.create(model="redact", messages=user(f"SSN {SSN}"))
    app.flush_usage()
    record = app.http().get("/management/usage", params={"deployment": "redact", "limit": 1}).json()["data"][0]
    assert record["content_filter"] == f"phi-redact/prompt/{PHI}/redact"
    assert SSN not in str(record)


# -- pseudonymize, annotate, block --------------------------------------------------------------


def test_pseudonymizing_sends_the_model_a_surrogate_and_the_client_the_value(app: App) -> None:
    completion = app.azure().chat.completions.create(model="pseudonymize", messages=user("say:Jane Doe is here"))
    seen = SEEN.last()
    assert "Jane" not in seen and "<" not in seen and seen.endswith(" is here")
    assert completion.choices[0].message.content == "Jane Doe is here"


def test_a_pseudonymized_stream_gets_the_values_back(app: App) -> None:
    stream = app.azure().chat.completions.create(
        model="pseudonymize", messages=user(f"say:Call {PHONE} now"), stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == f"Call {PHONE} now"
    assert PHONE not in SEEN.last()


def test_annotating_lets_the_text_through_with_the_results(app: App) -> None:
    completion = app.azure().chat.completions.create(model="annotate", messages=user(f"say:SSN {SSN}"))
    assert SEEN.last() == f"say:SSN {SSN}"
    results = completion.model_dump()["prompt_filter_results"][0]["content_filter_results"][PHI]
    assert results["detected"] is True and results["filtered"] is False
    assert results["sub_categories"] == [{"sub_category": "us_ssn", "filtered": False, "detected": True, "redacted": False}]


def test_blocking_refuses_a_prompt_with_phi_as_azure_refuses_a_filtered_one(app: App) -> None:
    runs = len(SEEN.prompts)
    with pytest.raises(openai.BadRequestError) as raised:
        app.azure().chat.completions.create(model="block", messages=user(f"My SSN is {SSN}"), stream=True)
    assert (raised.value.code, raised.value.status_code) == ("content_filter", 400)
    inner = raised.value.body["innererror"]  # type: ignore[index]
    assert inner["content_filter_result"][PHI]["filtered"] is True
    assert inner["content_filter_result"][PHI]["sub_categories"][0]["sub_category"] == "us_ssn"
    assert len(SEEN.prompts) == runs  # the model never ran


def test_blocking_passes_a_prompt_without_phi(app: App) -> None:
    completion = app.azure().chat.completions.create(model="block", messages=user("say:How are you?"))
    assert completion.choices[0].message.content == "How are you?"


# -- failing closed -----------------------------------------------------------------------------


def broken(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: Any) -> None:
        raise RuntimeError("the analyzer is down")

    assert app.resource.safety.phi_analyzer is not None
    monkeypatch.setattr(app.resource.safety.phi_analyzer, "analyze", fail)


def test_a_failing_analyzer_refuses_the_request(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    broken(app, monkeypatch)
    runs = len(SEEN.prompts)
    with pytest.raises(openai.InternalServerError) as raised:
        app.azure().chat.completions.create(model="redact", messages=user(f"SSN {SSN}"))
    assert raised.value.code == "content_filter_error"
    assert len(SEEN.prompts) == runs


def test_a_policy_that_fails_open_passes_the_text_marked_unfiltered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with in_process(tmp_path, [("chat", CHAT_MODEL, 100)], local_models=MODELS) as fresh:
        fresh.cli("content-filters", "create", "open", "--phi", "redact", "--fail-open")
        fresh.cli("deployments", "update", "chat", "--content-filter", "open")
        broken(fresh, monkeypatch)
        completion = fresh.azure().chat.completions.create(model="chat", messages=user(f"say:SSN {SSN}"))
    results = completion.model_dump()["prompt_filter_results"][0]["content_filter_results"]
    assert results["error"]["code"] == "content_filter_error"
    assert SEEN.last() == f"say:SSN {SSN}"


# -- the support agents -------------------------------------------------------------------------


def test_a_customer_message_reaches_the_agent_s_models_redacted(app: App) -> None:
    with app.http() as http:
        conversation = http.post(
            "/routines/conversations", json={"routine": "baa", "deployment": "redact", "embeddings_deployment": "emb"}
        ).json()
        path = f"/routines/conversations/{conversation['id']}/messages"
        http.post(path, json={"content": "I need a BAA."}).raise_for_status()
        chats, embedded = len(SEEN.prompts), len(SEEN.inputs)
        http.post(path, json={"content": f"It is for Jane Doe's clinic, call {PHONE}"}).raise_for_status()
    sent = "\n".join(t for p in SEEN.prompts[chats:] for t in p) + "\n".join(t for i in SEEN.inputs[embedded:] for t in i)
    assert "<PHONE_NUMBER_1>" in sent
    assert PHONE not in sent and "Jane Doe" not in sent
