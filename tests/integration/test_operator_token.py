"""With OPTOUTS_OPERATOR_TOKEN set, everything but health, readiness, metrics and the Twilio webhooks
needs the token (a Bearer header, or the session `/login` sets for a browser), also across workers;
Faust's table views are refused to everyone. The token never reaches the log, not even in a header
too long for aiohttp, and one that cannot be used stops the worker without being shown."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.engine.broker import free_port
from streams.engine.topics import PERSON_EVENTS
from tests.factories import received, sent, unique, unique_phone
from tests.integration.kafka import latest_values
from tests.integration.processes import ROOT, ServiceProcess, http_json, worker_env
from tests.integration.test_pipeline import SENDER, eventually, publish_events
from tests.integration.test_scale_out import owner_port, sharing_pair

pytestmark = pytest.mark.integration

TOKEN = "op-token-" + "7" * 24
BEARER = {"Authorization": f"Bearer {TOKEN}"}
WHO = {"actor": "ops@example.com", "reason": "ticket 4711"}


@pytest.fixture(scope="module")
def guarded(
    kafka_brokers: str, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Two workers of one app id with the token, sharing the partitions."""
    dirs = (tmp_path_factory.mktemp("token1"), tmp_path_factory.mktemp("token2"))
    with sharing_pair(
        kafka_brokers, dirs, unique("optouts-token"), output_dir, OPTOUTS_OPERATOR_TOKEN=TOKEN
    ) as workers:
        yield workers


def listed(worker: ServiceProcess, person: str, headers: dict[str, str] | None = None) -> tuple[int, object]:
    return http_json("GET", f"{worker.url}/people/{person}/sms-opt-outs", headers=headers)


