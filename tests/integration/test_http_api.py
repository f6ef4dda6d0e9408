"""The HTTP API against a real worker: bodies read whole however they arrive, one JSON error shape for
every refusal (aiohttp's and Faust's included), no input that reaches a 500, person ids with braces
served, and overrides that a client can retry safely with an Idempotency-Key."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from typing import Any

import pytest

from streams.engine.topics import PERSON_EVENTS
from tests.factories import received, sent, unique, unique_phone
from tests.integration.kafka import raw_values
from tests.integration.processes import ServiceProcess, http_json
from tests.integration.test_overrides import WHO, opted_out
from tests.integration.test_pipeline import OTHER_SENDER, SENDER, eventually, publish_events

pytestmark = pytest.mark.integration


def raw_http(port: int, *writes: bytes, pause: float = 0.3) -> tuple[int, dict[str, str], bytes]:
    """Send `writes` as separate TCP writes with a pause between them; the answer (connection closed).
    `HOST` in them stands for the worker's own `127.0.0.1:port` (its allowed Host)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for index, part in enumerate(part.replace(b"HOST", f"127.0.0.1:{port}".encode()) for part in writes):
            if index:
                time.sleep(pause)
            sock.sendall(part)
        received_ = b""
        while chunk := sock.recv(65536):
            received_ += chunk
    head, _, body = received_.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split(" ")[1]), headers, body


def request_head(method: str, path: str, body: bytes, content_type: str, **headers: str) -> bytes:
    extra = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    return (
        f"{method} {path} HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    ).encode()


def path_of(person: str, *rest: str) -> str:
    return "/".join(["", "people", urllib.parse.quote(person, safe=""), *rest])


# ---- bodies ---------------------------------------------------------------------------------------


def test_an_override_body_that_arrives_in_two_tcp_writes_is_read_whole(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, _ = opted_out(worker, kafka_brokers, SENDER)
    body = json.dumps(WHO).encode()
    path = path_of(person, "sms-opt-outs", urllib.parse.quote(SENDER, safe=""))

    status, _, answer = raw_http(
        worker.port, request_head("DELETE", path, body, "application/json") + body[:10], body[10:]
    )

    assert status == 200, answer
    assert json.loads(answer)["type"] == "opt_out.overridden"


# ---- one error shape, no 500 ----------------------------------------------------------------------

LONG = "a" * 7000


@pytest.mark.parametrize(
    "path",
    [
        "/people/cus_1%0A/sms-opt-outs",
        "/people/cus_1%0A/sms-opt-outs/history",
        "/people/cus_1%0A",
        "/people/cus%00x/sms-opt-outs",
        "/people/cus%E2%80%8Bx/sms-opt-outs",
        "/people/cus%E2%80%AEx/sms-opt-outs/history",
        f"/people/{LONG}/sms-opt-outs",
        "/people/cus_1/sms-opt-outs?as_of=0001-01-01T00:00:00%2B01:00",
        "/people/cus_1/sms-opt-outs?as_of=9999-12-31T23:59:59-01:00",
        "/people/cus_1/sms-opt-outs?as_of=2026-W48-5T09:05:00Z",
        "/people/cus_1/sms-opt-outs?as_of=20261127T090500Z",
        "/people/cus_1/sms-opt-outs?as_of=",
        "/people/cus_1/sms-opt-outs?as_of=2026-11-27",
        "/people/cus_1/sms-opt-outs?as_of=2026-11-27T09:05:00",
        f"/people/cus_1/sms-opt-outs?as_of={LONG}",
        "/router/nope/",
        "/nothing/here",
        f"/{LONG}",
    ],
)
def test_a_bad_path_or_query_is_a_short_json_error_never_a_500(worker: ServiceProcess, path: str) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n"
    status, _, body = raw_http(worker.port, request.encode())

    assert 400 <= status < 500, body
    assert b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" not in body
    if path != "/people/cus_1%0A":  # the person page answers a browser in HTML
        assert list(json.loads(body)) == ["error"] and len(body) < 400


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (b"PUT /health HTTP/1.1\r\nHost: HOST\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405),
        (b"DELETE /people/p/sms-opt-outs HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n", 405),
        (b"FROB /health HTTP/1.1\r\nHost: HOST\r\n\r\n", 400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: HOST\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\nHost: HOST\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", 400),
        (b"not http at all\r\n\r\n", 400),
    ],
    ids=["put", "delete-on-a-list", "unknown-method", "long-request-line", "long-header", "garbage"],
)
def test_aiohttp_s_own_refusals_are_the_api_s_json_error(
    worker: ServiceProcess, request_bytes: bytes, expected: int
) -> None:
    status, headers, body = raw_http(worker.port, request_bytes)

    assert status == expected
    assert headers["Content-Type"].startswith("application/json")
    assert list(json.loads(body)) == ["error"] and b"aaaaaaaa" not in body
    if status == 405:
        assert "GET" in headers["Allow"]


def test_a_bad_sender_in_the_path_is_named_by_an_excerpt(worker: ServiceProcess) -> None:
    status, body = http_json("DELETE", f"{worker.url}/people/p/sms-opt-outs/{'+1' + '5' * 5000}", WHO)

    assert status == 422
    assert len(body["error"]) < 300 and "(5002 characters)" in body["error"]


# ---- strict, routable person ids ----------------------------------------------------------------


def test_a_person_id_with_braces_is_served_like_any_other(worker: ServiceProcess, kafka_brokers: str) -> None:
    person, phone = "{" + unique("guid") + "}", unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER), received(phone, SENDER, "STOP"))

    def listed() -> Any:
        status, body = http_json("GET", f"{worker.url}{path_of(person, 'sms-opt-outs')}")
        return status == 200 and body["opt_outs"] and body

    assert eventually(listed)["person_id"] == person
    status, page = http_json("GET", f"{worker.url}{path_of(person)}")
    assert status == 200 and "guid" in page


