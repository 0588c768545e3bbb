"""Chat and text completion on llama.cpp (llama-cpp-python), run in worker processes.

Structured output is enforced, not hoped for: ``response_format`` and ``tools`` become llama.cpp
grammars, so even a 135M-parameter model returns valid JSON and well-formed tool calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from stockade.backends.base import Delta, Events, ModelHost, PoolSpec, Prepared, Usage
from stockade.errors import ContextLengthExceeded, InvalidRequest
from stockade.requests import ChatRequest, CompletionRequest

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar
    from llama_cpp.llama_types import CreateCompletionStreamResponse

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
# llama.cpp's customary repetition penalty, always on: without it small models loop inside JSON
# strings until max_tokens cuts them off. The API's presence/frequency penalties apply on top.
REPEAT_PENALTY = 1.1


@dataclass(slots=True)
class Job:
    """What a worker needs for one request: the prompt already tokenized, and the sampling.

    Picklable and free of pydantic objects, since it crosses a pipe to the worker process."""

    tokens: list[int]
    stop: list[str]  # the request's, with the chat template's own added
    max_tokens: int  # within the context window, checked when the job was prepared
    choices: int
    temperature: float
    top_p: float
    seed: int | None
    presence_penalty: float
    frequency_penalty: float
    logit_bias: dict[int, float] | None
    grammar: str | None = None
    tool_mode: str | None = None  # None, "forced" (output is a call) or "auto" (call or text)


# -- building a job from a request (parent process) -----------------------------------------


def chat_messages(request: ChatRequest) -> list[dict[str, str]]:
    """The messages as the chat template sees them, with the instructions for tools added."""
    messages = [_template_message(message) for message in request.messages]
    if request.tools and _tool_choice(request) != "none":
        _describe_tools(messages, request.tools)
    return messages


def _tool_choice(request: ChatRequest) -> str:
    """"none", "auto", "required", or "named" (the one function tool_choice names)."""
    if request.named_function is not None:
        return "named"
    return cast(str, request.tool_choice) or ("auto" if request.tools else "none")


def chat_constraints(request: ChatRequest) -> tuple[str | None, str | None]:
    """The grammar a chat request generates under, and its tool mode."""
    if request.logprobs:
        raise InvalidRequest("logprobs are not supported by local models", param="logprobs")
    tool_choice = _tool_choice(request)
    if request.tools and tool_choice != "none":
        functions = [tool.function for tool in request.tools]
        if tool_choice == "named":
            functions = [f for f in functions if f.name == request.named_function]
        call_grammar = _json_schema_grammar(_tool_call_schema(functions))
        if tool_choice == "auto":
            return _call_or_text_grammar(call_grammar), "auto"
        return call_grammar, "forced"
    if request.response_format and request.response_format.type == "json_object":
        return _json_schema_grammar({"type": "object"}), None
    if request.response_format and request.response_format.type == "json_schema":
        assert request.response_format.json_schema is not None
        return _json_schema_grammar(request.response_format.json_schema.schema_ or {}), None
    return None, None


def completion_prompt(request: CompletionRequest) -> str | list[int]:
    """The one prompt of a text completion: text, or token ids."""
    if request.echo or request.suffix or request.logprobs or (request.best_of or 1) > 1:
        raise InvalidRequest(
            "echo, suffix, logprobs and best_of are not supported by local models",
            param="prompt",
        )
    prompt = request.prompt
    if isinstance(prompt, list) and len(prompt) == 1 and not isinstance(prompt[0], int):
        prompt = prompt[0]
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        raise InvalidRequest("local models take one prompt per request", param="prompt")
    return prompt  # type: ignore[return-value]


def _template_message(message: Any) -> dict[str, str]:
    role = {"developer": "system", "function": "tool"}.get(message.role, message.role)
    text = message.text()
    if message.tool_calls:
        calls = "".join(
            TOOL_CALL_OPEN
            + json.dumps({"name": c["function"]["name"], "arguments": _arguments(c)})
            + TOOL_CALL_CLOSE
            for c in message.tool_calls
        )
        text = text + calls
    return {"role": role, "content": text}


def _arguments(call: dict[str, Any]) -> Any:
    raw = call.get("function", {}).get("arguments", "{}")
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return raw


def _describe_tools(messages: list[dict[str, str]], tools: list[Any]) -> None:
    described = json.dumps([tool.function.model_dump(exclude_none=True) for tool in tools])
    instruction = (
        f"You can call these functions: {described}\n"
        f"To call one, reply with {TOOL_CALL_OPEN}"
        '{"name": <function name>, "arguments": <arguments object>}'
        f"{TOOL_CALL_CLOSE}"
    )
    if messages and messages[0]["role"] == "system":
        messages[0] = {"role": "system", "content": messages[0]["content"] + "\n\n" + instruction}
    else:
        messages.insert(0, {"role": "system", "content": instruction})


def _tool_call_schema(functions: list[Any]) -> dict[str, Any]:
    variants = [
        {
            "type": "object",
            "properties": {
                "name": {"const": function.name},
                "arguments": function.parameters or {"type": "object", "properties": {}},
            },
            "required": ["name", "arguments"],
        }
        for function in functions
    ]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def _json_schema_grammar(schema: dict[str, Any]) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        grammar: str = json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:
        raise InvalidRequest(
            f"The JSON schema cannot be enforced: {exc}", param="response_format"
        ) from None
    return grammar


def _call_or_text_grammar(call_grammar: str) -> str:
    # Rename the call grammar's root and offer the model a choice: one wrapped call, or plain
    # text that does not begin with "<" (so text can never be mistaken for a call).
    renamed = re.sub(r"^root\s*::=", "tool-call ::=", call_grammar, flags=re.MULTILINE)
    return (
        f'root ::= "{TOOL_CALL_OPEN}" tool-call "{TOOL_CALL_CLOSE}" | plain-text\n'
        "plain-text ::= [^<] [^\\x00]*\n" + renamed
    )


# -- llama.cpp's own log -----------------------------------------------------------------------

# ggml's log levels as ggml.h numbers them now. llama-cpp-python's callback still maps an older
# numbering, so it printed llama.cpp's warnings (such as "n_ctx_seq (512) > n_ctx_train (0)",
# from every vocabulary-only load) to stderr whatever `verbose` said.
_GGML_DEBUG, _GGML_INFO, _GGML_WARN, _GGML_ERROR, _GGML_CONTINUED = 1, 2, 3, 4, 5
llama_log = logging.getLogger("stockade.llama_cpp")
_last_level = logging.DEBUG
_log_callback: Any = None  # kept referenced: llama.cpp calls it for as long as the process lives
# llama-cpp-python silences a load by pointing the whole process's stdout and stderr at
# /dev/null for its duration; two loads at once (two models starting) could leave them there.
_loading = threading.Lock()


def route_llama_logs() -> None:
    """Send llama.cpp's log to Python logging: its errors as errors, the rest (model loading,
    context sizes, warnings about them) at debug, so that it shows only with log_level debug."""
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def callback(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        global _last_level
        if level != _GGML_CONTINUED:
            _last_level = logging.ERROR if level == _GGML_ERROR else logging.DEBUG
        message = text.decode("utf-8", "replace").rstrip()
        if message and llama_log.isEnabledFor(_last_level):
            llama_log.log(_last_level, "%s", message)

    _log_callback = callback
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def load_llama(**options: Any) -> Llama:
    """A llama_cpp.Llama, its log routed to Python logging, one load at a time per process."""
    from llama_cpp import Llama

    route_llama_logs()
    with _loading:
        return Llama(verbose=False, **options)


# -- prompts to tokens (the server process, once per request) ---------------------------------


class PromptTooLong(Exception):
    """A prompt's length in bytes proves it holds more tokens than allowed."""

    def __init__(self, at_least: int) -> None:
        super().__init__(at_least)
        self.at_least = at_least


