"""The user's guide to Azure OpenAI, run unchanged except for endpoint and key."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import httpx
import pytest
import uvicorn
from openai import AsyncAzureOpenAI, AzureOpenAI, OpenAI

from conftest import API_VERSION, Server, free_port


def test_first_api_call_returns_the_assistant_reply(server: Server) -> None:
    client = AzureOpenAI(azure_endpoint=server.url + "/", api_key=server.key, api_version="2024-10-21")
    response = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Summarise the key benefits of Azure OpenAI Service."},
        ],
        max_tokens=500,
    )
    assert response.choices[0].message.content
    assert response.choices[0].finish_reason in ("stop", "length")
    assert response.usage.completion_tokens > 0


def test_streaming_prints_deltas_as_they_arrive(azure: AzureOpenAI) -> None:
    stream = azure.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Write a short poem about cloud computing."}],
        stream=True,
        max_tokens=40,
    )
    pieces = []
    for chunk in stream:
        # The guide indexes choices[0] on every chunk, so every chunk must carry a choice.
        if chunk.choices[0].delta.content is not None:
            pieces.append(chunk.choices[0].delta.content)
    assert len(pieces) > 5
    assert "".join(pieces).strip()


def test_embeddings_return_one_vector_per_document(azure: AzureOpenAI) -> None:
    response = azure.embeddings.create(
        model="text-embedding-3-small",
        input=["First document to embed", "Second document to embed"],
    )
    vectors = [item.embedding for item in response.data]
    assert len(vectors) == 2
    assert len(vectors[0]) == 384
    assert response.usage.prompt_tokens > 0


def _seed_guide_fastapi_app(endpoint: str, key: str):  # type: ignore[no-untyped-def]
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    app = FastAPI()
    client = AsyncAzureOpenAI(azure_endpoint=endpoint, api_key=key, api_version="2024-10-21")

    @app.post("/chat")
    async def chat(message: str):  # type: ignore[no-untyped-def]
        async def generate():  # type: ignore[no-untyped-def]
            stream = await client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": message}],
                stream=True,
                max_tokens=30,
            )
            async for chunk in stream:
                if chunk.choices[0].delta.content:
                    yield f"data: {chunk.choices[0].delta.content}\n\n"

        return StreamingResponse(generate(), media_type="text/event-stream")

    return app


def test_async_client_behind_fastapi_streams_server_sent_events(server: Server) -> None:
    port = free_port()
    web = uvicorn.Server(
        uvicorn.Config(_seed_guide_fastapi_app(server.url + "/", server.key), port=port, log_level="warning")
    )
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    try:
        while not web.started:
            time.sleep(0.05)
        events = []
        with httpx.stream("POST", f"http://127.0.0.1:{port}/chat", params={"message": "Hello"}, timeout=60) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            events = [line for line in r.iter_lines() if line.startswith("data: ")]
        assert len(events) > 3
    finally:
        web.should_exit = True
        thread.join(timeout=10)


def get_client():  # type: ignore[no-untyped-def]
    """The guide's migration pattern, with the OpenAI branch pointed at the v1 routes."""
    if os.getenv("AZURE_OPENAI_ENDPOINT"):
        return AzureOpenAI(
            azure_endpoint=os.environ["AZURE_OPENAI_ENDPOINT"],
            api_key=os.environ["AZURE_OPENAI_API_KEY"],
            api_version=os.environ.get("AZURE_OPENAI_API_VERSION", "2024-10-21"),
        )
    return OpenAI(api_key=os.environ["OPENAI_API_KEY"], base_url=os.environ["OPENAI_BASE_URL"])


@pytest.mark.parametrize("provider", ["azure", "openai"])
def test_migration_pattern_runs_the_same_code_against_both_clients(
    server: Server, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    if provider == "azure":
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url + "/")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", server.key)
    else:
        monkeypatch.setenv("OPENAI_API_KEY", server.key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/openai/v1/")
    client = get_client()
    assert isinstance(client, AzureOpenAI if provider == "azure" else OpenAI)
    response = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hello"}], max_tokens=10
    )
    assert response.choices[0].message.content is not None


def test_plain_v1_route_without_openai_prefix_serves_the_deployment(server: Server) -> None:
    client = OpenAI(base_url=server.url + "/v1/", api_key=server.key)
    response = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], max_tokens=5
    )
    assert response.usage.completion_tokens <= 5


def test_async_client_completes_concurrent_requests(server: Server) -> None:
    async def main() -> list[str | None]:
        client = AsyncAzureOpenAI(azure_endpoint=server.url + "/", api_key=server.key, api_version=API_VERSION)
        responses = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": f"Count to {i}"}], max_tokens=8
                )
                for i in range(4)
            )
        )
        return [r.choices[0].message.content for r in responses]

    assert all(content is not None for content in asyncio.run(main()))
