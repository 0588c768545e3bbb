"""The engine: which step a conversation is on, and where each customer message takes it.

The engine, not the model, owns the position. A conversation's state is an agenda (the steps
still to run), the question whose answer is due, and the call waiting for the customer's yes.
Each turn classifies the message among the options the current question allows (plan.py), and
runs steps until the next question: quoted messages word for word, functions through their
registered implementations, and model-phrased text only where the routine quotes nothing, checked
so that it never claims an action that was not taken.

A routine may also reply in the customer's language (language.py): each message is then sent
as the routine says it, with a translation beside it that claims no more than it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from stockade.routines.claims import claims, unbacked_claims
from stockade.routines.deployment import AgentModel
from stockade.routines.functions import FunctionFailed, Functions
from stockade.routines.language import TRANSLATED, detect, unfaithful
from stockade.routines.model import Kind, Step
from stockade.routines.plan import (
    ABUSE,
    ANSWERED,
    DONE,
    HANDOFF,
    MORE,
    OFF_TOPIC,
    UNCLEAR,
    YES,
    Plan,
)

OPEN, RESOLVED, HANDED_OFF = "open", "resolved", "handed_off"
MAX_UNCLEAR = 3  # answers in a row the engine cannot place before a person takes over

NOT_UNDERSTOOD = "Sorry, I didn't quite catch that."
ANYTHING_ELSE = "Of course. What else can I help you with?"
HANDING_OFF = "I'm passing this conversation to a member of our support team, who will follow up with you."
ABUSE_REPLY = "I want to help, but I can't continue the conversation this way."
FAILED = "I'm sorry, I couldn't complete that just now."
DECLINED = "Understood, I won't do that."
NEUTRAL = "Let me help you with that."


@dataclass
class State:
    agenda: list[str]
    awaiting: str | None = None  # the question whose answer is due
    confirming: str | None = None  # the call waiting for the customer's yes
    started: bool = False
    unclear: int = 0
    status: str = OPEN
    branches_run: list[str] = field(default_factory=list)  # ids, in the order they were taken
    language: str | None = None  # the customer's, as last clearly detected (when replies are translated)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Translation:
    language: str  # ISO 639-1
    text: str


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a turn did. Only ``message`` events carry text, and the trace drops it."""

    kind: str  # message, step, decision, function, claim_blocked, status
    step: str | None = None
    text: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    translation: Translation | None = None  # of a message's text, into the customer's language

    def to_dict(self, *, with_text: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "step": self.step, **self.detail}
        if with_text and self.text is not None:
            data["text"] = self.text
        if self.translation is not None:
            data["translated"] = self.translation.language
            if with_text:
                data["translation"] = {"language": self.translation.language, "text": self.translation.text}
        return data


class ConversationClosed(Exception):
    pass


class Engine:
    def __init__(
        self, plan: Plan, model: AgentModel, functions: Functions, *, reply_in_customer_language: bool = False
    ) -> None:
        self.plan = plan
        self.routine = plan.routine
        self.model = model
        self.functions = functions
        self.reply_in_customer_language = reply_in_customer_language

    async def turn(
        self, state: State, message: str, *, conversation: str, case: str
    ) -> AsyncIterator[Event]:
        if state.status != OPEN:
            raise ConversationClosed(state.status)
        if self.reply_in_customer_language:
            # "ok" or "vale" says no language: the conversation keeps the one it had. Off the event
            # loop, as the checks of a translation below: lingua loads its models on first use.
            state.language = await asyncio.to_thread(detect, message) or state.language
        turn = _Turn(self, state, message, conversation, case)
        async for event in turn.run():
            if event.kind == "message" and event.text and state.language in TRANSLATED:
                event = await self._translated(event, state.language)
            yield event

    async def _translated(self, event: Event, language: str) -> Event:
        """``event`` with its text's translation, unless none could be had, or it is not faithful to
        the text or claims more than it does; the trace then records why it was held back."""
        assert event.text is not None
        translation = await self.model.translate(event.text, language) or ""
        similarity = await self.model.similarity(event.text, translation) if translation else None
        held_back = "unavailable" if similarity is None else (
            await asyncio.to_thread(unfaithful, event.text, translation, language, similarity)
            or ("claims" if len(claims(translation, language)) > len(claims(event.text)) else None)
        )
        if held_back is not None:
            return replace(event, detail={**event.detail, "translation_blocked": held_back})
        return replace(event, translation=Translation(language, translation))


