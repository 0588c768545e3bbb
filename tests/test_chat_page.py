"""The support chat page, driven in Debian's headless Chromium against the session server."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import Server, offer, opening_call_routine
from stockade.routines.engine import FAILED, HANDING_OFF
from stockade.routines.parser import parse_routine
from stockade.routines.service import BUILTIN_DIRECTORY

pytestmark = pytest.mark.browser

BAA = parse_routine((BUILTIN_DIRECTORY / "baa.md").read_text(), "baa")
REPLY_SECONDS = 60
class ChatPage:
    def __init__(self, browser: webdriver.Chrome, server: Server) -> None:
        self.browser = browser
        self.server = server

    def open(self, credential: str, routine: str = "baa") -> None:
        self.browser.get(f"{self.server.url}/chat?routine={routine}")
        self.browser.find_element(By.ID, "credential").send_keys(credential)
        self.browser.find_element(By.ID, "start-button").click()

    def start(self, routine: str = "baa") -> None:
        self.open(self.server.key, routine)
        self.wait(lambda: self.browser.find_element(By.ID, "conversation").is_displayed())

    def send(self, text: str) -> None:
        before = len(self.agent_messages())
        self.browser.find_element(By.ID, "message").send_keys(text)
        self.browser.find_element(By.ID, "send").click()
        self.wait(lambda: len(self.agent_messages()) > before and self.idle())

    def ask_for_the_held_removal(self, routine: str) -> None:
        """Start ``routine`` and ask for the card's removal; returns once the announcement shows,
        while the held webhook keeps the turn running."""
        self.start(routine)
        self.send("Hello, I have a question about my card.")
        self.browser.find_element(By.ID, "message").send_keys("Yes, remove my saved card.\n")
        self.wait(lambda: "One moment while I remove your saved card." in self.agent_messages())

    def idle(self) -> bool:
        """The turn is over: the send button is enabled again, or the conversation closed."""
        return bool(self.browser.execute_script(
            "return !document.getElementById('send').disabled"
            " || document.getElementById('message').disabled"
        ))

    def agent_messages(self) -> list[str]:
        return [item.text for item in self.browser.find_elements(By.CSS_SELECTOR, "#transcript li.agent")]

    def error(self) -> str:
        self.wait(lambda: self.browser.find_element(By.ID, "error").is_displayed())
        return self.browser.find_element(By.ID, "error").text

    def wait(self, condition: Any) -> None:
        WebDriverWait(self.browser, REPLY_SECONDS).until(lambda _: condition())


@pytest.fixture
def page(browser: webdriver.Chrome, server: Server) -> ChatPage:
    return ChatPage(browser, server)


def test_the_page_runs_the_baa_routine_to_a_resolved_case(page: ChatPage) -> None:
    page.start()
    page.send("Hi, I need a BAA.")
    assert page.agent_messages() == [BAA.step("1a").text]
    page.send("It's for the API.")
    replies = page.agent_messages()
    assert replies[1:6] == [BAA.step(step).text for step in ["2a", "2b", "2c", "2d", "2e"]]
    assert "POST /openai/deployments/{deployment}/chat/completions" in "\n".join(replies)
    page.send("No, that's all, thanks.")
    summary = page.browser.find_element(By.ID, "summary").text
    assert "The case is resolved." in summary
    assert not page.browser.find_element(By.ID, "message").is_enabled()


def test_the_trace_panel_lists_the_steps_and_calls_of_the_turn(page: ChatPage) -> None:
    page.start()
    page.send("Can I get a BAA?")
    page.send("For ChatGPT Enterprise.")
    page.browser.find_element(By.CSS_SELECTOR, "#steps summary").click()
    trace = page.browser.find_element(By.ID, "trace").text
    assert "1a: chose branch:3" in trace
    assert "3i: called provide_sales_contact_information: done" in trace


def test_a_failed_function_shows_in_the_trace_and_the_case_is_handed_off(page: ChatPage, server: Server) -> None:
    page.start(offer(server, "order-at-once", opening_call_routine("find_latest_order")))
    page.send("Hi, where is my order?")
    assert page.agent_messages() == [FAILED, HANDING_OFF]
    page.browser.find_element(By.CSS_SELECTOR, "#steps summary").click()
    trace = page.browser.find_element(By.ID, "trace").text
    assert "1: called find_latest_order: failed, no implementation is registered for `find_latest_order`" in trace
    assert "The case is handed to a person." in page.browser.find_element(By.ID, "summary").text


def test_the_trace_panel_shows_a_branch_the_customer_ruled_out(page: ChatPage) -> None:
    page.start()
    page.send("Hi, I need a BAA.")
    page.send("I meant the API, not ChatGPT Enterprise.")
    page.browser.find_element(By.CSS_SELECTOR, "#steps summary").click()
    assert "1a: chose branch:2" in page.browser.find_element(By.ID, "trace").text
    assert "ruled out branch:3" in page.browser.find_element(By.ID, "trace").text


def test_customer_text_is_shown_as_text_never_as_markup(page: ChatPage) -> None:
    page.start()
    markup = '<img id="injected" src="x" onerror="document.title=\'owned\'">'
    page.send(markup)
    customer = page.browser.find_element(By.CSS_SELECTOR, "#transcript li.customer")
    assert customer.text == markup
    assert page.browser.find_elements(By.ID, "injected") == []
    assert page.browser.title != "owned"


def test_a_wrong_key_shows_the_services_error(page: ChatPage) -> None:
    page.open("not-a-key")
    error = page.error()
    assert error.startswith("401:") and "not an active key of this Stockade resource" in error
    assert not page.browser.find_element(By.ID, "conversation").is_displayed()


def test_a_token_is_sent_as_a_bearer_token(page: ChatPage) -> None:
    page.open("eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ4In0.c2lnbmF0dXJl")
    assert "Access token is missing, invalid" in page.error()


def test_an_unknown_routine_shows_the_services_error(page: ChatPage) -> None:
    page.open(page.server.key, "no-such-routine")
    assert page.error().startswith("404:")


def test_the_routine_field_suggests_the_routines_on_offer(page: ChatPage) -> None:
    page.open(page.server.key)
    page.wait(lambda: page.browser.find_elements(By.CSS_SELECTOR, "#routines option[value='baa']"))


def test_the_page_and_its_assets_carry_a_strict_content_security_policy(server: Server) -> None:
    for path in ["/", "/chat", "/static/chat.js", "/static/chat.css"]:
        response = httpx.get(server.url + path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"


def test_the_address_the_banner_prints_leads_to_the_chat(browser: webdriver.Chrome, server: Server) -> None:
    browser.get(server.url + "/")
    links = {link.get_attribute("href") for link in browser.find_elements(By.TAG_NAME, "a")}
    assert {server.url + path for path in ("/chat", "/healthz", "/readyz", "/openapi.json")} <= links
    browser.find_element(By.LINK_TEXT, "Support chat").click()
    assert browser.title == "Stockade support chat"


# -- streaming: a reply shows before the turn that produces it is over ------------------------


def test_replies_show_while_the_turn_is_still_running(
    page: ChatPage, held_webhook: threading.Event, slow_routine: str
) -> None:
    page.ask_for_the_held_removal(slow_routine)
    assert not page.idle()  # the webhook has not answered: the turn is still running
    assert not page.browser.find_element(By.ID, "start-button").is_enabled()
    held_webhook.set()
    page.wait(lambda: "Your saved card is removed." in page.agent_messages() and page.idle())


def test_no_second_message_goes_out_while_a_reply_is_running(
    page: ChatPage, held_webhook: threading.Event, slow_routine: str
) -> None:
    page.ask_for_the_held_removal(slow_routine)

    page.browser.find_element(By.ID, "message").send_keys("Are you there?\n")

    customer = page.browser.find_elements(By.CSS_SELECTOR, "#transcript li.customer")
    assert [item.text for item in customer][-1] == "Yes, remove my saved card."
    held_webhook.set()
    page.wait(lambda: "Your saved card is removed." in page.agent_messages() and page.idle())
    assert not page.browser.find_element(By.ID, "error").is_displayed()
