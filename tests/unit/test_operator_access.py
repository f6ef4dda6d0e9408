"""Who gets in: where a client finds the operator token, and what is refused as one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from streams.settings import Settings
from streams.web.operator_auth import BadOperatorToken, local_path, operator_token, token_file

TOKEN = "t0ken-" + "x" * 20


def settings(data_dir: Path, token: str | None = None) -> Settings:
    return Settings(data_dir=data_dir, operator_token=SecretStr(token) if token is not None else None)


def test_a_client_sends_the_configured_token_first(tmp_path: Path) -> None:
    token_file(settings(tmp_path)).write_text("from-the-file-" + "y" * 20)

    assert operator_token(settings(tmp_path, TOKEN)) == TOKEN


def test_without_a_setting_a_client_reads_the_token_its_worker_wrote_in_the_data_dir(tmp_path: Path) -> None:
    assert operator_token(settings(tmp_path)) is None

    token_file(settings(tmp_path)).write_text(TOKEN + "\n")

    assert operator_token(settings(tmp_path)) == TOKEN


def test_the_newest_token_wins_between_a_worker_and_optouts_run_on_the_embedded_broker(
    tmp_path: Path,
) -> None:
    worker, embedded = tmp_path / "operator-token", tmp_path / "embedded" / "operator-token"
    embedded.parent.mkdir()
    worker.write_text("older-" + "a" * 20)
    embedded.write_text("newer-" + "b" * 20)
    os.utime(worker, (1_000_000, 1_000_000))

    assert operator_token(settings(tmp_path)) == "newer-" + "b" * 20


@pytest.mark.parametrize(
    "bad",
    ["short-SECRET", "has a space SECRET-xxxxxxxx", "new\nline-SECRET-xxxxxxx", "ünïcödé-SECRET-xxxxxxx"],
)
def test_a_token_that_cannot_be_used_is_refused_without_being_shown(tmp_path: Path, bad: str) -> None:
    with pytest.raises(BadOperatorToken, match="OPTOUTS_OPERATOR_TOKEN") as refused:
        operator_token(settings(tmp_path, bad))

    assert "SECRET" not in str(refused.value)
    assert "SECRET" not in repr(settings(tmp_path, bad))


@pytest.mark.parametrize(
    "elsewhere",
    [
        "//evil.example/x",
        "///evil.example/x",
        "/\\evil.example",
        "/\\/evil.example",
        "\\\\evil.example",
        "\\/evil.example",
        "/\t/evil.example/",  # a browser drops the tab: //evil.example/
        "/\n/evil.example/",
        "/\r\n/evil.example/",
        " //evil.example",
        "https://evil.example/",
        "http:evil.example",
        "javascript:alert(1)",
        "%2F%2Fevil.example",
        "evil.example/x",
        "",
        None,
    ],
)
def test_after_logging_in_nothing_but_a_path_of_this_service_is_followed(elsewhere: str | None) -> None:
    assert local_path(elsewhere) == "/"


@pytest.mark.parametrize(
    "here", ["/", "/people/cus_1", "/people/cus_1?as_of=2026-11-27T09:05:00Z", "/people/a%2Fb", "/%2F%2Fevil"]
)
def test_a_path_of_this_service_is_followed_as_it_is(here: str) -> None:
    assert local_path(here) == here  # '/%2F%2Fevil' is a path here: a browser does not decode %2F
