"""The rate limiter's rules, stepped through on a controlled clock, for the in-process limiter and
for the Redis one (whose Lua script must make exactly the same decisions)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
import redis

from stockade.api.responses import error_response
from stockade.errors import TooManyRequests, retry_after_ms
from stockade.quotas import Bucket, Limit, LocalLimiter, Reservation, reserved_tokens
from stockade.quotas.estimate import approximate_prompt_tokens
from stockade.quotas.limits import per_window
from stockade.quotas.redis import RedisLimiter
from stockade.requests import ChatRequest, CompletionRequest, EmbeddingRequest

REDIS_URL = "redis://127.0.0.1:6379/0"
MINUTE = 60_000
T0 = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE  # the start of a minute, in milliseconds


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Harness:
    """A limiter and the event loop its calls run on."""

    def __init__(self, limiter: Harness) -> None:
        self.limiter = limiter
        self.loop = asyncio.new_event_loop()

    def reserve(self, cost: int, *buckets: Bucket) -> Reservation:
        return self.loop.run_until_complete(
            self.limiter.reserve(list(buckets), cost, "ChatCompletions_Create")
        )

    def refused(self, cost: int, *buckets: Bucket) -> TooManyRequests:
        with pytest.raises(TooManyRequests) as caught:
            self.reserve(cost, *buckets)
        return caught.value

    def settle(self, reservation: Reservation, actual: int) -> None:
        self.loop.run_until_complete(self.limiter.settle(reservation, actual))

    def close(self) -> None:
        self.loop.run_until_complete(self.limiter.close())
        self.loop.close()


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def limiter(request: pytest.FixtureRequest, clock: Clock) -> Iterator[Harness]:
    if request.param == "local":
        harness = Harness(LocalLimiter(10, clock=clock))
    else:
        # The Redis limiter falls back to local counters when Redis is away; make sure it is not.
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        prefix = f"stockade-test:{uuid.uuid4().hex}:"
        harness = Harness(RedisLimiter(REDIS_URL, 10, 1, prefix=prefix, clock=clock))
    yield harness
    if request.param == "redis":
        assert harness.limiter.fallback._counters == {}, "Redis was not used"
    harness.close()


def bucket(tpm: int | None, rpm: int | None, scope: str = "d:test") -> Bucket:
    return Bucket(scope, Limit(tpm, rpm), f"deployment {scope!r}")


# -- limits ------------------------------------------------------------------------------------


def test_capacity_gives_azure_tokens_and_requests_per_minute() -> None:
    assert Limit.for_capacity(10) == Limit(10_000, 60)


def test_a_window_gets_its_share_of_the_minute_rounded_up() -> None:
    assert per_window(60_000, 10) == 10_000
    assert per_window(1_000, 10) == 167
    assert per_window(6, 1) == 1


# -- admission ---------------------------------------------------------------------------------


def test_admits_while_the_window_has_tokens_left(limiter: Harness) -> None:
    limit = bucket(60_000, None)  # 10,000 tokens per 10-second window
    for _ in range(4):
        limiter.reserve(2_500, limit)
    limiter.refused(1, limit)


def test_refusal_says_to_wait_until_the_window_ends(
    limiter: Harness, clock: Clock
) -> None:
    limit = bucket(60_000, None)
    clock.now = T0 + 3_250
    limiter.reserve(10_000, limit)
    assert limiter.refused(1, limit).retry_after_ms == 6750


def test_a_429_sends_its_wait_in_milliseconds_and_in_whole_seconds_rounded_up() -> None:
    headers = error_response(TooManyRequests("slow down", 6750)).headers
    assert (headers["retry-after-ms"], headers["retry-after"]) == ("6750", "7")


def test_the_next_window_admits_again(limiter: Harness, clock: Clock) -> None:
    limit = bucket(60_000, None)
    limiter.reserve(10_000, limit)
    clock.now = T0 + 10_000
    limiter.reserve(10_000, limit)


def test_an_empty_window_admits_one_request_larger_than_its_share(
    limiter: Harness,
) -> None:
    limit = bucket(60_000, None)
    limiter.reserve(25_000, limit)
    error = limiter.refused(1, limit)
    assert "token rate limit" in error.message


def test_requests_per_window_are_limited(limiter: Harness) -> None:
    limit = bucket(None, 60)  # 10 requests per 10-second window
    for _ in range(10):
        limiter.reserve(1, limit)
    error = limiter.refused(1, limit)
    assert "call rate limit" in error.message
    assert "60 requests per minute" in error.message


def test_the_minute_total_holds_when_windows_round_up(
    limiter: Harness, clock: Clock
) -> None:
    limit = bucket(None, 10)  # 2 per window by rounding up, but 10 per minute in all
    admitted = 0
    for window in range(6):
        clock.now = T0 + window * 10_000
        for _ in range(2):
            try:
                limiter.reserve(1, limit)
                admitted += 1
            except TooManyRequests as exc:
                assert exc.retry_after_ms == MINUTE - window * 10_000
    assert admitted == 10


def test_minute_tokens_are_capped_across_windows(
    limiter: Harness, clock: Clock
) -> None:
    limit = bucket(1_000, None)  # 167 per window, six of which would make 1,002
    total = 0
    for window in range(6):
        clock.now = T0 + window * 10_000
        while True:
            try:
                limiter.reserve(1, limit)
            except TooManyRequests:
                break
            total += 1
    assert total == 1_000


def test_a_refused_call_charges_nothing(limiter: Harness) -> None:
    limit = bucket(60_000, None)
    limiter.reserve(9_000, limit)
    limiter.refused(2_000, limit)
    limiter.reserve(1_000, limit)


def test_all_buckets_must_admit_and_only_then_are_charged(
    limiter: Harness,
) -> None:
    deployment = bucket(60_000, None, "d:shared")
    key = bucket(None, 6, "k:small")  # 1 request per window
    limiter.reserve(5_000, deployment, key)
    error = limiter.refused(5_000, deployment, key)
    assert "'k:small'" in error.message
    limiter.reserve(5_000, deployment)  # the refusal took none of the deployment's tokens


def test_remaining_reports_what_is_left_now(limiter: Harness) -> None:
    deployment = bucket(60_000, 360, "d:a")  # 10,000 tokens and 60 requests per window
    key = bucket(None, 60, "k:a")  # 10 requests per window
    reservation = limiter.reserve(4_000, deployment, key)
    assert (reservation.remaining.tokens, reservation.remaining.requests) == (6_000, 9)


# -- settlement --------------------------------------------------------------------------------


def test_unused_tokens_return_while_the_window_lasts(limiter: Harness) -> None:
    limit = bucket(60_000, None)
    reservation = limiter.reserve(10_000, limit)
    limiter.settle(reservation, 2_000)
    assert limiter.reserve(8_000, limit).remaining.tokens == 0


def test_unused_tokens_are_not_returned_to_an_ended_window_but_to_its_minute(
    limiter: Harness, clock: Clock
) -> None:
    limit = bucket(60_000, None)
    reservation = limiter.reserve(10_000, limit)
    clock.now = T0 + 10_000
    limiter.settle(reservation, 0)
    # New window, full share; the minute got its 10,000 back.
    assert limiter.reserve(1_000, limit).remaining.tokens == 9_000


def test_an_overrun_is_charged_to_the_current_window(
    limiter: Harness, clock: Clock
) -> None:
    limit = bucket(60_000, None)
    reservation = limiter.reserve(1_000, limit)
    clock.now = T0 + 10_000
    limiter.settle(reservation, 4_000)
    assert limiter.reserve(1_000, limit).remaining.tokens == 10_000 - 3_000 - 1_000


def test_settling_twice_changes_nothing(limiter: Harness) -> None:
    limit = bucket(60_000, None)
    reservation = limiter.reserve(10_000, limit)
    limiter.settle(reservation, 0)
    limiter.settle(reservation, 0)
    assert limiter.reserve(1_000, limit).remaining.tokens == 9_000


# -- estimates ---------------------------------------------------------------------------------


def chat(**fields: object) -> ChatRequest:
    return ChatRequest.model_validate({"messages": [{"role": "user", "content": "Hi"}], **fields})


def test_a_call_reserves_its_prompt_and_max_tokens_for_each_choice() -> None:
    assert reserved_tokens(chat(max_tokens=100, n=3), 20, 1024) == 320


def test_max_completion_tokens_counts_like_max_tokens() -> None:
    assert reserved_tokens(chat(max_completion_tokens=50), 20, 1024) == 70


def test_a_call_without_max_tokens_reserves_the_default() -> None:
    assert reserved_tokens(chat(), 20, 1024) == 1044


def test_best_of_multiplies_a_text_completion() -> None:
    request = CompletionRequest.model_validate({"prompt": "x", "max_tokens": 10, "best_of": 4})
    assert reserved_tokens(request, 1, 1024) == 41


def test_embeddings_reserve_only_their_input() -> None:
    assert reserved_tokens(EmbeddingRequest.model_validate({"input": "x"}), 7, 1024) == 7


def test_upstream_prompts_are_estimated_from_characters() -> None:
    # 3 for the reply, 4 per message, and a token per four characters (rounded up).
    assert approximate_prompt_tokens(chat()) == 3 + 4 + 1
    assert approximate_prompt_tokens(
        CompletionRequest.model_validate({"prompt": [[1, 2, 3], [4]]})
    ) == 4


@pytest.mark.parametrize("wait_ms", [1, 999, 2500])
def test_a_429s_retry_hint_reads_back_as_sent(wait_ms: int) -> None:
    headers = error_response(TooManyRequests("slow down", wait_ms)).headers
    assert retry_after_ms(headers) == wait_ms


def test_a_retry_hint_in_seconds_only_is_read_in_milliseconds() -> None:
    assert retry_after_ms({"retry-after": "3"}) == 3000


def test_a_missing_or_garbled_retry_hint_reads_as_the_default() -> None:
    assert retry_after_ms({"retry-after-ms": "soon"}, default=1000) == 1000
