"""Secure by default, through a real worker started with the service's own defaults: without
OPTOUTS_OPERATOR_TOKEN it generates a token, keeps it in its data dir for the CLI and prints a login
URL; nothing but health, readiness, metrics and the signed webhooks answers without it. Hosts it does
not know get 421; a browser gets an expiring session, never the token; after logging in it only goes
to a path of this service; the person page removes an entry with JavaScript off."""

from __future__ import annotations

import re
import socket
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest

from streams.engine.topics import PERSON_EVENTS
from tests.factories import unique
from tests.integration.kafka import latest_values
from tests.integration.processes import ServiceProcess, http_json, new_worker, operator_headers
from tests.integration.test_overrides import opted_out
from tests.integration.test_pipeline import OTHER_SENDER, SENDER, eventually, history, senders

pytestmark = pytest.mark.integration

PUBLIC = "https://optouts.example.com"
MORE_HOSTS = "ops.internal:8443,Proxy.Internal"


@pytest.fixture(scope="module")
def protected(
    kafka_brokers: str, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> Iterator[ServiceProcess]:
    """A worker with the service's default access: no OPTOUTS_AUTH, no OPTOUTS_OPERATOR_TOKEN."""
    app_id = unique("optouts-secure")
    process = new_worker(
        kafka_brokers,
        tmp_path_factory.mktemp("secure"),
        app_id,
        output_dir / f"{app_id}.log",
        OPTOUTS_AUTH=None,
        OPTOUTS_PUBLIC_BASE_URL=PUBLIC,
        OPTOUTS_ALLOWED_HOSTS=MORE_HOSTS,
    )
    process.start()
    yield process
    process.stop()


def token_file(worker: ServiceProcess) -> Path:
    return Path(worker.env["OPTOUTS_DATA_DIR"]) / "operator-token"


def generated(worker: ServiceProcess) -> str:
    return token_file(worker).read_text().strip()


class Answer:
    def __init__(self, status: int, headers: Any, body: str) -> None:
        self.status, self.headers, self.body = status, headers, body

    def cookie(self, name: str = "optouts_session") -> str:
        """The whole Set-Cookie header for `name` ('' if none)."""
        return next((c for c in self.headers.get_all("Set-Cookie") or [] if c.startswith(f"{name}=")), "")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def call(
    worker: ServiceProcess,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Answer:
    """One request, redirects not followed: status, headers, body text."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(f"{worker.url}{path}", data=data, method=method, headers=headers or {})
    if form is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as answer:
            return Answer(answer.status, answer.headers, answer.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read().decode())


def session_of(answer: Answer) -> str:
    """`optouts_session=VALUE` of an answer's Set-Cookie, for a Cookie header."""
    return answer.cookie().split(";")[0]


def logged_in(worker: ServiceProcess) -> str:
    answer = call(worker, "/login", "POST", form={"token": generated(worker), "next": "/"})
    assert answer.status == 303, answer.body
    return session_of(answer)


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


# ---- the token: generated, private, printed ----------------------------------------------------------


def test_without_a_token_the_worker_generates_one_keeps_it_private_and_prints_a_login_url(
    protected: ServiceProcess,
) -> None:
    token = generated(protected)

    assert len(token) >= 40
    assert stat.S_IMODE(token_file(protected).stat().st_mode) == 0o600
    eventually(lambda: f"{PUBLIC}/login?token={token}" in protected.log_path.read_text())
    assert call(protected, "/people/p/sms-opt-outs").status == 401
    assert call(protected, "/people/p/sms-opt-outs", headers=operator_headers(protected)).status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/people/p"),
        ("GET", "/people/p/sms-opt-outs"),
        ("GET", "/people/p/sms-opt-outs/history"),
        ("DELETE", "/people/p/sms-opt-outs/%2B14155550100"),
        ("GET", "/people/p/remove?sender=%2B14155550100"),
        ("POST", "/people/p/remove"),
        ("GET", "/router/"),
        ("GET", "/router/nope/"),
        ("GET", "/graph/"),
        ("GET", "/stats/"),
        ("GET", "/openapi.json"),
        ("GET", "/no-such-path"),
    ],
)
def test_without_the_token_nothing_else_answers(protected: ServiceProcess, method: str, path: str) -> None:
    answer = call(protected, path, method)

    assert answer.status == 401, answer.body
    assert answer.headers.get_content_type() == "application/json"
    assert "operator token" in answer.body


