"""Stored responses: retrieve, delete and list the input items of what ``POST /responses``
stored, on the classic and v1 routes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.access import Permission
from stockade.api.api_versions import check_api_version
from stockade.api.credentials import identify, require
from stockade.api.query import page_limit, page_order
from stockade.api.responses import json_response
from stockade.core import Resource
from stockade.errors import InvalidRequest
from stockade.responses.stored import Kept, page

LIST_LIMIT, LIST_DEFAULT = 100, 20  # OpenAI's bounds for an input-items list


async def _kept(request: Request, classic: bool) -> Kept:
    """The stored response the path names, if the caller may call the deployment that made it."""
    check_api_version(request.scope["query_string"], classic)
    principal = await identify(request)
    resource: Resource = request.app.state.resource
    kept = await resource.responses.stored.get(request.path_params["response_id"])
    require(principal, Permission.INFERENCE, kept.deployment)
    return kept


def _handlers(*, classic: bool):  # type: ignore[no-untyped-def]
    async def retrieve(request: Request) -> Response:
        if request.query_params.get("stream", "false").lower() == "true":
            raise InvalidRequest(
                "'stream' is not supported when retrieving a response: its events are not kept. "
                "Retrieve it without stream.",
                code="unsupported_parameter", param="stream",
            )
        kept = await _kept(request, classic)
        return json_response(kept.response)

    async def delete(request: Request) -> Response:
        kept = await _kept(request, classic)
        resource: Resource = request.app.state.resource
        await resource.responses.stored.delete(kept.response["id"])
        return json_response({"id": kept.response["id"], "object": "response", "deleted": True})

    async def input_items(request: Request) -> Response:
        kept = await _kept(request, classic)
        query = request.query_params
        order = page_order(query.get("order"))
        items, has_more = page(kept.input, page_limit(query.get("limit"), LIST_LIMIT, LIST_DEFAULT), order, query.get("after"), query.get("before"))
        return json_response({
            "object": "list",
            "data": items,
            "first_id": items[0]["id"] if items else None,
            "last_id": items[-1]["id"] if items else None,
            "has_more": has_more,
        })

    return retrieve, delete, input_items


def routes() -> list[Route]:
    result = []
    for prefix, classic in (("/openai", True), ("/openai/v1", False), ("/v1", False)):
        retrieve, delete, input_items = _handlers(classic=classic)
        result += [
            Route(f"{prefix}/responses/{{response_id}}", retrieve, methods=["GET"]),
            Route(f"{prefix}/responses/{{response_id}}", delete, methods=["DELETE"]),
            Route(f"{prefix}/responses/{{response_id}}/input_items", input_items, methods=["GET"]),
        ]
    return result
