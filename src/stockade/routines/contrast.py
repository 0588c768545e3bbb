"""What a customer says their answer is not, what they take back, and what they join together.

Sentence embeddings hardly see negation: "I meant the API, not ChatGPT Enterprise" lies nearer
the Enterprise examples than the API ones, because it names Enterprise in full. A message that
sets clauses against each other ("A, not B", "not B but A", "A rather than B", "we don't use B;
it's A") is therefore split, and its denied clauses are returned with the negation taken out, so
that the classifier can rule out the branches they clearly name.

Only contrasts count: a message that is all one negated clause ("What if we're not approved?",
"I don't need anything else") is left whole, since there the negation is the answer.

A customer who corrects themself within one message ("the API… actually no, sorry, it's
Enterprise") withdraws what came before the correction: the last stated choice stands. And a
customer who joins two needs ("the API and Enterprise", "les deux") may need two branches at once,
so the joined parts are returned to be classified each on its own.

The markers below are the discourse markers by which people take back or join what they said, in
the languages the held-out evaluation covers (English, Spanish, French, German, Portuguese,
Italian, Dutch),
compared without case or accents. They are words of each language, not phrasings of a test set.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Literal

_CLAUSE_BREAK = re.compile(r"[,;:.!?\u2026\u2014\u2013]+|\s-\s|\bbut\b|\bpero\b|\bmais\b|\baber\b|\bmas\b|\bma\b|\bmaar\b", re.IGNORECASE)
_INSTEAD = re.compile(
    r"\b(?:rather than|instead of|en lugar de|en vez de|au lieu de|plut[o\u00f4]t que|statt|anstatt|"
    r"em vez de|ao inv[e\u00e9]s de|invece di|anzich[e\u00e9]|piuttosto che|in plaats van)\b", re.IGNORECASE,
)
# Negating words, and the pronouns and determiners that say nobody, none or nothing: "Nobody
# here uses Enterprise" denies as "We don't use Enterprise" does.
_NEGATIONS = (
    r"not|never|nunca|pas|jamais|nicht|kein|keine|keinen|keiner|nie|n[a\u00e3]o|non|mai|niet|geen|nooit|"
    r"none|nobody|nadie|ningun|ning\u00fan|ninguno|ninguna|aucun|aucune|personne ne|niemand|"
    r"ningu[e\u00e9]m|nenhum|nenhuma|nessuno|nessuna|nothing|nada|rien|nichts|niente|nulla|niets"
)
_ELIDED_NEGATION = r"|n[\u2019']t\b|\bn[\u2019']"
_NEGATION = re.compile(rf"\b(?:no|{_NEGATIONS})\b{_ELIDED_NEGATION}", re.IGNORECASE)
_NEGATION_IN_PORTUGUESE = re.compile(rf"\b(?:{_NEGATIONS})\b{_ELIDED_NEGATION}", re.IGNORECASE)
# Words whose role depends on the message's language, which is detected only when one occurs:
# "no" denies in English, Spanish and Italian, but is Portuguese for "in the" (em + o: "a API no
# nosso aplicativo"); "en" is Dutch for "and", but Spanish and French for "in" ("la usamos en
# nuestra aplicación").
_DEPENDS_ON_LANGUAGE = re.compile(r"\b(?:no|en)\b", re.IGNORECASE)
_ALTERNATIVES = re.compile(r"\b(?:and|or|y|o|et|ou|und|oder|e)\b", re.IGNORECASE)
_WORD = re.compile(r"\w")

# Taking back what came before: "actually", "sorry, I mean", "no wait", "scratch that", …
_WITHDRAWING = (
    "actually", "i mean", "i meant", "sorry", "wait", "scratch that", "strike that", "correction",
    "my mistake", "my bad", "i misspoke", "on second thought", "or rather", "let me correct",
    "oops", "make that",
    "en realidad", "perdon", "perdona", "disculpa", "disculpe", "quiero decir", "quise decir",
    "mejor dicho", "espera", "me equivoque", "corrijo", "pensandolo bien", "o sea",
    "en fait", "pardon", "desole", "desolee", "je veux dire", "je voulais dire", "ou plutot",
    "attendez", "attends", "je me suis trompe", "je me suis trompee", "a vrai dire",
    "eigentlich", "ich meine", "ich meinte", "entschuldigung", "warte", "korrektur",
    "vergiss das", "besser gesagt", "genauer gesagt", "ich habe mich vertan",
    "ich hab mich vertan", "ich habe mich geirrt",
    "na verdade", "desculpa", "desculpe", "quer dizer", "quero dizer", "ou melhor", "espere",
    "me enganei", "corrigindo", "pensando bem",
    "in realta", "scusa", "scusate", "scusi", "volevo dire", "voglio dire", "cioe", "anzi",
    "aspetta", "aspetti", "mi sono sbagliato", "mi sono sbagliata", "correggo", "ripensandoci",
    "o meglio",
    "eigenlijk", "ik bedoel", "ik bedoelde", "wacht", "correctie", "ik vergiste me", "beter gezegd",
    "of liever",
)
# A bare "no" between two clauses ("the API, no, Enterprise") takes back the first as well.
_BARE_NO = re.compile(r"(?:^|[,;.!?\u2014\u2013]|\s)\s*(?:no|non|nein|nao|nee)\s*[,;.!?\u2014\u2013]+", re.IGNORECASE)
# Adding to what came before: what follows a marker is then not a correction.
_ADDING = (
    "also", "too", "as well", "both", "in addition", "additionally", "plus", "tambien", "ademas",
    "ambos", "ambas", "los dos", "las dos", "aussi", "egalement", "les deux", "en plus", "auch",
    "ebenfalls", "beide", "beides", "zusatzlich", "ausserdem", "außerdem", "tambem", "alem disso", "os dois",
    "as duas", "anche", "pure", "entrambi", "entrambe", "tutti e due", "tutte e due", "inoltre",
    "in piu", "ook", "allebei", "alle twee", "bovendien", "daarnaast",
)
_SENTENCE_END = re.compile(r"[.!?;\u2026]+(?:\s+|$)")
_STATEMENT_BREAK = re.compile(r":|\s[-\u2014\u2013]\s|[\u2014\u2013]")
# The words a reply to a yes/no question opens with when it answers it outright.
_OPENING_NO = ("no", "nope", "nop", "nah", "nein", "nee", "non", "nao", "nada", "negative")
_OPENING_YES = ("yes", "yeah", "yep", "yup", "yess", "si", "oui", "ja", "jawohl", "sim", "claro")
# Words that say "none": a reply holding one answers "anything else?" with no ("Passt, sonst nichts").
_NOTHING = frozenset(("nothing", "none", "nada", "rien", "nichts", "nix", "niente", "nulla", "niets", "niks"))
_NOTHING_MORE = re.compile(r"\bno (?:more|further)\b")  # English says "none" with two words too
_JOINS = r"and|as well as|plus|y|e|ed|et|und|sowie"
_JOINING = re.compile(rf"\b(?:{_JOINS})\b|[&+]", re.IGNORECASE)
_JOINING_IN_DUTCH = re.compile(rf"\b(?:{_JOINS}|en)\b|[&+]", re.IGNORECASE)
_FUZZY = 0.85  # how alike a misspelt one-word marker must be ("actualy", "acutally")


def _fold(text: str) -> str:
    """Lower case without accents, one character for each of ``text``'s, so positions carry over."""
    return "".join(unicodedata.normalize("NFKD", c)[0] if c.strip() else " " for c in text.lower())


