"""Operator sessions: what `/login` puts in the browser instead of the operator token — a cookie
signed with a key derived from the token, that expires — and the CSRF token of each session, which
every form that changes something carries (docs/security.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from streams.settings import Settings

COOKIE = "optouts_session"
# What the operator guard (streams.web.operator_auth) leaves on each request for the views.
SESSION = "optouts.session"  # the request's valid Session, if its cookie holds one
LOGGED_IN = "optouts.logged_in"  # that session is a login (the token is checked), not OPTOUTS_AUTH=off's
VIA_BEARER = "optouts.via_bearer"  # the token came in the Authorization header: no form to forge
_KEY_LABEL = b"sms-optouts operator session v1"


@dataclass(frozen=True)
class Session:
    expires: int  # Unix seconds
    nonce: str


def same_text(given: str, expected: str) -> bool:
    """Whether two texts are equal, in constant time. A request's text may hold any character, and
    aiohttp hands bytes that are not UTF-8 over as lone surrogates: compared as bytes, never refused
    with an exception (hmac refuses non-ASCII text; `str.encode` refuses a lone surrogate)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Sessions:
    """Issues and reads session cookies. Every worker with the same token derives the same key, so
    a session opened on one is good on all; another token (a restart that generated a new one)
    ends every session."""

    def __init__(self, secret: bytes, lifetime_seconds: float, always_secure: bool) -> None:
        self._key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()
        self.lifetime = int(lifetime_seconds)
        self.always_secure = always_secure

    @classmethod
    def of(cls, settings: Settings, token: str | None) -> Sessions:
        """With a token, keyed by it. Without one (OPTOUTS_AUTH=off) a session proves nothing, it
        only ties a form to the browser that asked for it: its key derives from the app id, the same
        on every worker."""
        secret = token.encode() if token else f"sms-optouts open {settings.app_id}".encode()
        secure = (settings.public_base_url or "").lower().startswith("https:")
        return cls(secret, settings.operator_session_hours * 3600, secure)

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def new(self, now: float | None = None) -> Session:
        return Session(
            int(now if now is not None else time.time()) + self.lifetime, secrets.token_urlsafe(18)
        )

    def cookie_value(self, session: Session) -> str:
        text = f"{session.expires}.{session.nonce}"
        return f"{text}.{self._sign(text)}"

    def read(self, value: str | None, now: float | None = None) -> Session | None:
        """The session a cookie value holds, when this key signed it and it has not expired."""
        if not value or len(value) > 200:
            return None
        expires, _, rest = value.partition(".")
        nonce, _, signature = rest.partition(".")
        if not (expires.isdigit() and nonce and signature):
            return None
        if not same_text(signature, self._sign(f"{expires}.{nonce}")):
            return None
        if int(expires) <= (now if now is not None else time.time()):
            return None
        return Session(int(expires), nonce)

    def csrf(self, session: Session) -> str:
        """The synchronizer token of a session's forms: another site can neither read it nor make it."""
        return self._sign(f"csrf.{session.nonce}")

    def csrf_matches(self, session: Session | None, given: object) -> bool:
        return session is not None and isinstance(given, str) and same_text(given, self.csrf(session))

    def set_cookie(self, response: web.StreamResponse, request: web.Request, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            self.cookie_value(session),
            max_age=max(0, session.expires - int(time.time())),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.always_secure or is_https(request),
        )

    def clear_cookie(self, response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path="/")


def is_https(request: web.Request) -> bool:
    # Behind a proxy that ends TLS the connection is plain HTTP: the proxy says what the browser used.
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
