"""The operator's page in a real headless Chromium: look a person up, remove an opt-out with a reason,
see it gone and the history entry, without a reload. A screenshot is kept in test-output/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.processes import ServiceProcess
from tests.integration.test_overrides import opted_out
from tests.integration.test_pipeline import OTHER_SENDER, SENDER, history, senders

pytestmark = pytest.mark.integration


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

        remove_links = page.get_by_role("link", name="Remove")
        expect(remove_links.first).to_be_hidden()  # with script, only after Manage
        page.get_by_role("button", name="Manage").click()
        page.locator(f'#opt-outs tr[data-sender="{SENDER}"]').get_by_role("link", name="Remove").click()
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
