"""A fixed-cost OpenAI-compatible upstream for overhead and rate-limit measurements.

Every chat request gets the same reply. Its usage reports ``PROMPT_TOKENS`` prompt tokens (no more
than Stockade's estimate of any prompt) and the request's ``max_tokens`` as completion tokens, so
a call uses exactly what it reserved, less a known prompt difference. ``GET /tally`` lists
``[arrival time, total tokens]`` for every chat request received since the last ``DELETE /tally``:
what the gateway really let through; ``GET /prompts`` the last message of each, in the same
order. An optional second argument is a delay in seconds before each reply. Bare ASGI on uvicorn,
so the mock costs little next to what it measures.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
import uvicorn

PROMPT_TOKENS = 5
DEFAULT_COMPLETION_TOKENS = 9
JSON = [(b"content-type", b"application/json")]

tally: list[tuple[float, int]] = []
prompts: list[str] = []
DELAY = 0.0  # set from the command line when run as the mock


def reply(completion_tokens: int) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "mock-model",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                }
            ],
            "usage": {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": completion_tokens,
                "total_tokens": PROMPT_TOKENS + completion_tokens,
            },
        }
    )


async def read_body(receive):  # type: ignore[no-untyped-def]
    """An ASGI request's whole body."""
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    if scope["path"] in ("/tally", "/prompts"):
        payload = orjson.dumps(tally if scope["path"] == "/tally" else prompts)
        if scope["method"] == "DELETE":
            tally.clear()
            prompts.clear()
    else:
        request = orjson.loads(body)
        completion_tokens = request.get("max_tokens") or DEFAULT_COMPLETION_TOKENS
        tally.append((time.time(), PROMPT_TOKENS + completion_tokens))
        prompts.append(request["messages"][-1]["content"])
        if DELAY:
            await asyncio.sleep(DELAY)
        payload = reply(completion_tokens)
    headers = [*JSON, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


if __name__ == "__main__":
    DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                log_level="warning", access_log=False, lifespan="off")