class _Turn:
    """One customer message and everything the agent does in answer."""

    def __init__(self, engine: Engine, state: State, message: str, conversation: str, case: str) -> None:
        self.engine = engine
        self.plan = engine.plan
        self.routine = engine.routine
        self.state = state
        self.message = message
        self.conversation = conversation
        self.case = case
        self.called: set[str] = set()

    async def run(self) -> AsyncIterator[Event]:
        state = self.state
        if not state.started:
            # The customer's opening message starts the routine; its first step is always taken.
            state.started = True
        elif state.confirming is not None:
            async for event in self._confirmation():
                yield event
            return
        elif state.awaiting is not None:
            async for event in self._answer(state.awaiting):
                yield event
            return
        async for event in self._proceed():
            yield event

    # -- answers ----------------------------------------------------------------------------------

    async def _answer(self, ask_id: str) -> AsyncIterator[Event]:
        state = self.state
        ask = self.routine.step(ask_id)
        decision = await self.engine.model.classify(
            self.message, ask.text or ask.instruction, self.plan.options(ask_id, tuple(state.branches_run))
        )
        for each in decision.each():
            yield Event("decision", ask_id, detail=each.to_dict())
        kind, _, target = decision.option.partition(":")
        if decision.option != UNCLEAR:
            state.unclear = 0
        if kind == "branch":
            # An answer may take several independent branches: each runs, in the routine's order.
            # From the closing question a branch is an extra (the customer changed their mind or
            # needs both): its steps run and the question is asked again.
            taken = self.plan.in_order([each.option.partition(":")[2] for each in decision.each()])
            returns = [ask_id] if ask_id == self.plan.closing else []
            state.agenda = [s.id for b in taken for s in (b, *b.steps)] + returns + state.agenda
            state.branches_run += [b.id for b in taken if b.id not in state.branches_run]
        elif kind == "topic":
            topic = self.routine.step(target)
            yield Event("step", topic.id, detail={"step_kind": Kind.BRANCH.value, "as": "topic"})
            state.agenda = [s.id for s in topic.steps] + [ask_id] + state.agenda
        elif decision.option in (DONE, ANSWERED):
            pass
        elif decision.option == MORE:
            yield self._say(None, ANYTHING_ELSE)
            return  # still awaiting the same question
        elif decision.option == UNCLEAR:
            state.unclear += 1
            if state.unclear >= MAX_UNCLEAR:
                async for event in self._hand_off("unclear"):
                    yield event
                return
            yield self._say(None, NOT_UNDERSTOOD)
            state.agenda = [ask_id, *state.agenda]
        elif decision.option == OFF_TOPIC:
            yield self._say(None, (
                f"I'm sorry, I can only help with {self.routine.title[0].lower()}"
                f"{self.routine.title[1:]} in this conversation. For anything else, our support "
                "team will be glad to help."
            ))
            state.agenda = [ask_id, *state.agenda]
        elif decision.option in (HANDOFF, ABUSE):
            if decision.option == ABUSE:
                yield self._say(None, ABUSE_REPLY)
            async for event in self._hand_off(decision.option):
                yield event
            return
        state.awaiting = None
        async for event in self._proceed():
            yield event

    async def _confirmation(self) -> AsyncIterator[Event]:
        state = self.state
        call_id = state.confirming
        assert call_id is not None
        decision = await self.engine.model.classify(
            self.message, "Shall I proceed?", self.plan.confirmation_options()
        )
        yield Event("decision", call_id, detail={**decision.to_dict(), "confirmation": True})
        state.confirming = None
        if decision.option in (HANDOFF, ABUSE):
            async for event in self._hand_off(decision.option):
                yield event
            return
        if decision.option == YES:
            async for event in self._call(self.routine.step(call_id), confirmed=True):
                yield event
        else:
            yield self._say(None, DECLINED)
        if state.status == OPEN and state.confirming is None:
            async for event in self._proceed():
                yield event

    # -- running steps ----------------------------------------------------------------------------

    async def _proceed(self) -> AsyncIterator[Event]:
        """Run steps until one waits for the customer or the case is closed."""
        state = self.state
        while state.agenda and state.status == OPEN:
            step = self.routine.step(state.agenda.pop(0))
            yield Event("step", step.id, detail={"step_kind": step.kind.value})
            if step.kind is Kind.SAY:
                yield await self._deliver(step)
            elif step.kind is Kind.ASK:
                yield await self._deliver(step)
                state.awaiting = step.id
                return
            elif step.kind in (Kind.CALL, Kind.RESOLVE):
                async for event in self._call(step, confirmed=False):
                    yield event
                if state.confirming is not None:
                    return
                if step.kind is Kind.RESOLVE and state.status == OPEN:
                    state.status = RESOLVED
                    yield Event("status", step.id, detail={"status": RESOLVED})

    async def _deliver(self, step: Step) -> Event:
        if step.text is not None:
            return self._say(step.id, step.text, source="routine")
        phrased = await self.engine.model.phrase(step.instruction)
        unbacked = unbacked_claims(phrased, self.routine.functions.values(), self.called)
        if unbacked or not phrased:
            # Said instead of the model's text: the routine's own words are safe to repeat only
            # when they are addressed to the customer, so a neutral line stands in.
            return Event("message", step.id, NEUTRAL, {"source": "engine", "claim_blocked": len(unbacked)})
        return self._say(step.id, phrased, source="model")

    def _say(self, step_id: str | None, text: str, *, source: str = "engine") -> Event:
        return Event("message", step_id, text, {"source": source})

    async def _call(self, step: Step, *, confirmed: bool) -> AsyncIterator[Event]:
        assert step.function is not None
        function = self.routine.functions.get(step.function)
        if function is None:
            async for event in self._hand_off("undefined_function"):
                yield event
            return
        if function.confirm and not confirmed:
            self.state.confirming = step.id
            yield self._say(step.id, f"Before I go ahead, please confirm: {function.purpose}. Shall I proceed?")
            return
        arguments: dict[str, Any] = {}
        if function.parameters.get("properties"):
            arguments = await self.engine.model.arguments(function.purpose, function.parameters, self.message)
        try:
            result = await self.engine.functions.run(function.name, arguments, self.conversation, self.case)
        except FunctionFailed as exc:
            yield Event("function", step.id, detail={
                "function": function.name, "arguments": arguments, "ok": False, "error": str(exc),
            })
            yield self._say(None, FAILED)
            async for event in self._hand_off("function_failed"):
                yield event
            return
        self.called.add(function.name)
        yield Event("function", step.id, detail={
            "function": function.name, "arguments": arguments, "ok": True, "result": result.data,
        })
        yield self._say(step.id, result.message, source="function")

    async def _hand_off(self, reason: str) -> AsyncIterator[Event]:
        yield self._say(None, HANDING_OFF)
        self.state.status = HANDED_OFF
        self.state.awaiting = None
        await self.engine.functions.hand_off(self.case, reason)
        yield Event("status", None, detail={"status": HANDED_OFF, "reason": reason})
