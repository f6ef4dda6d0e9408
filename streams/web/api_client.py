"""The service's HTTP API as this project's commands call it (`optouts people`, `verify`, `send`, `bench`,
`soak`), and the tests too (`request`): one place that checks the base URL, quotes each path segment
and sends the operator token (`OPTOUTS_OPERATOR_TOKEN`, else the one a worker of this data dir
generated: `operator_token`)."""

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
        headers = {"Accept": "application/json", **self.headers}
        answer = send(
            method, self.url(*segments), body=body, headers=headers, timeout=timeout, where=self.base
        )
        return answer.status, _decoded(answer.body, answer.reason)

    def request(
        self,
        method: str,
        *segments: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """Any request, as the tests make them: (status, parsed body); NoAnswer when nothing answers."""
        headers = {**self.headers, **(headers or {})}
        answer = send(
            method, self.url(*segments), body=body, headers=headers, timeout=timeout, where=self.base
        )
        return answer.status, answer.parsed()


@dataclass(frozen=True)
class Answer:
    """What the service answered, whatever its status."""

    status: int
    content_type: str
    body: bytes
    reason: str = ""

    def parsed(self) -> Any:
        """The body: decoded JSON when the answer says it is JSON, else its text."""
        return json.loads(self.body) if self.content_type == "application/json" else self.body.decode()


def send(
    method: str,
    url: str | URL,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    where: object = None,
) -> Answer:
    """One request with `body` as JSON; the answer whatever its status; NoAnswer, naming `where`
    (default: the URL), when nothing answers (refused, unreachable, timed out)."""
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(str(url), data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.headers.get_content_type(), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers.get_content_type(), error.read(), str(error.reason))
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise NoAnswer(f"no answer from the service at {where or url}: {reason}") from None


def request(
    method: str,
    url: str | URL,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """(status, parsed body: JSON when it is JSON, else text) of one request to `url`; NoAnswer when
    nothing answers."""
    answer = send(method, url, body=body, headers=headers, timeout=timeout)
    return answer.status, answer.parsed()


def _decoded(body: bytes, reason: str = "") -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return {"error": body.decode("utf-8", "replace")[:200].strip() or reason}
