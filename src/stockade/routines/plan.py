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
from dataclasses import dataclass, field, replace
from typing import Literal

from stockade.routines.model import Kind, Routine, Step
from stockade.routines.parser import CUSTOMER_STATEMENT

UNCLEAR, OFF_TOPIC, HANDOFF, ABUSE = "unclear", "off_topic", "handoff", "abuse"
DONE, MORE, ANSWERED, YES, NO = "done", "more", "answered", "yes", "no"
BRANCH = "branch:"  # the prefix of a routine branch's option id, before the branch's step id
TOPIC = "topic:"  # the prefix of an unobservable branch's option id, before the branch's step id
BRANCHES = "branches:"  # the prefix of the option "all of them", before its branches' ids joined by +

OFF_SCRIPT = {
    UNCLEAR: ("the reply does not say which option applies, or asks what the options mean", (
        "I'm not sure", "I don't know", "What's the difference?", "Can you explain the options?",
        "Hmm, maybe", "Which one do I need?", "?", "...", "Hmm")),
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
        "All good, thanks", "No, that's it", "That's all I needed, thank you", "No, we're all set",
        "Thanks for your help")),
    MORE: ("the customer has something else but has not said what", (
        "Yes, I have another question", "Yes please", "Actually, one more thing", "Yes")),
}
# A bare acknowledgement answers "anything else?" (nothing more), but not a question that asks
# which option applies: Plan.options adds them to the examples of the one they mean. Short ones
# lie nearer "?" than "OK" does, and other languages' are not near the English: each is an example.
ACKNOWLEDGEMENTS = (
    "OK", "Okay", "Alright", "OK thanks", "k", "Vale", "D'accord", "Passt", "Beleza", "Certo",
    "Va bene", "Oké",
)
CONFIRMATION = {
    YES: ("the customer agrees", ("Yes", "Yes, go ahead", "Sure, do it", "OK, please do")),
    NO: ("the customer does not agree", ("No", "No, don't", "Stop, don't do that", "Cancel that")),
}


Polarity = Literal["yes", "no"]
POLARITY: dict[str, Polarity] = {DONE: "no", MORE: "yes", YES: "yes", NO: "no"}


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    description: str  # for the chat model's choice
    examples: tuple[str, ...]  # phrasings the embeddings stage compares with
    # The answer to a yes/no question this option is ("anything else?": done is no, more is yes).
    polarity: Polarity | None = None


def _fixed(table: Mapping[str, tuple[str, tuple[str, ...]]]) -> list[Option]:
    return [Option(key, description, examples, POLARITY.get(key)) for key, (description, examples) in table.items()]


def _claim(branch: Step) -> str:
    return CUSTOMER_STATEMENT.sub("", branch.condition or "").strip()


def _purpose(claim: str) -> str | None:
    """What a claim is for ("a BAA for the API" → "the API"), when it says."""
    return claim[claim.rindex(" for ") + 5:] if " for " in claim else None


def _acknowledged(option: Option, means: str) -> Option:
    """``option`` with the bare acknowledgements among its examples, if it is the one they mean."""
    return replace(option, examples=(*option.examples, *ACKNOWLEDGEMENTS)) if option.id == means else option


def _branch_option(branch: Step, phrasings: Mapping[str, tuple[str, ...]]) -> Option:
    """A branch as an option: its condition in the customer's words, and the routine's own
    phrasings of it (``phrasings``, its examples file, by step id)."""
    condition = branch.condition or ""
    claim = _claim(branch)
    examples = [condition, f"I need {claim}", claim]
    if (purpose := _purpose(claim)) is not None:
        examples += [f"It's for {purpose}", purpose]
    return Option(f"{BRANCH}{branch.id}", condition, (*examples, *phrasings.get(branch.id, ())))


