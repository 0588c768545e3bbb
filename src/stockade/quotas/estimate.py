"""How many tokens a call reserves at admission, before anyone knows how long the reply will be.

As Azure does: the prompt's tokens plus the most the reply may use, ``max_tokens`` (or
``max_completion_tokens``) for each of the ``n`` choices. A call that sets no limit reserves
``limits.default_max_tokens`` per choice. Once the call completes, the reservation is corrected to
the tokens really used (see ``Counters.adjust``).

Local models count prompt tokens with their own tokenizer. For upstream models, whose tokenizer
Stockade does not have, ``approximate_prompt_tokens`` estimates from the characters sent, as Azure
itself does; the correction at completion makes the count exact.
"""

from __future__ import annotations

import json
from typing import Any

from stockade.requests import ChatRequest, CompletionRequest, EmbeddingRequest

CHARS_PER_TOKEN = 4  # English text averages about four characters per token
TOKENS_PER_MESSAGE = 4  # role and separators, as OpenAI's chat formats add them
REPLY_PRIMING = 3


def reserved_tokens(
    request: ChatRequest | CompletionRequest | EmbeddingRequest,
    prompt_tokens: int,
    default_max_tokens: int,
) -> int:
    if isinstance(request, EmbeddingRequest):
        return prompt_tokens
    per_choice = request.completion_limit or default_max_tokens
    choices = request.choices
    if isinstance(request, CompletionRequest) and request.best_of:
        choices = max(choices, request.best_of)
    return prompt_tokens + per_choice * choices


def approximate_prompt_tokens(request: ChatRequest | CompletionRequest | EmbeddingRequest) -> int:
    if isinstance(request, ChatRequest):
        total = REPLY_PRIMING + _text_tokens(_json(request.tools)) + _text_tokens(
            _json(request.response_format)
        )
        for message in request.messages:
            total += TOKENS_PER_MESSAGE + _text_tokens(message.text())
            total += _text_tokens(_json(message.tool_calls))
        return total
    inputs = request.prompt if isinstance(request, CompletionRequest) else request.input
    return _inputs_tokens(inputs)


def _inputs_tokens(inputs: Any) -> int:
    if isinstance(inputs, str):
        return _text_tokens(inputs)
    if inputs and isinstance(inputs[0], int):
        return len(inputs)
    return sum(_inputs_tokens(item) for item in inputs)


def _text_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def _json(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    elif isinstance(value, list):
        value = [v.model_dump(exclude_none=True) if hasattr(v, "model_dump") else v for v in value]
    return json.dumps(value)
