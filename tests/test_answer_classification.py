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

import pytest

from stockade.routines.deployment import Decision, DeploymentModel
from stockade.routines.plan import Option

DONE = Option("done", "the customer needs nothing more", ("No thanks",), "no")
MORE = Option("more", "the customer has something else", ("Yes please",), "yes")
API = Option("branch:2", "the customer requires a BAA for the API", ("the API",))
ENTERPRISE = Option("branch:3", "the customer requires a BAA for ChatGPT Enterprise", ("Enterprise seats",))
BOTH = Option("branches:2+3", "the customer needs all of them", ("both",))
UNCLEAR = Option("unclear", "the reply does not say which option applies", ("I'm not sure",))
ABUSE = Option("abuse", "the customer is abusive", ("you idiot",))
APPROVAL = Option("topic:4", "the customer asks what happens if they are not approved", ("What if we're not approved?",))
OFF_TOPIC = Option("off_topic", "the reply is about something else entirely", ("Nice weather today",))
OPTIONS = [DONE, MORE, API, ENTERPRISE, BOTH, UNCLEAR, ABUSE, APPROVAL, OFF_TOPIC]
# Each example is one axis, named by its option's id; one more axis is "nothing".
AXES = {"done": "No thanks", "more": "Yes please", "api": "the API", "enterprise": "Enterprise seats",
        "both": "both", "unclear": "I'm not sure", "abuse": "you idiot",
        "approval": "What if we're not approved?", "off_topic": "Nice weather today"}


def near(**similarities: float) -> list[float]:
    """A unit vector with these cosine similarities to the examples (by option id's axis)."""
    vector = [similarities.get(name, 0.0) for name in AXES]
    return [*vector, math.sqrt(1 - sum(v * v for v in vector))]


class StandIn:
    """What DeploymentModel uses of the openai client: embeddings from a table (examples on their
    own axes, anything unknown near nothing), and a chat model that answers ``choice``."""

    def __init__(self, vectors: dict[str, list[float]], choice: str = "") -> None:
        table = {example: [float(i == n) for i in range(len(AXES) + 1)] for n, example in enumerate(AXES.values())}
        self.vectors = {**table, **vectors}
        self.chats: list[dict[str, Any]] = []
        self.embedding_calls = 0
        self.embeddings = SimpleNamespace(create=self._embed)
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._chat))
        self.choice = choice

    async def _embed(self, *, model: str, input: list[str]) -> Any:
        self.embedding_calls += 1
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


def test_a_sentence_that_says_nothing_does_not_hide_the_answer_after_it() -> None:
    vectors = {"ok. enterprise.": near(unclear=0.46, enterprise=0.37), "ok": near(unclear=1.0),
               "enterprise": near(enterprise=0.7)}
    assert classify(StandIn(vectors), "ok. enterprise.").option == "branch:3"


def test_an_acknowledgement_does_not_make_an_answer_after_it_unclear() -> None:
    vectors = {"Alright, I see. Enterprise.": near(unclear=0.6, enterprise=0.3),
               "Alright, I see": near(unclear=1.0), "Enterprise": near(enterprise=0.7)}
    assert classify(StandIn(vectors), "Alright, I see. Enterprise.").option == "branch:3"


def test_a_message_whose_sentences_all_say_nothing_stays_undecided() -> None:
    vectors = {"ok. hmm.": near(unclear=0.46, enterprise=0.40), "ok": near(unclear=1.0), "hmm": near(unclear=1.0)}
    assert classify(StandIn(vectors), "ok. hmm.").stage == "nearest"


def test_a_joined_part_names_its_branch_though_all_of_them_is_as_near() -> None:
    vectors = {"both api and enterprise": near(both=0.50, api=0.41), "both api": near(both=0.56, api=0.49),
               "enterprise": near(enterprise=0.7)}
    decision = classify(StandIn(vectors), "both api and enterprise")
    assert [each.option for each in decision.each()] == ["branch:2", "branch:3"]


def test_a_portuguese_in_the_is_not_taken_for_a_denial() -> None:
    message = "Para os dois: a API no nosso aplicativo da clínica e o ChatGPT Enterprise para a equipe administrativa."
    vectors = {message: near(both=0.5, api=0.45), "a API no nosso aplicativo da clínica": near(api=0.7),
               "o ChatGPT Enterprise para a equipe administrativa": near(enterprise=0.7)}
    decision = classify(StandIn(vectors), message)
    assert [each.option for each in decision.each()] == ["branch:2", "branch:3"]


def test_a_correction_before_an_apology_decides() -> None:
    message = "The API. Actually, it's Enterprise, sorry for the confusion"
    vectors = {message: near(api=0.5, enterprise=0.45), "for the confusion": near(done=0.6),
               "it's Enterprise, sorry for the confusion": near(enterprise=0.7)}
    assert classify(StandIn(vectors), message).option == "branch:3"


