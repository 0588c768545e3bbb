"""Content filter policies, blocklists and the profanity list, through the openai SDK against
the app in process over the fake model (whose ``say:`` prompts choose the reply)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx2
import openai
import pytest
import regex
from prometheus_client import REGISTRY
from pydantic import BaseModel

from conftest import App, in_process
from fake_model import CHAT_MODEL, EMBEDDING_MODEL
from stockade.config import Settings
from stockade.safety import Category, Severity
from stockade.safety.blocklists import MAX_PATTERN_CHARS, Matcher, compile_blocklist
from stockade.safety.policy import DEFAULT, Direction
from stockade.safety.screen import Screen

GUARDED = "guarded"  # a deployment under the "strict" policy: profanity and the "secrets" list
WORDED = "worded"  # under the "terms" policy: the "words" list, exact terms only
PLAIN = "gpt-4o"  # the built-in default policy, with no classifier: nothing runs


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    deployments = [(PLAIN, CHAT_MODEL, 300), (GUARDED, CHAT_MODEL, 300), (WORDED, CHAT_MODEL, 300)]
    with in_process(tmp_path_factory.mktemp("filters"), deployments) as running:
        running.cli("blocklists", "create", "secrets", "--description", "project names")
        running.cli("blocklists", "add-item", "secrets", "forbidden")
        running.cli("blocklists", "add-item", "secrets", r"project\s+x\d+", "--regex")
        running.cli("content-filters", "create", "strict", "--profanity", "--blocklist", "secrets")
        running.cli("deployments", "update", GUARDED, "--content-filter", "strict")
        running.cli("blocklists", "create", "words")
        running.cli("blocklists", "add-item", "words", "forbidden")
        running.cli("content-filters", "create", "terms", "--blocklist", "words")
        running.cli("deployments", "update", WORDED, "--content-filter", "terms")
        yield running


# -- matching -----------------------------------------------------------------------------------


def test_exact_terms_match_whole_words_in_any_case() -> None:
    matcher = Matcher(["forbidden"], [])
    assert matcher.found("This is FORBIDDEN.")
    assert not matcher.found("forbiddenness is a word of its own")


@pytest.mark.parametrize("text", ["K\u0130LL", "K\u0131LL", "Stra\u00dfe"], ids=["dotted-I", "dotless-i", "sharp-s"])
def test_exact_terms_match_whatever_the_case_insensitive_match_finds(text: str) -> None:
    # The quick substring test that comes first must never rule out what the full match finds.
    terms = ["kill", "KILL", "STRA\u1e9eE"]
    assert Matcher(terms, []).found(text) == any(
        regex.search(rf"(?<!\w){regex.escape(term)}(?!\w)", text, regex.IGNORECASE) for term in terms
    )


def test_regular_expressions_match_case_insensitively() -> None:
    assert Matcher([], [r"project\s+x\d+"]).found("about Project  X12 today")


def matching_thread(items: tuple[tuple[str, str], ...]) -> threading.Thread:
    """The thread a screen of one blocklist with these items matches a prompt on."""
    blocklist = compile_blocklist("watched", items)
    seen: list[threading.Thread] = []
    found = blocklist.matcher.found

    def watched(text: str, *, final: bool = True) -> bool:
        seen.append(threading.current_thread())
        return found(text, final=final)

    blocklist.matcher.found = watched  # type: ignore[method-assign]
    asyncio.run(Screen(DEFAULT, [blocklist], None, None).check(["some text"], Direction.PROMPT))
    return seen[0]


def test_a_list_with_regular_expressions_is_matched_off_the_event_loop() -> None:
    # A user's pattern may run up to its timeout on a hostile text: never while holding the loop.
    assert matching_thread((("regex", r"a+b"),)) is not threading.current_thread()


def test_a_list_of_exact_terms_is_matched_in_place() -> None:
    assert matching_thread((("exact", "forbidden"),)) is threading.current_thread()


def test_a_match_at_the_end_of_unfinished_text_waits_for_what_follows() -> None:
    matcher = Matcher(["ass"], [])
    assert not matcher.found("the ass", final=False)  # "the association" may follow
    assert matcher.found("the ass", final=True)


# -- the prompt ---------------------------------------------------------------------------------


def test_a_default_deployment_without_a_classifier_sends_no_annotations(app: App) -> None:
    body = app.http().post(
        f"/openai/deployments/{PLAIN}/chat/completions?api-version=2024-10-21",
        json={"messages": user("this is forbidden"), "max_tokens": 2},
    ).json()
    assert "prompt_filter_results" not in body
    assert "content_filter_results" not in body["choices"][0]
    assert app.resource.safety.screen(app.resource.deployment(PLAIN)).idle


def test_a_blocked_prompt_is_a_400_content_filter_with_the_results(app: App) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        app.azure().chat.completions.create(model=GUARDED, messages=user("tell me what is forbidden"))
    error = raised.value
    assert (error.code, error.param, error.type, error.status_code) == ("content_filter", "prompt", None, 400)
    assert isinstance(error.body, dict)
    assert error.body["message"].startswith("The response was filtered due to the prompt triggering")
    inner = error.body["innererror"]
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert inner["content_filter_result"] == {
        "profanity": {"filtered": False, "detected": False},
        "custom_blocklists": {"filtered": True, "details": [{"filtered": True, "id": "secrets"}]},
    }


def test_the_harm_categories_are_not_annotated_without_a_classifier(app: App) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        app.azure().chat.completions.create(model=GUARDED, messages=user("what the fuck"))
    results = raised.value.body["innererror"]["content_filter_result"]  # type: ignore[index]
    assert results["profanity"] == {"filtered": True, "detected": True}
    assert not {c.value for c in Category} & set(results)


def test_every_message_of_the_prompt_is_screened(app: App) -> None:
    messages = [{"role": "system", "content": "Never mention project x42."}, *user("hello")]
    with pytest.raises(openai.BadRequestError):
        app.azure().chat.completions.create(model=GUARDED, messages=messages)  # type: ignore[arg-type]


def test_a_streamed_request_with_a_blocked_prompt_is_refused_before_it_streams(app: App) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        app.azure().chat.completions.create(model=GUARDED, messages=user("forbidden"), stream=True)
    assert raised.value.code == "content_filter"


def test_older_preview_versions_spell_the_inner_error_as_they_did(app: App) -> None:
    response = app.http().post(
        f"/openai/deployments/{GUARDED}/chat/completions?api-version=2023-07-01-preview",
        json={"messages": user("forbidden")},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "innererror" not in error
    assert error["inner_error"]["content_filter_results"]["custom_blocklists"]["filtered"] is True


def test_a_blocked_completions_prompt_is_a_400_content_filter(app: App) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        app.azure().completions.create(model=GUARDED, prompt="forbidden", max_tokens=2)
    assert raised.value.code == "content_filter"


# -- the completion -----------------------------------------------------------------------------


def test_a_clean_call_carries_the_results_of_the_filters_that_ran(app: App) -> None:
    completion = app.azure().chat.completions.create(model=GUARDED, messages=user("say:All is well."))
    extra = completion.model_dump()
    clean = {"profanity": {"filtered": False, "detected": False}, "custom_blocklists": {"filtered": False, "details": []}}
    assert extra["prompt_filter_results"] == [{"prompt_index": 0, "content_filter_results": clean}]
    assert extra["choices"][0]["content_filter_results"] == clean
    assert completion.choices[0].message.content == "All is well."


def test_a_filtered_completion_ends_with_finish_reason_content_filter(app: App) -> None:
    completion = app.azure().chat.completions.create(model=GUARDED, messages=user("say:this is forbid|den text"))
    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.message.content is None
    assert choice.model_dump()["content_filter_results"]["custom_blocklists"]["filtered"] is True


def test_a_filtered_text_completion_ends_with_finish_reason_content_filter(app: App) -> None:
    completion = app.azure().completions.create(model=GUARDED, prompt="say:oh sh|it", max_tokens=5)
    assert (completion.choices[0].finish_reason, completion.choices[0].text) == ("content_filter", "")


class Answer(BaseModel):
    text: str


def test_parse_raises_content_filter_finish_reason_error(app: App) -> None:
    with pytest.raises(openai.ContentFilterFinishReasonError):
        app.azure().chat.completions.parse(
            model=GUARDED, messages=user("say:the forbid|den answer"), response_format=Answer
        )


# -- streaming ----------------------------------------------------------------------------------

INNOCENT = "The weather today is mild and the harbour is quiet; ships come in slowly. " * 5


def pieces(text: str, size: int = 5) -> str:
    """``text`` as a ``say:`` reply in pieces of ``size`` characters."""
    return "|".join(text[i:i + size] for i in range(0, len(text), size))


def test_a_stream_opens_with_the_prompt_annotations_alone(app: App) -> None:
    with app.azure().chat.completions.create(model=GUARDED, messages=user("say:Fine."), stream=True) as stream:
        first = next(iter(stream)).model_dump()
    assert (first["id"], first["object"], first["created"], first["choices"]) == ("", "", 0, [])
    assert first["prompt_filter_results"][0]["prompt_index"] == 0


def test_a_clean_stream_sends_all_its_text(app: App) -> None:
    stream = app.azure().chat.completions.create(model=GUARDED, messages=user("say:" + pieces(INNOCENT)), stream=True)
    chunks = [c for c in stream if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == INNOCENT
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("deployment", [GUARDED, WORDED], ids=["with-a-regex", "exact-terms-only"])
def test_a_term_split_across_chunks_is_never_sent(app: App, deployment: str) -> None:
    # The first piece ends with the term's beginning: however large the window, it must not go.
    reply = INNOCENT + "forb|idd|en and more text after it"
    stream = app.azure().chat.completions.create(model=deployment, messages=user("say:" + reply), stream=True)
    chunks = [c for c in stream if c.choices]
    sent = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert INNOCENT[:60] in sent  # text before the term was released
    assert "forb" not in sent
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert chunks[-1].model_dump()["choices"][0]["content_filter_results"]["custom_blocklists"]["filtered"]


# -- metadata -----------------------------------------------------------------------------------


def test_decisions_are_recorded_as_metadata_without_the_text(app: App) -> None:
    before = REGISTRY.get_sample_value(
        "stockade_content_filter_decisions_total",
        {"deployment": GUARDED, "policy": "strict", "direction": "prompt", "category": "custom_blocklists", "action": "block"},
    ) or 0
    with pytest.raises(openai.BadRequestError):
        app.azure().chat.completions.create(model=GUARDED, messages=user("the forbidden word"), user="metadata-test")
    after = REGISTRY.get_sample_value(
        "stockade_content_filter_decisions_total",
        {"deployment": GUARDED, "policy": "strict", "direction": "prompt", "category": "custom_blocklists", "action": "block"},
    )
    assert after == before + 1
    app.flush_usage()
    record = app.http().get("/management/usage", params={"deployment": GUARDED, "limit": 1}).json()["data"][0]
    assert record["status"] == 400
    assert record["content_filter"] == "strict/prompt/custom_blocklists/block"
    assert "forbidden" not in str(record)


def test_the_usage_list_can_be_narrowed_to_the_calls_the_filter_acted_on(app: App) -> None:
    with pytest.raises(openai.BadRequestError):
        app.azure().chat.completions.create(model=GUARDED, messages=user("the forbidden word"))
    app.azure().chat.completions.create(model=GUARDED, messages=user("a harmless word"), max_tokens=1)
    app.flush_usage()
    hits = app.http().get("/management/usage", params={"content_filter": "true", "limit": 1000}).json()["data"]
    every = app.http().get("/management/usage", params={"limit": 1000}).json()["data"]
    assert hits == [record for record in every if record["content_filter"] is not None]
    assert len(hits) < len(every)


def test_a_content_filter_parameter_other_than_true_or_false_is_refused(app: App) -> None:
    response = app.http().get("/management/usage", params={"content_filter": "yes"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "content_filter"


# -- a classifier -------------------------------------------------------------------------------


class Keywords:
    """Rates a text high for violence when it says "fight", low for hate when it says "grr"."""

    async def classify(self, texts: Sequence[str]) -> list[dict[Category, Severity]]:
        return [
            {
                **dict.fromkeys(Category, Severity.SAFE),
                Category.VIOLENCE: Severity.HIGH if "fight" in text else Severity.SAFE,
                Category.HATE: Severity.LOW if "grr" in text else Severity.SAFE,
            }
            for text in texts
        ]


class Broken:
    async def classify(self, texts: Sequence[str]) -> list[dict[Category, Severity]]:
        raise RuntimeError("the classifier is down")


@pytest.fixture(scope="module")
def classified(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with in_process(tmp_path_factory.mktemp("classified"), [(PLAIN, CHAT_MODEL, 500)], classifier=Keywords()) as running:
        yield running


def test_a_classifier_s_severities_are_compared_with_the_policy_thresholds(classified: App) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        classified.azure().chat.completions.create(model=PLAIN, messages=user("let us fight, grr"))
    results = raised.value.body["innererror"]["content_filter_result"]  # type: ignore[index]
    assert results["violence"] == {"filtered": True, "severity": "high"}
    assert results["hate"] == {"filtered": False, "severity": "low"}  # under the medium threshold
    assert results["sexual"] == {"filtered": False, "severity": "safe"}


def test_an_annotate_only_rule_lets_the_text_through(classified: App) -> None:
    classified.cli("content-filters", "create", "lenient", "--rule", "violence=medium:annotate")
    classified.cli("deployments", "update", PLAIN, "--content-filter", "lenient")
    try:
        completion = classified.azure().chat.completions.create(model=PLAIN, messages=user("say:a fight"))
    finally:
        classified.cli("deployments", "update", PLAIN, "--content-filter", "default")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model_dump()["choices"][0]["content_filter_results"]["violence"] == {
        "filtered": False, "severity": "high"
    }


def test_a_failing_filter_refuses_the_request(tmp_path: Path) -> None:
    with (
        in_process(tmp_path, [(PLAIN, CHAT_MODEL, 500)], classifier=Broken()) as broken,
        pytest.raises(openai.InternalServerError) as raised,
    ):
        broken.azure().chat.completions.create(model=PLAIN, messages=user("hello"))
    assert raised.value.code == "content_filter_error"
    assert "refused rather than passed unscreened" in raised.value.message


def test_a_regular_expression_that_runs_out_of_time_refuses_the_request(tmp_path: Path) -> None:
    with in_process(tmp_path, [(PLAIN, CHAT_MODEL, 500)]) as slow:
        slow.cli("blocklists", "create", "slow")
        slow.cli("blocklists", "add-item", "slow", "(a|aa)+b", "--regex")  # backtracks exponentially
        slow.cli("content-filters", "create", "slow", "--blocklist", "slow")
        slow.cli("deployments", "update", PLAIN, "--content-filter", "slow")
        with pytest.raises(openai.InternalServerError) as raised:
            slow.azure().chat.completions.create(model=PLAIN, messages=user("a" * 5000 + "c"))
    assert raised.value.code == "content_filter_error"


def test_a_policy_that_fails_open_serves_the_text_marked_unfiltered(tmp_path: Path) -> None:
    with in_process(tmp_path, [(PLAIN, CHAT_MODEL, 500)], classifier=Broken()) as broken:
        broken.cli("content-filters", "create", "open", "--fail-open")
        broken.cli("deployments", "update", PLAIN, "--content-filter", "open")
        completion = broken.azure().chat.completions.create(model=PLAIN, messages=user("say:hi"))
    body = completion.model_dump()
    assert body["prompt_filter_results"][0]["content_filter_results"]["error"]["code"] == "content_filter_error"
    assert completion.choices[0].message.content == "hi"


# -- management ---------------------------------------------------------------------------------


def test_the_default_policy_matches_azure_s_default(app: App) -> None:
    policy = app.cli_json("content-filters", "show", "default")
    assert isinstance(policy, dict) and policy["built_in"] is True
    assert all(
        rule == {"threshold": "medium", "action": "block"}
        for directions in policy["categories"].values() for rule in directions.values()
    )
    assert (policy["profanity"], policy["blocklists"], policy["fail_open"]) == (False, [], False)


def test_a_policy_sets_only_what_it_is_given(app: App) -> None:
    app.cli("content-filters", "create", "partial", "--rule", "hate.prompt=low:annotate")
    policy = app.cli_json("content-filters", "show", "partial")
    assert isinstance(policy, dict)
    assert policy["categories"]["hate"] == {
        "prompt": {"threshold": "low", "action": "annotate"},
        "completion": {"threshold": "medium", "action": "block"},
    }
    app.cli("content-filters", "update", "partial", "--rule", "all.completion=high")
    policy = app.cli_json("content-filters", "show", "partial")
    assert isinstance(policy, dict)
    assert policy["categories"]["hate"]["prompt"]["threshold"] == "low"
    assert policy["categories"]["sexual"]["completion"]["threshold"] == "high"
    app.cli("content-filters", "delete", "partial", "--yes")


def bad_request(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"]
    return str(error["message"])


def test_an_unknown_threshold_is_a_400_naming_the_field(app: App) -> None:
    message = bad_request(app.http().put(
        "/management/content-filters/extreme", json={"categories": {"hate": {"prompt": {"threshold": "extreme"}}}}
    ))
    assert "threshold" in message


def test_a_policy_naming_a_missing_blocklist_is_refused(app: App) -> None:
    message = bad_request(app.http().put("/management/content-filters/x", json={"blocklists": ["nope"]}))
    assert "stockade blocklists create nope" in message


def test_an_invalid_regular_expression_is_refused(app: App) -> None:
    message = bad_request(app.http().post("/management/blocklists/secrets/items", json={"kind": "regex", "pattern": "(unclosed"}))
    assert "not a valid regular expression" in message.lower()


def test_a_regular_expression_over_the_length_limit_is_refused(app: App) -> None:
    pattern = "a" * (MAX_PATTERN_CHARS + 1)
    bad_request(app.http().post("/management/blocklists/secrets/items", json={"kind": "regex", "pattern": pattern}))


def test_a_regular_expression_matching_empty_text_is_refused(app: App) -> None:
    message = bad_request(app.http().post("/management/blocklists/secrets/items", json={"kind": "regex", "pattern": "x*"}))
    assert "empty text" in message


def test_the_default_policy_cannot_be_changed(app: App) -> None:
    message = bad_request(app.http().patch("/management/content-filters/default", json={"profanity": True}))
    assert "stockade content-filters create" in message


def test_a_deployment_cannot_take_a_missing_policy(app: App) -> None:
    result = app.cli("deployments", "update", PLAIN, "--content-filter", "missing", check=False)
    assert result.returncode == 1
    assert "stockade content-filters list" in result.stderr


def test_a_policy_in_use_cannot_be_deleted(app: App) -> None:
    response = app.http().delete("/management/content-filters/strict")
    assert response.status_code == 409
    assert GUARDED in response.json()["error"]["message"]


def test_a_blocklist_in_use_cannot_be_deleted(app: App) -> None:
    response = app.http().delete("/management/blocklists/secrets")
    assert response.status_code == 409
    assert "strict" in response.json()["error"]["message"]


def test_blocklist_items_are_added_and_removed(app: App) -> None:
    app.cli("blocklists", "create", "temporary")
    item = app.cli_json("blocklists", "add-item", "temporary", "ephemeral")
    assert isinstance(item, dict)
    shown = app.cli_json("blocklists", "show", "temporary")
    assert isinstance(shown, dict) and [i["pattern"] for i in shown["items"]] == ["ephemeral"]
    app.cli("blocklists", "remove-item", "temporary", item["id"])
    shown = app.cli_json("blocklists", "show", "temporary")
    assert isinstance(shown, dict) and shown["items"] == []
    app.cli("blocklists", "delete", "temporary", "--yes")


def test_an_application_user_cannot_change_policies(app: App) -> None:
    key = app.cli_json("keys", "create", "--name", "filters-user", "--role", "openai-user")
    assert isinstance(key, dict)
    response = app.http(key["key"]).put("/management/content-filters/mine", json={})
    assert response.status_code == 401


def test_policies_are_compiled_once_not_per_request(app: App) -> None:
    deployment = app.resource.deployment(GUARDED)
    screen = app.resource.safety.screen(deployment)
    app.cli("keys", "create", "--name", "unrelated-change")  # moves the store's revision
    assert app.resource.safety.screen(deployment).blocklists[0] is screen.blocklists[0]


class Counting(Keywords):
    def __init__(self) -> None:
        self.calls = 0

    async def classify(self, texts: Sequence[str]) -> list[dict[Category, Severity]]:
        self.calls += 1
        return await super().classify(texts)


def test_a_call_refused_by_its_rate_limit_is_never_screened(tmp_path: Path) -> None:
    # Rate limits protect the classifiers too: a flood is refused before any text is screened.
    counting = Counting()
    admitted = 0
    with (
        in_process(tmp_path, [(PLAIN, CHAT_MODEL, 1)], classifier=counting) as limited,
        pytest.raises(openai.RateLimitError),
    ):
        for admitted in range(1, 100):  # noqa: B007 (the last value is what is asserted)
            limited.azure().chat.completions.create(model=PLAIN, messages=user("say:hi"), max_tokens=100)
    assert counting.calls == 2 * (admitted - 1)  # the prompt and the completion of each admitted call


# -- the classifier setting ---------------------------------------------------------------------


def test_no_classifier_runs_unless_the_settings_choose_one() -> None:
    assert Settings().safety.classifier == "none"


def test_the_local_classifier_setting_annotates_the_harm_categories(tmp_path: Path) -> None:
    with in_process(tmp_path, [(PLAIN, CHAT_MODEL, 500)], STOCKADE_SAFETY__CLASSIFIER="local") as app:
        completion = app.azure().chat.completions.create(model=PLAIN, messages=user("say:Hello."))
    prompt_results = completion.model_dump()["prompt_filter_results"][0]["content_filter_results"]
    assert set(prompt_results) >= {"hate", "sexual", "violence", "self_harm"}
    assert prompt_results["violence"]["filtered"] is False


def test_an_unknown_classifier_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="classifier"):
        Settings(safety={"classifier": "psychic"})


# -- the support agents -------------------------------------------------------------------------


@contextlib.contextmanager
def agent_whose_chat_policy_blocks(tmp_path: Path, word: str, **env: str) -> Iterator[httpx2.Client]:
    """A server whose support agents' chat deployment has a policy blocking ``word``."""
    deployments = [("chat", CHAT_MODEL, 500), ("emb", EMBEDDING_MODEL, 500)]
    with in_process(tmp_path, deployments, **env) as app:
        app.cli("blocklists", "create", "words")
        app.cli("blocklists", "add-item", "words", word)
        app.cli("content-filters", "create", "terms", "--blocklist", "words")
        app.cli("deployments", "update", "chat", "--content-filter", "terms")
        with app.http() as http:
            yield http


