"""Who is calling: the ``api-key`` header, or ``Authorization: Bearer`` with a token or a key."""

from __future__ import annotations

from starlette.requests import Request

from stockade.access import ENTRA, IPAddress, Permission, Principal
from stockade.access.roles import role_alias
from stockade.core import Resource
from stockade.errors import PermissionDenied

LOCAL_PRINCIPAL_SCOPE_KEY = "stockade.principal"
CLIENT_ADDRESS_STATE_KEY = "client_address"
PRINCIPAL_STATE_KEY = "principal"


def client_address(request: Request) -> IPAddress | None:
    """The caller's address as the network middleware resolved it."""
    return request.scope["state"].get(CLIENT_ADDRESS_STATE_KEY)


async def authenticate(request: Request) -> Principal:
    # The command line's in-process client puts its principal in the ASGI scope; nothing that
    # arrives over the network can set scope entries.
    preset = request.scope.get(LOCAL_PRINCIPAL_SCOPE_KEY)
    if preset is not None:
        return preset
    resource: Resource = request.app.state.resource
    bearer = None
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        bearer = credentials.strip()
    # With both headers, the key wins: that is what the openai SDK sends when a caller adds an
    # Authorization header of their own for a proxy in between.
    return await resource.access.authenticate(
        request.headers.get("api-key"), bearer, client_address(request)
    )


async def identify(request: Request) -> Principal:
    """Authenticate, and note the caller for the usage record; permissions are checked after."""
    principal = await authenticate(request)
    request.scope["state"][PRINCIPAL_STATE_KEY] = principal
    request.scope["state"]["call"].key_id = principal.id
    return principal


def require(principal: Principal, permission: Permission, *deployments: str | None) -> None:
    for deployment in deployments or (None,):
        if not principal.allows(permission, deployment):
            raise denied(principal, permission, deployment)


async def authorize(
    request: Request, permission: Permission, deployment: str | None = None
) -> Principal:
    principal = await identify(request)
    require(principal, permission, deployment)
    return principal


def denied(
    principal: Principal, permission: Permission, deployment: str | None = None
) -> PermissionDenied:
    if principal.kind == ENTRA:
        who, assign = f"The principal `{principal.id}`", f"--object-id {principal.id}"
    else:
        who, assign = f"The key {principal.name!r}", f"--key {principal.id}"
    scoped = [g for g in principal.grants if g.deployment and g.allows(permission, g.deployment)]
    if deployment is not None and scoped:
        # Allowed this on other deployments only: say which one it lacks, and how to grant it.
        held = " and ".join(sorted({repr(g.deployment) for g in scoped}))
        return PermissionDenied(
            f"{who} may use only the deployment {held}, not {deployment!r}. Grant it with "
            f"`stockade roles assign {assign} --role {role_alias(scoped[0].role)} "
            f"--deployment {deployment}`, or use a key for that deployment."
        )
    if principal.kind != ENTRA:
        return PermissionDenied()
    return PermissionDenied(
        f"{who} lacks the required role to perform this operation. "
        f"Assign one with `stockade roles assign {assign} --role openai-user`."
    )
