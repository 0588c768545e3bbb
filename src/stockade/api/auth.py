"""Who is calling: the ``api-key`` header, or a key sent as ``Authorization: Bearer``."""

from __future__ import annotations

from starlette.requests import Request

from stockade.auth import Permission, Principal
from stockade.core import Resource
from stockade.errors import PermissionDenied, Unauthorized

LOCAL_PRINCIPAL_SCOPE_KEY = "stockade.principal"


def authenticate(request: Request) -> Principal:
    # The command line's in-process client puts its principal in the ASGI scope; nothing that
    # arrives over the network can set scope entries.
    preset = request.scope.get(LOCAL_PRINCIPAL_SCOPE_KEY)
    if preset is not None:
        return preset
    resource: Resource = request.app.state.resource
    secret = request.headers.get("api-key")
    if secret is None:
        authorization = request.headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer":
            secret = credentials.strip()
    principal = resource.keys.authenticate(secret) if secret else None
    if principal is None:
        raise Unauthorized()
    return principal


def authorize(request: Request, permission: Permission, deployment: str | None = None) -> Principal:
    principal = authenticate(request)
    request.scope["state"]["call"].key_id = principal.id
    if not principal.allows(permission, deployment):
        raise PermissionDenied()
    return principal
