"""Stockade's own OpenAPI document, served at ``/openapi.json``.

It is built from the app's real routes (the router's, and the inference calls served ahead of it),
each described by an entry of ``OPERATIONS``; a route without one is refused when the document is
built, so a route added later without documentation fails the tests (tests/test_openapi.py).
Request bodies are the pydantic models the routes validate with, so the document cannot drift from
what is enforced. Like Azure's own spec, the document is public: it holds no data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from stockade import __version__
from stockade.api import (
    access_management,
    batches,
    budgets,
    content_filters,
    inference,
    management,
    routines,
    stored_responses,
    usage,
)
from stockade.api.api_versions import SUPPORTED_API_VERSIONS, V1_API_VERSIONS
from stockade.api.responses import json_response
from stockade.batch.files import UPLOAD_PURPOSES
from stockade.store.usage import By

PATH = "/openapi.json"


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict[str, Any]
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Operation:
    operation_id: str
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    status: int = 200
    public: bool = False
    query: tuple[Query, ...] = ()
    form: dict[str, Any] | None = None  # a form body's schema
    form_type: str = "application/x-www-form-urlencoded"
    headers: tuple[str, ...] = ()
    media_type: str = "application/json"  # of the success response
    errors: str = "ErrorResponse"  # the error body's schema


_CLASSIC_VERSION = Query(
    "api-version", {"type": "string", "enum": sorted(SUPPORTED_API_VERSIONS)}, required=True,
    description="Required on the classic routes; missing or unknown, the answer is 404, as on Azure.",
)
_V1_VERSION = Query(
    "api-version", {"type": "string", "enum": sorted(V1_API_VERSIONS | SUPPORTED_API_VERSIONS)},
    description="Optional on the v1 routes.",
)
_LIMIT = Query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50})


def _listing(query: str, description: str) -> tuple[Query, ...]:
    return (_LIMIT, Query(query, {"type": "string"}, description=description))


def _inference() -> dict[tuple[str, str], Operation]:
    operations = {}
    summaries = {
        "ChatCompletions_Create": "Create a chat completion (JSON, or SSE with stream)",
        "Completions_Create": "Create a text completion (legacy)",
        "Embeddings_Create": "Create embeddings",
        inference.RESPONSES: "Create a response (Responses API; JSON, or SSE with stream)",
    }
    for path, operation_id in inference.PATH_OPERATIONS.items():
        classic = not path.startswith(("/openai/v1/", "/v1/"))
        prefix = "" if classic else ("OpenAIV1_" if path.startswith("/openai/v1") else "V1_")
        operations[("POST", path)] = Operation(
            prefix + operation_id, summaries[operation_id], "inference",
            body=inference.OPERATIONS[operation_id],
            query=(_CLASSIC_VERSION if classic else _V1_VERSION,),
        )
    for prefix, version, name in (("/openai", _CLASSIC_VERSION, "Models"), ("/openai/v1", _V1_VERSION,
                                  "OpenAIV1_Models"), ("/v1", _V1_VERSION, "V1_Models")):
        operations[("GET", f"{prefix}/models")] = Operation(
            f"{name}_List", "The models that can be deployed", "models", query=(version,))
        operations[("GET", f"{prefix}/models/{{model:path}}")] = Operation(
            f"{name}_Get", "One model that can be deployed", "models", query=(version,))
    return operations


def _files() -> dict[tuple[str, str], Operation]:
    upload_form = {
        "type": "object",
        "properties": {
            "purpose": {"type": "string", "enum": list(UPLOAD_PURPOSES)},
            "file": {"type": "string", "format": "binary"},
            "expires_after[anchor]": {"type": "string", "enum": ["created_at"],
                                      "description": "Also spelled expires_after.anchor"},
            "expires_after[seconds]": {"type": "integer", "minimum": 1209600, "maximum": 2592000,
                                       "description": "Also spelled expires_after.seconds"},
        },
        "required": ["purpose", "file"],
    }
    listing = (
        Query("limit", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 10000}),
        Query("after", {"type": "string"}, description="The last id of the page before"),
        Query("order", {"type": "string", "enum": ["asc", "desc"], "default": "desc"}),
        Query("purpose", {"type": "string"}, description="Only files for this purpose"),
    )
    operations: dict[tuple[str, str], Operation] = {}
    for prefix, version, name in (("/openai", _CLASSIC_VERSION, "Files"),
                                  ("/openai/v1", _V1_VERSION, "OpenAIV1_Files")):
        one = f"{prefix}/files/{{file_id}}"
        operations |= {
            ("POST", f"{prefix}/files"): Operation(
                f"{name}_Upload", "Upload a file (multipart); a batch input file is checked line by line",
                "files", query=(version,), form=upload_form, form_type="multipart/form-data",
                status=201 if prefix == "/openai" else 200),
            ("GET", f"{prefix}/files"): Operation(
                f"{name}_List", "Files, newest first, a page at a time", "files", query=(version, *listing)),
            ("GET", one): Operation(f"{name}_Get", "One file", "files", query=(version,)),
            ("DELETE", one): Operation(f"{name}_Delete", "Delete a file", "files", query=(version,)),
            ("GET", f"{one}/content"): Operation(
                f"{name}_GetContent", "A file's bytes", "files", query=(version,),
                media_type="application/octet-stream"),
        }
    return operations


def _stored_responses() -> dict[tuple[str, str], Operation]:
    operations: dict[tuple[str, str], Operation] = {}
    items = (
        Query("limit", {"type": "integer", "minimum": 1, "maximum": stored_responses.LIST_LIMIT,
                        "default": stored_responses.LIST_DEFAULT}),
        Query("order", {"type": "string", "enum": ["asc", "desc"], "default": "desc"}),
        Query("after", {"type": "string"}, description="The id of the last item of the page before"),
        Query("before", {"type": "string"}, description="The id of the first item of the page after"),
    )
    for prefix, version, name in (("/openai", _CLASSIC_VERSION, "Responses"),
                                  ("/openai/v1", _V1_VERSION, "OpenAIV1_Responses"),
                                  ("/v1", _V1_VERSION, "V1_Responses")):
        one = f"{prefix}/responses/{{response_id}}"
        operations |= {
            ("GET", one): Operation(f"{name}_Get", "A stored response", "responses", query=(version,)),
            ("DELETE", one): Operation(f"{name}_Delete", "Delete a stored response", "responses",
                                       query=(version,)),
            ("GET", f"{one}/input_items"): Operation(
                f"{name}_ListInputItems", "A stored response's input items, a page at a time", "responses",
                query=(version, *items)),
        }
    return operations


def _batches() -> dict[tuple[str, str], Operation]:
    operations = {}
    for path, version, name in ((batches.CLASSIC, _CLASSIC_VERSION, "Batches"), (batches.V1, _V1_VERSION,
                                "OpenAIV1_Batches")):
        operations[("POST", path)] = Operation(
            f"{name}_Create", "Create a batch job from an uploaded input file", "batches",
            body=batches.BatchCreate, query=(version,))
        operations[("GET", path)] = Operation(
            f"{name}_List", "Batch jobs, newest first", "batches",
            query=(version, *_listing("after", "The id of the last batch of the page before")))
        operations[("GET", f"{path}/{{id}}")] = Operation(
            f"{name}_Get", "One batch job", "batches", query=(version,))
        operations[("POST", f"{path}/{{id}}/cancel")] = Operation(
            f"{name}_Cancel", "Cancel a batch job: lines not started are cancelled", "batches",
            query=(version,))
    return operations


_M = management.PREFIX
_WHEN = {"type": "string", "description": usage.WHEN}
_USAGE_FILTERS = (
    Query("since", _WHEN, description="From (default: 30 days before until)"),
    Query("until", _WHEN, description="Until (default: now)"),
    Query("deployment", {"type": "string"}, description="Only this deployment's calls"),
    Query("key", {"type": "string"}, description="Only the calls of the key or identity of this name or id"),
)


def _budgets() -> dict[tuple[str, str], Operation]:
    one = f"{_M}/budgets/{{name}}"
    return {
        ("GET", f"{_M}/budgets"): Operation(
            "Budgets_List", "Budgets, with what each has spent and holds this period", "management"),
        ("POST", f"{_M}/budgets"): Operation(
            "Budgets_Create", "Create a budget of a key, a deployment or the resource", "management",
            body=budgets.BudgetCreate, status=201),
        ("GET", one): Operation("Budgets_Get", "One budget and its state", "management"),
        ("PATCH", one): Operation(
            "Budgets_Update", "Change a budget's amount, period, thresholds, hard limit or webhook",
            "management", body=budgets.BudgetUpdate),
        ("DELETE", one): Operation("Budgets_Delete", "Delete a budget", "management", status=204),
    }


_TOKEN_FORM = {
    "type": "object",
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "scope": {"type": "string", "example": "https://cognitiveservices.azure.com/.default"},
    },
    "required": ["grant_type", "client_id", "client_secret", "scope"],
}

OPERATIONS: dict[tuple[str, str], Operation] = {
    **_inference(),
    **_batches(),
    **_files(),
    **_stored_responses(),
    **_budgets(),
    ("POST", f"{_M}/files/rekey"): Operation(
        "Files_Rekey", "Reseal files and batches sealed with an older key with the first", "management"),
    ("GET", "/healthz"): Operation(
        "Health_Get", "Liveness, with each deployed local model's state", "service", public=True),
    ("GET", "/readyz"): Operation(
        "Ready_Get", "Readiness: 503 while a deployed local model has no live worker", "service",
        public=True),
    ("GET", "/metrics"): Operation(
        "Metrics_Get", "Prometheus metrics (a key that may read everyone's usage)", "service",
        media_type="text/plain"),
    ("GET", PATH): Operation("OpenApi_Get", "This document", "service", public=True),
    ("GET", "/"): Operation(
        "Landing_Get", "A page linking to the chat, the health probes and this document", "pages",
        public=True, media_type="text/html"),
    ("GET", "/chat"): Operation(
        "ChatPage_Get", "The support chat page (no data: its script calls the API)", "pages",
        public=True, media_type="text/html"),
    # management
    ("GET", f"{_M}/models"): Operation("Management_Models_List", "Local and upstream models", "management"),
    ("POST", f"{_M}/models"): Operation(
        "Management_Models_Add", "Make a GGUF file on the server's machine deployable", "management",
        body=management.ModelAdd, status=201),
    ("DELETE", f"{_M}/models/{{model}}"): Operation(
        "Management_Models_Remove", "Remove a model added from a file", "management", status=204),
    ("GET", f"{_M}/deployments"): Operation("Deployments_List", "Deployments", "management"),
    ("GET", f"{_M}/deployments/{{name:path}}"): Operation("Deployments_Get", "One deployment", "management"),
    ("PUT", f"{_M}/deployments/{{name:path}}"): Operation(
        "Deployments_Create", "Create a deployment", "management", body=management.DeploymentCreate,
        status=201),
    ("PATCH", f"{_M}/deployments/{{name:path}}"): Operation(
        "Deployments_Update", "Change a deployment's model, capacity or content filter policy", "management",
        body=management.DeploymentUpdate),
    ("DELETE", f"{_M}/deployments/{{name:path}}"): Operation(
        "Deployments_Delete", "Delete a deployment", "management", status=204),
    ("GET", f"{_M}/content-filters"): Operation(
        "ContentFilters_List", "Content filter policies, the built-in default among them", "management"),
    ("GET", f"{_M}/content-filters/{{name}}"): Operation(
        "ContentFilters_Get", "One content filter policy", "management"),
    ("PUT", f"{_M}/content-filters/{{name}}"): Operation(
        "ContentFilters_Create", "Create a content filter policy", "management",
        body=content_filters.ContentFilterBody, status=201),
    ("PATCH", f"{_M}/content-filters/{{name}}"): Operation(
        "ContentFilters_Update", "Change a content filter policy", "management",
        body=content_filters.ContentFilterBody),
    ("DELETE", f"{_M}/content-filters/{{name}}"): Operation(
        "ContentFilters_Delete", "Delete a content filter policy no deployment uses", "management",
        status=204),
    ("GET", f"{_M}/blocklists"): Operation("Blocklists_List", "Custom blocklists and their items", "management"),
    ("GET", f"{_M}/blocklists/{{name}}"): Operation("Blocklists_Get", "One blocklist", "management"),
    ("PUT", f"{_M}/blocklists/{{name}}"): Operation(
        "Blocklists_Create", "Create a blocklist", "management", body=content_filters.BlocklistCreate,
        status=201),
    ("DELETE", f"{_M}/blocklists/{{name}}"): Operation(
        "Blocklists_Delete", "Delete a blocklist no policy uses", "management", status=204),
    ("POST", f"{_M}/blocklists/{{name}}/items"): Operation(
        "Blocklists_AddItem", "Add an exact term or a regular expression", "management",
        body=content_filters.BlocklistItemAdd, status=201),
    ("DELETE", f"{_M}/blocklists/{{name}}/items/{{id}}"): Operation(
        "Blocklists_RemoveItem", "Remove an item", "management", status=204),
    ("GET", f"{_M}/keys"): Operation("Keys_List", "Keys (never their secrets)", "management"),
    ("POST", f"{_M}/keys"): Operation(
        "Keys_Create", "Create an application key", "management", body=management.KeyCreate,
        status=201),
    ("POST", f"{_M}/keys/{{name}}/regenerate"): Operation(
        "Keys_Regenerate", "Issue a new secret for key1 or key2", "management"),
    ("PATCH", f"{_M}/keys/{{id}}"): Operation(
        "Keys_Update", "Set or remove a key's own limits", "management", body=management.KeyLimits),
    ("DELETE", f"{_M}/keys/{{id}}"): Operation("Keys_Revoke", "Revoke a key", "management", status=204),
    ("GET", f"{_M}/quotas"): Operation("Quotas_List", "Each model's quota and use", "management"),
    ("PUT", f"{_M}/quotas/{{model:path}}"): Operation(
        "Quotas_Set", "Set a model's quota", "management", body=management.QuotaSet),
    ("GET", f"{_M}/usage"): Operation(
        "Usage_List", "Metadata of recent calls", "management",
        query=(_LIMIT, *_USAGE_FILTERS)),
    # usage summaries and prices (api/usage.py)
    ("GET", f"{_M}/usage/summary"): Operation(
        "Usage_Summary", "Calls, tokens, cost, errors, 429s and latency per deployment, key, model or day",
        "management", query=(
            Query("by", {"type": "string", "enum": list(get_args(By))}, required=True), *_USAGE_FILTERS)),
    ("GET", f"{_M}/prices"): Operation("Prices_List", "Prices per model, with their dates", "management"),
    ("POST", f"{_M}/prices"): Operation(
        "Prices_Set", "Set a model's price from a date on", "management", body=usage.PriceSet, status=201),
    ("DELETE", f"{_M}/prices/{{model:path}}"): Operation(
        "Prices_Delete", "Delete a stored price", "management", status=204,
        query=(Query("effective_from", {"type": "string"}, required=True),)),
    # access management
    ("GET", f"{_M}/identities"): Operation(
        "Identities_List", "Managed identities and service principals", "access",
        query=(Query("kind", {"type": "string", "enum": ["managed", "service-principal"]}),)),
    ("POST", f"{_M}/identities"): Operation(
        "Identities_Create", "Create an identity", "access", body=access_management.IdentityCreate,
        status=201),
    ("POST", f"{_M}/identities/{{identity}}/secret"): Operation(
        "Identities_ResetSecret", "Issue a new secret for an identity", "access"),
    ("DELETE", f"{_M}/identities/{{identity}}"): Operation(
        "Identities_Delete", "Delete an identity", "access", status=204),
    ("GET", f"{_M}/roles"): Operation("Roles_List", "Role assignments", "access"),
    ("POST", f"{_M}/roles"): Operation(
        "Roles_Assign", "Assign a role", "access", body=access_management.RoleAssign, status=201),
    ("DELETE", f"{_M}/roles/{{id}}"): Operation("Roles_Remove", "Remove a role assignment", "access",
                                                status=204),
    ("GET", f"{_M}/resource"): Operation("Resource_Get", "The resource's access settings", "access"),
    ("PATCH", f"{_M}/resource"): Operation(
        "Resource_Update", "Change local auth or the network rules", "access",
        body=access_management.ResourceUpdate),
    ("GET", f"{_M}/signing-keys"): Operation("SigningKeys_List", "The token service's keys", "access"),
    ("POST", f"{_M}/signing-keys/rotate"): Operation(
        "SigningKeys_Rotate", "Rotate the token service's signing key", "access", status=201),
    ("GET", f"{_M}/audit"): Operation(
        "Audit_List", "Who changed what, when, from where", "access",
        query=_listing("action", "Only actions starting with this")),
    # token service
    ("GET", "/msi/token"): Operation(
        "ManagedIdentity_Token", "A token for a managed identity (App Service's IDENTITY_ENDPOINT)",
        "tokens", public=True, headers=("X-IDENTITY-HEADER",),
        query=(Query("api-version", {"type": "string"}, required=True), Query("resource", {"type": "string"},
               required=True), Query("client_id", {"type": "string"})),
        errors="ManagedIdentityError"),
    ("GET", "/{tenant}/v2.0/.well-known/openid-configuration"): Operation(
        "OpenId_Configuration", "OpenID discovery", "tokens", public=True),
    ("GET", "/{tenant}/discovery/v2.0/keys"): Operation(
        "OpenId_Keys", "The token service's signing keys (JWKS)", "tokens", public=True),
    ("POST", "/{tenant}/oauth2/v2.0/token"): Operation(
        "OAuth_Token", "OAuth 2.0 client credentials for a service principal", "tokens",
        public=True, form=_TOKEN_FORM, errors="OAuthError"),
    # routines
    ("GET", "/routines"): Operation("Routines_List", "The routines on offer", "routines"),
    ("GET", "/routines/{name}"): Operation("Routines_Get", "One routine, in its typed form", "routines"),
    ("POST", "/routines/conversations"): Operation(
        "Conversations_Create", "Start a conversation that follows a routine", "routines",
        body=routines.ConversationCreate, status=201),
    ("GET", "/routines/conversations/{id}"): Operation(
        "Conversations_Get", "A conversation, its trace (and messages, if kept)", "routines"),
    ("POST", "/routines/conversations/{id}/messages"): Operation(
        "Conversations_Post", "The customer's next message: one turn (JSON, or SSE with stream)",
        "routines", body=routines.MessagePost),
    ("GET", f"{_M}/cases"): Operation(
        "Cases_List", "Support cases", "routines",
        query=(*_listing("status", "Only cases in this status"), Query(
            "include_evaluations", {"type": "boolean", "default": False},
            description="Also the cases of scripted evaluations (`stockade routines eval`)",
        ))),
    ("GET", f"{_M}/cases/{{id}}"): Operation("Cases_Get", "One support case", "routines"),
}

# Mounts are static files: the pages' scripts and styles, not operations.
UNDOCUMENTED_MOUNTS = {"/static"}

_ERROR_SCHEMAS: dict[str, Any] = {
    "ErrorResponse": {
        "type": "object",
        "description": "Azure OpenAI's error envelope.",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "param": {"type": "string", "description": "The parameter at fault, if one is."},
                    "type": {"type": "string"},
                },
                "required": ["code", "message"],
            }
        },
        "required": ["error"],
    },
    "TokenError": {
        "type": "object",
        "description": "A bearer token that is not accepted (Azure sends it without the envelope).",
        "properties": {"statusCode": {"type": "integer"}, "message": {"type": "string"}},
        "required": ["statusCode", "message"],
    },
    "ManagedIdentityError": {
        "type": "object",
        "properties": {
            "statusCode": {"type": "integer"},
            "message": {"type": "string"},
            "correlationId": {"type": "string"},
        },
        "required": ["statusCode", "message"],
    },
    "OAuthError": {
        "type": "object",
        "description": "Entra's OAuth 2.0 error shape.",
        "properties": {
            "error": {"type": "string"},
            "error_description": {"type": "string"},
            "error_codes": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["error", "error_description"],
    },
}


def routes_of(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """(method, path) of every operation the app serves: the inference calls served ahead of the
    router, and the router's routes (HEAD, which Starlette adds to GET, left out)."""
    found = [("POST", path) for path in inference.PATHS]
    for route in routes:
        if isinstance(route, Mount) and route.path in UNDOCUMENTED_MOUNTS:
            continue
        if not isinstance(route, Route):
            raise LookupError(f"{route!r} is neither a Route nor a known Mount: document it")
        found += [(method, route.path) for method in sorted((route.methods or set()) - {"HEAD"})]
    return found


