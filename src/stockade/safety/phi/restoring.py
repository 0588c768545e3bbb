"""Putting a request's values back into the model's reply: whole, or as it streams.

A streamed stand-in may arrive in pieces (``<PERS`` then ``ON_1>``). Each choice's text holds back what could still be the start of a stand-in until
the next piece shows whether it is one, so no piece of a stand-in is ever sent, and nothing the
client receives is missing a value. A surrogate matches only as a whole word, so one that ends
a piece is held until the next piece shows where the word ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stockade.backends.base import Delta, Events, Usage
from stockade.safety.phi.substitution import Substitutions


class Restorer:
    def __init__(self, substitutions: Substitutions, *, json: bool = False) -> None:
        self.substitutions = substitutions
        self._restore: Callable[[str], str] = substitutions.restore_json if json else substitutions.restore
        self._held = ""

    def feed(self, piece: str) -> str:
        """What can be sent now of the text so far, values restored."""
        text = self._held + piece
        cut = self._safe(text)
        self._held = text[cut:]
        return self._restore(text[:cut])

    def end(self) -> str:
        """The rest: a held start that never became a stand-in is the model's own text."""
        text, self._held = self._held, ""
        return self._restore(text)

    def _safe(self, text: str) -> int:
        """How much of ``text`` is decided: no stand-in can begin in it and end beyond it."""
        stand_ins = self.substitutions.originals
        bounded = self.substitutions.pseudonyms
        cut = len(text)
        for start in range(max(0, len(text) - max(map(len, stand_ins)) + 1), len(text)):
            if bounded and start > 0 and text[start - 1].isalnum():
                continue
            rest = text[start:]
            if any(s.startswith(rest) for s in stand_ins):
                cut = start
                break
        for match in self.substitutions.pattern.finditer(text):
            # A match cut through, or (a surrogate) one whose word may go on in the next piece.
            if match.end() > cut or (bounded and match.end() == len(text)):
                cut = min(cut, match.start())
        return cut


async def restored(events: Events, substitutions: Substitutions) -> Events:
    """The model's events with the values put back, each as soon as it is whole. Per-token log
    probabilities are dropped: they are of the stand-ins the model saw, not of the text sent."""
    texts: dict[int, Restorer] = {}
    try:
        async for item in events:
            if isinstance(item, Usage):
                yield item
                continue
            text = texts.setdefault(item.index, Restorer(substitutions))
            released = text.feed(item.text) if item.text else ""
            if item.finish_reason is not None:
                released += text.end()
            calls = [_restored_call(call, substitutions) for call in item.tool_calls or ()]
            if released or calls or item.finish_reason is not None:
                yield Delta(item.index, released or None, calls or None, item.finish_reason)
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def _restored_call(call: dict[str, Any], substitutions: Substitutions) -> dict[str, Any]:
    """A tool call with the values back in its arguments. Models here send a call whole, in one
    event; a stand-in split across the argument pieces of an upstream's stream stays as it is."""
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    return {**call, "function": {**function, "arguments": substitutions.restore_json(function["arguments"])}}
