"""A stand-in for Twilio, both ways, over real HTTP on loopback.

- `StandinTwilio`: the part of Twilio's REST API the service uses (create a Message, list Messages
  with paging and Twilio's filters), answering as Twilio does: 201, 400 with error 21610, 500, 401
  on wrong credentials. It serves on 127.0.0.1 in a thread of the test process; `stop()` closes it.
- `post_webhook`: a webhook request as Twilio makes it: form-encoded, with `X-Twilio-Signature`
  computed by the twilio package's own `RequestValidator.compute_signature` over the public URL.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from twilio.request_validator import RequestValidator

from streams.engine.broker import free_port

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "stand-in-auth-token-0123456789ab"


def sid(prefix: str = "SM") -> str:
    """A Twilio-shaped sid (prefix + 32 hex digits), unique in the test run."""
    return f"{prefix}{uuid.uuid4().hex}"


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, list[str]]
    authorised: bool


@dataclass
class StandinTwilio:
    """Twilio's Messages resource for one account. Script a number's answer with `answer_to`; put
    messages to list with `add_message`; read what was asked in `requests`."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    requests: list[Recorded] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    _answers: dict[str, tuple[int, dict[str, Any] | None]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> StandinTwilio:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests read `requests`

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> StandinTwilio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- scripting ---------------------------------------------------------------------------

    def answer_to(self, to: str, status: int, code: int | None = None) -> None:
        """How a create for recipient `to` is answered: 201 (the default), 400 with `code`, 500."""
        error = None
        if status >= 400:
            messages = {
                21610: "Attempt to send to unsubscribed recipient",
                21211: "Invalid 'To' Phone Number",
            }
            error = {
                "code": code or 20500,
                "message": messages.get(code or 0, "Internal Server Error"),
                "more_info": f"https://www.twilio.com/docs/errors/{code or 20500}",
                "status": status,
            }
        self._answers[to] = (status, error)

    def add_message(
        self,
        *,
        from_: str,
        to: str,
        body: str,
        date_sent: datetime,
        direction: str = "inbound",
        messaging_service_sid: str | None = None,
        message_sid: str | None = None,
    ) -> dict[str, Any]:
        """A message for the Messages list, as Twilio's API represents it."""
        message = self._resource(
            sid=message_sid or sid(),
            from_=from_,
            to=to,
            body=body,
            status="received" if direction == "inbound" else "delivered",
            direction=direction,
            messaging_service_sid=messaging_service_sid,
            when=date_sent,
        )
        self.messages.append(message)
        return message

    def creates(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    # ---- the API -----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        query = parse_qsl(url.query, keep_blank_values=True)
        length = int(handler.headers.get("Content-Length") or 0)
        form = parse_qsl(handler.rfile.read(length).decode(), keep_blank_values=True) if length else []
        params: dict[str, list[str]] = {}
        for key, value in [*query, *form]:
            params.setdefault(key, []).append(value)
        authorised = (
            handler.headers.get("Authorization")
            == "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )
        self.requests.append(Recorded(method, url.path, params, authorised))

        messages_path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        if not authorised:
            status, body = 401, {"code": 20003, "message": "Authenticate", "status": 401}
        elif url.path != messages_path:
            status, body = (
                404,
                {"code": 20404, "message": "The requested resource was not found", "status": 404},
            )
        elif method == "POST":
            status, body = self._create(params)
        else:
            status, body = 200, self._list(messages_path, params)
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _create(self, params: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        to = params["To"][0]
        status, error = self._answers.get(to, (201, None))
        if error is not None:
            return status, error
        service = params.get("MessagingServiceSid", [None])[0]
        message = self._resource(
            sid=sid(),
            from_=params.get("From", [None])[0],
            to=to,
            body=params.get("Body", [""])[0],
            # Twilio: a send through a Messaging Service is `accepted` until a sender is picked.
            status="accepted" if service else "queued",
            direction="outbound-api",
            messaging_service_sid=service,
            when=None,
        )
        return 201, _public(message)

    def _list(self, path: str, params: dict[str, list[str]]) -> dict[str, Any]:
        def first(name: str) -> str | None:
            return params.get(name, [None])[0]

        after, before, to = first("DateSent>"), first("DateSent<"), first("To")
        matching = [
            m
            for m in self.messages
            if (to is None or m["to"] == to)
            # Twilio compares dates by day: the client must apply the exact window itself.
            and (after is None or m["_date"] >= after[:10])
            and (before is None or m["_date"] <= before[:10])
        ]
        matching.sort(key=lambda m: m["_when"], reverse=True)  # newest first, as Twilio lists
        size = int(first("PageSize") or 50)
        page = int(first("Page") or 0)
        chunk = matching[page * size : (page + 1) * size]
        kept = {k: v for k, v in params.items() if k in ("To", "DateSent>", "DateSent<", "PageSize")}
        query = urlencode([(k, v[0]) for k, v in kept.items()])
        more = (page + 1) * size < len(matching)
        return {
            "messages": [_public(m) for m in chunk],
            "uri": f"{path}?{query}&Page={page}",
            "first_page_uri": f"{path}?{query}&Page=0",
            "next_page_uri": f"{path}?{query}&Page={page + 1}&PageToken=PA{page + 1}" if more else None,
            "previous_page_uri": None,
            "page": page,
            "page_size": size,
            "start": page * size,
            "end": page * size + len(chunk) - 1,
        }

    def _resource(
        self,
        *,
        sid: str,
        from_: str | None,
        to: str,
        body: str,
        status: str,
        direction: str,
        messaging_service_sid: str | None,
        when: datetime | None,
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        sent = when or now
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "from": from_,
            "to": to,
            "body": body,
            "status": status,
            "direction": direction,
            "messaging_service_sid": messaging_service_sid,
            "date_created": format_datetime(sent),
            "date_updated": format_datetime(now),
            "date_sent": format_datetime(sent) if when else None,
            "error_code": None,
            "error_message": None,
            "num_segments": "1",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "_date": sent.strftime("%Y-%m-%d"),
            "_when": sent,
        }


def _public(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource as the API shows it, without the stand-in's own bookkeeping."""
    return {k: v for k, v in resource.items() if not k.startswith("_")}


# ---- Twilio calling our webhooks -------------------------------------------------------------------


class _Params:
    """The form as the signing code reads it: repeated names kept (`getall`)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def __iter__(self) -> Any:
        return iter(dict.fromkeys(k for k, _ in self.pairs))

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]


def signature(token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """`X-Twilio-Signature` for a form posted to `url`, by the twilio package's own code."""
    return str(RequestValidator(token).compute_signature(url, _Params(list(params))))


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    content_type: str
    body: str


def post_webhook(
    worker_url: str,
    path_and_query: str,
    params: Iterable[tuple[str, str]] | dict[str, str],
    *,
    public_base_url: str,
    token: str = AUTH_TOKEN,
    headers: dict[str, str] | None = None,
    signed: bool = True,
    timeout: float = 30.0,
) -> WebhookAnswer:
    """POST a form to `worker_url` + `path_and_query` the way Twilio does, signed with `token` for
    the public URL Twilio was given (`public_base_url` + `path_and_query`): TLS ends at a proxy."""
    pairs = list(params.items()) if isinstance(params, dict) else list(params)
    request_headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
    }
    if signed:
        request_headers["X-Twilio-Signature"] = signature(token, public_base_url + path_and_query, pairs)
    request_headers.update(headers or {})
    request = urllib.request.Request(
        worker_url + path_and_query, data=urlencode(pairs).encode(), method="POST", headers=request_headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return WebhookAnswer(
                response.status, response.headers.get_content_type(), response.read().decode()
            )
    except urllib.error.HTTPError as error:
        return WebhookAnswer(error.code, error.headers.get_content_type(), error.read().decode())


def inbound_form(
    *, from_: str, to: str, body: str, message_sid: str | None = None, **extra: str
) -> list[tuple[str, str]]:
    """The form of Twilio's inbound-message webhook, with some of the extra parameters it sends."""
    message_sid = message_sid or sid()
    return [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", message_sid),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94105"),
        ("SmsSid", message_sid),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", body),
        ("FromCountry", "US"),
        ("To", to),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", message_sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from_),
        ("ApiVersion", "2010-04-01"),
        *extra.items(),
    ]


def status_form(
    *, message_sid: str, status: str, to: str, from_: str, error_code: str | None = None, **extra: str
) -> list[tuple[str, str]]:
    """The form of a Message status callback."""
    form = [
        ("SmsSid", message_sid),
        ("SmsStatus", status),
        ("MessageStatus", status),
        ("To", to),
        ("MessageSid", message_sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from_),
        ("ApiVersion", "2010-04-01"),
        *extra.items(),
    ]
    if error_code is not None:
        form.append(("ErrorCode", error_code))
    return form
