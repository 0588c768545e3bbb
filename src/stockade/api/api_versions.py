"""The ``api-version`` values the classic Azure routes accept (GA and preview data-plane versions)."""

import functools
import urllib.parse

from stockade.errors import (
    PREVIEW_2023_SPELLING,
    V1_SPELLING,
    WIRE_SPELLING,
    InnerErrorSpelling,
    ResourceNotFound,
    shown,
)

SUPPORTED_API_VERSIONS = frozenset(
    {
        "2022-12-01",
        "2023-03-15-preview",
        "2023-05-15",
        "2023-06-01-preview",
        "2023-07-01-preview",
        "2023-08-01-preview",
        "2023-09-01-preview",
        "2023-12-01-preview",
        "2024-02-01",
        "2024-02-15-preview",
        "2024-03-01-preview",
        "2024-04-01-preview",
        "2024-05-01-preview",
        "2024-06-01",
        "2024-07-01-preview",
        "2024-08-01-preview",
        "2024-09-01-preview",
        "2024-10-01-preview",
        "2024-10-21",
        "2024-12-01-preview",
        "2025-01-01-preview",
        "2025-02-01-preview",
        "2025-03-01-preview",
        "2025-04-01-preview",
    }
)

# The /openai/v1 routes take no api-version, or one of these.
V1_API_VERSIONS = frozenset({"v1", "preview", "latest"})


def unsupported_message(version: str | None, classic: bool) -> str:
    """What a 404 for a missing or unknown ``api-version`` says: which values this route takes."""
    dated = ", ".join(sorted(SUPPORTED_API_VERSIONS))
    if classic:
        latest = max(v for v in SUPPORTED_API_VERSIONS if not v.endswith("-preview"))
        asked = (
            f"This route needs an api-version query parameter (e.g. `?api-version={latest}`)."
            if version is None else f"api-version {shown(version)!r} is not supported."
        )
        return f"{asked} Supported: {dated}."
    return (
        f"api-version {shown(version or '')!r} is not supported on the v1 routes: leave it out, "
        f"or send one of {', '.join(sorted(V1_API_VERSIONS))}, {dated}."
    )


# Clients send the same few query strings every time, so short ones are parsed once. Long ones
# are parsed each time: the cache must not keep what an unauthenticated client sends.
CACHED_QUERY_BYTES = 256


def api_version(query_string: bytes) -> str | None:
    """The ``api-version`` a request's query string gives, if any."""
    if len(query_string) <= CACHED_QUERY_BYTES:
        return _cached_api_version(query_string)
    return _parsed_api_version(query_string)


def _parsed_api_version(query_string: bytes) -> str | None:
    for name, value in urllib.parse.parse_qsl(query_string.decode("latin-1")):
        if name == "api-version":
            return value
    return None


_cached_api_version = functools.lru_cache(maxsize=1024)(_parsed_api_version)


def check_api_version(query_string: bytes, classic: bool) -> None:
    """404, as on Azure, for a classic route without a supported api-version, or a v1 route with
    one it does not take."""
    version = api_version(query_string)
    if classic:
        if version not in SUPPORTED_API_VERSIONS:
            raise ResourceNotFound(unsupported_message(version, classic))
    elif version is not None and version not in V1_API_VERSIONS | SUPPORTED_API_VERSIONS:
        raise ResourceNotFound(unsupported_message(version, classic))


# How a content-filtered 400 spells its inner error. Microsoft documents none of this; it is
# inferred from captured replies (docs/safety.md, "Which api-version gets which"):
# - the 2023 previews: the spelling of their spec, ``inner_error`` with plural results;
# - the other dated versions: the wire's ``innererror.content_filter_result``, with the
#   2024-10-21 spec's only inner code, ResponsibleAIPolicyViolation (a dated version is a frozen
#   contract, and the newest one here is older than the change below);
# - the v1 API without a dated version, where Azure's changes arrive: since about 2026-09 the
#   inner code is ContentFiltered.


def filter_error_spelling(version: str | None) -> InnerErrorSpelling:
    """The inner error's spelling for a call made with ``version`` (None: sent without one)."""
    if version is None or version in V1_API_VERSIONS:
        return V1_SPELLING
    if version.startswith("2023-") and version.endswith("-preview"):
        return PREVIEW_2023_SPELLING
    return WIRE_SPELLING
