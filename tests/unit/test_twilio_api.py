"""The twilio Client built from the settings: pointed at another base URL when one is set, refused
with a clear error when the account is not configured; and the backfill command's times."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from streams.cli.twilio_cli import moment, page_size
from streams.settings import Settings
from streams.twilio.api import RebasedHttpClient, TwilioNotConfigured, twilio_client

ACCOUNT = "AC" + "0" * 32


def rebased(base: str, url: str) -> str:
    async def build() -> str:
        client = RebasedHttpClient(base)
        try:
            return client.rebased(url)
        finally:
            await client.close()

    return asyncio.run(build())


@pytest.mark.parametrize(
    ("base", "url", "expected"),
    [
        (
            "http://127.0.0.1:8099",
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
            f"http://127.0.0.1:8099/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
        ),
        (
            "http://127.0.0.1:8099/twilio/",
            "https://api.twilio.com/2010-04-01/Messages.json?To=%2B1&Page=1",
            "http://127.0.0.1:8099/twilio/2010-04-01/Messages.json?To=%2B1&Page=1",
        ),
        ("http://127.0.0.1:8099", "https://example.com/x", "https://example.com/x"),
    ],
)
def test_requests_for_twilio_go_to_the_configured_base_url(base: str, url: str, expected: str) -> None:
    assert rebased(base, url) == expected


@pytest.mark.parametrize("missing", ["twilio_account_sid", "twilio_auth_token"])
def test_the_client_needs_the_account_and_its_token(missing: str) -> None:
    values = {"twilio_account_sid": ACCOUNT, "twilio_auth_token": "token", missing: None}

    with pytest.raises(TwilioNotConfigured, match="OPTOUTS_TWILIO_ACCOUNT_SID and OPTOUTS_TWILIO_AUTH_TOKEN"):
        twilio_client(Settings(**values))


def test_the_client_ignores_twilio_edge_and_region_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")

    async def build() -> tuple[str | None, str | None]:
        client = twilio_client(Settings(twilio_account_sid=ACCOUNT, twilio_auth_token="token"))
        await client.http_client.close()
        return client.edge, client.region

    edge, region = asyncio.run(build())

    assert not edge and not region


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27", datetime(2026, 11, 27, tzinfo=UTC)),
        ("2026-11-27T09:30", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),
        ("2026-11-27T09:30:00Z", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),
        ("2026-11-27T09:30Z", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),
        ("2026-11-27T10:30:00+01:00", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),
    ],
)
def test_backfill_times_are_iso_8601_and_utc_when_no_offset_is_given(text: str, expected: datetime) -> None:
    parsed = moment(text)

    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_a_backfill_time_that_is_not_iso_8601_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="'yesterday' is not an ISO 8601"):
        moment("yesterday")


@pytest.mark.parametrize(
    ("text", "ok"), [("1", True), ("1000", True), ("0", False), ("1001", False), ("ten", False)]
)
def test_a_backfill_page_size_is_one_to_a_thousand(text: str, ok: bool) -> None:
    if ok:
        assert page_size(text) == int(text)
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="page size from 1 to 1000"):
            page_size(text)
