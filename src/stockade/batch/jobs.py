"""Batch jobs as Azure OpenAI's ``/openai/batches`` has them: created against an uploaded input
file, checked, then run line by line by the replicas' ``BatchRunner`` (batch/runner.py).

What is checked at creation is what can change after the upload: the deployment the file's
lines name (it may have been created, deleted or changed since), the caller's right to call it,
its data policy, and its enqueued-token quota.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stockade.access import Permission, Principal
from stockade.batch.files import BATCH, ZeroDataRetention
from stockade.batch.jsonl import REQUEST_TYPES
from stockade.errors import DeploymentNotFound, InvalidRequest, NotFound, PermissionDenied, shown
from stockade.requests import EmbeddingRequest
from stockade.store import BatchRecord, Deployment
from stockade.store.batches import (
    CANCELLING,
    IN_PROGRESS,
    VALIDATING,
    LineCounts,
)

if TYPE_CHECKING:
    from stockade.core.resource import Resource

COMPLETION_WINDOW = "24h"
WINDOW_SECONDS = 24 * 3600
# OpenAI's metadata limits.
METADATA_PAIRS, METADATA_KEY_CHARS, METADATA_VALUE_CHARS = 16, 64, 512


@dataclass(frozen=True, slots=True)
class BatchView:
    """A batch as its callers see it: the record, and how many of its lines ended each way."""

    record: BatchRecord
    counts: LineCounts


def batch_object(view: BatchView) -> dict[str, Any]:
    """Azure's Batch object (and OpenAI's ``model``)."""
    record = view.record

    def at(value: float | None) -> int | None:
        return None if value is None else int(value)

    errors = json.loads(record.errors) if record.errors else None
    return {
        "id": record.id,
        "object": "batch",
        "endpoint": record.endpoint,
        "model": record.deployment,
        "errors": None if errors is None else {"object": "list", "data": errors},
        "input_file_id": record.input_file_id,
        "completion_window": record.completion_window,
        "status": record.status,
        "output_file_id": record.output_file_id,
        "error_file_id": record.error_file_id,
        "created_at": int(record.created_at),
        "in_progress_at": at(record.in_progress_at),
        "expires_at": at(record.expires_at),
        "finalizing_at": at(record.finalizing_at),
        "completed_at": at(record.completed_at),
        "failed_at": at(record.failed_at),
        "expired_at": at(record.expired_at),
        "cancelling_at": at(record.cancelling_at),
        "cancelled_at": at(record.cancelled_at),
        "request_counts": {
            "total": record.total,
            "completed": view.counts.completed,
            "failed": view.counts.failed,
        },
        "metadata": json.loads(record.metadata) if record.metadata else None,
    }


def batch_not_found(batch_id: str) -> NotFound:
    return NotFound(
        f"Batch {shown(batch_id)!r} not found. `stockade batches list` shows the batches there are."
    )


def same_url(endpoint: str) -> str:
    """An endpoint without OpenAI's /v1 prefix: both spellings name the same operation."""
    return endpoint.removeprefix("/v1")


class TokenLimitExceeded(InvalidRequest):
    code = "token_limit_exceeded"

    def __init__(self, deployment: str, held: int, wanted: int, quota: int) -> None:
        super().__init__(
            f"token_limit_exceeded: this batch reserves {wanted:,} tokens and deployment "
            f"{deployment!r}'s unfinished batches already hold {held:,}, more together than its "
            f"enqueued-token quota of {quota:,}. Wait for those batches to finish, split the file, "
            f"or raise the quota (`stockade deployments update {deployment} --batch-token-quota N`).",
            param="input_file_id",
        )


