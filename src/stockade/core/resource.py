"""The resource: deployments, keys and models, as Azure's OpenAI resource has them.

A ``Resource`` keeps deployments and keys in memory for the request path and re-reads them when
the store's revision moves (another replica, or the command line, changed something).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from stockade.access import ADMIN, ADMIN_KEY_NAMES, Access, new_key, resolve_role
from stockade.backends.base import ModelHost, ModelSpec, PoolState
from stockade.backends.gguf import check_model_file
from stockade.backends.registry import LOCAL, ModelRegistry
from stockade.batch.files import Files
from stockade.batch.jobs import Batches
from stockade.batch.runner import BatchRunner
from stockade.batch.sealing import Sealer
from stockade.billing.alerts import Alerts
from stockade.billing.budgets import Spending
from stockade.billing.holds import create_ledger
from stockade.billing.prices import STANDARD, Price, combined
from stockade.config import Settings
from stockade.core.guard import guard_classifier
from stockade.core.inference import Inference
from stockade.core.responses import Responses
from stockade.core.safety import ContentSafety
from stockade.errors import (
    Conflict,
    DeploymentNotFound,
    InnerErrorSpelling,
    InvalidRequest,
    NotFound,
    shown,
)
from stockade.names import DEPLOYMENT_NAME_RULE, NAME, check_name
from stockade.private import write_private_file
from stockade.quotas import Limit, Limiter, create_limiter
from stockade.responses.stored import StoredResponses
from stockade.routines.deployment import CLASSIFIER_MODEL
from stockade.routines.service import Conversations
from stockade.safety.base import Classifier
from stockade.safety.classifier import LocalClassifier
from stockade.store import (
    ApiKey,
    Deployment,
    InUse,
    ModelFile,
    QuotaExceeded,
    RecentUse,
    RoleAssignment,
    Store,
    UsageRecord,
    shown_url,
)
from stockade.telemetry import DiagnosticLog, UsageRecorder
from stockade.telemetry.diagnostics import configured_log
from stockade.telemetry.outage import Outage, every
from stockade.telemetry.spool import Spool
from stockade.telemetry.tracing import Tracing

log = logging.getLogger(__name__)

ADMIN_KEYS_FILE = "admin-keys.txt"


def admin_keys_file(settings: Settings) -> Path:
    """Where the admin keys created on first start are written, owner-only (never to the log,
    which a service manager keeps in its journal)."""
    return settings.data_dir.resolve() / ADMIN_KEYS_FILE


def prepare_store(settings: Settings) -> dict[str, str]:
    """Migrate the store and create missing admin keys; returns those created (name: secret)."""
    store = Store(settings.store_url)
    try:
        store.migrate()
        return ensure_admin_keys(store, admin_keys_file(settings))
    finally:
        store.close()


def ensure_admin_keys(store: Store, keys_file: Path) -> dict[str, str]:
    """Create the missing admin keys and write those created to ``keys_file``; returns them."""
    existing = {key.name for key in store.active_keys() if key.kind == "admin"}
    created = {}
    for name in ADMIN_KEY_NAMES:
        if name not in existing:
            record, secret = new_key(name, kind="admin", role=ADMIN)
            if store.insert_key(record):
                created[name] = secret
    if created:
        write_private_file(keys_file, admin_keys_text(shown_url(store.url), created))
    return created


def forget_admin_key(keys_file: Path, name: str) -> None:
    """Take a regenerated key's old secret out of the keys file, if it is still there, so that
    the file never offers a secret that no longer works."""
    try:
        lines = keys_file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return
    kept = [line for line in lines if not line.startswith(f"{name}=")]
    if kept != lines:
        kept.append(f"# {name} was regenerated; its new secret was shown to whoever regenerated it.")
        write_private_file(keys_file, "\n".join(kept) + "\n")


def admin_keys_text(store_url: str, keys: dict[str, str]) -> str:
    lines = [
        f"# The admin keys of the Stockade store {store_url}, created on its first start.",
        "# Keep them in your secret store, then delete this file. `stockade keys list` shows the",
        "# keys that exist; `stockade keys regenerate key1` replaces a lost one.",
        *(f"{name}={secret}" for name, secret in keys.items()),
    ]
    return "\n".join(lines) + "\n"


def configured_classifier(settings: Settings, resource: Resource) -> Classifier | None:
    if settings.safety.classifier == "local":
        return LocalClassifier()  # raises ClassifierUnavailable, with what to do, if it cannot load
    if settings.safety.classifier == "guard":
        return guard_classifier(settings.safety, resource)
    return None


class Resource:
    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        *,
        limiter: Limiter | None = None,
        host: ModelHost | None = None,
        local_models: Sequence[ModelSpec] | None = None,
        classifier: Classifier | None = None,
    ) -> None:
        """``limiter`` and ``host`` default to this process's own counters and model workers; a
        replica's HTTP workers pass the hub's, which they share. ``local_models`` replaces the
        model plugins' (tests pass a fake model). ``classifier``, when given, rates texts for the
        harm categories, which content filter policies then compare with their thresholds;
        without one those categories are not screened (nor annotated)."""
        self.settings = settings
        self.store = store or Store(settings.store_url)
        self.registry = ModelRegistry(settings, host, local_models)
        self.limiter = limiter or create_limiter(settings)
        currency = settings.billing.currency
        self.spending = Spending(
            create_ledger(settings), self.store, lambda: self.prices, Alerts(self.store, currency), currency
        )
        self.tracing = Tracing.configured(settings.telemetry)
        self.inference = Inference(
            self.registry, self.limiter, settings.limits.default_max_tokens, settings.batch.headroom,
            self.spending, self.tracing,
        )
        self.prices = combined(self._configured_prices(), ())
        self.usage = UsageRecorder(
            self.store, settings.usage_flush_seconds, Spool(settings.data_dir / "spool"), priced=self.priced
        )
        self.diagnostics: DiagnosticLog | None = configured_log(settings.telemetry)
        self.access = Access(settings, self.store, changed=self.refresh)
        self.safety = ContentSafety(self.store, self.refresh, classifier or configured_classifier(settings, self))
        self.routines = Conversations(settings, self.store, self.conversation_deployments)
        sealer = Sealer.from_settings(settings)
        self.files = Files(self.store, sealer, settings)
        self.responses = Responses(self.inference, StoredResponses(self.store, sealer, settings.responses))
        self.batches = Batches(self)
        self.batch_runner: BatchRunner | None = None
        self._deployments: dict[str, Deployment] = {}
        self._revision = -1
        self._refreshing = asyncio.Lock()
        self._refresher: asyncio.Task[None] | None = None
        self._purgers: list[asyncio.Task[None]] = []
        self._starts_models = False

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self, *, background: bool = True) -> dict[str, str]:
        """Migrate the store, load caches; returns admin keys created on first start (name: secret)."""
        await asyncio.to_thread(self.store.migrate)
        created = await asyncio.to_thread(ensure_admin_keys, self.store, admin_keys_file(self.settings))
        await asyncio.to_thread(self.access.prepare)
        await self.refresh()
        if background:
            # What expired while no server ran.
            await self.files.purge()
            await self.responses.stored.purge()
            self.usage.start()
            if self.diagnostics is not None:
                self.diagnostics.start()
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())
            self._purgers = [
                asyncio.get_running_loop().create_task(purge())
                for purge in (self.files.purge_forever, self.responses.stored.purge_forever)
            ]
        return created

    async def close(self) -> None:
        # Routines and batch lines first: they call models through the limiter and usage below.
        await self.routines.close()
        if self.batch_runner is not None:
            await self.batch_runner.stop()
        for task in (self._refresher, *self._purgers):
            if task is not None:
                task.cancel()
        await self.usage.stop()
        await self.spending.close()
        if self.diagnostics is not None:
            await self.diagnostics.stop()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.close)  # exports what is left: network I/O
        await self.limiter.close()
        await self.access.close()
        await self.registry.close()
        self.store.close()

    async def refresh(self) -> None:
        # One refresh at a time: an older read finishing last would bring back, for a moment,
        # a key or role that a management call has just removed.
        async with self._refreshing:
            revision = await asyncio.to_thread(self.store.revision)
            if revision == self._revision:
                return
            deployments, access, files, safety, prices, budgets = await asyncio.to_thread(
                lambda: (self.store.list_deployments(), self.access.read(),
                         self.store.list_model_files(), self.safety.read(),
                         self.store.usage.list_prices(), self.store.budgets.all())
            )
            self.prices = combined(self._configured_prices(), prices)
            await self.registry.use_model_files(files)
            self.spending.load(budgets)
            self.safety.load(*safety)
            self._deployments = {d.name: d for d in deployments}
            self.access.load(access)
            self._revision = revision
            if self._starts_models:
                self._start_deployed_models()

    def _configured_prices(self) -> list[Price]:
        return [price.price() for price in self.settings.billing.prices]

    def priced(self, record: UsageRecord) -> UsageRecord:
        """``record`` with its cost under the prices of its time, its deployment's sku, and the
        batch discount for a batch line."""
        deployment = self._deployments.get(record.deployment or "")
        cost = self.prices.cost(
            record.model, record.prompt_tokens, record.completion_tokens, record.ts,
            batch=record.batch_id is not None, sku=deployment.sku if deployment else STANDARD,
        )
        return record if cost == record.cost else dataclasses.replace(record, cost=cost)

    async def _refresh_forever(self) -> None:
        outage = Outage(log, "re-reading deployments and keys (the last copy is served meanwhile)")
        await every(self.settings.refresh_seconds, self.refresh, outage)

    def start_models(self) -> None:
        """Start the deployed models in the background, now and whenever a deployment appears
        (created here, or seen on a re-read of the store), so that the first call finds them
        loaded. Serving does not wait for them: /healthz and /readyz say when they are ready. A
        server does this; the command line, which opens a resource for one command, does not."""
        self._starts_models = True
        self._start_deployed_models()

    def start_batch_runner(self, spelling: Callable[[str | None], InnerErrorSpelling]) -> None:
        """Run batch jobs' lines here, alongside whatever other replicas run them; ``spelling``
        is the api-version's for content-filter errors. A server does this; the command line
        does not."""
        self.batch_runner = BatchRunner(self, spelling)
        self.inference.on_throttled = self.batch_runner.pause
        self.batch_runner.start()

    def _start_deployed_models(self) -> None:
        for deployment in self._deployments.values():
            self.registry.start_in_background(deployment.backend, deployment.model)
        self.safety.start_phi()

    async def model_states(self) -> dict[str, PoolState]:
        """The state of each deployed local model's workers, by model id (upstreams are not
        this replica's to report)."""
        states: dict[str, PoolState] = {}
        for deployment in self.deployments():
            model = deployment.model
            if deployment.backend == LOCAL and model not in states and self.registry.spec(LOCAL, model):
                states[model] = await self.registry.health(LOCAL, model)
        return states

    # -- models and deployments -----------------------------------------------------------------

    def models(self) -> list[ModelSpec]:
        return self.registry.catalogue()

    async def add_model_file(self, path: str, name: str | None = None) -> ModelSpec:
        """Make a GGUF file of the user's own deployable, as ``name`` (its file name without
        the extension, by default)."""
        header = await asyncio.to_thread(check_model_file, path)
        model = name or PurePath(path).stem
        check_name(model, "model", then=" Choose one with --name.")
        if self.registry.find(model, LOCAL):
            raise _model_exists(model)
        record = ModelFile(model, path, header.architecture, header.context_tokens, time.time())
        if not await asyncio.to_thread(self.store.insert_model_file, record):
            raise _model_exists(model)
        await self.refresh()
        spec = self.registry.spec(LOCAL, model)
        assert spec is not None, "refreshed from the store it was just written to"
        return spec

    async def remove_model_file(self, model: str) -> None:
        try:
            removed = await asyncio.to_thread(self.store.delete_model_file, model)
        except InUse as exc:
            raise Conflict(
                f"Model {model!r} is deployed as {', '.join(exc.users)}. Delete those "
                "deployments (`stockade deployments delete NAME`) or move them to another model "
                "(`stockade deployments update NAME --model MODEL`) first.",
                code="ModelInUse",
            ) from None
        if not removed and self.registry.spec(LOCAL, model) is not None:
            raise InvalidRequest(
                f"Model {model!r} comes with Stockade or a model plugin; only models added with "
                "`stockade models add` can be removed.",
                param="model",
            )
        if not removed:
            raise NotFound(
                f"No model added with `stockade models add` has the id {model!r}; "
                "`stockade models list` shows the models there are."
            )
        await self.refresh()

    def deployment(self, name: str) -> Deployment:
        """The deployment serving ``name``; the request path's lookup (memory only)."""
        deployment = self._deployments.get(name)
        if deployment is None:
            raise DeploymentNotFound(name)
        return deployment

    async def check_deployment_exists(self, name: str | None) -> None:
        """For scopes named in management calls: fresh from the store, not the cache."""
        if name is not None and name not in self._deployments:
            await self.refresh()
            self.deployment(name)

    def deployments(self) -> list[Deployment]:
        return sorted(self._deployments.values(), key=lambda d: d.name)

    def conversation_deployments(self, routine: str, chat: str | None, embeddings: str | None) -> tuple[str, str]:
        """The chat and embeddings deployments a conversation following ``routine`` uses, checked."""
        routines = self.settings.routines
        chat = chat or routines.chat_deployments.get(routine) or routines.chat_deployment
        return (
            self._deployment_of_kind("chat", chat, "deployment"),
            self._deployment_of_kind(
                "embeddings", embeddings or routines.embeddings_deployment, "embeddings_deployment",
                preferred=CLASSIFIER_MODEL,
            ),
        )

    def _deployment_of_kind(self, kind: str, name: str | None, param: str, preferred: str | None = None) -> str:
        """``name`` checked, or the first deployment of the kind (of the ``preferred`` model, if any)."""
        candidates = [
            d.name for d in sorted(self.deployments(), key=lambda d: d.model != preferred)
            if (spec := self.registry.spec(d.backend, d.model)) is not None and spec.kind == kind
        ]
        if name is None and candidates:
            return candidates[0]
        if name is None:
            raise InvalidRequest(
                f"Routines need a {kind} deployment; create one with `stockade deployments create`.",
                param=param,
            )
        if name not in candidates:
            raise InvalidRequest(f"There is no {kind} deployment named {name!r}.", param=param)
        return name

    def _resolve_model(self, model: str, backend: str | None) -> ModelSpec:
        matches = self.registry.find(model, backend)
        if not matches:
            raise InvalidRequest(
                f"Model {model!r} is not available{f' from backend {backend!r}' if backend else ''}."
                " `stockade models list` shows the models that can be deployed.",
                param="model",
            )
        if len(matches) > 1:
            backends = ", ".join(sorted(spec.backend for spec in matches))
            raise InvalidRequest(
                f"Model {model!r} is offered by several backends ({backends}); name one.",
                param="backend",
            )
        return matches[0]

    async def create_deployment(
        self,
        name: str,
        model: str,
        backend: str | None = None,
        capacity: int = 10,
        *,
        zero_data_retention: bool = False,
        batch_token_quota: int | None = None,
        sku: str = STANDARD,
    ) -> Deployment:
        check_name(name, "deployment", rule=DEPLOYMENT_NAME_RULE)
        _check_capacity(capacity)
        if batch_token_quota is not None:
            _check_batch_token_quota(batch_token_quota)
        spec = self._resolve_model(model, backend)
        now = time.time()
        deployment = Deployment(
            name, spec.id, spec.backend, capacity, now, now,
            zero_data_retention=zero_data_retention, batch_token_quota=batch_token_quota, sku=sku,
        )
        default_quota = self.settings.limits.default_quota
        try:
            inserted = await asyncio.to_thread(self.store.insert_deployment, deployment, default_quota)
        except QuotaExceeded as exc:
            raise _insufficient_quota(exc) from None
        if not inserted:
            raise Conflict(f"A deployment named {name!r} already exists.", code="DeploymentExists")
        await self.refresh()
        return deployment

    async def update_deployment(
        self,
        name: str,
        *,
        model: str | None = None,
        backend: str | None = None,
        capacity: int | None = None,
        content_filter: str | None = None,
        zero_data_retention: bool | None = None,
        batch_token_quota: int | None = None,
        sku: str | None = None,
    ) -> Deployment:
        current = await asyncio.to_thread(self.store.get_deployment, name)
        if current is None:
            raise DeploymentNotFound(name)
        changes: dict[str, object] = {}
        if zero_data_retention is not None:
            changes["zero_data_retention"] = zero_data_retention
        if sku is not None:
            changes["sku"] = sku
        if batch_token_quota is not None:
            _check_batch_token_quota(batch_token_quota)
            changes["batch_token_quota"] = batch_token_quota
        if content_filter is not None:
            await self.refresh()
            if not self.safety.has_policy(content_filter):
                raise InvalidRequest(
                    f"There is no content filter policy {shown(content_filter)!r}. `stockade "
                    "content-filters list` shows those there are; `stockade content-filters "
                    "create NAME` makes one.",
                    param="content_filter",
                )
            changes["content_filter"] = content_filter
        if capacity is not None:
            _check_capacity(capacity)
            changes["capacity"] = capacity
        if model is not None or backend is not None:
            spec = self._resolve_model(model or current.model, backend)
            changes.update(model=spec.id, backend=spec.backend)
        if not changes:
            return current
        default_quota = self.settings.limits.default_quota
        try:
            updated = await asyncio.to_thread(
                lambda: self.store.update_deployment(name, default_quota, **changes)
            )
        except QuotaExceeded as exc:
            raise _insufficient_quota(exc) from None
        if updated is None:
            raise DeploymentNotFound(name)
        await self.refresh()
        return updated

    async def delete_deployment(self, name: str) -> None:
        if not await asyncio.to_thread(self.store.delete_deployment, name):
            raise DeploymentNotFound(name)
        await self.refresh()

    # -- quotas ---------------------------------------------------------------------------------

    async def quotas(self) -> list[ModelQuota]:
        """Every model's quota, what its deployments hold, and what they used this last minute."""
        since = time.time() - 60
        await self.usage.flush()
        quotas, deployments, used = await asyncio.to_thread(
            lambda: (self.store.model_quotas(), self.store.list_deployments(),
                     self.store.use_since(since))
        )
        models = sorted({spec.id for spec in self.registry.catalogue()} | set(quotas)
                        | {d.model for d in deployments})
        return [
            ModelQuota(
                model,
                quotas.get(model, self.settings.limits.default_quota),
                [
                    DeploymentUse(d, used.get(d.name, RecentUse(0, 0)))
                    for d in deployments if d.model == model
                ],
            )
            for model in models
        ]

    async def set_quota(self, model: str, capacity: int) -> None:
        _check_capacity(capacity)
        try:
            await asyncio.to_thread(self.store.set_model_quota, model, capacity)
        except QuotaExceeded as exc:
            raise InvalidRequest(
                f"The deployments of {model} already hold {exc.allocated} capacity, more than a "
                f"quota of {capacity}. Lower their capacity first "
                "(`stockade deployments update NAME --capacity N`).",
                code="QuotaBelowAllocation",
                param="capacity",
            ) from None
        await self.refresh()

    async def recent_usage(
        self, limit: int, deployment: str | None = None, key_ids: Sequence[str] | None = None,
        *, since: float | None = None, until: float | None = None, content_filtered: bool = False,
    ) -> list[tuple[UsageRecord, str | None]]:
        """The newest records, of one deployment's calls, some callers' and a time range if
        given (only those the content filter acted on, if ``content_filtered``), each with its
        caller's name if known."""
        return list(await asyncio.to_thread(
            lambda: self.store.recent_usage(
                limit, deployment, key_ids, since=since, until=until, content_filtered=content_filtered
            )
        ))

    # -- keys -----------------------------------------------------------------------------------

    async def list_keys(self) -> list[ApiKey]:
        return await asyncio.to_thread(self.store.active_keys)

    async def regenerate_admin_key(self, name: str) -> tuple[ApiKey, str]:
        if name not in ADMIN_KEY_NAMES:
            raise InvalidRequest("Only key1 and key2 can be regenerated.", param="name")
        record, secret = new_key(name, kind="admin", role=ADMIN)
        updated = await asyncio.to_thread(
            self.store.replace_key_secret, name, record.secret_hash, record.hint
        )
        if updated is None:  # lost somehow: create it again
            await asyncio.to_thread(self.store.insert_key, record)
            updated = record
        await asyncio.to_thread(forget_admin_key, admin_keys_file(self.settings), name)
        await self.refresh()
        return updated, secret

    async def create_application_key(
        self, name: str, role: str, deployment: str | None = None, limit: Limit | None = None
    ) -> tuple[ApiKey, str]:
        if not NAME.fullmatch(name) or name in ADMIN_KEY_NAMES:
            raise InvalidRequest(
                "A key name has 1 to 64 letters, digits, '.', '_' or '-' and is not key1 or key2.",
                param="name",
            )
        canonical = resolve_role(role)
        if canonical is None:
            raise InvalidRequest(
                f"Unknown role {role!r}; use openai-user, openai-contributor or contributor.",
                param="role",
            )
        await self.check_deployment_exists(deployment)
        record, secret = new_key(
            name, kind="application", role=canonical, deployment=deployment, limit=limit
        )
        if not await asyncio.to_thread(self.store.insert_key, record):
            raise Conflict(f"An active key named {name!r} already exists.", code="KeyExists")
        await self.refresh()
        return record, secret

    async def set_key_limit(self, key_id: str, **changes: int | None) -> ApiKey:
        """Change an application key's tokens_per_minute and/or requests_per_minute."""
        current = next((k for k in await self.list_keys() if k.id == key_id), None)
        updated = None
        if current is not None:
            tokens = changes.get("tokens_per_minute", current.tokens_per_minute)
            requests = changes.get("requests_per_minute", current.requests_per_minute)
            updated = await asyncio.to_thread(self.store.set_key_limits, key_id, tokens, requests)
        if updated is None:
            raise NotFound(
                f"No active application key has id {key_id!r} (admin keys have no limits of "
                "their own)."
            )
        await self.refresh()
        return updated

    async def assign_role(self, role: str, *, deployment: str | None = None, key_id: str | None = None,
                          **principal: str | None) -> RoleAssignment:
        """Assign a role (see ``Access.assign_role``) after checking its scope and key exist."""
        await self.check_deployment_exists(deployment)
        if key_id is not None and not any(
            key.id == key_id and key.kind == "application" for key in await self.list_keys()
        ):
            raise NotFound(
                f"No active application key has id {key_id!r} (key1 and key2 hold every role)."
            )
        return await self.access.assign_role(role, deployment=deployment, key_id=key_id, **principal)

    async def revoke_key(self, key_id: str) -> None:
        if not await asyncio.to_thread(self.store.revoke_key, key_id):
            raise NotFound(
                f"No active application key has id {key_id!r} (admin keys are regenerated, "
                "not revoked)."
            )
        await self.refresh()


