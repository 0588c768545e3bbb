"""No inference or management route answers without a credential: every route of the app is
walked (in process, on the fake models), so a route added later without authentication fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import RESPONSES_API_VERSION, App
from stockade.api import create_app, openapi
from stockade.config import Settings
from stockade.core import Resource

# Open by design, as their Entra and load-balancer counterparts are.
PUBLIC = {
    "/healthz",
    "/readyz",
    "/{tenant}/v2.0/.well-known/openid-configuration",
    "/{tenant}/discovery/v2.0/keys",
    # A page holds no data: its script fetches what it shows with the credential the user types.
    "/chat",
    "/",
    # The API's shape, as Azure's own OpenAPI documents are public: no data, nothing the source
    # does not already say.
    "/openapi.json",
}
# Token endpoints: the credential is the identity header or the client secret in the body.
TOKEN_ENDPOINTS = {"/msi/token", "/{tenant}/oauth2/v2.0/token"}


def every_route(tmp_path: Path) -> list[tuple[str, str]]:
    """The router's routes, and the inference calls served ahead of it (static mounts aside)."""
    return openapi.routes_of(create_app(Resource(Settings(data_dir=tmp_path)), warm_up=False).routes)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "gpt-4o", path)


def test_every_route_but_the_public_ones_needs_a_credential(fake: App, tmp_path: Path) -> None:
    routes = every_route(tmp_path)
    assert len(routes) > 30
    with fake.http() as http:
        del http.headers["api-key"]
        for method, path in routes:
            if path in PUBLIC:
                continue
            response = http.request(
                # A version every classic route takes, the Responses API's among them.
                method, concrete(path), params={"api-version": RESPONSES_API_VERSION}, json={"model": "gpt-4o"}
            )
            if path in TOKEN_ENDPOINTS:
                assert response.status_code in (400, 403), (method, path, response.text)
                assert "access_token" not in response.text
            else:
                assert response.status_code == 401, (method, path, response.status_code, response.text)


@pytest.mark.parametrize("header", [{"api-key": "wrong"}, {"authorization": "Bearer wrong"}])
def test_a_wrong_key_is_refused_on_management_routes(fake: App, header: dict[str, str]) -> None:
    response = fake.client.get("/management/keys", headers={**header, "x-forwarded-for": "192.0.2.99"})
    assert response.status_code == 401
