"""Guard models' prompt formats and answers, written from their model cards (docs/safety.md,
"Guard-model classifier", cites them): the prompt a text is judged in, and the answer read back
as a severity per Azure category. Pure functions of text: the calls are the classifier's."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from stockade.safety.base import Category, Severity


class GuardUnreadable(ValueError):
    """The guard model answered something its format does not allow: callers fail closed. The
    message never quotes the answer (it may echo the text judged)."""


@dataclass(frozen=True, slots=True)
class GuardPrompt:
    """One text completion to ask the guard model for."""

    text: str
    max_tokens: int
    top_logprobs: int = 0  # how many of the first token's likeliest alternatives to ask for


@dataclass(frozen=True, slots=True)
class GuardAnswer:
    text: str
    # The first generated token's likeliest alternatives and their log probabilities, when the
    # deployment's backend returns them.
    first_token: dict[str, float] | None = None


class GuardFormat(Protocol):
    name: str

    def prompts(self, text: str) -> list[GuardPrompt]: ...

    def severities(self, answers: Sequence[GuardAnswer], unsafe: Severity) -> dict[Category, Severity]:
        """``answers`` to ``prompts()``, in order; ``unsafe`` is the severity of a bare verdict."""
        ...


def _neutralised(text: str, markers: re.Pattern[str]) -> str:
    """``text`` with what would read as the format's own markup (special tokens, section tags)
    broken by a space, so that the judged text cannot close its section and answer for the model."""
    return markers.sub("< ", text)


# -- Llama Guard 3 ------------------------------------------------------------------------------

# Meta's hazard categories, as its prompt format lists them.
LLAMA_GUARD_3_CATEGORIES = {
    "S1": "Violent Crimes",
    "S2": "Non-Violent Crimes",
    "S3": "Sex Crimes",
    "S4": "Child Exploitation",
    "S5": "Defamation",
    "S6": "Specialized Advice",
    "S7": "Privacy",
    "S8": "Intellectual Property",
    "S9": "Indiscriminate Weapons",
    "S10": "Hate",
    "S11": "Self-Harm",
    "S12": "Sexual Content",
    "S13": "Elections",
    "S14": "Code Interpreter Abuse",
}
# Those that fall in one of Azure's four; the others (crimes without violence, defamation,
# advice, privacy, intellectual property, elections, code abuse) are outside Azure's categories.
LLAMA_GUARD_3_AZURE = {
    "S1": Category.VIOLENCE,
    "S9": Category.VIOLENCE,
    "S3": Category.SEXUAL,
    "S4": Category.SEXUAL,
    "S12": Category.SEXUAL,
    "S10": Category.HATE,
    "S11": Category.SELF_HARM,
}
# Llama 3's special tokens are all <|...|>; the sections are <BEGIN ...> and <END ...>.
_LLAMA_MARKUP = re.compile(r"<(?=\||BEGIN |END )")


class LlamaGuard3:
    """Meta's Llama Guard 3 (8B, 1B): the text is the one User message of a conversation, judged
    against the 14 categories; it answers ``safe``, or ``unsafe`` and a line of category codes."""

    name = "llama-guard-3"

    def prompts(self, text: str) -> list[GuardPrompt]:
        categories = "\n".join(f"{code}: {title}." for code, title in LLAMA_GUARD_3_CATEGORIES.items())
        # No <|begin_of_text|>: servers add the BOS token to a text completion themselves.
        prompt = (
            "<|start_header_id|>user<|end_header_id|>\n\n"
            "Task: Check if there is unsafe content in 'User' messages in conversations according "
            "our safety policy with the below categories.\n\n"
            f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{categories}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
            f"<BEGIN CONVERSATION>\n\nUser: {_neutralised(text, _LLAMA_MARKUP)}\n\n<END CONVERSATION>\n\n"
            "Provide your safety assessment for ONLY THE LAST User message in the above conversation:\n"
            " - First line must read 'safe' or 'unsafe'.\n"
            " - If unsafe, a second line must include a comma-separated list of violated categories."
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        )
        # "unsafe", a line break and every code with its comma: under 48 tokens.
        return [GuardPrompt(prompt, max_tokens=48)]

    def severities(self, answers: Sequence[GuardAnswer], unsafe: Severity) -> dict[Category, Severity]:
        (answer,) = answers
        lines = [line.strip() for line in answer.text.strip().splitlines() if line.strip()]
        verdict = lines[0].lower() if lines else ""
        rated = dict.fromkeys(Category, Severity.SAFE)
        if verdict == "safe":
            return rated
        if verdict != "unsafe" or len(lines) < 2:
            raise GuardUnreadable("the Llama Guard answer is neither 'safe' nor 'unsafe' and its categories")
        codes = {code.strip().upper() for code in lines[1].split(",")}
        if not codes <= LLAMA_GUARD_3_CATEGORIES.keys():
            raise GuardUnreadable("the Llama Guard answer names a category its format does not have")
        for code in codes & LLAMA_GUARD_3_AZURE.keys():
            rated[LLAMA_GUARD_3_AZURE[code]] = unsafe
        return rated


# -- ShieldGemma --------------------------------------------------------------------------------

# Google's four harm types, each with the prompt-only guideline of its model card, and the Azure
# categories each informs. ShieldGemma has no self-harm policy of its own: "dangerous content"
# (harming oneself and/or others) stands for both violence and self-harm.
SHIELDGEMMA_POLICIES = (
    (
        "No Dangerous Content",
        "The prompt shall not contain or seek generation of content that harming oneself and/or "
        "others (e.g., accessing or building firearms and explosive devices, promotion of "
        "terrorism, instructions for suicide).",
        (Category.VIOLENCE, Category.SELF_HARM),
    ),
    (
        "No Harassment",
        "The prompt shall not contain or seek generation of content that is malicious, "
        "intimidating, bullying, or abusive content targeting another individual (e.g., physical "
        "threats, denial of tragic events, disparaging victims of violence).",
        (Category.VIOLENCE,),
    ),
    (
        "No Hate Speech",
        "The prompt shall not contain or seek generation of content that targeting identity "
        "and/or protected attributes (e.g., racial slurs, promotion of discrimination, calls to "
        "violence against protected groups) or dehumanizing/belittling/vilifying on the bases of "
        "race, ethnicity, religion, disability, age, nationality, veteran status, sexual "
        "orientation, gender, gender identity, caste, or any other protected status. We do allow "
        "content that includes a reference to a protected individual or group in a positive manner.",
        (Category.HATE,),
    ),
    (
        "No Sexually Explicit Information",
        "The prompt shall not contain or seek generation of content that contains references to "
        "sexual acts or other lewd content (e.g., sexually graphic descriptions, content aimed at "
        "causing arousal). Medical or scientific terms related to human anatomy or sex education "
        "are permitted.",
        (Category.SEXUAL,),
    ),
)
# The probability of "Yes" from which each severity starts. Ours, not Google's: the card's one
# threshold is 0.5, which is where the default policy's "medium" begins, so the default policy
# blocks what ShieldGemma calls a violation.
SHIELDGEMMA_BANDS = ((0.8, Severity.HIGH), (0.5, Severity.MEDIUM), (0.3, Severity.LOW))
_GEMMA_MARKUP = re.compile(r"<(?=(?:start_of_turn|end_of_turn|bos|eos|pad)>)")


class ShieldGemma:
    """Google's ShieldGemma (2B, 9B, 27B): one prompt per harm type, each answered "Yes" (it
    violates the policy) or "No"; the probability of "Yes" comes from the first token's log
    probabilities when the backend returns them."""

    name = "shieldgemma"

    def prompts(self, text: str) -> list[GuardPrompt]:
        question = _neutralised(text, _GEMMA_MARKUP)
        return [
            GuardPrompt(
                "You are a policy expert trying to help determine whether a user prompt is in "
                "violation of the defined safety policies.\n\n"
                f"<start_of_turn>\nHuman Question: {question}\n<end_of_turn>\n\n"
                f"Our safety principle is defined in the below:\n\n* \"{title}\": {guideline}\n\n"
                "Does the human question violate the above principle? Your answer must start with "
                "'Yes' or 'No'. And then walk through step by step to be sure we answer correctly.\n\n",
                max_tokens=1,
                top_logprobs=5,
            )
            for title, guideline, _ in SHIELDGEMMA_POLICIES
        ]

    def severities(self, answers: Sequence[GuardAnswer], unsafe: Severity) -> dict[Category, Severity]:
        rated = dict.fromkeys(Category, Severity.SAFE)
        for answer, (_, _, categories) in zip(answers, SHIELDGEMMA_POLICIES, strict=True):
            severity = _shieldgemma_severity(answer, unsafe)
            for category in categories:
                rated[category] = max(rated[category], severity)
        return rated


def _shieldgemma_severity(answer: GuardAnswer, unsafe: Severity) -> Severity:
    yes = _probability_of_yes(answer.first_token) if answer.first_token else None
    if yes is not None:
        return next((severity for start, severity in SHIELDGEMMA_BANDS if yes >= start), Severity.SAFE)
    words = answer.text.split()
    word = words[0].strip(".,:!").lower() if words else ""
    if word == "yes":
        return unsafe
    if word == "no":
        return Severity.SAFE
    raise GuardUnreadable("the ShieldGemma answer starts with neither 'Yes' nor 'No'")


def _probability_of_yes(first_token: dict[str, float]) -> float | None:
    """P(Yes) among the answers Yes and No, as the model card scores it; None if neither token is
    among the alternatives returned. One missing from them is less likely than each of those:
    it is taken at the likelihood of the least likely one, its upper bound."""
    yes, no = _mass(first_token, "yes"), _mass(first_token, "no")
    if not yes and not no:
        return None
    least = min(math.exp(logprob) for logprob in first_token.values())
    yes, no = yes or least, no or least
    return yes / (yes + no)


def _mass(first_token: dict[str, float], word: str) -> float:
    # A tokenizer may spell the word with a leading space or another case; they are one answer.
    return sum(math.exp(logprob) for token, logprob in first_token.items() if token.strip().lower() == word)


FORMATS: dict[str, GuardFormat] = {f.name: f for f in (LlamaGuard3(), ShieldGemma())}
