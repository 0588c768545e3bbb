"""The management API for access: identities, role assignments, the resource's access settings
(local auth, network rules), signing keys and the audit log."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.access import MANAGED, Permission
from stockade.api.audit import audited_route, describe
from stockade.api.credentials import authorize
from stockade.api.management import PREFIX, Body, body_of, list_limit, resource_of
from stockade.api.responses import json_response
from stockade.api.token_service import MANAGED_IDENTITY_PATH
from stockade.core import Resource
from stockade.store import Identity, ResourceProperties, SigningKey


class IdentityCreate(Body):
    name: str
    kind: Literal["managed", "service-principal"] = "managed"


class RoleAssign(Body):
    role: str
    deployment: str | None = None
    object_id: str | None = None
    tenant_id: str | None = None
    key_id: str | None = None
    identity: str | None = None


class NetworkAcls(Body):
    default_action: str | None = None
    ip_rules: list[str] | None = Field(None, max_length=1000)


class ResourceUpdate(Body):
    disable_local_auth: bool | None = None
    network_acls: NetworkAcls | None = None


def _identity(resource: Resource, identity: Identity, secret: str | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        k: v for k, v in dataclasses.asdict(identity).items() if k != "secret_hash"
    }
    shown["tenant_id"] = resource.access.tokens.tenant_id
    if secret is None:
        return shown
    if identity.kind == MANAGED:
        shown["environment"] = {
            "IDENTITY_ENDPOINT": resource.access.public_url + MANAGED_IDENTITY_PATH,
            "IDENTITY_HEADER": secret,
        }
    else:
        shown["client_secret"] = secret
        shown["environment"] = {
            "AZURE_TENANT_ID": resource.access.tokens.tenant_id,
            "AZURE_CLIENT_ID": identity.client_id,
            "AZURE_CLIENT_SECRET": secret,
            "AZURE_AUTHORITY_HOST": resource.access.public_url,
        }
        if not resource.access.public_url.startswith("https://"):
            shown["warnings"] = [insecure_authority(resource.access.public_url)]
    return shown


def insecure_authority(url: str) -> str:
    return (
        f"AZURE_AUTHORITY_HOST is {url}, which azure-identity refuses: the authority must be a TLS "
        "protected (https) URL. Serve HTTPS with `stockade serve --tls-self-signed` (or "
        "--tls-cert and --tls-key), or set auth.public_url to the https address of a TLS proxy "
        "in front, and give the application that https URL."
    )


async def list_identities(request: Request) -> Response:
    await authorize(request, Permission.ACCESS)
    resource = resource_of(request)
    kind = request.query_params.get("kind")
    return json_response(
        {
            "data": [
                _identity(resource, identity)
                for identity in await resource.access.identities()
                if kind is None or identity.kind == kind
            ]
        }
    )


async def create_identity(request: Request) -> Response:
    await authorize(request, Permission.ACCESS)
    body: IdentityCreate = await body_of(request, IdentityCreate)
    resource = resource_of(request)
    describe(request, f"{body.kind} {body.name}")
    identity, secret = await resource.access.create_identity(body.kind, body.name)
    return json_response(_identity(resource, identity, secret), status=201)


async def reset_identity_secret(request: Request) -> Response:
    await authorize(request, Permission.ACCESS)
    resource = resource_of(request)
    identity, secret = await resource.access.reset_identity_secret(request.path_params["identity"])
    return json_response(_identity(resource, identity, secret))


async def delete_identity(request: Request) -> Response:
    await authorize(request, Permission.ACCESS)
    await resource_of(request).access.delete_identity(request.path_params["identity"])
    return Response(status_code=204)


async def list_roles(request: Request) -> Response:
    await authorize(request, Permission.ACCESS)
    assignments = await resource_of(request).access.role_assignments()
    return json_response({"data": [dataclasses.asdict(a) for a in assignments]})


async def assign_role(request: Request) -> Response:
    await authorize(request, Permission.ACCESS)
    body: RoleAssign = await body_of(request, RoleAssign)
    if body.identity or body.key_id:
        principal = body.identity or f"key {body.key_id}"
    else:
        principal = f"{body.object_id} ({body.tenant_id or 'this tenant'})"
    describe(request, f"{body.role} to {principal} at {body.deployment or 'the resource'}")
    assignment = await resource_of(request).assign_role(**body.model_dump())
    return json_response(dataclasses.asdict(assignment), status=201)


async def remove_role(request: Request) -> Response:
    await authorize(request, Permission.ACCESS)
    await resource_of(request).access.remove_role_assignment(request.path_params["id"])
    return Response(status_code=204)


def _properties(resource: Resource, properties: ResourceProperties) -> dict[str, Any]:
    tokens = resource.access.tokens
    return {
        "disable_local_auth": properties.disable_local_auth,
        "network_acls": {
            "default_action": properties.default_action,
            "ip_rules": list(properties.ip_rules),
        },
        "tenant_id": tokens.tenant_id,
        "issuer": tokens.issuer,
        "identity_endpoint": resource.access.public_url + MANAGED_IDENTITY_PATH,
    }


async def show_resource(request: Request) -> Response:
    await authorize(request, Permission.READ)
    resource = resource_of(request)
    return json_response(_properties(resource, resource.access.properties))


async def update_resource(request: Request) -> Response:
    await authorize(request, Permission.ACCESS)
    body: ResourceUpdate = await body_of(request, ResourceUpdate)
    describe(request, body.model_dump_json(exclude_none=True))
    acls = body.network_acls or NetworkAcls()
    resource = resource_of(request)
    properties = await resource.access.set_properties(
        disable_local_auth=body.disable_local_auth,
        default_action=acls.default_action,
        ip_rules=acls.ip_rules,
    )
    return json_response(_properties(resource, properties))


def _signing_key(key: SigningKey) -> dict[str, Any]:
    return {"kid": key.kid, "created_at": key.created_at, "retired_at": key.retired_at}


async def list_signing_keys(request: Request) -> Response:
    await authorize(request, Permission.ACCESS)
    keys = await resource_of(request).access.signing_keys()
    return json_response({"data": [_signing_key(key) for key in keys]})


async def rotate_signing_key(request: Request) -> Response:
    await authorize(request, Permission.ACCESS)
    key = await resource_of(request).access.rotate_signing_key()
    return json_response(_signing_key(key), status=201)


async def list_audit(request: Request) -> Response:
    await authorize(request, Permission.AUDIT)
    events = await resource_of(request).access.audit(
        list_limit(request), request.query_params.get("action")
    )
    return json_response({"data": [dataclasses.asdict(event) for event in events]})


def routes() -> list[Route]:
    identities = f"{PREFIX}/identities"
    return [
        Route(identities, list_identities, methods=["GET"]),
        audited_route(identities, create_identity, "POST", "identities.create"),
        audited_route(
            f"{identities}/{{identity}}/secret", reset_identity_secret, "POST", "identities.reset_secret"
        ),
        audited_route(f"{identities}/{{identity}}", delete_identity, "DELETE", "identities.delete"),
        Route(f"{PREFIX}/roles", list_roles, methods=["GET"]),
        audited_route(f"{PREFIX}/roles", assign_role, "POST", "roles.assign"),
        audited_route(f"{PREFIX}/roles/{{id}}", remove_role, "DELETE", "roles.remove"),
        Route(f"{PREFIX}/resource", show_resource, methods=["GET"]),
        audited_route(f"{PREFIX}/resource", update_resource, "PATCH", "resource.update"),
        Route(f"{PREFIX}/signing-keys", list_signing_keys, methods=["GET"]),
        audited_route(f"{PREFIX}/signing-keys/rotate", rotate_signing_key, "POST", "signing_keys.rotate"),
        Route(f"{PREFIX}/audit", list_audit, methods=["GET"]),
    ]

