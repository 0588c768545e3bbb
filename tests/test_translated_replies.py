"""A routine that replies in the customer's language: the routine's words as they are, and a
translation beside them that claims no more than they do. On a stand-in model, since what is
tested is the engine's handling of translations; the real model's run is in test_conversations."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from openai import AsyncOpenAI

from stockade.routines.deployment import Decision, DeploymentModel
from stockade.routines.engine import ANYTHING_ELSE, Engine, Event, State
from stockade.routines.functions import FunctionResult
from stockade.routines.parser import parse_routine
from stockade.routines.plan import MORE, Option, Plan
from stockade.routines.service import BUILTIN_DIRECTORY

PLAN = Plan.of(parse_routine((BUILTIN_DIRECTORY / "baa.md").read_text(), "baa"))
QUESTION = PLAN.routine.step("1a").text
SPANISH = "Hola, necesitamos un acuerdo de asociado comercial para nuestro hospital."
TRANSLATIONS = {  # as a faithful translator would put the agent's messages
    QUESTION: "¡Gracias por escribirnos! ¿Podría indicarnos si necesita un Business Associate "
              "Agreement (BAA) para usar nuestra API o para ChatGPT Enterprise?",
    ANYTHING_ELSE: "Por supuesto. ¿En qué más puedo ayudarle?",
}


class Translator:
    """Classifies every answer as "more"; translates as the test says, with the similarity it says."""

    def __init__(self, translate: Any = lambda text: TRANSLATIONS[text], similarity: float | None = 0.9) -> None:
        self._translate = translate
        self._similarity = similarity
        self.asked: list[str] = []

    async def classify(self, message: str, question: str, options: list[Option]) -> Decision:
        return Decision(MORE, 1.0, "embeddings")

    async def phrase(self, instruction: str) -> str:
        return instruction

    async def arguments(self, purpose: str, parameters: dict[str, Any], message: str) -> dict[str, Any]:
        return {}

    async def translate(self, text: str, language: str) -> str | None:
        self.asked.append(language)
        translation: str | None = self._translate(text)
        return translation

    async def similarity(self, text: str, other: str) -> float | None:
        return self._similarity


class NoFunctions:
    async def run(self, name: str, arguments: dict[str, Any], conversation: str, case: str) -> FunctionResult:
        return FunctionResult("done")

    async def hand_off(self, case: str, reason: str) -> None:
        pass


def turns(model: Translator, *messages: str, translating: bool = True) -> tuple[State, list[list[Event]]]:
    engine = Engine(PLAN, model, NoFunctions(), reply_in_customer_language=translating)  # type: ignore[arg-type]
    state = State(agenda=PLAN.agenda())

    async def run() -> list[list[Event]]:
        return [
            [event async for event in engine.turn(state, message, conversation="c", case="k")]
            for message in messages
        ]

    return state, asyncio.run(run())


def said(events: list[Event]) -> list[Event]:
    return [event for event in events if event.kind == "message"]


def test_a_spanish_customer_gets_the_routines_words_with_a_spanish_translation_beside_them() -> None:
    _, [events] = turns(Translator(), SPANISH)
    [question] = said(events)
    assert question.text == QUESTION
    assert question.translation is not None
    assert (question.translation.language, question.translation.text) == ("es", TRANSLATIONS[QUESTION])


def test_an_english_customer_gets_no_translation() -> None:
    model = Translator()
    _, [events] = turns(model, "Hi, we need a BAA for our hospital.")
    assert [event.translation for event in said(events)] == [None]
    assert model.asked == []


def test_replies_are_not_translated_unless_the_routine_asks_for_it() -> None:
    model = Translator()
    state, [events] = turns(model, SPANISH, translating=False)
    assert [event.translation for event in said(events)] == [None]
    assert (model.asked, state.language) == ([], None)


def test_an_answer_in_no_clear_language_keeps_the_conversations_language() -> None:
    state, [_, events] = turns(Translator(), SPANISH, "ok")
    assert state.language == "es"
    assert [event.translation.language for event in said(events) if event.translation] == ["es"]


def test_a_language_the_claim_check_cannot_read_is_not_translated_into() -> None:
    model = Translator()
    state, [events] = turns(model, "Buongiorno, abbiamo bisogno di un accordo per il nostro ospedale.")
    assert state.language == "it"
    assert [event.translation for event in said(events)] == [None]
    assert model.asked == []


def held_back(model: Translator) -> str:
    """Why the translation of the routine's first question was not sent; its words still were."""
    _, [events] = turns(model, SPANISH)
    [question] = said(events)
    assert (question.text, question.translation) == (QUESTION, None)
    return str(question.detail["translation_blocked"])


def test_a_translation_that_claims_an_action_its_message_does_not_is_held_back() -> None:
    claiming = TRANSLATIONS[QUESTION] + " Ya he enviado su solicitud de BAA para la API."
    assert held_back(Translator(lambda text: claiming)) == "claims"


def test_a_translation_in_another_language_than_the_customers_is_held_back() -> None:
    english = "BAA is an acronym for Business Associate Agreement, for the API or ChatGPT Enterprise."
    assert held_back(Translator(lambda text: english)) == "language"


def test_a_translation_that_drops_or_invents_a_name_or_number_is_held_back() -> None:
    without_the_acronym = TRANSLATIONS[QUESTION].replace("(BAA) ", "")
    assert held_back(Translator(lambda text: without_the_acronym)) == "kept"
    with_a_number = TRANSLATIONS[QUESTION].replace("¡Gracias", "¡Gracias, cliente 1234567890")
    assert held_back(Translator(lambda text: with_a_number)) == "kept"


def test_a_translation_whose_meaning_drifted_from_its_message_is_held_back() -> None:
    assert held_back(Translator(similarity=0.3)) == "meaning"


def test_an_empty_translation_is_held_back() -> None:
    assert held_back(Translator(lambda text: "")) == "unavailable"


def test_a_refused_translation_is_held_back_and_the_turn_goes_on() -> None:
    # Refused, as by a rate limit: the turn may already have run a function, so it must not fail.
    assert held_back(Translator(lambda text: None)) == "unavailable"
    assert held_back(Translator(similarity=None)) == "unavailable"


def test_the_trace_records_that_a_message_was_translated_but_not_the_translation() -> None:
    _, [events] = turns(Translator(), SPANISH)
    [question] = said(events)
    traced = question.to_dict(with_text=False)
    assert traced["translated"] == "es"
    assert "translation" not in traced and "text" not in traced
    assert question.to_dict()["translation"] == {"language": "es", "text": TRANSLATIONS[QUESTION]}


def test_the_deployment_model_answers_none_when_its_deployments_refuse() -> None:
    refusing = httpx.MockTransport(lambda request: httpx.Response(
        429, headers={"retry-after": "10"},
        json={"error": {"code": "429", "message": "Requests to this deployment are over its limit."}},
    ))
    client = AsyncOpenAI(api_key="k", base_url="http://stockade.test/openai/v1", max_retries=0,
                         http_client=httpx.AsyncClient(transport=refusing))
    model = DeploymentModel(client, "chat", "embeddings")

    async def both() -> tuple[str | None, float | None]:
        return await model.translate(QUESTION or "", "es"), await model.similarity("a", "b")

    assert asyncio.run(both()) == (None, None)
