"""Network rules at the door: every request but the health probe comes from an allowed address.

Pure ASGI, inside ``CallMiddleware`` so that refusals carry request ids. It also leaves the
caller's resolved address in the request state for authentication's failed-attempt limits.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from stockade.access import Access
from stockade.api.credentials import CLIENT_ADDRESS_STATE_KEY, LOCAL_PRINCIPAL_SCOPE_KEY
from stockade.api.responses import error_response
from stockade.errors import NetworkDenied

# Load balancers probe health from their own addresses, which the rules need not list.
UNFILTERED_PATHS = frozenset({"/healthz", "/readyz"})


class NetworkMiddleware:
    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or LOCAL_PRINCIPAL_SCOPE_KEY in scope:
            await self.app(scope, receive, send)
            return
        peer = scope["client"][0] if scope.get("client") else None
        forwarded_for = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                # Several headers are one list, in order (RFC 9110 section 5.3).
                text = value.decode("latin-1")
                forwarded_for = text if forwarded_for is None else f"{forwarded_for},{text}"
        address = self.access.client_address(peer, forwarded_for)
        scope["state"][CLIENT_ADDRESS_STATE_KEY] = address
        if scope["path"] not in UNFILTERED_PATHS and not self.access.network.allows(address):
            await error_response(NetworkDenied())(scope, receive, send)
            return
        await self.app(scope, receive, send)
