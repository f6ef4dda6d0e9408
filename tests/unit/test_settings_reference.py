"""docs/configuration.md is generated from `Settings`: stale when a field changes, and every field has
its row, a default, and a description to show."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import Settings
from streams.settings_reference import GROUPS, PAGE, render, stale


def test_the_committed_configuration_page_is_not_stale() -> None:
    assert not stale(), "a setting changed: run `make configuration` and commit docs/configuration.md"


def test_every_setting_has_a_row_and_a_description() -> None:
    page = render()

    for name, field in Settings.model_fields.items():
        assert f"| `OPTOUTS_{name.upper()}` |" in page
        assert field.description, f"{name} has no description for docs/configuration.md"


def test_a_setting_outside_every_group_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GROUPS, "Timing, batches and readiness", ())

    with pytest.raises(ValueError, match="session_timeout"):
        render()


def test_a_changed_description_makes_the_page_stale(tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    page.write_text(PAGE.read_text().replace("HTTP port", "the HTTP port"))

    assert stale(page)