@pytest.mark.parametrize("tie_breaks", ["[]", '["baa"]'])
def test_a_customer_message_the_agents_model_may_not_see_is_a_400_content_filter(tmp_path: Path, tie_breaks: str) -> None:
    # Whether or not the agent sends the message to its chat deployment (a near-tie on the fake
    # embeddings, which the chat deployment settles only with tie-breaks), its policy screens it.
    with agent_whose_chat_policy_blocks(tmp_path, "forbidden", STOCKADE_ROUTINES__MODEL_TIE_BREAKS=tie_breaks) as http:
        conversation = http.post("/routines/conversations", json={"routine": "baa"}).json()
        path = f"/routines/conversations/{conversation['id']}/messages"
        http.post(path, json={"content": "I need a BAA."}).raise_for_status()
        refused = http.post(path, json={"content": "It is for the forbidden API"})
        unchanged = http.get(f"/routines/conversations/{conversation['id']}").json()
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "content_filter" and "'chat'" in error["message"]
    assert error["innererror"]["content_filter_result"]["custom_blocklists"]["filtered"] is True
    assert unchanged["step"] == "1a"  # the refused turn changed nothing


def test_an_opening_customer_message_is_screened_too(tmp_path: Path) -> None:
    with agent_whose_chat_policy_blocks(tmp_path, "forbidden") as http:
        conversation = http.post("/routines/conversations", json={"routine": "baa"}).json()
        path = f"/routines/conversations/{conversation['id']}/messages"
        refused = http.post(path, json={"content": "A forbidden BAA, please."})
        unchanged = http.get(f"/routines/conversations/{conversation['id']}").json()
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "content_filter")
    assert (unchanged["step"], unchanged["trace"]) == (None, [])


