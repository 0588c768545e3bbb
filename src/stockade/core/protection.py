"""PHI protection on the inference path: a prompt's identifiers found before the model runs
(and annotated, blocked, or replaced in what the model is sent), and the values put back in its
reply, whole or streamed. A stage of its own, beside the content filters' screening."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stockade.backends.base import Events
from stockade.core.filtering import record
from stockade.errors import ContentFiltered, InvalidRequest
from stockade.requests import ChatRequest, CompletionRequest, EmbeddingRequest
from stockade.safety.phi.guard import PhiGuard, Protected
from stockade.safety.phi.restoring import restored
from stockade.safety.phi.substitution import Substitutions
from stockade.telemetry import Call

FilterResults = list[dict[str, Any]]  # prompt_filter_results


class Protection:
    """One call's PHI protection."""

    def __init__(self, guard: PhiGuard, call: Call) -> None:
        self.guard = guard
        self.call = call
        self.substitutions: Substitutions | None = None

    async def _protect(self, prompts: list[list[str]]) -> Protected:
        protected = await self.guard.protect(prompts)
        record(self.call, self.guard.policy.name, protected.decisions)
        self.substitutions = protected.substitutions
        return protected

    def _refuse(self, protected: Protected) -> ContentFiltered:
        return ContentFiltered.by_policy(
            _detected(protected.results), self.guard.policy.name, self.call.deployment or ""
        )

    async def prompt(
        self, request: ChatRequest | CompletionRequest, results: FilterResults | None
    ) -> tuple[ChatRequest | CompletionRequest, FilterResults]:
        """The request as the model may see it, and ``prompt_filter_results`` with the PHI
        results added; raises ``ContentFiltered`` if the policy blocks what was found."""
        prompts = _chat_texts(request) if isinstance(request, ChatRequest) else _completion_texts(request)
        protected = await self._protect(prompts)
        if protected.blocked:
            raise self._refuse(protected)
        merged = [
            {"prompt_index": index, "content_filter_results": {**previous, **added}}
            for index, (previous, added) in enumerate(
                zip(_previous(results, len(prompts)), protected.results, strict=True)
            )
        ]
        if self.substitutions is None:
            return request, merged
        texts = iter(text for prompt in protected.prompts for text in prompt)
        if isinstance(request, ChatRequest):
            return _chat_with(request, texts), merged
        return _completion_with(request, texts), merged

    async def embeddings(self, request: EmbeddingRequest) -> EmbeddingRequest:
        """The input as the model may see it (there are no results to send on this route)."""
        inputs = request.inputs()
        if not all(isinstance(item, str) for item in inputs):
            raise InvalidRequest(
                "This deployment's content filter policy protects PHI in the input text, and "
                "token ids have none to look at. Send the input as text.",
                param="input",
            )
        protected = await self._protect([[item] for item in inputs])  # type: ignore[list-item]
        if protected.blocked:
            raise self._refuse(protected)
        if self.substitutions is None:
            return request
        replaced = [prompt[0] for prompt in protected.prompts]
        return request.model_copy(update={"input": replaced if isinstance(request.input, list) else replaced[0]})

    def stream(self, events: Events) -> Events:
        """The model's events with the values back: what the client and the filters see."""
        return events if self.substitutions is None else restored(events, self.substitutions)


def _previous(results: FilterResults | None, count: int) -> list[dict[str, Any]]:
    if results is None:
        return [{} for _ in range(count)]
    return [entry["content_filter_results"] for entry in results]


def _detected(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The result of the first prompt where something was found: the one the 400 reports."""
    return next(r for r in results if any(v.get("detected") for v in r.values()))


# -- the texts of a request, and the request with them replaced -------------------------------
# A chat is one prompt: every message's text (each text part of one with parts) and the
# arguments of earlier tool calls, in order. A completion has a prompt per string.


def _chat_texts(request: ChatRequest) -> list[list[str]]:
    texts: list[str] = []
    for message in request.messages:
        if isinstance(message.content, str):
            texts.append(message.content)
        elif message.content is not None:
            message.text()  # refuses the parts that are not text
            texts += [str(part.get("text") or part.get("refusal") or "") for part in message.content]
        texts += [_arguments(call) for call in message.tool_calls or ()]
    return [texts]


def _arguments(call: dict[str, Any]) -> str:
    function = call.get("function")
    return str(function.get("arguments") or "") if isinstance(function, dict) else ""


def _chat_with(request: ChatRequest, texts: Iterator[str]) -> ChatRequest:
    messages = []
    for message in request.messages:
        update: dict[str, Any] = {}
        if isinstance(message.content, str):
            update["content"] = next(texts)
        elif message.content is not None:
            update["content"] = [
                {**part, ("refusal" if part.get("type") == "refusal" else "text"): next(texts)}
                for part in message.content
            ]
        if message.tool_calls:
            update["tool_calls"] = [_with_arguments(call, next(texts)) for call in message.tool_calls]
        messages.append(message.model_copy(update=update))
    return request.model_copy(update={"messages": messages})


def _with_arguments(call: dict[str, Any], arguments: str) -> dict[str, Any]:
    function = call.get("function")
    return {**call, "function": {**function, "arguments": arguments}} if isinstance(function, dict) else call


def _completion_texts(request: CompletionRequest) -> list[list[str]]:
    prompt = request.prompt
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not all(isinstance(item, str) for item in prompts):
        raise InvalidRequest(
            "This deployment's content filter policy protects PHI in prompt text, and token-id "
            "prompts have none to look at. Send the prompt as text.",
            param="prompt",
        )
    texts = [[item] for item in prompts]
    if request.suffix:
        texts[0].append(request.suffix)
    return texts  # type: ignore[return-value]


def _completion_with(request: CompletionRequest, texts: Iterator[str]) -> CompletionRequest:
    update: dict[str, Any] = {}
    if isinstance(request.prompt, str):
        update["prompt"] = next(texts)
        if request.suffix:
            update["suffix"] = next(texts)
    else:
        prompts = []
        for index in range(len(request.prompt)):
            prompts.append(next(texts))
            if index == 0 and request.suffix:
                update["suffix"] = next(texts)
        update["prompt"] = prompts
    return request.model_copy(update=update)
