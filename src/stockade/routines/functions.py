"""Where a routine's functions run: Python entry points, or HTTP webhooks into the user's systems.

A Python implementation is registered in the ``stockade.routine_functions`` entry-point group
under the function's name; it takes a ``FunctionCall`` and returns a ``FunctionResult`` (or an
awaitable of one). A webhook (``[routines.webhooks] name = "https://…"``) receives
``{"function", "arguments", "conversation", "case"}`` as JSON and answers
``{"message": "…", "data": {…}}``. Webhooks win over entry points of the same name.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import httpx

from stockade.config import Settings
from stockade.store import Store

ENTRY_POINT_GROUP = "stockade.routine_functions"
WEBHOOK_TIMEOUT_SECONDS = 10.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FunctionCall:
    name: str
    arguments: dict[str, Any]
    conversation: str
    case: str
    settings: Settings = field(repr=False)
    store: Store = field(repr=False)


@dataclass(frozen=True, slots=True)
class FunctionResult:
    message: str  # what the customer is told
    data: dict[str, Any] = field(default_factory=dict)  # recorded in the trace


class FunctionFailed(Exception):
    """The function could not run; the message is for the trace, not the customer."""


Implementation = Callable[[FunctionCall], FunctionResult | Awaitable[FunctionResult]]


def implemented(settings: Settings) -> set[str]:
    """The names of the functions that have an implementation: a webhook or an entry point."""
    return set(settings.routines.webhooks) | set(entry_points(group=ENTRY_POINT_GROUP).names)


class Functions:
    """The implementations available to routines, by function name."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._python: dict[str, Implementation] = {
            entry.name: entry.load() for entry in entry_points(group=ENTRY_POINT_GROUP)
        }
        self._webhooks: Mapping[str, str] = settings.routines.webhooks
        self._http: httpx.AsyncClient | None = None

    def names(self) -> set[str]:
        return set(self._python) | set(self._webhooks)

    async def run(self, name: str, arguments: dict[str, Any], conversation: str, case: str) -> FunctionResult:
        call = FunctionCall(name, arguments, conversation, case, self.settings, self.store)
        if name in self._webhooks:
            return await self._webhook(self._webhooks[name], call)
        implementation = self._python.get(name)
        if implementation is None:
            raise FunctionFailed(f"no implementation is registered for `{name}`")
        try:
            if inspect.iscoroutinefunction(implementation):
                result = await implementation(call)
            else:
                # A Python implementation may block (a database, a file); keep it off the loop.
                result = await asyncio.to_thread(implementation, call)
        except FunctionFailed:
            raise
        except Exception as exc:
            log.exception("routine function %s failed", name)
            raise FunctionFailed(f"`{name}` raised {type(exc).__name__}") from exc
        if not isinstance(result, FunctionResult):
            raise FunctionFailed(f"`{name}` returned {type(result).__name__}, not a FunctionResult")
        return result

    async def _webhook(self, url: str, call: FunctionCall) -> FunctionResult:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS)
        payload = {"function": call.name, "arguments": call.arguments,
                   "conversation": call.conversation, "case": call.case}
        try:
            response = await self._http.post(url, json=payload)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise FunctionFailed(f"webhook for `{call.name}` failed: {type(exc).__name__}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            raise FunctionFailed(f"webhook for `{call.name}` answered without a \"message\" string")
        data = body.get("data")
        return FunctionResult(body["message"], data if isinstance(data, dict) else {})

    async def hand_off(self, case: str, reason: str) -> None:
        """Close the case as passed to a person."""
        await asyncio.to_thread(self.store.close_case, case, "handed_off", reason)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
