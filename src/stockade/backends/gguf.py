"""The user's own GGUF files (``stockade models add --gguf PATH``): checked, described, served.

A file is checked once, when it is added: it must be a regular, readable GGUF file (version 2 or
3) with a chat template, which the llama.cpp backend needs to turn messages into a prompt. Its
header says the model's architecture and trained context length, read here without loading the
model (the reader only walks the header's key-value pairs, skipping values it does not need).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from stockade.backends.base import ChatModel, ModelHost, ModelSpec
from stockade.errors import InvalidRequest
from stockade.store import ModelFile

MAGIC = b"GGUF"
_STRING, _ARRAY = 8, 9
# Sizes of the fixed-size value types, by GGUF type number.
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_INTEGERS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
_LONGEST_KEY = 65_536  # far beyond any real key; a longer one means the file is not GGUF


class NotGguf(Exception):
    """The file is not a GGUF file this reader understands; the message says why."""


@dataclass(frozen=True, slots=True)
class GgufHeader:
    architecture: str | None
    context_tokens: int | None  # the length it was trained for
    chat_template: bool


def read_header(path: Path) -> GgufHeader:
    with path.open("rb") as file:
        if file.read(4) != MAGIC:
            raise NotGguf("it does not begin with the GGUF magic bytes")
        (version,) = _unpack(file, "<I")
        if version not in (2, 3):
            raise NotGguf(f"it is GGUF version {version}; llama.cpp reads versions 2 and 3")
        _tensors, pairs = _unpack(file, "<QQ")
        values: dict[str, object] = {}
        for _ in range(pairs):
            key = _string(file, _LONGEST_KEY)
            (kind,) = _unpack(file, "<I")
            if key == "general.architecture" or key.endswith(".context_length"):
                values[key] = _value(file, kind)
            else:
                values[key] = None
                _skip(file, kind)
    architecture = values.get("general.architecture")
    architecture = architecture if isinstance(architecture, str) else None
    context = values.get(f"{architecture}.context_length")
    return GgufHeader(
        architecture,
        context if isinstance(context, int) and context > 0 else None,
        "tokenizer.chat_template" in values,
    )


def _unpack(file: BinaryIO, layout: str) -> tuple[int, ...]:
    size = struct.calcsize(layout)
    data = file.read(size)
    if len(data) != size:
        raise NotGguf("its header ends early")
    return struct.unpack(layout, data)


def _string(file: BinaryIO, longest: int) -> str:
    (length,) = _unpack(file, "<Q")
    if length > longest:
        raise NotGguf("its header holds a string too long to be real")
    data = file.read(length)
    if len(data) != length:
        raise NotGguf("its header ends early")
    return data.decode("utf-8", "replace")


def _value(file: BinaryIO, kind: int) -> object:
    if kind == _STRING:
        return _string(file, _LONGEST_KEY)
    if kind in _INTEGERS:
        return _unpack(file, _INTEGERS[kind])[0]
    _skip(file, kind)
    return None


def _skip(file: BinaryIO, kind: int) -> None:
    if kind in _SIZES:
        file.seek(_SIZES[kind], os.SEEK_CUR)
    elif kind == _STRING:
        (length,) = _unpack(file, "<Q")
        file.seek(length, os.SEEK_CUR)
    elif kind == _ARRAY:
        item, count = _unpack(file, "<IQ")
        if item in _SIZES:
            file.seek(_SIZES[item] * count, os.SEEK_CUR)
        else:
            for _ in range(count):
                _skip(file, item)
    else:
        raise NotGguf(f"its header holds a value of unknown type {kind}")


def check_model_file(path: str) -> GgufHeader:
    """The header of a file a user adds, or ``InvalidRequest`` saying what is wrong with it."""
    file = Path(path)
    if not file.is_absolute():
        raise _refused(path, "is not an absolute path; give the file's full path on the server's machine")
    if not file.is_file():
        raise _refused(path, "does not exist on the server's machine, or is not a regular file")
    if not os.access(file, os.R_OK):
        raise _refused(path, "cannot be read by the user the server runs as")
    try:
        header = read_header(file)
    except NotGguf as exc:
        raise _refused(path, f"is not a GGUF model file: {exc}") from None
    except OSError as exc:
        raise _refused(path, f"cannot be read: {exc.strerror}") from None
    if not header.chat_template:
        raise _refused(
            path,
            "has no chat template (tokenizer.chat_template in its header), which Stockade needs to "
            "turn chat messages into the model's prompt; use an instruct or chat GGUF",
        )
    return header


def _refused(path: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"The file {path} {why}.", code="InvalidModelFile", param="gguf")


def file_spec(model: ModelFile, context_tokens: int) -> ModelSpec:
    """The deployable model of a user's file; its context is the server's llama.cpp context
    (``local.context_tokens``), or the model's trained length when that is shorter."""
    context = min(context_tokens, model.context_tokens or context_tokens)

    def factory(host: ModelHost) -> ChatModel:
        from stockade.backends.llamacpp import LlamaCppChatModel

        return LlamaCppChatModel(model.id, model.path, host, context_tokens=context)

    return ModelSpec(
        id=model.id,
        kind="chat",
        backend="local",
        description=f"{model.architecture or 'a'} GGUF on llama.cpp (CPU), added with `stockade models add`",
        context_tokens=context,
        path=model.path,
        factory=factory,
    )
