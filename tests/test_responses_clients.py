"""Today's Responses clients against a real server over loopback, on the bundled SmolLM2 model:
the openai SDK (``AzureOpenAI`` on the classic route, ``OpenAI`` on /openai/v1/), the OpenAI
Agents SDK, and the Codex CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai import AzureOpenAI, OpenAI

from conftest import RESPONSES_API_VERSION, Server, server_env, serving

DEPLOYMENT = "gpt-4o"  # the session server's SmolLM2-135M deployment
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
# Installed by `make clients` (a part of `make test`) from the npm registry.
CLIENTS = Path(sys.prefix) / "clients" / "node_modules" / ".bin"
CODEX, COPILOT = CLIENTS / "codex", CLIENTS / "copilot"
# The bundled model's own context (SmolLM2 was trained on 8,192 tokens): Copilot CLI's prompt,
# with one tool, is about 3,700 tokens, beyond the session server's 2,048.
COPILOT_CONTEXT_TOKENS = 8192


@pytest.fixture(scope="module")
def azure(server: Server) -> AzureOpenAI:
    return AzureOpenAI(azure_endpoint=server.url + "/", api_key=server.key, api_version=RESPONSES_API_VERSION)


@pytest.fixture(scope="module")
def v1(server: Server) -> OpenAI:
    return OpenAI(base_url=server.url + "/openai/v1/", api_key=server.key)


@pytest.fixture(params=["azure", "v1"])
def client(request: pytest.FixtureRequest) -> OpenAI:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_the_sdk_creates_a_response_from_the_bundled_model(client: OpenAI) -> None:
    response = client.responses.create(model=DEPLOYMENT, input="Say hello.", max_output_tokens=24)
    assert response.status in ("completed", "incomplete")
    assert response.output_text.strip()
    assert response.usage is not None and response.usage.output_tokens > 0


def test_the_sdk_streams_a_response_to_its_completed_event(client: OpenAI) -> None:
    stream = client.responses.create(model=DEPLOYMENT, input="Say hello.", max_output_tokens=24, stream=True)
    events = list(stream)
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert events[0].type == "response.created" and events[-1].type in ("response.completed", "response.incomplete")
    assert text.strip() and events[-1].response.output_text == text  # type: ignore[union-attr]


def test_the_sdk_retrieves_lists_the_input_of_and_deletes_a_stored_response(client: OpenAI) -> None:
    created = client.responses.create(model=DEPLOYMENT, input="Say hello.", max_output_tokens=16)
    assert client.responses.retrieve(created.id).output_text == created.output_text
    [item] = client.responses.input_items.list(created.id).data
    assert item.content[0].text == "Say hello."  # type: ignore[union-attr]
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_a_function_tool_round_trip_chained_by_previous_response_id(client: OpenAI) -> None:
    called = client.responses.create(
        model=DEPLOYMENT, input="What is the weather in Paris?", tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"}, max_output_tokens=64,
    )
    [call] = called.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert isinstance(json.loads(call.arguments)["city"], str)  # the grammar makes it well formed
    answered = client.responses.create(
        model=DEPLOYMENT, previous_response_id=called.id, tools=[WEATHER], tool_choice="none",  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 degrees."}],
        max_output_tokens=48,
    )
    assert answered.output[0].type == "message" and answered.output_text.strip()


def test_a_json_schema_format_returns_valid_json_from_the_bundled_model(client: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "sunny": {"type": "boolean"}},
        "required": ["city", "sunny"],
        "additionalProperties": False,
    }
    response = client.responses.create(
        model=DEPLOYMENT, input="Describe the weather in Rome as JSON.", max_output_tokens=96,
        text={"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}},
    )
    value = json.loads(response.output_text)
    assert set(value) == {"city", "sunny"} and isinstance(value["sunny"], bool)


@pytest.fixture
def agents_sdk(server: Server) -> Iterator[None]:
    """The Agents SDK's default client pointed at this server, without its tracing export."""
    agents = pytest.importorskip("agents")
    from openai import AsyncOpenAI

    agents.set_tracing_disabled(True)
    agents.set_default_openai_client(AsyncOpenAI(base_url=server.url + "/openai/v1/", api_key=server.key),
                                     use_for_tracing=False)
    yield


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
def test_the_agents_sdk_runs_an_agent_with_a_function_tool(agents_sdk: None, streamed: bool) -> None:
    from agents import Agent, ModelSettings, Runner, function_tool

    cities: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        cities.append(city)
        return f"It is sunny in {city}."

    # Temperature 0 and a first call required: the bundled 135M model then calls the tool once
    # and answers from its result, the same way every run.
    agent = Agent(
        name="weather", model=DEPLOYMENT, tools=[get_weather], reset_tool_choice=True,
        instructions="Call get_weather. When the tool result arrives, reply with it in one sentence.",
        model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=64),
    )

    async def run() -> str:
        if not streamed:
            return str((await Runner.run(agent, "Rome weather", max_turns=4)).final_output)
        result = Runner.run_streamed(agent, "Rome weather", max_turns=4)
        async for _ in result.stream_events():
            pass
        return str(result.final_output)

    final = asyncio.run(run())
    assert cities == ["Rome"]
    assert final.strip()


