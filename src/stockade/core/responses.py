"""The Responses API on a deployment: the chain ``previous_response_id`` names read back, the
request run as chat through ``Inference`` (so limits, budgets, content filters, PHI protection
and metering are chat's own), the answer built as Responses objects and, where the deployment's
data policy allows, stored sealed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from stockade.access import Principal
from stockade.backends.base import Delta, Usage
from stockade.core.filtering import Annotation, Screened
from stockade.core.inference import Answer, Inference, Run, primed
from stockade.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    InnerErrorSpelling,
    InvalidRequest,
    ServiceError,
)
from stockade.quotas import Remaining
from stockade.requests import ChatRequest
from stockade.responses.conversation import chat_request, responses_param
from stockade.responses.objects import Event, Shell, StreamWriter, input_items, whole
from stockade.responses.request import (
    ResponseRequest,
)
from stockade.responses.stored import Kept, StoredResponses, history
from stockade.safety.screen import Screen
from stockade.store import Deployment
from stockade.telemetry import Call

OPERATION = "responses"
# Azure's code in the error event of a stream whose prompt its filters blocked (addendum, A2).
STREAM_FILTERED_CODE = "content_policy_violation"


def _truncated(chat: ChatRequest) -> ChatRequest | None:
    """``truncation: auto``: the chat without its oldest item (and the tool results answering
    it), keeping the instructions and the last message; None when nothing is left to drop."""
    messages = list(chat.messages)
    first = next((n for n, m in enumerate(messages) if m.role not in ("system", "developer")), None)
    if first is None or first >= len(messages) - 1:
        return None
    end = first + 1
    while end < len(messages) - 1 and messages[end].role == "tool":
        end += 1
    return chat.model_copy(update={"messages": messages[:first] + messages[end:]})


def _renamed(error: InvalidRequest) -> InvalidRequest:
    """A chat-side 400 naming the Responses parameter instead."""
    param = responses_param(error.param)
    if param != error.param and error.param is not None:
        error.message = error.message.replace(error.param, param or "", 1)
        error.param = param
    return error


class Responses:
    def __init__(self, inference: Inference, stored: StoredResponses) -> None:
        self.inference = inference
        self.stored = stored

    async def chain(self, request: ResponseRequest) -> list[Kept]:
        if request.previous_response_id is None:
            return []
        return await self.stored.chain(request.previous_response_id)

    async def create(
        self,
        deployment: Deployment,
        request: ResponseRequest,
        call: Call,
        principal: Principal,
        screen: Screen,
        *,
        spelling: InnerErrorSpelling,
        may_read: Callable[[str], None],
    ) -> Answer:
        """The response, whole or as its events. ``may_read`` refuses a chain holding responses
        of deployments the caller may not call; ``spelling`` is the api-version's for a
        content-filtered prompt."""
        chain = await self.chain(request)
        for deployment_name in {kept.deployment for kept in chain}:
            may_read(deployment_name)
        items = input_items(request)
        chat, functions = chat_request(request, history(chain), items, local=deployment.backend == "local")
        stores = request.stores and not deployment.zero_data_retention
        shell = Shell(request, deployment.model, stores)
        try:
            run = await self._run(deployment, chat, request, call, principal, screen)
        except ContentFiltered as error:
            error.as_responses(spelling)
            if request.stream:  # as Azure: a 200 stream that fails at once
                writer = StreamWriter(shell, functions, None)
                failed = [*writer.opening(), *writer.failed(error.code or "content_filter", error.message,
                                                             error.param, STREAM_FILTERED_CODE)]
                return Answer(_replayed(failed), Remaining(None, None))
            raise
        if request.stream:
            writer = StreamWriter(shell, functions, run.prompt_results)
            events = self._events(writer, run, deployment.name, items if stores else None)
            return Answer(await primed(events), run.remaining)
        completion, choice_results = await run.whole()
        body = whole(shell, completion, functions, run.prompt_results, choice_results)
        if stores:
            await self.stored.save(deployment.name, body, items)
        return Answer(body, run.remaining)

    async def _run(
        self, deployment: Deployment, chat: ChatRequest, request: ResponseRequest, call: Call,
        principal: Principal, screen: Screen,
    ) -> Run:
        while True:
            try:
                return await self.inference.run(deployment, chat, call, principal, screen, OPERATION)
            except ContextLengthExceeded as error:
                shorter = _truncated(chat) if request.truncation == "auto" else None
                if shorter is None:
                    raise _renamed(error) from None
                chat = shorter
            except InvalidRequest as error:
                raise _renamed(error) from None

    async def _events(
        self, writer: StreamWriter, run: Run, deployment: str, stored_items: list[dict[str, Any]] | None,
    ) -> AsyncIterator[Event]:
        """The stream, which reports its own failures as events and stores the response (when
        it is stored) before sending the event that ends it."""
        screened = run.screened()
        opened = False
        try:
            async for item in screened:
                if not opened:  # after the model's first event, so that early errors get a status
                    opened = True
                    for event in writer.opening():
                        yield event
                for event in _fed(writer, item):
                    yield event
            ending = writer.closing() if opened else [*writer.opening(), *writer.closing()]
        except ServiceError as error:
            if not opened:
                raise
            ending = writer.failed(error.code or "server_error", error.message, error.param)
        finally:
            await screened.aclose()  # type: ignore[attr-defined]
        if stored_items is not None and writer.final is not None:
            await self.stored.save(deployment, writer.final, stored_items)
        for event in ending:
            yield event


def _fed(writer: StreamWriter, item: Delta | Usage | Screened | Annotation) -> list[Event]:
    """The events one of the model's (screened) events makes."""
    if isinstance(item, Usage):
        writer.used(item)
        return []
    if isinstance(item, Annotation):
        writer.screened(item.results, item.offsets, item.finish_reason)
        return []
    if isinstance(item, Screened):
        writer.screened(item.results)
        item = item.delta
    return writer.delta(item)


async def _replayed(events: list[Event]) -> AsyncIterator[Event]:
    for event in events:
        yield event