def test_health_readiness_metrics_and_the_signed_webhooks_answer_without_it(
    protected: ServiceProcess,
) -> None:
    for path in ("/health", "/ready", "/metrics"):
        assert call(protected, path).status == 200, path
    # No Twilio auth token here: the webhooks' own check answers 503, never the operator's 401.
    assert call(protected, "/twilio/messages", "POST", form={}).status == 503


def test_faust_debug_views_are_off_and_an_unknown_table_is_no_500(protected: ServiceProcess) -> None:
    bearer = operator_headers(protected)

    assert call(protected, "/router/", headers=bearer).status == 200  # the partition map, ours
    for path in ("/router/nope/", "/router/nope/key/", "/router/topics", "/graph/", "/stats/", "/table/"):
        assert call(protected, path, headers=bearer).status == 404, path


# ---- hosts --------------------------------------------------------------------------------------------


def test_only_known_hosts_are_answered_and_others_get_421(protected: ServiceProcess) -> None:
    port, bearer = protected.port, operator_headers(protected)
    allowed = [
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"LOCALHOST.:{port}",
        f"[::1]:{port}",
        "optouts.example.com",  # the public URL's host: a proxy may pass it on
        "optouts.example.com:443",
        "ops.internal:8443",  # OPTOUTS_ALLOWED_HOSTS
        "proxy.internal:9000",
    ]
    refused = [
        "evil.example",
        f"evil.example:{port}",  # a rebound DNS name keeps the port
        f"localhost.evil.example:{port}",
        f"localhost:{port + 1}",
        "ops.internal:8444",
        "optouts.example.com.evil.example",
        "127.0.0.1:6066@evil.example",
        "",
    ]
    for host in allowed:
        assert call(protected, "/people/p/sms-opt-outs", headers={**bearer, "Host": host}).status == 200, host
    for host in refused:
        answer = call(protected, "/people/p/sms-opt-outs", headers={**bearer, "Host": host})
        assert (answer.status, answer.headers.get_content_type()) == (421, "application/json"), host
        assert "OPTOUTS_ALLOWED_HOSTS" in answer.body
    # Probes name the pod's address, which no setting knows: they answer whatever the Host.
    assert call(protected, "/health", headers={"Host": "10.1.2.3:6066"}).status == 200


# ---- sessions -----------------------------------------------------------------------------------------


def test_logging_in_sets_an_expiring_signed_session_never_the_token(protected: ServiceProcess) -> None:
    token = generated(protected)

    answer = call(protected, "/login", "POST", form={"token": token, "next": "/people/p"})

    assert (answer.status, answer.headers["Location"]) == (303, "/people/p")
    cookie = SimpleCookie(answer.cookie())["optouts_session"]
    assert token not in answer.cookie()
    assert cookie["httponly"] and cookie["secure"]  # Secure: the public URL is https
    assert (cookie["samesite"], cookie["max-age"], cookie["path"]) == ("Strict", "43200", "/")
    session = session_of(answer)
    assert call(protected, "/people/p", headers={"Cookie": session, "Accept": "text/html"}).status == 200

    expires, nonce, signature = cookie.value.split(".")
    forged = [
        f"optouts_session={int(expires) + 86400}.{nonce}.{signature}",  # longer than it was signed for
        f"optouts_session={expires}.{nonce}.{signature[:-2]}AA",
        f"optouts_session={expires}.other.{signature}",
        f"optouts_operator_token={token}",  # the master token as a cookie, as /login set it before
    ]
    for value in forged:
        assert call(protected, "/people/p/sms-opt-outs", headers={"Cookie": value}).status == 401, value


