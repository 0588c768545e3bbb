"""Management of content filter policies and custom blocklists: /management/content-filters and
/management/blocklists. Reading policies needs the read permission; changing them, and anything
about blocklists (whose terms may themselves be sensitive), the deployments permission."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.access import Permission
from stockade.api.audit import audited_route, describe
from stockade.api.credentials import authorize
from stockade.api.management import PREFIX, Body, body_of, resource_of
from stockade.api.responses import json_response
from stockade.safety.blocklists import MAX_PATTERN_CHARS, ItemKind
from stockade.safety.phi.entities import ENTITIES
from stockade.store import Blocklist

Threshold = Literal["low", "medium", "high"]
ShieldModeName = Literal["off", "annotate", "block"]


class RuleBody(Body):
    threshold: Threshold | None = Field(None, description="Filter at this severity and above")
    action: Literal["block", "annotate"] | None = Field(None, description="annotate: results only")


class DirectionsBody(Body):
    prompt: RuleBody | None = None
    completion: RuleBody | None = None


class CategoriesBody(Body):
    hate: DirectionsBody | None = None
    sexual: DirectionsBody | None = None
    violence: DirectionsBody | None = None
    self_harm: DirectionsBody | None = None


def _known_entity(entity: str) -> str:
    if entity not in ENTITIES:
        raise ValueError(f"{entity!r} is not an entity the PHI analyzer knows; it knows {', '.join(ENTITIES)}")
    return entity


Entities = list[Annotated[str, AfterValidator(_known_entity)]]


class PhiBody(Body):
    mode: Literal["off", "annotate", "block", "redact", "pseudonymize"] | None = Field(
        None, description="What is done with the identifiers found in prompts"
    )
    entities: Entities | None = Field(
        None, min_length=1, description="The identifiers looked for (all of HIPAA Safe Harbor's by default)"
    )


class PiiBody(Body):
    mode: ShieldModeName | None = Field(
        None, description="PII in completions: off, annotate (results only) or block (the choice ends)"
    )
    entities: Entities | None = Field(
        None, min_length=1, description="The identifiers looked for (all of HIPAA Safe Harbor's by default)"
    )


class ContentFilterBody(Body):
    """Fields left out keep their value (on create: Azure's default, medium and block)."""

    categories: CategoriesBody | None = None
    profanity: bool | None = None
    blocklists: list[str] | None = Field(None, description="Custom blocklists by name")
    fail_open: bool | None = Field(None, description="Pass text unscreened when a filter fails")
    jailbreak: ShieldModeName | None = Field(None, description="Prompt shield for user and system messages")
    indirect_attack: ShieldModeName | None = Field(
        None, description="Prompt shield for tool results and <documents> in messages"
    )
    phi: PhiBody | None = Field(None, description="PHI protection on prompts (docs/safety.md)")
    pii: PiiBody | None = Field(None, description="PII on completions, as Azure's category (docs/safety.md)")
    streaming: Literal["blocking", "asynchronous"] | None = Field(
        None, description="Streams: send text once screened (blocking), or at once, screened behind it"
    )


class BlocklistCreate(Body):
    description: str = Field("", max_length=1000)


class BlocklistItemAdd(Body):
    kind: Literal["exact", "regex"] = "exact"
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_CHARS)


async def _config(request: Request) -> dict[str, Any]:
    """The policy fields the body gives."""
    body: ContentFilterBody = await body_of(request, ContentFilterBody)
    return body.model_dump(exclude_none=True)


def _blocklist(blocklist: Blocklist) -> dict[str, Any]:
    return dataclasses.asdict(blocklist)


async def list_content_filters(request: Request) -> Response:
    await authorize(request, Permission.READ)
    return json_response({"data": resource_of(request).safety.policies()})


async def show_content_filter(request: Request) -> Response:
    await authorize(request, Permission.READ)
    return json_response(resource_of(request).safety.policy(request.path_params["name"]))


