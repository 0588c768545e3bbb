"""The operator console at `/`, driven in Debian's headless Chromium against a server of its own
in front of the mock upstream; what it changes is checked through the management API and the
openai SDK."""

from __future__ import annotations

import glob
import html.parser
import tomllib
import uuid
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import httpx
import openai
import pytest
from console_harness import CHAT, MODEL, ConsolePage, client, console_server
from selenium import webdriver
from selenium.webdriver.common.by import By

from conftest import Server

pytestmark = [pytest.mark.browser, pytest.mark.server]

ROOT = Path(__file__).resolve().parents[1]
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with console_server(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture
def page(browser: webdriver.Chrome, server: Server) -> ConsolePage:
    return ConsolePage(browser, server)


def api(server: Server, key: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"api-key": key or server.key}, timeout=30)


def new_key(server: Server, role: str = "openai-user") -> dict[str, str]:
    with api(server) as http:
        created = http.post("/management/keys", json={"name": f"app-{uuid.uuid4().hex[:6]}", "role": role})
    assert created.status_code == 201
    return created.json()  # type: ignore[no-any-return]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# -- signing in and out -------------------------------------------------------------------------


def test_signing_in_with_the_admin_key_opens_the_console(page: ConsolePage) -> None:
    page.sign_in()
    assert page.element("signed-in").text == f"Signed in with a key ending in …{page.server.key[-4:]}"
    assert page.browser.find_elements(By.CSS_SELECTOR, "#chart-day-calls canvas")


def test_the_credential_is_kept_in_no_storage_and_not_in_the_page(page: ConsolePage) -> None:
    page.sign_in()
    stored = page.browser.execute_script(
        "return [localStorage.length, sessionStorage.length, document.cookie, document.documentElement.outerHTML]"
    )
    assert stored[:3] == [0, 0, ""]
    assert page.server.key not in stored[3]
    assert page.element("credential").get_attribute("value") == ""


def test_signing_out_forgets_the_credential_and_what_it_showed(page: ConsolePage) -> None:
    page.sign_in()
    page.panel("deployments")
    page.sign_out()
    assert not page.visible("console-view")
    assert page.rows("deployment-list") == []
    assert page.browser.find_elements(By.CSS_SELECTOR, "#console-view canvas") == []


def test_a_wrong_key_is_refused_with_what_to_do(page: ConsolePage) -> None:
    page.submit_credential("not-a-key")
    page.wait(lambda: page.visible("sign-in-error"))
    assert "wrong, expired or revoked" in page.element("sign-in-error").text
    assert "not an active key of this Stockade resource" in page.element("sign-in-error").text


def test_an_entra_token_is_sent_as_a_bearer_token(page: ConsolePage) -> None:
    page.submit_credential("eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ4In0.c2lnbmF0dXJl")
    page.wait(lambda: page.visible("sign-in-error"))
    assert "Access token is missing, invalid" in page.element("sign-in-error").text


def test_a_key_without_the_right_is_told_what_it_may_not_do(page: ConsolePage) -> None:
    page.sign_in(new_key(page.server)["key"])
    page.panel("keys")
    assert "This credential may not manage keys" in page.error("keys")
    assert "admin key" in page.error("keys")


# -- deployments --------------------------------------------------------------------------------


def create_deployment(page: ConsolePage, name: str) -> None:
    page.panel("deployments")
    page.element("deployment-name").send_keys(name)
    page.element("deployment-model").send_keys(MODEL)
    page.element("deployment-capacity").clear()
    page.element("deployment-capacity").send_keys("20")
    page.element("deployment-create").find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    page.wait(lambda: any(row[0] == name for row in page.rows("deployment-list")))


def signed_in_with_a_new_deployment(page: ConsolePage, prefix: str) -> str:
    page.sign_in()
    name = unique(prefix)
    create_deployment(page, name)
    return name


def test_a_deployment_created_in_the_console_serves_calls(page: ConsolePage) -> None:
    name = signed_in_with_a_new_deployment(page, "made-here")
    assert f"{name} is created" in page.notice("deployments")
    reply = client(page.server).chat.completions.create(model=name, messages=HELLO, max_tokens=3)
    assert reply.choices[0].message.content


def test_resizing_a_deployment_changes_its_capacity(page: ConsolePage) -> None:
    name = signed_in_with_a_new_deployment(page, "resized")
    capacity = page.row("deployment-list", name).find_element(By.CSS_SELECTOR, "input[type=number]")
    capacity.clear()
    capacity.send_keys("35\n")
    page.wait(lambda: "capacity of 35" in page.notice("deployments"))
    with api(page.server) as http:
        assert http.get(f"/management/deployments/{name}").json()["capacity"] == 35