def _phrases(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")\b")


_WITHDRAWING_RE = _phrases(_WITHDRAWING)
_ADDING_RE = _phrases(_ADDING)
_ONE_WORD_MARKERS = tuple(w for w in _WITHDRAWING if " " not in w and len(w) >= 6)


def _markers(folded: str) -> list[tuple[int, int]]:
    """Where withdrawing markers stand in ``folded``: exact, bare "no"s, and misspelt one-word ones."""
    found = [(m.start(), m.end()) for m in _WITHDRAWING_RE.finditer(folded)]
    found += [(m.start(), m.end()) for m in _BARE_NO.finditer(folded)]
    misspelt = {word for word in set(re.findall(r"\w{6,}", folded)) if _misspelt_marker(word)}
    found += [(m.start(), m.end()) for m in re.finditer(r"\w{6,}", folded) if m.group() in misspelt]
    return sorted(set(found))


def _misspelt_marker(word: str) -> bool:
    # Cheap bounds first: a message may hold hundreds of words, and this runs in the event loop.
    return any(
        abs(len(word) - len(marker)) <= 2 and word[0] == marker[0]
        and (matcher := difflib.SequenceMatcher(None, word, marker)).quick_ratio() >= _FUZZY
        and matcher.ratio() >= _FUZZY
        for marker in _ONE_WORD_MARKERS
    )


def withdrawals(message: str) -> list[tuple[str, str]]:
    """``(withdrawn, standing)`` for each way the message may take back what it first said, split
    at a withdrawing marker that has words on both sides, the last marker first; none after an
    addition. In "The API. Actually, it's Enterprise, sorry for that", the correction is at
    "actually", not at the apology."""
    folded = _fold(message)
    last_addition = _last_addition(folded)
    found = []
    for start, end in reversed(_markers(folded)):
        if last_addition >= end:
            break  # "…, actually we also need…" adds a need; it takes nothing back
        withdrawn, standing = message[:start], message[end:]
        if not (_WORD.search(withdrawn) and _WORD.search(standing)):
            continue
        found.append((withdrawn.strip(" ,;:.!?-\u2014\u2013\u2026"), standing.strip(" ,;:.!?-\u2014\u2013\u2026")))
    return found


