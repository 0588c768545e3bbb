"""The ASGI application: routes, the request middleware and error rendering around a Resource."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from openai import AsyncAzureOpenAI
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stockade.access import ROUTINES_AGENT, Permission
from stockade.api import (
    access_management,
    batches,
    budgets,
    content_filters,
    files,
    inference,
    management,
    openapi,
    pages,
    routines,
    stored_responses,
    token_service,
    usage,
)
from stockade.api.api_versions import filter_error_spelling
from stockade.api.credentials import LOCAL_PRINCIPAL_SCOPE_KEY, authorize
from stockade.api.inference import InferenceRoutes
from stockade.api.middleware import CallMiddleware
from stockade.api.network_rules import NetworkMiddleware
from stockade.api.responses import error_response, http_error_response, json_response
from stockade.config import Settings
from stockade.core import Resource
from stockade.errors import BackendUnavailable, ResourceNotFound, ServiceError
from stockade.routines.service import Screening
from stockade.telemetry import metrics

KeysCreated = Callable[[dict[str, str]], None]
AGENT_API_VERSION = "2024-10-21"
AGENT_TIMEOUT_SECONDS = 120.0


async def _service_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(exc)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(ResourceNotFound())
    return http_error_response(exc.status_code, exc.detail, exc.headers)


async def health(request: Request) -> Response:
    """Liveness: always 200 while the process answers (a load balancer that restarted a replica
    over one broken model would take every other deployment down with it), with each deployed
    local model's state for whoever looks."""
    states = await request.app.state.resource.model_states()
    return json_response({"status": "ok", "models": states})


async def ready(request: Request) -> Response:
    """Readiness: 503 while a deployed local model has no running worker (loading, restarting,
    or failing to load), so that a load balancer sends calls to other replicas meanwhile."""
    states = await request.app.state.resource.model_states()
    down = sorted(model for model, state in states.items() if state["state"] != "ready")
    if not down:
        return json_response({"status": "ready", "models": states})
    error = BackendUnavailable(
        f"Not ready: no worker of {', '.join(down)} is running yet ("
        + ", ".join(f"{model}: {states[model]['state']}" for model in down)
        + "). Workers restart on their own; /healthz shows their state, the server log why."
    )
    return json_response({**error.body(), "models": states}, error.status)


async def metrics_endpoint(request: Request) -> Response:
    await authorize(request, Permission.USAGE)  # every caller's figures, as usage is
    pools = metrics.model_pools(await request.app.state.resource.model_states())
    body, content_type = metrics.exposition(pools)
    return Response(body, media_type=content_type)


def create_app(
    resource: Resource,
    *,
    on_keys_created: KeysCreated | None = None,
    warm_up: bool = True,
    on_started: Callable[[], None] | None = None,
    run_batches: bool = True,
) -> Starlette:
    """The application over ``resource``. ``run_batches``: run batch lines in this process too
    (not in a replica's HTTP workers, whose batch process runs them)."""
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        created = await resource.open()
        if created and on_keys_created is not None:
            on_keys_created(created)
        if warm_up:
            resource.start_models()
        if run_batches:
            resource.start_batch_runner(filter_error_spelling)
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            await resource.close()

    app = Starlette(
        routes=[
            Route("/healthz", health, methods=["GET"]),
            Route("/readyz", ready, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *inference.routes(),
            *batches.routes(),
            *files.routes(),
            *stored_responses.routes(),
            *management.routes(),
            *usage.routes(),
            *budgets.routes(),
            *content_filters.routes(),
            *access_management.routes(),
            *token_service.routes(),
            *routines.routes(),
            *pages.routes(),
            *openapi.routes(),
        ],
        middleware=[
            Middleware(
                CallMiddleware, usage=resource.usage, diagnostics=resource.diagnostics,
                tracing=resource.tracing,
            ),
            Middleware(NetworkMiddleware, access=resource.access),
            Middleware(InferenceRoutes, resource=resource),
        ],
        exception_handlers={ServiceError: _service_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.resource = resource
    resource.routines.connect(_agent_client(app, resource.settings), _screening(resource))
    return app


def _screening(resource: Resource) -> Screening | None:
    """How agents' customer messages are screened, when their chat deployments are this
    service's: by the deployment's content filter policy, as a prompt to it would be."""
    if resource.settings.routines.endpoint:
        return None  # the other Stockade's policies apply to what the agents send it

    async def blocked(deployment: str, text: str) -> dict[str, Any] | None:
        return await resource.safety.blocked_prompt(resource.deployment(deployment), text)

    return blocked


def _agent_client(app: Starlette, settings: Settings) -> AsyncAzureOpenAI:
    """The openai client routines' agents call models with: another Stockade if one is
    configured, else this app in process, as the routines agent (no secret, no network)."""
    if settings.routines.endpoint and settings.routines.api_key:  # the settings require both
        return AsyncAzureOpenAI(
            azure_endpoint=settings.routines.endpoint,
            api_key=settings.routines.api_key.get_secret_value(),
            api_version=AGENT_API_VERSION,
        )

    async def as_agent(scope: Scope, receive: Receive, send: Send) -> None:
        scope[LOCAL_PRINCIPAL_SCOPE_KEY] = ROUTINES_AGENT
        await app(scope, receive, send)

    transport = httpx.ASGITransport(app=as_agent)
    # openai 3.51 types http_client as its own vendored client class; an httpx.AsyncClient is
    # what it takes at run time (and what its documentation shows).
    return AsyncAzureOpenAI(  # type: ignore[call-overload]
        azure_endpoint="http://stockade.internal",
        api_key="in-process",  # never checked: the principal is set in the ASGI scope
        api_version=AGENT_API_VERSION,
        # No network to retry over, and a 429 is the customer's to wait out (the turn changes
        # nothing and its Retry-After says how long), not a reason to hold the turn open.
        max_retries=0,
        http_client=httpx.AsyncClient(transport=transport, timeout=AGENT_TIMEOUT_SECONDS),
    )
