"""The management API for budgets: /management/budgets (docs/budgets.md).

Listing needs the usage permission (a budget's state says what its scope spent); changing one,
the quota permission, as a deployment's quota does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.parse
from typing import Annotated, Any, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.access import Permission
from stockade.api.audit import audited_route, describe
from stockade.api.credentials import authorize
from stockade.api.management import PREFIX, Body, body_of, resource_of
from stockade.api.responses import json_response
from stockade.core import Resource
from stockade.errors import Conflict, InvalidRequest, NotFound
from stockade.names import check_name
from stockade.store.budgets import DEFAULT_THRESHOLDS, Budget

Amount = Annotated[float, Field(gt=0, le=1e12, description="In billing.currency")]
Thresholds = Annotated[
    list[Annotated[float, Field(gt=0, le=10)]],
    Field(min_length=1, max_length=20, description="Shares of the amount that alert, e.g. 0.8"),
]
Webhook = Annotated[str | None, Field(max_length=2048, description="POSTed each threshold as it fires")]
HARD = "Refuse calls (429 insufficient_quota) that could take spending past the amount"


class BudgetCreate(Body):
    name: str
    scope: Literal["key", "deployment", "resource"]
    target: str | None = Field(None, description="The key's or deployment's name; none for the resource")
    period: Literal["day", "month"] = "month"
    amount: Amount
    thresholds: Thresholds = Field(default_factory=lambda: list(DEFAULT_THRESHOLDS))
    hard: bool = Field(False, description=HARD)
    webhook: Webhook = None


class BudgetUpdate(Body):
    """Fields left out keep their value; a null webhook removes it."""

    period: Literal["day", "month"] | None = None
    amount: Amount | None = None
    thresholds: Thresholds | None = None
    hard: bool | None = Field(None, description=HARD)
    webhook: Webhook = None


def _checked_webhook(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise InvalidRequest(
            "webhook is the http:// or https:// URL that alerts are POSTed to, e.g. "
            "https://hooks.example/budgets.",
            param="webhook",
        )
    return url


async def _checked_target(resource: Resource, scope: str, target: str | None) -> None:
    if scope == "resource":
        if target is not None:
            raise InvalidRequest("A budget of the whole resource has no target; leave it out.", param="target")
        return
    if target is None:
        raise InvalidRequest(f"A {scope} budget needs a target: the {scope}'s name.", param="target")
    if scope == "deployment":
        await resource.check_deployment_exists(target)
    elif not any(key.name == target for key in await resource.list_keys()):
        raise InvalidRequest(
            f"No active key is named {target!r}; `stockade keys list` shows the keys there are.",
            param="target",
        )


def _thresholds(values: list[float]) -> tuple[float, ...]:
    return tuple(sorted(set(values)))


async def _shown(resource: Resource, budgets: list[Budget]) -> list[dict[str, Any]]:
    spending = resource.spending
    states = [await spending.state(budget) for budget in budgets]
    fired = await asyncio.to_thread(
        resource.store.budgets.fired, {b.name: bounds[0] for b, (_, _, bounds) in zip(budgets, states, strict=True)}
    )
    return [
        {
            "name": budget.name, "scope": budget.scope, "target": budget.target, "period": budget.period,
            "amount": budget.amount, "currency": spending.currency, "thresholds": list(budget.thresholds),
            "hard": budget.hard, "webhook": budget.webhook,
            "period_start": start, "period_end": end, "spent": round(spent, 9), "held": round(held, 9),
            "alerts_fired": fired.get(budget.name, []),
        }
        for budget, (spent, held, (start, end)) in zip(budgets, states, strict=True)
    ]


def _not_found(name: str) -> NotFound:
    return NotFound(f"There is no budget named {name!r}; `stockade budgets list` shows those there are.")


async def _budget(resource: Resource, name: str) -> Budget:
    budget = await asyncio.to_thread(resource.store.budgets.get, name)
    if budget is None:
        raise _not_found(name)
    return budget


async def list_budgets(request: Request) -> Response:
    await authorize(request, Permission.USAGE)
    resource = resource_of(request)
    budgets = await asyncio.to_thread(resource.store.budgets.all)
    return json_response({"object": "list", "data": await _shown(resource, budgets)})


async def show_budget(request: Request) -> Response:
    await authorize(request, Permission.USAGE)
    resource = resource_of(request)
    budget = await _budget(resource, request.path_params["name"])
    return json_response((await _shown(resource, [budget]))[0])


async def create_budget(request: Request) -> Response:
    await authorize(request, Permission.QUOTAS)
    body: BudgetCreate = await body_of(request, BudgetCreate)
    describe(request, body.name)
    check_name(body.name, "budget")
    resource = resource_of(request)
    await _checked_target(resource, body.scope, body.target)
    now = time.time()
    budget = Budget(
        body.name, body.scope, body.target, body.period, body.amount, _thresholds(body.thresholds),
        body.hard, _checked_webhook(body.webhook), now, now,
    )
    if not await asyncio.to_thread(resource.store.budgets.insert, budget):
        raise Conflict(f"A budget named {body.name!r} already exists.", code="BudgetExists")
    await resource.refresh()
    return json_response((await _shown(resource, [budget]))[0], status=201)


async def update_budget(request: Request) -> Response:
    await authorize(request, Permission.QUOTAS)
    body: BudgetUpdate = await body_of(request, BudgetUpdate)
    resource = resource_of(request)
    current = await _budget(resource, request.path_params["name"])
    changes: dict[str, Any] = {field: getattr(body, field) for field in body.model_fields_set}
    for field in ("period", "amount", "thresholds", "hard"):
        if field in changes and changes[field] is None:
            raise InvalidRequest(f"{field} cannot be null; leave it out to keep it.", param=field)
    if "thresholds" in changes:
        changes["thresholds"] = _thresholds(changes["thresholds"])
    if "webhook" in changes:
        changes["webhook"] = _checked_webhook(changes["webhook"])
    updated = dataclasses.replace(current, **changes, updated_at=time.time())
    if not await asyncio.to_thread(resource.store.budgets.replace, updated):
        raise _not_found(current.name)
    await resource.refresh()
    return json_response((await _shown(resource, [updated]))[0])


async def delete_budget(request: Request) -> Response:
    await authorize(request, Permission.QUOTAS)
    resource = resource_of(request)
    if not await asyncio.to_thread(resource.store.budgets.delete, request.path_params["name"]):
        raise _not_found(request.path_params["name"])
    await resource.refresh()
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/budgets", list_budgets, methods=["GET"]),
        audited_route(f"{PREFIX}/budgets", create_budget, "POST", "budgets.create"),
        Route(f"{PREFIX}/budgets/{{name}}", show_budget, methods=["GET"]),
        audited_route(f"{PREFIX}/budgets/{{name}}", update_budget, "PATCH", "budgets.update"),
        audited_route(f"{PREFIX}/budgets/{{name}}", delete_budget, "DELETE", "budgets.delete"),
    ]
