"""The pure parts of the web server's guard: sessions (signed, expiring, each with its CSRF token)."""

from __future__ import annotations

from streams.sessions import Sessions
from streams.settings import Settings

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
