"""What every local embeddings model refuses, in the words Azure uses for it."""

from __future__ import annotations

from stockade.errors import ContextLengthExceeded, InvalidRequest


def refuse_other_dimensions(requested: int | None, dimensions: int) -> None:
    if requested is not None and requested != dimensions:
        raise InvalidRequest(
            f"This model does not support specifying dimensions; its embeddings always have "
            f"{dimensions}. Leave out 'dimensions' or set it to {dimensions}.",
            param="dimensions",
        )


def refuse_overlong(lengths: list[int], max_tokens: int) -> None:
    """Longer inputs are refused, as Azure refuses them, not truncated."""
    longest = max(lengths)
    if longest > max_tokens:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {max_tokens} tokens, however you "
            f"requested {longest} tokens in input {lengths.index(longest)}. Please reduce "
            "your input.",
            param="input",
        )
