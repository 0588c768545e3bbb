"""How the command line reaches the management API.

With ``--endpoint`` it calls a running server over HTTP with a key. Without one it runs the same
API in-process on the local data directory, as the local operator: whoever can read the store's
files is its owner already (as with ``sqlite3`` on the database file).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from stockade.api import create_app
from stockade.api.auth import LOCAL_PRINCIPAL_SCOPE_KEY
from stockade.auth import LOCAL_OPERATOR
from stockade.config import Settings
from stockade.core import Resource
from stockade.errors import ServiceError


class CommandError(Exception):
    """A failure to show the user as one clear line."""


class ManagementClient:
    def __init__(
        self, settings: Settings, endpoint: str | None, api_key: str | None, token: str | None = None
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.api_key = api_key
        self.token = token
        self.created_keys: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        if self.endpoint:
            response = self._remote(method, path, body, query)
        else:
            response = asyncio.run(self._local(method, path, body, query))
        if response.status_code >= 400:
            raise CommandError(_error_text(response))
        return response.json() if response.content else None

    def _remote(
        self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any]
    ) -> httpx.Response:
        if self.api_key:
            headers = {"api-key": self.api_key}
        elif self.token:
            headers = {"authorization": f"Bearer {self.token}"}
        else:
            raise CommandError(
                "--endpoint needs a credential: pass --api-key or set STOCKADE_API_KEY (key1 or "
                "key2, or an application key with the right role), or a token with --token"
            )
        try:
            return httpx.request(
                method,
                self.endpoint + path,
                json=body,
                params=query,
                headers=headers,
                timeout=60,
            )
        except httpx.HTTPError as exc:
            raise CommandError(
                f"cannot reach {self.endpoint} ({exc}); is `stockade serve` running there?"
            ) from None

    async def _local(
        self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any]
    ) -> httpx.Response:
        resource = Resource(self.settings)
        try:
            self.created_keys = await resource.open(background=False)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        except Exception as exc:
            raise CommandError(
                f"cannot open the store at {self.settings.store_url}: {exc}"
            ) from None
        app = create_app(resource)

        async def as_local_operator(scope: Any, receive: Any, send: Any) -> None:
            scope[LOCAL_PRINCIPAL_SCOPE_KEY] = LOCAL_OPERATOR
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=as_local_operator)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
                return await client.request(method, path, json=body, params=query)
        finally:
            await resource.close()


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") or response.text)
    except ValueError:
        return response.text or f"HTTP {response.status_code}"
