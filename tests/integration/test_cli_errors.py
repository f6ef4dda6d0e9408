"""`optouts` turns every expected failure into one line on stderr and the command's documented exit
status: never a traceback, never a secret's value. Run as an operator would: `python -m streams`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from streams.engine.broker import free_port
from tests.integration.processes import ROOT

pytestmark = pytest.mark.integration

SECRET = "do-not-print-me"


def optouts(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUTS_")}
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stderr + done.stdout
    return lines[0]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OPTOUTS_WEB_PORT": "abc"}, "OPTOUTS_WEB_PORT"),
        ({"OPTOUTS_PARTITIONS": "-1"}, "OPTOUTS_PARTITIONS"),
        ({"OPTOUTS_SEND_TIMEOUT": "soon", "OPTOUTS_TWILIO_AUTH_TOKEN": SECRET}, "OPTOUTS_SEND_TIMEOUT"),
    ],
    ids=["web-port", "partitions", "with-a-secret-set"],
)
def test_a_bad_setting_is_one_line_naming_the_variable(env: dict[str, str], named: str) -> None:
    done = optouts("create-topics", OPTOUTS_KAFKA_BROKERS="127.0.0.1:9", **env)

    assert done.returncode == 1
    assert named in one_line(done)


def test_a_bad_operator_token_is_named_by_where_it_came_from_not_by_its_value() -> None:
    done = optouts("people", "show", "p1", OPTOUTS_OPERATOR_TOKEN="do-not print-me")  # a space: no token

    assert done.returncode == 3
    line = one_line(done)
    assert "OPTOUTS_OPERATOR_TOKEN" in line and "print-me" not in line


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("verify", "--wait", "0"), 3),
        (("replay",), 1),
        (("switch", "1"), 1),
        (("create-topics",), 1),
        (("worker",), 1),
        (("dead-letters", "list"), 2),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, tuple) else str(value),
)
def test_brokers_that_do_not_answer_are_one_line_and_the_command_s_exit_status(
    args: tuple[str, ...], status: int
) -> None:
    done = optouts(
        *args,
        OPTOUTS_KAFKA_BROKERS=f"127.0.0.1:{free_port()}",
        OPTOUTS_DATA_DIR=str(ROOT / "test-output" / "nowhere"),
    )

    assert done.returncode == status
    assert "Kafka" in one_line(done) or "brokers" in one_line(done)


@pytest.mark.parametrize(
    "args",
    [
        ("people", "--api", "http://host:port", "show", "p1"),
        ("people", "--api", "127.0.0.1:6066", "show", "p1"),
        ("verify", "--api", "ftp://example.com"),
        (
            "send",
            "--person",
            "p1",
            "--to",
            "+14155550123",
            "--from",
            "+14155550100",
            "--body",
            "hi",
            "--api",
            "x",
        ),
    ],
    ids=["bad-port", "no-scheme", "verify-ftp", "send"],
)
def test_a_malformed_api_url_is_a_one_line_usage_error(args: tuple[str, ...]) -> None:
    done = optouts(*args, OPTOUTS_KAFKA_BROKERS="127.0.0.1:9")

    assert done.returncode == 2
    assert "is not an http:// or https:// URL" in one_line(done)


def test_a_person_id_the_log_would_refuse_is_a_usage_error() -> None:
    done = optouts("people", "--api", "http://127.0.0.1:9", "show", "cus_1\n")

    assert done.returncode == 2
    assert "is not a person id" in one_line(done)


def test_no_service_at_the_api_url_is_one_line_and_exit_status_3() -> None:
    done = optouts("people", "--api", f"http://127.0.0.1:{free_port()}", "show", "p1")

    assert done.returncode == 3
    assert "no answer from the service" in one_line(done)
