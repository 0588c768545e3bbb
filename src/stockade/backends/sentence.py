"""Embeddings with sentence-transformers on the CPU, run in a worker process."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from stockade.backends.base import Embeddings
from stockade.backends.worker import ModelWorkers
from stockade.errors import ContextLengthExceeded, InvalidRequest
from stockade.requests import EmbeddingRequest


class SentenceRunner:
    """Owns one sentence-transformers model in a worker process."""

    def __init__(self, model_path: str, max_tokens: int, threads: int) -> None:
        # The weights ship inside a Python package; nothing may reach for a model hub.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(model_path, device="cpu")
        self.model.max_seq_length = max_tokens
        self.max_tokens = max_tokens
        self.tokenizer = self.model.tokenizer

    def embed(self, inputs: list[str] | list[list[int]]) -> Embeddings:
        if inputs and isinstance(inputs[0], list):
            inputs = self._decode(inputs)  # type: ignore[arg-type]
        lengths = [len(ids) for ids in self.tokenizer(list(inputs))["input_ids"]]
        longest = max(lengths)
        if longest > self.max_tokens:
            index = lengths.index(longest)
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self.max_tokens} tokens, however you "
                f"requested {longest} tokens in input {index}. Please reduce your input.",
                param="input",
            )
        vectors = self.model.encode(
            list(inputs), convert_to_numpy=True, normalize_embeddings=True, batch_size=64
        )
        return Embeddings(vectors=vectors.astype("float32", copy=False), prompt_tokens=sum(lengths))

    def _decode(self, token_lists: list[list[int]]) -> list[str]:
        size = self.tokenizer.vocab_size
        for index, ids in enumerate(token_lists):
            if any(i >= size for i in ids):
                raise InvalidRequest(
                    f"input {index} holds token ids outside this model's vocabulary (0-{size - 1}); "
                    "token arrays must use the deployment model's own tokenizer",
                    param="input",
                )
        return self.tokenizer.batch_decode(token_lists, skip_special_tokens=True)


def _tokenizer(model_path: str) -> Any:
    """The model's fast tokenizer alone (the Rust ``tokenizers`` library, no torch), counting
    whole inputs as the worker does."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(os.path.join(model_path, "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class SentenceEmbeddingModel:
    """An EmbeddingModel served by sentence-transformers worker processes."""

    def __init__(self, name: str, model_path: str, dimensions: int, settings: Any) -> None:
        self.dimensions = dimensions
        self.model_path = model_path
        self._tokenizer: Any = None
        self.workers = ModelWorkers(
            "stockade.backends.sentence:SentenceRunner",
            {"model_path": model_path, "max_tokens": 512, "threads": settings.local.threads},
            name=name,
            processes=1,
            queue_size=settings.local.queue_size,
        )

    async def start(self) -> None:
        await self.workers.start()
        self._tokenizer = await asyncio.to_thread(_tokenizer, self.model_path)

    async def prompt_tokens(self, request: EmbeddingRequest) -> int:
        inputs = request.inputs()
        if inputs and isinstance(inputs[0], list):
            return sum(len(ids) for ids in inputs)
        encoded = await asyncio.to_thread(self._tokenizer.encode_batch, inputs)
        return sum(len(encoding.ids) for encoding in encoded)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        if request.dimensions is not None and request.dimensions != self.dimensions:
            raise InvalidRequest(
                f"This model does not support specifying dimensions; its embeddings always have "
                f"{self.dimensions}. Leave out 'dimensions' or set it to {self.dimensions}.",
                param="dimensions",
            )
        return await self.workers.call("embed", request.inputs())

    async def close(self) -> None:
        await self.workers.close()
