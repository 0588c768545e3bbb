"""Errors the core raises, carrying Azure OpenAI's status, code and wording.

The web layer renders them as ``{"error": {...}}``; the core itself never touches HTTP objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def shown(text: str, limit: int = 80) -> str:
    """What a caller sent, cut to a length fit to repeat in a message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ServiceError(Exception):
    status: int = 500
    code: str | None = "InternalServerError"
    type: str | None = None
    # How long the caller should wait before trying again; when set, the web layer sends it as
    # the retry hints the openai SDK obeys (429s, and 503s that will pass).
    retry_after_ms: int | None = None
    # False tells the openai SDK not to retry (x-should-retry), whatever the status.
    should_retry: bool | None = None
    # Why a 429 refused, as a fixed word: the metrics' label (telemetry/metrics.THROTTLED).
    reason: str = "other"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param
        if retry_after_ms is not None:
            self.retry_after_ms = max(1, retry_after_ms)

    def body(self) -> dict[str, Any]:
        # The spec types param and type as strings: they are left out rather than sent as null.
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        if self.type is not None:
            error["type"] = self.type
        return {"error": error}


class InvalidRequest(ServiceError):
    status = 400
    code = "invalid_request_error"
    type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class Unauthorized(ServiceError):
    """401 with Azure's code for a key that is missing or not one of the resource's. The message
    never repeats what was sent: it may be a secret of another resource."""

    status = 401
    code = "401"

    def __init__(self, *, sent: bool = True) -> None:
        super().__init__(
            "Access denied: the key sent is not an active key of this Stockade resource. Check "
            "that the endpoint is the server the key belongs to; `stockade keys list` shows the "
            "active keys, and `stockade keys regenerate key1` replaces a lost admin key."
            if sent else
            "Access denied: no key or token was sent. Send a key in the `api-key` header (or as "
            "`Authorization: Bearer KEY`); `stockade keys list` shows this resource's keys."
        )


class InvalidToken(ServiceError):
    """A bearer token that is malformed, badly signed, expired, from an untrusted issuer or for
    another audience. Azure answers all of these alike, without the ``error`` wrapper, so that
    nothing tells a caller which check failed."""

    status = 401

    def __init__(self, audience: str = "https://cognitiveservices.azure.com") -> None:
        super().__init__(
            f"Unauthorized. Access token is missing, invalid, audience is incorrect ({audience}), "
            "or have expired."
        )

    def body(self) -> dict[str, Any]:
        return {"statusCode": self.status, "message": self.message}


class TenantMismatch(ServiceError):
    """A valid token from a trusted issuer, but for a tenant this resource does not accept."""

    status = 400
    code = "Tenant provided in token does not match resource token"

    def __init__(self, tenant: str) -> None:
        super().__init__(f"Token tenant {tenant} does not match resource tenant.")


class LocalAuthDisabled(ServiceError):
    status = 403
    code = "AuthenticationTypeDisabled"

    def __init__(self) -> None:
        super().__init__(
            "Key based authentication is disabled for this resource. Use a Microsoft Entra ID "
            "(bearer) token, or enable keys with `stockade local-auth enable`."
        )


class NetworkDenied(ServiceError):
    status = 403
    code = "403"

    def __init__(self) -> None:
        super().__init__("Access denied due to Virtual Network/Firewall rules.")


class PermissionDenied(ServiceError):
    # Azure answers a missing role with 401, not 403.
    status = 401
    code = "PermissionDenied"

    def __init__(self, message: str = "Principal does not have access to API/Operation.") -> None:
        super().__init__(message)


class ResourceNotFound(ServiceError):
    status = 404
    code = "404"

    def __init__(self, message: str = "Resource not found") -> None:
        super().__init__(message)


class DeploymentNotFound(ServiceError):
    status = 404
    code = "DeploymentNotFound"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"There is no deployment named {shown(name)!r} on this resource. "
            "`stockade deployments list` shows them; `stockade deployments create` adds one."
        )


class NotFound(ServiceError):
    status = 404
    code = "NotFound"


class Conflict(ServiceError):
    status = 409
    code = "Conflict"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "request_too_large"
    type = "invalid_request_error"


class TooManyRequests(ServiceError):
    """429, with how long the caller should wait (the web layer sends it as retry hints)."""

    status = 429
    code = "429"
    retry_after_ms: int

    def __init__(self, message: str, retry_after_ms: int = 1000, *, reason: str = "other") -> None:
        super().__init__(message, retry_after_ms=retry_after_ms)
        self.reason = reason


class BudgetExceeded(ServiceError):
    """429 for a call a hard budget refuses: OpenAI's insufficient_quota, which no retry within
    the period can pass (so the SDK is told not to retry); ``retry_after_ms`` is when it resets."""

    status = 429
    code = "insufficient_quota"
    type = "insufficient_quota"
    should_retry = False
    reason = "budget"

    def __init__(self, message: str, retry_after_ms: int) -> None:
        super().__init__(message, retry_after_ms=retry_after_ms)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "type": self.type, "param": None}}


