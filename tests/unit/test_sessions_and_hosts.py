"""The pure parts of the web server's guard: sessions (signed, expiring, each with its CSRF token)
and the Host allow-list."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from streams.settings import Settings
from streams.web.sessions import Sessions
from streams.web.web_security import allowed_hosts, parse_host

NOW = 1_800_000_000.0


def sessions(token: str = "t" * 32, hours: float = 12.0) -> Sessions:
    return Sessions.of(Settings(operator_session_hours=hours), token)


def test_a_session_reads_back_until_it_expires() -> None:
    issuer = sessions(hours=1)
    session = issuer.new(now=NOW)
    cookie = issuer.cookie_value(session)

    assert issuer.read(cookie, now=NOW + 3599) == session
    assert issuer.read(cookie, now=NOW + 3600) is None


def test_a_session_signed_with_another_token_or_changed_is_refused() -> None:
    issuer = sessions()
    expires, nonce, signature = issuer.cookie_value(issuer.new(now=NOW)).split(".")

    assert sessions(token="u" * 32).read(f"{expires}.{nonce}.{signature}", now=NOW) is None
    for forged in (f"{int(expires) + 1}.{nonce}.{signature}", f"{expires}.x{nonce}.{signature}", "", "a.b"):
        assert issuer.read(forged, now=NOW) is None, forged


def test_the_csrf_token_belongs_to_its_session() -> None:
    issuer = sessions()
    mine, other = issuer.new(now=NOW), issuer.new(now=NOW)

    assert issuer.csrf_matches(mine, issuer.csrf(mine))
    assert not issuer.csrf_matches(mine, issuer.csrf(other))
    assert not issuer.csrf_matches(None, issuer.csrf(mine))
    assert not issuer.csrf_matches(mine, None)


def test_the_cookie_never_holds_the_token() -> None:
    token = "the-operator-token-" + "9" * 20
    issuer = sessions(token=token)

    assert token not in issuer.cookie_value(issuer.new())


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("127.0.0.1:6066", ("127.0.0.1", 6066)),
        ("LocalHost.:6066", ("localhost", 6066)),
        ("[::1]:6066", ("::1", 6066)),
        ("ops.example.com", ("ops.example.com", None)),
        ("bücher.example", ("xn--bcher-kva.example", None)),
        ("a b", None),
        ("evil.example/x", None),
        ("user@evil.example", None),
        ("evil.example:99999", None),
        ("", None),
        (None, None),
    ],
)
def test_a_host_header_is_read_as_a_name_and_a_port(value: str | None, parsed: object) -> None:
    assert parse_host(value) == parsed


def test_loopback_the_web_host_and_the_public_url_are_allowed_and_nothing_else() -> None:
    allowed = allowed_hosts(
        Settings(
            web_host="10.0.0.5",
            web_port=6066,
            public_base_url="https://Ops.Example.com/optouts/",
            allowed_hosts=("proxy.internal:8443", "ALIAS.internal"),
            operator_token=SecretStr("t" * 32),
        )
    )

    for host in ("127.0.0.1:6066", "localhost:6066", "[::1]:6066", "10.0.0.5:6066", "ops.example.com"):
        assert allowed.allow(host), host
    for host in ("ops.example.com:8443", "proxy.internal:8443", "alias.internal", "alias.internal:1"):
        assert allowed.allow(host), host
    for host in (
        "localhost:6067",
        "10.0.0.5:80",
        "evil.example",
        "ops.example.com.evil",
        "proxy.internal",
        None,
    ):
        assert not allowed.allow(host), host


def test_a_star_allows_any_host() -> None:
    assert allowed_hosts(Settings(allowed_hosts=("*",))).allow("anything.example:1")