@dataclass(frozen=True, slots=True)
class DeploymentUse:
    deployment: Deployment
    last_minute: RecentUse


@dataclass(frozen=True, slots=True)
class ModelQuota:
    model: str
    quota: int  # capacity units, 1 = 1,000 TPM
    deployments: list[DeploymentUse]

    @property
    def allocated(self) -> int:
        return sum(use.deployment.capacity for use in self.deployments)


def _insufficient_quota(exc: QuotaExceeded) -> InvalidRequest:
    left = max(0, exc.quota - exc.allocated)
    return InvalidRequest(
        f"This operation requires {exc.requested} capacity of model {exc.model}, but only {left} "
        f"is left (quota {exc.quota}, allocated {exc.allocated}; 1 unit = 1,000 tokens per "
        f"minute). Ask for at most {left}, lower another deployment's capacity, or raise the "
        f"quota with `stockade quota set {exc.model} --capacity N`.",
        code="InsufficientQuota",
        param="capacity",
    )


def _model_exists(model: str) -> Conflict:
    return Conflict(
        f"A model with the id {model!r} already exists (`stockade models list`). Choose another "
        "id with --name, or remove the one you added before with `stockade models remove`.",
        code="ModelExists",
    )


def _check_batch_token_quota(quota: int) -> None:
    if isinstance(quota, bool) or not isinstance(quota, int) or quota < 1:
        raise InvalidRequest(
            "batch_token_quota is the number of tokens the deployment's unfinished batches may "
            "hold, a whole number of at least 1.",
            param="batch_token_quota",
        )


def _check_capacity(capacity: int) -> None:
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise InvalidRequest(
            "capacity is a whole number of thousands of tokens per minute, at least 1.",
            param="capacity",
        )

