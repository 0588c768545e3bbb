"""Usage in the management API: the records of calls, their summaries, and prices."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Annotated, Any, get_args

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.access import Permission, Principal
from stockade.api.audit import audited_route, describe
from stockade.api.credentials import authorize
from stockade.api.management import (
    BUILT_IN_CALLERS,
    PREFIX,
    Body,
    body_of,
    list_limit,
    query_flag,
    resource_of,
)
from stockade.api.responses import json_response
from stockade.billing.prices import Price, instant
from stockade.billing.summary import summarize
from stockade.errors import InvalidRequest, NotFound, shown
from stockade.store.usage import By

DEFAULT_DAYS = 30
WHEN = "an ISO 8601 date or time (2026-12-01, 2026-12-01T10:00:00Z; UTC unless it says) or seconds since the epoch"
Money = Annotated[float, Field(ge=0, le=1e9)]


class PriceSet(Body):
    model: str = Field(min_length=1, max_length=128)
    input_per_million: Money
    output_per_million: Money
    batch_discount: float = Field(0.5, ge=0, le=1)
    hourly_rate: Money | None = None
    effective_from: str | float | None = Field(None, description=f"{WHEN}; default: now")


def _text(request: Request, name: str) -> str | None:
    """A filter's value; PostgreSQL cannot compare text with NUL in it (a 500 there), so it is
    refused on every store."""
    value = request.query_params.get(name)
    if value is not None and "\x00" in value:
        raise InvalidRequest(f"{name} must not contain NUL characters (\\u0000).", param=name)
    return value


def _instant(request: Request, name: str) -> float | None:
    text = request.query_params.get(name)
    return None if text is None else _parsed(text, name)


def _parsed(value: str | float, name: str) -> float:
    try:
        return instant(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be {WHEN}; got {shown(str(value))!r}.", param=name) from None


async def _callers(request: Request, principal: Principal) -> list[str] | None:
    """The ids of the callers whose calls ``request`` asks about (None: everyone's). Without the
    usage permission, a caller sees its own calls only."""
    resource = resource_of(request)
    key = _text(request, "key")
    if not principal.allows(Permission.USAGE):
        return [principal.id] if key is None or key in (principal.id, principal.name) else []
    if key is None:
        return None
    callers = await asyncio.to_thread(resource.store.usage.caller_ids, key)
    callers += [caller for caller, name in BUILT_IN_CALLERS.items() if key in (caller, name)]
    if not callers:
        raise InvalidRequest(
            f"No key or identity, active or revoked, is named {shown(key)!r} or has that id. "
            "`stockade keys list` shows the active keys.",
            param="key",
        )
    return callers


def _range(request: Request, default_days: int | None) -> tuple[float | None, float | None]:
    """The query's since and until. With ``default_days``, since defaults to that many days
    before until, and until to now."""
    now = time.time()
    until = _instant(request, "until")
    since = _instant(request, "since")
    end = now if until is None else until
    if since is None and default_days is not None:
        since = end - default_days * 86400
    if since is not None and since >= end:
        raise InvalidRequest("since must be earlier than until (or now, without until).", param="since")
    return since, until if default_days is None else end


async def list_usage(request: Request) -> Response:
    principal = await authorize(request, Permission.READ)
    callers = await _callers(request, principal)
    since, until = _range(request, default_days=None)
    resource = resource_of(request)
    await resource.usage.flush()
    records = await resource.recent_usage(
        list_limit(request), _text(request, "deployment"), callers, since=since, until=until,
        content_filtered=query_flag(request, "content_filter"),
    )
    return json_response(
        {
            "data": [
                {**dataclasses.asdict(record), "key_name": name or BUILT_IN_CALLERS.get(record.key_id or "")}
                for record, name in records
            ]
        }
    )


async def usage_summary(request: Request) -> Response:
    principal = await authorize(request, Permission.READ)
    by = request.query_params.get("by")
    if by not in get_args(By):
        raise InvalidRequest(
            f"by must be one of {', '.join(get_args(By))}; got {shown(by or '')!r}.", param="by"
        )
    since, until = _range(request, DEFAULT_DAYS)
    assert since is not None and until is not None, "defaulted"
    callers = await _callers(request, principal)
    resource = resource_of(request)
    await resource.usage.flush()
    rows, total = await asyncio.to_thread(
        summarize, resource.store, resource.prices, resource.deployments(), by, since, until,  # type: ignore[arg-type]
        deployment=_text(request, "deployment"), key_ids=callers,
        known_callers=BUILT_IN_CALLERS,
    )
    return json_response({
        "object": "list", "by": by, "since": since, "until": until,
        "currency": resource.settings.billing.currency,
        "data": [{"group": group, **line.shown()} for group, line in rows],
        "total": total.shown(),
    })


def _price(price: Price, source: str) -> dict[str, Any]:
    return {**dataclasses.asdict(price), "source": source}


async def list_prices(request: Request) -> Response:
    await authorize(request, Permission.READ)
    resource = resource_of(request)
    await resource.refresh()
    stored = {(p.model, p.effective_from) for p in await asyncio.to_thread(resource.store.usage.list_prices)}
    return json_response({
        "object": "list", "currency": resource.settings.billing.currency,
        "data": [
            _price(p, "store" if (p.model, p.effective_from) in stored else "config")
            for p in sorted(resource.prices, key=lambda p: (p.model, p.effective_from))
        ],
    })


async def set_price(request: Request) -> Response:
    await authorize(request, Permission.QUOTAS)
    body: PriceSet = await body_of(request, PriceSet)
    effective_from = time.time() if body.effective_from is None else _parsed(body.effective_from, "effective_from")
    describe(request, f"{body.model} from {effective_from}")
    price = Price(
        body.model, effective_from, body.input_per_million, body.output_per_million,
        body.batch_discount, body.hourly_rate,
    )
    resource = resource_of(request)
    await asyncio.to_thread(resource.store.usage.put_price, price, time.time())
    await resource.refresh()
    return json_response(_price(price, "store"), status=201)


async def delete_price(request: Request) -> Response:
    await authorize(request, Permission.QUOTAS)
    model = request.path_params["model"]
    text = request.query_params.get("effective_from")
    if text is None:
        raise InvalidRequest(
            f"Name the row to delete with effective_from ({WHEN}); `stockade prices list` shows them.",
            param="effective_from",
        )
    effective_from = _parsed(text, "effective_from")
    describe(request, f"{model} from {effective_from}")
    resource = resource_of(request)
    if not await asyncio.to_thread(resource.store.usage.delete_price, model, effective_from):
        configured = any(
            p.model == model and p.effective_from == effective_from for p in resource.settings.billing.prices
        )
        raise NotFound(
            f"That price of {shown(model)!r} is set in stockade.toml ([[billing.prices]]): change it there."
            if configured else
            f"No stored price of {shown(model)!r} starts at {effective_from}; `stockade prices list` shows them."
        )
    await resource.refresh()
    return Response(status_code=204)



def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/usage", list_usage, methods=["GET"]),
        Route(f"{PREFIX}/usage/summary", usage_summary, methods=["GET"]),
        Route(f"{PREFIX}/prices", list_prices, methods=["GET"]),
        audited_route(f"{PREFIX}/prices", set_price, "POST", "prices.set"),
        audited_route(f"{PREFIX}/prices/{{model:path}}", delete_price, "DELETE", "prices.delete"),
    ]
