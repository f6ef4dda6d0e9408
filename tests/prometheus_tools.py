"""Debian's Prometheus (`apt-get install prometheus`: the server and `promtool`) for the tests: its
path, or a skip with the install hint outside CI and a failure in CI, which must install it."""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL = "apt-get install -y prometheus"


def prometheus_binary(name: str) -> str:
    """The path of `promtool` or `prometheus`."""
    found = shutil.which(name)
    if found is not None:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"CI must install Debian's prometheus ({INSTALL}) for {name}")
    pytest.skip(f"no {name}: {INSTALL} to run this test")
