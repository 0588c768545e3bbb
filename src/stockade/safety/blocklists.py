"""Custom blocklists and the profanity list: exact terms and regular expressions, compiled once
per list and matched with a time limit.

Exact terms match case-insensitively where they stand as whole words (no letter, digit or
underscore on either side). Regular expressions match as written, case-insensitively. A pattern
is checked when it is added: it must compile and stay under ``MAX_PATTERN_CHARS``; every search
runs under the ``regex`` module's timeout, so that a pattern with catastrophic backtracking makes
the filter fail (closed, unless the policy says otherwise) instead of holding a worker.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import regex

MAX_TERM_CHARS = 100
MAX_PATTERN_CHARS = 200
MAX_ITEMS = 10_000  # per list, as Azure's blocklists
MATCH_TIMEOUT_SECONDS = 0.05
# How much of a streamed completion is held back when a list has a regular expression, whose
# matches have no fixed length: a match longer than this may be partly sent before it is caught.
REGEX_TAIL_CHARS = 256
PROFANITY_FILE = "profanity.txt"


class ItemKind(enum.StrEnum):
    EXACT = "exact"
    REGEX = "regex"


def check_item(kind: ItemKind, pattern: str) -> str | None:
    """Why ``pattern`` cannot be a blocklist item, or None if it can."""
    if not pattern.strip():
        return "a blocklist item needs some text"
    if kind is ItemKind.EXACT:
        if len(pattern) > MAX_TERM_CHARS:
            return f"an exact term has at most {MAX_TERM_CHARS} characters"
        return None
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"a regular expression has at most {MAX_PATTERN_CHARS} characters"
    try:
        compiled = regex.compile(pattern, regex.IGNORECASE)
    except regex.error as exc:
        return f"not a valid regular expression: {exc}"
    if compiled.search("", timeout=MATCH_TIMEOUT_SECONDS) is not None:
        return "this regular expression matches empty text, so it would block everything"
    return None


# The two characters that `regex`'s case-insensitive matching takes for an "i" (or "I") but
# str.casefold() does not; every other character it matches to a letter or digit casefolds alike
# (checked over all of Unicode).
_TURKISH_I = str.maketrans({"\u0130": "i", "\u0131": "i"})


def _folded(text: str) -> str:
    """``text`` folded so that a term the case-insensitive match would find is a substring."""
    return text.translate(_TURKISH_I).casefold()


class Matcher:
    """Exact terms and regular expressions, searched for in a text."""

    def __init__(self, terms: Iterable[str], patterns: Iterable[str]) -> None:
        unique = sorted({term.strip() for term in terms if term.strip()}, key=len, reverse=True)
        self._patterns = [regex.compile(p, regex.IGNORECASE) for p in patterns]
        # Most texts hold none of the terms: a substring test per term (str's own search) says so
        # several times faster than the alternation, which tries every term at every position.
        self._folded_terms = tuple(_folded(term) for term in unique)
        self._terms = (
            regex.compile(rf"(?<!\w)(?:{'|'.join(map(regex.escape, unique))})(?!\w)", regex.IGNORECASE)
            if unique else None
        )
        longest = len(unique[0]) if unique else 0
        # A match ending at the very end of unfinished text may still grow (or stop being a whole
        # word), so it is decided only once more text, or the end, has come.
        self.tail = REGEX_TAIL_CHARS if self._patterns else longest
        # A user's pattern may take up to the timeout on a hostile text: callers match such lists
        # off the event loop, and the search lets go of the GIL meanwhile (``concurrent``).
        self.has_patterns = bool(self._patterns)

    def found(self, text: str, *, final: bool = True) -> bool:
        patterns = self._patterns
        if self._terms is not None:
            folded = _folded(text)
            if any(term in folded for term in self._folded_terms):
                patterns = [self._terms, *patterns]
        for pattern in patterns:
            for match in pattern.finditer(text, timeout=MATCH_TIMEOUT_SECONDS, concurrent=True):
                if final or match.end() < len(text):
                    return True
        return False


@dataclass(frozen=True, slots=True)
class CompiledBlocklist:
    name: str
    matcher: Matcher


@functools.lru_cache(maxsize=256)
def compile_blocklist(name: str, items: tuple[tuple[str, str], ...]) -> CompiledBlocklist:
    """Keyed by the list's contents: a store re-read that changed something else compiles
    nothing again."""
    terms = [pattern for kind, pattern in items if kind == ItemKind.EXACT]
    patterns = [pattern for kind, pattern in items if kind == ItemKind.REGEX]
    return CompiledBlocklist(name, Matcher(terms, patterns))


def profanity_terms() -> Sequence[str]:
    """The built-in list: one term a line, ``#`` starts a comment (see docs/safety.md)."""
    text = resources.files("stockade.safety").joinpath(PROFANITY_FILE).read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


@functools.cache
def profanity() -> Matcher:
    return Matcher(profanity_terms(), ())
