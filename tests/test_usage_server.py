"""Usage and cost end to end: a real `stockade serve` in front of tests/mock_upstream.py, called
through the openai SDK; the summary then shows the calls with their cost, over HTTP and through
the command line's --endpoint."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest
from openai import AzureOpenAI

from conftest import API_VERSION, mock_upstream, server_env, serving

pytestmark = pytest.mark.server

INPUT, OUTPUT = 2.5, 10.0  # per million tokens


def test_calls_made_through_the_sdk_show_in_the_summary_with_their_cost(tmp_path: Path) -> None:
    with mock_upstream() as upstream:
        config = tmp_path / "stockade.toml"
        config.write_text(
            f'[upstreams.mock]\nurl = "{upstream}/v1"\nmodels = ["mock-model"]\n\n'
            f'[billing]\ncurrency = "USD"\n\n[[billing.prices]]\nmodel = "mock-model"\n'
            f"input_per_million = {INPUT}\noutput_per_million = {OUTPUT}\neffective_from = 2026-01-01\n"
        )
        env = server_env(tmp_path, STOCKADE_CONFIG=str(config))
        with serving(env, tmp_path, [("chat", "mock-model", 100)]) as server:
            client = AzureOpenAI(azure_endpoint=server.url, api_key=server.key, api_version=API_VERSION)
            used = [
                client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "Hello"}], max_tokens=5
                ).usage
                for _ in range(3)
            ]
            prompt = sum(u.prompt_tokens for u in used if u)
            completion = sum(u.completion_tokens for u in used if u)
            cost = (prompt * INPUT + completion * OUTPUT) / 1e6

            summary = httpx.get(
                f"{server.url}/management/usage/summary", params={"by": "deployment"},
                headers={"api-key": server.key}, timeout=30,
            ).json()
            (row,) = summary["data"]
            assert (row["group"], row["calls"], row["prompt_tokens"], row["completion_tokens"]) == (
                "chat", 3, prompt, completion)
            assert row["cost"] == pytest.approx(cost) and summary["currency"] == "USD"

            exported = server.cli(
                "--endpoint", server.url, "--api-key", server.key,
                "usage", "summary", "--by", "model", "--format", "csv",
            ).stdout
            rows = {r["group"]: r for r in csv.DictReader(io.StringIO(exported))}
            assert rows["mock-model"]["calls"] == "3"
            assert float(rows["total"]["cost"]) == pytest.approx(cost)
