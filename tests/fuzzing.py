"""Property-based fuzzing of the app in process, over its own OpenAPI document (/openapi.json).

Schemathesis turns each operation of the document into a Hypothesis strategy of requests, both
ones that fit the schemas (to get past validation into the handlers and the fake models) and ones
that do not (to probe validation itself); each is sent, mostly with the admin key, through the app
in process. Any 5xx, or a reply that does not finish within HANG_SECONDS, is a finding. Shared by
tests/test_fuzz.py (a bounded run in the suite) and bench/fuzz.py (a long one).
"""

from __future__ import annotations

import contextlib
import functools
import json
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from conftest import App, in_process
from fake_model import CHAT_MODEL, EMBEDDING_MODEL
from stockade.api.openapi import document

HANG_SECONDS = 10.0
CHAT, EMBEDDINGS = "gpt-4o", "text-embedding-3-small"
# Most requests carry the admin key, so that they reach validation and the handlers, not a 401.
CREDENTIALS = ["admin"] * 6 + ["none", "wrong"]


@dataclass
class Tally:
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    unsendable: int = 0  # generated requests no HTTP client can send (e.g. non-Latin-1 headers)

    def summary(self) -> str:
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        return (f"{self.cases} cases, {len(self.server_errors)} 5xx, {len(self.hangs)} hangs, "
                f"{self.unsendable} unsendable; statuses {statuses}")


@contextlib.contextmanager
def fuzz_app(data_dir: Path) -> Iterator[App]:
    """The app in process over the fake models, with room for many calls."""
    with in_process(
        data_dir,
        ((CHAT, CHAT_MODEL, 1000), (EMBEDDINGS, EMBEDDING_MODEL, 1000)),
        STOCKADE_MAX_BODY_BYTES=str(256 * 1024),
        STOCKADE_AUTH__FAILED_ATTEMPTS_PER_MINUTE="1000000",
    ) as app:
        yield app


class Fuzzer:
    def __init__(self, app: App) -> None:
        self.app = app
        starlette = app.client.app
        self.document = document(starlette.routes)  # type: ignore[attr-defined]
        self.schema = schemathesis.openapi.from_dict(self.document)
        self.client = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=starlette, client=("127.0.0.1", 50000)),
            base_url=str(app.client.base_url),
        )
        self.tally = Tally()

    def operations(self) -> list[Any]:
        return [result.ok() for result in self.schema.get_all_operations()]

    def strategy(self, operation: Any) -> st.SearchStrategy[Any]:
        """Requests that fit the schema and ones that do not; on the data plane, half of them
        name a real deployment, so that they reach the models."""
        modes = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
        if "{deployment}" in operation.path:
            deployment = EMBEDDINGS if operation.path.endswith("/embeddings") else CHAT
            modes.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"deployment": deployment}))
        return st.one_of(modes)

    def run(self, examples_per_operation: int, seed: int | None = None) -> Tally:
        for operation in self.operations():
            self._fuzz(operation, examples_per_operation, seed)
        return self.tally

    def _fuzz(self, operation: Any, examples: int, seed: int | None) -> None:
        @settings(
            max_examples=examples, deadline=None, database=None, derandomize=seed is not None,
            phases=[Phase.explicit, Phase.generate],  # findings are reported as found, unshrunk
            suppress_health_check=list(HealthCheck),
        )
        @given(case=self.strategy(operation), credential=st.sampled_from(CREDENTIALS))
        def check(case: Any, credential: str) -> None:
            self.send(case, credential)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # schemathesis's notes on generation, not findings
            check()

    def send(self, case: Any, credential: str) -> None:
        request = self._request(case, credential)
        if request is None:
            self.tally.unsendable += 1
            return
        self.tally.cases += 1
        shown = f"{case.method.upper()} {case.formatted_path}"
        try:
            status, body = self.app.client.portal.call(self._send, request)  # type: ignore[union-attr]
        except TimeoutError:
            self.tally.hangs.append(f"{shown}: no reply within {HANG_SECONDS} s\n{_curl(request)}")
            return
        except Exception as exc:  # the app broke off mid-reply: as bad as a 5xx
            status, body = 599, f"{type(exc).__name__}: {exc}".encode()
        finally:
            self._restore(case)
        self.tally.statuses[status] += 1
        if status >= 500:
            self.tally.server_errors.append(f"{shown} -> {status}: {body[:300]!r}\n{_curl(request)}")

    async def _send(self, request: httpx2.Request) -> tuple[int, bytes]:
        with anyio.fail_after(HANG_SECONDS):
            response = await self.client.send(request)
            return response.status_code, response.content

    def _request(self, case: Any, credential: str) -> httpx2.Request | None:
        for name, value in (case.path_parameters or {}).items():
            if value == "key1":  # the fuzz's own key: regenerated or revoked, the run would stop
                case.path_parameters[name] = "key2"
        kwargs = case.as_transport_kwargs(base_url=str(self.app.client.base_url))
        headers = {k: v for k, v in kwargs.get("headers", {}).items()
                   if k.lower() not in ("connection", "accept-encoding", "x-schemathesis-testcaseid")}
        if credential == "admin":
            headers["api-key"] = self.app.key
        elif credential == "wrong":
            headers["api-key"] = "0" * 32
        content = None
        if "json" in kwargs:
            try:
                content = json.dumps(kwargs["json"]).encode()
            except (TypeError, ValueError):
                return None
            headers.setdefault("Content-Type", "application/json")
        elif kwargs.get("data") is not None:
            data = kwargs["data"]
            content = data if isinstance(data, bytes) else None
            if isinstance(data, str):
                content = data.encode()
            elif isinstance(data, dict):
                content = httpx2.QueryParams(data).__str__().encode()
        try:
            return self.client.build_request(
                kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers,
                content=content,
            )
        except (UnicodeEncodeError, ValueError, TypeError):
            return None

    def _restore(self, case: Any) -> None:
        """Undo what would stop the rest of the run: keys refused, or every address denied."""
        if case.path == "/management/resource" and case.method.upper() == "PATCH":
            access = self.app.resource.access
            self.app.call(functools.partial(
                access.set_properties, disable_local_auth=False, default_action="Allow", ip_rules=[]
            ))


def _curl(request: httpx2.Request) -> str:
    headers = " ".join(f"-H '{k}: {v}'" for k, v in request.headers.items()
                       if k.lower() not in ("api-key", "content-length", "host"))
    body = request.content.decode("utf-8", "replace")
    return f"curl -X {request.method} '{request.url}' {headers} --data-raw '{body[:2000]}'"