class Prompter:
    """Applies the model's chat template and tokenizes, exactly as generation will."""

    def __init__(self, llm: Any) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = llm
        # No token is longer than this, so a prompt of B bytes has at least B / it tokens: enough
        # to refuse a prompt far past the context without tokenizing it (a 15 MiB prompt took 13 s
        # of CPU to tokenize before it was refused).
        self.longest_token_bytes = _longest_token_bytes(llm)
        eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "ignore")
        bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "ignore")
        self.formatter = Jinja2ChatFormatter(
            template=llm.metadata["tokenizer.chat_template"], eos_token=eos, bos_token=bos
        )

    @classmethod
    def vocabulary_only(cls, model_path: str) -> Prompter:
        """A prompter that loads the model's vocabulary and not its weights."""
        return cls(load_llama(model_path=model_path, vocab_only=True))

    def check_token_ids(self, ids: Iterable[int], param: str) -> None:
        """Token ids a caller sent must be the model's: llama.cpp indexes its vocabulary with
        them unchecked."""
        vocabulary = self.llm.n_vocab()
        beyond = [token for token in ids if token >= vocabulary]
        if beyond:
            raise InvalidRequest(
                f"Token id {beyond[0]} is not in this model's vocabulary, whose ids go from 0 to "
                f"{vocabulary - 1}. Send token ids of this model's tokenizer.",
                param=param,
            )

    def tokens(
        self, prompt: str | list[int] | list[dict[str, str]], stop: list[str], *, chat: bool, most: int
    ) -> tuple[list[int], list[str]]:
        """The prompt's tokens, and the stop sequences with the chat template's own added.
        Raises PromptTooLong, without tokenizing, for a prompt too long to have ``most`` tokens."""
        if isinstance(prompt, list) and (not prompt or isinstance(prompt[0], int)):
            ids = cast(list[int], list(prompt))
            self.check_token_ids(ids, "prompt")
            return ids, stop
        if chat:
            # llama-cpp-python types messages as OpenAI's TypedDicts; ours are their plain form.
            formatted = self.formatter(messages=cast(Any, prompt))
            template_stop = [formatted.stop] if isinstance(formatted.stop, str) else formatted.stop
            stop = stop + [s for s in template_stop or () if s]
            text, bos, special = formatted.prompt.encode(), False, True
        else:
            assert isinstance(prompt, str)
            text, bos, special = prompt.encode(), True, False
        at_least = len(text) // self.longest_token_bytes
        if at_least > most:
            raise PromptTooLong(at_least)
        return self.llm.tokenize(text, add_bos=bos, special=special), stop


