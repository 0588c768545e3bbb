"""Screenshots of the operator console for docs/console.md, taken in Debian's headless Chromium.

Starts the console's test bench (tests/console_harness.py: `stockade serve` in front of
tests/mock_upstream.py, with prices for its model), sends it some traffic through the openai SDK
and the management API (keys, deployments, calls from several keys, a few failures, a content
filter hit, budgets, a support conversation), writes 29 days of generated usage history before
today's into its store (so that the charts by day have days to show: the records are made here,
not by calls), then saves one PNG per panel to docs/console/ (or the directory given as the first
argument).

Run with `.venv/bin/python bench/console_screenshots.py`.
"""

from __future__ import annotations

import contextlib
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import openai
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from stockade.config import Settings
from stockade.store import Store, UsageRecord

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from console_harness import CHAT, MODEL, ConsolePage, client, console_server  # noqa: E402

from conftest import CHROMIUM_FLAGS, Server, environment  # noqa: E402

PANELS = ["usage", "deployments", "keys", "quotas", "budgets", "calls", "filtered", "audit", "cases"]
WINDOW = (1440, 1200)
DAY = 86400
HELLO = [{"role": "user", "content": "Summarise our refund policy in two sentences."}]


def traffic(server: Server) -> None:
    http = httpx.Client(base_url=server.url, headers={"api-key": server.key}, timeout=30)
    for name in ("summarizer", "triage"):
        http.put(f"/management/deployments/{name}", json={"model": MODEL, "capacity": 50}).raise_for_status()
    keys, key_ids = {}, {}
    for name, role in [("web-frontend", "openai-user"), ("nightly-reports", "openai-user"), ("data-team", "openai-contributor")]:
        created = http.post("/management/keys", json={"name": name, "role": role})
        created.raise_for_status()
        keys[name] = created.json()["key"]
        key_ids[name] = created.json()["id"]
    http.post("/management/budgets", json={
        "name": "web-frontend-monthly", "scope": "key", "target": "web-frontend", "period": "month",
        "amount": 0.05, "thresholds": [0.5, 0.8, 1.0], "hard": True,
    })
    http.post("/management/budgets", json={
        "name": "resource-daily", "scope": "resource", "target": None, "period": "day",
        "amount": 5.0, "thresholds": [0.8, 1.0], "hard": False,
    })
    server.cli("blocklists", "create", "project-names")
    server.cli("blocklists", "add-item", "project-names", "bluebird")
    server.cli("content-filters", "create", "internal", "--blocklist", "project-names")
    server.cli("deployments", "update", "triage", "--content-filter", "internal")
    server.settle()
    chance = random.Random(17)
    weights = {"web-frontend": 6, "nightly-reports": 3, "data-team": 1}
    deployments = {CHAT: 5, "summarizer": 3, "triage": 2}
    for _ in range(160):
        key = chance.choices(list(weights), list(weights.values()))[0]
        deployment = chance.choices(list(deployments), list(deployments.values()))[0]
        with_key = client(server, keys[key])
        with contextlib.suppress(openai.APIStatusError):  # a budget refusing calls is part of the picture
            with_key.chat.completions.create(model=deployment, messages=HELLO, max_tokens=chance.randint(20, 400))
    for text in ("What is the status of bluebird?", "Is bluebird on schedule?"):
        with contextlib.suppress(openai.BadRequestError):
            client(server, keys["data-team"]).chat.completions.create(model="triage", messages=[{"role": "user", "content": text}])
    for _ in range(3):
        with contextlib.suppress(openai.NotFoundError):
            client(server, keys["nightly-reports"]).chat.completions.create(model="retired-model", messages=HELLO)
    conversation = http.post("/routines/conversations", json={"routine": "baa", "deployment": CHAT}).json()
    http.post(f"/routines/conversations/{conversation['id']}/messages", json={"content": "Hi, I need a BAA."})
    http.patch(f"/management/deployments/{CHAT}", json={"capacity": 120})
    history(server, key_ids, chance)


def history(server: Server, key_ids: dict[str, str], chance: random.Random) -> None:
    """Usage records for the 29 days before today, as the recorder would have written them."""
    today = time.time() // DAY * DAY
    weights = {"web-frontend": 6, "nightly-reports": 3, "data-team": 1}
    deployments = {CHAT: 5, "summarizer": 3, "triage": 2}
    records = []
    for days_ago in range(29, 0, -1):
        weekday = time.gmtime(today - days_ago * DAY).tm_wday
        calls = chance.randint(40, 70) if weekday >= 5 else chance.randint(120, 220)
        for _ in range(calls):
            status = chance.choices([200, 429, 500, 400], [96, 2.5, 0.5, 1])[0]
            prompt, completion = (chance.randint(30, 1500), chance.randint(20, 600)) if status == 200 else (0, 0)
            records.append(UsageRecord(
                ts=today - days_ago * DAY + chance.uniform(6, 20) * 3600,
                request_id=uuid.uuid4().hex, operation="ChatCompletions_Create",
                deployment=chance.choices(list(deployments), list(deployments.values()))[0], model=MODEL,
                key_id=key_ids[chance.choices(list(weights), list(weights.values()))[0]], status=status,
                prompt_tokens=prompt, completion_tokens=completion, latency_ms=chance.lognormvariate(4, 0.6),
                cost=(prompt * 2.5 + completion * 10.0) / 1_000_000,
            ))
    with environment(server.env):
        Store(Settings().store_url).insert_usage(records)


def fit(browser: webdriver.Chrome) -> None:
    """Make the window as tall as the page, so that one screenshot shows all of it (the usage
    panel: its charts and tables are the page's point)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WINDOW[0], max(WINDOW[1], height + WINDOW[1] - browser.execute_script("return innerHeight")))


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "console"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, console_server(Path(tmp)) as server:
        traffic(server)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in [*CHROMIUM_FLAGS, f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--user-data-dir={tmp}/chromium"]:
            options.add_argument(flag)
        browser = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        try:
            page = ConsolePage(browser, server)
            page.open()
            browser.save_screenshot(str(out / "sign-in.png"))
            page.sign_in()
            for panel in PANELS:
                page.panel(panel)
                if panel == "cases":
                    page.element("case-list").find_element("css selector", "tbody button").click()
                    page.wait(lambda: page.visible("case-detail"))
                if panel == "usage":
                    fit(browser)
                browser.save_screenshot(str(out / f"{panel}.png"))
                browser.set_window_size(*WINDOW)
                print(out / f"{panel}.png")
        finally:
            browser.quit()


if __name__ == "__main__":
    main()
