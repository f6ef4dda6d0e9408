"""The operator's page in a real headless Chromium: look a person up, remove an opt-out with a reason,
see it gone and the history entry, without a reload. A screenshot is kept in test-output/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.processes import ServiceProcess
from tests.integration.test_overrides import opted_out
from tests.integration.test_pipeline import OTHER_SENDER, SENDER, history, senders

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags that keep Chromium off the network it cannot reach here, and out of a sandbox root lacks.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(
                "CI must install Debian's chromium (apt-get install -y chromium) for the browser test"
            )
        pytest.skip("no chromium: apt-get install -y chromium to run the browser test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_an_operator_removes_an_opt_out_in_the_browser(
    worker: ServiceProcess, kafka_brokers: str, browser: object, output_dir: Path
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    person, _ = opted_out(worker, kafka_brokers, SENDER, OTHER_SENDER)
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    try:
        page.goto(f"{worker.url}/")
        page.get_by_role("main").get_by_placeholder("Person id").fill(person)
        page.get_by_role("main").get_by_role("button", name="Look up").click()
        page.wait_for_url(f"**/people/{person}")
        opt_outs = page.locator("#opt-outs tbody tr")
        expect(opt_outs).to_have_count(2)
        expect(page.locator("#opt-outs")).to_contain_text("Replied STOP")
        page.evaluate("window.notReloaded = true")

        remove_buttons = page.get_by_role("button", name="Remove")
        expect(remove_buttons.first).to_be_hidden()  # only after Manage
        page.get_by_role("button", name="Manage").click()
        page.locator(f'#opt-outs tr[data-sender="{SENDER}"]').get_by_role("button", name="Remove").click()
        page.get_by_label("Your name or email").fill("ops@example.com")
        page.get_by_label("Reason").fill("opted in again on the phone, ticket 4711")
        page.locator("#confirm-remove").click()

        expect(page.locator("#notice")).to_contain_text(f"Removed {SENDER}")
        expect(opt_outs).to_have_count(1)
        expect(page.locator("#opt-outs")).not_to_contain_text(SENDER)
        last_change = page.locator("#history tbody tr").last
        expect(last_change).to_contain_text("Removed by operator")
        expect(last_change).to_contain_text("ticket 4711")
        expect(last_change).to_contain_text("ops@example.com")
        assert page.evaluate("window.notReloaded") is True
        page.screenshot(path=str(output_dir / "person-page.png"), full_page=True)
    finally:
        page.close()

    assert senders(worker, person) == {OTHER_SENDER}
    assert history(worker, person)[-1]["actor"] == "ops@example.com"


def test_an_unknown_person_has_a_page_with_an_empty_list(worker: ServiceProcess, browser: object) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    page = browser.new_page()
    try:
        page.goto(f"{worker.url}/people/nobody-at-all")
        expect(page.locator("#opt-outs")).to_contain_text("No SMS opt-outs.")
        expect(page.locator("#history")).to_contain_text("No changes yet.")
    finally:
        page.close()
