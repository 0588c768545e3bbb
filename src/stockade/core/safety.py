"""The resource's content filter policies and blocklists: managed through the store, held in
memory compiled for the request path (one ``Screen`` per policy), rebuilt when the store's
revision moves."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from stockade.core.filtering import count
from stockade.errors import Conflict, ContentFilterFailed, InvalidRequest, NotFound, shown
from stockade.names import check_name
from stockade.safety.base import Classifier
from stockade.safety.blocklists import (
    MAX_ITEMS,
    ItemKind,
    check_item,
    compile_blocklist,
    profanity,
)
from stockade.safety.phi.analyzer import PhiAnalyzer
from stockade.safety.phi.guard import PhiGuard
from stockade.safety.phi.pii import PiiScreen
from stockade.safety.policy import (
    DEFAULT,
    DEFAULT_POLICY,
    Direction,
    PhiMode,
    Policy,
    ShieldMode,
    policy_from_config,
)
from stockade.safety.screen import Screen
from stockade.store import Blocklist, BlocklistItem, ContentFilter, Deployment, InUse, Store

log = logging.getLogger(__name__)


class ContentSafety:
    def __init__(self, store: Store, changed: Callable[[], Awaitable[None]], classifier: Classifier | None) -> None:
        self.store = store
        self.changed = changed  # re-reads the store, as after any management change
        self.classifier = classifier
        self._policies: dict[str, tuple[ContentFilter | None, Policy]] = {}
        self._blocklists: dict[str, Blocklist] = {}
        self._screens: dict[str, Screen] = {}
        # Presidio and its spaCy model (about 180 MB) load only once a policy turns PHI protection
        # or PII on completions on.
        self.phi_analyzer: PhiAnalyzer | None = None
        self._warming: asyncio.Task[None] | None = None
        self.load([], [])

    # -- the request path ------------------------------------------------------------------------

    def read(self) -> tuple[list[ContentFilter], list[Blocklist]]:
        return self.store.list_content_filters(), self.store.list_blocklists()

    def load(self, policies: Sequence[ContentFilter], blocklists: Sequence[Blocklist]) -> None:
        """Compile every policy now, so that no request compiles anything."""
        self._blocklists = {b.name: b for b in blocklists}
        loaded: dict[str, tuple[ContentFilter | None, Policy]] = {DEFAULT_POLICY: (None, DEFAULT)}
        for record in policies:
            loaded[record.name] = (record, policy_from_config(record.name, record.config))
        compiled = {
            name: compile_blocklist(name, tuple((i.kind, i.pattern) for i in b.items))
            for name, b in self._blocklists.items()
        }
        self._policies = loaded
        if self.phi_analyzer is None and any(_analyzes(p) for _, p in loaded.values()):
            self.phi_analyzer = PhiAnalyzer()
        self._screens = {
            name: Screen(
                policy,
                # A list deleted meanwhile cannot be: deleting one that a policy names is refused.
                [compiled[b] for b in policy.blocklists if b in compiled],
                profanity() if policy.profanity else None,
                self.classifier,
                phi=self._phi_guard(policy),
                pii=self._pii_screen(policy),
            )
            for name, (_, policy) in loaded.items()
        }

    def _phi_guard(self, policy: Policy) -> PhiGuard | None:
        if policy.phi.mode is PhiMode.OFF or self.phi_analyzer is None:
            return None
        return PhiGuard(policy, self.phi_analyzer)

    def _pii_screen(self, policy: Policy) -> PiiScreen | None:
        if policy.pii.mode is ShieldMode.OFF or self.phi_analyzer is None:
            return None
        return PiiScreen(policy.pii, self.phi_analyzer)

    def start_phi(self) -> None:
        """Load PHI protection's model in the background, if a policy uses it, so that the first
        call finds it loaded (that first analysis costs several times the next)."""
        if self.phi_analyzer is not None and self._warming is None:
            self._warming = asyncio.get_running_loop().create_task(self._warm(self.phi_analyzer))

    @staticmethod
    async def _warm(analyzer: PhiAnalyzer) -> None:
        try:
            await analyzer.warm()
        except Exception:  # each call under a policy that uses it fails closed, and says so
            log.exception("PHI protection's analyzer could not load")

    def screen(self, deployment: Deployment) -> Screen:
        name = deployment.content_filter or DEFAULT_POLICY
        screen = self._screens.get(name)
        if screen is None:  # fail closed: a deployment never goes unscreened for want of its policy
            raise ContentFilterFailed(name)
        return screen

    async def blocked_prompt(self, deployment: Deployment, text: str) -> dict[str, Any] | None:
        """The content filter results by which ``deployment``'s policy blocks ``text`` as a
        prompt, or None if it lets it through. For a text screened outside a call to the
        deployment (a support agent's customer message), so its decisions go to the metrics only."""
        screen = self.screen(deployment)
        verdict = await screen.check([text], Direction.PROMPT)
        count(deployment.name, screen.policy.name, verdict.decisions)
        return verdict.results if verdict.filtered else None

    def has_policy(self, name: str) -> bool:
        return name in self._policies

    # -- policies -------------------------------------------------------------------------------

    def policies(self) -> list[dict[str, Any]]:
        return [self._shown(name) for name in sorted(self._policies)]

    def policy(self, name: str) -> dict[str, Any]:
        if name not in self._policies:
            raise _no_policy(name)
        return self._shown(name)

    def _shown(self, name: str) -> dict[str, Any]:
        record, policy = self._policies[name]
        return {
            "name": name,
            "built_in": record is None,
            **policy.config(),
            "created_at": record.created_at if record else None,
            "updated_at": record.updated_at if record else None,
        }

    def _checked_blocklists(self, config: Mapping[str, Any]) -> None:
        unknown = [b for b in config.get("blocklists", ()) if b not in self._blocklists]
        if unknown:
            raise InvalidRequest(
                f"There is no blocklist {shown(unknown[0])!r}; create it first with "
                f"`stockade blocklists create {shown(unknown[0])}`, or leave it out.",
                param="blocklists",
            )

    async def create_policy(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        check_name(name, "content filter policy")
        if name == DEFAULT_POLICY:
            raise Conflict("The built-in default policy exists always; choose another name.", code="ContentFilterExists")
        await self.changed()
        self._checked_blocklists(config)
        now = time.time()
        record = ContentFilter(name, policy_from_config(name, config).config(), now, now)
        if not await asyncio.to_thread(self.store.put_content_filter, record, create=True):
            raise Conflict(
                f"A content filter policy named {name!r} exists already; change it with "
                f"`stockade content-filters update {name}`.",
                code="ContentFilterExists",
            )
        await self.changed()
        return self.policy(name)

    async def update_policy(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        if name == DEFAULT_POLICY:
            raise InvalidRequest(
                "The built-in default policy matches Azure's default and cannot be changed. Create "
                "a policy of your own (`stockade content-filters create NAME`) and give it to the "
                "deployment (`stockade deployments update NAME --content-filter POLICY`).",
                param="name",
            )
        await self.changed()
        self.policy(name)
        record, current = self._policies[name]
        assert record is not None, "only the default is built in"
        self._checked_blocklists(config)
        updated = ContentFilter(name, policy_from_config(name, config, current).config(), record.created_at, time.time())
        if not await asyncio.to_thread(self.store.put_content_filter, updated, create=False):
            raise _no_policy(name)  # deleted meanwhile
        await self.changed()
        return self.policy(name)

    async def delete_policy(self, name: str) -> None:
        if name == DEFAULT_POLICY:
            raise InvalidRequest("The built-in default policy cannot be deleted.", param="name")
        try:
            deleted = await asyncio.to_thread(self.store.delete_content_filter, name)
        except InUse as exc:
            raise Conflict(
                f"Policy {name!r} is the content filter of {', '.join(exc.users)}. Give those "
                "deployments another (`stockade deployments update NAME --content-filter "
                "default`) first.",
                code="ContentFilterInUse",
            ) from None
        if not deleted:
            raise _no_policy(name)
        await self.changed()

    # -- blocklists -----------------------------------------------------------------------------

    def blocklists(self) -> list[Blocklist]:
        return sorted(self._blocklists.values(), key=lambda b: b.name)

    def blocklist(self, name: str) -> Blocklist:
        blocklist = self._blocklists.get(name)
        if blocklist is None:
            raise _no_blocklist(name)
        return blocklist

    async def create_blocklist(self, name: str, description: str) -> Blocklist:
        check_name(name, "blocklist")
        if not await asyncio.to_thread(self.store.insert_blocklist, Blocklist(name, description, time.time())):
            raise Conflict(f"A blocklist named {name!r} exists already.", code="BlocklistExists")
        await self.changed()
        return self.blocklist(name)

    async def delete_blocklist(self, name: str) -> None:
        try:
            deleted = await asyncio.to_thread(self.store.delete_blocklist, name)
        except InUse as exc:
            raise Conflict(
                f"Blocklist {name!r} is used by the content filter policies {', '.join(exc.users)}. "
                "Take it out of them (`stockade content-filters update POLICY --blocklist ...`) first.",
                code="BlocklistInUse",
            ) from None
        if not deleted:
            raise _no_blocklist(name)
        await self.changed()

    async def add_item(self, name: str, kind: ItemKind, pattern: str) -> BlocklistItem:
        problem = check_item(kind, pattern)
        if problem is not None:
            raise InvalidRequest(f"{problem[0].upper()}{problem[1:]}; the item was not added.", param="pattern")
        item = BlocklistItem(uuid.uuid4().hex, kind.value, pattern, time.time())
        added = await asyncio.to_thread(self.store.insert_blocklist_item, name, item, MAX_ITEMS)
        if added is None:
            raise _no_blocklist(name)
        if added is False:
            raise InvalidRequest(
                f"Blocklist {name!r} has {MAX_ITEMS} items, as many as a list may have; remove some "
                "or start another list.",
                code="BlocklistFull",
            )
        await self.changed()
        return item

    async def remove_item(self, name: str, item_id: str) -> None:
        if not await asyncio.to_thread(self.store.delete_blocklist_item, name, item_id):
            raise NotFound(
                f"Blocklist {shown(name)!r} has no item {shown(item_id, 40)!r}; `stockade blocklists show "
                f"{shown(name)}` lists its items and their ids."
            )
        await self.changed()


def _analyzes(policy: Policy) -> bool:
    """Whether the policy needs PHI protection's analyzer."""
    return policy.phi.mode is not PhiMode.OFF or policy.pii.mode is not ShieldMode.OFF


def _no_policy(name: str) -> NotFound:
    return NotFound(
        f"There is no content filter policy {shown(name)!r}; `stockade content-filters list` shows "
        "those there are."
    )


def _no_blocklist(name: str) -> NotFound:
    return NotFound(f"There is no blocklist {shown(name)!r}; `stockade blocklists list` shows those there are.")
