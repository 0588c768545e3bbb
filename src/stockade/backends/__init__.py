"""Model backends behind one small interface: llama.cpp and sentence-transformers locally, or an
OpenAI-compatible upstream."""
