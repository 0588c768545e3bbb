"""The data plane: Azure's classic deployment routes and the v1 routes, in front of the core."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from stockade.access import Permission
from stockade.api.api_versions import api_version, check_api_version, filter_error_spelling
from stockade.api.body import read_body
from stockade.api.credentials import authenticate, identify, require
from stockade.api.middleware import ERROR_STATE_KEY
from stockade.api.responses import (
    error_response,
    event_stream,
    http_error_response,
    json_response,
    rate_limit_headers,
    send_json,
)
from stockade.backends.base import ModelSpec
from stockade.core import Resource
from stockade.core.inference import Answer
from stockade.errors import ContentFiltered, InvalidRequest, ResourceNotFound, ServiceError, shown
from stockade.requests import ChatRequest, CompletionRequest, EmbeddingRequest, parse
from stockade.responses.request import ResponseRequest, parse_request

RESPONSES = "Responses_Create"
# operation id (as Azure names it in errors and logs) -> request type
OPERATIONS: dict[str, type[Any]] = {
    "ChatCompletions_Create": ChatRequest,
    "Completions_Create": CompletionRequest,
    "Embeddings_Create": EmbeddingRequest,
    RESPONSES: ResponseRequest,
}
# The first api-version the classic /openai/responses route takes, as on Azure.
RESPONSES_API_VERSION = "2025-03-01-preview"


# Path under a prefix -> operation id. The classic deployment routes name the deployment in the
# path; the v1 routes and the classic resource-level ones name it in the body's "model".
_DEPLOYMENT_PATHS = {
    "chat/completions": "ChatCompletions_Create",
    "completions": "Completions_Create",
    "embeddings": "Embeddings_Create",
}
_CLASSIC = re.compile(r"/openai/deployments/([^/]+)/(chat/completions|completions|embeddings)")
_CLASSIC_RESOURCE = {"/openai/responses": RESPONSES}
_V1 = {
    f"{prefix}/{path}": operation
    for prefix in ("/openai/v1", "/v1")
    for path, operation in {**_DEPLOYMENT_PATHS, "responses": RESPONSES}.items()
}
# The routes this module serves, as the router would list them (for the route walk in the tests
# and the OpenAPI document), with their operation ids.
PATH_OPERATIONS = {
    **{f"/openai/deployments/{{deployment}}/{path}": op for path, op in _DEPLOYMENT_PATHS.items()},
    **_CLASSIC_RESOURCE,
    **_V1,
}
PATHS = list(PATH_OPERATIONS)


class InferenceRoutes:
    """The data plane's calls (chat, completions, embeddings), served ahead of the router.

    Plain ASGI, the innermost middleware: Starlette's router, exception layers and request objects
    cost about 18 µs a call, a tenth of a whole call's CPU (docs/performance.md). Every other
    request goes on to the router."""

    def __init__(self, app: ASGIApp, resource: Resource) -> None:
        self.app = app
        self.resource = resource

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            operation, deployment, classic = _V1.get(path), None, False
            if operation is None:
                classic = True
                if (match := _CLASSIC.fullmatch(path)) is not None:
                    deployment, operation = match[1], _DEPLOYMENT_PATHS[match[2]]
                else:
                    operation = _CLASSIC_RESOURCE.get(path)
            if operation is not None:
                await self._serve(operation, deployment, classic, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(
        self, operation: str, deployment: str | None, classic: bool, scope: Scope, receive: Receive,
        send: Send,
    ) -> None:
        if scope["method"] != "POST":
            await http_error_response(405, "Method Not Allowed", {"Allow": "POST"})(scope, receive, send)
            return
        try:
            answer = await self._call(operation, deployment, classic, Request(scope, receive))
        except ServiceError as error:
            if isinstance(error, ContentFiltered):
                error.spelling = filter_error_spelling(api_version(scope["query_string"]))
            scope["state"][ERROR_STATE_KEY] = error  # named by the metrics and the traces
            await error_response(error)(scope, receive, send)
            return
        headers = rate_limit_headers(answer.remaining)
        if isinstance(answer.content, dict):
            await send_json(send, answer.content, headers)
        else:
            await event_stream(answer.content, headers, typed=operation == RESPONSES)(scope, receive, send)

    async def _call(
        self, operation: str, path_deployment: str | None, classic: bool, request: Request
    ) -> Answer:
        call = request.scope["state"]["call"]
        call.operation = operation
        query = request.scope["query_string"]
        check_api_version(query, classic)
        if classic and operation == RESPONSES and (api_version(query) or "") < RESPONSES_API_VERSION:
            raise InvalidRequest(
                f"Azure OpenAI Responses API is enabled only for api-version {RESPONSES_API_VERSION} "
                f"and later. Send ?api-version={RESPONSES_API_VERSION} or later, or use the v1 "
                "route, /openai/v1/responses.",
                code="unsupported_api_version", param="api-version",
            )
        principal = await identify(request)
        body_type = OPERATIONS[operation]
        raw = await read_body(request, self.resource.settings.max_body_bytes)
        body = parse_request(raw) if body_type is ResponseRequest else parse(body_type, raw)
        if path_deployment is not None:
            name = path_deployment
        elif body.model:
            name = body.model
        else:
            raise InvalidRequest(
                "Missing required parameter: 'model'. On /v1 routes it names the deployment.",
                code="missing_required_parameter",
                param="model",
            )
        deployment = self.resource.deployment(name)
        call.deployment, call.model = deployment.name, deployment.model
        require(principal, Permission.INFERENCE, deployment.name)
        screen = self.resource.safety.screen(deployment)
        if isinstance(body, ResponseRequest):
            return await self.resource.responses.create(
                deployment, body, call, principal, screen, spelling=filter_error_spelling(api_version(query)),
                may_read=lambda name: require(principal, Permission.INFERENCE, name),
            )
        if isinstance(body, EmbeddingRequest):
            return await self.resource.inference.embed(deployment, body, call, principal, screen)
        return await self.resource.inference.generate(deployment, body, call, principal, screen)


def _azure_model(spec: ModelSpec) -> dict[str, Any]:
    chat = spec.kind == "chat"
    return {
        "id": spec.id,
        "object": "model",
        "created_at": 0,
        "status": "succeeded",
        "lifecycle_status": "generally-available",
        "capabilities": {
            "fine_tune": False,
            "inference": True,
            "completion": chat,
            "chat_completion": chat,
            "embeddings": not chat,
        },
        "deprecation": {},
        "owned_by": spec.backend,
    }


def _models_handlers(*, classic: bool):  # type: ignore[no-untyped-def]
    """List and show the deployable models; classic routes require an api-version."""

    async def list_models(request: Request) -> Response:
        check_api_version(request.scope["query_string"], classic)
        await authenticate(request)
        resource: Resource = request.app.state.resource
        return json_response({"object": "list", "data": [_azure_model(s) for s in resource.models()]})

    async def get_model(request: Request) -> Response:
        check_api_version(request.scope["query_string"], classic)
        await authenticate(request)
        resource: Resource = request.app.state.resource
        for spec in resource.models():
            if spec.id == request.path_params["model"]:
                return json_response(_azure_model(spec))
        raise ResourceNotFound(
            f"There is no model {shown(request.path_params['model'])!r}. `stockade models list` "
            "shows the models that can be deployed."
        )

    return list_models, get_model


def routes() -> list[Route]:
    """The model listings; the calls are InferenceRoutes'."""
    result = []
    for prefix, classic in (("/openai", True), ("/openai/v1", False), ("/v1", False)):
        list_models, get_model = _models_handlers(classic=classic)
        result += [
            Route(f"{prefix}/models", list_models, methods=["GET"]),
            Route(f"{prefix}/models/{{model:path}}", get_model, methods=["GET"]),
        ]
    return result
