"""The options an answer is classified among, as the plan derives them from a routine."""

from __future__ import annotations

from stockade.routines.parser import parse_routine
from stockade.routines.plan import ACKNOWLEDGEMENTS, DONE, UNCLEAR, Plan
from stockade.routines.service import BUILTIN_DIRECTORY

BAA = (BUILTIN_DIRECTORY / "baa.md").read_text()


def options(source: str, ask: str) -> dict[str, tuple[str, ...]]:
    return {option.id: option.examples for option in Plan.of(parse_routine(source, "r")).options(ask)}


def test_a_question_with_independent_branches_offers_taking_all_of_them() -> None:
    offered = options(BAA, "1a")
    assert "branches:2+3" in offered
    assert "For the API and ChatGPT Enterprise" in offered["branches:2+3"]


def test_a_question_whose_branches_exclude_each_other_offers_only_one_at_a_time() -> None:
    denied = BAA.replace("3. If the customer requires a BAA for ChatGPT Enterprise, then:",
                         "3. If the customer does not require a BAA for the API, then:")
    assert not [option for option in options(denied, "1a") if option.startswith("branches:")]


def test_a_bare_acknowledgement_means_done_at_the_closing_question_only() -> None:
    assert set(ACKNOWLEDGEMENTS) <= set(options(BAA, "5.1")[DONE])
    assert not set(ACKNOWLEDGEMENTS) & set(options(BAA, "5.1")[UNCLEAR])
    assert set(ACKNOWLEDGEMENTS) <= set(options(BAA, "1a")[UNCLEAR])


def test_the_closing_question_does_not_offer_again_a_branch_that_could_only_repeat_itself() -> None:
    plan = Plan.of(parse_routine(BAA, "r"))
    offered = {option.id for option in plan.options("5.1", branches_run=("2",))}
    assert "branch:2" not in offered
    assert "branch:3" in offered


def test_the_closing_question_offers_again_a_branch_that_takes_arguments() -> None:
    refunds = """# Routine: Refunds

1. Ask the customer: "Which order would you like refunded?"

2. If the customer wants an order refunded, then:
   - a. Call the `refund_order` function.

3. Ask the customer: "Is there anything else I can assist you with today?"

4. Call the `case_resolution` function.

---

- `refund_order`:
  - **Purpose**: Refunds one order
  - **Parameters**:
    - `order` (string, required): the order number
- `case_resolution`:
  - **Purpose**: Finalizes the case and marks it as resolved.
  - **Parameters**: None.
"""
    plan = Plan.of(parse_routine(refunds, "refunds"))
    assert "branch:2" in {option.id for option in plan.options("3", branches_run=("2",))}
