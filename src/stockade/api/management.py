"""The management API the command line uses: models, deployments, keys and usage."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.api.auth import authorize
from stockade.api.body import read_body
from stockade.api.responses import json_response
from stockade.auth import Permission
from stockade.core import Resource
from stockade.requests import parse
from stockade.store import ApiKey

PREFIX = "/management"


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class DeploymentCreate(_Body):
    model: str
    backend: str | None = None
    capacity: Annotated[int, Field(ge=1)] = 10


class DeploymentUpdate(_Body):
    model: str | None = None
    backend: str | None = None
    capacity: Annotated[int, Field(ge=1)] | None = None


class KeyCreate(_Body):
    name: str
    role: str
    deployment: str | None = None


def _resource(request: Request) -> Resource:
    return request.app.state.resource


async def _body(request: Request, body_type: type[_Body]) -> Any:
    return parse(body_type, await read_body(request, _resource(request).settings.max_body_bytes))


def _key(key: ApiKey, secret: str | None = None) -> dict[str, Any]:
    shown = {k: v for k, v in dataclasses.asdict(key).items() if k not in ("secret_hash", "revoked_at")}
    if secret is not None:
        shown["key"] = secret
    return shown


async def list_models(request: Request) -> Response:
    authorize(request, Permission.READ)
    return json_response(
        {
            "data": [
                {k: v for k, v in dataclasses.asdict(spec).items() if k != "factory"}
                for spec in _resource(request).models()
            ]
        }
    )


async def list_deployments(request: Request) -> Response:
    authorize(request, Permission.READ)
    return json_response({"data": [dataclasses.asdict(d) for d in _resource(request).deployments()]})


async def show_deployment(request: Request) -> Response:
    authorize(request, Permission.READ)
    return json_response(dataclasses.asdict(_resource(request).deployment(request.path_params["name"])))


async def create_deployment(request: Request) -> Response:
    authorize(request, Permission.DEPLOYMENTS)
    body = await _body(request, DeploymentCreate)
    deployment = await _resource(request).create_deployment(
        request.path_params["name"], body.model, body.backend, body.capacity
    )
    return json_response(dataclasses.asdict(deployment), status=201)


async def update_deployment(request: Request) -> Response:
    authorize(request, Permission.DEPLOYMENTS)
    body = await _body(request, DeploymentUpdate)
    deployment = await _resource(request).update_deployment(
        request.path_params["name"], model=body.model, backend=body.backend, capacity=body.capacity
    )
    return json_response(dataclasses.asdict(deployment))


async def delete_deployment(request: Request) -> Response:
    authorize(request, Permission.DEPLOYMENTS)
    await _resource(request).delete_deployment(request.path_params["name"])
    return Response(status_code=204)


async def list_keys(request: Request) -> Response:
    authorize(request, Permission.KEYS)
    return json_response({"data": [_key(key) for key in await _resource(request).list_keys()]})


async def create_key(request: Request) -> Response:
    authorize(request, Permission.KEYS)
    body = await _body(request, KeyCreate)
    key, secret = await _resource(request).create_application_key(body.name, body.role, body.deployment)
    return json_response(_key(key, secret), status=201)


async def regenerate_key(request: Request) -> Response:
    authorize(request, Permission.KEYS)
    key, secret = await _resource(request).regenerate_admin_key(request.path_params["name"])
    return json_response(_key(key, secret))


async def revoke_key(request: Request) -> Response:
    authorize(request, Permission.KEYS)
    await _resource(request).revoke_key(request.path_params["id"])
    return Response(status_code=204)


async def list_usage(request: Request) -> Response:
    authorize(request, Permission.READ)
    resource = _resource(request)
    await resource.usage.flush()
    try:
        limit = min(max(int(request.query_params.get("limit", "50")), 1), 1000)
    except ValueError:
        limit = 50
    records = await resource.recent_usage(limit, request.query_params.get("deployment"))
    return json_response({"data": [dataclasses.asdict(r) for r in records]})


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/models", list_models, methods=["GET"]),
        Route(f"{PREFIX}/deployments", list_deployments, methods=["GET"]),
        Route(f"{PREFIX}/deployments/{{name}}", show_deployment, methods=["GET"]),
        Route(f"{PREFIX}/deployments/{{name}}", create_deployment, methods=["PUT"]),
        Route(f"{PREFIX}/deployments/{{name}}", update_deployment, methods=["PATCH"]),
        Route(f"{PREFIX}/deployments/{{name}}", delete_deployment, methods=["DELETE"]),
        Route(f"{PREFIX}/keys", list_keys, methods=["GET"]),
        Route(f"{PREFIX}/keys", create_key, methods=["POST"]),
        Route(f"{PREFIX}/keys/{{name}}/regenerate", regenerate_key, methods=["POST"]),
        Route(f"{PREFIX}/keys/{{id}}", revoke_key, methods=["DELETE"]),
        Route(f"{PREFIX}/usage", list_usage, methods=["GET"]),
    ]
