"""The BAA routine's functions, acting on Stockade itself (registered as entry points)."""

from __future__ import annotations

from stockade.routines.functions import FunctionCall, FunctionFailed, FunctionResult
from stockade.routines.retention import eligible_endpoints

# The `routines` setting each function reads; `stockade routines check` warns while one is unset
# or still the starter file's placeholder.
SETTINGS_READ = {"provide_sales_contact_information": "sales_contact"}


def provide_list_of_zero_retention_endpoints(call: FunctionCall) -> FunctionResult:
    endpoints = [endpoint.shown for endpoint in eligible_endpoints()]
    lines = "\n".join(f"- {endpoint}" for endpoint in endpoints)
    return FunctionResult(
        f"These endpoints are eligible for zero data retention:\n{lines}",
        {"endpoints": endpoints},
    )


def provide_sales_contact_information(call: FunctionCall) -> FunctionResult:
    contact = call.settings.routines.sales_contact
    if not contact:
        raise FunctionFailed(
            "no sales contact is configured: set routines.sales_contact in stockade.toml"
        )
    return FunctionResult(f"You can reach our sales team at {contact}.", {"contact": contact})


def case_resolution(call: FunctionCall) -> FunctionResult:
    closed = call.store.close_case(call.case, status="resolved")
    if closed is None:
        raise FunctionFailed(f"case {call.case} does not exist")
    return FunctionResult(
        f"Thank you for contacting us. This case ({call.case}) is now resolved.",
        {"case": call.case, "status": closed.status},
    )
