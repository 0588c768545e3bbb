"""Which part of a prompt each shield reads.

- ``jailbreak`` reads what users and the system say: user, system and developer messages, and a
  text completion's prompt.
- ``indirect_attack`` reads what the model is given to read on someone's behalf: tool (and
  function) results whole, and the documents a message marks as Azure asks, between
  ``<documents>`` and ``</documents>``.

A marked document is cut out of its message's jailbreak text only when the indirect attack shield
reads it: otherwise the tags would hide a jailbreak from the only shield that runs.
Assistant messages are the model's own and are read by neither.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from stockade.safety.shields.shield import Shield

DOCUMENTS = re.compile(r"<documents>(.*?)</documents>", re.IGNORECASE | re.DOTALL)
SPEAKERS = frozenset({"user", "system", "developer"})
RESULTS = frozenset({"tool", "function"})


def parts(texts: Sequence[str], roles: Sequence[str] | None, shields: frozenset[Shield]) -> dict[Shield, list[str]]:
    """The texts each of ``shields`` reads; ``roles`` are the messages' (None: one user's texts)."""
    read: dict[Shield, list[str]] = {shield: [] for shield in shields}
    cut = Shield.INDIRECT_ATTACK in shields
    for text, role in zip(texts, roles or ["user"] * len(texts), strict=True):
        if role in RESULTS:
            if cut:
                read[Shield.INDIRECT_ATTACK].append(text)
        elif role in SPEAKERS:
            if cut:
                read[Shield.INDIRECT_ATTACK] += [m.group(1) for m in DOCUMENTS.finditer(text)]
                text = DOCUMENTS.sub(" ", text)
            if Shield.JAILBREAK in shields:
                read[Shield.JAILBREAK].append(text)
    return read
