"""The built-in token service's HTTP surface, where azure-identity expects it.

- ``GET /msi/token``: Azure App Service's managed-identity endpoint (``IDENTITY_ENDPOINT``).
- ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and ``/{tenant}/discovery/v2.0/keys``:
  OpenID discovery and the signing keys, public as Entra's are.
- ``POST /{tenant}/oauth2/v2.0/token``: OAuth 2.0 client credentials for service principals.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.access import Access
from stockade.api.body import read_body
from stockade.api.credentials import client_address
from stockade.api.responses import json_response

MANAGED_IDENTITY_PATH = "/msi/token"
MAX_TOKEN_REQUEST_BYTES = 64 * 1024
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _access(request: Request) -> Access:
    return request.app.state.resource.access


async def managed_identity_token(request: Request) -> Response:
    access = _access(request)
    query = request.query_params
    token = access.issue_token(
        client_address(request),
        lambda: access.tokens.managed_identity_token(
            request.headers.get("x-identity-header"),
            query.get("api-version"),
            query.get("resource"),
            query.get("client_id"),
        ),
    )
    return json_response(
        {
            "access_token": token.access_token,
            "expires_on": str(token.expires_on),
            "resource": token.resource,
            "token_type": "Bearer",
            "client_id": token.client_id,
        },
        headers=NO_STORE,
    )


async def openid_configuration(request: Request) -> Response:
    access = _access(request)
    access.tokens.check_tenant(request.path_params["tenant"])
    return json_response(access.tokens.openid_configuration())


async def signing_keys(request: Request) -> Response:
    access = _access(request)
    access.tokens.check_tenant(request.path_params["tenant"])
    return json_response(access.tokens.jwks)


async def client_credentials_token(request: Request) -> Response:
    access = _access(request)
    body = await read_body(request, MAX_TOKEN_REQUEST_BYTES)
    form = dict(parse_qsl(body.decode("utf-8", "replace")))
    token = access.issue_token(
        client_address(request),
        lambda: access.tokens.client_credentials_token(request.path_params["tenant"], form),
    )
    return json_response(
        {
            "token_type": "Bearer",
            "expires_in": token.lifetime,
            "ext_expires_in": token.lifetime,
            "access_token": token.access_token,
        },
        headers=NO_STORE,
    )


def routes() -> list[Route]:
    return [
        Route(MANAGED_IDENTITY_PATH, managed_identity_token, methods=["GET"]),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
        Route("/{tenant}/discovery/v2.0/keys", signing_keys, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", client_credentials_token, methods=["POST"]),
    ]
