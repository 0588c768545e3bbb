"""Putting a request's values back into the model's reply as it streams, and the policy and
management surface of PHI protection: none of it loads Presidio's model."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import App, in_process
from fake_model import CHAT_MODEL
from stockade.safety.phi.analyzer import Finding
from stockade.safety.phi.entities import DEFAULT_ENTITIES
from stockade.safety.phi.pii import callers_values
from stockade.safety.phi.restoring import Restorer
from stockade.safety.phi.substitution import Substitutions
from stockade.safety.policy import PhiMode, PhiRule, PiiRule, ShieldMode, policy_from_config


def redacting(*values: tuple[str, str]) -> Substitutions:
    substitutions = Substitutions(pseudonyms=False)
    for entity, value in values:
        substitutions.stand_in(entity, value)
    return substitutions


def streamed(restorer: Restorer, pieces: list[str]) -> list[str]:
    return [restorer.feed(piece) for piece in pieces] + [restorer.end()]


# -- stand-ins --------------------------------------------------------------------------------


def test_the_same_value_gets_the_same_placeholder_in_every_text() -> None:
    substitutions = Substitutions(pseudonyms=False)
    first = substitutions.apply("Jane Doe called.", [Finding("PERSON", 0, 8, 0.85)])
    second = substitutions.apply("Was it jane doe?", [Finding("PERSON", 7, 15, 0.85)])
    assert (first, second) == ("<PERSON_1> called.", "Was it <PERSON_1>?")


def test_different_values_get_numbered_placeholders() -> None:
    substitutions = redacting(("PERSON", "Jane Doe"), ("PERSON", "John Roe"), ("US_SSN", "345-67-8912"))
    assert set(substitutions.originals) == {"<PERSON_1>", "<PERSON_2>", "<US_SSN_1>"}


def test_a_surrogate_is_never_text_the_request_already_holds() -> None:
    # Seeded so that the first surrogate drawn is a name the prompt holds: a second is drawn.
    rng = random.Random(7)
    taken = Substitutions(pseudonyms=True, rng=random.Random(7)).stand_in("PERSON", "Jane")
    substitutions = Substitutions(pseudonyms=True, texts=[f"{taken} and Jane"], rng=rng)
    assert substitutions.stand_in("PERSON", "Jane") not in (taken, "Jane")


def test_a_surrogate_keeps_an_identifier_s_shape() -> None:
    value = Substitutions(pseudonyms=True).stand_in("MEDICAL_RECORD_NUMBER", "AB-4417203")
    assert value != "AB-4417203"
    assert [c.isdigit() for c in value] == [c.isdigit() for c in "AB-4417203"] and value[2] == "-"


def test_values_go_back_into_json_arguments_as_json() -> None:
    substitutions = redacting(("PERSON", 'Jane "JD" Doe'))
    assert substitutions.restore_json('{"name": "<PERSON_1>"}') == '{"name": "Jane \\"JD\\" Doe"}'


# -- streams ----------------------------------------------------------------------------------


def test_a_placeholder_split_across_pieces_is_sent_whole_and_restored() -> None:
    restorer = Restorer(redacting(("PERSON", "Jane Doe")))
    assert streamed(restorer, ["Hello <PERS", "ON_", "1>, welcome"]) == ["Hello ", "", "Jane Doe, welcome", ""]


def test_no_piece_of_a_placeholder_is_ever_sent() -> None:
    text = "Dear <PERSON_1>, your number <PHONE_NUMBER_1> is on file for <PERSON_1>."
    substitutions = redacting(("PERSON", "Jane Doe"), ("PHONE_NUMBER", "617-555-0143"))
    for size in range(1, 8):
        sent = streamed(Restorer(substitutions), [text[i:i + size] for i in range(0, len(text), size)])
        assert all("<" not in piece and ">" not in piece for piece in sent)
        assert "".join(sent) == "Dear Jane Doe, your number 617-555-0143 is on file for Jane Doe."


def test_a_held_start_that_never_becomes_a_placeholder_is_sent_at_the_end() -> None:
    restorer = Restorer(redacting(("PERSON", "Jane Doe")))
    assert streamed(restorer, ["a < b and <PER"]) == ["a < b and ", "<PER"]


def test_a_held_start_is_sent_once_it_cannot_be_a_placeholder() -> None:
    restorer = Restorer(redacting(("PERSON", "Jane Doe")))
    assert streamed(restorer, ["x <P", "ARIS> y"]) == ["x ", "<PARIS> y", ""]


def test_a_surrogate_at_the_end_of_a_piece_waits_for_its_word_to_end() -> None:
    substitutions = Substitutions(pseudonyms=True)
    surrogate = substitutions.stand_in("PERSON", "Jane")
    restorer = Restorer(substitutions)
    assert restorer.feed(f"Hi {surrogate}") == "Hi "
    assert restorer.feed("son, hello") == f"{surrogate}son, hello"  # another word: not replaced


# -- the caller's values in a reply (PII on completions) ----------------------------------------


def test_a_caller_s_value_is_found_in_a_reply_whatever_its_case() -> None:
    callers = callers_values(["Jane Doe", "617-555-0143"])
    assert callers is not None
    assert [m.group() for m in callers.finditer("JANE DOE called 617-555-0143.")] == ["JANE DOE", "617-555-0143"]


def test_a_short_caller_s_value_is_not_found_inside_what_the_model_wrote() -> None:
    callers = callers_values(["93"])
    assert callers is not None
    assert callers.search("call 617-555-0193") is None
    assert callers.search("she is 93 today") is not None


def test_no_values_put_back_find_nothing() -> None:
    assert callers_values([]) is None


# -- the policy -------------------------------------------------------------------------------


def test_a_policy_has_phi_protection_off_unless_it_says_otherwise() -> None:
    assert policy_from_config("p", {}).phi == PhiRule(PhiMode.OFF, DEFAULT_ENTITIES)


def test_a_policy_keeps_its_phi_entities_when_only_the_mode_changes() -> None:
    start = policy_from_config("p", {"phi": {"mode": "annotate", "entities": ["PERSON"]}})
    updated = policy_from_config("p", {"phi": {"mode": "redact"}}, start)
    assert updated.phi == PhiRule(PhiMode.REDACT, ("PERSON",))
    assert policy_from_config("p", updated.config()).phi == updated.phi


def test_a_policy_has_pii_on_completions_off_unless_it_says_otherwise() -> None:
    assert policy_from_config("p", {}).pii == PiiRule(ShieldMode.OFF, DEFAULT_ENTITIES)


def test_a_policy_keeps_its_pii_entities_when_only_the_mode_changes() -> None:
    start = policy_from_config("p", {"pii": {"mode": "annotate", "entities": ["PHONE_NUMBER"]}})
    updated = policy_from_config("p", {"pii": {"mode": "block"}}, start)
    assert updated.pii == PiiRule(ShieldMode.BLOCK, ("PHONE_NUMBER",))
    assert policy_from_config("p", updated.config()).pii == updated.pii


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with in_process(tmp_path_factory.mktemp("phi-policies"), [("chat", CHAT_MODEL, 100)]) as running:
        yield running


def test_the_cli_sets_a_policy_s_phi_mode_and_entities(app: App) -> None:
    policy = app.cli_json("content-filters", "create", "phi-cli", "--phi", "redact",
                          "--phi-entity", "PERSON", "--phi-entity", "US_SSN")
    assert isinstance(policy, dict)
    assert policy["phi"] == {"mode": "redact", "entities": ["PERSON", "US_SSN"]}


def test_the_cli_refuses_an_unknown_phi_mode(app: App) -> None:
    result = app.cli("content-filters", "create", "phi-bad", "--phi", "scramble", check=False)
    assert result.returncode != 0 and "redact" in result.stderr


@pytest.mark.parametrize("phi", [{"mode": "scramble"}, {"entities": ["SHOE_SIZE"]}, {"entities": []}])
def test_the_management_api_refuses_a_phi_setting_it_does_not_know(app: App, phi: dict[str, object]) -> None:
    response = app.http().put("/management/content-filters/phi-wrong", json={"phi": phi})
    assert response.status_code == 400
    assert response.json()["error"]["param"].startswith("phi")


def test_the_cli_sets_a_policy_s_pii_mode_and_entities(app: App) -> None:
    policy = app.cli_json("content-filters", "create", "pii-cli", "--pii", "block",
                          "--pii-entity", "PHONE_NUMBER", "--pii-entity", "US_SSN")
    assert isinstance(policy, dict)
    assert policy["pii"] == {"mode": "block", "entities": ["PHONE_NUMBER", "US_SSN"]}
    assert policy["phi"]["mode"] == "off"


def test_the_policies_table_shows_the_pii_mode(app: App) -> None:
    app.cli("content-filters", "create", "pii-table", "--pii", "annotate")
    assert "pii: annotate" in app.cli("content-filters", "show", "pii-table").stdout.splitlines()


@pytest.mark.parametrize("pii", [{"mode": "redact"}, {"entities": ["SHOE_SIZE"]}, {"entities": []}])
def test_the_management_api_refuses_a_pii_setting_it_does_not_know(app: App, pii: dict[str, object]) -> None:
    response = app.http().put("/management/content-filters/pii-wrong", json={"pii": pii})
    assert response.status_code == 400
    assert response.json()["error"]["param"].startswith("pii")


def test_a_policy_with_pii_on_completions_has_the_analyzer(tmp_path: Path) -> None:
    with in_process(tmp_path, [("chat", CHAT_MODEL, 100)]) as fresh:
        fresh.cli("content-filters", "create", "screening", "--pii", "annotate")
        assert fresh.resource.safety.phi_analyzer is not None


def test_no_analyzer_exists_until_a_policy_turns_phi_on(tmp_path: Path) -> None:
    with in_process(tmp_path, [("chat", CHAT_MODEL, 100)]) as fresh:
        assert fresh.resource.safety.phi_analyzer is None
        fresh.cli("content-filters", "create", "annotating", "--phi", "annotate")
        assert fresh.resource.safety.phi_analyzer is not None
