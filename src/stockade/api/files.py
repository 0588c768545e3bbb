"""``/openai/files`` (classic: api-version required) and ``/openai/v1/files``: upload, list,
retrieve, delete and download files; ``/management/files/rekey`` reseals them with the first key.

An upload is read as it streams in: its file part is checked and sealed piece by piece, and the
fields may come in either spelling clients send (``expires_after[seconds]`` from the openai SDK,
``expires_after.seconds`` from Azure's curl sample).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from stockade.access import Permission
from stockade.api.api_versions import check_api_version
from stockade.api.audit import audited_route
from stockade.api.credentials import authorize
from stockade.api.multipart import Field, FileStart, form_events
from stockade.api.query import page_limit, page_order
from stockade.api.responses import json_response
from stockade.batch.files import Files, FileTooLarge, Upload, file_object
from stockade.core import Resource
from stockade.errors import InvalidRequest, shown
from stockade.store import FileRecord

# Room for the multipart framing and the small fields around the file part: a body declaring
# more than the file limit and this is refused before its sender is authenticated.
FORM_OVERHEAD_BYTES = 64 * 1024
# OpenAI's bounds for a files list's limit; its default is the largest.
LIST_LIMIT = 10_000
ANCHOR = "created_at"


def _files(request: Request) -> Files:
    resource: Resource = request.app.state.resource
    return resource.files


def _form_value(fields: dict[str, str], name: str, part: str) -> str | None:
    """A sub-field of ``name``, in the SDK's spelling (``name[part]``) or Azure's (``name.part``)."""
    return fields.get(f"{name}[{part}]", fields.get(f"{name}.{part}"))


def _expires_after(fields: dict[str, str]) -> int | None:
    anchor = _form_value(fields, "expires_after", "anchor")
    seconds = _form_value(fields, "expires_after", "seconds")
    if anchor not in (None, ANCHOR):
        raise InvalidRequest(
            f"expires_after.anchor must be {ANCHOR!r}, not {shown(anchor or '')!r}.",
            code="invalid_value", param="expires_after.anchor",
        )
    if seconds is None:
        if anchor is not None:
            raise InvalidRequest(
                "expires_after.seconds is missing: say how long after its upload the file is deleted.",
                code="missing_required_parameter", param="expires_after.seconds",
            )
        return None
    if not seconds.strip().isdigit():
        raise InvalidRequest(
            f"expires_after.seconds must be a whole number of seconds, not {shown(seconds)!r}.",
            code="invalid_value", param="expires_after.seconds",
        )
    return int(seconds)


async def _upload(request: Request, files: Files, uploader: str) -> FileRecord:
    """The body's one file part, stored as it arrives, then accepted with the fields around it
    (an expiry may follow the file, as in Azure's curl sample)."""
    fields: dict[str, str] = {}
    upload: Upload | None = None
    try:
        async for event in form_events(request):
            if isinstance(event, Field):
                fields[event.name] = event.value
            elif isinstance(event, FileStart):
                if upload is not None or event.name != "file":
                    raise InvalidRequest(
                        "Send one file, in the part named 'file'.", code="invalid_request", param="file"
                    )
                purpose = fields.get("purpose")
                if purpose is None:
                    raise InvalidRequest(
                        "Missing required parameter: 'purpose' (send it before the file part, as "
                        "the openai SDK does).",
                        code="missing_required_parameter", param="purpose",
                    )
                upload = await files.receive(uploader, purpose, event.filename or "file")
            elif upload is not None:
                await upload.write(event.data)
        if upload is None:
            raise InvalidRequest(
                "Missing required parameter: 'file'.", code="missing_required_parameter", param="file"
            )
        return await upload.finish(_expires_after(fields))
    except BaseException:
        if upload is not None:
            await upload.abort()
        raise


def _handlers(*, classic: bool):  # type: ignore[no-untyped-def]
    """The files routes of one family; classic routes require an api-version."""

    async def create(request: Request) -> Response:
        check_api_version(request.scope["query_string"], classic)
        files = _files(request)
        limit = files.settings.batch.max_file_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD_BYTES:
            raise FileTooLarge(limit)
        principal = await authorize(request, Permission.INFERENCE)
        record = await _upload(request, files, principal.id)
        # Azure answers an upload with 201 (its spec's example); OpenAI, whose routes v1 follows, 200.
        return json_response(file_object(record), 201 if classic else 200)

    async def list_files(request: Request) -> Response:
        check_api_version(request.scope["query_string"], classic)
        await authorize(request, Permission.INFERENCE)
        query = request.query_params
        order = page_order(query.get("order"))
        records, has_more = await _files(request).list(
            query.get("purpose"), page_limit(query.get("limit"), LIST_LIMIT, LIST_LIMIT), query.get("after"), order
        )
        return json_response({
            "object": "list",
            "data": [file_object(record) for record in records],
            "first_id": records[0].id if records else None,
            "last_id": records[-1].id if records else None,
            "has_more": has_more,
        })

    async def retrieve(request: Request) -> Response:
        check_api_version(request.scope["query_string"], classic)
        await authorize(request, Permission.INFERENCE)
        return json_response(file_object(await _files(request).get(request.path_params["file_id"])))

    async def delete(request: Request) -> Response:
        check_api_version(request.scope["query_string"], classic)
        await authorize(request, Permission.INFERENCE)
        file_id = request.path_params["file_id"]
        await _files(request).delete(file_id)
        return json_response({"object": "file", "deleted": True, "id": file_id})

    async def content(request: Request) -> Response:
        check_api_version(request.scope["query_string"], classic)
        await authorize(request, Permission.INFERENCE)
        files = _files(request)
        record = await files.get(request.path_params["file_id"])
        chunks = await files.content(record.id)
        # The first chunk is opened before the answer starts, so that a key that cannot open
        # it is a proper error rather than a cut-off download.
        first = await anext(chunks, None)
        return StreamingResponse(
            _prefixed(first, chunks),
            media_type="application/octet-stream",
            headers={"content-length": str(record.bytes)},
        )

    return create, list_files, retrieve, delete, content


async def _prefixed(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first is not None:
        yield first
    async for chunk in rest:
        yield chunk


async def rekey(request: Request) -> Response:
    await authorize(request, Permission.KEYS)
    return json_response({"resealed": await _files(request).rekey()})


def routes() -> list[Route]:
    result = [audited_route("/management/files/rekey", rekey, "POST", "files.rekey")]
    for prefix, classic in (("/openai", True), ("/openai/v1", False)):
        create, list_files, retrieve, delete, content = _handlers(classic=classic)
        result += [
            Route(f"{prefix}/files", create, methods=["POST"]),
            Route(f"{prefix}/files", list_files, methods=["GET"]),
            Route(f"{prefix}/files/{{file_id}}", retrieve, methods=["GET"]),
            Route(f"{prefix}/files/{{file_id}}", delete, methods=["DELETE"]),
            Route(f"{prefix}/files/{{file_id}}/content", content, methods=["GET"]),
        ]
    return result
