"""Azure OpenAI response bodies, built from backend results.

Content-filter annotations are there only when the deployment's policy ran a filter (Azure sends
them only for filters that ran): ``prompt_filter_results`` at the top, ``content_filter_results``
on each choice.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import random
import time
from typing import Any

import numpy as np

from stockade import __version__
from stockade.backends.base import Completion, Delta, Embeddings, Usage


def new_id(prefix: str) -> str:
    # Ids must be unique, not secret: the random module's generator costs no system call, where
    # uuid4 asks the kernel for fresh entropy on every call.
    return f"{prefix}-{random.getrandbits(116):029x}"


@functools.lru_cache(maxsize=256)
def fingerprint(model: str) -> str:
    """Stable per model and Stockade version, so seeded callers can tell when the backend changed."""
    return "fp_" + hashlib.sha256(f"{model}/{__version__}".encode()).hexdigest()[:10]


def _head(id_prefix: str, object_type: str, model: str) -> dict[str, Any]:
    return {
        "id": new_id(id_prefix),
        "object": object_type,
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": fingerprint(model),
    }


def usage(value: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": value.prompt_tokens,
        "completion_tokens": value.completion_tokens,
        "total_tokens": value.prompt_tokens + value.completion_tokens,
    }


FilterResults = dict[str, Any]


def _annotated(
    body: dict[str, Any],
    prompt_results: list[FilterResults] | None,
    choice_results: dict[int, FilterResults] | None,
) -> dict[str, Any]:
    if prompt_results is not None:
        body["prompt_filter_results"] = prompt_results
    if choice_results is not None:
        for choice in body["choices"]:
            choice["content_filter_results"] = choice_results.get(choice["index"], {})
    return body


def chat_completion(
    result: Completion,
    model: str,
    prompt_results: list[FilterResults] | None = None,
    choice_results: dict[int, FilterResults] | None = None,
) -> dict[str, Any]:
    choices = []
    for choice in result.choices:
        message: dict[str, Any] = {"role": "assistant", "refusal": None}
        # A filtered choice has no content key at all, as Azure's.
        if choice.finish_reason != "content_filter":
            message["content"] = choice.text
        if choice.tool_calls:
            message["tool_calls"] = choice.tool_calls
        choices.append(
            {
                "index": choice.index,
                "finish_reason": choice.finish_reason,
                "logprobs": choice.logprobs,
                "message": message,
            }
        )
    body = {
        **_head("chatcmpl", "chat.completion", result.usage.model or model),
        "choices": choices,
        "usage": usage(result.usage),
    }
    return _annotated(body, prompt_results, choice_results)


def text_completion(
    result: Completion,
    model: str,
    prompt_results: list[FilterResults] | None = None,
    choice_results: dict[int, FilterResults] | None = None,
) -> dict[str, Any]:
    body = {
        **_head("cmpl", "text_completion", result.usage.model or model),
        "choices": [
            {
                "index": choice.index,
                "text": choice.text or "",
                "finish_reason": choice.finish_reason,
                "logprobs": choice.logprobs,
            }
            for choice in result.choices
        ],
        "usage": usage(result.usage),
    }
    return _annotated(body, prompt_results, choice_results)


class ChunkWriter:
    """Builds the chunks of one streamed completion (chat or text)."""

    def __init__(self, model: str, *, chat: bool, include_usage: bool) -> None:
        self.chat = chat
        self.include_usage = include_usage
        self._started: set[int] = set()
        self._head = (
            _head("chatcmpl", "chat.completion.chunk", model)
            if chat
            else _head("cmpl", "text_completion", model)
        )

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        chunk = {**self._head, "choices": choices}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def prompt_filter_results(self, results: list[FilterResults]) -> dict[str, Any]:
        """The stream's first event when a filter ran, as Azure sends it: no id, no choices."""
        return {"id": "", "object": "", "created": 0, "model": "", "choices": [], "prompt_filter_results": results}

    def annotation(
        self, index: int, results: FilterResults, offsets: dict[str, int], finish: str | None
    ) -> dict[str, Any]:
        """Asynchronous filter mode: the results of text already sent, in an event of its own
        as Azure sends it (no id, no delta); ``finish`` content_filter when the check blocked."""
        choice = {
            "index": index,
            "finish_reason": finish,
            "content_filter_results": results,
            "content_filter_offsets": offsets,
        }
        chunk = {"id": "", "object": "", "created": 0, "model": "", "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def delta(self, item: Delta, results: FilterResults | None = None) -> list[dict[str, Any]]:
        if not self.chat:
            choice = {
                "index": item.index,
                "text": item.text or "",
                "finish_reason": item.finish_reason,
                "logprobs": item.logprobs,
            }
            if results is not None:
                choice["content_filter_results"] = results
            return [self._chunk([choice])]
        chunks = []
        if item.index not in self._started:
            self._started.add(item.index)
            opening = {"role": "assistant", "content": "", "refusal": None}
            chunks.append(self._chunk([self._choice(item.index, opening, None)]))
        delta: dict[str, Any] = {}
        if item.text:
            delta["content"] = item.text
        if item.tool_calls:
            delta["tool_calls"] = item.tool_calls
        if delta or item.finish_reason:
            choice = self._choice(item.index, delta, item.finish_reason, item.logprobs)
            if results is not None:
                choice["content_filter_results"] = results
            chunks.append(self._chunk([choice]))
        return chunks

    @staticmethod
    def _choice(
        index: int, delta: dict[str, Any], finish: str | None, logprobs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {"index": index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}

    def usage(self, value: Usage) -> dict[str, Any] | None:
        if not self.include_usage:
            return None
        return {**self._head, "choices": [], "usage": usage(value)}


def embeddings(result: Embeddings, model: str, encoding: str | None) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for index, vector in enumerate(result.vectors):
        embedding: Any = vector  # orjson writes numpy arrays directly
        if encoding == "base64":
            embedding = base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "model": model,
        "data": data,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }
