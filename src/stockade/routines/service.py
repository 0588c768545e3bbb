"""Conversations: the routines' core, shared by the REST API, the web page and ``stockade chat``.

It knows nothing of HTTP. Models are reached through an ``openai`` client on Stockade's own API
(connected by the web layer), so any deployment can drive an agent and its calls are metered,
limited and authorised like anyone else's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI, BadRequestError, OpenAIError, RateLimitError

from stockade.config import Settings
from stockade.errors import (
    BackendUnavailable,
    BudgetExceeded,
    Conflict,
    ContentFiltered,
    InvalidRequest,
    NotFound,
    TooManyRequests,
    retry_after_ms,
)
from stockade.routines.checker import Finding, Severity, check, has_errors
from stockade.routines.deployment import DeploymentModel
from stockade.routines.engine import OPEN, ConversationClosed, Engine, Event, State
from stockade.routines.functions import Functions
from stockade.routines.model import Routine
from stockade.routines.parser import RoutineSyntaxError, examples_path, load_routine
from stockade.routines.plan import Plan
from stockade.store import Case, Conversation, Store, TraceEvent

BUILTIN_DIRECTORY = Path(__file__).parent / "builtin"
ARTICLE_SUFFIX = "-article"
MAX_MESSAGE_CHARS = 4000
TURN_SHUTDOWN_SECONDS = 30.0
# The content filter results by which chat deployment NAME's policy blocks TEXT, or None.
Screening = Callable[[str, str], Awaitable[dict[str, Any] | None]]

log = logging.getLogger(__name__)

# (routine, chat, embeddings) → the deployments its conversation uses, each defaulted and checked.
DefaultDeployments = Callable[[str, str | None, str | None], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Offered:
    routine: Routine | None
    findings: list[Finding]
    path: Path


class Catalogue:
    """The routines conversations may follow: the built-in ones and the operator's directory.

    Files are parsed and checked once per version on disk; later reads cost a directory listing
    and a stat per file, so an edited routine is picked up without a restart.
    """

    def __init__(self, directory: Path | None) -> None:
        self.directories = [BUILTIN_DIRECTORY, *([directory] if directory else [])]
        # A routine's file → the (mtime, size) of it and of its examples file, and what was read.
        self._read: dict[Path, tuple[tuple[tuple[int, int] | None, ...], Offered]] = {}

    def scan(self) -> dict[str, Offered]:
        offered: dict[str, Offered] = {}
        for directory in self.directories:
            for path in sorted(directory.glob("*.md")) if directory.is_dir() else []:
                if not path.stem.endswith(ARTICLE_SUFFIX):
                    found = self._load(path)
                    offered[found.routine.name if found.routine else path.stem] = found
        return offered

    def _load(self, path: Path) -> Offered:
        version = tuple(
            (stat.st_mtime_ns, stat.st_size) if (stat := _stat(file)) else None
            for file in (path, examples_path(path))
        )
        cached = self._read.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            routine = load_routine(path)
            found = Offered(routine, check(routine), path)
        except RoutineSyntaxError as exc:
            found = Offered(None, [Finding(Severity.ERROR, None, str(exc))], path)
        self._read[path] = (version, found)
        return found

    def get(self, name: str) -> Routine:
        found = self.scan().get(name)
        if found is None:
            raise NotFound(f"There is no routine named {name!r}; `stockade routines list` shows them.")
        if found.routine is None or has_errors(found.findings):
            raise InvalidRequest(
                f"The routine {name!r} does not pass its checks; run `stockade routines check "
                f"{found.path}` to see why.",
                param="routine",
            )
        return found.routine


class Conversations:
    def __init__(self, settings: Settings, store: Store, defaults: DefaultDeployments) -> None:
        self.settings = settings
        self.store = store
        self.defaults = defaults
        self.catalogue = Catalogue(settings.routines.directory or settings.data_dir / "routines")
        self.functions = Functions(settings, store)
        self._client: AsyncOpenAI | None = None
        self._screening: Screening | None = None
        self._models: dict[tuple[str, str, bool], DeploymentModel] = {}
        self._plans: dict[tuple[str, str], Plan] = {}  # by routine name and version
        self._turns: dict[str, asyncio.Task[None]] = {}  # by conversation, under way in this process

    def connect(self, client: AsyncOpenAI, screening: Screening | None = None) -> None:
        """The client agents reach models through: this service's own API; and, when the chat
        deployments are this service's, how a customer message is screened by their policies."""
        self._client = client
        self._screening = screening

    async def close(self) -> None:
        if self._turns:  # turns whose callers left still finish and are stored
            await asyncio.wait(self._turns.values(), timeout=TURN_SHUTDOWN_SECONDS)
        await self.functions.close()
        if self._client is not None:
            await self._client.close()

    def _plan(self, routine: Routine) -> Plan:
        key = (routine.name, routine.version)
        if key not in self._plans:
            self._plans[key] = Plan.of(routine)
        return self._plans[key]

    def _model(self, routine: str, chat: str, embeddings: str) -> DeploymentModel:
        if self._client is None:
            raise BackendUnavailable("routines are not connected to a model API")
        key = (chat, embeddings, routine in self.settings.routines.model_tie_breaks)
        if key not in self._models:  # kept: it caches the embeddings of the options' examples
            self._models[key] = DeploymentModel(self._client, chat, embeddings, model_tie_breaks=key[2])
        return self._models[key]

    # -- conversations ----------------------------------------------------------------------------

    async def create(
        self,
        routine_name: str,
        principal: str,
        deployment: str | None = None,
        embeddings_deployment: str | None = None,
        *,
        evaluation: bool = False,
    ) -> Conversation:
        routine = await asyncio.to_thread(self.catalogue.get, routine_name)
        chat, embeddings = self.defaults(routine.name, deployment, embeddings_deployment)
        now = time.time()
        conversation = Conversation(
            id=uuid.uuid4().hex,
            routine=routine.name,
            routine_version=routine.version,
            deployment=chat,
            embeddings_deployment=embeddings,
            case_id=uuid.uuid4().hex[:12],
            principal=principal,
            state=State(agenda=self._plan(routine).agenda()).to_dict(),
            turn=0,
            status=OPEN,
            created_at=now,
            updated_at=now,
        )
        case = Case(conversation.case_id, conversation.id, routine.name, "open", now, evaluation=evaluation)
        await asyncio.to_thread(self.store.insert_conversation, conversation, case)
        return conversation

    async def get(self, conversation_id: str) -> Conversation:
        conversation = await asyncio.to_thread(self.store.get_conversation, conversation_id)
        if conversation is None:
            raise NotFound(f"There is no conversation {conversation_id!r}.")
        return conversation

    async def post(self, conversation_id: str, message: str) -> AsyncIterator[Event]:
        """Run one turn; its events arrive as they happen, and the turn is stored at its end.

        The turn runs as a task of its own, so a caller that goes away mid-turn (a closed tab, a
        dropped connection) does not cut it short: functions that ran are recorded and the
        conversation moves on, rather than a write running again when the message is resent.
        """
        if not message.strip():
            raise InvalidRequest("The message is empty.", param="content")
        if len(message) > MAX_MESSAGE_CHARS:
            raise InvalidRequest(
                f"The message is longer than {MAX_MESSAGE_CHARS} characters.", param="content"
            )
        # A second message while a turn runs is refused, not queued: the customer sees the reply
        # to the first before writing again. Across replicas, save_turn's turn number decides.
        if conversation_id in self._turns:
            raise Conflict("This conversation is still answering the previous message.")
        events: asyncio.Queue[Event | None] = asyncio.Queue()
        turn = asyncio.create_task(self._turn(conversation_id, message, events.put_nowait))
        self._turns[conversation_id] = turn
        turn.add_done_callback(lambda _: self._turns.pop(conversation_id, None))
        try:
            while (event := await events.get()) is not None:
                yield event
        except BaseException:  # the caller went away (GeneratorExit, CancelledError)
            turn.add_done_callback(_log_failure)
            raise
        await turn  # its error, if the turn failed

    async def _turn(
        self, conversation_id: str, message: str, emit: Callable[[Event | None], None]
    ) -> None:
        try:
            conversation = await self.get(conversation_id)
            routine = await asyncio.to_thread(self.catalogue.get, conversation.routine)
            if routine.version != conversation.routine_version:
                raise Conflict(
                    f"The routine {routine.name!r} has changed since this conversation began; "
                    "start a new conversation."
                )
            engine = Engine(
                self._plan(routine),
                self._model(routine.name, conversation.deployment, conversation.embeddings_deployment),
                self.functions,
                reply_in_customer_language=routine.name in self.settings.routines.reply_in_customer_language,
            )
            state = State.from_dict(conversation.state)
            # Every customer message is screened by the chat deployment's policy, whether or not
            # the agent sends it there: most are classified by the embeddings deployment alone.
            if state.status == OPEN and self._screening is not None:
                results = await self._screening(conversation.deployment, message)
                if results is not None:
                    raise ContentFiltered.customer_message(results, conversation.deployment)
            events: list[Event] = []
            try:
                async for event in engine.turn(
                    state, message, conversation=conversation.id, case=conversation.case_id
                ):
                    events.append(event)
                    emit(event)
            except ConversationClosed:
                raise Conflict(
                    f"This conversation is closed ({conversation.status}); start a new one."
                ) from None
            except RateLimitError as exc:
                if exc.code == BudgetExceeded.code:  # a hard budget: no retry passes it this period
                    said = exc.body.get("message") if isinstance(exc.body, dict) else None
                    raise BudgetExceeded(
                        f"The agent's model deployment is over budget. {said or exc.message}",
                        retry_after_ms(exc.response.headers),
                    ) from None
                raise TooManyRequests(
                    f"The agent's model deployments are over their rate limits: {exc.message}",
                    retry_after_ms(exc.response.headers),
                ) from None
            except BadRequestError as exc:
                if exc.code != "content_filter":
                    raise _unreachable(exc, conversation) from None
                raise ContentFiltered.customer_message(_filter_results(exc.body), conversation.deployment) from None
            except OpenAIError as exc:
                raise _unreachable(exc, conversation) from None
            await asyncio.to_thread(self._save, conversation, state, message, events)
        finally:
            emit(None)

    def _save(self, conversation: Conversation, state: State, message: str, events: list[Event]) -> None:
        now = time.time()
        turn = conversation.turn + 1
        trace = [TraceEvent(now, turn, "customer", None, {"chars": len(message)})]
        trace += [
            TraceEvent(now, turn, event.kind, event.step, event.to_dict(with_text=False))
            for event in events
        ]
        messages: list[tuple[str, str]] = []
        if self.settings.routines.keep_messages:
            messages = [("customer", message)]
            for event in events:
                if event.text is not None:
                    messages.append(("agent", event.text))
                if event.translation is not None:  # what the customer read beside it
                    messages.append(("translation", event.translation.text))
        if not self.store.save_turn(conversation, state.to_dict(), state.status, trace, messages):
            raise Conflict("Another turn of this conversation was stored first; send the message again.")

    async def trace(self, conversation: Conversation) -> list[TraceEvent]:
        """The trace as of the turn ``conversation`` was read at."""
        return await asyncio.to_thread(self.store.trace, conversation.id, conversation.turn)

    async def messages(self, conversation: Conversation) -> list[tuple[str, str]]:
        """The messages as of the turn ``conversation`` was read at (kept only with keep_messages)."""
        return await asyncio.to_thread(
            self.store.conversation_messages, conversation.id, conversation.turn
        )

    # -- cases ------------------------------------------------------------------------------------

    async def cases(
        self, limit: int = 50, status: str | None = None, *, include_evaluations: bool = False
    ) -> list[Case]:
        return await asyncio.to_thread(
            self.store.list_cases, limit, status, include_evaluations=include_evaluations
        )

    async def case(self, case_id: str) -> Case:
        case = await asyncio.to_thread(self.store.get_case, case_id)
        if case is None:
            raise NotFound(f"There is no case {case_id!r}.")
        return case


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _log_failure(turn: asyncio.Task[None]) -> None:
    """A turn whose caller left has no one to tell of its failure but the log."""
    if not turn.cancelled() and turn.exception() is not None:
        log.warning("a conversation turn failed after its caller left: %s", turn.exception())


def _unreachable(exc: OpenAIError, conversation: Conversation) -> BackendUnavailable:
    return BackendUnavailable(
        f"The agent could not reach its model: {exc}. Check that the deployments "
        f"{conversation.deployment!r} and {conversation.embeddings_deployment!r} exist."
    )


def _filter_results(body: object) -> dict[str, Any]:
    """The content filter results of the agent's refused call, as its 400 carried them."""
    inner = body.get("innererror") if isinstance(body, dict) else None
    results = inner.get("content_filter_result") if isinstance(inner, dict) else None
    return results if isinstance(results, dict) else {}