def page(url: str, cookie: str | None = None) -> tuple[int, str]:
    headers = {"Accept": "text/html", **({"Cookie": cookie} if cookie else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def log_in(worker: ServiceProcess, token: str, next_: str) -> tuple[int, str, str]:
    """POST /login like the form does: (status, Location, Set-Cookie)."""
    form = urllib.parse.urlencode({"token": token, "next": next_}).encode()
    request = urllib.request.Request(f"{worker.url}/login", data=form, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as answer:
            return answer.status, answer.headers.get("Location", ""), answer.headers.get("Set-Cookie", "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location", ""), error.headers.get("Set-Cookie", "")


def test_the_people_api_needs_the_token_and_a_refused_override_appends_nothing(
    guarded: tuple[ServiceProcess, ServiceProcess], kafka_brokers: str
) -> None:
    worker = guarded[0]
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER), received(phone, SENDER, "STOP"))
    eventually(lambda: (answer := listed(worker, person, BEARER))[0] == 200 and answer[1]["opt_outs"])  # type: ignore[index]

    assert listed(worker, person)[0] == 401
    assert listed(worker, person, {"Authorization": "Bearer wrong"})[0] == 401
    assert listed(worker, person, {"Authorization": f"Basic {TOKEN}"})[0] == 401
    history = f"{worker.url}/people/{person}/sms-opt-outs/history"
    assert http_json("GET", history)[0] == 401
    assert http_json("GET", history, headers=BEARER)[0] == 200

    removal = f"{worker.url}/people/{person}/sms-opt-outs/{urllib.parse.quote(SENDER)}"
    status, refused = http_json("DELETE", removal, WHO)
    assert status == 401 and "operator token" in refused["error"]
    assert latest_values(kafka_brokers, PERSON_EVENTS, {person})[person]["type"] == ("opt_out.recorded")
    status, event = http_json("DELETE", removal, WHO, headers=BEARER)
    assert (status, event["type"]) == (200, "opt_out.overridden")


def test_a_request_forwarded_to_the_owning_worker_keeps_its_token(
    guarded: tuple[ServiceProcess, ServiceProcess],
) -> None:
    first, second = guarded
    person = next(p for p in (unique("person") for _ in range(200)) if owner_port(guarded, p) == second.port)

    assert listed(first, person, BEARER) == (200, {"person_id": person, "opt_outs": [], "updated_at": None})
    assert listed(first, person)[0] == 401
    # The owner checks the token again: a request that says it was forwarded is trusted no more.
    assert listed(second, person, {"X-Optouts-Forwarded": "1"})[0] == 401
    assert listed(second, person, {"X-Optouts-Forwarded": "1", **BEARER})[0] == 200


def test_a_browser_logs_in_once_and_the_cookie_opens_the_person_page(
    guarded: tuple[ServiceProcess, ServiceProcess],
) -> None:
    worker = guarded[0]
    person = unique("person")

    status, body = page(f"{worker.url}/people/{person}")
    assert status == 401 and "/login?next=" in body

    assert log_in(worker, "wrong", f"/people/{person}")[0] == 401
    status, location, cookie = log_in(worker, TOKEN, f"/people/{person}")
    assert (status, location) == (303, f"/people/{person}")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert cookie.startswith("optouts_session=") and TOKEN not in cookie  # a session, not the token
    for elsewhere in ("//evil.example/x", "/\t/evil.example/", "/\\evil.example", "https://evil.example"):
        assert log_in(worker, TOKEN, elsewhere)[1] == "/", elsewhere

    status, body = page(f"{worker.url}/people/{person}", cookie=cookie.split(";")[0])
    assert status == 200 and person in body


def test_health_readiness_metrics_and_webhooks_need_no_token_and_table_views_are_refused(
    guarded: tuple[ServiceProcess, ServiceProcess],
) -> None:
    worker = guarded[0]
    for path in ("/health", "/ready", "/metrics"):
        assert http_json("GET", f"{worker.url}{path}")[0] == 200, path
    for path in ("/", "/router/"):
        assert http_json("GET", f"{worker.url}{path}")[0] == 401, path
    # The webhooks keep their own check (no Twilio settings here: 503, never 401).
    assert http_json("POST", f"{worker.url}/twilio/messages", {})[0] == 503
    for path in ("/table/", "/table/opt-outs/", "/table/contacts/+14155550123/"):
        assert http_json("GET", f"{worker.url}{path}", headers=BEARER)[0] == 404, path


def test_the_operator_command_sends_the_token_from_its_settings(
    guarded: tuple[ServiceProcess, ServiceProcess],
) -> None:
    worker = guarded[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUTS_")}

    def show(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams", "people", "--api", worker.url, "show", "nobody"],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT), **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert show(OPTOUTS_OPERATOR_TOKEN=TOKEN).returncode == 0
    without = show()
    assert without.returncode == 1 and "error (401)" in without.stderr


def test_headers_too_long_for_aiohttp_leave_no_token_and_no_cookie_in_the_log(
    guarded: tuple[ServiceProcess, ServiceProcess],
) -> None:
    worker = guarded[0]
    marker = unique("secret-marker")
    padding = "x" * 9000  # over aiohttp's 8190 bytes for a header line
    requests = [
        f"GET /people/p/sms-opt-outs HTTP/1.1\r\nAuthorization: Bearer {TOKEN}{marker}{padding}\r\n",
        f"GET /people/p HTTP/1.1\r\nCookie: optouts_session={marker}; other={TOKEN}{padding}\r\n",
        f"GET /login?token={TOKEN}{marker}{padding} HTTP/1.1\r\n",  # the request line
    ]
    for request in requests:
        with socket.create_connection(("127.0.0.1", worker.port), timeout=10) as connection:
            connection.sendall(f"{request}Host: 127.0.0.1:{worker.port}\r\n\r\n".encode())
            answer = connection.recv(65536).decode("latin-1")
        assert answer.split(" ", 2)[1] in ("400", "431"), answer[:200]
        assert marker not in answer and TOKEN not in answer
    time.sleep(1.0)  # the worker's log is written by its own process

    log = worker.log_path.read_text(errors="replace")
    assert marker not in log and TOKEN not in log


@pytest.mark.parametrize(
    "bad", ["{}", "new\nline-{}-0123456789", "a space-{}-0123456789", "ünïcödé-{}-0123456789"]
)
def test_a_token_that_cannot_be_used_stops_the_worker_without_being_shown(
    kafka_brokers: str, tmp_path: Path, bad: str
) -> None:
    marker = "Zq" + secrets.token_hex(4)  # alone, too short for a token
    env = worker_env(
        kafka_brokers,
        tmp_path,
        unique("optouts-bad-token"),
        free_port(),
        OPTOUTS_OPERATOR_TOKEN=bad.format(marker),
    )

    done = subprocess.run(
        [sys.executable, "-m", "streams", "worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "OPTOUTS_OPERATOR_TOKEN" in done.stderr
    assert marker not in done.stdout + done.stderr