def codex_exec(server: Server, home: Path, prompt: str) -> subprocess.CompletedProcess[str]:
    """``codex exec`` with Stockade as its model provider, as docs/responses.md configures it:
    the built-in web search off, and a short prompt of its own so that it fits the bundled
    model's context."""
    (home / "instructions.md").write_text("You are a helpful assistant. Answer briefly.\n")
    (home / "config.toml").write_text(f"""
model = "{DEPLOYMENT}"
model_provider = "stockade"
web_search = "disabled"
model_instructions_file = "{home / 'instructions.md'}"
include_permissions_instructions = false
include_apps_instructions = false
include_environment_context = false

[analytics]
enabled = false

[features]
plugins = false
multi_agent = false
goals = false
shell_tool = false
unified_exec = false
view_image = false
apps = false
skill_search = false
tool_suggest = false
image_generation = false

[model_providers.stockade]
name = "Stockade"
base_url = "{server.url}/openai/v1"
env_key = "STOCKADE_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
""")
    env = {**os.environ, "CODEX_HOME": str(home), "STOCKADE_API_KEY": server.key}
    return subprocess.run(
        [str(CODEX), "exec", "--skip-git-repo-check", "--ephemeral", "--sandbox", "read-only", prompt],
        env=env, cwd=home, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240,
    )


def installed(client: Path) -> None:
    if not client.exists():
        pytest.skip(f"{client.name} is not installed at {client}: `make clients` installs it")


def test_codex_exec_completes_a_turn_with_stockade_as_its_model_provider(server: Server, tmp_path: Path) -> None:
    installed(CODEX)
    done = codex_exec(server, tmp_path, "Say hello")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), done.stderr  # the turn's last message


@pytest.fixture(scope="module")
def long_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose bundled model has its whole trained context. Copilot asks 4,096 tokens of
    every reply, and the bundled model, sampling, may write them all (four minutes under load),
    after which Copilot's next request overflows the context: local.reply_tokens caps replies as
    an operator would."""
    data_dir = tmp_path_factory.mktemp("long-context")
    env = server_env(
        data_dir, STOCKADE_LOCAL__CONTEXT_TOKENS=str(COPILOT_CONTEXT_TOKENS), STOCKADE_LOCAL__REPLY_TOKENS="64"
    )
    with serving(env, data_dir, [(DEPLOYMENT, "smollm2-135m-instruct", 500)]) as running:
        yield running


def test_copilot_cli_completes_a_prompt_with_stockade_as_its_azure_provider(
    long_context: Server, tmp_path: Path,
) -> None:
    installed(COPILOT)
    # Copilot's bring-your-own-key mode, as docs/responses.md configures it: Azure's classic
    # route and the Responses wire, no reasoning effort (the model has none), offline (no
    # GitHub sign-in, no telemetry), and one tool of its own, apply_patch, a custom tool.
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "COPILOT_OFFLINE": "true",
        "COPILOT_PROVIDER_TYPE": "azure",
        "COPILOT_PROVIDER_BASE_URL": long_context.url,
        "COPILOT_PROVIDER_API_KEY": long_context.key,
        "COPILOT_PROVIDER_WIRE_API": "responses",
        "COPILOT_PROVIDER_AZURE_API_VERSION": RESPONSES_API_VERSION,
        "COPILOT_MODEL": DEPLOYMENT,
    }
    done = subprocess.run(
        [str(COPILOT), "-p", "Say hello", "--no-color", "--reasoning-effort", "none", "--allow-all-tools",
         "--available-tools", "apply_patch"],
        env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr
    usage = long_context.cli_json("usage", "list")
    assert any(record["operation"] == "Responses_Create" and record["status"] == 200 for record in usage)  # type: ignore[union-attr,index]
