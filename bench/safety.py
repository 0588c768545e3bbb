"""The content filter's cost: the local classifier and the prompt shields per 200-token prompt,
in process, and the time to first token of a screened stream against a real `stockade serve`.

Classifier legs, on the same 20 prompts of exactly 200 MiniLM tokens (held-out examples run
together):

- **rate**: the classifier's own work, on the calling thread (tokenize, sentence and window
  vectors, the heads);
- **classify**: what a request waits for, ``await classify([prompt])``, which rates in a thread;
- **shields detect**: the prompt shields' detector on the calling thread (both heads, one pass);
- **shields check**: what a request waits for under a policy that blocks jailbreaks,
  ``await Screen.check([prompt], PROMPT)``, which detects in a thread;
- **MiniLM transformer**: the candidate not taken, heads over all-MiniLM-L6-v2 sentence embeddings,
  costed by its embedding alone (the heads add microseconds), with torch on this machine's cores.

Time to first token (``streaming_legs``): `stockade serve` (one worker) in front of a loopback
upstream that streams a 59-word (330-character) reply at a steady TOKEN_SECONDS per word, as a model generates;
the time is from sending the request to the first event carrying text. Deployments differ only in
their policy: none to run (off), the profanity list and a blocklist of exact terms, and the same
with a regular expression (whose held-back tail is 256 characters), each in blocking and in
asynchronous mode, and PII on completions in blocking mode. Legs are taken in turn,
STREAMS_PER_LEG rounds.

PII on completions (``--pii``, in process, the analyzer warm), on COMPLETION, a 409-character
(71-word, about 100-token) reply with one telephone number, under a policy that annotates PII:

- **pii check**: what a non-streamed completion waits for, ``await Screen.check([reply],
  COMPLETION, redact=True)``, which analyzes in a thread;
- **pii stream**: the stream guard (blocking mode) over the reply arriving a word an event, from
  the first event to the last release: every window's check;
- **pii first release**: the same, to the first text released.

Run with `make bench`, or `python bench/safety.py` (`--streaming` for the stream legs alone,
`--pii` for the PII legs alone).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
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
TOKEN_SECONDS = 0.02  # the paced upstream's generation speed: 50 words a second
REPLY = ("The visit went well and the plan is unchanged: continue the current medication, "
               "repeat the HbA1c and a lipid panel in three months, and review the retinal "
               "screening results when they arrive. The patient walks thirty minutes most days "
               "and reports good adherence; home readings are in range and the feet are normal. "
               "No new symptoms were reported today.")
REPLY_WORDS = REPLY.split()
STREAMS_PER_LEG = 15
PII_REPLY = ("The patient was seen in clinic today and is recovering well after the procedure. "
             "Her blood pressure is stable, the wound is healing cleanly, and she should continue "
             "the current medication for two more weeks. Call 617-555-0143 to book the follow-up visit "
             "with the nurse, and bring the list of questions discussed at the last appointment. "
             "If the pain returns or the fever rises, come back to the clinic at once.")
PII_ROUNDS = 100


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


class PacedUpstream(BaseHTTPRequestHandler):
    """An OpenAI-compatible upstream streaming REPLY_WORDS, one every TOKEN_SECONDS."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for n, word in enumerate(REPLY_WORDS):
            time.sleep(TOKEN_SECONDS)
            self._event({"index": 0, "delta": {"content": word if n == 0 else " " + word}, "finish_reason": None})
        self._event({"index": 0, "delta": {}, "finish_reason": "stop"})
        self._event(None, {"prompt_tokens": 20, "completion_tokens": len(REPLY_WORDS), "total_tokens": 80})
        self._send(b"data: [DONE]\n\n")
        self._send(b"")

    def _event(self, choice: dict[str, Any] | None, usage: dict[str, int] | None = None) -> None:
        body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "paced",
                "choices": [choice] if choice else [], "usage": usage}
        self._send(b"data: " + json.dumps(body).encode() + b"\n\n")

    def _send(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the gateway drops its keep-alive connections when it stops: nothing to report


# deployment -> policy arguments (None: the default policy, which has nothing to run)
STREAM_LEGS: dict[str, tuple[str, ...] | None] = {
    "off": None,
    "terms-blocking": ("--profanity", "--blocklist", "terms"),
    "terms-asynchronous": ("--profanity", "--blocklist", "terms", "--streaming", "asynchronous"),
    "regex-blocking": ("--profanity", "--blocklist", "patterns"),
    "regex-asynchronous": ("--profanity", "--blocklist", "patterns", "--streaming", "asynchronous"),
    "pii-blocking": ("--pii", "block"),  # PII on completions: a 64-character tail, the analyzer per window
}


def first_text_ms(client: httpx.Client, deployment: str) -> float:
    body = {"messages": [{"role": "user", "content": "Summarise the visit."}], "stream": True}
    started, first = time.perf_counter(), None
    with client.stream("POST", f"/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21",
                       json=body) as response:
        for line in response.iter_lines():  # read to the end: the call is whole
            if first is None and '"content":"' in line and '"content":""' not in line:
                first = (time.perf_counter() - started) * 1000
    if first is None:
        raise RuntimeError(f"{deployment}: no text came")
    return first


def streaming_legs() -> dict[str, list[float]]:
    """Time to first token per leg, in ms, against `stockade serve` on the paced upstream."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import free_port, run_cli, start_server, stop
    from json_server import running

    workdir = Path(tempfile.mkdtemp(prefix="stockade-ttft-"))
    with running(QuietServer(("127.0.0.1", 0), PacedUpstream)) as upstream_port:
        config = workdir / "stockade.toml"
        config.write_text(f'[upstreams.paced]\nurl = "http://127.0.0.1:{upstream_port}/v1"\nmodels = ["paced"]\n')
        env = {**os.environ, "STOCKADE_DATA_DIR": str(workdir), "STOCKADE_CONFIG": str(config),
               "STOCKADE_WORKERS": "1"}
        run_cli(env, "blocklists", "create", "terms")
        run_cli(env, "blocklists", "create", "patterns")
        for term in ("project-falcon", "project-heron", "codename-osprey"):
            run_cli(env, "blocklists", "add-item", "terms", term)
            run_cli(env, "blocklists", "add-item", "patterns", term)
        run_cli(env, "blocklists", "add-item", "patterns", r"\b\d{3}-\d{2}-\d{4}\b", "--regex")
        for name, policy in STREAM_LEGS.items():
            run_cli(env, "deployments", "create", "--name", name, "--model", "paced", "--backend", "paced",
                    "--capacity", "100")
            if policy is not None:
                run_cli(env, "content-filters", "create", name, *policy)
                run_cli(env, "deployments", "update", name, "--content-filter", name)
        key = json.loads(run_cli(env, "--json", "keys", "regenerate", "key1").stdout)["key"]
        port = free_port()
        process = start_server(env, workdir / "stockade.log", port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"api-key": key}, timeout=60) as client:
                for name in STREAM_LEGS:  # warm-up
                    first_text_ms(client, name)
                times: dict[str, list[float]] = {name: [] for name in STREAM_LEGS}
                for _ in range(STREAMS_PER_LEG):
                    for name in STREAM_LEGS:
                        times[name].append(first_text_ms(client, name))
        finally:
            stop(process)
    return times


def report_streaming(times: dict[str, list[float]]) -> None:
    print(f"Time to first token, ms: {len(REPLY_WORDS)}-word streams, a word every {TOKEN_SECONDS * 1000:.0f} ms "
          f"(load average {os.getloadavg()[0]:.1f})")
    off = float(np.percentile(times["off"], 50))
    print(f"{'leg':<20} {'streams':>7} {'p50':>8} {'p99':>8} {'p50 added':>10}")
    for leg, values in times.items():
        p50, p99 = np.percentile(values, [50, 99])
        print(f"{leg:<20} {len(values):>7} {p50:>8.1f} {p99:>8.1f} {p50 - off:>10.1f}")


def pii_legs() -> dict[str, list[float]]:
    """PII on completions' added cost per reply, in ms, in process."""
    from stockade.backends.base import Delta, Events
    from stockade.core.filtering import Filtering
    from stockade.safety.phi.analyzer import PhiAnalyzer
    from stockade.safety.phi.pii import PiiScreen
    from stockade.safety.policy import PiiRule
    from stockade.telemetry.usage import Call

    analyzer = PhiAnalyzer()
    policy = Policy("bench", pii=PiiRule(ShieldMode.ANNOTATE))
    screen = Screen(policy, [], None, None, pii=PiiScreen(policy.pii, analyzer))
    words = [word + " " for word in PII_REPLY.split(" ")]

    async def events() -> Events:
        for word in words[:-1]:
            yield Delta(0, text=word)
        yield Delta(0, text=words[-1].rstrip(), finish_reason="stop")

    async def stream() -> tuple[float, float]:
        started, first = time.perf_counter(), None
        async for _ in Filtering(screen, Call("bench")).stream(events()):
            first = first or time.perf_counter()
        assert first is not None
        return (first - started) * 1000, (time.perf_counter() - started) * 1000

    async def legs() -> dict[str, list[float]]:
        await analyzer.warm()
        times: dict[str, list[float]] = {"pii check": [], "pii stream": [], "pii first release": []}
        for _ in range(PII_ROUNDS):
            started = time.perf_counter()
            await screen.check([PII_REPLY], Direction.COMPLETION, redact=True)
            times["pii check"].append((time.perf_counter() - started) * 1000)
            first, whole = await stream()
            times["pii first release"].append(first)
            times["pii stream"].append(whole)
        return times

    return asyncio.run(legs())


def report(title: str, legs: dict[str, list[float]]) -> None:
    print(f"{title} (load average {os.getloadavg()[0]:.1f})")
    print(f"{'leg':<20} {'calls':>6} {'p50':>8} {'p99':>8}")
    for leg, values in legs.items():
        p50, p99 = np.percentile(values, [50, 99])
        print(f"{leg:<20} {len(values):>6} {p50:>8.3f} {p99:>8.3f}")


def main() -> None:
    if "--pii" in sys.argv:
        report(f"PII on completions, ms per {len(PII_REPLY)}-character reply", pii_legs())
        return
    if "--streaming" in sys.argv:
        report_streaming(streaming_legs())
        return
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
    report(f"Local safety classifier and prompt shields, ms per {PROMPT_TOKENS}-token prompt", legs)
    report_streaming(streaming_legs())


if __name__ == "__main__":
    main()
