"""Embeddings with sentence-transformers on the CPU, run in a worker process."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from typing import Any

from stockade.backends.base import Embeddings, ModelHost, PoolSpec, Prepared
from stockade.backends.embedding_checks import refuse_other_dimensions, refuse_overlong
from stockade.errors import InvalidRequest
from stockade.requests import EmbeddingRequest

# The bundled model's limit: longer inputs are refused, as Azure refuses them, not truncated.
MAX_TOKENS = 512


class SentenceRunner:
    """Owns one sentence-transformers model in a worker process."""

    def __init__(self, model_path: str, max_tokens: int, threads: int) -> None:
        # The weights ship inside a Python package; nothing may reach for a model hub.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        # No "Loading weights" progress bar on the server's terminal.
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        import torch
        import tqdm  # type: ignore[import-untyped]
        from sentence_transformers import SentenceTransformer

        # tqdm takes a lock for every bar, even a disabled one, and its default is a named
        # multiprocessing semaphore, which this process, killed when its pool closes, never
        # removes: resource_tracker warned of a leaked semaphore at every exit. Its bars (none
        # are shown) need only a lock of this process.
        tqdm.tqdm.set_lock(threading.RLock())

        if threads:
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(model_path, device="cpu")
        self.model.max_seq_length = max_tokens
        self.tokenizer = self.model.tokenizer

    def embed(self, job: EmbeddingJob) -> Embeddings:
        inputs = self._decode(job.inputs) if job.token_ids else job.inputs
        vectors = self.model.encode(
            list(inputs), convert_to_numpy=True, normalize_embeddings=True, batch_size=64,
            show_progress_bar=False,
        )
        return Embeddings(vectors=vectors.astype("float32", copy=False), prompt_tokens=job.prompt_tokens)

    def _decode(self, token_lists: list[list[int]]) -> list[str]:
        return list(self.tokenizer.batch_decode(token_lists, skip_special_tokens=True))


@dataclass(frozen=True, slots=True)
class EmbeddingJob:
    """Inputs already counted and checked against the model's limits."""

    inputs: list[Any]  # strings, or token-id lists when ``token_ids``
    token_ids: bool
    prompt_tokens: int


def _tokenizer(model_path: str) -> Any:
    """The model's fast tokenizer alone (the Rust ``tokenizers`` library, no torch), counting
    whole inputs as the model will see them."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(os.path.join(model_path, "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class SentenceEmbeddingModel:
    """An EmbeddingModel served by sentence-transformers worker processes; inputs are counted and
    checked here, once, and embedded there."""

    def __init__(self, name: str, model_path: str, dimensions: int, host: ModelHost) -> None:
        local = host.settings.local
        self.dimensions = dimensions
        self.model_path = model_path
        self._tokenizer: Any = None
        self.workers = host.worker_pool(
            PoolSpec(
                name=name,
                runner="stockade.backends.sentence:SentenceRunner",
                options={"model_path": model_path, "max_tokens": MAX_TOKENS, "threads": local.threads},
                queue_size=local.queue_size,
                wait_seconds=local.wait_seconds,
            )
        )

    async def start(self) -> None:
        await self.workers.start()
        self._tokenizer = await asyncio.to_thread(_tokenizer, self.model_path)

    async def prepare(self, request: EmbeddingRequest) -> Prepared:
        refuse_other_dimensions(request.dimensions, self.dimensions)
        inputs = request.inputs()
        if inputs and isinstance(inputs[0], list):
            self._check_vocabulary(inputs)
            lengths = [len(ids) for ids in inputs]
            job = EmbeddingJob(list(inputs), True, sum(lengths))
        else:
            encoded = await asyncio.to_thread(self._tokenizer.encode_batch, inputs)
            lengths = [len(encoding.ids) for encoding in encoded]
            job = EmbeddingJob(list(inputs), False, sum(lengths))
        refuse_overlong(lengths, MAX_TOKENS)
        return Prepared(job.prompt_tokens, job)

    def _check_vocabulary(self, token_lists: list[list[int]]) -> None:
        size = self._tokenizer.get_vocab_size()
        for index, ids in enumerate(token_lists):
            if any(i >= size or i < 0 for i in ids):
                raise InvalidRequest(
                    f"input {index} holds token ids outside this model's vocabulary (0-{size - 1}); "
                    "token arrays must use the deployment model's own tokenizer",
                    param="input",
                )

    async def embed(self, prepared: Prepared) -> Embeddings:
        result: Embeddings = await self.workers.call("embed", prepared.job)
        return result

    async def close(self) -> None:
        await self.workers.close()