def test_deleting_a_deployment_asks_once_more(page: ConsolePage) -> None:
    name = signed_in_with_a_new_deployment(page, "deleted")
    delete = page.row("deployment-list", name).find_element(By.CSS_SELECTOR, "button.danger")
    delete.click()
    assert delete.text == f"Delete {name}?"
    delete.click()
    page.wait(lambda: all(row[0] != name for row in page.rows("deployment-list")))
    with api(page.server) as http:
        assert http.get(f"/management/deployments/{name}").status_code == 404


# -- keys ---------------------------------------------------------------------------------------


def test_a_new_keys_secret_is_shown_once_and_works(page: ConsolePage) -> None:
    page.sign_in()
    page.panel("keys")
    name = unique("team")
    page.element("key-name").send_keys(name)
    page.element("key-create").find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    page.wait(lambda: page.visible("new-secret"))
    secret = page.element("new-secret-value").get_attribute("value")
    assert secret and page.element("new-secret-name").text == name
    assert client(page.server, secret).chat.completions.create(model=CHAT, messages=HELLO, max_tokens=1).choices
    page.element("dismiss-secret").click()
    assert not page.visible("new-secret")
    page.refresh("keys")
    assert any(row[0] == name for row in page.rows("key-list"))
    assert secret not in page.browser.execute_script("return document.documentElement.outerHTML")


def test_a_key_revoked_in_the_console_is_then_refused(page: ConsolePage) -> None:
    key = new_key(page.server)
    assert client(page.server, key["key"]).chat.completions.create(model=CHAT, messages=HELLO, max_tokens=1).choices
    page.sign_in()
    page.panel("keys")
    revoke = page.row("key-list", key["name"]).find_element(By.CSS_SELECTOR, "button.danger")
    revoke.click()
    revoke.click()
    page.wait(lambda: all(row[0] != key["name"] for row in page.rows("key-list")))
    assert f"{key['name']} is revoked" in page.notice("keys")
    with pytest.raises(openai.AuthenticationError):
        client(page.server, key["key"]).chat.completions.create(model=CHAT, messages=HELLO, max_tokens=1)


# -- what was used --------------------------------------------------------------------------------


def test_a_call_appears_in_the_charts_by_deployment_and_key(page: ConsolePage) -> None:
    name = unique("charted")
    key = new_key(page.server)
    page.sign_in()
    create_deployment(page, name)
    client(page.server, key["key"]).chat.completions.create(model=name, messages=HELLO, max_tokens=4)
    page.panel("usage")
    by_deployment = page.wait_for_row("usage", "by-deployment", lambda row: row[0] == name)
    assert by_deployment[1:3] == ["1", "9"]  # one call: the mock's 5 prompt tokens and the 4 asked for
    assert by_deployment[3] == "$0.0000525"  # priced: 5 prompt tokens at 2.5 and 4 at 10 per million
    assert page.wait_for_row("usage", "by-key", lambda row: row[0] == key["name"])[1] == "1"
    for chart in ("chart-day-calls", "chart-day-tokens", "chart-day-cost", "chart-deployment", "chart-key"):
        assert page.browser.find_elements(By.CSS_SELECTOR, f"#{chart} canvas"), chart


def test_recent_calls_show_a_calls_metadata(page: ConsolePage) -> None:
    key = new_key(page.server)
    client(page.server, key["key"]).chat.completions.create(model=CHAT, messages=HELLO, max_tokens=2)
    page.sign_in()
    page.panel("calls")
    row = page.wait_for_row("calls", "call-list", lambda row: row[3] == key["name"])
    assert row[1:5] == ["ChatCompletions_Create", CHAT, key["name"], "200"]
    assert row[5:7] == ["5", "2"]


def test_content_filter_hits_list_the_calls_a_policy_acted_on(page: ConsolePage, server: Server) -> None:
    blocklist, policy = unique("words"), unique("strict")
    server.cli("blocklists", "create", blocklist)
    server.cli("blocklists", "add-item", blocklist, "forbidden")
    server.cli("content-filters", "create", policy, "--blocklist", blocklist)
    name = unique("filtered")
    server.cli("deployments", "create", "--name", name, "--model", MODEL, "--backend", "mock")
    server.cli("deployments", "update", name, "--content-filter", policy)
    server.settle()
    with pytest.raises(openai.BadRequestError):
        client(server).chat.completions.create(model=name, messages=[{"role": "user", "content": "a forbidden word"}])
    client(server).chat.completions.create(model=name, messages=HELLO, max_tokens=1)
    page.sign_in()
    page.panel("filtered")
    page.wait_for_row("filtered", "filtered-list", lambda row: row[2] == name)
    hits = [row for row in page.rows("filtered-list") if row[2] == name]
    assert len(hits) == 1
    assert hits[0][4:] == ["400", f"block custom_blocklists in the prompt (policy {policy})"]