class Batches:
    def __init__(self, resource: Resource, clock: Callable[[], float] = time.time) -> None:
        self.resource = resource
        self.store = resource.store.batches
        self.clock = clock

    async def create(
        self,
        principal: Principal,
        *,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: Mapping[str, str] | None = None,
        output_expires_after: int | None = None,
        api_version: str | None = None,
    ) -> BatchView:
        """Check the job and store it as validating; a runner expands its lines next."""
        if endpoint not in REQUEST_TYPES:
            raise InvalidRequest(
                f"endpoint {shown(endpoint)!r} is not one batches run; use one of "
                f"{', '.join(REQUEST_TYPES)}.",
                code="invalid_value",
                param="endpoint",
            )
        if completion_window != COMPLETION_WINDOW:
            raise InvalidRequest(
                f"completion_window {shown(completion_window)!r} is not supported; batches "
                f"complete within {COMPLETION_WINDOW!r}, the only window Azure offers.",
                code="invalid_value",
                param="completion_window",
            )
        _check_metadata(metadata)
        file = await self.resource.files.get(input_file_id)
        if file.purpose != BATCH or file.status != "processed" or file.url is None:
            raise InvalidRequest(
                f"File {input_file_id!r} is not a batch input file (its purpose is "
                f"{file.purpose!r}, its status {file.status!r}); upload one with purpose 'batch'.",
                code="invalid_file",
                param="input_file_id",
            )
        if same_url(file.url) != same_url(endpoint):
            raise InvalidRequest(
                f"The lines of file {input_file_id!r} call {file.url!r}, not the batch's endpoint "
                f"{endpoint!r}. Create the batch with endpoint {file.url!r}.",
                code="url_mismatch",
                param="endpoint",
            )
        assert file.deployment is not None and file.lines is not None, "a processed batch file"
        deployment = self._deployment(principal, file.deployment, endpoint)
        now = self.clock()
        record = BatchRecord(
            id=f"batch_{uuid.uuid4()}",
            input_file_id=input_file_id,
            endpoint=endpoint,
            deployment=deployment.name,
            completion_window=completion_window,
            status=VALIDATING,
            created_at=now,
            expires_at=now + WINDOW_SECONDS,
            created_by=principal.id,
            created_by_tenant=self.resource.access.tenant_of(principal),
            total=0,
            reserved_tokens=file.reserved_tokens or 0,
            metadata=json.dumps(dict(metadata)) if metadata else None,
            output_expires_after=output_expires_after,
            api_version=api_version,
        )
        quota = deployment.batch_token_quota or self.resource.settings.batch.token_quota
        held = await asyncio.to_thread(self.store.insert, record, quota)
        if held is not None:
            raise TokenLimitExceeded(deployment.name, held, record.reserved_tokens, quota)
        return BatchView(record, LineCounts())

    def _deployment(self, principal: Principal, name: str, endpoint: str) -> Deployment:
        """The deployment the file's lines name, if the caller may run a batch on it."""
        try:
            deployment = self.resource.deployment(name)
        except DeploymentNotFound:
            raise InvalidRequest(
                f"The input file's lines name deployment {shown(name)!r}, which does not exist. "
                "`stockade deployments list` shows the deployments there are.",
                code="model_not_found",
                param="input_file_id",
            ) from None
        if not principal.allows(Permission.INFERENCE, deployment.name):
            raise PermissionDenied(
                f"Principal does not have access to API/Operation: this caller may not call "
                f"deployment {deployment.name!r}, so it may not run a batch on it."
            )
        spec = self.resource.registry.spec(deployment.backend, deployment.model)
        embeddings = REQUEST_TYPES[endpoint] is EmbeddingRequest
        if spec is not None and (spec.kind == "embeddings") != embeddings:
            raise InvalidRequest(
                f"Deployment {deployment.name!r} serves a {spec.kind} model, which does not "
                f"answer {endpoint}. Name a deployment of the right kind in the file.",
                code="OperationNotSupported",
                param="endpoint",
            )
        if deployment.zero_data_retention:
            raise ZeroDataRetention(deployment.name)
        return deployment

    async def get(self, batch_id: str) -> BatchView:
        record = await asyncio.to_thread(self.store.get, batch_id)
        if record is None:
            raise batch_not_found(batch_id)
        return (await self._views([record]))[0]

    async def cancel(self, batch_id: str) -> BatchView:
        """Stop the batch: no line starts from now on, the running ones finish, and a runner
        then writes its files with what finished (status cancelling, then cancelled)."""
        view = await self.get(batch_id)
        if view.record.status in (VALIDATING, IN_PROGRESS):
            await asyncio.to_thread(
                self.store.transition, batch_id, (VALIDATING, IN_PROGRESS),
                status=CANCELLING, cancelling_at=self.clock(),
            )
            return await self.get(batch_id)
        if view.record.status == CANCELLING:
            return view
        raise InvalidRequest(
            f"Batch {batch_id!r} is {view.record.status} already, so it cannot be cancelled.",
            code="invalid_state",
        )

    async def _views(self, records: list[BatchRecord]) -> list[BatchView]:
        counts = await asyncio.to_thread(self.store.counts, [r.id for r in records])
        return [BatchView(r, counts.get(r.id, LineCounts())) for r in records]

    async def list(self, limit: int, after: str | None) -> tuple[list[BatchView], bool]:
        """A page of batches, newest first, and whether more follow."""
        records, has_more = await asyncio.to_thread(self.store.page, limit, after)
        return await self._views(records), has_more


def _check_metadata(metadata: Mapping[str, str] | None) -> None:
    if not metadata:
        return
    if len(metadata) > METADATA_PAIRS:
        raise InvalidRequest(
            f"metadata has {len(metadata)} pairs; at most {METADATA_PAIRS} are allowed.",
            param="metadata",
        )
    for key, value in metadata.items():
        if len(key) > METADATA_KEY_CHARS or len(value) > METADATA_VALUE_CHARS:
            raise InvalidRequest(
                f"metadata key {shown(key)!r} or its value is too long: keys have at most "
                f"{METADATA_KEY_CHARS} characters, values {METADATA_VALUE_CHARS}.",
                param="metadata",
            )