def _all_of_option(branches: tuple[Step, ...]) -> Option:
    claims = [_claim(branch) for branch in branches]
    purposes = [_purpose(claim) or claim for claim in claims]
    together = f"{', '.join(purposes[:-1])} and {purposes[-1]}"
    examples = ("Both", "Both of them", "I need both", "All of them", "Both, please",
                f"I need {', '.join(claims[:-1])} and {claims[-1]}", f"For {together}", together)
    return Option(f"{BRANCHES}{'+'.join(branch.id for branch in branches)}",
                  f"the customer needs all of: {'; '.join(claims)}", examples)


_DENIAL = re.compile(r"\b(?:not|no|never|do|does|did)\b|n't\b", re.IGNORECASE)


def _affirmed(condition: str) -> list[str]:
    """A condition without its denial, its verbs reduced ("does not confirm" → "confirm")."""
    return [word.removesuffix("s") for word in _DENIAL.sub(" ", condition).lower().split()]


def exclusive(one: Step, other: Step) -> bool:
    """Whether two branches of one question exclude each other: one's condition denies the other's
    ("the customer confirms the charge", "the customer does not confirm the charge"). Conditions
    on different facts ("requires a BAA for the API", "… for ChatGPT Enterprise") are independent:
    one answer may satisfy both, and both branches run."""
    first, second = one.condition or "", other.condition or ""
    return first != second and _affirmed(first) == _affirmed(second)


def _topic_option(branch: Step, phrasings: Mapping[str, tuple[str, ...]]) -> Option:
    condition = branch.condition or ""
    first_person = re.sub(r"^the customer is\b", "I am", condition, flags=re.IGNORECASE)
    first_person = re.sub(r"^the customer\b", "I", first_person, flags=re.IGNORECASE)
    examples = [f"What happens if {first_person}?", f"What if {first_person}?"]
    state = re.match(r"^the customer is (not )?(.+)$", condition, re.IGNORECASE)
    if state:
        examples += [f"What if my request is {state.group(1) or ''}{state.group(2)}?",
                     f"Will I be {state.group(2)}?"]
    return Option(f"{TOPIC}{branch.id}", f"the customer asks what happens if {condition}",
                  (*examples, *phrasings.get(branch.id, ())))


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

    def in_order(self, ids: list[str]) -> list[Step]:
        """The branches in the routine's order, each once."""
        return [branch for branch in self.branches() if branch.id in ids]

    def repeats_only(self, branch: Step) -> bool:
        """Whether running ``branch`` again could only repeat it: none of its functions takes an
        argument, so the customer can ask nothing of it that it has not done."""
        functions = self.routine.functions
        return not any(
            functions[step.function].parameters.get("properties")
            for step in branch.steps if step.function in functions
        )

    def options(self, ask: str, branches_run: tuple[str, ...] = ()) -> list[Option]:
        """What an answer to the question ``ask`` may do, after the branches ``branches_run``."""
        phrasings = self.routine.examples
        options = [_topic_option(topic, phrasings) for topic in self.topics]
        # A bare acknowledgement means "nothing more" to the closing question, and nothing to any other.
        acknowledgement_means = DONE if ask == self.closing else UNCLEAR
        if ask in self.decisions:
            branches = self.decisions[ask]
            options += [_branch_option(branch, phrasings) for branch in branches]
            if len(branches) > 1 and not any(exclusive(a, b) for a, b in itertools.combinations(branches, 2)):
                options.append(_all_of_option(branches))
        elif ask == self.closing:
            # A customer who changes their mind, or also needs another branch, may say so here. A
            # branch that has run is not offered again when it could only repeat itself: an answer
            # near it ("someone on your team", "our staff") means something else.
            options += [
                _branch_option(branch, phrasings) for branch in self.branches()
                if branch.id not in branches_run or not self.repeats_only(branch)
            ]
            options += _fixed(CLOSING)
        else:
            options.append(Option(ANSWERED, "the customer answers the question", ()))
        return [_acknowledged(option, acknowledgement_means) for option in options + _fixed(OFF_SCRIPT)]

    @staticmethod
    def confirmation_options() -> list[Option]:
        return _fixed(CONFIRMATION) + [
            Option(key, *OFF_SCRIPT[key]) for key in (HANDOFF, ABUSE)
        ]
