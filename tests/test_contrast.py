"""Which clauses a customer's message denies, for ruling out the branches they name."""

from __future__ import annotations

import pytest

from stockade.routines.contrast import (
    denied_clauses,
    depends_on_language,
    joined_parts,
    polarity,
    says_nothing,
    sentences,
    withdrawals,
)


@pytest.mark.parametrize(
    ("message", "denied"),
    [
        ("I meant the API, not ChatGPT Enterprise.", ["ChatGPT Enterprise"]),
        ("Not for ChatGPT Enterprise, for the API.", ["for ChatGPT Enterprise"]),
        ("not the API but Enterprise", ["the API"]),
        ("We don't use ChatGPT Enterprise; it's the API.", ["We do use ChatGPT Enterprise"]),
        ("We don\u2019t use Enterprise, the API", ["We do use Enterprise"]),  # a typographic apostrophe
    ],
)
def test_a_contrast_denies_its_negated_clause_without_the_negation(message: str, denied: list[str]) -> None:
    assert denied_clauses(message) == denied


@pytest.mark.parametrize(
    ("message", "denied"),
    [
        ("The API rather than ChatGPT Enterprise", ["ChatGPT Enterprise"]),
        ("ChatGPT Enterprise instead of the API", ["the API"]),
    ],
)
def test_rather_than_and_instead_of_deny_what_follows_them(message: str, denied: list[str]) -> None:
    assert denied_clauses(message) == denied


def test_each_of_denied_alternatives_is_denied() -> None:
    assert denied_clauses("Neither, not the API and not Enterprise") == ["the API", "Enterprise"]


@pytest.mark.parametrize(
    ("message", "denied"),
    [
        ("Nobody here logs into ChatGPT Enterprise; our app calls the API.", ["here logs into ChatGPT Enterprise"]),
        ("It's the API. None of the nurses have Enterprise seats.", ["of the nurses have Enterprise seats"]),
        ("La API. Ninguno de nosotros usa Enterprise", ["de nosotros usa Enterprise"]),
        ("Niemand bei uns nutzt Enterprise, nur die API", ["bei uns nutzt Enterprise"]),
        ("Ninguém aqui usa Enterprise, só a API", ["aqui usa Enterprise"]),
        ("Aucun employé n'a Enterprise, c'est l'API", ["employé a Enterprise"]),
        ("The chat seats for the nurses. Nothing developer-facing.", ["developer-facing"]),
    ],
)
def test_a_clause_that_says_nobody_none_or_nothing_is_denied(message: str, denied: list[str]) -> None:
    assert denied_clauses(message) == denied


@pytest.mark.parametrize(
    "message", ["What if we're not approved?", "I don't need anything else", "not now", "Don't."]
)
def test_a_message_that_is_all_denial_is_left_whole(message: str) -> None:
    assert denied_clauses(message) == []


@pytest.mark.parametrize("message", ["For the API.", "Actually, it's for ChatGPT Enterprise instead."])
def test_a_message_without_negation_denies_nothing(message: str) -> None:
    assert denied_clauses(message) == []


# -- taking back what came first ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("message", "withdrawn", "standing"),
    [
        ("For the API... actually no, sorry, it's for ChatGPT Enterprise.", "For the API... actually no", "it's for ChatGPT Enterprise"),
        ("ChatGPT Enterprise. Scratch that, the API.", "ChatGPT Enterprise", "the API"),
        ("the api no wait enterprise", "the api no", "enterprise"),
        ("The API, no, Enterprise", "The API", "Enterprise"),
        ("Para ChatGPT Enterprise, perdón, quiero decir para la API.", "Para ChatGPT Enterprise, perdón", "para la API"),
        ("Pour l'API, enfin non, en fait pour ChatGPT Enterprise", "Pour l'API, enfin non", "pour ChatGPT Enterprise"),
        ("Für die API, ich meine für ChatGPT Enterprise", "Für die API", "für ChatGPT Enterprise"),
        ("Para a API, ou melhor, para o ChatGPT Enterprise", "Para a API", "para o ChatGPT Enterprise"),
        ("Per l'API, anzi no, per ChatGPT Enterprise", "Per l'API, anzi", "per ChatGPT Enterprise"),
        ("Voor de API, nee wacht, voor ChatGPT Enterprise", "Voor de API, nee", "voor ChatGPT Enterprise"),
        ("API actualy its enterprise", "API", "its enterprise"),  # a misspelt marker
    ],
)
def test_the_last_stated_choice_stands_after_a_correction(message: str, withdrawn: str, standing: str) -> None:
    assert withdrawals(message)[0] == (withdrawn, standing)


def test_each_withdrawing_word_may_be_the_correction_the_last_first() -> None:
    assert withdrawals("The API. Actually no, it's Enterprise, sorry for the confusion.") == [
        ("The API. Actually no, it's Enterprise", "for the confusion"),
        ("The API. Actually", "it's Enterprise, sorry for the confusion"),
        ("The API", "no, it's Enterprise, sorry for the confusion"),
    ]


@pytest.mark.parametrize(
    "message",
    [
        "Actually, it's for ChatGPT Enterprise instead.",  # nothing before the marker to take back
        "It's for the API, sorry.",  # nothing after it
        "For the API. Actually, we also need it for Enterprise.",  # an addition, not a correction
        "For the API.",
    ],
)
def test_a_message_that_takes_nothing_back_has_no_withdrawal(message: str) -> None:
    assert withdrawals(message) == []