def _longest_token_bytes(llm: Any) -> int:
    # llama-cpp-python's detokenize cuts pieces at 32 bytes; some tokens are longer (runs of 64
    # dashes). llama.cpp returns minus a piece's size when the buffer is too small for it.
    import ctypes

    from llama_cpp import llama_token_to_piece

    size = 256
    buffer = ctypes.create_string_buffer(size)
    vocab = llm._model.vocab
    pieces = (llama_token_to_piece(vocab, token, buffer, size, 0, True) for token in range(llm.n_vocab()))
    return max(1, *(abs(int(length)) for length in pieces))


# -- the runner (worker process) ---------------------------------------------------------------


class LlamaRunner:
    """Owns one llama.cpp model in a worker process."""

    def __init__(self, model_path: str, context_tokens: int, threads: int) -> None:
        from llama_cpp import llama_vocab_is_eog

        self.llm = load_llama(
            model_path=model_path, n_ctx=context_tokens, n_threads=threads or os.cpu_count() or 1
        )
        self._grammars: dict[str, LlamaGrammar] = {}
        self._sampled = 0
        self._most = 0
        self._generate = self.llm.generate
        self.llm.generate = self._count_sampled  # type: ignore[method-assign, assignment]
        self._vocab = self.llm._model.vocab
        self._is_eog = llama_vocab_is_eog

    def generate(self, job: Job) -> Iterator[Delta | Usage]:
        prompt_tokens = len(job.tokens)
        yield Usage(prompt_tokens, 0, final=False)
        completion_tokens = 0
        for index in range(job.choices):
            # llama.cpp's seeds are 32-bit; the API's are 64-bit, so they are taken modulo 2**32.
            seed = None if job.seed is None else (job.seed + index) % 2**32
            pieces = self._sample(job, seed)
            if job.tool_mode is None:
                for kind, value in pieces:
                    if kind == "text":
                        yield Delta(index, text=value)
                    else:
                        completion_tokens += value[1]
                        yield Delta(index, finish_reason=value[0])
            else:
                completion_tokens += yield from _tool_output(index, pieces, job.tool_mode)
        yield Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    def _sample(self, job: Job, seed: int | None) -> Iterator[tuple[str, Any]]:
        """Yields ("text", piece) items, then ("end", (finish_reason, completion_tokens))."""
        finish = "stop"
        self._most = job.max_tokens
        stream = self.llm.create_completion(
            job.tokens,
            max_tokens=job.max_tokens,
            temperature=job.temperature,
            top_p=job.top_p,
            stop=job.stop or None,
            seed=seed,
            presence_penalty=job.presence_penalty,
            frequency_penalty=job.frequency_penalty,
            logit_bias=job.logit_bias,
            repeat_penalty=REPEAT_PENALTY,
            grammar=self._grammar(job.grammar),
            stream=True,
        )
        for chunk in cast(Iterator["CreateCompletionStreamResponse"], stream):
            choice = chunk["choices"][0]
            if choice["text"]:
                yield "text", choice["text"]
            if choice.get("finish_reason"):
                finish = choice["finish_reason"] or finish
        yield "end", (finish, self._sampled)

    def _count_sampled(self, *args: Any, **kwargs: Any) -> Iterator[int]:
        """Wraps Llama.generate to count sampled tokens and to stop at max_tokens.

        Streamed chunks are no measure, since text that might begin a stop sequence is held back
        and merged. The binding itself samples past max_tokens while a character is incomplete,
        so a reply of half-characters would run until the context is full; ending the generator
        here ends the reply with finish_reason "length", the incomplete bytes dropped."""
        self._sampled = 0
        for token in self._generate(*args, **kwargs):
            if not self._is_eog(self._vocab, token):  # the end-of-generation token is not part of the reply
                if self._sampled == self._most:
                    return
                self._sampled += 1
            yield token

    def _grammar(self, source: str | None) -> LlamaGrammar | None:
        if source is None:
            return None
        from llama_cpp import LlamaGrammar

        grammar = self._grammars.get(source)
        if grammar is None:
            grammar = self._grammars[source] = LlamaGrammar.from_string(source, verbose=False)
        return grammar