def _openapi_path(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def _parameters(path: str, operation: Operation) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in re.findall(r"\{(\w+)", path)
    ]
    parameters += [
        {"name": q.name, "in": "query", "required": q.required, "schema": q.schema}
        | ({"description": q.description} if q.description else {})
        for q in operation.query
    ]
    parameters += [
        {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
        for name in operation.headers
    ]
    return parameters


def _responses(operation: Operation) -> dict[str, Any]:
    error = {"$ref": f"#/components/schemas/{operation.errors}"}
    success: dict[str, Any] = {"description": "Done"}
    if operation.status != 204:
        schema = {"type": "object"} if operation.media_type == "application/json" else {"type": "string"}
        success["content"] = {operation.media_type: {"schema": schema}}
        if operation.body is not None and "stream" in operation.body.model_fields:
            success["content"]["text/event-stream"] = {"schema": {"type": "string"}}
    responses = {
        str(operation.status): success,
        "default": {"description": "An error", "content": {"application/json": {"schema": error}}},
    }
    if not operation.public:
        responses["401"] = {
            "description": "No credential, a wrong one, or one without the role needed",
            "content": {"application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/ErrorResponse"},
                {"$ref": "#/components/schemas/TokenError"},
            ]}}},
        }
    return responses


def document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of these routes; LookupError names any without an operation."""
    served = routes_of(routes)
    missing = [f"{method} {path}" for method, path in served if (method, path) not in OPERATIONS]
    if missing:
        raise LookupError(f"routes without an operation in api/openapi.py: {', '.join(missing)}")
    models = sorted({op.body for op in OPERATIONS.values() if op.body is not None}, key=lambda m: m.__name__)
    refs, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    for method, path in served:
        operation = OPERATIONS[(method, path)]
        described: dict[str, Any] = {
            "operationId": operation.operation_id,
            "summary": operation.summary,
            "tags": [operation.tag],
            "parameters": _parameters(path, operation),
            "responses": _responses(operation),
        }
        if operation.body is not None:
            described["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(operation.body, "validation")]}},
            }
        elif operation.form is not None:
            described["requestBody"] = {
                "required": True,
                "content": {operation.form_type: {"schema": operation.form}},
            }
        if operation.public:
            described["security"] = []
        paths.setdefault(_openapi_path(path), {})[method.lower()] = described
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Stockade",
            "version": __version__,
            "description": "A self-hosted, Azure-OpenAI-compatible LLM service: the data plane "
            "(classic deployment routes and the v1 routes), management, the token service and "
            "routines. Errors use Azure's envelope.",
        },
        "paths": paths,
        "components": {
            "schemas": {**definitions.get("$defs", {}), **_ERROR_SCHEMAS},
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "api-key"},
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A key, or an Entra ID (or the token service's) token"},
            },
        },
        "security": [{"apiKey": []}, {"bearer": []}],
    }


async def openapi_endpoint(request: Request) -> Response:
    # Built on first use and kept: the routes do not change while the app runs.
    state = request.app.state
    if getattr(state, "openapi", None) is None:
        state.openapi = document(request.app.routes)
    return json_response(state.openapi)


def routes() -> list[Route]:
    return [Route(PATH, openapi_endpoint, methods=["GET"])]
