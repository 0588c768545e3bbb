"""A routine in Markdown becomes typed steps, branch conditions and function contracts."""

from __future__ import annotations

import pytest

from stockade.routines.model import Effect, Kind
from stockade.routines.parser import RoutineSyntaxError, parse_routine
from stockade.routines.service import BUILTIN_DIRECTORY

BAA = parse_routine((BUILTIN_DIRECTORY / "baa.md").read_text(), "baa")

PAYMENT_ROUTINE = """# Routine: Delete a payment method

1. Ask the customer: "Which card would you like to remove?"

2. If the customer wants to remove their default card, then:
   - a. Call the `delete_payment_method` function.

3. Ask the customer if there is anything else you can assist with:
   - "Is there anything else I can assist you with today?"

4. Call the `case_resolution` function.

---

**Function Definitions:**

- `delete_payment_method`:
  - **Purpose**: Deletes the customer's payment method.
  - **Parameters**:
    - `card_last_four` (string): The card's last four digits.
    - `reason` (string, optional): Why it is removed.
- `case_resolution`:
  - **Purpose**: Finalizes the case and marks it as resolved.
  - **Parameters**: None.
"""


def test_baa_steps_have_the_routines_numbers_and_kinds() -> None:
    assert [(step.id, step.kind) for step in BAA.steps] == [
        ("1a", Kind.ASK), ("2", Kind.BRANCH), ("3", Kind.BRANCH), ("4", Kind.BRANCH),
        ("5.1", Kind.ASK), ("6", Kind.RESOLVE),
    ]


def test_branch_steps_keep_their_letters_in_the_routines_order() -> None:
    api = BAA.step("2")
    assert [step.id for step in api.steps] == ["2a", "2b", "2c", "2d", "2e", "2i", "2f"]
    assert api.steps[5].function == "provide_list_of_zero_retention_endpoints"


def test_quoted_messages_are_kept_word_for_word() -> None:
    assert BAA.step("2b").text == "Our team will respond within 1-2 business days."
    assert BAA.step("4.2").text.startswith("In that case, we'll provide feedback")


def test_branch_conditions_are_read_from_if_then_lines() -> None:
    assert BAA.step("2").condition == "the customer requires a BAA for the API"
    assert BAA.step("3").condition == "the customer requires a BAA for ChatGPT Enterprise"


def test_a_condition_on_what_the_customer_says_is_observable() -> None:
    assert BAA.step("2").observable


def test_approval_is_not_observable_in_the_conversation() -> None:
    assert not BAA.step("4").observable


def test_functions_without_parameters_take_an_empty_object() -> None:
    contract = BAA.functions["provide_sales_contact_information"]
    assert contract.parameters == {
        "type": "object", "properties": {}, "required": [], "additionalProperties": False,
    }


def test_provide_functions_read_and_case_resolution_writes_without_confirmation() -> None:
    assert BAA.functions["provide_list_of_zero_retention_endpoints"].effect is Effect.READ
    resolution = BAA.functions["case_resolution"]
    assert (resolution.effect, resolution.confirm) == (Effect.WRITE, False)


def test_parameters_become_json_schema_with_types_and_required() -> None:
    routine = parse_routine(PAYMENT_ROUTINE, "payment")
    contract = routine.functions["delete_payment_method"]
    assert contract.parameters["properties"]["card_last_four"]["type"] == "string"
    assert contract.parameters["required"] == ["card_last_four"]


def test_a_write_on_the_customers_behalf_needs_confirmation() -> None:
    routine = parse_routine(PAYMENT_ROUTINE, "payment")
    contract = routine.functions["delete_payment_method"]
    assert (contract.effect, contract.confirm) == (Effect.WRITE, True)


def test_effect_and_confirmation_can_be_declared() -> None:
    declared = PAYMENT_ROUTINE.replace(
        "  - **Purpose**: Deletes", "  - **Effect**: write\n  - **Confirmation**: not required\n  - **Purpose**: Deletes"
    )
    contract = parse_routine(declared, "payment").functions["delete_payment_method"]
    assert contract.confirm is False


def test_the_version_changes_with_the_text() -> None:
    assert parse_routine(PAYMENT_ROUTINE + "\n", "payment").version != parse_routine(PAYMENT_ROUTINE, "payment").version


def test_a_document_without_numbered_steps_is_refused() -> None:
    with pytest.raises(RoutineSyntaxError, match="no numbered steps"):
        parse_routine("# Just an article\n\nSome prose.\n", "article")


def test_a_malformed_parameter_names_the_function() -> None:
    broken = PAYMENT_ROUTINE.replace("`card_last_four` (string): The card's last four digits.", "the card")
    with pytest.raises(RoutineSyntaxError, match="delete_payment_method"):
        parse_routine(broken, "payment")