def retry_after_ms(headers: Mapping[str, str], default: int = 1000) -> int:
    """How long a 429 asks its caller to wait, read back from the headers TooManyRequests sends
    (``retry-after-ms``, else ``retry-after`` in seconds)."""
    for name, scale in (("retry-after-ms", 1), ("retry-after", 1000)):
        try:
            return max(1, round(float(headers[name]) * scale))
        except (KeyError, ValueError):
            continue
    return default


class BackendUnavailable(ServiceError):
    """503: a model or upstream cannot serve now; with ``retry_after_ms`` when it should soon
    (a local model whose worker is restarting)."""

    status = 503
    code = "ServiceUnavailable"


class BadGateway(ServiceError):
    """An upstream failed or answered something that is not a completion."""

    status = 502
    code = "BadGateway"


class UpstreamError(ServiceError):
    """An upstream refused a request as the client's mistake: its status, and its error's code,
    message, param and type, re-built (nothing else of the upstream's body is relayed)."""

    def __init__(
        self, status: int, message: str, *, code: str | None, param: str | None, type: str | None
    ) -> None:
        super().__init__(message, code=code, param=param)
        self.status = status
        self.code = code
        self.type = type


# Azure's sentence, which clients may match loosely; the policy's name follows it.
CONTENT_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry."
)


@dataclass(frozen=True, slots=True)
class InnerErrorSpelling:
    """How a content-filtered 400 spells its inner error: the key, its results' key, its code."""

    key: str
    results_key: str
    code: str


# The wire's spelling (which clients parse); the spec's says inner_error, content_filter_results.
WIRE_SPELLING = InnerErrorSpelling("innererror", "content_filter_result", "ResponsibleAIPolicyViolation")
# The 2023 previews' spelling, and the v1 API's since about 2026-09 (api/api_versions.py says which).
PREVIEW_2023_SPELLING = InnerErrorSpelling("inner_error", "content_filter_results", "ResponsibleAIPolicyViolation")
V1_SPELLING = InnerErrorSpelling("innererror", "content_filter_result", "ContentFiltered")


class ContentFiltered(ServiceError):
    """A prompt the deployment's content filter policy blocks: 400 ``content_filter`` in Azure's
    shape, with the filter results inside. The inner error's spelling depends on the
    api-version; the web layer says which."""

    status = 400
    code = "content_filter"

    def __init__(self, results: dict[str, Any], why: str, param: str = "prompt") -> None:
        """``why`` says, for a self-hosted operator, which policy blocked what."""
        super().__init__(f"{CONTENT_FILTER_MESSAGE} (Stockade: {why})", param=param)
        self.results = results
        self.spelling = WIRE_SPELLING
        self.responses_shape = False

    @classmethod
    def by_policy(cls, results: dict[str, Any], policy: str, deployment: str) -> ContentFiltered:
        return cls(
            results,
            f"content filter policy {policy!r} of deployment {deployment!r}; "
            f"`stockade content-filters show {policy}` shows what it blocks.",
        )

    @classmethod
    def customer_message(cls, results: dict[str, Any], deployment: str) -> ContentFiltered:
        """A support agent's customer wrote what the agent's chat deployment may not be sent."""
        return cls(
            results,
            f"the customer's message is blocked by the content filter policy of the agent's chat "
            f"deployment {deployment!r}; the conversation is unchanged. "
            f"`stockade deployments show {deployment}` names the policy.",
            param="content",
        )

    def as_responses(self, spelling: InnerErrorSpelling) -> ContentFiltered:
        """Shaped as the Responses API sends it (the wire reference's addendum, A1): ``type`` a
        string, no ``status``, the curly apostrophe, and no results inside; the inner error's
        code only where ``spelling`` is the v1 API's."""
        self.spelling = spelling
        self.responses_shape = True
        self.message = self.message.replace("Azure OpenAI's", "Azure OpenAI\u2019s", 1)
        return self

    def body(self) -> dict[str, Any]:
        spelling = self.spelling
        if self.responses_shape:
            error: dict[str, Any] = {
                "message": self.message, "type": "invalid_request_error", "param": self.param, "code": self.code,
            }
            if spelling is V1_SPELLING:
                error["innererror"] = {"code": spelling.code}
            return {"error": error}
        return {
            "error": {
                "message": self.message,
                "type": None,
                "param": self.param,
                "code": self.code,
                "status": self.status,
                spelling.key: {"code": spelling.code, spelling.results_key: self.results},
            }
        }


class ContentFilterFailed(ServiceError):
    """A filter step that could not run, under a policy that fails closed: the request is refused,
    never served unscreened. The code is Azure's for a filter that did not run."""

    status = 500
    code = "content_filter_error"

    def __init__(self, policy: str, reason: str | None = None) -> None:
        """``reason``, when given, is the operator's to act on, and quotes nothing of the request."""
        fail_open = (
            "only if unscreened text is acceptable, allow it with "
            f"`stockade content-filters update {policy} --fail-open`."
        )
        remedy = (
            f"{reason} Then retry or, {fail_open}" if reason else
            "The server's log says which filter failed; retry, fix the filter (`stockade "
            f"content-filters show {policy}`), or, {fail_open}"
        )
        super().__init__(
            f"The content filter of policy {policy!r} could not screen this request, so it was "
            f"refused rather than passed unscreened. {remedy}"
        )
