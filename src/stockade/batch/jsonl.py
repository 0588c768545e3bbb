"""A batch input file checked line by line as it arrives, as Azure checks it at upload.

The checker is fed the file's bytes in pieces and holds only the line being read and the custom
ids seen, never the whole file. Every problem is named by its 1-based line number, with Azure's
code (D7's table: ``invalid_json_line``, ``duplicate_custom_id``, ``url_mismatch``,
``model_mismatch``, ``too_many_tasks``, ``empty_file``; ``invalid_request`` for the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from stockade.errors import InvalidRequest, shown
from stockade.quotas.estimate import approximate_prompt_tokens, reserved_tokens
from stockade.requests import ChatRequest, EmbeddingRequest
from stockade.responses.conversation import chat_request
from stockade.responses.objects import input_items
from stockade.responses.request import ResponseRequest

RequestType = type[ChatRequest] | type[EmbeddingRequest] | type[ResponseRequest]
# The urls a line may call, each spelling Azure's and OpenAI's examples use.
REQUEST_TYPES: dict[str, RequestType] = {
    "/chat/completions": ChatRequest,
    "/v1/chat/completions": ChatRequest,
    "/embeddings": EmbeddingRequest,
    "/v1/embeddings": EmbeddingRequest,
    "/responses": ResponseRequest,
    "/v1/responses": ResponseRequest,
}
BOM = b"\xef\xbb\xbf"
# Problems named in the error's message; the rest are counted. A file with a systematic mistake
# has it on every line, and one example of each kind says what to fix.
SHOWN_PROBLEMS = 10


@dataclass(frozen=True, slots=True)
class InputSummary:
    lines: int
    url: str
    deployment: str
    reserved_tokens: int  # what the lines reserve at admission, summed: counted against the quota


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    code: str
    message: str


class InvalidInputFile(InvalidRequest):
    """A batch input file refused at upload, with every problem found (``problems``)."""

    def __init__(self, problems: list[Problem]) -> None:
        listed = "; ".join(f"line {p.line}: {p.message}" for p in problems[:SHOWN_PROBLEMS])
        more = len(problems) - SHOWN_PROBLEMS
        super().__init__(
            f"The batch input file was not stored: {listed}"
            + (f"; and {more} more problems" if more > 0 else "")
            + ". Fix the file and upload it again.",
            code=problems[0].code,
            param="file",
        )
        self.problems = problems


class InputChecker:
    def __init__(self, max_lines: int, default_max_tokens: int) -> None:
        self.max_lines = max_lines
        self.default_max_tokens = default_max_tokens
        self._pending = bytearray()  # the line being read
        self._line = 0  # physical lines read so far
        self._requests = 0
        self._custom_ids: dict[str, int] = {}
        self._url: tuple[str, int] | None = None
        self._deployment: tuple[str, int] | None = None
        self._reserved = 0
        self._problems: list[Problem] = []

    def feed(self, data: bytes) -> None:
        self._pending += data
        end = self._pending.rfind(b"\n")
        if end < 0:
            return
        complete = bytes(self._pending[:end])
        del self._pending[: end + 1]
        for line in complete.split(b"\n"):
            self._check(line)

    def finish(self) -> InputSummary:
        if self._pending:
            self._check(bytes(self._pending))
            self._pending.clear()
        if not self._problems and self._requests == 0:
            self._problems.append(Problem(1, "empty_file", "the file holds no requests"))
        if self._problems:
            raise InvalidInputFile(self._problems)
        assert self._url is not None and self._deployment is not None
        return InputSummary(self._requests, self._url[0], self._deployment[0], self._reserved)

    def _problem(self, code: str, message: str) -> None:
        self._problems.append(Problem(self._line, code, message))

    def _check(self, raw: bytes) -> None:
        self._line += 1
        if self._line == 1 and raw.startswith(BOM):
            self._problem(
                "invalid_request",
                "A valid model deployment name couldn't be extracted from the input file: it "
                "starts with a UTF-8 byte-order mark. Save it as UTF-8 without a BOM",
            )
            raw = raw[len(BOM):]
        if not raw.strip():
            return  # a blank line is no request (a file's last newline ends one)
        self._requests += 1
        if self._requests > self.max_lines:
            if self._requests == self.max_lines + 1:
                self._problem(
                    "too_many_tasks",
                    f"the file has more than {self.max_lines} requests, the most one batch takes "
                    "(batch.max_file_lines); split it into several files",
                )
            return
        try:
            request = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self._problem("invalid_json_line", f"not valid JSON ({exc.args[0]})")
            return
        if not isinstance(request, dict):
            self._problem("invalid_json_line", "a line must be a JSON object")
            return
        self._check_custom_id(request.get("custom_id"))
        method = request.get("method")
        if method != "POST":
            self._problem("invalid_request", f"method must be \"POST\", not {_quoted(method)}")
        url = self._checked_url(request.get("url"))
        body = request.get("body")
        if not isinstance(body, dict):
            self._problem("invalid_request", "body must be a JSON object: the request to make")
            return
        self._check_deployment(body.get("model"))
        if body.get("stream") is True:
            self._problem("invalid_request", "body.stream must not be true: a batch's replies are not streamed")
            return
        if url is not None:
            self._reserved += self._reservation(REQUEST_TYPES[url], body)

    def _check_custom_id(self, custom_id: Any) -> None:
        if not isinstance(custom_id, str) or not custom_id:
            self._problem("invalid_request", "custom_id is missing: each line needs a unique string custom_id")
            return
        first = self._custom_ids.setdefault(custom_id, self._line)
        if first != self._line:
            self._problem(
                "duplicate_custom_id",
                f"custom_id {shown(custom_id)!r} is also on line {first}; each must be unique",
            )

    def _checked_url(self, url: Any) -> str | None:
        if url not in REQUEST_TYPES:
            self._problem(
                "url_mismatch",
                f"url {_quoted(url)} is not supported; use one of {', '.join(REQUEST_TYPES)}",
            )
            return None
        if self._url is None:
            self._url = (url, self._line)
        elif url != self._url[0]:
            self._problem(
                "url_mismatch",
                f"url {url!r} differs from {self._url[0]!r} on line {self._url[1]}; every line of "
                "a batch calls the same url",
            )
            return None
        return str(url)

    def _check_deployment(self, model: Any) -> None:
        if not isinstance(model, str) or not model:
            self._problem(
                "invalid_request",
                "A valid model deployment name couldn't be extracted from the input file: "
                "body.model must name the deployment",
            )
        elif self._deployment is None:
            self._deployment = (model, self._line)
        elif model != self._deployment[0]:
            self._problem(
                "model_mismatch",
                f"body.model {shown(model)!r} differs from {shown(self._deployment[0])!r} on line "
                f"{self._deployment[1]}; every line of a batch names the same deployment",
            )

    def _reservation(self, request_type: RequestType, body: dict[str, Any]) -> int:
        try:
            request = request_type.model_validate(body)
            if isinstance(request, ResponseRequest):
                request.check()
                # Estimated as the chat it runs as; a chain's earlier responses are not counted.
                request, _ = chat_request(request, [], input_items(request), local=False)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            self._problem("invalid_request", f"body.{where}: {first['msg']}" if where else f"body: {first['msg']}")
            return 0
        except InvalidRequest as refused:
            self._problem("invalid_request", f"body.{refused.param}: {refused.message}" if refused.param else refused.message)
            return 0
        try:
            prompt = approximate_prompt_tokens(request)
        except InvalidRequest:  # parts a local model cannot read (images): the upstream may
            prompt = 0
        return reserved_tokens(request, prompt, self.default_max_tokens)


def _quoted(value: Any) -> str:
    """A field's value as a line sent it, fit to repeat in a message."""
    if value is None:
        return "missing"
    return repr(shown(value)) if isinstance(value, str) else shown(orjson.dumps(value).decode())