def _tool_output(
    index: int, pieces: Iterator[tuple[str, Any]], mode: str
) -> Generator[Delta, None, int]:
    """Buffers a tool call and emits it whole; in auto mode plain text streams as usual."""
    buffered, streaming_text = "", False
    for kind, value in pieces:
        if kind == "text":
            if streaming_text:
                yield Delta(index, text=value)
                continue
            buffered += value
            if mode == "auto" and not buffered.startswith("<"):
                streaming_text = True
                yield Delta(index, text=buffered)
            continue
        finish, generated = cast(tuple[str, int], value)
        if not streaming_text:
            call = _parse_call(buffered)
            if call is not None:
                yield Delta(index, tool_calls=[call])
                finish = "tool_calls" if finish == "stop" else finish
        yield Delta(index, finish_reason=finish)
        return generated
    return 0


def _parse_call(raw: str) -> dict[str, Any] | None:
    body = raw.removeprefix(TOOL_CALL_OPEN).removesuffix(TOOL_CALL_CLOSE)
    try:
        call = json.loads(body)
    except json.JSONDecodeError:
        return None  # cut off by max_tokens: no call was made
    return {
        "index": 0,
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
    }


# -- the backend (server process) -------------------------------------------------------------


class LlamaCppChatModel:
    """A ChatModel whose prompts are prepared here and whose generation runs in llama.cpp worker
    processes (the vocabulary alone is loaded in this process, for the chat template and the
    tokenizer)."""

    def __init__(
        self, name: str, model_path: str, host: ModelHost, *, context_tokens: int | None = None
    ) -> None:
        """``context_tokens`` defaults to the server's ``local.context_tokens``."""
        local = host.settings.local
        self.model_path = model_path
        self.context_tokens = context_tokens or local.context_tokens
        self.reply_tokens = local.reply_tokens
        self.workers = host.worker_pool(
            PoolSpec(
                name=name,
                runner="stockade.backends.llamacpp:LlamaRunner",
                options={
                    "model_path": model_path,
                    "context_tokens": self.context_tokens,
                    "threads": local.threads,
                },
                processes=local.chat_workers,
                queue_size=local.queue_size,
                wait_seconds=local.wait_seconds,
            )
        )
        self._prompter: Prompter | None = None

    async def start(self) -> None:
        await self.workers.start()
        self._prompter = await asyncio.to_thread(Prompter.vocabulary_only, self.model_path)

    async def prepare(self, request: ChatRequest | CompletionRequest) -> Prepared:
        return await asyncio.to_thread(self._prepare, request)

    def _prepare(self, request: ChatRequest | CompletionRequest) -> Prepared:
        assert self._prompter is not None, "start() first"
        stop = request.stop_sequences()
        limit = self._reply_limit(request)
        grammar, tool_mode = None, None
        try:
            if isinstance(request, ChatRequest):
                grammar, tool_mode = chat_constraints(request)
                tokens, stop = self._prompter.tokens(
                    chat_messages(request), stop, chat=True, most=self.context_tokens
                )
            else:
                tokens, stop = self._prompter.tokens(
                    completion_prompt(request), stop, chat=False, most=self.context_tokens
                )
        except PromptTooLong as too_long:
            raise self._context_exceeded(request, limit, too_long.at_least, at_least=True) from None
        budget = self.context_tokens - len(tokens)
        if (limit is not None and limit > budget) or budget <= 0:
            raise self._context_exceeded(request, limit, len(tokens))
        logit_bias = None
        if request.logit_bias:
            logit_bias = {int(k): float(v) for k, v in request.logit_bias.items()}
            self._prompter.check_token_ids(logit_bias, "logit_bias")
        job = Job(
            tokens=tokens,
            stop=stop,
            max_tokens=limit or budget,
            choices=request.choices,
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            seed=request.seed,
            presence_penalty=request.presence_penalty or 0.0,
            frequency_penalty=request.frequency_penalty or 0.0,
            logit_bias=logit_bias,
            grammar=grammar,
            tool_mode=tool_mode,
        )
        return Prepared(len(tokens), job)

    def _reply_limit(self, request: ChatRequest | CompletionRequest) -> int | None:
        """The request's own limit, capped by local.reply_tokens as llama-server caps a request's
        n_predict by its --n-predict: a client that asks every reply for thousands of tokens
        (Copilot asks 4,096) cannot make a CPU write for minutes, nor fill a small context."""
        limit = request.completion_limit
        if self.reply_tokens is None:
            return limit
        return self.reply_tokens if limit is None else min(limit, self.reply_tokens)

    def _context_exceeded(
        self,
        request: ChatRequest | CompletionRequest,
        limit: int | None,
        prompt_tokens: int,
        *,
        at_least: bool = False,
    ) -> ContextLengthExceeded:
        limit = limit or 0
        bound = "at least " if at_least else ""  # counted from the prompt's bytes, not its tokens
        return ContextLengthExceeded(
            f"This model's maximum context length is {self.context_tokens} tokens. However, "
            f"you requested {bound}{prompt_tokens + limit} tokens ({bound}{prompt_tokens} in the "
            f"messages, {limit} in the "
            "completion). Please reduce the length of the messages or completion.",
            param="messages" if isinstance(request, ChatRequest) else "prompt",
        )

    def generate(self, prepared: Prepared) -> Events:
        return self.workers.stream("generate", prepared.job)

    async def close(self) -> None:
        await self.workers.close()
