"""Deciding which of the allowed ways forward a customer's message takes.

Through Stockade's own API with the openai SDK. Embeddings first: the message is compared with
example phrasings of every option, and a clear winner is taken. A near-tie goes to the nearest
option, or, for routines that ask for it, to the chat deployment, which chooses among the closest
options with constrained output (a JSON Schema enum), so even a small model answers with a valid
option.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from openai import AsyncOpenAI, OpenAIError

from stockade.backends.local import MULTILINGUAL
from stockade.routines.contrast import (
    adds,
    asks,
    denied_clauses,
    depends_on_language,
    joined_parts,
    negated,
    polarity,
    says_nothing,
    statements,
    withdrawals,
    withdraws,
)
from stockade.routines.language import MARKED, TRANSLATED, detect
from stockade.routines.plan import BRANCH, BRANCHES, OFF_TOPIC, TOPIC, UNCLEAR, Option

# The embeddings model the thresholds below suit, and the one conversations use unless told
# otherwise: multilingual, so that an answer is placed whatever language it is written in.
CLASSIFIER_MODEL = MULTILINGUAL

# Cosine similarities of sentence embeddings (Universal Sentence Encoder Multilingual; first set
# for all-MiniLM-L6-v2, whose scores fall in the same range). The nearest option is taken
# outright when it is near (ACCEPT) and ahead (MARGIN), or less near but far ahead (WIDE_MARGIN
# above CLOSE); below FLOOR nothing the routine allows is near (docs/routines.md).
ACCEPT = 0.55
MARGIN = 0.08
CLOSE = 0.35
WIDE_MARGIN = 0.10
FLOOR = 0.25
SHORTLIST = 3
EXAMPLES_SHOWN = 2  # per option, to show a small model what each option sounds like
MAX_JSON_TOKENS = 200
MAX_PHRASE_TOKENS = 60
# Each costs an embeddings call in the turn, so a long message with many of them is bounded.
CORRECTIONS_TRIED = 3  # withdrawing words, the last first
SENTENCES_SEPARATED = 12  # a longer message is not taken apart sentence by sentence
TRANSLATIONS_KEPT = 512  # the agent's messages recur across conversations; a customer's never pass here


@dataclass(frozen=True, slots=True)
class Decision:
    option: str
    confidence: float
    # "embeddings" (clearly nearest), "polarity" (a yes/no reply's words), or for a near-tie
    # "nearest" or "model" (the chat deployment's choice)
    stage: str
    ruled_out: tuple[str, ...] = ()  # branches the customer said it was not, or withdrew
    also: tuple[Decision, ...] = ()  # further independent branches the same answer takes

    def to_dict(self) -> dict[str, Any]:
        decided = {"option": self.option, "confidence": round(self.confidence, 3), "stage": self.stage}
        return {**decided, "ruled_out": list(self.ruled_out)} if self.ruled_out else decided

    def each(self) -> list[Decision]:
        return [self, *self.also]


Scored = list[tuple[float, Option]]  # best first


def _joint(part_scores: list[Scored], options: list[Option], ruled_out: tuple[str, ...]) -> tuple[float, Option] | None:
    """The "all of them" option when the parts of a joining message each clearly name a different
    one of its branches ("for the API and for ChatGPT Enterprise"), or one part clearly says all
    of them ("Both, honestly: …"). Only branches the plan found independent have such an option,
    so mutually exclusive ones are never taken together."""
    named: dict[str, float] = {}
    for scored in part_scores:
        # "All of them" is taken from a part only when it is near as well as ahead: "It's all
        # server-side" is ahead of the rest for it, but says nothing of the branches.
        said = _clear_winner(scored, near_only=True)
        if said and said[1].id.startswith(BRANCHES) and not _takes_any(said[1], ruled_out):
            return said
        # A part names its own branch though "all of them" is as near: "both api" holds the
        # words of both, and "all of them" takes in the API.
        clear = _clear_winner([pair for pair in scored if not pair[1].id.startswith(BRANCHES)])
        if clear and clear[1].id.startswith(BRANCH) and clear[1].id not in ruled_out:
            branch = clear[1].id.removeprefix(BRANCH)
            named[branch] = max(clear[0], named.get(branch, 0.0))
    return _all_of(named, options) if len(named) >= 2 else None


def _ballot(
    said: list[str], placed: list[Scored], options: list[Option], language: str | None, ruled_out: tuple[str, ...]
) -> tuple[float, Option] | None:
    """What a message's statements (``said``, placed in ``placed``) choose together, when each
    choice is clear in its own statement: "Our app calls the API. The front desk is on
    Enterprise. We need both." takes both branches, though no sentence joins them.

    A correction between two different choices withdraws those before it ("The API. No, sorry,
    wrong one: it's Enterprise"); one after the last choice leaves none standing. Of the choices
    that stand, a statement that clearly says all of them takes all; so do two branches and a
    word that adds to a choice before it ("Enterprise seats as well", "we need the two"); one
    branch alone is taken. A statement that denies a branch the message rules out is passed over
    ("Nobody here uses Enterprise"); any other negated statement, or one that clearly chooses
    anything else (a person, a topic), leaves the message to be decided whole, as does a story
    that names two branches in turn and neither joins nor corrects."""
    choices: list[tuple[float, Option]] = []
    standing_from, correcting, adding = 0, False, False
    for text, scored in zip(said, placed, strict=True):
        denies = negated(text, language)
        # Looked for once, and only where it matters: the markers' misspelling check is the
        # costliest text work of a turn.
        withdrawing = (bool(choices) or denies) and withdraws(text)
        correcting = correcting or (bool(choices) and withdrawing)
        winner = _clear_winner(scored)
        if winner is not None and _takes_any(winner[1], ruled_out):
            continue  # a denial the message as a whole has taken into account
        if denies and not (winner is None and withdrawing):  # "No, sorry, wrong one" corrects
            return None
        if winner is not None and winner[1].id.startswith(BRANCHES):
            winner = _clear_winner(scored, near_only=True)  # as in _joint: "It's all server-side"
        elif winner is not None and winner[1].id in (UNCLEAR, OFF_TOPIC):
            winner = None  # says nothing of the branches
        elif winner is not None and not winner[1].id.startswith(BRANCH):
            return None  # a person, a topic
        if winner is not None:
            if correcting and winner[1].id != choices[-1][1].id and not adds(text):
                standing_from = len(choices)
            correcting = False
            choices.append(winner)
        adding = adding or (bool(choices) and adds(text))  # "…too early" before any choice adds nothing
    # A correction after the last choice takes it back without saying what stands instead.
    standing = [] if correcting else choices[standing_from:]
    if all_of := next((choice for choice in standing if choice[1].id.startswith(BRANCHES)), None):
        return all_of
    named = {option.id.removeprefix(BRANCH): score for score, option in standing}
    if len(named) == 1:
        return max(standing, key=lambda choice: choice[0])
    return _all_of(named, options) if len(named) >= 2 and adding else None


def _all_of(named: dict[str, float], options: list[Option]) -> tuple[float, Option] | None:
    """The "all of them" option that takes in the ``named`` branches (step id to the score it was
    named with), if the plan found them independent."""
    for option in options:
        if option.id.startswith(BRANCHES) and set(named) <= set(option.id.removeprefix(BRANCHES).split("+")):
            return min(named.values()), option
    return None


def _takes_any(option: Option, branches: tuple[str, ...]) -> bool:
    """Whether ``option`` would take one of ``branches`` (option ids), alone or with others."""
    if option.id.startswith(BRANCHES):
        return any(f"{BRANCH}{each}" in branches for each in option.id.removeprefix(BRANCHES).split("+"))
    return option.id in branches


def _expanded(option: Option, confidence: float, ruled_out: tuple[str, ...]) -> Decision:
    """The embeddings stage's decision for ``option``: for "all of them", one per branch."""
    if not option.id.startswith(BRANCHES):
        return Decision(option.id, confidence, "embeddings", ruled_out)
    first, *rest = (f"{BRANCH}{branch}" for branch in option.id.removeprefix(BRANCHES).split("+"))
    return Decision(first, confidence, "embeddings", ruled_out,
                    also=tuple(Decision(branch, confidence, "embeddings") for branch in rest))


def _clear_winner(scored: Scored, *, near_only: bool = False) -> tuple[float, Option] | None:
    """The nearest option when it is near and ahead enough to take outright; with ``near_only``,
    only when it is near (ACCEPT), not when it is merely far ahead."""
    (best, winner), (second, _) = scored[0], scored[1]
    lead = best - second
    if (best >= ACCEPT and lead >= MARGIN) or (not near_only and best >= CLOSE and lead >= WIDE_MARGIN):
        return best, winner
    return None


def _about_something_else(message: str, nearest: Option, score: float) -> bool:
    """Whether a near-tie's nearest option, not being near, only seems to be what the message is
    about. A question that is nearest a branch asks about something else: a product word brings
    it nearer ("Is there an API outage?"). So does any message nearest a topic: a topic's
    examples are questions, and any question lies somewhat near them. (A request for a person is
    often a question too, and is left to the nearest option.)"""
    if score >= CLOSE:
        return False
    return nearest.id.startswith(TOPIC) or (asks(message) and nearest.id.startswith(BRANCH))


def _nothing_is_no(decision: Decision, message: str, options: list[Option]) -> Decision:
    """The no of a yes/no question for a reply that says there is nothing, though the embeddings
    place it nearest the yes: "nada más", "nichts mehr" and "rien de plus" say "more" too."""
    chosen = next((option for option in options if option.id == decision.option), None)
    no = next((option for option in options if option.polarity == "no"), None)
    if chosen is None or chosen.polarity != "yes" or no is None or not says_nothing(message):
        return decision
    return Decision(no.id, decision.confidence, "polarity", decision.ruled_out)


class AgentModel(Protocol):
    """What the engine asks of a model; the rest of a conversation is the routine's."""

    async def classify(self, message: str, question: str, options: list[Option]) -> Decision: ...

    async def phrase(self, instruction: str) -> str: ...

    async def arguments(self, purpose: str, parameters: dict[str, Any], message: str) -> dict[str, Any]: ...

    # A translation is optional: these answer None, rather than fail the turn, when the deployments
    # refuse (a rate limit, a budget, an error), since the turn may already have run a function.
    async def translate(self, text: str, language: str) -> str | None: ...  # language: ISO 639-1

    async def similarity(self, text: str, other: str) -> float | None: ...


def _unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm else array


class DeploymentModel:
    def __init__(
        self, client: AsyncOpenAI, chat_deployment: str, embeddings_deployment: str, *, model_tie_breaks: bool = False
    ) -> None:
        self.client = client
        self.chat_deployment = chat_deployment
        self.embeddings_deployment = embeddings_deployment
        # Who settles a near-tie: the nearest option, or the chat deployment. The bundled 135M
        # model chose worse than the nearest option on every held-out set (docs/routines.md); a
        # larger one may not.
        self.model_tie_breaks = model_tie_breaks
        self._vectors: dict[str, np.ndarray] = {}  # unit vectors of examples, never of a message
        self._translations: dict[tuple[str, str], str] = {}  # of the agent's messages, in memory only

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        response = await self.client.embeddings.create(model=self.embeddings_deployment, input=texts)
        return [item.embedding for item in sorted(response.data, key=lambda item: item.index)]

    async def scores(self, texts: list[str], options: list[Option]) -> list[Scored]:
        """Each text's options by similarity; one embeddings call for the texts and any examples
        not embedded before."""
        missing = sorted({e for option in options for e in option.examples} - self._vectors.keys())
        inputs = [text.strip() or "(nothing)" for text in texts]
        vectors = [_unit(vector) for vector in await self._embed([*inputs, *missing])]
        self._vectors.update(zip(missing, vectors[len(texts):], strict=True))
        return [
            sorted(
                ((float(max(np.dot(vector, self._vectors[e]) for e in option.examples)), option)
                 for option in options),
                key=lambda pair: pair[0],
                reverse=True,
            )
            for vector in vectors[: len(texts)]
        ]

    async def classify(self, message: str, question: str, options: list[Option]) -> Decision:
        # Off the event loop: lingua loads a language's models when it first needs them.
        language = await asyncio.to_thread(detect, message, MARKED) if depends_on_language(message) else None
        # A message that takes back what it first said is decided by what it says after the
        # correction, when that clearly makes a choice of its own; otherwise the message is
        # classified whole. (After "Sorry about that", "about that" may be near anything, but
        # chooses nothing: an earlier marker may be the correction.)
        for withdrawn, standing in withdrawals(message)[:CORRECTIONS_TRIED]:
            clear, _, _ = await self._embedded(standing, options, language, withdrawn)
            if clear is not None and clear.option.startswith(BRANCH):
                return clear
        clear, scored, ruled_out = await self._embedded(message, options, language)
        if clear is None or clear.option == UNCLEAR:
            clear = await self._statement_by_statement(message, options, language, ruled_out) or clear
        if clear is not None:
            return _nothing_is_no(clear, message, options)
        return await self._undecided(message, question, options, scored, ruled_out)

    async def _statement_by_statement(
        self, message: str, options: list[Option], language: str | None, ruled_out: tuple[str, ...]
    ) -> Decision | None:
        """The choice of a message that is not clear as a whole, from its statements (sentences,
        and the parts a colon or dash sets apart) each placed on its own: by their ballot, else by
        the message without those that clearly say nothing. In "Alright, I see. Enterprise.", the
        acknowledgement is nearest "unclear" and keeps the answer after it from being clear."""
        said = statements(message)
        if not 2 <= len(said) <= SENTENCES_SEPARATED:
            return None
        placed = await self.scores(said, [option for option in options if option.examples])
        chosen = _ballot(said, placed, options, language, ruled_out)
        if chosen is not None:
            return _expanded(chosen[1], chosen[0], ruled_out)
        kept = [each for each, scored in zip(said, placed, strict=True)
                if not ((winner := _clear_winner(scored)) and winner[1].id == UNCLEAR)]
        if not kept or len(kept) == len(said):
            return None
        decision, _, _ = await self._embedded(". ".join(kept), options, language)
        return decision

    async def _embedded(
        self, message: str, options: list[Option], language: str | None, withdrawn: str | None = None
    ) -> tuple[Decision | None, Scored, tuple[str, ...]]:
        """The option the embeddings clearly place ``message`` (in ``language``, if known) in, if
        any; and the options by score without the branches it denies or withdraws, which are
        returned too."""
        denied = [*denied_clauses(message, language), *([withdrawn] if withdrawn else [])]
        parts = joined_parts(message, language)
        scored, *others = await self.scores(
            [message, *denied, *parts], [option for option in options if option.examples]
        )
        denied_scores, part_scores = others[:len(denied)], others[len(denied):]
        named = _clear_winner(scored)
        ruled_out = tuple(sorted({
            clear[1].id for clause in denied_scores
            if (clear := _clear_winner(clause)) and clear[1].id.startswith(BRANCH)
            and (named is None or named[1].id != clear[1].id)  # said again after being taken back
        }))
        scored = [(score, option) for score, option in scored if not _takes_any(option, ruled_out)]
        chosen = _joint(part_scores, options, ruled_out) or _clear_winner(scored)
        decision = _expanded(chosen[1], chosen[0], ruled_out) if chosen is not None else None
        return decision, scored, ruled_out

    async def _undecided(
        self, message: str, question: str, options: list[Option], scored: Scored, ruled_out: tuple[str, ...]
    ) -> Decision:
        """The decision for a message no option is clearly ahead for."""
        best = scored[0][0]
        # An option without examples is the default: any answer that is not clearly another one.
        default = next((option for option in options if not option.examples), None)
        if default is not None:
            return Decision(default.id, 1 - best, "embeddings", ruled_out)
        if best < FLOOR and any(option.id == OFF_TOPIC for option in options):
            return Decision(OFF_TOPIC, 1 - best, "embeddings", ruled_out)
        # A near-tie between the yes and the no of a yes/no question ("anything else?", "shall I
        # proceed?") is settled by a reply whose words give its answer: "No, con eso me basta".
        answer = polarity(message)
        if answer is not None and {option.polarity for _, option in scored[:2]} == {"yes", "no"}:
            score, option = next(pair for pair in scored[:2] if pair[1].polarity == answer)
            return Decision(option.id, score, "polarity", ruled_out)
        # Two branches (and their calls) are taken only on clear evidence, never on a guess.
        candidates = [(score, option) for score, option in scored if not option.id.startswith(BRANCHES)]
        score, nearest = candidates[0]
        if _about_something_else(message, nearest, score) and any(option.id == OFF_TOPIC for option in options):
            return Decision(OFF_TOPIC, 1 - score, "embeddings", ruled_out)
        if not self.model_tie_breaks:
            return Decision(nearest.id, score, "nearest", ruled_out)
        choice = await self._choose(message, question, [option for _, option in candidates[:SHORTLIST]])
        confidence = next(score for score, option in scored if option.id == choice)
        return Decision(choice, confidence, "model", ruled_out)

    async def _json(self, instructions: str, message: str, schema: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.chat.completions.create(
            model=self.chat_deployment,
            messages=[{"role": "system", "content": instructions}, {"role": "user", "content": message}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": True},
            },
            temperature=0,
            max_tokens=MAX_JSON_TOKENS,
        )
        try:
            answer = json.loads(response.choices[0].message.content or "{}")
        except ValueError:  # cut off by max_tokens
            return {}
        return answer if isinstance(answer, dict) else {}

    async def phrase(self, instruction: str) -> str:
        response = await self.client.chat.completions.create(
            model=self.chat_deployment,
            messages=[
                {"role": "system", "content": (
                    "You are a customer support agent. Write one short, polite sentence to the "
                    "customer that does what the instruction says. Never say that you did "
                    "something; only say what the instruction asks."
                )},
                {"role": "user", "content": f"Instruction: {instruction}"},
            ],
            temperature=0,
            max_tokens=MAX_PHRASE_TOKENS,
        )
        return (response.choices[0].message.content or "").strip()

    async def similarity(self, text: str, other: str) -> float | None:
        try:
            first, second = await self._embed([text, other])
        except OpenAIError:
            return None
        return float(np.dot(_unit(first), _unit(second)))

    async def translate(self, text: str, language: str) -> str | None:
        key = (text, language)
        if key not in self._translations:
            try:
                response = await self.client.chat.completions.create(
                    model=self.chat_deployment,
                    messages=[
                        {"role": "system", "content": (
                            f"Translate the customer support agent's message into {TRANSLATED[language]}. "
                            "Keep product names, email addresses and links exactly as they are. Answer "
                            "with the translation only."
                        )},
                        {"role": "user", "content": text},
                    ],
                    temperature=0,
                    # A translation runs a little longer than its text; a runaway one is cut off.
                    max_tokens=len(text) // 2 + 32,
                )
            except OpenAIError:
                return None
            if len(self._translations) >= TRANSLATIONS_KEPT:
                self._translations.pop(next(iter(self._translations)))
            self._translations[key] = (response.choices[0].message.content or "").strip()
        return self._translations[key]

    async def arguments(self, purpose: str, parameters: dict[str, Any], message: str) -> dict[str, Any]:
        return await self._json(
            f"Fill in the arguments of a function that {purpose.lower()}, from the customer's "
            "message. Answer as JSON.",
            message,
            parameters,
        )

    async def _choose(self, message: str, question: str, options: list[Option]) -> str:
        # The model picks among the options' descriptions, not their ids: small models choose
        # better between meaningful phrases than between labels.
        by_description = {option.description: option.id for option in options}
        schema = {
            "type": "object",
            "properties": {"reply_means": {"type": "string", "enum": list(by_description)}},
            "required": ["reply_means"],
            "additionalProperties": False,
        }
        listed = "\n".join(f"- {description}" for description in by_description)
        examples = "\n".join(
            f'"{example}" means: {option.description}'
            for option in options for example in option.examples[:EXAMPLES_SHOWN]
        )
        answer = await self._json(
            f'A support agent asked the customer: "{question}"\n'
            f"What does the customer's reply mean? One of:\n{listed}\n\nFor example:\n{examples}",
            message,
            schema,
        )
        # The grammar makes any other answer impossible; a cut-off answer falls back to the nearest.
        reply = answer.get("reply_means")
        return by_description.get(reply, options[0].id) if isinstance(reply, str) else options[0].id
