"""One worker for the module's tests, on the suite's broker, with its own app id and data dir; and
a headless Chromium for the tests that drive the operator's pages."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import unique
from tests.integration.processes import ServiceProcess, new_worker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(
    kafka_brokers: str, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> Iterator[ServiceProcess]:
    app_id = unique("optouts-test")
    process = new_worker(
        kafka_brokers, tmp_path_factory.mktemp("worker"), app_id, output_dir / f"{app_id}.log"
    )
    process.start()
    yield process
    process.stop()


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
