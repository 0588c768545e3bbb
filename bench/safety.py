"""The local safety classifier's and the prompt shields' cost: p50 and p99 per 200-token prompt,
in process.

Legs, on the same 20 prompts of exactly 200 MiniLM tokens (held-out examples run together):

- **rate**: the classifier's own work, on the calling thread (tokenize, sentence and window
  vectors, the heads);
- **classify**: what a request waits for, ``await classify([prompt])``, which rates in a thread;
- **shields detect**: the prompt shields' detector on the calling thread (both heads, one pass);
- **shields check**: what a request waits for under a policy that blocks jailbreaks,
  ``await Screen.check([prompt], PROMPT)``, which detects in a thread;
- **MiniLM transformer**: the candidate not taken, heads over all-MiniLM-L6-v2 sentence embeddings,
  costed by its embedding alone (the heads add microseconds), with torch on this machine's cores.

Run with `make bench`, or `python bench/safety.py`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import numpy as np

from stockade.safety.classifier import LocalClassifier, dataset
from stockade.safety.classifier.features import minilm_directory
from stockade.safety.policy import Direction, Policy, ShieldMode
from stockade.safety.screen import Screen
from stockade.safety.shields import Detector, Shield

PROMPT_TOKENS = 200
PROMPTS = 20
ROUNDS = 50  # timed calls per prompt for the local classifier
TRANSFORMER_ROUNDS = 3


def prompts(classifier: LocalClassifier) -> list[str]:
    texts = [e.text for e in dataset.load("heldout")]
    tokenizer = classifier.embedder.tokenizer
    made = []
    for n in range(PROMPTS):
        ids: list[int] = []
        for text in texts[n:] + texts[:n]:
            ids += tokenizer.encode(text, add_special_tokens=False).ids
            if len(ids) >= PROMPT_TOKENS:
                break
        made.append(tokenizer.decode(ids[:PROMPT_TOKENS]))
    return made


def timed(call: Callable[[str], object], texts: list[str], rounds: int) -> list[float]:
    for text in texts:  # warm-up
        call(text)
    elapsed = []
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            call(text)
            elapsed.append((time.perf_counter() - started) * 1000)
    return elapsed


def transformer() -> Callable[[str], object]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_directory()), device="cpu")
    return lambda text: model.encode([text], normalize_embeddings=True, show_progress_bar=False)


def main() -> None:
    classifier = LocalClassifier()
    texts = prompts(classifier)
    detector = Detector(embedder=classifier.embedder)
    screen = Screen(Policy("bench", jailbreak=ShieldMode.BLOCK), [], None, None, detector=lambda: detector)
    loop = asyncio.new_event_loop()
    legs = {
        "rate": timed(classifier.rate_one, texts, ROUNDS),
        "classify": timed(lambda text: loop.run_until_complete(classifier.classify([text])), texts, ROUNDS),
        "shields detect": timed(lambda text: detector.detect([text], Shield.JAILBREAK), texts, ROUNDS),
        "shields check": timed(lambda text: loop.run_until_complete(screen.check([text], Direction.PROMPT)), texts, ROUNDS),
        "MiniLM transformer": timed(transformer(), texts, TRANSFORMER_ROUNDS),
    }
    loop.close()
    print(f"Local safety classifier and prompt shields, ms per {PROMPT_TOKENS}-token prompt (load average {os.getloadavg()[0]:.1f})")
    print(f"{'leg':<20} {'calls':>6} {'p50':>8} {'p99':>8}")
    for leg, values in legs.items():
        p50, p99 = np.percentile(values, [50, 99])
        print(f"{leg:<20} {len(values):>6} {p50:>8.3f} {p99:>8.3f}")


if __name__ == "__main__":
    main()