def test_the_login_url_the_worker_prints_logs_a_browser_in_and_leaves_the_address_bar(
    protected: ServiceProcess,
) -> None:
    answer = call(protected, f"/login?token={generated(protected)}&next=/people/p")

    assert (answer.status, answer.headers["Location"]) == (303, "/people/p")
    assert answer.cookie()
    assert call(protected, "/login?token=not-the-token-0123456789").status == 401


def test_logging_out_needs_the_session_csrf_token_and_clears_the_session(protected: ServiceProcess) -> None:
    session = logged_in(protected)
    page = call(protected, "/", headers={"Cookie": session})
    assert page.status == 200 and 'action="/logout"' in page.body

    assert (
        call(protected, "/logout", "POST", headers={"Cookie": session}, form={"csrf": "forged"}).status == 403
    )
    answer = call(
        protected, "/logout", "POST", headers={"Cookie": session}, form={"csrf": csrf_in(page.body)}
    )

    assert (answer.status, answer.headers["Location"]) == (303, "/login")
    assert SimpleCookie(answer.cookie())["optouts_session"].value == ""
    assert SimpleCookie(answer.cookie())["optouts_session"]["max-age"] == "0"


NOT_HERE = [
    "//evil.example/x",
    "///evil.example/x",
    "/\\evil.example",
    "/\\/evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\t/evil.example/",
    "/\n/evil.example/",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "%2F%2Fevil.example",
    "evil.example",
    " //evil.example",
]


@pytest.mark.parametrize("next_", NOT_HERE)
def test_after_logging_in_a_browser_only_goes_to_a_path_of_this_service(
    protected: ServiceProcess, next_: str
) -> None:
    token = generated(protected)

    posted = call(protected, "/login", "POST", form={"token": token, "next": next_})
    # The same in the printed URL's form: percent-encoded, as a link would carry it.
    linked = call(protected, f"/login?token={token}&next={urllib.parse.quote(next_, safe='')}")

    assert (posted.status, posted.headers["Location"]) == (303, "/")
    assert (linked.status, linked.headers["Location"]) == (303, "/")


def test_a_tab_sent_percent_encoded_in_the_link_is_refused_too(protected: ServiceProcess) -> None:
    # `next=/%09/evil.example/` decodes to a tab, which browsers drop: `//evil.example/`.
    answer = call(protected, f"/login?token={generated(protected)}&next=/%09/evil.example/")

    assert answer.headers["Location"] == "/"


def test_a_path_of_this_service_is_followed_after_logging_in(protected: ServiceProcess) -> None:
    token = generated(protected)

    for next_ in ("/people/cus_1?as_of=2026-11-27T09:05:00Z", "/people/a%2Fb", "/"):
        answer = call(protected, "/login", "POST", form={"token": token, "next": next_})
        assert answer.headers["Location"] == next_


# ---- the person page: without JavaScript, and its headers -------------------------------------------


def test_pages_with_personal_data_forbid_framing_sniffing_caching_and_inline_script(
    protected: ServiceProcess,
) -> None:
    answer = call(protected, "/people/p", headers={"Cookie": logged_in(protected)})

    assert answer.status == 200
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "'sha256-" in policy
    assert (
        answer.headers["X-Frame-Options"],
        answer.headers["X-Content-Type-Options"],
        answer.headers["Cache-Control"],
        answer.headers["Referrer-Policy"],
    ) == ("DENY", "nosniff", "no-store", "no-referrer")
    assert "onclick" not in answer.body and "javascript:" not in answer.body


