"""`stockade routines check`: what makes a routine impossible, or risky, to follow."""

from __future__ import annotations

from typing import Any

from stockade.config import PLACEHOLDER, RoutineSettings
from stockade.routines.checker import Severity, check, check_settings, has_errors
from stockade.routines.model import Routine
from stockade.routines.parser import parse_routine
from stockade.routines.service import BUILTIN_DIRECTORY

ROUTINE = """# Routine: Refunds

1. Ask the customer: "Was the charge made in the last 30 days?"

2. If the customer confirms the charge is recent, then:
   - a. Call the `issue_refund` function.

3. Ask the customer if there is anything else you can assist with:
   - "Is there anything else I can assist you with today?"

4. Call the `case_resolution` function.

---

**Function Definitions:**

- `issue_refund`:
  - **Purpose**: Refunds the charge.
  - **Parameters**: None.
- `case_resolution`:
  - **Purpose**: Finalizes the case and marks it as resolved.
  - **Parameters**: None.
"""


def findings_of(source: str) -> list[tuple[Severity, str | None, str]]:
    return [(f.severity, f.step, f.message) for f in check(parse_routine(source, "refunds"))]


def test_a_sound_routine_has_no_findings() -> None:
    assert findings_of(ROUTINE) == []


def test_baa_warns_only_about_the_unobservable_not_approved_branch() -> None:
    findings = [f for f in check(parse_routine((BUILTIN_DIRECTORY / "baa.md").read_text(), "baa"))
                if f.severity is not Severity.NOTE]
    assert [(f.severity, f.step) for f in findings] == [(Severity.WARNING, "4")]
    assert "the customer is not approved" in findings[0].message
    assert "when the customer asks about it" in findings[0].message


def test_branches_on_different_facts_after_one_question_are_independent() -> None:
    findings = check(parse_routine((BUILTIN_DIRECTORY / "baa.md").read_text(), "baa"))
    notes = [(f.step, f.message) for f in findings if f.severity is Severity.NOTE]
    assert notes == [("1a", "branches 2 and 3 are independent: an answer that satisfies both runs 2, then 3")]


def test_a_branch_and_its_denial_exclude_each_other() -> None:
    denied = ROUTINE.replace("3. Ask the customer if", """3. If the customer does not confirm the charge is recent, then:
   - a. Inform the customer: "Refunds cover the last 30 days only."

4. Ask the customer if""").replace("4. Call the `case_resolution`", "5. Call the `case_resolution`")
    notes = [(step, message) for severity, step, message in findings_of(denied) if severity is Severity.NOTE]
    assert notes == [("1", "branches 2 and 3 exclude each other (one denies the other's condition): "
                           "an answer takes at most one of them")]


def test_a_call_to_an_undefined_function_is_an_error() -> None:
    source = ROUTINE.replace("`issue_refund` function.", "`issue_credit` function.")
    assert (Severity.ERROR, "2a") in [(s, step) for s, step, _ in findings_of(source)]
    assert has_errors(check(parse_routine(source, "refunds")))


def test_a_function_no_step_calls_is_reported() -> None:
    source = ROUTINE.replace("- `case_resolution`:", "- `lookup_order`:\n  - **Purpose**: Finds an order.\n- `case_resolution`:")
    assert any("`lookup_order` is defined but no step calls it" in m for _, _, m in findings_of(source))


def test_a_routine_that_never_closes_its_case_is_an_error() -> None:
    source = ROUTINE.replace("4. Call the `case_resolution` function.", "4. Inform the customer: \"Goodbye.\"")
    errors = [m for s, _, m in findings_of(source) if s is Severity.ERROR]
    assert any("does not end by calling `case_resolution`" in m for m in errors)


def test_steps_after_the_case_is_closed_are_unreachable() -> None:
    source = ROUTINE.replace(
        "4. Call the `case_resolution` function.",
        '4. Call the `case_resolution` function.\n\n5. Inform the customer: "Bye."',
    )
    assert any("unreachable" in m for s, step, m in findings_of(source) if step == "5")


def test_a_branch_that_no_question_precedes_is_unreachable() -> None:
    source = ROUTINE.replace('1. Ask the customer: "Was the charge made in the last 30 days?"', '1. Inform the customer: "Hello."')
    assert any(step == "2" and "unreachable" in m for s, step, m in findings_of(source))


def test_the_customer_should_be_asked_for_anything_else_before_closing() -> None:
    source = ROUTINE.replace(
        '3. Ask the customer if there is anything else you can assist with:\n   - "Is there anything else I can assist you with today?"\n',
        '3. Inform the customer: "Thanks."\n',
    )
    assert any("anything else" in m for s, _, m in findings_of(source) if s is Severity.WARNING)


# -- what the settings leave a routine's functions without ---------------------------------------

BAA = parse_routine((BUILTIN_DIRECTORY / "baa.md").read_text(), "baa")
BAA_IMPLEMENTED = {"provide_list_of_zero_retention_endpoints", "provide_sales_contact_information", "case_resolution"}


def settings_findings(routine: Routine = BAA, implemented: set[str] = BAA_IMPLEMENTED, **settings: Any) -> list[str]:
    return [f.message for f in check_settings(routine, RoutineSettings(**settings), implemented)]


def test_an_unset_sales_contact_is_a_warning_naming_the_setting() -> None:
    [message] = settings_findings()
    assert "routines.sales_contact" in message and "not set" in message


def test_a_placeholder_sales_contact_is_a_warning() -> None:
    [message] = settings_findings(sales_contact=f"{PLACEHOLDER}: set routines.sales_contact")
    assert "still a placeholder" in message


def test_a_configured_sales_contact_has_no_finding() -> None:
    assert settings_findings(sales_contact="sales@example.com") == []


def test_a_function_a_webhook_implements_needs_no_setting() -> None:
    assert settings_findings(webhooks={"provide_sales_contact_information": "http://sales.test/hook"}) == []


def test_a_function_without_an_implementation_is_a_warning_naming_its_webhook_setting() -> None:
    [message] = settings_findings(parse_routine(ROUTINE, "refunds"), {"case_resolution"})
    assert "`issue_refund` has no implementation" in message and "routines.webhooks.issue_refund" in message
