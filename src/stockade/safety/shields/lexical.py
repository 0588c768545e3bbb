"""Cheap lexical signals of an attack: injections are formulaic ("ignore all previous
instructions", "you are now DAN", "note to any AI reading this"), and a phrase the token vectors
blur into their mean is plain to a regular expression.

Each signal is one expression; a window of text has the signal when a match of it overlaps the
window. The heads weigh the signals beside the token vectors, so a signal that benign text also
sets ("act as a copy editor") costs only what cross-validation says it should. The expressions
were written from the train split's phrasings and general knowledge of prompt injections, never
from the held-out split's.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

_AI = r"(?:ai|assistant|chatbot|bot|language model|llm|model|agent|gpt)s?"

# Matched against the lowercased text, written in lower case: about 2.5 times faster than
# case-insensitive matching, which these expressions' many alternatives make slow.
SIGNALS: dict[str, re.Pattern[str]] = {
    name: re.compile(expression)
    for name, expression in {
        # "ignore all previous instructions", "bypass your restrictions"
        "override": r"\b(?:ignore|disregard|forget|override|bypass|pay no attention to|cancel)\s+"
        r"(?:all\s+|any\s+|the\s+|your\s+|of\s+)*(?:previous\s+|prior\s+|above\s+|earlier\s+|preceding\s+|"
        r"original\s+|initial\s+|system\s+|safety\s+)*(?:instructions|rules|guidelines|prompt|directives|"
        r"restrictions|programming|content policy|training)\b",
        # "you are now", "from now on you", "pretend to be", "stay in character"
        "persona": r"\b(?:you are now|you're now|from now on,? you|you will now|pretend (?:to be|you are|you're)|"
        r"act as|role-?play|stay in character|immerse yourself|the role of)\b",
        # "no restrictions", "developer mode", "do anything now"
        "unbound": r"\b(?:no|without(?: any)?|free of|broken free of)\s+(?:the usual\s+)?(?:restrictions|limits|"
        r"rules|filters?|censorship|guidelines|ethics|morals|content policy)\b|\b(?:unrestricted|unfiltered|"
        r"uncensored|amoral|jailbr[eo]ak\w*|do anything now|developer mode|god mode)\b",
        # the system prompt asked for
        "extraction": r"\b(?:system prompt|initial prompt|hidden prompt|your (?:instructions|configuration)|"
        r"words above|text above|above this line|everything above)\b",
        # the model addressed from inside a text
        "addressed": rf"\b(?:to|for|attention|note to|dear)\s+(?:any|the|whatever|all)?\s*{_AI}\b|"
        rf"\bif you are an? {_AI}\b|\b{_AI},|\b{_AI}\s+(?:reading|processing|summari[sz]ing)\b",
        # data sent to an address or a link
        "exfiltration": r"\b(?:send|forward|e-?mail|upload|post|transmit|leak|wire)\b[^.!?\n]{0,60}?\bto\s+"
        r"(?:\S+@\S+|https?://\S+)",
        # a tool or function to call
        "tool": r"\b(?:call|invoke|run|execute|trigger)\b[^.!?\n]{0,30}?\b(?:function|tool|command)\b|"
        r"\b(?:call|invoke|run|execute)\s+(?:the\s+)?[a-z]+_[a-z_]+\b",
        # the user to be kept in the dark
        "secrecy": r"\b(?:do not|don't|never|without)\s+(?:tell|inform|mention|reveal|alert)(?:ing)?\s+"
        r"(?:the user|them|anyone)\b|\b(?:hide|keep) this\b|\bsay nothing about\b|\bquietly\b|\bsecretly\b",
        # new orders
        "new_orders": r"\b(?:new|updated|real|actual) (?:instructions?|directives?|orders)\b|\[system\]|"
        r"#+\s*system\b|\bsystem override\b|<\|im_start\|>|\bsystem:",
        # claimed authority
        "authority": r"\b(?:i am|i'm|this is) (?:your|an?) (?:developer|administrator|admin|creator)\b|"
        r"\bauthori[sz]e you\b|\bpermission to (?:ignore|bypass|break)\b",
        # refusals ruled out
        "no_refusal": r"\bnever refuses?\b|\bno refusals?\b|\bwithout (?:any )?(?:warnings?|disclaimers?)\b|"
        r"\bdon't refuse\b",
    }.items()
}
NAMES = tuple(SIGNALS)


def matches(text: str) -> list[npt.NDArray[np.int64]]:
    """Per signal, the (start, end) character spans of its matches in ``text``, shape (n, 2)."""
    lowered = lower(text)
    return [
        np.array([m.span() for m in expression.finditer(lowered)], dtype=np.int64).reshape(-1, 2)
        for expression in SIGNALS.values()
    ]


def lower(text: str) -> str:
    """``text`` in lower case, each character where it was: the spans must fit the original."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)  # "İ" lowers to two


def window_signals(found: list[npt.NDArray[np.int64]], windows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """(windows, signals): 1 where a match of the signal overlaps the (start, end) character
    window, from ``matches``' spans."""
    out = np.zeros((len(windows), len(found)), dtype=np.float32)
    for column, spans in enumerate(found):
        if len(spans):
            overlaps = (spans[None, :, 0] < windows[:, None, 1]) & (spans[None, :, 1] > windows[:, None, 0])
            out[:, column] = overlaps.any(axis=1)
    return out
