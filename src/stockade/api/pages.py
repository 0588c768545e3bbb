"""The web pages Stockade serves: the operator console at ``/`` and the support chat.

Pages are static files. What they show comes from the API, called by the page's script with the
credential the user types in, so pages need no session or cookie of their own. Every page and
asset carries a strict Content-Security-Policy: scripts and styles only from this origin, requests
only to this origin, no framing.
"""

from __future__ import annotations

from importlib.resources import files

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_PACKAGE = ("stockade.api", "static")
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}
_RAW_SECURITY_HEADERS = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
CHAT_PAGE = files(STATIC_PACKAGE[0]).joinpath(STATIC_PACKAGE[1], "chat.html").read_bytes()
# The address the start banner prints.
CONSOLE_PAGE = files(STATIC_PACKAGE[0]).joinpath(STATIC_PACKAGE[1], "console.html").read_bytes()


class _Secured:
    """Adds the security headers to whatever the wrapped app answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *_RAW_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_secured)


async def chat(_: Request) -> Response:
    return HTMLResponse(CHAT_PAGE, headers={"cache-control": "no-cache"})


async def console(_: Request) -> Response:
    return HTMLResponse(CONSOLE_PAGE, headers={"cache-control": "no-cache"})


def routes() -> list[BaseRoute]:
    secured = [Middleware(_Secured)]
    return [
        Route("/", console, methods=["GET"], middleware=secured),
        Route("/chat", chat, methods=["GET"], middleware=secured),
        Mount("/static", app=StaticFiles(packages=[STATIC_PACKAGE]), middleware=secured),
    ]
