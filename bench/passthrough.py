"""A bare passthrough: the least a Python gateway on a common stack can do, for bench/gateway.py.

The stack issue 12 names for it (Starlette, uvicorn with uvloop and httptools, aiohttp, orjson;
Stockade has its own upstream client since) and Stockade's route, but only one check: the
`api-key` header must equal KEY, else 401. The body goes on as received, never parsed, to
UPSTREAM_URL/chat/completions (UPSTREAM_URL as in Stockade's `[upstreams]` configuration, e.g.
http://127.0.0.1:8001/v1) on one pooled keep-alive session, and the upstream's body and status
come back as JSON. One process, no access log.

    python bench/passthrough.py PORT UPSTREAM_URL KEY
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

import aiohttp
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

JSON = "application/json"
# Azure's wording for a wrong key, so that a client sees what it would see from Stockade.
UNAUTHORIZED = orjson.dumps(
    {"error": {"code": "401",
               "message": "Access denied due to invalid subscription key or wrong API endpoint."}}
)
# Stockade's defaults for an upstream's pool (config.UpstreamSettings), so neither side queues more.
MAX_CONNECTIONS = 100
KEEPALIVE_SECONDS = 60


def create_app(upstream_url: str, key: str) -> Starlette:
    chat_completions_url = f"{upstream_url.rstrip('/')}/chat/completions"
    upstream_headers = {"Content-Type": JSON}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, aiohttp.ClientSession]]:
        connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS)
        async with aiohttp.ClientSession(connector=connector) as session:
            yield {"session": session}  # lifespan state: every request's request.state

    async def chat_completions(request: Request) -> Response:
        if request.headers.get("api-key") != key:
            return Response(UNAUTHORIZED, 401, media_type=JSON)
        body = await request.body()
        session: aiohttp.ClientSession = request.state.session
        async with session.post(chat_completions_url, data=body, headers=upstream_headers) as upstream:
            return Response(await upstream.read(), upstream.status, media_type=JSON)

    route = Route("/openai/deployments/{deployment}/chat/completions", chat_completions, methods=["POST"])
    return Starlette(routes=[route], lifespan=lifespan)


if __name__ == "__main__":
    port, upstream_url, key = sys.argv[1:]
    uvicorn.run(create_app(upstream_url, key), host="127.0.0.1", port=int(port), loop="uvloop",
                http="httptools", log_level="warning", access_log=False)