# -- joining two needs --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("message", "parts"),
    [
        ("For the API and for ChatGPT Enterprise.", ["For the API", "for ChatGPT Enterprise"]),
        ("Les deux : l'API et ChatGPT Enterprise", ["Les deux", "l'API", "ChatGPT Enterprise"]),
        ("la API y también ChatGPT Enterprise", ["la API", "también ChatGPT Enterprise"]),
        ("api for the portal + enterprise seats for HR", ["api for the portal", "enterprise seats for HR"]),
        ("Entrambi: l'API ed Enterprise", ["Entrambi", "l'API", "Enterprise"]),
        ("Allebei: de API, en ook Enterprise", ["Allebei", "de API", "en ook Enterprise"]),
        ("Die API, außerdem Enterprise", ["Die API", "außerdem Enterprise"]),
        ("The API and Enterprise, not the old plan", ["The API", "Enterprise"]),
    ],
)
def test_a_message_that_joins_needs_is_split_into_its_parts(message: str, parts: list[str]) -> None:
    assert joined_parts(message) == parts


@pytest.mark.parametrize(
    "message", ["For the API.", "I meant the API, not ChatGPT Enterprise.", "Not both, only the API."]
)
def test_a_message_that_joins_nothing_has_no_parts(message: str) -> None:
    assert joined_parts(message) == []


@pytest.mark.parametrize(
    ("message", "denied"),
    [("Para la API, no para ChatGPT Enterprise", ["para ChatGPT Enterprise"]),
     ("Per ChatGPT Enterprise, non per l'API", ["per l'API"])],
)
def test_a_contrast_in_another_language_denies_its_negated_clause(message: str, denied: list[str]) -> None:
    assert denied_clauses(message) == denied


@pytest.mark.parametrize(
    "message", ["A API no nosso aplicativo, e o Enterprise na equipe", "Usamos a API no hospital"]
)
def test_in_portuguese_no_is_in_the_and_denies_nothing(message: str) -> None:
    assert denied_clauses(message, "pt") == []


def test_in_portuguese_a_part_with_no_in_it_is_still_a_part() -> None:
    parts = joined_parts("Os dois: a API no nosso aplicativo e o Enterprise", "pt")
    assert parts == ["Os dois", "a API no nosso aplicativo", "o Enterprise"]


def test_in_any_other_language_no_denies() -> None:
    assert denied_clauses("For the API, no Enterprise seats", "en") == ["Enterprise seats"]
    assert denied_clauses("For the API, no Enterprise seats") == ["Enterprise seats"]


def test_in_dutch_en_joins_two_needs() -> None:
    parts = joined_parts("Allebei: de API voor de app en Enterprise voor het personeel", "nl")
    assert parts == ["Allebei", "de API voor de app", "Enterprise voor het personeel"]


def test_in_spanish_en_joins_nothing() -> None:
    assert joined_parts("La API, la usamos en nuestra aplicación", "es") == []


@pytest.mark.parametrize(("message", "depends"), [
    ("a API no nosso aplicativo", True), ("No thanks", True), ("de API en Enterprise", True),
    ("For the API.", False), ("Não, obrigado", False),
])
def test_a_message_needs_its_language_only_for_a_word_whose_role_depends_on_it(message: str, depends: bool) -> None:
    assert depends_on_language(message) is depends


@pytest.mark.parametrize(("message", "said"), [
    ("ok. enterprise.", ["ok", "enterprise"]),
    ("Good to know! It's the API, for our lab.", ["Good to know", "It's the API, for our lab"]),
    ("For the API", ["For the API"]),
])
def test_a_message_is_taken_apart_into_its_sentences(message: str, said: list[str]) -> None:
    assert sentences(message) == said


# -- a yes/no reply's answer ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("message", "answer"),
    [("Nope, all sorted", "no"), ("nah im good", "no"), ("Nein danke", "no"), ("Não, tudo certo", "no"),
     ("Yes, one thing", "yes"), ("Sí, una cosa más", "yes"), ("Oui, encore une question", "yes"),
     ("Yes, nothing urgent though", "yes")],
)
def test_a_reply_that_opens_with_yes_or_no_answers_so(message: str, answer: str) -> None:
    assert polarity(message) == answer


@pytest.mark.parametrize(
    "message", ["Nothing more", "Right, nothing else from me", "Vale, nada más", "Gut, sonst nichts", "Perfetto, niente altro"]
)
def test_a_reply_that_says_there_is_nothing_answers_no(message: str) -> None:
    assert polarity(message) == "no"


@pytest.mark.parametrize("message", ["That's all", "k", "...", ""])
def test_a_reply_that_gives_no_answer_in_its_words_has_no_polarity(message: str) -> None:
    assert polarity(message) is None


@pytest.mark.parametrize(("message", "nothing"), [
    ("nada más, gracias", True), ("Passt, nichts mehr", True), ("Yes, nothing urgent though", False),
    ("No wait, one more thing", False), ("Great, no more questions", True), ("None, thanks", True),
])
def test_a_reply_says_nothing_when_it_holds_a_word_for_none_and_opens_with_no_yes(message: str, nothing: bool) -> None:
    assert says_nothing(message) is nothing
