"""Stockade: a self-hosted, Azure-OpenAI-compatible LLM service."""

__version__ = "0.1.0"
