"""The operator console's test bench, shared by tests/test_console.py and
bench/console_screenshots.py: a `stockade serve` in front of tests/mock_upstream.py with prices
for its model, and the console page driven in Chromium."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from openai import AzureOpenAI
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from conftest import API_VERSION, Server, mock_upstream, server_env, serving

CHAT = "support-bot"  # a chat deployment on the mock upstream's model, there from the start
EMBEDDINGS = "embed"  # an embeddings deployment routines need (never called by these tests)
MODEL = "mock-model"
WAIT_SECONDS = 30


def configuration(upstream: str) -> str:
    return f"""
[upstreams.mock]
url = "{upstream}/v1"
models = ["{MODEL}"]
embedding_models = ["mock-embedding"]

[billing]
currency = "USD"

[[billing.prices]]
model = "{MODEL}"
input_per_million = 2.5
output_per_million = 10.0
"""


@contextlib.contextmanager
def console_server(data_dir: Path, **settings: str) -> Iterator[Server]:
    """A server on ``data_dir`` with the two deployments, until the block ends."""
    with mock_upstream() as upstream:
        config = data_dir / "stockade.toml"
        config.write_text(configuration(upstream))
        env = server_env(
            data_dir,
            STOCKADE_CONFIG=str(config),
            # The tests sign in with wrong and revoked keys on purpose.
            STOCKADE_AUTH__FAILED_ATTEMPTS_PER_MINUTE="10000",
            **settings,
        )
        with serving(env, data_dir, [(CHAT, MODEL, 100, "mock"), (EMBEDDINGS, "mock-embedding", 100, "mock")]) as running:
            yield running


def client(server: Server, key: str | None = None) -> AzureOpenAI:
    return AzureOpenAI(azure_endpoint=server.url + "/", api_key=key or server.key, api_version=API_VERSION, max_retries=0)


class ConsolePage:
    """The console at ``/`` in a browser, as an operator uses it."""

    def __init__(self, browser: webdriver.Chrome, server: Server) -> None:
        self.browser = browser
        self.server = server

    def open(self) -> None:
        self.browser.get(self.server.url + "/")
        self.wait(lambda: self.visible("sign-in-view"))

    def sign_in(self, credential: str | None = None) -> None:
        self.submit_credential(credential or self.server.key)
        self.wait(lambda: self.visible("console-view") and self.idle("usage"))

    def submit_credential(self, credential: str) -> None:
        self.open()
        self.element("credential").send_keys(credential)
        self.element("sign-in-button").click()

    def sign_out(self) -> None:
        self.element("sign-out").click()
        self.wait(lambda: self.visible("sign-in-view"))

    def panel(self, name: str) -> WebElement:
        """Open the panel ``name`` and wait for it to load."""
        self.browser.find_element(By.CSS_SELECTOR, f"nav button[data-panel='{name}']").click()
        self.wait(lambda: self.visible(name) and self.idle(name))
        return self.element(name)

    def refresh(self, name: str) -> None:
        self.element(name).find_element(By.CSS_SELECTOR, ".refresh").click()
        self.wait(lambda: self.idle(name))

    def idle(self, panel: str) -> bool:
        return self.element(panel).get_attribute("aria-busy") == "false"

    def rows(self, table: str) -> list[list[str]]:
        """The cells' text of each row of the table ``table``, the empty list's notice left out."""
        # Read in one script: a panel may redraw its table between two calls from here.
        return self.browser.execute_script(  # type: ignore[no-any-return]
            "return [...document.querySelectorAll(`#${arguments[0]} tbody tr:not(.empty)`)]"
            ".map((row) => [...row.cells].map((cell) => cell.innerText.trim()))",
            table,
        )

    def row(self, table: str, first_cell: str) -> WebElement:
        (found,) = [
            row for row in self.browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
            if row.find_element(By.TAG_NAME, "td").text == first_cell
        ]
        return found

    def wait_for_row(self, panel: str, table: str, matches: Callable[[list[str]], bool]) -> list[str]:
        """Refresh ``panel`` until ``table`` has a row that ``matches``, and return it. (Usage is
        written in batches, so a call shows a moment after it ends.)"""
        found: list[list[str]] = []

        def shown() -> bool:
            self.refresh(panel)
            found[:] = [row for row in self.rows(table) if matches(row)]
            return bool(found)

        self.wait(shown)
        return found[0]

    def error(self, panel: str) -> str:
        shown = self.element(panel).find_element(By.CSS_SELECTOR, ".error")
        self.wait(shown.is_displayed)
        return shown.text

    def notice(self, panel: str) -> str:
        """What the panel says it has done, once it says something."""
        shown: list[str] = []

        def said() -> bool:
            shown[:] = [notice.text for notice in self.element(panel).find_elements(By.CSS_SELECTOR, ".notice") if notice.is_displayed()]
            return bool(shown and shown[0])

        self.wait(said)
        return shown[0]

    def element(self, id: str) -> WebElement:
        return self.browser.find_element(By.ID, id)

    def visible(self, id: str) -> bool:
        return self.element(id).is_displayed()

    def wait(self, condition: Callable[[], object]) -> None:
        WebDriverWait(self.browser, WAIT_SECONDS).until(lambda _: condition())
