"""Routines over HTTP: the routines on offer, conversations that follow them, and support cases.

A turn's reply is JSON, or Server-Sent Events (``"stream": true``): one ``data:`` line per event
(``message`` events carry the text; ``step``, ``decision`` and ``function`` events what the
engine did), then ``data: [DONE]``, as chat completions stream.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator
from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.access import Permission, Principal
from stockade.api.audit import audited, describe
from stockade.api.credentials import authorize, identify, require
from stockade.api.management import PREFIX, Body, body_of, list_limit, query_flag, resource_of
from stockade.api.responses import event_stream, json_response
from stockade.routines.engine import Event, State
from stockade.store import Case, Conversation


class ConversationCreate(Body):
    routine: str
    deployment: str | None = None
    embeddings_deployment: str | None = None
    evaluation: bool = Field(
        False,
        description="A scripted evaluation's conversation: case lists leave its case out unless "
        "asked. Needs the right to change the deployments",
    )


class MessagePost(Body):
    content: Annotated[str, Field(min_length=1)]
    stream: bool = False


def _conversation(conversation: Conversation) -> dict[str, Any]:
    state = State.from_dict(conversation.state)
    return {
        "id": conversation.id,
        "routine": conversation.routine,
        "routine_version": conversation.routine_version,
        "deployment": conversation.deployment,
        "embeddings_deployment": conversation.embeddings_deployment,
        "case": conversation.case_id,
        "status": conversation.status,
        "step": state.confirming or state.awaiting,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
    }


def _case(case: Case) -> dict[str, Any]:
    return dataclasses.asdict(case)


async def list_routines(request: Request) -> Response:
    await authorize(request, Permission.READ)
    offered = resource_of(request).routines.catalogue.scan()
    return json_response({"data": [
        {
            "name": name,
            "title": found.routine.title if found.routine else None,
            "version": found.routine.version if found.routine else None,
            "findings": [finding.to_dict() for finding in found.findings],
        }
        for name, found in sorted(offered.items())
    ]})


async def show_routine(request: Request) -> Response:
    await authorize(request, Permission.READ)
    name = request.path_params["name"]
    routine = resource_of(request).routines.catalogue.get(name)
    return json_response(routine.to_dict())


async def create_conversation(request: Request) -> Response:
    principal = await identify(request)
    body: ConversationCreate = await body_of(request, ConversationCreate)
    create = functools.partial(_create, principal, body)
    if body.evaluation:
        return await audited(request, "conversations.evaluate", create)
    return await create(request)


async def _create(principal: Principal, body: ConversationCreate, request: Request) -> Response:
    resource = resource_of(request)
    chat, embeddings = resource.conversation_deployments(body.routine, body.deployment, body.embeddings_deployment)
    require(principal, Permission.INFERENCE, chat, embeddings)
    if body.evaluation:
        # Case lists leave an evaluation's case out, so a customer-facing key (OpenAI User) must
        # not be able to file real cases there: marking takes the right to change the
        # deployments, as the operator evaluating them has, and is in the audit log.
        require(principal, Permission.DEPLOYMENTS, chat, embeddings)
    conversation = await resource.routines.create(
        body.routine, principal.id, chat, embeddings, evaluation=body.evaluation
    )
    if body.evaluation:
        describe(request, f"conversations/{conversation.id}")
    return json_response(_conversation(conversation), 201)


async def show_conversation(request: Request) -> Response:
    await authorize(request, Permission.READ)
    routines = resource_of(request).routines
    conversation = await routines.get(request.path_params["id"])
    trace = await routines.trace(conversation)
    shown = _conversation(conversation)
    shown["trace"] = [dataclasses.asdict(event) for event in trace]
    if resource_of(request).settings.routines.keep_messages:
        messages = await routines.messages(conversation)
        shown["messages"] = [{"role": role, "content": content} for role, content in messages]
    return json_response(shown)


async def post_message(request: Request) -> Response:
    principal = await identify(request)
    routines = resource_of(request).routines
    conversation = await routines.get(request.path_params["id"])
    require(principal, Permission.INFERENCE, conversation.deployment, conversation.embeddings_deployment)
    body: MessagePost = await body_of(request, MessagePost)
    events = routines.post(conversation.id, body.content)
    # The first event is awaited before answering, so that refusals are proper 4xx replies.
    first = await anext(events)
    if body.stream:
        return event_stream(_chained(first, events))
    collected = [first, *[event async for event in events]]
    updated = await routines.get(conversation.id)
    return json_response({
        **_conversation(updated),
        "messages": [_message(event) for event in collected if event.kind == "message"],
        "events": [event.to_dict(with_text=False) for event in collected],
    })


def _message(event: Event) -> dict[str, Any]:
    message = {"step": event.step, "text": event.text, "source": event.detail.get("source")}
    shown = event.to_dict()
    for key in ("translation", "translation_blocked"):
        if key in shown:
            message[key] = shown[key]
    return message


async def _chained(first: Event, rest: AsyncIterator[Event]) -> AsyncIterator[dict[str, Any]]:
    yield first.to_dict()
    async for event in rest:
        yield event.to_dict()


async def list_cases(request: Request) -> Response:
    await authorize(request, Permission.READ)
    status = request.query_params.get("status")
    cases = await resource_of(request).routines.cases(
        list_limit(request), status, include_evaluations=query_flag(request, "include_evaluations")
    )
    return json_response({"data": [_case(case) for case in cases]})


async def show_case(request: Request) -> Response:
    await authorize(request, Permission.READ)
    case = await resource_of(request).routines.case(request.path_params["id"])
    return json_response(_case(case))


def routes() -> list[Route]:
    return [
        Route("/routines", list_routines, methods=["GET"]),
        Route("/routines/conversations", create_conversation, methods=["POST"]),
        Route("/routines/conversations/{id}", show_conversation, methods=["GET"]),
        Route("/routines/conversations/{id}/messages", post_message, methods=["POST"]),
        Route("/routines/{name}", show_routine, methods=["GET"]),
        Route(f"{PREFIX}/cases", list_cases, methods=["GET"]),
        Route(f"{PREFIX}/cases/{{id}}", show_case, methods=["GET"]),
    ]
