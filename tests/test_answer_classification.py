"""How an answer is placed among a question's options when no option is clearly nearest: the
deciding rules of the classifier, on stand-in embeddings whose similarities each test sets. (The
real models' placements are measured by the routine evaluation and tested in
test_conversations.py.)"""

from __future__ import annotations

import asyncio
import json
import math
from types import SimpleNamespace
from typing import Any

from stockade.routines.deployment import Decision, DeploymentModel
from stockade.routines.plan import Option

DONE = Option("done", "the customer needs nothing more", ("No thanks",), "no")
MORE = Option("more", "the customer has something else", ("Yes please",), "yes")
API = Option("branch:2", "the customer requires a BAA for the API", ("the API",))
BOTH = Option("branches:2+3", "the customer needs all of them", ("both",))
OPTIONS = [DONE, MORE, API, BOTH]
AXES = ["No thanks", "Yes please", "the API", "both"]  # each example is one axis; a fifth is "nothing"


def near(**similarities: float) -> list[float]:
    """A unit vector with these cosine similarities to the examples (by option id's axis)."""
    axis = {"done": 0, "more": 1, "api": 2, "both": 3}
    vector = [0.0] * 5
    for name, similarity in similarities.items():
        vector[axis[name]] = similarity
    vector[4] = math.sqrt(1 - sum(v * v for v in vector))
    return vector


class StandIn:
    """What DeploymentModel uses of the openai client: embeddings from a table (examples on their
    own axes, anything unknown near nothing), and a chat model that answers ``choice``."""

    def __init__(self, vectors: dict[str, list[float]], choice: str = "") -> None:
        table = {example: [float(i == n) for i in range(5)] for n, example in enumerate(AXES)}
        self.vectors = {**table, **vectors}
        self.chats: list[dict[str, Any]] = []
        self.embeddings = SimpleNamespace(create=self._embed)
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._chat))
        self.choice = choice

    async def _embed(self, *, model: str, input: list[str]) -> Any:
        data = [SimpleNamespace(index=i, embedding=self.vectors.get(text, near())) for i, text in enumerate(input)]
        return SimpleNamespace(data=data)

    async def _chat(self, **request: Any) -> Any:
        self.chats.append(request)
        content = json.dumps({"reply_means": self.choice})
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=content))])


def classify(client: StandIn, message: str, *, model_tie_breaks: bool = False) -> Decision:
    model = DeploymentModel(client, "chat", "embeddings", model_tie_breaks=model_tie_breaks)  # type: ignore[arg-type]
    return asyncio.run(model.classify(message, "Is there anything else?", OPTIONS))


def test_a_near_tie_goes_to_the_nearest_option_without_asking_the_chat_model() -> None:
    client = StandIn({"hmm right": near(done=0.45, api=0.42)})
    decision = classify(client, "hmm right")
    assert (decision.option, decision.stage) == ("done", "nearest")
    assert client.chats == []


def test_a_routine_may_have_its_chat_deployment_settle_near_ties() -> None:
    client = StandIn({"hmm right": near(done=0.45, api=0.42)}, choice=API.description)
    decision = classify(client, "hmm right", model_tie_breaks=True)
    assert (decision.option, decision.stage) == ("branch:2", "model")
    assert len(client.chats) == 1


def test_all_of_the_branches_are_never_taken_on_a_near_tie() -> None:
    client = StandIn({"hmm right": near(both=0.45, api=0.42)})
    assert classify(client, "hmm right").option == "branch:2"


def test_a_joined_part_that_clearly_says_all_of_them_takes_them() -> None:
    vectors = {"Both, we build on the API and staff chat": near(api=0.45, both=0.42), "Both": near(both=1.0)}
    decision = classify(StandIn(vectors), "Both, we build on the API and staff chat")
    assert [each.option for each in decision.each()] == ["branch:2", "branch:3"]


def test_a_reply_that_says_there_is_nothing_is_the_no_though_nearest_the_yes() -> None:
    decision = classify(StandIn({"nada más, chao": near(more=0.7)}), "nada más, chao")
    assert (decision.option, decision.stage) == ("done", "polarity")


def test_a_reply_that_opens_with_a_no_but_asks_for_more_stays_more() -> None:
    decision = classify(StandIn({"No wait, one more thing": near(more=0.7)}), "No wait, one more thing")
    assert decision.option == "more"


def test_what_follows_a_withdrawing_word_decides_only_when_it_makes_a_choice() -> None:
    message = "Right, the API. Sorry about that"
    vectors = {message: near(api=0.7), "about that": near(done=1.0), "Right, the API.": near()}
    assert classify(StandIn(vectors), message).option == "branch:2"
