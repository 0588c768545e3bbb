"""Batch jobs over HTTP: ``/openai/batches`` (classic, ``api-version`` required) and
``/openai/v1/batches``. The routes translate to ``stockade.batch.jobs.Batches``, which checks
the job; the objects are Azure's Batch objects.

Who may see a batch: a caller who may call its deployment. Listing shows every deployment's
batches, so it needs a credential for the whole resource (a key scoped to one deployment reads and
cancels that deployment's batches by id)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.access import Permission, Principal
from stockade.api.api_versions import api_version, check_api_version
from stockade.api.body import read_body
from stockade.api.credentials import identify, require
from stockade.api.management import list_limit, resource_of
from stockade.api.responses import json_response
from stockade.batch.jobs import BatchView, batch_object
from stockade.requests import parse

CLASSIC = "/openai/batches"
V1 = "/openai/v1/batches"


class OutputExpiresAfter(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)

    anchor: Literal["created_at"]
    seconds: int = Field(description="How long the output and error files are kept")


class BatchCreate(BaseModel):
    """Azure's BatchCreateRequest. Unknown fields are ignored, as on the inference routes."""

    model_config = ConfigDict(strict=True, frozen=True)

    input_file_id: str = Field(description="A file uploaded with purpose batch")
    endpoint: str = Field(description="/chat/completions or /embeddings, with or without /v1")
    completion_window: str = Field(description="24h")
    metadata: dict[str, str] | None = Field(None, description="Up to 16 pairs")
    output_expires_after: OutputExpiresAfter | None = None


async def _caller(request: Request) -> Principal:
    """The api-version checked (404 before anything else, as the inference routes), then who."""
    check_api_version(request.scope["query_string"], classic=not request.url.path.startswith(V1))
    return await identify(request)


def _visible(principal: Principal, view: BatchView) -> BatchView:
    require(principal, Permission.INFERENCE, view.record.deployment)
    return view


async def create_batch(request: Request) -> Response:
    principal = await _caller(request)
    body: BatchCreate = parse(BatchCreate, await read_body(request, resource_of(request).settings.max_body_bytes))
    view = await resource_of(request).batches.create(
        principal,
        input_file_id=body.input_file_id,
        endpoint=body.endpoint,
        completion_window=body.completion_window,
        metadata=body.metadata,
        output_expires_after=body.output_expires_after.seconds if body.output_expires_after else None,
        api_version=api_version(request.scope["query_string"]),
    )
    return json_response(batch_object(view))


async def list_batches(request: Request) -> Response:
    principal = await _caller(request)
    require(principal, Permission.INFERENCE)
    views, has_more = await resource_of(request).batches.list(
        list_limit(request), request.query_params.get("after")
    )
    data = [batch_object(view) for view in views]
    return json_response({
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    })


async def get_batch(request: Request) -> Response:
    principal = await _caller(request)
    view = await resource_of(request).batches.get(request.path_params["id"])
    return json_response(batch_object(_visible(principal, view)))


async def cancel_batch(request: Request) -> Response:
    principal = await _caller(request)
    batches = resource_of(request).batches
    _visible(principal, await batches.get(request.path_params["id"]))
    return json_response(batch_object(await batches.cancel(request.path_params["id"])))


def routes() -> list[Route]:
    result = []
    for prefix in (CLASSIC, V1):
        result += [
            Route(prefix, create_batch, methods=["POST"]),
            Route(prefix, list_batches, methods=["GET"]),
            Route(f"{prefix}/{{id}}", get_batch, methods=["GET"]),
            Route(f"{prefix}/{{id}}/cancel", cancel_batch, methods=["POST"]),
        ]
    return result