def withdraws(text: str) -> bool:
    """Whether ``text`` takes back something said before it: it holds a withdrawing marker that
    no adding one follows ("Sorry, wrong one", but not "Sorry, we also need…")."""
    folded = _fold(text)
    last_addition = _last_addition(folded)
    return any(start > last_addition for start, _ in _markers(folded))


def _last_addition(folded: str) -> int:
    """Where the last adding marker in ``folded`` starts, or -1."""
    return max((match.start() for match in _ADDING_RE.finditer(folded)), default=-1)


def adds(text: str) -> bool:
    """Whether ``text`` adds to what came before it ("…as well", "both", "también")."""
    return bool(_ADDING_RE.search(_fold(text)))


def negated(text: str, language: str | None = None) -> bool:
    """Whether ``text`` (in ``language``, if known) holds a negation."""
    return bool(_negation(language).search(text))


def polarity(message: str) -> Literal["yes", "no"] | None:
    """"no" or "yes" when the message answers a yes/no question so: by its opening word ("No, con
    eso me basta", "nop", "Ja, noch eine Frage"), else "no" when it says there is nothing ("Got it,
    nothing else"); None otherwise."""
    words = re.findall(r"\w+", _fold(message))
    if not words:
        return None
    if words[0] in _OPENING_NO:
        return "no"
    if words[0] in _OPENING_YES:
        return "yes"
    return "no" if says_nothing(message) else None


def says_nothing(message: str) -> bool:
    """Whether the message says there is nothing ("nada más", "nichts mehr", "nothing else") and
    does not open with a yes."""
    words = re.findall(r"\w+", _fold(message))
    return bool(words) and words[0] not in _OPENING_YES and (
        bool(_NOTHING.intersection(words)) or bool(_NOTHING_MORE.search(" ".join(words)))
    )


def depends_on_language(message: str) -> bool:
    """Whether the message holds a word whose role depends on its language ("no", "en"), so that
    its language is worth detecting."""
    return bool(_DEPENDS_ON_LANGUAGE.search(message))


def _negation(language: str | None) -> re.Pattern[str]:
    return _NEGATION_IN_PORTUGUESE if language == "pt" else _NEGATION


def _joining(language: str | None) -> re.Pattern[str]:
    return _JOINING_IN_DUTCH if language == "nl" else _JOINING


def asks(message: str) -> bool:
    """Whether the message asks a question."""
    return "?" in message


def sentences(message: str) -> list[str]:
    """The message's sentences, without their closing punctuation."""
    return [each.strip() for each in _SENTENCE_END.split(message) if _WORD.search(each)]


def statements(message: str) -> list[str]:
    """The message's sentences, each taken apart further where a colon or a dash sets one
    statement after another ("Wrong one, sorry: it's Enterprise")."""
    return [each.strip() for sentence in sentences(message) for each in _STATEMENT_BREAK.split(sentence)
            if _WORD.search(each)]


def joined_parts(message: str, language: str | None = None) -> list[str]:
    """The parts of the sentences that join several things ("the API and Enterprise", "both: …"),
    each to be classified on its own; empty unless a sentence joins. Sentences are taken apart
    one by one: a story that names one product in one sentence and another in the next
    ("We looked at Enterprise last year. Now we build on the API.") joins nothing. A negated
    part ("not both", "not the old plan") joins nothing either."""
    joining = _joining(language)
    parts = []
    for sentence in _SENTENCE_END.split(message):
        folded = _fold(sentence)
        if joining.search(folded) or _ADDING_RE.search(folded):
            parts += [p.strip() for piece in _CLAUSE_BREAK.split(sentence) for p in joining.split(piece)]
    negation = _negation(language)
    parts = [part for part in parts if _WORD.search(part) and not negation.search(part)]
    return parts if len(parts) > 1 else []


def denied_clauses(message: str, language: str | None = None) -> list[str]:
    """The clauses ``message`` (in ``language``, if known) denies, without their negation; empty
    unless it contrasts."""
    negation = _negation(language)
    clauses: list[tuple[str, bool]] = []  # (clause, denied by a "rather than" before it)
    for part in _CLAUSE_BREAK.split(message):
        head, *instead = _INSTEAD.split(part)
        clauses += [(head, False), *((tail, True) for tail in instead)]
    clauses = [(clause.strip(), after) for clause, after in clauses if _WORD.search(clause)]
    negated = [clause for clause, after_instead in clauses if after_instead or negation.search(clause)]
    if not negated or len(negated) == len(clauses):  # no contrast: nothing affirmed, or nothing denied
        return []
    # "not the API or Enterprise" denies each of them.
    denied = [" ".join(negation.sub(" ", each).split()) for clause in negated
              for each in _ALTERNATIVES.split(clause)]
    return [clause for clause in denied if _WORD.search(clause)]