def test_a_removal_form_without_its_csrf_token_removes_nothing(
    protected: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = opted_out(protected, kafka_brokers, SENDER)
    session = logged_in(protected)
    fields = {"sender": SENDER, "phone": phone, "actor": "mallory", "reason": "another site's form"}

    for form in (fields, {**fields, "csrf": "forged"}):
        answer = call(protected, f"/people/{person}/remove", "POST", headers={"Cookie": session}, form=form)
        assert answer.status == 403, answer.body
    assert latest_values(kafka_brokers, PERSON_EVENTS, {person})[person]["type"] == ("opt_out.recorded")
    assert senders(protected, person) == {SENDER}


def test_an_operator_removes_an_opt_out_with_javascript_off(
    protected: ServiceProcess, kafka_brokers: str, browser: object, output_dir: Path
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    person, _ = opted_out(protected, kafka_brokers, SENDER, OTHER_SENDER)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        # The URL the worker printed, with the person's page to go to: no script needed to log in.
        page.goto(f"{protected.url}/login?token={generated(protected)}&next=/people/{person}")
        page.wait_for_url(f"**/people/{person}")
        rows = page.locator("#opt-outs tbody tr")
        expect(rows).to_have_count(2)

        page.locator(f'#opt-outs tr[data-sender="{SENDER}"]').get_by_role("link", name="Remove").click()
        page.get_by_label("Your name or email").fill("ops@example.com")
        page.get_by_label("Reason").fill("opted in again on the phone, ticket 4711")
        page.get_by_role("button", name="Remove").click()

        page.wait_for_url(f"**/people/{person}")
        expect(rows).to_have_count(1)
        expect(page.locator("#opt-outs")).not_to_contain_text(SENDER)
        last_change = page.locator("#history tbody tr").last
        expect(last_change).to_contain_text("Removed by operator")
        expect(last_change).to_contain_text("ticket 4711")
        page.screenshot(path=str(output_dir / "person-page-without-script.png"), full_page=True)
    finally:
        context.close()

    assert senders(protected, person) == {OTHER_SENDER}
    assert history(protected, person)[-1]["actor"] == "ops@example.com"


# ---- OPTOUTS_AUTH=off ---------------------------------------------------------------------------------


def test_auth_off_answers_without_a_token_and_says_so_loudly_at_start(worker: ServiceProcess) -> None:
    assert worker.env["OPTOUTS_AUTH"] == "off"

    assert http_json("GET", f"{worker.url}/people/p/sms-opt-outs")[0] == 200
    eventually(lambda: "operator access OFF" in worker.log_path.read_text())
    assert re.search(r"WARNING.*OPTOUTS_AUTH=off", worker.log_path.read_text())
    assert not (Path(worker.env["OPTOUTS_DATA_DIR"]) / "operator-token").exists()


def test_with_auth_off_a_removal_form_still_needs_its_csrf_token(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = opted_out(worker, kafka_brokers, SENDER)
    fields = {"sender": SENDER, "phone": phone, "actor": "mallory", "reason": "another site's form"}

    assert call(worker, f"/people/{person}/remove", "POST", form=fields).status == 403

    query = urllib.parse.urlencode({"sender": SENDER, "phone": phone})
    form_page = call(worker, f"/people/{person}/remove?{query}")
    session = session_of(form_page)  # no login here: a session only ties the form to this browser
    answer = call(
        worker,
        f"/people/{person}/remove",
        "POST",
        headers={"Cookie": session},
        form={**fields, "actor": "ops@example.com", "csrf": csrf_in(form_page.body)},
    )
    assert (answer.status, answer.headers["Location"]) == (303, f"/people/{person}")
    assert senders(worker, person) == set()


def raw_request(worker: ServiceProcess, head: bytes) -> bytes:
    """Send `head` (a request line and headers, CRLF-separated, bytes as they are) and return the
    answer's status line."""
    with socket.create_connection(("127.0.0.1", worker.port), timeout=10) as connection:
        connection.sendall(head + b"\r\n\r\n")
        return connection.recv(65536).split(b"\r\n", 1)[0]


@pytest.mark.parametrize(
    "header",
    [
        b"Authorization: Bearer \xff\xfe not utf-8",
        b"Cookie: optouts_session=1999999999.nonce.\xff\xfe",
        b"Cookie: optouts_session=1999999999.nonce.\xc3\xa9t\xc3\xa9",
    ],
    ids=["bearer-not-utf8", "session-not-utf8", "session-not-ascii"],
)
def test_a_token_or_session_that_is_not_ascii_is_refused_with_401_never_a_500(
    protected: ServiceProcess, header: bytes
) -> None:
    host = f"Host: 127.0.0.1:{protected.port}\r\n".encode()
    status = raw_request(protected, b"GET /people/cus_1/sms-opt-outs HTTP/1.1\r\n" + host + header)

    assert status.startswith(b"HTTP/1.1 401"), status