def test_the_audit_log_shows_the_consoles_changes(page: ConsolePage) -> None:
    name = signed_in_with_a_new_deployment(page, "audited")
    page.panel("audit")
    row = page.wait_for_row("audit", "audit-list", lambda row: row[4] == name)
    assert row[1:] == ["key1", "127.0.0.1", "deployments.create", name, "201"]


def test_quotas_show_each_models_allocation(page: ConsolePage) -> None:
    page.sign_in()
    page.panel("quotas")
    cards = {card.find_element(By.TAG_NAME, "h3").text: card.text for card in page.browser.find_elements(By.CSS_SELECTOR, "#quota-list article")}
    assert CHAT in cards[MODEL]
    assert "thousand tokens a minute allocated" in cards[MODEL]


def test_a_quota_set_in_the_console_is_the_models_quota(page: ConsolePage) -> None:
    page.sign_in()
    page.panel("quotas")
    quota = page.browser.find_element(By.CSS_SELECTOR, f"#quota-list input[aria-label='Quota of {MODEL}']")
    quota.clear()
    quota.send_keys("900\n")
    assert f"{MODEL}'s quota is now 900" in page.notice("quotas")
    with api(page.server) as http:
        (shown,) = [q for q in http.get("/management/quotas").json()["data"] if q["model"] == MODEL]
    assert shown["quota"] == 900


def test_budgets_show_their_spend(page: ConsolePage) -> None:
    name = unique("monthly")
    budget = {"name": name, "scope": "deployment", "target": CHAT, "period": "month", "amount": 50.0,
              "thresholds": [0.5, 0.8, 1.0], "hard": True}
    with api(page.server) as http:
        assert http.post("/management/budgets", json=budget).status_code == 201
    page.sign_in()
    page.panel("budgets")
    row = page.wait_for_row("budgets", "budget-list", lambda row: row[0] == name)
    assert row[1] == f"deployment {CHAT}"
    assert "of $50.00" in row[3]
    assert row[4].split() == ["50%", "80%", "100%"] and row[5] == "calls refused"


def test_a_conversations_trace_shows_its_steps(page: ConsolePage) -> None:
    with api(page.server) as http:
        conversation = http.post("/routines/conversations", json={"routine": "baa"}).json()
        http.post(f"/routines/conversations/{conversation['id']}/messages", json={"content": "Hello"})
    page.sign_in()
    page.panel("cases")
    page.row("case-list", conversation["case"]).find_element(By.TAG_NAME, "button").click()
    page.wait(lambda: page.visible("case-detail"))
    assert page.element("case-title").text.startswith(f"Case {conversation['case']}: routine baa")
    trace = [item.text for item in page.browser.find_elements(By.CSS_SELECTOR, "#case-trace li")]
    assert "turn 1 · 1a message source: routine" in trace


def test_the_console_links_to_the_chat_page(page: ConsolePage) -> None:
    page.sign_in()
    link = page.browser.find_element(By.CSS_SELECTOR, "nav a[href='/chat']")
    assert link.text == "Support chat"


# -- what is served -----------------------------------------------------------------------------


class _Markup(html.parser.HTMLParser):
    """Collects what a strict CSP would refuse inline: script bodies, styles, event handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.assets: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.inline += [f"{tag} {name}" for name in named if name.startswith("on") or name == "style"]
        if tag == "style":
            self.inline.append("style element")
        self._in_script = tag == "script"
        if tag == "script":
            self.assets.append(named.get("src") or "")
        if tag == "link":
            self.assets.append(named.get("href") or "")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("script body")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def test_the_console_has_no_inline_script_or_style_and_loads_only_this_origins_assets(server: Server) -> None:
    markup = _Markup()
    markup.feed(httpx.get(server.url + "/").text)
    assert markup.inline == []
    assert markup.assets and all(asset.startswith("/static/") for asset in markup.assets)


def test_the_console_and_its_assets_carry_the_strict_content_security_policy(server: Server) -> None:
    markup = _Markup()
    markup.feed(httpx.get(server.url + "/").text)
    for path in ["/", *markup.assets, "/static/console.charts.js"]:
        response = httpx.get(server.url + path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"


def test_every_console_asset_ships_in_the_package() -> None:
    # setuptools' package-data globs, read as it reads them: from the package's directory.
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["stockade"]
    package = Path(str(files("stockade")))
    shipped = {name for pattern in globs for name in glob.glob(pattern, root_dir=package)}
    static = {path.relative_to(package).as_posix() for path in (package / "api" / "static").rglob("*") if path.is_file()}
    assert {"api/static/console.html", "api/static/vendor/uPlot.iife.min.js", "api/static/vendor/uPlot.LICENSE"} <= static
    assert static - shipped == set()
