"""Which endpoints keep no data at rest: the one list the documentation and the agents both show.

An endpoint is eligible for zero data retention when its request and response bodies exist only
in memory for the length of the call. Endpoints that exist to store data (files, batch jobs) are
not, whatever their retention settings; the Responses API is, only where the request asks that
nothing be stored (``store: false``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    eligible: bool
    why: str
    condition: str = ""  # when the verdict holds, for an endpoint whose request decides it

    @property
    def shown(self) -> str:
        return f"{self.method} {self.path}" + (f" {self.condition}" if self.condition else "")


ZERO_RETENTION_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/openai/deployments/{deployment}/chat/completions", True,
             "bodies live in memory for the call only; `store` is not honoured"),
    Endpoint("POST", "/openai/deployments/{deployment}/completions", True,
             "bodies live in memory for the call only"),
    Endpoint("POST", "/openai/deployments/{deployment}/embeddings", True,
             "bodies live in memory for the call only"),
    Endpoint("POST", "/openai/v1/chat/completions", True, "as the deployment route"),
    Endpoint("POST", "/openai/v1/completions", True, "as the deployment route"),
    Endpoint("POST", "/openai/v1/embeddings", True, "as the deployment route"),
    Endpoint("POST", "/openai/v1/responses", True,
             "bodies live in memory for the call only; a zero-retention deployment forces "
             "`store: false`", condition="with store: false"),
    Endpoint("POST", "/openai/responses", True, "as the v1 route", condition="with store: false"),
    Endpoint("POST", "/routines/conversations/{id}/messages", True,
             "the step trace holds no message text; text is kept only where "
             "`routines.keep_messages` is on"),
    Endpoint("POST", "/openai/files", False,
             "stores the uploaded file, sealed, until it is deleted or expires"),
    Endpoint("POST", "/openai/v1/files", False, "as the classic route"),
    Endpoint("POST", "/openai/batches", False,
             "stores the batch's lines and its output and error files, sealed, until they are "
             "deleted or expire"),
    Endpoint("POST", "/openai/v1/batches", False, "as the classic route"),
    Endpoint("POST", "/openai/v1/responses", False,
             "stores the response and its input items, sealed, for `responses.retention_days` (30 "
             "days by default) or until deleted", condition="with store left out or true (the default)"),
    Endpoint("POST", "/openai/responses", False, "as the v1 route",
             condition="with store left out or true (the default)"),
)


def eligible_endpoints() -> list[Endpoint]:
    return [endpoint for endpoint in ZERO_RETENTION_ENDPOINTS if endpoint.eligible]


def markdown_table() -> str:
    """The table docs/data-retention.md shows (a test keeps the two the same)."""
    rows = ["| Endpoint | Zero data retention | Why |", "|---|---|---|"]
    for endpoint in ZERO_RETENTION_ENDPOINTS:
        verdict = "eligible" if endpoint.eligible else "**not eligible**"
        condition = f" {endpoint.condition}" if endpoint.condition else ""
        rows.append(f"| `{endpoint.method} {endpoint.path}`{condition} | {verdict} | {endpoint.why} |")
    return "\n".join(rows)