# ---- body limit -----------------------------------------------------------------------------------


def test_an_override_body_over_16_kib_is_413_and_appends_nothing(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, _ = opted_out(worker, kafka_brokers, SENDER)
    url = f"{worker.url}{path_of(person, 'sms-opt-outs', urllib.parse.quote(SENDER, safe=''))}"

    status, body = http_json("DELETE", url, {**WHO, "reason": "x" * (16 * 1024)})

    assert status == 413, body
    logged = raw_values(kafka_brokers, PERSON_EVENTS, {person})[person]  # to the log's end
    assert "opt_out.overridden" not in [json.loads(value)["type"] for value in logged]
    status, listed = http_json("GET", f"{worker.url}{path_of(person, 'sms-opt-outs')}")
    assert [entry["sender"] for entry in listed["opt_outs"]] == [SENDER]


# ---- idempotent overrides -----------------------------------------------------------------------


def remove_with_key(worker: ServiceProcess, person: str, sender: str, key: str) -> tuple[int, Any]:
    url = f"{worker.url}{path_of(person, 'sms-opt-outs', urllib.parse.quote(sender, safe=''))}"
    return http_json("DELETE", url, WHO, headers={"Idempotency-Key": key})


def test_an_override_sent_twice_with_one_idempotency_key_is_in_the_history_once(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, _ = opted_out(worker, kafka_brokers, SENDER, OTHER_SENDER)
    key = unique("retry")

    first = remove_with_key(worker, person, SENDER, key)
    again = remove_with_key(worker, person, SENDER, key)

    assert (first[0], again[0]) == (200, 200), (first, again)
    assert first[1]["event_id"] == again[1]["event_id"]
    status, body = http_json("GET", f"{worker.url}{path_of(person, 'sms-opt-outs', 'history')}")
    overrides = [change for change in body["history"] if change["type"] == "opt_out.overridden"]
    assert [change["event_id"] for change in overrides] == [first[1]["event_id"]]
    # The same key for another entry is a mistake the client must hear about, not a silent no-op.
    status, refused = remove_with_key(worker, person, OTHER_SENDER, key)
    assert status == 422 and "Idempotency-Key" in refused["error"]
    logged = [json.loads(value) for value in raw_values(kafka_brokers, PERSON_EVENTS, {person})[person]]
    assert [event["type"] for event in logged].count("opt_out.overridden") == 1  # nothing appended again


def test_an_idempotency_key_that_is_not_visible_ascii_is_refused(worker: ServiceProcess) -> None:
    status, body = remove_with_key(worker, "p", SENDER, "x" * 201)
    assert status == 422 and "Idempotency-Key" in body["error"]
