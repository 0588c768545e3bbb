"""What a customer says their answer is not.

Sentence embeddings hardly see negation: "I meant the API, not ChatGPT Enterprise" lies nearer
the Enterprise examples than the API ones, because it names Enterprise in full. A message that
sets clauses against each other ("A, not B", "not B but A", "A rather than B", "we don't use B;
it's A") is therefore split, and its denied clauses are returned with the negation taken out, so
that the classifier can rule out the branches they clearly name.

Only contrasts count: a message that is all one negated clause ("What if we're not approved?",
"I don't need anything else") is left whole, since there the negation is the answer.
"""

from __future__ import annotations

import re

_CLAUSE_BREAK = re.compile(r"[,;:.!?]+|\bbut\b", re.IGNORECASE)
_INSTEAD = re.compile(r"\b(?:rather than|instead of)\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|never)\b|n[\u2019']t\b", re.IGNORECASE)
_ALTERNATIVES = re.compile(r"\b(?:and|or)\b", re.IGNORECASE)
_WORD = re.compile(r"\w")


def denied_clauses(message: str) -> list[str]:
    """The clauses ``message`` denies, without their negation; empty unless it contrasts."""
    clauses: list[tuple[str, bool]] = []  # (clause, denied by a "rather than" before it)
    for part in _CLAUSE_BREAK.split(message):
        head, *instead = _INSTEAD.split(part)
        clauses += [(head, False), *((tail, True) for tail in instead)]
    clauses = [(clause.strip(), after) for clause, after in clauses if _WORD.search(clause)]
    negated = [clause for clause, after_instead in clauses if after_instead or _NEGATION.search(clause)]
    if not negated or len(negated) == len(clauses):  # no contrast: nothing affirmed, or nothing denied
        return []
    # "not the API or Enterprise" denies each of them.
    denied = [" ".join(_NEGATION.sub(" ", each).split()) for clause in negated
              for each in _ALTERNATIVES.split(clause)]
    return [clause for clause in denied if _WORD.search(clause)]
