"""Every route that README.md and docs/*.md name is one the app serves, unless the doc marks it
planned.

A route is named in a code span: `/openai/models`, or with its method, `POST /openai/files`.
Placeholders may be spelled `{name}` or `<name>`; a path ending in `...` or `…` names every route
under it; a query string is ignored. The convention for a route not served yet: write
"(planned)" on the same line as its code span (in a table, in the same row). Such a route must
not be served either, so that the mark is removed when it lands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import App
from stockade.api import openapi

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLANNED = "(planned)"
ROUTE_SPAN = re.compile(r"`(?:(GET|POST|PUT|PATCH|DELETE) )?(/[^`\s]*)`")
# Code spans that are paths on disk, not routes.
FILE_PATHS = ("/usr/", "/proc/", "/etc/", "/var/", "/tmp/")
PLACEHOLDER = re.compile(r"\{[^}]*\}|<[^>]*>")
ANY_SEGMENT = "{}"


@dataclass(frozen=True)
class Mention:
    where: str
    method: str | None
    path: str
    planned: bool

    @property
    def prefix(self) -> bool:
        return self.path.endswith(("...", "…"))

    def shape(self) -> str:
        return PLACEHOLDER.sub(ANY_SEGMENT, self.path.partition("?")[0].rstrip(".…"))

    def __str__(self) -> str:
        return f"{self.where}: {self.method or 'any'} {self.path}"


def mentions() -> list[Mention]:
    found = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            for span in ROUTE_SPAN.finditer(line):
                method, path = span.groups()
                if not path.startswith(FILE_PATHS):
                    found.append(Mention(f"{doc.name}:{number}", method, path, PLANNED in line))
    return found


def served(mention: Mention, routes: list[tuple[str, str]]) -> bool:
    shape = mention.shape()
    for method, path in routes:
        route = PLACEHOLDER.sub(ANY_SEGMENT, path)
        if mention.method not in (None, method):
            continue
        if mention.prefix and route.startswith(shape):
            return True
        pattern = re.escape(route).replace(re.escape(ANY_SEGMENT), "[^/]+")
        if not mention.prefix and re.fullmatch(pattern, shape):
            return True
    return False


@pytest.fixture(scope="module")
def routes(fake: App) -> list[tuple[str, str]]:
    return openapi.routes_of(fake.client.app.routes)  # type: ignore[attr-defined]


def test_the_docs_name_routes() -> None:
    # Guards the parsing: a change of convention that found nothing would pass the others.
    assert any(m.path == "/openai/models" for m in mentions())


def test_every_route_the_docs_name_is_served_or_marked_planned(routes: list[tuple[str, str]]) -> None:
    missing = [str(m) for m in mentions() if not m.planned and not served(m, routes)]
    assert not missing, f"documented but not served (mark them {PLANNED} if they are): {missing}"


def test_a_route_marked_planned_is_not_served_yet(routes: list[tuple[str, str]]) -> None:
    stale = [str(m) for m in mentions() if m.planned and served(m, routes)]
    assert not stale, f"served, but the docs still say {PLANNED}: {stale}"
