"""The management API the command line uses: models, deployments, quotas, keys and usage."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.access import LOCAL_OPERATOR, ROUTINES_AGENT, Permission
from stockade.api.audit import audited_route, describe
from stockade.api.body import read_body
from stockade.api.credentials import authorize
from stockade.api.responses import json_response
from stockade.backends.base import ModelSpec
from stockade.core import Resource
from stockade.core.resource import DeploymentUse, ModelQuota
from stockade.errors import InvalidRequest
from stockade.quotas import Limit
from stockade.requests import parse
from stockade.store import ApiKey

PREFIX = "/management"
# Callers that are no key or identity in the store, by the id their usage records carry.
BUILT_IN_CALLERS = {principal.id: principal.name for principal in (LOCAL_OPERATOR, ROUTINES_AGENT)}


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text (a 500 there, where SQLite takes it): refuse it in
        # every management field, whichever store is behind.
        texts = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("must not contain NUL characters (\\u0000)")
        return value


# Bounds far beyond what one resource serves (a billion tokens a minute), well within the store's
# 64-bit integer columns and the limiters' arithmetic.
MAX_PER_MINUTE = 10**9
Capacity = Annotated[int, Field(ge=1, le=MAX_PER_MINUTE // 1000)]  # thousands of tokens a minute
PerMinute = Annotated[int, Field(ge=1, le=MAX_PER_MINUTE)] | None
# Tokens a deployment's unfinished batches may hold; null keeps the server's batch.token_quota.
BatchTokenQuota = Annotated[int, Field(ge=1, le=2**62)] | None
ZERO_DATA_RETENTION = "Refuse files and batches naming the deployment: they keep bodies at rest"
# Azure's sku names; a ProvisionedManaged deployment's capacity is its PTUs, billed by the hour.
Sku = Literal["Standard", "ProvisionedManaged"]
SKU = "Standard: billed per token; ProvisionedManaged: capacity x the model's hourly_rate per hour"


class ModelAdd(Body):
    gguf: str = Field(description="The file's absolute path on the server's machine")
    name: str | None = Field(None, description="The model's id; the file name without .gguf by default")


class DeploymentCreate(Body):
    model: str
    backend: str | None = None
    capacity: Capacity = 10
    zero_data_retention: bool = Field(False, description=ZERO_DATA_RETENTION)
    batch_token_quota: BatchTokenQuota = None
    sku: Sku = Field("Standard", description=SKU)


class DeploymentUpdate(Body):
    model: str | None = None
    backend: str | None = None
    capacity: Capacity | None = None
    content_filter: str | None = Field(None, description="A content filter policy's name")
    zero_data_retention: bool | None = Field(None, description=ZERO_DATA_RETENTION)
    batch_token_quota: BatchTokenQuota = None
    sku: Sku | None = Field(None, description=SKU)


class KeyCreate(Body):
    name: str
    role: str
    deployment: str | None = None
    tokens_per_minute: PerMinute = None
    requests_per_minute: PerMinute = None


class KeyLimits(Body):
    """Fields left out keep their value; null removes that limit."""

    tokens_per_minute: PerMinute = None
    requests_per_minute: PerMinute = None


class QuotaSet(Body):
    capacity: Capacity


def resource_of(request: Request) -> Resource:
    return request.app.state.resource


async def body_of(request: Request, body_type: type[Body]) -> Any:
    return parse(body_type, await read_body(request, resource_of(request).settings.max_body_bytes))


def list_limit(request: Request) -> int:
    """The ``limit`` query parameter of a list: 1 to 1,000, 50 when absent or not a number."""
    try:
        return min(max(int(request.query_params.get("limit", "50")), 1), 1000)
    except ValueError:
        return 50


def query_flag(request: Request, name: str) -> bool:
    """A true/false query parameter, false when absent."""
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false"):
        raise InvalidRequest(f"The query parameter {name} must be true or false.", param=name)
    return value == "true"


def _key(key: ApiKey, secret: str | None = None) -> dict[str, Any]:
    shown = {k: v for k, v in dataclasses.asdict(key).items() if k not in ("secret_hash", "revoked_at")}
    if secret is not None:
        shown["key"] = secret
    return shown


def _model(spec: ModelSpec) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(spec).items() if k != "factory"}


async def list_models(request: Request) -> Response:
    await authorize(request, Permission.READ)
    return json_response({"data": [_model(spec) for spec in resource_of(request).models()]})


async def add_model(request: Request) -> Response:
    await authorize(request, Permission.MODELS)
    body: ModelAdd = await body_of(request, ModelAdd)
    describe(request, body.name or body.gguf)
    spec = await resource_of(request).add_model_file(body.gguf, body.name)
    return json_response(_model(spec), status=201)


async def remove_model(request: Request) -> Response:
    await authorize(request, Permission.MODELS)
    await resource_of(request).remove_model_file(request.path_params["model"])
    return Response(status_code=204)


async def list_deployments(request: Request) -> Response:
    await authorize(request, Permission.READ)
    return json_response({"data": [dataclasses.asdict(d) for d in resource_of(request).deployments()]})


async def show_deployment(request: Request) -> Response:
    await authorize(request, Permission.READ, request.path_params["name"])
    return json_response(dataclasses.asdict(resource_of(request).deployment(request.path_params["name"])))


async def create_deployment(request: Request) -> Response:
    await authorize(request, Permission.DEPLOYMENTS, request.path_params["name"])
    body = await body_of(request, DeploymentCreate)
    deployment = await resource_of(request).create_deployment(
        request.path_params["name"], body.model, body.backend, body.capacity,
        zero_data_retention=body.zero_data_retention, batch_token_quota=body.batch_token_quota,
        sku=body.sku,
    )
    return json_response(dataclasses.asdict(deployment), status=201)


async def update_deployment(request: Request) -> Response:
    await authorize(request, Permission.DEPLOYMENTS, request.path_params["name"])
    body = await body_of(request, DeploymentUpdate)
    deployment = await resource_of(request).update_deployment(
        request.path_params["name"], model=body.model, backend=body.backend, capacity=body.capacity,
        content_filter=body.content_filter, zero_data_retention=body.zero_data_retention,
        batch_token_quota=body.batch_token_quota, sku=body.sku,
    )
    return json_response(dataclasses.asdict(deployment))


async def delete_deployment(request: Request) -> Response:
    await authorize(request, Permission.DEPLOYMENTS, request.path_params["name"])
    await resource_of(request).delete_deployment(request.path_params["name"])
    return Response(status_code=204)


async def list_keys(request: Request) -> Response:
    await authorize(request, Permission.KEYS)
    return json_response({"data": [_key(key) for key in await resource_of(request).list_keys()]})


async def create_key(request: Request) -> Response:
    await authorize(request, Permission.KEYS)
    body = await body_of(request, KeyCreate)
    describe(request, f"{body.name} ({body.role}{f' at {body.deployment}' if body.deployment else ''})")
    limit = None
    if body.tokens_per_minute is not None or body.requests_per_minute is not None:
        limit = Limit(body.tokens_per_minute, body.requests_per_minute)
    key, secret = await resource_of(request).create_application_key(
        body.name, body.role, body.deployment, limit
    )
    return json_response(_key(key, secret), status=201)


async def update_key(request: Request) -> Response:
    await authorize(request, Permission.KEYS)
    body: KeyLimits = await body_of(request, KeyLimits)
    key = await resource_of(request).set_key_limit(
        request.path_params["id"], **{field: getattr(body, field) for field in body.model_fields_set}
    )
    return json_response(_key(key))


async def regenerate_key(request: Request) -> Response:
    await authorize(request, Permission.KEYS)
    key, secret = await resource_of(request).regenerate_admin_key(request.path_params["name"])
    return json_response(_key(key, secret))


async def revoke_key(request: Request) -> Response:
    await authorize(request, Permission.KEYS)
    await resource_of(request).revoke_key(request.path_params["id"])
    return Response(status_code=204)


def _quota(quota: ModelQuota) -> dict[str, Any]:
    return {
        "model": quota.model,
        "quota": quota.quota,
        "allocated": quota.allocated,
        "available": max(0, quota.quota - quota.allocated),
        "deployments": [_deployment_use(use) for use in quota.deployments],
    }


def _deployment_use(use: DeploymentUse) -> dict[str, Any]:
    limit = Limit.for_capacity(use.deployment.capacity)
    return {
        "name": use.deployment.name,
        "capacity": use.deployment.capacity,
        "tokens_per_minute": limit.tokens_per_minute,
        "requests_per_minute": limit.requests_per_minute,
        "tokens_last_minute": use.last_minute.tokens,
        "requests_last_minute": use.last_minute.requests,
    }


async def list_quotas(request: Request) -> Response:
    await authorize(request, Permission.READ)
    return json_response({"data": [_quota(q) for q in await resource_of(request).quotas()]})


async def set_quota(request: Request) -> Response:
    await authorize(request, Permission.QUOTAS)
    body: QuotaSet = await body_of(request, QuotaSet)
    resource = resource_of(request)
    await resource.set_quota(request.path_params["model"], body.capacity)
    quota = next(q for q in await resource.quotas() if q.model == request.path_params["model"])
    return json_response(_quota(quota))


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/models", list_models, methods=["GET"]),
        audited_route(f"{PREFIX}/models", add_model, "POST", "models.add"),
        audited_route(f"{PREFIX}/models/{{model}}", remove_model, "DELETE", "models.remove"),
        Route(f"{PREFIX}/deployments", list_deployments, methods=["GET"]),
        # A name with a slash reaches the handlers, which answer with the naming rule, not a bare 404.
        Route(f"{PREFIX}/deployments/{{name:path}}", show_deployment, methods=["GET"]),
        audited_route(f"{PREFIX}/deployments/{{name:path}}", create_deployment, "PUT", "deployments.create"),
        audited_route(f"{PREFIX}/deployments/{{name:path}}", update_deployment, "PATCH", "deployments.update"),
        audited_route(f"{PREFIX}/deployments/{{name:path}}", delete_deployment, "DELETE", "deployments.delete"),
        Route(f"{PREFIX}/keys", list_keys, methods=["GET"]),
        audited_route(f"{PREFIX}/keys", create_key, "POST", "keys.create"),
        audited_route(f"{PREFIX}/keys/{{name}}/regenerate", regenerate_key, "POST", "keys.regenerate"),
        audited_route(f"{PREFIX}/keys/{{id}}", update_key, "PATCH", "keys.update"),
        audited_route(f"{PREFIX}/keys/{{id}}", revoke_key, "DELETE", "keys.revoke"),
        Route(f"{PREFIX}/quotas", list_quotas, methods=["GET"]),
        audited_route(f"{PREFIX}/quotas/{{model:path}}", set_quota, "PUT", "quotas.set"),
    ]
