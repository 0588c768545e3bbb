"""The check that an agent never claims an action it did not take.

A sentence claims an action when it reports something as done ("I've sent…", "your request has
been submitted", "the case is now closed", "here is the list…"). Each claim is matched to the
routine's functions by the words of their names and purposes; it is backed only if a matching
function ran, successfully, in the same turn. A claim that matches no function at all is never
backed: the agent has no way to do what it says.

A translation of a message (language.py) is held to the message: it may claim no more than the
message does. The patterns for Spanish, French, German and Portuguese are those languages' ways of
reporting something as done (the perfect, the passive of a past participle, "here is"), broad on
purpose: a translation they over-read is not sent, and the customer still has the message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from stockade.routines.model import Function

DONE_VERBS = (
    r"sent|submitted|closed|resolved|created|updated|deleted|removed|emailed|forwarded|escalated|"
    r"cancell?ed|processed|refunded|scheduled|filed|opened|attached|shared|provided|approved|"
    r"signed|registered|added|changed|completed|notified|contacted|issued|reset|verified|booked"
)
_ENGLISH = re.compile(
    rf"\b(?:(?:I|we)(?:'ve| have| just| already)+\s+(?:\w+\s+)?(?:{DONE_VERBS})"
    rf"|(?:has|have) (?:now |already )?been (?:{DONE_VERBS})"
    rf"|(?:is|are) now (?:{DONE_VERBS})"
    rf"|^here (?:is|are)\b"
    rf"|I (?:{DONE_VERBS})\b)",
    re.IGNORECASE,
)
_PARTICIPLE = {  # of the past participles, the endings each language gives them
    "es": r"(?:\w+(?:ad|id)[oa]s?|\w*(?:ch|biert|escrit|puest|vuelt|hech)[oa]s?)",
    "fr": r"(?:\w+(?:é|ée|és|ées|is|ise|it|ite|ert|erte))",
    "pt": r"(?:\w+(?:ad|id)[oa]s?|\w*(?:abert|escrit|feit|post)[oa]s?)",
}
CLAIMS = {
    "en": _ENGLISH,
    "es": re.compile(
        rf"\b(?:he|hemos|ha|han|hube)\s+(?:\w+\s+){{0,2}}?{_PARTICIPLE['es']}\b"
        rf"|\b(?:fue|fueron)\s+{_PARTICIPLE['es']}\b"
        rf"|\b(?:(?:ya|ahora)\s+(?:está|están|queda|quedan)|(?:está|están|queda|quedan)\s+(?:ya|ahora))"
        rf"\s+{_PARTICIPLE['es']}\b"
        r"|^aquí (?:está|están|tiene|tienes)\b",
        re.IGNORECASE,
    ),
    "fr": re.compile(
        rf"\b(?:j[\u2019']ai|nous avons|on a|a|ont|avons)\s+(?:\w+\s+){{0,2}}?{_PARTICIPLE['fr']}\b"
        rf"|\b(?:a|ont) été\b|\b(?:est|sont) (?:maintenant|désormais|déjà) {_PARTICIPLE['fr']}\b"
        r"|^(?:voici|voilà)\b",
        re.IGNORECASE,
    ),
    "de": re.compile(
        r"\b(?:habe|haben|hat|hab|wurde|wurden)\b[^.!?]*?\b(?:\w*ge\w+(?:t|en)|\w+iert)\b"
        r"|\b(?:ist|sind)\s+(?:jetzt|nun|bereits|schon)\b[^.!?]*?\b(?:\w*ge\w+(?:t|en)|\w+iert)\b"
        r"|^hier (?:ist|sind)\b",
        re.IGNORECASE,
    ),
    "pt": re.compile(
        rf"\b(?:tenho|temos|tem|têm)\s+(?:\w+\s+){{0,2}}?{_PARTICIPLE['pt']}\b"
        rf"|\b(?:foi|foram)\s+{_PARTICIPLE['pt']}\b"
        rf"|\b(?:(?:já|agora)\s+(?:está|estão|fica|ficam)|(?:está|estão|fica|ficam)\s+(?:já|agora))"
        rf"\s+{_PARTICIPLE['pt']}\b"
        r"|\b\w{3,}ei\b|\b(?:já|acabei de|acabamos de)\s+\w+(?:ei|amos|emos|imos)\b"
        r"|^aqui (?:está|estão)\b",
        re.IGNORECASE,
    ),
}
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
WORD = re.compile(r"[a-z]+")
STOP_WORDS = frozenset(
    ["a", "an", "the", "and", "or", "of", "to", "for", "with", "in", "on", "by", "our", "your", "their", "its", "this", "that", "is", "are", "be", "as", "it", "customer", "customers", "provide", "provides", "information", "function", "marks"]
)


def _keywords(text: str) -> set[str]:
    return {word for word in WORD.findall(text.lower().replace("_", " ")) if word not in STOP_WORDS}


def claims(text: str, language: str = "en") -> list[str]:
    """The sentences of a message in ``language`` (a key of CLAIMS) that report an action as done."""
    claim = CLAIMS[language]
    return [sentence for sentence in SENTENCE.split(text) if claim.search(sentence.strip())]


def unbacked_claims(text: str, functions: Iterable[Function], called: set[str]) -> list[str]:
    """Claims in ``text`` that no function called this turn backs."""
    keywords = {function.name: _keywords(f"{function.name} {function.purpose}") for function in functions}
    unbacked = []
    for sentence in claims(text):
        words = _keywords(sentence)
        backing = {name for name, known in keywords.items() if words & known}
        if not backing & called:
            unbacked.append(sentence)
    return unbacked
