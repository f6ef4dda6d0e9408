"""The `twilio` REST client, built from the settings, with its async HTTP client; pointed at another
base URL (a stand-in, a test double, a proxy) when `OPTOUTS_TWILIO_API_URL` is set."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from schemas.errors import OptOutsError
from streams.settings import Settings


class TwilioNotConfigured(OptOutsError):
    """A command needs Twilio's REST API and the settings do not say which account."""


# twilio ships no type hints (mypy sees its classes as Any): hence the two ignores.
class RebasedHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Twilio's async HTTP client, sending every request for `*.twilio.com` to `base_url` instead.

    The client has no base-URL setting; a custom HTTP client is the way Twilio documents to send its
    requests elsewhere (twilio/twilio-python#521), and it also covers the absolute `next_page_uri`
    links that paging follows.
    """

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = urlsplit(base_url.rstrip("/"))

    def rebased(self, url: str) -> str:
        parts = urlsplit(url)
        if not (parts.hostname or "").endswith("twilio.com"):
            return url
        return urlunsplit(
            parts._replace(scheme=self.base.scheme, netloc=self.base.netloc, path=self.base.path + parts.path)
        )

    async def request(  # type: ignore[override, unused-ignore]
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return await super().request(
            method, self.rebased(url), params, data, headers, auth, timeout, allow_redirects
        )


def twilio_client(settings: Settings) -> Client:
    """A Client for the configured account, with the async HTTP client (call it inside a running
    event loop; close it with `await client.http_client.close()`)."""
    if not settings.twilio_account_sid or settings.twilio_auth_token is None:
        raise TwilioNotConfigured(
            "set OPTOUTS_TWILIO_ACCOUNT_SID and OPTOUTS_TWILIO_AUTH_TOKEN to use Twilio's REST API"
        )
    http_client = (
        RebasedHttpClient(settings.twilio_api_url, timeout=settings.twilio_timeout)
        if settings.twilio_api_url
        else AsyncTwilioHttpClient(timeout=settings.twilio_timeout)
    )
    return Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        http_client=http_client,
        # Everything comes from our settings, not TWILIO_EDGE or TWILIO_REGION from the environment
        # (an empty mapping would make the client read os.environ instead).
        environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
    )
