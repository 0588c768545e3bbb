"""A multipart/form-data body read as it streams in (python-multipart's parser), so that an
upload's file part goes on to be checked and sealed without ever being spooled to disk in the
clear, as Starlette's ``request.form()`` would spool it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from stockade.errors import InvalidRequest

# A form's plain fields are short (a purpose, a number of seconds).
FIELD_BYTES = 1024
MAX_FIELDS = 16


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class FileStart:
    name: str
    filename: str


@dataclass(frozen=True, slots=True)
class FileData:
    data: bytes


FormEvent = Field | FileStart | FileData


def _malformed(why: str) -> InvalidRequest:
    return InvalidRequest(
        f"The upload is not a valid multipart/form-data body: {why}. Send the file as the "
        "openai SDK or `curl -F file=@PATH -F purpose=batch` does.",
        code="invalid_request",
    )


class _Events:
    """The parser's callbacks, turned into events for the reader to take after each write."""

    def __init__(self) -> None:
        self.pending: list[FormEvent] = []
        self.ended = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._field: tuple[str, bytearray] | None = None
        self._fields = 0

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header_name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._disposition = b""
        self._field = None

    def _header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise _malformed('a part has no Content-Disposition name')
        name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            self.pending.append(FileStart(name, options[b"filename"].decode("utf-8", "replace")))
            return
        self._fields += 1
        if self._fields > MAX_FIELDS:
            raise _malformed(f"it has more than {MAX_FIELDS} fields")
        self._field = (name, bytearray())

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._field is None:
            self.pending.append(FileData(bytes(data[start:end])))
            return
        self._field[1].extend(data[start:end])
        if len(self._field[1]) > FIELD_BYTES:
            raise _malformed(f"field {self._field[0]!r} is longer than {FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._field is not None:
            self.pending.append(Field(self._field[0], self._field[1].decode("utf-8", "replace")))

    def _end(self) -> None:
        self.ended = True


async def form_events(request: Request) -> AsyncIterator[FormEvent]:
    """The body's fields and its file parts' data, in the order they arrive."""
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise _malformed("its Content-Type is not multipart/form-data with a boundary")
    events = _Events()
    parser = MultipartParser(options[b"boundary"], events.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            taken, events.pending = events.pending, []
            for event in taken:
                yield event
        parser.finalize()
    except FormParserError as exc:
        raise _malformed(str(exc)) from None
    if not events.ended:
        raise _malformed("it ends before its closing boundary")
    for event in events.pending:
        yield event