def test_a_customer_message_the_policy_lets_through_has_its_turn(tmp_path: Path) -> None:
    with agent_whose_chat_policy_blocks(tmp_path, "forbidden") as http:
        conversation = http.post("/routines/conversations", json={"routine": "baa"}).json()
        reply = http.post(f"/routines/conversations/{conversation['id']}/messages", json={"content": "I need a BAA."})
        stored = http.get(f"/routines/conversations/{conversation['id']}").json()
    assert (reply.status_code, stored["step"]) == (200, "1a")


def test_a_customer_message_whose_screening_fails_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    deployments = [("chat", CHAT_MODEL, 500), ("emb", EMBEDDING_MODEL, 500)]
    with in_process(tmp_path, deployments, classifier=Broken()) as broken, broken.http() as http:
        conversation = http.post("/routines/conversations", json={"routine": "baa"}).json()
        refused = http.post(f"/routines/conversations/{conversation['id']}/messages", json={"content": "I need a BAA."})
        unchanged = http.get(f"/routines/conversations/{conversation['id']}").json()
    assert (refused.status_code, refused.json()["error"]["code"]) == (500, "content_filter_error")
    assert "Traceback" not in refused.text and "the classifier is down" not in refused.text
    assert unchanged["trace"] == []


def test_a_blocked_customer_message_is_counted_in_the_metrics(tmp_path: Path) -> None:
    labels = {"deployment": "chat", "policy": "terms", "direction": "prompt", "category": "custom_blocklists", "action": "block"}
    before = REGISTRY.get_sample_value("stockade_content_filter_decisions_total", labels) or 0
    with agent_whose_chat_policy_blocks(tmp_path, "forbidden") as http:
        conversation = http.post("/routines/conversations", json={"routine": "baa"}).json()
        http.post(f"/routines/conversations/{conversation['id']}/messages", json={"content": "A forbidden BAA."})
    assert REGISTRY.get_sample_value("stockade_content_filter_decisions_total", labels) == before + 1