async def create_content_filter(request: Request) -> Response:
    await authorize(request, Permission.DEPLOYMENTS)
    config = await _config(request)
    policy = await resource_of(request).safety.create_policy(request.path_params["name"], config)
    return json_response(policy, status=201)


async def update_content_filter(request: Request) -> Response:
    await authorize(request, Permission.DEPLOYMENTS)
    config = await _config(request)
    return json_response(await resource_of(request).safety.update_policy(request.path_params["name"], config))


async def delete_content_filter(request: Request) -> Response:
    await authorize(request, Permission.DEPLOYMENTS)
    await resource_of(request).safety.delete_policy(request.path_params["name"])
    return Response(status_code=204)


async def list_blocklists(request: Request) -> Response:
    await authorize(request, Permission.DEPLOYMENTS)
    return json_response({"data": [_blocklist(b) for b in resource_of(request).safety.blocklists()]})


async def show_blocklist(request: Request) -> Response:
    await authorize(request, Permission.DEPLOYMENTS)
    return json_response(_blocklist(resource_of(request).safety.blocklist(request.path_params["name"])))


async def create_blocklist(request: Request) -> Response:
    await authorize(request, Permission.DEPLOYMENTS)
    body: BlocklistCreate = await body_of(request, BlocklistCreate)
    blocklist = await resource_of(request).safety.create_blocklist(request.path_params["name"], body.description)
    return json_response(_blocklist(blocklist), status=201)


async def delete_blocklist(request: Request) -> Response:
    await authorize(request, Permission.DEPLOYMENTS)
    await resource_of(request).safety.delete_blocklist(request.path_params["name"])
    return Response(status_code=204)


async def add_blocklist_item(request: Request) -> Response:
    await authorize(request, Permission.DEPLOYMENTS)
    body: BlocklistItemAdd = await body_of(request, BlocklistItemAdd)
    item = await resource_of(request).safety.add_item(
        request.path_params["name"], ItemKind(body.kind), body.pattern
    )
    # The audit log names the item by id and kind: the term itself is no business of the log.
    describe(request, f"{request.path_params['name']}: {body.kind} item {item.id}")
    return json_response(dataclasses.asdict(item), status=201)


async def remove_blocklist_item(request: Request) -> Response:
    await authorize(request, Permission.DEPLOYMENTS)
    await resource_of(request).safety.remove_item(request.path_params["name"], request.path_params["id"])
    return Response(status_code=204)


FILTERS = f"{PREFIX}/content-filters"
BLOCKLISTS = f"{PREFIX}/blocklists"


def routes() -> list[Route]:
    return [
        Route(FILTERS, list_content_filters, methods=["GET"]),
        Route(f"{FILTERS}/{{name}}", show_content_filter, methods=["GET"]),
        audited_route(f"{FILTERS}/{{name}}", create_content_filter, "PUT", "content-filters.create"),
        audited_route(f"{FILTERS}/{{name}}", update_content_filter, "PATCH", "content-filters.update"),
        audited_route(f"{FILTERS}/{{name}}", delete_content_filter, "DELETE", "content-filters.delete"),
        Route(BLOCKLISTS, list_blocklists, methods=["GET"]),
        Route(f"{BLOCKLISTS}/{{name}}", show_blocklist, methods=["GET"]),
        audited_route(f"{BLOCKLISTS}/{{name}}", create_blocklist, "PUT", "blocklists.create"),
        audited_route(f"{BLOCKLISTS}/{{name}}", delete_blocklist, "DELETE", "blocklists.delete"),
        audited_route(f"{BLOCKLISTS}/{{name}}/items", add_blocklist_item, "POST", "blocklists.add-item"),
        audited_route(
            f"{BLOCKLISTS}/{{name}}/items/{{id}}", remove_blocklist_item, "DELETE", "blocklists.remove-item"
        ),
    ]
