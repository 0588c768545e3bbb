"""Rate limits and quotas as Azure OpenAI applies them, through the openai SDK against the app in
process. Its limiter reads a clock the tests move (Azure's 10-second windows, never slept
through); deployments are created per test so that each starts with empty counters.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import AzureOpenAI

from conftest import App, ManualClock, in_process, on_manual_clock
from fake_model import CHAT_MODEL, EMBEDDING_MODEL

WINDOW = 10
SAY_HI = [{"role": "user", "content": "Say hi"}]


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[App]:
    with on_manual_clock(tmp_path_factory.mktemp("limited"), clock, WINDOW) as running:
        yield running


@pytest.fixture
def window(clock: ManualClock) -> ManualClock:
    """Each test starts at the beginning of a window."""
    clock.next_window(WINDOW)
    return clock


@pytest.fixture
def admin(limited: App) -> Iterator[httpx.Client]:
    with limited.http() as client:
        yield client


@pytest.fixture
def waits_move_the_clock(monkeypatch: pytest.MonkeyPatch, window: ManualClock) -> None:
    """Whoever waits out a Retry-After here (the SDK, the seed guide's loop) moves the clock."""
    monkeypatch.setattr(time, "sleep", window.sleep)


def client(app: App, key: str | None = None, max_retries: int = 0) -> AzureOpenAI:
    return app.azure(key, max_retries=max_retries)


def deploy(admin: httpx.Client, capacity: int, model: str = CHAT_MODEL) -> str:
    name = f"d-{uuid.uuid4().hex[:8]}"
    response = admin.put(f"/management/deployments/{name}", json={"model": model, "capacity": capacity})
    assert response.status_code == 201, response.text
    return name


def say_hi(sdk: AzureOpenAI, deployment: str) -> openai.types.chat.ChatCompletion:
    return sdk.chat.completions.create(model=deployment, messages=SAY_HI, max_tokens=3)


# -- headers and refusals --------------------------------------------------------------------------


def test_a_success_reports_the_tokens_and_requests_left(limited: App, admin: httpx.Client) -> None:
    name = deploy(admin, 60)  # 60,000 TPM and 360 RPM: 10,000 tokens and 60 calls per window
    raw = client(limited).chat.completions.with_raw_response.create(
        model=name, messages=SAY_HI, max_tokens=3
    )
    usage = raw.parse().usage
    assert usage is not None
    # The reservation is the prompt, counted by the model's own tokenizer, plus max_tokens.
    assert raw.headers["x-ratelimit-remaining-tokens"] == str(10_000 - usage.prompt_tokens - 3)
    assert raw.headers["x-ratelimit-remaining-requests"] == "59"


def test_a_stream_reports_what_is_left_too(limited: App, admin: httpx.Client) -> None:
    name = deploy(admin, 60)
    raw = client(limited).chat.completions.with_raw_response.create(
        model=name, messages=SAY_HI, max_tokens=3, stream=True
    )
    assert raw.headers["x-ratelimit-remaining-requests"] == "59"
    assert list(raw.parse())


def test_a_burst_past_the_window_gets_azures_429(limited: App, admin: httpx.Client, window: ManualClock) -> None:
    name = deploy(admin, 1)  # 6 RPM: one call per 10-second window
    sdk = client(limited)
    say_hi(sdk, name)
    with pytest.raises(openai.RateLimitError) as caught:
        say_hi(sdk, name)
    error = caught.value
    assert error.code == "429"
    assert "exceeded the call rate limit of deployment" in error.message
    retry_ms = int(error.response.headers["retry-after-ms"])
    assert 0 < retry_ms <= WINDOW * 1000
    assert error.response.headers["retry-after"] == str(-(-retry_ms // 1000))


def test_the_sdk_waits_out_the_hint_and_succeeds(
    limited: App, admin: httpx.Client, waits_move_the_clock: None
) -> None:
    name = deploy(admin, 1)
    sdk = client(limited, max_retries=2)
    say_hi(sdk, name)
    raw = sdk.chat.completions.with_raw_response.create(model=name, messages=SAY_HI, max_tokens=3)
    assert raw.retries_taken == 1
    assert raw.parse().choices


def call_with_retry(client, max_retries=5, **kwargs):  # type: ignore[no-untyped-def]
    """The seed guide's retry loop, as it is written there."""
    from openai import RateLimitError

    for attempt in range(max_retries):
        try:
            return client.chat.completions.create(**kwargs)
        except RateLimitError:
            if attempt == max_retries - 1:
                raise
            wait = (2**attempt) + random.uniform(0, 1)
            print(f"Rate limited. Waiting {wait:.1f}s before retry {attempt + 1}/{max_retries}")
            time.sleep(wait)
    raise Exception("Max retries exceeded")


def test_the_seed_guides_retry_loop_recovers(
    limited: App, admin: httpx.Client, capsys: pytest.CaptureFixture[str], waits_move_the_clock: None
) -> None:
    name = deploy(admin, 1)
    sdk = client(limited)
    say_hi(sdk, name)
    completion = call_with_retry(sdk, model=name, messages=SAY_HI, max_tokens=3)
    assert completion.choices
    assert "Rate limited. Waiting" in capsys.readouterr().out


def test_a_token_limit_refuses_what_does_not_fit(limited: App, admin: httpx.Client, window: ManualClock) -> None:
    name = deploy(admin, 60, EMBEDDING_MODEL)
    key = admin.post(
        "/management/keys",
        json={"name": f"k-{uuid.uuid4().hex[:6]}", "role": "openai-user", "tokens_per_minute": 600},
    ).json()["key"]  # 100 tokens per window
    sdk = client(limited, key)
    text = " ".join(["word"] * 40)  # 40 tokens, a word each as the fake model counts
    assert sdk.embeddings.create(model=name, input=text).usage.prompt_tokens == 40
    sdk.embeddings.create(model=name, input=text)
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.embeddings.create(model=name, input=text)
    assert "exceeded the token rate limit of API key" in caught.value.message
    assert "600 tokens per minute" in caught.value.message


def test_a_call_larger_than_the_whole_minutes_limit_is_a_400_not_a_429_it_could_never_satisfy(
    limited: App, admin: httpx.Client, window: ManualClock
) -> None:
    name = deploy(admin, 60)
    key_name = f"k-{uuid.uuid4().hex[:6]}"
    key = admin.post("/management/keys", json={"name": key_name, "role": "openai-user",
                                               "tokens_per_minute": 600}).json()["key"]
    say_hi(client(limited, key), name)  # the window is not empty: a 429 would have come first
    with pytest.raises(openai.BadRequestError) as caught:
        client(limited, key).chat.completions.create(model=name, messages=SAY_HI, max_tokens=1000)
    assert caught.value.param == "max_tokens"
    assert f"API key '{key_name}'" in caught.value.message and "600 tokens per minute" in caught.value.message


def test_a_keys_limit_applies_on_top_of_the_deployments(
    limited: App, admin: httpx.Client, window: ManualClock
) -> None:
    name = deploy(admin, 60)
    key = admin.post(
        "/management/keys",
        json={"name": f"k-{uuid.uuid4().hex[:6]}", "role": "openai-user", "requests_per_minute": 30},
    ).json()["key"]  # 5 calls per window
    for _ in range(5):
        say_hi(client(limited, key), name)
    with pytest.raises(openai.RateLimitError) as caught:
        say_hi(client(limited, key), name)
    assert "call rate limit of API key" in caught.value.message
    say_hi(client(limited), name)  # the deployment itself still has room


def test_a_capacity_change_applies_without_a_restart(limited: App, admin: httpx.Client) -> None:
    name = deploy(admin, 1)
    limited.cli("deployments", "update", name, "--capacity", "60")
    raw = client(limited).chat.completions.with_raw_response.create(
        model=name, messages=SAY_HI, max_tokens=3
    )
    assert raw.headers["x-ratelimit-remaining-requests"] == "59"


# -- quota -------------------------------------------------------------------------------------


def test_a_deployment_beyond_the_models_quota_is_refused_saying_what_is_left(
    limited: App,
) -> None:
    model = EMBEDDING_MODEL
    quota = limited.cli_json("quota", "show")
    allocated = next(q for q in quota if q["model"] == model)["allocated"]  # type: ignore[union-attr]
    limited.cli("quota", "set", model, "--capacity", str(allocated + 5))
    try:
        result = limited.cli(
            "deployments", "create", "--name", "too-big", "--model", model, "--capacity", "6",
            check=False,
        )
        assert result.returncode == 1
        message = " ".join(result.stderr.split())  # unwrap the terminal's line breaks
        assert "requires 6 capacity" in message and "only 5 is left" in message
        limited.cli("deployments", "create", "--name", "fits", "--model", model, "--capacity", "5")
    finally:
        limited.cli("deployments", "delete", "fits", "--yes", check=False)
        limited.cli("quota", "set", model, "--capacity", "1000")


def test_quota_show_lists_quota_allocation_and_last_minutes_use(
    limited: App, admin: httpx.Client
) -> None:
    name = deploy(admin, 7)
    usage = say_hi(client(limited), name).usage
    assert usage is not None
    limited.flush_usage()
    quota = next(q for q in limited.cli_json("quota", "show") if q["model"] == CHAT_MODEL)  # type: ignore[union-attr]
    assert quota["quota"] == 1000
    deployment = next(d for d in quota["deployments"] if d["name"] == name)
    assert deployment == {
        "name": name,
        "capacity": 7,
        "tokens_per_minute": 7000,
        "requests_per_minute": 42,
        "tokens_last_minute": usage.total_tokens,
        "requests_last_minute": 1,
    }
    assert quota["allocated"] == sum(d["capacity"] for d in quota["deployments"])


def test_throttled_calls_show_in_the_metrics(limited: App, admin: httpx.Client, window: ManualClock) -> None:
    name = deploy(admin, 1)
    sdk = client(limited)
    say_hi(sdk, name)
    with pytest.raises(openai.RateLimitError):
        say_hi(sdk, name)
    metrics = admin.get("/metrics").text
    assert f'stockade_rate_limit_decisions_total{{decision="throttled",deployment="{name}"}} 1.0' in metrics
    assert f'stockade_rate_limit_decisions_total{{decision="admitted",deployment="{name}"}} 1.0' in metrics


def test_a_keys_limits_are_set_and_removed_from_the_command_line(limited: App) -> None:
    created = limited.cli_json("keys", "create", "--name", f"k-{uuid.uuid4().hex[:6]}", "--tpm", "6000")
    assert (created["tokens_per_minute"], created["requests_per_minute"]) == (6000, None)  # type: ignore[index]
    updated = limited.cli_json("keys", "update", created["id"], "--rpm", "60")  # type: ignore[index]
    assert (updated["tokens_per_minute"], updated["requests_per_minute"]) == (6000, 60)  # type: ignore[index]
    cleared = limited.cli_json("keys", "update", created["id"], "--tpm", "0")  # type: ignore[index]
    assert (cleared["tokens_per_minute"], cleared["requests_per_minute"]) == (None, 60)  # type: ignore[index]


def test_invalid_quotas_and_limits_get_400_and_unknown_keys_404(admin: httpx.Client) -> None:
    zero_quota = admin.put(f"/management/quotas/{CHAT_MODEL}", json={"capacity": 0})
    assert zero_quota.status_code == 400
    assert zero_quota.json()["error"]["param"] == "capacity"
    negative = admin.post("/management/keys", json={"name": "neg", "role": "openai-user",
                                                    "tokens_per_minute": -5})
    assert negative.status_code == 400
    assert negative.json()["error"]["param"] == "tokens_per_minute"
    unknown = admin.patch("/management/keys/nope", json={"requests_per_minute": 60})
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "param"),
    [
        ("POST", "/management/keys", {"name": "big", "role": "openai-user", "tokens_per_minute": 10**30}, "tokens_per_minute"),
        ("POST", "/management/keys", {"name": "big", "role": "openai-user", "requests_per_minute": 2**63}, "requests_per_minute"),
        ("PUT", f"/management/quotas/{CHAT_MODEL}", {"capacity": 10**30}, "capacity"),
        ("PUT", "/management/deployments/huge", {"model": CHAT_MODEL, "capacity": 10**30}, "capacity"),
    ],
)
def test_limits_beyond_what_the_store_holds_are_a_400(
    admin: httpx.Client, method: str, path: str, body: dict, param: str
) -> None:
    response = admin.request(method, path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_the_metrics_name_the_limiter_in_use(tmp_path: Path) -> None:
    with in_process(tmp_path, ()) as app, app.http() as admin:
        metrics = admin.get("/metrics").text
    assert 'stockade_rate_limiter{stockade_rate_limiter="local"} 1.0' in metrics
