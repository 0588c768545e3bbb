"""/openapi.json: Stockade's own OpenAPI document, built from the app's real routes."""

from __future__ import annotations

import pytest
from starlette.responses import Response
from starlette.routing import Route

from conftest import App
from stockade.api import inference, openapi
from stockade.requests import ChatRequest


@pytest.fixture(scope="module")
def served(fake: App) -> dict:
    response = fake.client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(served: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in served["paths"].items() for method in item}


def test_the_document_is_served_without_a_credential(fake: App) -> None:
    assert fake.client.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_every_route_of_the_app_has_an_operation(fake: App, served: dict) -> None:
    expected = {("POST", path) for path in inference.PATHS}
    for route in fake.client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route):
            expected |= {(m, route.path.replace(":path", "")) for m in route.methods or () if m != "HEAD"}
    assert operations(served) == expected


def test_a_route_without_an_operation_fails_the_build(fake: App) -> None:
    async def endpoint(_: object) -> Response:
        return Response()

    added = Route("/management/something-new", endpoint, methods=["POST"])
    with pytest.raises(LookupError, match="POST /management/something-new"):
        openapi.document([*fake.client.app.routes, added])  # type: ignore[attr-defined]


def test_request_bodies_are_the_request_models_schemas(served: dict) -> None:
    chat = served["paths"]["/openai/deployments/{deployment}/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatRequest"}
    assert set(served["components"]["schemas"]["ChatRequest"]["properties"]) == set(ChatRequest.model_fields)


def test_errors_are_described_by_azures_envelope(served: dict) -> None:
    chat = served["paths"]["/openai/v1/chat/completions"]["post"]
    schema = chat["responses"]["default"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    envelope = served["components"]["schemas"]["ErrorResponse"]["properties"]["error"]
    assert envelope["properties"]["param"] == {"type": "string", "description": "The parameter at fault, if one is."}


def test_classic_routes_require_an_api_version_and_v1_routes_do_not(served: dict) -> None:
    def version(path: str) -> dict:
        parameters = served["paths"][path]["post"]["parameters"]
        return next(p for p in parameters if p["name"] == "api-version")

    assert version("/openai/deployments/{deployment}/embeddings")["required"] is True
    assert version("/v1/embeddings")["required"] is False


def test_public_operations_need_no_credential_and_the_rest_do(served: dict) -> None:
    assert served["paths"]["/healthz"]["get"]["security"] == []
    assert "security" not in served["paths"]["/management/keys"]["post"]
    assert served["security"] == [{"apiKey": []}, {"bearer": []}]
