"""How the command line reaches the management API.

With ``--endpoint`` it calls a running server over HTTP with a key. Without one it runs the same
API in-process on the local data directory, as the local operator: whoever can read the store's
files is its owner already (as with ``sqlite3`` on the database file).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import httpx

from stockade.access import LOCAL_OPERATOR
from stockade.api import create_app
from stockade.api.credentials import LOCAL_PRINCIPAL_SCOPE_KEY
from stockade.config import STORE_FILE, Settings
from stockade.core import Resource
from stockade.errors import ServiceError, retry_after_ms
from stockade.store import shown_url, store_exists

TIMEOUT = 300.0
# A session that waits out rate limits resends a refused request after its Retry-After, this many
# times at most, and only when the wait is this short.
LIMITED_RETRIES = 5
LONGEST_WAIT_SECONDS = 60.0


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
        self.created_store = False

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        # Only a change may start a store (as a newcomer does before the first serve): a read
        # on a missing one would show an empty resource while the server runs on another.
        with self.session(create_store=method != "GET") as session:
            return session.request(method, path, body, **params)

    @contextlib.contextmanager
    def session(self, *, wait_out_rate_limits: bool = False, create_store: bool = False) -> Iterator[Session]:
        """Several calls on one connection, or on one in-process resource opened once. Batch work
        (a scripted evaluation) may wait out rate limits and resend what a 429 refused. Locally,
        a missing store is an error unless ``create_store``; ``created_store`` then says if one
        was made."""
        if self.endpoint:
            with httpx.Client(base_url=self.endpoint, headers=self._headers(), timeout=TIMEOUT) as http:
                yield Session(http.send, http.build_request, self.endpoint, wait_out_rate_limits)
            return
        exists = self._store_exists()
        if not exists and not create_store:
            raise CommandError(missing_store(self.settings))
        self.created_store = not exists
        with asyncio.Runner() as runner:
            # No diagnostic log nor traces: the command's own requests are its output's
            # business, and the audit log records the changes.
            quiet = self.settings.telemetry.model_copy(
                update={"diagnostic_log": "off", "otlp_endpoint": None}
            )
            resource = Resource(self.settings.model_copy(update={"telemetry": quiet}))
            try:
                self.created_keys = runner.run(resource.open(background=False))
            except ServiceError as exc:
                raise CommandError(exc.message) from None
            except Exception as exc:
                raise CommandError(self._unopened(exc)) from None
            app = create_app(resource)

            async def as_local_operator(scope: Any, receive: Any, send: Any) -> None:
                scope[LOCAL_PRINCIPAL_SCOPE_KEY] = LOCAL_OPERATOR
                await app(scope, receive, send)

            local = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=as_local_operator), base_url="http://local", timeout=TIMEOUT
            )

            def send(request: httpx.Request, stream: bool = False) -> httpx.Response:
                response = runner.run(local.send(request))
                runner.run(response.aread())
                # A plain response over the bytes read, so that callers treat both modes alike.
                return httpx.Response(
                    response.status_code, headers=response.headers, content=response.content, request=request
                )

            try:
                yield Session(send, local.build_request, None, wait_out_rate_limits)
            finally:
                runner.run(local.aclose())
                runner.run(resource.close())

    def _store_exists(self) -> bool:
        try:
            return store_exists(self.settings.store_url)
        except Exception as exc:
            raise CommandError(self._unopened(exc)) from None

    def _unopened(self, exc: Exception) -> str:
        return f"cannot open the store at {shown_url(self.settings.store_url)}: {exc}"

    def _headers(self) -> dict[str, str]:
        if self.api_key:
            return {"api-key": self.api_key}
        if self.token:
            return {"authorization": f"Bearer {self.token}"}
        raise CommandError(
            "--endpoint needs a credential: pass --api-key or set STOCKADE_API_KEY (key1 or "
            "key2, or an application key with the right role), or a token with --token"
        )


def store_location(settings: Settings) -> str:
    """The local store as a user would look for it: its database, or its file in the data directory."""
    if settings.database_url:
        return f"the database {shown_url(settings.database_url)}"
    return str(settings.data_dir.resolve() / STORE_FILE)


def missing_store(settings: Settings) -> str:
    """Why a local read found nothing, and how to reach the store or server meant."""
    if settings.database_url:
        where = f"{store_location(settings)} has no Stockade tables"
        elsewhere = "set database_url (or STOCKADE_DATABASE_URL) to the server's database"
    else:
        where = (
            f"no Stockade store in the data directory {settings.data_dir.resolve()} "
            f"(looked for {store_location(settings)})"
        )
        elsewhere = "pass the server's data directory with --data-dir DIR (or STOCKADE_DATA_DIR)"
    return (
        f"{where}; nothing was created. To manage the store of a `stockade serve` running "
        f"elsewhere, {elsewhere}, or reach the server with --endpoint URL --api-key KEY. "
        "A change such as `stockade deployments create` starts a new store here."
    )


class Session:
    def __init__(
        self,
        send: Callable[..., httpx.Response],
        build: Callable[..., httpx.Request],
        endpoint: str | None,
        wait_out_rate_limits: bool = False,
    ) -> None:
        self._send = send
        self._build = build
        self._endpoint = endpoint
        self._wait_out_rate_limits = wait_out_rate_limits

    def _response(self, method: str, path: str, body: dict[str, Any] | None, params: dict[str, Any], stream: bool) -> httpx.Response:
        query = {k: v for k, v in params.items() if v is not None}
        for attempt in range(LIMITED_RETRIES + 1):
            response = self._sent(self._build(method, path, json=body, params=query), stream)
            if response.status_code != 429 or not self._wait_out_rate_limits or attempt == LIMITED_RETRIES:
                break
            wait = retry_after_ms(response.headers) / 1000
            if wait > LONGEST_WAIT_SECONDS:
                break
            response.close()
            time.sleep(wait)
        return _checked(response)

    def _sent(self, request: httpx.Request, stream: bool) -> httpx.Response:
        try:
            return self._send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise CommandError(
                f"cannot reach {self._endpoint} ({exc}); is `stockade serve` running there?"
            ) from None

    def upload(self, path: str, fields: dict[str, str], name: str, file: BinaryIO) -> Any:
        """A multipart/form-data upload of ``file`` as the part ``file``, read as it is sent
        (so it is sent once: a 429 is not waited out)."""
        request = self._build("POST", path, data=fields, files={"file": (name, file)})
        return _checked(self._sent(request, stream=False)).json()

    def download(self, path: str, sink: BinaryIO) -> None:
        """The body of a GET written to ``sink`` as it arrives."""
        response = self._response("GET", path, None, {}, stream=True)
        try:
            for chunk in response.iter_bytes():
                sink.write(chunk)
        finally:
            response.close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        response = self._response(method, path, body, params, stream=False)
        return response.json() if response.content else None

    def events(self, method: str, path: str, body: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """The items of a Server-Sent Events reply, as they arrive."""
        response = self._response(method, path, body, {}, stream=True)
        try:
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    item = json.loads(line[len("data: "):])
                    # Azure's error envelope, sent in place of the rest of the stream. A failed
                    # function's event also has an "error", a string: it is an event like any other.
                    if isinstance(item.get("error"), dict):
                        raise CommandError(str(item["error"].get("message")))
                    yield item
        finally:
            response.close()


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        response.read()
        raise CommandError(_error_text(response))
    return response


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") or response.text)
    except ValueError:
        return response.text or f"HTTP {response.status_code}"
