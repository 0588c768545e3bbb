"""Deterministic stand-ins for the local models, for tests whose behaviour is not the model's.

The chat model answers every prompt with the same words, one token per word; it honours
max_tokens, n, stop sequences, the context window (prompt tokens are the prompt's words) and
forced tool calls. A prompt (a chat's last message) that starts with ``say:`` chooses the reply
instead: the rest of it, sent in the pieces that ``|`` separates (``say:forb|idden`` streams
"forb" then "idden", so a test's prompt need not hold the word it wants back); a forced tool
call's string arguments are then that text, joined. The embedding model returns a unit vector derived from each input's text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from stockade.backends.base import (
    ChatModel,
    Delta,
    EmbeddingModel,
    Embeddings,
    Events,
    ModelHost,
    ModelSpec,
    Prepared,
    Usage,
)
from stockade.errors import ContextLengthExceeded, InvalidRequest
from stockade.requests import ChatRequest, CompletionRequest, EmbeddingRequest

CHAT_MODEL = "fake-chat"
EMBEDDING_MODEL = "fake-embeddings"
DIMENSIONS = 8
# The reply, a word per token; a call without max_tokens gets all of it and finishes with "stop".
REPLY = ["The", "sea", "is", "wide", "and", "calm", ",", "and", "the", "waves", "roll", "in", "slowly", "under", "a", "grey", "sky", "."]
REPLY_PIECES = tuple(REPLY)


def words(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class ChatJob:
    max_tokens: int
    choices: int
    stop: tuple[str, ...]
    tool_call: dict[str, Any] | None  # the call every choice makes, when tools are forced
    reply: tuple[str, ...] = REPLY_PIECES  # the pieces of the reply, a token each


SAY = "say:"


def chosen_reply(request: ChatRequest | CompletionRequest) -> tuple[str, ...] | None:
    """The pieces a ``say:`` prompt asks for, if it is one."""
    if isinstance(request, ChatRequest):
        text = request.messages[-1].text()
    else:
        text = request.prompt if isinstance(request.prompt, str) else ""
    return tuple(text[len(SAY):].split("|")) if text.startswith(SAY) else None


class FakeChatModel:
    def __init__(self, context_tokens: int) -> None:
        self.context_tokens = context_tokens
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def prepare(self, request: ChatRequest | CompletionRequest) -> Prepared:
        if isinstance(request, ChatRequest):
            prompt_tokens = sum(words(m.text()) + 1 for m in request.messages)
        else:
            prompt = request.prompt
            prompt_tokens = len(prompt) if isinstance(prompt, list) else words(prompt)
        limit = request.completion_limit
        budget = self.context_tokens - prompt_tokens
        if (limit is not None and limit > budget) or budget <= 0:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self.context_tokens} tokens.",
                param="messages" if isinstance(request, ChatRequest) else "prompt",
            )
        job = ChatJob(
            max_tokens=limit or budget,
            choices=request.choices,
            stop=tuple(request.stop_sequences()),
            tool_call=None,
        )
        chosen = chosen_reply(request)
        if chosen is not None:
            job = dataclasses.replace(job, reply=chosen)
        if isinstance(request, ChatRequest):
            job = dataclasses.replace(job, tool_call=forced_call(request, "".join(chosen) if chosen else None))
        return Prepared(prompt_tokens, job)

    async def generate(self, prepared: Prepared) -> Events:
        job: ChatJob = prepared.job
        yield Usage(prepared.prompt_tokens, 0, final=False)
        completion_tokens = 0
        for index in range(job.choices):
            if job.tool_call is not None:
                completion_tokens += words(json.dumps(job.tool_call))
                call = {"index": 0, "id": f"call_{uuid.uuid4().hex[:24]}", "type": "function", "function": job.tool_call}
                yield Delta(index, tool_calls=[call])
                yield Delta(index, finish_reason="tool_calls")
                continue
            text, finish = "", "stop"
            chosen = job.reply is not REPLY_PIECES
            for count, word in enumerate(job.reply):
                if count == job.max_tokens:
                    finish = "length"
                    break
                piece = word if count == 0 or chosen else " " + word
                cut = min((i for s in job.stop if (i := (text + piece).find(s)) >= 0), default=-1)
                if cut >= 0:
                    if cut > len(text):
                        yield Delta(index, text=(text + piece)[len(text):cut])
                    completion_tokens += 1
                    break
                text += piece
                completion_tokens += 1
                yield Delta(index, text=piece)
                await asyncio.sleep(0)
            yield Delta(index, finish_reason=finish)
        yield Usage(prepared.prompt_tokens, completion_tokens)

    async def close(self) -> None:
        self.started = False


def forced_call(request: ChatRequest, said: str | None = None) -> dict[str, Any] | None:
    """The function call a forced tool choice makes, with arguments that fit its schema (its
    strings ``said``, when given)."""
    named = request.named_function
    if not request.tools or (request.tool_choice != "required" and named is None):
        return None
    functions = [tool.function for tool in request.tools]
    if named is not None:
        functions = [f for f in functions if f.name == named]
    function = functions[0]
    properties = (function.parameters or {}).get("properties", {})
    arguments = {k: example(v, said) for k, v in properties.items()}
    return {"name": function.name, "arguments": json.dumps(arguments)}


def example(schema: dict[str, Any], said: str | None = None) -> Any:
    if said is not None and schema.get("type", "string") == "string":
        return said
    if "enum" in schema:
        return schema["enum"][0]
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}.get(
        schema.get("type", "string"), "Paris"
    )


class FakeEmbeddingModel:
    async def start(self) -> None:
        pass

    async def prepare(self, request: EmbeddingRequest) -> Prepared:
        if request.dimensions is not None and request.dimensions != DIMENSIONS:
            raise InvalidRequest(f"its embeddings always have {DIMENSIONS} dimensions", param="dimensions")
        inputs = request.inputs()
        tokens = sum(len(i) if isinstance(i, list) else words(i) for i in inputs)
        return Prepared(tokens, inputs)

    async def embed(self, prepared: Prepared) -> Embeddings:
        rows = [vector(str(item)) for item in prepared.job]
        return Embeddings(np.array(rows, dtype=np.float32), prepared.prompt_tokens)

    async def close(self) -> None:
        pass


def vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = np.frombuffer(digest[: DIMENSIONS * 4], dtype=np.uint32).astype(np.float64)
    return list(raw / np.linalg.norm(raw))


def _chat(host: ModelHost) -> ChatModel:
    return FakeChatModel(host.settings.local.context_tokens)


def _embeddings(_host: ModelHost) -> EmbeddingModel:
    return FakeEmbeddingModel()


FAKE_MODELS = (
    ModelSpec(CHAT_MODEL, "chat", "local", "a deterministic fake", context_tokens=2048, factory=_chat),
    ModelSpec(EMBEDDING_MODEL, "embeddings", "local", "a deterministic fake", context_tokens=512,
              dimensions=DIMENSIONS, factory=_embeddings),
)
