"""The audit log's writer: every management change is recorded, allowed or not.

A route is wrapped with the action it performs; the record names who (the principal, once
authenticated), what (action and target), when, from where (the resolved client address) and the
status answered. Request bodies are not recorded.
"""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.api.credentials import LOCAL_PRINCIPAL_SCOPE_KEY, PRINCIPAL_STATE_KEY, client_address
from stockade.core import Resource
from stockade.errors import ServiceError
from stockade.store import AuditEvent

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
TARGET_STATE_KEY = "audit_target"


def describe(request: Request, target: str) -> None:
    """Name what a call changed, where the path alone does not (e.g. who got which role)."""
    request.scope["state"][TARGET_STATE_KEY] = target[:256]


def audited_route(path: str, endpoint: Endpoint, method: str, action: str) -> Route:
    async def recorded(request: Request) -> Response:
        return await audited(request, action, endpoint)

    recorded.__name__ = endpoint.__name__
    return Route(path, recorded, methods=[method])


async def audited(request: Request, action: str, endpoint: Endpoint) -> Response:
    """Answer with ``endpoint``, and record the action whatever the outcome."""
    status = 500
    try:
        response = await endpoint(request)
        status = response.status_code
        return response
    except ServiceError as error:
        status = error.status
        raise
    finally:
        await _record(request, action, status)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return "unknown"


async def _record(request: Request, action: str, status: int) -> None:
    principal = request.scope["state"].get(PRINCIPAL_STATE_KEY)
    if principal is None and not (
        request.headers.get("api-key") or request.headers.get("authorization")
    ):
        return  # no credential at all: nothing was attempted, and such calls are not throttled
    if LOCAL_PRINCIPAL_SCOPE_KEY in request.scope:
        source = f"local:{_os_user()}"
    else:
        address = client_address(request)
        source = str(address) if address is not None else "unknown"
    event = AuditEvent(
        ts=time.time(),
        actor_id=principal.id if principal else "",
        actor=principal.name if principal else "(not authenticated)",
        source=source,
        action=action,
        target=request.scope["state"].get(TARGET_STATE_KEY)
        or "/".join(str(value) for value in request.path_params.values())
        or None,
        status=status,
    )
    resource: Resource = request.app.state.resource
    try:
        await resource.access.record(event)
    except Exception:  # the change itself is done; a lost audit record must be loud, not fatal
        log.exception("could not write the audit record of %s", action)
