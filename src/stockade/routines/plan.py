"""What a routine allows at each question: the options the customer's answer is classified among.

Besides the routine's own branches, every question allows a few ways off the script, each with a
defined outcome in the engine: an unclear answer, an off-topic question, a request for a person,
and abuse. Branches whose condition the conversation cannot observe (the BAA routine's "not
approved") become *topics*: answered when the customer asks about them, never taken on their own.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from stockade.routines.model import Kind, Routine, Step
from stockade.routines.parser import CUSTOMER_STATEMENT

UNCLEAR, OFF_TOPIC, HANDOFF, ABUSE = "unclear", "off_topic", "handoff", "abuse"
DONE, MORE, ANSWERED, YES, NO = "done", "more", "answered", "yes", "no"
BRANCH = "branch:"  # the prefix of a routine branch's option id, before the branch's step id

OFF_SCRIPT = {
    UNCLEAR: ("the reply does not say which option applies, or asks what the options mean", (
        "I'm not sure", "I don't know", "What's the difference?", "Can you explain the options?",
        "Hmm, maybe", "Which one do I need?")),
    OFF_TOPIC: ("the reply is about something else entirely", (
        "What's the weather like today?", "Tell me a joke", "How do I reset my password?",
        "Can you help me with my invoice?", "What is the capital of France?",
        "Who won the game last night?")),
    HANDOFF: ("the customer wants to talk to a person", (
        "I want to talk to a human", "Can I speak to a real person?",
        "Transfer me to a human agent", "Let me talk to your manager", "Get me a person")),
    ABUSE: ("the reply insults or abuses the agent", (
        "You are useless and stupid", "Shut up, you idiot", "This is garbage, you stupid bot",
        "Go to hell")),
}
CLOSING = {
    DONE: ("the customer needs nothing more", (
        "No, that's all", "No thanks", "Nothing else, thank you", "That's everything, bye", "No",
        "All good, thanks")),
    MORE: ("the customer has something else but has not said what", (
        "Yes, I have another question", "Yes please", "Actually, one more thing", "Yes")),
}
CONFIRMATION = {
    YES: ("the customer agrees", ("Yes", "Yes, go ahead", "Sure, do it", "OK, please do")),
    NO: ("the customer does not agree", ("No", "No, don't", "Stop, don't do that", "Cancel that")),
}


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    description: str  # for the chat model's choice
    examples: tuple[str, ...]  # phrasings the embeddings stage compares with


def _fixed(table: Mapping[str, tuple[str, tuple[str, ...]]]) -> list[Option]:
    return [Option(key, description, examples) for key, (description, examples) in table.items()]


def _branch_option(branch: Step) -> Option:
    condition = branch.condition or ""
    claim = CUSTOMER_STATEMENT.sub("", condition).strip()
    examples = [condition, f"I need {claim}", claim]
    if " for " in claim:
        purpose = claim[claim.rindex(" for ") + 1:]
        examples += [f"It's {purpose}", purpose.removeprefix("for ")]
    return Option(f"{BRANCH}{branch.id}", condition, tuple(examples))


def _topic_option(branch: Step) -> Option:
    condition = branch.condition or ""
    first_person = re.sub(r"^the customer is\b", "I am", condition, flags=re.IGNORECASE)
    first_person = re.sub(r"^the customer\b", "I", first_person, flags=re.IGNORECASE)
    examples = [f"What happens if {first_person}?", f"What if {first_person}?"]
    state = re.match(r"^the customer is (not )?(.+)$", condition, re.IGNORECASE)
    if state:
        examples += [f"What if my request is {state.group(1) or ''}{state.group(2)}?",
                     f"Will I be {state.group(2)}?"]
    return Option(f"topic:{branch.id}", f"the customer asks what happens if {condition}",
                  tuple(examples))


@dataclass(frozen=True)
class Plan:
    routine: Routine
    decisions: dict[str, tuple[Step, ...]] = field(default_factory=dict)  # ask id → its branches
    topics: tuple[Step, ...] = ()
    closing: str | None = None  # the "anything else?" question before the case is closed

    @classmethod
    def of(cls, routine: Routine) -> Plan:
        decisions: dict[str, tuple[Step, ...]] = {}
        topics: list[Step] = []
        asked: str | None = None
        steps = routine.steps
        for _index, step in enumerate(steps):
            if step.kind is Kind.BRANCH:
                if not step.observable:
                    topics.append(step)
                elif asked is not None:
                    decisions[asked] = (*decisions.get(asked, ()), step)
                continue
            asked = step.id if step.kind is Kind.ASK else None
        closing = next(
            (step.id for step, following in itertools.pairwise(steps)
             if step.kind is Kind.ASK and following.kind is Kind.RESOLVE),
            None,
        )
        return cls(routine, decisions, tuple(topics), closing)

    def agenda(self) -> list[str]:
        """The steps a conversation goes through when no answer takes it into a branch."""
        return [step.id for step in self.routine.steps if step.kind is not Kind.BRANCH]

    def branches(self) -> list[Step]:
        return [branch for group in self.decisions.values() for branch in group]

    def options(self, ask: str) -> list[Option]:
        """What an answer to the question ``ask`` may do."""
        options = [_topic_option(topic) for topic in self.topics]
        if ask in self.decisions:
            options += [_branch_option(branch) for branch in self.decisions[ask]]
        elif ask == self.closing:
            # A customer who changes their mind, or also needs the other branch, may say so here.
            options += [_branch_option(branch) for branch in self.branches()]
            options += _fixed(CLOSING)
        else:
            options.append(Option(ANSWERED, "the customer answers the question", ()))
        return options + _fixed(OFF_SCRIPT)

    @staticmethod
    def confirmation_options() -> list[Option]:
        return _fixed(CONFIRMATION) + [
            Option(key, *OFF_SCRIPT[key]) for key in (HANDOFF, ABUSE)
        ]