@pytest.mark.parametrize(("message", "similarities", "option"), [
    ("Do you have offices in Lisbon?", {"approval": 0.29, "done": 0.26}, "off_topic"),  # nearest a topic, not near
    ("And if they turn us down?", {"approval": 0.40, "done": 0.36}, "topic:4"),  # near the topic
    ("Is your API down today?", {"api": 0.30, "done": 0.26}, "off_topic"),  # a question nearest a branch, not near
    ("our backend does it", {"api": 0.30, "done": 0.26}, "branch:2"),  # an answer nearest a branch
    ("Could you phone me?", {"done": 0.30, "api": 0.26}, "done"),  # a question nearest an off-script option
])
def test_a_near_tie_is_off_topic_when_the_branch_or_topic_it_is_nearest_only_seems_its_subject(
    message: str, similarities: dict[str, float], option: str
) -> None:
    assert classify(StandIn({message: near(**similarities)}), message).option == option


def test_a_long_message_full_of_corrections_and_sentences_costs_a_bounded_number_of_embeddings_calls() -> None:
    client = StandIn({})
    classify(client, "The API, sorry. " * 200)
    assert client.embedding_calls <= 5


# -- sentence by sentence: a message not clear as a whole ---------------------------------------

def test_sentences_that_each_name_a_branch_and_one_that_says_both_take_both() -> None:
    message = "Our portal calls the API. The billing office is on Enterprise. We need both covered."
    vectors = {message: near(api=0.45, enterprise=0.42), "Our portal calls the API": near(api=0.7),
               "The billing office is on Enterprise": near(enterprise=0.7), "We need both covered": near(both=0.7)}
    assert [each.option for each in classify(StandIn(vectors), message).each()] == ["branch:2", "branch:3"]


def test_sentences_that_name_two_branches_with_an_adding_word_take_both() -> None:
    message = "The portal calls the API. Enterprise seats for the front desk as well."
    vectors = {message: near(api=0.45, enterprise=0.42), "The portal calls the API": near(api=0.7),
               "Enterprise seats for the front desk as well": near(enterprise=0.7)}
    assert [each.option for each in classify(StandIn(vectors), message).each()] == ["branch:2", "branch:3"]


def test_a_correction_between_two_choices_makes_the_later_one_stand() -> None:
    message = "Our coders use the API. No, sorry, wrong one: it's Enterprise for the nurses."
    vectors = {message: near(api=0.45, enterprise=0.42), "Our coders use the API": near(api=0.7),
               "it's Enterprise for the nurses": near(enterprise=0.7)}
    decision = classify(StandIn(vectors), message)
    assert (decision.option, decision.also) == ("branch:3", ())


def test_the_one_branch_a_sentence_names_decides_among_sentences_that_choose_nothing() -> None:
    message = "Thanks for the quick reply. Our developers build on the API. We go live in March."
    vectors = {message: near(done=0.40, api=0.38), "Our developers build on the API": near(api=0.7)}
    assert classify(StandIn(vectors), message).option == "branch:2"


def test_a_sentence_that_denies_a_branch_chooses_nothing() -> None:
    message = "The API, for our intake bot. Nobody uses the Enterprise chat."
    vectors = {message: near(enterprise=0.45, api=0.42), "The API, for our intake bot": near(api=0.7),
               "Nobody uses the Enterprise chat": near(enterprise=0.7), "uses the Enterprise chat": near(enterprise=0.7)}
    decision = classify(StandIn(vectors), message)
    assert (decision.option, decision.ruled_out) == ("branch:2", ("branch:3",))


@pytest.mark.parametrize(("message", "statements"), [
    # a negated sentence that denies no branch
    ("The Enterprise seats. Our clerks never open charts there; the charting bot on the API is what matters.",
     {"The Enterprise seats": near(enterprise=0.7)}),
    # a story that names two branches in turn, and neither corrects nor adds
    ("We tried Enterprise last year. Now we build on the API.",
     {"We tried Enterprise last year": near(enterprise=0.7), "Now we build on the API": near(api=0.7)}),
    # a sentence that clearly chooses something else
    ("We build on the API. What if we're not approved?",
     {"We build on the API": near(api=0.7), "What if we're not approved": near(approval=0.7)}),
    # a correction after the last choice, with nothing chosen after it
    ("For the staff licences. Oh no, sorry, I was reading the wrong contract.",
     {"For the staff licences": near(enterprise=0.7)}),
    # an adding word before any choice ("too early") adds nothing
    ("Sorry, I hit send too early. The nurses chat in Enterprise. The intake form calls the API.",
     {"The nurses chat in Enterprise": near(enterprise=0.7), "The intake form calls the API": near(api=0.7)}),
])
def test_a_message_whose_statements_do_not_settle_it_is_decided_whole(
    message: str, statements: dict[str, list[float]]
) -> None:
    vectors = {message: near(api=0.45, enterprise=0.42), **statements}
    assert classify(StandIn(vectors), message).stage == "nearest"
