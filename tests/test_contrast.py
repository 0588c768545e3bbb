"""Which clauses a customer's message denies, for ruling out the branches they name."""

from __future__ import annotations

import pytest

from stockade.routines.contrast import denied_clauses


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
    "message", ["What if we're not approved?", "I don't need anything else", "not now", "Don't."]
)
def test_a_message_that_is_all_denial_is_left_whole(message: str) -> None:
    assert denied_clauses(message) == []


@pytest.mark.parametrize("message", ["For the API.", "Actually, it's for ChatGPT Enterprise instead."])
def test_a_message_without_negation_denies_nothing(message: str) -> None:
    assert denied_clauses(message) == []
