"""OpenTelemetry traces of calls, with the GenAI semantic conventions' attributes, exported over
OTLP/HTTP when ``telemetry.otlp_endpoint`` is set.

A call is one server span (``chat gpt-4o``: operation and deployment), with a child for admission
by the rate limiter and one for the model (``chat <model>``). Attributes are metadata only: names,
token counts, statuses, never a prompt, a completion or an error message (which can quote what
the caller sent). Without an endpoint nothing here runs: the middleware and the core skip every
span, and the SDK is not even imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from stockade.backends.base import Events, Usage

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from stockade.config import TelemetrySettings

PROVIDER_NAME = "azure.ai.openai"  # gen_ai.provider.name: the API Stockade serves
# Stockade's operation ids -> gen_ai.operation.name's well-known values.
GENAI_OPERATIONS = {
    "ChatCompletions_Create": "chat",
    "Completions_Create": "text_completion",
    "Embeddings_Create": "embeddings",
    "Responses_Create": "chat",  # a Responses call runs as chat underneath
}
_PROPAGATOR = TraceContextTextMapPropagator()


class Tracing:
    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider
        self.tracer = provider.get_tracer("stockade")

    @classmethod
    def configured(cls, settings: TelemetrySettings) -> Tracing | None:
        """Tracing that exports to the settings' collector, or None if they name none."""
        url = settings.traces_url
        if url is None:
            return None
        # Imported here: a server that exports nothing never loads the SDK.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
        )
        # Spans are exported in batches by the processor's own thread, never on the request path.
        exporter = OTLPSpanExporter(endpoint=url, headers=dict(settings.otlp_headers))
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
        return cls(provider)

    def start_call(self, scope: MutableMapping[str, Any]) -> tuple[Span, object]:
        """The server span of one request, current until ``end_call`` (which must run in the
        same context: the middleware's own, not a response's task); a caller's W3C
        ``traceparent`` header makes it part of the caller's trace."""
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"traceparent", b"tracestate")
        }
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        span = self.tracer.start_span(scope["method"], context=parent, kind=SpanKind.SERVER)
        if span.is_recording():
            span.set_attribute("http.request.method", scope["method"])
            span.set_attribute("url.path", scope["path"])  # never the query string
            server = scope.get("server")
            if server is not None:
                span.set_attribute("server.address", server[0])
                span.set_attribute("server.port", server[1])
            client = scope.get("client")
            if client is not None:
                span.set_attribute("client.address", client[0])
        return span, context.attach(trace.set_span_in_context(span))

    @staticmethod
    def end_call(
        span: Span,
        token: object,
        *,
        status: int,
        operation: str,
        deployment: str | None,
        model: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        error: str | None,
    ) -> None:
        context.detach(token)  # type: ignore[arg-type]
        if span.is_recording():
            span.set_attribute("http.response.status_code", status)
            name = GENAI_OPERATIONS.get(operation)
            if name is not None:
                span.update_name(f"{name} {deployment}" if deployment else name)
                span.set_attribute("gen_ai.operation.name", name)
                span.set_attribute("gen_ai.provider.name", PROVIDER_NAME)
                if deployment is not None:
                    # Azure callers name the deployment where others name the model.
                    span.set_attribute("gen_ai.request.model", deployment)
                if model is not None:
                    span.set_attribute("gen_ai.response.model", model)
                span.set_attribute("gen_ai.usage.input_tokens", prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", completion_tokens)
            if status >= 400:
                span.set_attribute("error.type", error or str(status))
                if status >= 500:  # HTTP semconv: a 4xx is the caller's error, not the server's
                    span.set_status(Status(StatusCode.ERROR))
        span.end()

    def close(self) -> None:
        """Export what is left, then stop."""
        self._provider.shutdown()


@contextlib.contextmanager
def admission(tracing: Tracing | None, deployment: str, reserved_tokens: int) -> Iterator[None]:
    """A span around the rate limiter's admission of a call, if the call is traced (a batch
    line, which is no HTTP call, is not)."""
    if tracing is None or not trace.get_current_span().is_recording():
        yield
        return
    with tracing.tracer.start_as_current_span(
        "admission", record_exception=False, set_status_on_exception=False
    ) as span:
        span.set_attribute("gen_ai.request.model", deployment)
        span.set_attribute("stockade.reserved_tokens", reserved_tokens)
        try:
            yield
        except BaseException as exc:
            span.set_attribute("error.type", error_type(exc))
            span.set_attribute("stockade.admission", "refused")
            raise
        span.set_attribute("stockade.admission", "admitted")


class ModelSpan:
    """The model's span, or nothing when the call is not traced."""

    def __init__(self, span: Span | None) -> None:
        self.span = span

    def used(self, prompt_tokens: int, completion_tokens: int, model: str | None = None) -> None:
        if self.span is not None:
            self.span.set_attribute("gen_ai.usage.input_tokens", prompt_tokens)
            self.span.set_attribute("gen_ai.usage.output_tokens", completion_tokens)
            if model is not None:
                self.span.set_attribute("gen_ai.response.model", model)

    def failed(self, exc: BaseException) -> None:
        if self.span is not None:
            self.span.set_attribute("error.type", error_type(exc))

    def end(self) -> None:
        if self.span is not None:
            self.span.end()


def model_span(tracing: Tracing | None, operation: str, model: str, max_tokens: int | None) -> ModelSpan:
    """A started span for a model call (``chat <model>``), a child of the current one; ended by
    whoever runs the model. Not made current: a generator's steps run in whichever context asks
    for them, and a context attached in one cannot be detached in another."""
    parent = trace.get_current_span()
    if tracing is None or not parent.is_recording():
        return ModelSpan(None)
    span = tracing.tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT)
    span.set_attribute("gen_ai.operation.name", operation)
    span.set_attribute("gen_ai.provider.name", PROVIDER_NAME)
    span.set_attribute("gen_ai.request.model", model)
    span.set_attribute("gen_ai.response.model", model)
    if max_tokens is not None:
        span.set_attribute("gen_ai.request.max_tokens", max_tokens)
        parent.set_attribute("gen_ai.request.max_tokens", max_tokens)
    return ModelSpan(span)


def model_stream(
    tracing: Tracing | None, events: Events, operation: str, model: str, max_tokens: int | None
) -> Events:
    """``events``, in the model's span, from the first event asked for to the last."""
    model_call = model_span(tracing, operation, model, max_tokens)
    if model_call.span is None:
        return events
    return _spanned(events, model_call)


@contextlib.contextmanager
def model_call(tracing: Tracing | None, operation: str, model: str) -> Iterator[ModelSpan]:
    """The model's span around a call that returns at once (embeddings)."""
    called = model_span(tracing, operation, model, None)
    try:
        yield called
    except BaseException as exc:
        called.failed(exc)
        raise
    finally:
        called.end()


async def _spanned(events: Events, model_call: ModelSpan) -> Events:
    try:
        async for item in events:
            if isinstance(item, Usage):
                model_call.used(item.prompt_tokens, item.completion_tokens, item.model)
            yield item
    except BaseException as exc:
        model_call.failed(exc)
        raise
    finally:
        await events.aclose()  # type: ignore[attr-defined]
        model_call.end()


def error_type(exc: BaseException) -> str:
    """An error's low-cardinality name for ``error.type``: its Azure code, else its class."""
    code = getattr(exc, "code", None)
    return str(code) if isinstance(code, str) and code else type(exc).__qualname__
