"""The language a customer writes in, for routines that reply in it.

Routines are written in English, and their quoted messages are sent word for word. A routine
named in ``routines.reply_in_customer_language`` also sends each message translated into the
customer's language, in the languages whose claims ``claims.py`` can read: a translation may
claim no more than the message it translates, and that can be checked only in a language the
claim check knows.

A chat model's translation is sent only when it is faithful by what can be checked without a
second translator: it is in the language asked for, it keeps the message's addresses, links,
paths, numbers and acronyms and adds none, and its multilingual sentence embedding lies near the
message's. Small models drift (SmolLM2-135M turned "The process is usually completed within a few
business days" into "El proceso es más corto que el cambio de la vida"); such a translation is held
back, and the customer has the routine's words.

Detection is lingua's (lingua-language-detector), among the languages the multilingual
embeddings model places, so that Italian is not read as Spanish. It answers only when one
language is clearly ahead: "ok", "k" and "vale" have none, and the conversation keeps the
language it had.
"""

from __future__ import annotations

import functools
import re

from lingua import IsoCode639_1, LanguageDetector, LanguageDetectorBuilder

ROUTINE_LANGUAGE = "en"
# The languages replies are translated into: those whose claims claims.py can read.
TRANSLATED = {"es": "Spanish", "fr": "French", "de": "German", "pt": "Portuguese"}
# The languages of Universal Sentence Encoder Multilingual v3, the classifier's embeddings model.
_DETECTED = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh")
# The languages whose markers routines/contrast.py knows: enough to tell which of them a word
# such as "no" is in, in a quarter of the memory all fifteen take (62 MB against 251).
MARKED = ("de", "en", "es", "fr", "it", "nl", "pt")
_MINIMUM_DISTANCE = 0.25  # how far ahead of the next language the chosen one must be
# Cosine similarity of a message and its translation under Universal Sentence Encoder
# Multilingual: faithful Spanish, French and German translations of the agent's messages scored
# 0.64-0.92, SmolLM2-135M's drifting ones 0.04-0.48 (docs/routines.md).
FAITHFUL = 0.55
# What a translation keeps as it is: addresses, links, paths, numbers, acronyms ("BAA", "API").
_KEPT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|https?://\S+|(?<!\w)/[\w{}/.-]+|\d+|\b[A-Z]{2,}\b")


@functools.cache
def _detector(languages: tuple[str, ...]) -> LanguageDetector:
    # Each language's models load when a message first needs them (seconds: callers run this off
    # the event loop), then a fraction of a millisecond per message. Latin script never consults the others' models.
    codes = [getattr(IsoCode639_1, code.upper()) for code in languages]
    return (
        LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
        .with_minimum_relative_distance(_MINIMUM_DISTANCE)
        .build()
    )


def detect(text: str, languages: tuple[str, ...] = _DETECTED) -> str | None:
    """The ISO 639-1 code of the one of ``languages`` (by default, all the embeddings model
    places) that ``text`` is clearly in, else None."""
    language = _detector(languages).detect_language_of(text)
    return language.iso_code_639_1.name.lower() if language is not None else None



def _kept(text: str) -> set[str]:
    return {token.rstrip(".,;:") for token in _KEPT.findall(text)}


def unfaithful(text: str, translation: str, language: str, similarity: float) -> str | None:
    """Why ``translation`` (into ``language``) of ``text`` must not be sent, or None if it may.

    ``similarity`` is the cosine similarity of the two under a multilingual embeddings model."""
    if detect(translation) not in (language, None):
        return "language"
    if _kept(text) != _kept(translation):
        return "kept"
    if similarity < FAITHFUL:
        return "meaning"
    return None
