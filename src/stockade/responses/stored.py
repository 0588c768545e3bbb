"""Stored responses: each response and its input items sealed in the store until its expiry,
read back for ``GET``, ``input_items`` and the chains ``previous_response_id`` starts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from stockade.batch.sealing import Sealer
from stockade.config import ResponsesSettings
from stockade.errors import InvalidRequest, NotFound, shown
from stockade.store import Store
from stockade.store.responses import StoredResponse
from stockade.telemetry.outage import Outage, every

log = logging.getLogger(__name__)

PURGE_SECONDS = 60.0
DAY_SECONDS = 86_400


def response_not_found(response_id: str) -> NotFound:
    error = NotFound(
        f"Response with id {shown(response_id)!r} not found. It was never stored (`store: false`, "
        "or a deployment with zero data retention), was deleted, or passed its retention "
        "(responses.retention_days)."
    )
    error.type = "invalid_request_error"
    return error


@dataclass(frozen=True, slots=True)
class Kept:
    """A stored response as read back: the response object and the input items it was given."""

    deployment: str
    response: dict[str, Any]
    input: list[dict[str, Any]]


class StoredResponses:
    def __init__(
        self, store: Store, sealer: Sealer, settings: ResponsesSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.sealer = sealer
        self.settings = settings
        self.clock = clock

    def _open(self, row: StoredResponse) -> Kept:
        data = orjson.loads(self.sealer.open(row.data))
        return Kept(row.deployment, data["response"], data["input"])

    async def save(self, deployment: str, response: dict[str, Any], input_items: list[dict[str, Any]]) -> None:
        now = self.clock()
        sealed = self.sealer.seal(orjson.dumps({"response": response, "input": input_items}))
        row = StoredResponse(
            response["id"], deployment, response.get("previous_response_id"), now,
            now + self.settings.retention_days * DAY_SECONDS, sealed,
        )
        await asyncio.to_thread(self.store.responses.insert, row)

    async def get(self, response_id: str) -> Kept:
        row = await asyncio.to_thread(self.store.responses.get, response_id, self.clock())
        if row is None:
            raise response_not_found(response_id)
        return self._open(row)

    async def chain(self, response_id: str) -> list[Kept]:
        """The response ``previous_response_id`` names and those before it, oldest first."""
        longest = self.settings.longest_chain
        rows = await asyncio.to_thread(self.store.responses.chain, response_id, self.clock(), longest)
        if rows is None:
            error = response_not_found(response_id)
            error.param = "previous_response_id"
            raise error
        if len(rows) == longest and rows[0].previous_response_id is not None:
            raise InvalidRequest(
                f"The chain of responses before {shown(response_id)!r} is longer than this "
                f"server's limit of {longest} (responses.longest_chain). Start a new chain with "
                "the conversation so far as input.",
                code="invalid_value", param="previous_response_id",
            )
        return [self._open(row) for row in rows]

    async def delete(self, response_id: str) -> None:
        if not await asyncio.to_thread(self.store.responses.delete, response_id):
            raise response_not_found(response_id)

    async def purge(self) -> int:
        """Delete the responses past their retention; returns how many."""
        deleted = await asyncio.to_thread(self.store.responses.delete_expired, self.clock())
        if deleted:
            log.info("Deleted %d stored responses past their retention", deleted)
        return deleted

    async def purge_forever(self) -> None:
        """Purge every minute; what expired while no server ran goes at the next start."""
        outage = Outage(log, "deleting expired stored responses (they are deleted once it works again)")
        await every(PURGE_SECONDS, self.purge, outage)


def history(chain: list[Kept]) -> list[dict[str, Any]]:
    """The conversation a chain holds: each response's input items, then its output."""
    items: list[dict[str, Any]] = []
    for kept in chain:
        items += kept.input
        items += kept.response.get("output") or []
    return items


def page(
    items: list[dict[str, Any]], limit: int, order: str, after: str | None, before: str | None,
) -> tuple[list[dict[str, Any]], bool]:
    """A page of a response's input items, as OpenAI lists them: ``order`` by position (desc:
    newest first), starting after the item ``after`` and stopping before ``before``; and whether
    more follow."""
    ordered = items if order == "asc" else items[::-1]
    ids = [item.get("id") for item in ordered]
    start = ids.index(after) + 1 if after in ids else 0
    end = ids.index(before) if before in ids else len(ordered)
    if (after is not None and after not in ids) or (before is not None and before not in ids):
        missing = after if after is not None and after not in ids else before
        raise InvalidRequest(
            f"No input item {shown(missing or '')!r} in this response; page with the ids the "
            "last page gave (first_id, last_id).",
            code="invalid_value", param="after" if missing == after else "before",
        )
    window = ordered[start:end]
    return window[:limit], len(window) > limit
