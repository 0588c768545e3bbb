"""The agent never claims an action it did not take."""

from __future__ import annotations

from stockade.routines.claims import claims, unbacked_claims
from stockade.routines.parser import parse_routine
from stockade.routines.service import BUILTIN_DIRECTORY

FUNCTIONS = parse_routine((BUILTIN_DIRECTORY / "baa.md").read_text(), "baa").functions.values()


def test_reports_of_done_actions_are_claims() -> None:
    assert claims("I've submitted your BAA request. It will take a day.") == ["I've submitted your BAA request."]
    assert claims("Your case has been closed.") == ["Your case has been closed."]
    assert claims("Here is the list of endpoints.") == ["Here is the list of endpoints."]


def test_future_and_instructions_are_not_claims() -> None:
    assert claims("Our team will respond within 1-2 business days.") == []
    assert claims("To obtain a BAA for our API, please email baa@openai.com.") == []


def test_a_claim_backed_by_a_function_called_this_turn_passes() -> None:
    text = "Thank you for contacting us. This case (abc) is now resolved."
    assert unbacked_claims(text, FUNCTIONS, {"case_resolution"}) == []


def test_the_same_claim_without_the_call_is_caught() -> None:
    text = "This case is now resolved."
    assert unbacked_claims(text, FUNCTIONS, set()) == ["This case is now resolved."]


def test_a_claim_no_function_could_back_is_always_caught() -> None:
    text = "I've emailed the signed BAA to you."
    assert unbacked_claims(text, FUNCTIONS, {"case_resolution"}) == [text]
