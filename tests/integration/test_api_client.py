"""Every command that calls the API sends the operator token through one client (streams.web.api_client),
against a worker that requires it: `optouts people`, `optouts verify`, the guarded sender. And a
login form that arrives in two TCP writes is read whole."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.settings import Settings
from streams.twilio.sender import GuardedSender, SendResult
from streams.web.api_client import Api, NoAnswer, api_url, request
from tests.factories import received, sent, unique, unique_phone
from tests.integration.processes import ROOT, ServiceProcess, http_json, new_worker
from tests.integration.test_http_api import raw_http, request_head
from tests.integration.test_pipeline import SENDER, eventually, publish_events

pytestmark = pytest.mark.integration

TOKEN = "api-client-token-" + "4" * 24


@pytest.fixture(scope="module")
def guarded(
    kafka_brokers: str, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> Iterator[ServiceProcess]:
    app_id = unique("optouts-client")
    worker = new_worker(
        kafka_brokers,
        tmp_path_factory.mktemp("client"),
        app_id,
        output_dir / f"{app_id}.log",
        OPTOUTS_OPERATOR_TOKEN=TOKEN,
    )
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def opted_out(guarded: ServiceProcess, kafka_brokers: str) -> str:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER), received(phone, SENDER, "STOP"))
    url = f"{guarded.url}/people/{person}/sms-opt-outs"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    eventually(lambda: (answer := http_json("GET", url, headers=bearer))[0] == 200 and answer[1]["opt_outs"])
    return person


def optouts(worker: ServiceProcess, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m streams ARGS` with the worker's brokers and app id, the token only if given."""
    settings = {k: v for k, v in worker.env.items() if k != "OPTOUTS_OPERATOR_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env={**settings, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_people_sends_the_token_from_the_settings(guarded: ServiceProcess, opted_out: str) -> None:
    shown = optouts(guarded, "people", "--api", guarded.url, "show", opted_out, OPTOUTS_OPERATOR_TOKEN=TOKEN)
    assert shown.returncode == 0, shown.stderr
    assert SENDER in shown.stdout

    without = optouts(guarded, "people", "--api", guarded.url, "show", opted_out)
    assert without.returncode == 1 and "401" in without.stderr


def test_verify_reads_a_protected_api_with_the_token(guarded: ServiceProcess, opted_out: str) -> None:
    agreed = optouts(
        guarded, "verify", "--wait", "20", "--api", guarded.url, opted_out, OPTOUTS_OPERATOR_TOKEN=TOKEN
    )

    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert "all agree" in agreed.stdout and "API (" in agreed.stdout

    refused = optouts(guarded, "verify", "--wait", "0", "--api", guarded.url, opted_out)
    assert refused.returncode == 3 and "401" in refused.stderr  # could not compare: not a difference


def test_the_guarded_sender_reads_the_list_with_the_token(guarded: ServiceProcess, opted_out: str) -> None:
    async def read(token: str | None) -> object:
        settings = Settings(api_url=guarded.url)
        api = Api.of(settings, token=token) if token else Api.of(settings)
        async with api.session() as http:
            sender = GuardedSender(settings, twilio=None, producer=None, http=http, api=api)  # type: ignore[arg-type]
            return await sender._opt_outs(opted_out)

    listed = asyncio.run(read(TOKEN))
    assert not isinstance(listed, SendResult) and [e.sender for e in listed.opt_outs] == [SENDER]  # type: ignore[attr-defined]
    unchecked = asyncio.run(read(None))
    assert (
        isinstance(unchecked, SendResult) and unchecked.outcome == "unchecked" and "401" in unchecked.reason
    )


def test_a_login_form_that_arrives_in_two_tcp_writes_is_read_whole(guarded: ServiceProcess) -> None:
    form = urllib.parse.urlencode({"token": TOKEN, "next": "/"}).encode()
    head = request_head("POST", "/login", form, "application/x-www-form-urlencoded")

    status, headers, body = raw_http(guarded.port, head + form[:12], form[12:])

    assert status == 303, body
    assert "Set-Cookie" in headers


def test_the_api_url_of_a_person_id_is_taken_as_it_is() -> None:
    api = Api.of(Settings(api_url="http://127.0.0.1:6066/prefix/"), token=TOKEN)
    assert (
        str(api.url("people", "..", "sms-opt-outs")) == "http://127.0.0.1:6066/prefix/people/../sms-opt-outs"
    )
    assert str(api.url("people", "a/b{c}", "x")) == "http://127.0.0.1:6066/prefix/people/a%2Fb%7Bc%7D/x"
    assert api.headers == {"Authorization": f"Bearer {TOKEN}"}
    assert os.environ.get("OPTOUTS_OPERATOR_TOKEN") != TOKEN  # nothing leaked into this process


def test_the_tests_json_requests_go_through_the_same_client(guarded: ServiceProcess, opted_out: str) -> None:
    """tests/integration/processes.http_json is this client's `request`: the token, each path segment
    quoted whole, the body parsed as the answer's type says; NoAnswer where nothing listens."""
    with_token = Api(api_url(guarded.url), TOKEN)
    status, body = with_token.request("GET", "people", opted_out, "sms-opt-outs")
    assert status == 200 and body["person_id"] == opted_out and body["opt_outs"]

    status, body = Api(api_url(guarded.url), None).request("GET", "people", opted_out, "sms-opt-outs")
    assert status == 401 and "operator token" in body["error"]

    with pytest.raises(NoAnswer):
        request("GET", "http://127.0.0.1:9/ready", timeout=5)
