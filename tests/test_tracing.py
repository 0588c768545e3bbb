"""Traces exported over OTLP/HTTP: a real `stockade serve` in front of the mock upstream, called
through the openai SDK, exporting to an OTLP receiver on loopback that decodes what it is sent
(opentelemetry-proto's ExportTraceServiceRequest)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AzureOpenAI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from conftest import API_VERSION, Server, mock_upstream, server_env, serving

pytestmark = pytest.mark.server

SECRET_PROMPT = "the launch code is tangerine-4471"
MAX_TOKENS = 7


@dataclass(frozen=True)
class Exported:
    span: Span
    service: str

    @property
    def attributes(self) -> dict[str, Any]:
        return {item.key: _value(item.value) for item in self.span.attributes}


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value"))


class Receiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces, protobuf bodies."""

    def __init__(self) -> None:
        self.spans: list[Exported] = []
        self.content_types: set[str] = set()
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest.FromString(body)
                received.content_types.add(self.headers["Content-Type"])
                for resource_spans in request.resource_spans:
                    service = next(a.value.string_value for a in resource_spans.resource.attributes
                                   if a.key == "service.name")
                    for scope in resource_spans.scope_spans:
                        received.spans += [Exported(span, service) for span in scope.spans]
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def named(self, name: str, timeout: float = 20) -> list[Exported]:
        """The spans called ``name`` once at least one has arrived (exports come in batches)."""
        deadline = time.monotonic() + timeout
        while not (found := [s for s in self.spans if s.span.name == name]):
            assert time.monotonic() < deadline, f"no span {name!r}; got {[s.span.name for s in self.spans]}"
            time.sleep(0.05)
        return found


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    thread = threading.Thread(target=receiving.server.serve_forever, daemon=True)
    thread.start()
    yield receiving
    receiving.server.shutdown()


@pytest.fixture(scope="module")
def traced(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("traced")
    with mock_upstream() as upstream:
        config = data_dir / "stockade.toml"
        config.write_text(
            f'[upstreams.mock]\nurl = "{upstream}/v1"\nmodels = ["mock-model"]\n\n'
            f'[telemetry]\notlp_endpoint = "{receiver.url}"\nservice_name = "stockade-test"\n'
        )
        env = server_env(data_dir, STOCKADE_CONFIG=str(config))
        with serving(env, data_dir, [("traced", "mock-model", 100, "mock")]) as running:
            yield running


@pytest.fixture(scope="module")
def client(traced: Server) -> AzureOpenAI:
    return AzureOpenAI(azure_endpoint=traced.url + "/", api_key=traced.key, api_version=API_VERSION,
                       max_retries=0)


@pytest.fixture(scope="module")
def chat(client: AzureOpenAI, receiver: Receiver) -> Exported:
    """The server span of one chat completion."""
    client.chat.completions.create(
        model="traced", messages=[{"role": "user", "content": SECRET_PROMPT}], max_tokens=MAX_TOKENS
    )
    return receiver.named("chat traced")[0]


def children(receiver: Receiver, parent: Exported) -> dict[str, Exported]:
    return {s.span.name: s for s in receiver.spans if s.span.parent_span_id == parent.span.span_id}


def test_a_call_is_a_server_span_named_for_its_operation_and_deployment(chat: Exported) -> None:
    assert chat.span.kind == Span.SPAN_KIND_SERVER
    assert chat.service == "stockade-test"
    assert chat.attributes["http.response.status_code"] == 200


def test_the_call_span_has_the_genai_attributes(chat: Exported) -> None:
    attributes = chat.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "traced"
    assert attributes["gen_ai.response.model"] == "mock-model"
    assert attributes["gen_ai.request.max_tokens"] == MAX_TOKENS
    assert attributes["gen_ai.usage.input_tokens"] == 5  # the mock upstream's PROMPT_TOKENS
    assert attributes["gen_ai.usage.output_tokens"] == MAX_TOKENS
    assert attributes["server.address"] == "127.0.0.1"


def test_admission_and_the_model_are_children_of_the_call(receiver: Receiver, chat: Exported) -> None:
    receiver.named("chat mock-model")
    below = children(receiver, chat)
    assert set(below) == {"admission", "chat mock-model"}
    assert all(child.span.trace_id == chat.span.trace_id for child in below.values())
    assert below["admission"].attributes["stockade.admission"] == "admitted"
    model = below["chat mock-model"]
    assert model.span.kind == Span.SPAN_KIND_CLIENT
    assert model.attributes["gen_ai.request.model"] == "mock-model"
    assert model.attributes["gen_ai.usage.output_tokens"] == MAX_TOKENS
    # The model runs once admitted, not before.
    assert model.span.start_time_unix_nano >= below["admission"].span.end_time_unix_nano


def test_no_span_carries_the_prompt(receiver: Receiver, chat: Exported) -> None:
    receiver.named("chat mock-model")
    for exported in receiver.spans:
        for value in exported.attributes.values():
            assert "tangerine" not in str(value)
        assert all("tangerine" not in str(event) for event in exported.span.events)


def test_a_callers_traceparent_makes_the_call_part_of_its_trace(client: AzureOpenAI, receiver: Receiver) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    client.chat.completions.create(
        model="traced", messages=[{"role": "user", "content": "hello"}], max_tokens=2,
        extra_headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    deadline = time.monotonic() + 20
    while not any(s.span.trace_id.hex() == trace_id for s in receiver.named("chat traced")):
        assert time.monotonic() < deadline, "the caller's trace never arrived"
        time.sleep(0.05)


def test_a_failed_call_names_its_error_type(client: AzureOpenAI, receiver: Receiver) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="missing", messages=[{"role": "user", "content": "hi"}])
    deadline = time.monotonic() + 20
    while not (failed := [s for s in receiver.named("chat") if s.attributes.get("http.response.status_code") == 404]):
        assert time.monotonic() < deadline, "the failed call's span never arrived"
        time.sleep(0.05)
    assert failed[0].attributes["error.type"] == "DeploymentNotFound"


def test_spans_are_exported_as_protobuf(receiver: Receiver, chat: Exported) -> None:
    assert receiver.content_types == {"application/x-protobuf"}


def test_the_server_writes_a_diagnostic_line_per_call_to_its_output(
    client: AzureOpenAI, traced: Server
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="traced", messages=[{"role": "user", "content": SECRET_PROMPT}], max_tokens=2
    )
    request_id = raw.headers["x-request-id"]
    log = Path(traced.data_dir / "server.log")
    deadline = time.monotonic() + 10
    while request_id not in (text := log.read_text()):
        assert time.monotonic() < deadline, "the call never reached the diagnostic log"
        time.sleep(0.05)
    line = next(line for line in text.splitlines() if request_id in line)
    assert '"category":"RequestResponse"' in line and '"resultSignature":"200"' in line
    assert "tangerine" not in text and "api-version" not in line
