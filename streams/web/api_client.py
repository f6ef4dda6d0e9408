"""The service's HTTP API as this project's commands call it (`optouts people`, `verify`, `send`, `bench`,
`soak`): one place that checks the base URL, quotes each path segment and sends the operator token
(`OPTOUTS_OPERATOR_TOKEN`, else the one a worker of this data dir generated: `operator_token`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from schemas.errors import OptOutsError
from schemas.inputs import excerpt
from streams.settings import Settings
from streams.web.operator_auth import operator_token


class ApiError(OptOutsError):
    """The API could not be asked: a base URL that is not one, or no answer at it."""


class BadApiUrl(ApiError, ValueError):
    """A base URL that is not `http(s)://host[:port][/prefix]`."""


class NoAnswer(ApiError):
    """Nothing answered at the base URL (refused, unreachable, timed out)."""


def api_url(text: str) -> URL:
    """`text` as the API's base URL, or BadApiUrl saying what is wrong with it."""
    problem = "is not an http:// or https:// URL with a host, such as http://127.0.0.1:6066"
    try:
        url = URL(text.strip())
        url.port  # noqa: B018  # a port that is not a number shows only when read
    except (ValueError, TypeError):
        raise BadApiUrl(f"the API URL {excerpt(text)} {problem}") from None
    if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
        raise BadApiUrl(f"the API URL {excerpt(text)} {problem}")
    return url


@dataclass(frozen=True)
class Api:
    """Where the API answers and the token it is sent with."""

    base: URL
    token: str | None

    @classmethod
    def of(cls, settings: Settings, base: str | None = None, token: str | None = None) -> Api:
        """The API at `base` (default: `OPTOUTS_API_URL`, else this host's worker) with `token`
        (default: the settings' token, else the one a worker of this data dir generated)."""
        return cls(api_url(base or settings.service_url), token or operator_token(settings))

    def url(self, *segments: str, query: dict[str, str] | None = None) -> URL:
        """The URL of a path given as segments, each quoted whole ('/' too), taken as it is: no
        client may read a person id `..` as a step up."""
        path = "".join("/" + urllib.parse.quote(segment, safe="") for segment in segments)
        url = URL(str(self.base).rstrip("/") + path, encoded=True)
        return url.with_query(query) if query else url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def session(self, timeout: float = 30.0) -> aiohttp.ClientSession:
        """An aiohttp session that sends the token with every request (to this API only)."""
        return aiohttp.ClientSession(headers=self.headers, timeout=aiohttp.ClientTimeout(total=timeout))

    def call(self, method: str, *segments: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        """One request, for a command line: (status, decoded JSON, or `{"error": text}`); NoAnswer
        when nothing answers."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self.headers}
        request = urllib.request.Request(str(self.url(*segments)), data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, _decoded(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _decoded(error.read(), error.reason)
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise NoAnswer(f"no answer from the service at {self.base}: {reason}") from None


def _decoded(body: bytes, reason: str = "") -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return {"error": body.decode("utf-8", "replace")[:200].strip() or reason}
