"""Twilio's REST side, against a stand-in Twilio on loopback (real HTTP, the real `twilio` Client):
the guarded sender in each case Twilio answers, and the backfill after an outage. Both read and
write through the real broker and a real worker. The worker here has no Twilio settings at all,
which is also the case where it must refuse Twilio's webhooks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.engine.broker import free_port
from streams.settings import Settings
from streams.twilio.sender import SendResult, send_sms
from tests.factories import now, received, sent, unique, unique_phone
from tests.integration.processes import ROOT, ServiceProcess
from tests.integration.test_pipeline import (
    OTHER_SENDER,
    SENDER,
    eventually,
    history,
    opt_outs,
    publish_events,
    senders,
)
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, StandinTwilio, inbound_form, post_webhook, sid

pytestmark = pytest.mark.integration

SERVICE = "MG" + "7" * 32


@pytest.fixture
def twilio() -> Iterator[StandinTwilio]:
    with StandinTwilio() as standin:
        yield standin


def settings_for(worker: ServiceProcess, brokers: str, twilio: StandinTwilio, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "kafka_brokers": brokers,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_api_url": twilio.url,
        "api_url": worker.url,
        "twilio_senders": (SENDER,),
    }
    return Settings(**{**values, **changes})


def send(settings: Settings, person: str, phone: str, sender: str = SENDER, **options: Any) -> SendResult:
    return asyncio.run(send_sms(person, phone, sender, "Your table is ready", settings=settings, **options))


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m streams <args>` with `settings` as its environment."""
    env = {f"OPTOUTS_{name.upper()}": value for name, value in _env_values(settings).items()}
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _env_values(settings: Settings) -> dict[str, str]:
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    return {
        "kafka_brokers": str(settings.kafka_brokers),
        "twilio_account_sid": str(settings.twilio_account_sid),
        "twilio_auth_token": token,
        "twilio_api_url": str(settings.twilio_api_url),
        "api_url": str(settings.api_url),
        "twilio_senders": ",".join(settings.twilio_senders),
        "twilio_messaging_services": ",".join(settings.twilio_messaging_services),
    }


# ---- the guarded sender --------------------------------------------------------------------------


def test_a_send_to_a_person_who_opted_out_of_the_sender_is_refused_without_calling_twilio(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER), received(phone, SENDER, "STOP"))
    eventually(lambda: senders(worker, person) == {SENDER})

    result = send(settings_for(worker, kafka_brokers, twilio), person, phone)

    assert (result.outcome, result.sent) == ("refused", False)
    assert f"opted out of {SENDER}" in result.reason
    assert "texted STOP" in result.reason
    assert twilio.requests == []


def test_a_send_through_a_messaging_service_the_person_opted_out_of_is_refused(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(
        kafka_brokers,
        sent(person, phone, SENDER, messaging_service_sid=SERVICE),
        received(phone, SENDER, "STOP", messaging_service_sid=SERVICE),
    )
    eventually(lambda: senders(worker, person) == {SENDER})

    # Another sender of the same service: Twilio blocks the whole service after one STOP.
    result = send(
        settings_for(worker, kafka_brokers, twilio),
        person,
        phone,
        OTHER_SENDER,
        messaging_service_sid=SERVICE,
    )

    assert result.outcome == "refused"
    assert SERVICE in result.reason
    assert twilio.requests == []


def test_a_send_twilio_takes_is_published_as_message_sent(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    person, phone = unique("person"), unique_phone()

    result = send(settings_for(worker, kafka_brokers, twilio), person, phone)

    assert (result.outcome, result.sent) == ("sent", True)
    [create] = twilio.creates()
    assert create.authorised
    assert (create.params["To"], create.params["From"], create.params["Body"]) == (
        [phone],
        [SENDER],
        ["Your table is ready"],
    )
    assert result.event is not None and result.event.event_id == result.message_sid
    # The person is now a recipient of the sender: their STOP, after the send, counts.
    publish_events(kafka_brokers, received(phone, SENDER, "STOP", occurred_at=now()))
    eventually(lambda: senders(worker, person) == {SENDER})


def test_a_send_twilio_refuses_with_21610_is_published_as_message_blocked(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    person, phone = unique("person"), unique_phone()
    twilio.answer_to(phone, 400, code=21610)

    result = send(settings_for(worker, kafka_brokers, twilio), person, phone)

    assert (result.outcome, result.sent) == ("blocked", False)
    assert "21610" in result.reason
    [entry] = eventually(lambda: opt_outs(worker, person))
    assert (entry["sender"], entry["phone"], entry["cause"]) == (SENDER, phone, "send_blocked")


def test_a_send_twilio_fails_publishes_nothing(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    person, marker, phone = unique("person"), unique("marker"), unique_phone()
    twilio.answer_to(phone, 500)

    result = send(settings_for(worker, kafka_brokers, twilio), person, phone)

    assert (result.outcome, result.sent) == ("failed", False)
    assert "HTTP 500" in result.reason
    assert result.event is None
    # Had a message.sent been published, this STOP would put the sender on the person's list.
    publish_events(kafka_brokers, sent(marker, phone, SENDER), received(phone, SENDER, "STOP"))
    eventually(lambda: senders(worker, marker) == {SENDER})
    assert senders(worker, person) == set()


def test_a_send_with_wrong_twilio_credentials_fails(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    settings = settings_for(worker, kafka_brokers, twilio, twilio_auth_token="not-the-token")

    result = send(settings, unique("person"), unique_phone())

    assert result.outcome == "failed"
    assert "HTTP 401, error 20003" in result.reason


def test_a_send_is_not_made_when_the_list_cannot_be_read(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    settings = settings_for(worker, kafka_brokers, twilio, api_url=f"http://127.0.0.1:{free_port()}")

    result = send(settings, unique("person"), unique_phone())

    assert (result.outcome, result.sent) == ("unchecked", False)
    assert "could not read the opt-out list" in result.reason
    assert twilio.requests == []


def test_optouts_send_sends_one_message_and_says_what_happened(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    person, phone = unique("person"), unique_phone()
    settings = settings_for(worker, kafka_brokers, twilio)

    done = cli(settings, "send", "--person", person, "--to", phone, "--from", SENDER, "--body", "Hello")

    assert done.returncode == 0, done.stderr
    [create] = twilio.creates()
    assert done.stdout.startswith("sent: ")
    assert create.params["Body"] == ["Hello"]

    twilio.answer_to(phone, 400, code=21610)
    refused = cli(settings, "send", "--person", person, "--to", phone, "--from", SENDER, "--body", "Hello")
    assert (refused.returncode, refused.stdout.split(":")[0]) == (1, "blocked")


# ---- the backfill --------------------------------------------------------------------------------


def test_backfill_publishes_the_missed_inbound_messages_and_is_safe_to_run_again(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    since, until = now - timedelta(hours=3), now - timedelta(minutes=1)
    stopped, cleared, covered = unique("stopped"), unique("cleared"), unique("covered")
    phone, cleared_phone, covered_phone = unique_phone(), unique_phone(), unique_phone()
    publish_events(
        kafka_brokers,
        sent(stopped, phone, SENDER),
        sent(cleared, cleared_phone, SENDER),
        sent(covered, covered_phone, SENDER),
        # The webhook already had this START, later than the STOP it missed below.
        received(cleared_phone, SENDER, "START", occurred_at=(now - timedelta(hours=1)).isoformat()),
        # ... and this STOP itself: the backfill must see it is in the log.
        received(
            covered_phone, SENDER, "STOP", message_sid="SMcovered" + covered, event_id="SMcovered" + covered
        ),
    )
    missed = twilio.add_message(from_=phone, to=SENDER, body="Stop", date_sent=now - timedelta(hours=2))
    twilio.add_message(from_=cleared_phone, to=SENDER, body="STOP", date_sent=now - timedelta(hours=2))
    twilio.add_message(
        from_=covered_phone,
        to=SENDER,
        body="STOP",
        date_sent=now - timedelta(hours=2),
        message_sid="SMcovered" + covered,
    )
    # Not for the backfill: before the window, to another number, outbound.
    twilio.add_message(from_=unique_phone(), to=SENDER, body="STOP", date_sent=since - timedelta(minutes=1))
    twilio.add_message(
        from_=unique_phone(), to="+14155550111", body="STOP", date_sent=now - timedelta(hours=1)
    )
    twilio.add_message(
        from_=SENDER, to=phone, body="hi", date_sent=now - timedelta(hours=1), direction="outbound-api"
    )
    # Enough ordinary replies for several pages.
    for minute in range(40):
        twilio.add_message(
            from_=unique_phone(), to=SENDER, body="thanks!", date_sent=since + timedelta(minutes=minute)
        )
    settings = settings_for(worker, kafka_brokers, twilio)
    window = ["--since", since.isoformat(), "--until", until.isoformat(), "--page-size", "20"]

    first = cli(settings, "backfill", *window)

    assert first.returncode == 0, first.stderr
    assert "page 3:" in first.stderr
    assert first.stdout.strip() == (
        "seen 43 inbound messages: published 41, already in the log 1, superseded by a later keyword 1,"
        " skipped (unreadable number) 0"
    )
    [entry] = eventually(lambda: opt_outs(worker, stopped))
    assert (entry["sender"], entry["keyword"]) == (SENDER, "STOP")
    assert history(worker, stopped)[0]["source_event_id"] == missed["sid"]
    eventually(lambda: len(history(worker, covered)) == 1)
    assert history(worker, cleared) == []  # its missed STOP would have undone the later START

    again = cli(settings, "backfill", *window)

    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("seen 43 inbound messages: published 0, already in the log 42,")
    assert len(history(worker, stopped)) == 1


def test_backfill_by_messaging_service_publishes_the_services_inbound_messages_only(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    # docs/twilio.md: with OPTOUTS_TWILIO_MESSAGING_SERVICES the backfill walks the whole window
    # (the list cannot filter by service) and keeps the inbound messages of those services.
    now = datetime.now(UTC).replace(microsecond=0)
    since, until = now - timedelta(hours=3), now - timedelta(minutes=1)
    service, other_service = "MG" + unique("svc"), "MG" + unique("other")
    person, other, sender = unique("serviced"), unique("other"), unique_phone()
    phone, other_phone = unique_phone(), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, sender), sent(other, other_phone, sender))
    twilio.add_message(
        from_=phone, to=sender, body="STOP", date_sent=now - timedelta(hours=2), messaging_service_sid=service
    )
    twilio.add_message(
        from_=other_phone,
        to=sender,
        body="STOP",
        date_sent=now - timedelta(hours=2),
        messaging_service_sid=other_service,
    )
    settings = settings_for(
        worker, kafka_brokers, twilio, twilio_senders=(), twilio_messaging_services=(service,)
    )

    done = cli(settings, "backfill", "--since", since.isoformat(), "--until", until.isoformat())

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("seen 1 inbound messages: published 1,")
    [entry] = eventually(lambda: opt_outs(worker, person))
    assert (entry["sender"], entry["keyword"], entry["messaging_service_sid"]) == (sender, "STOP", service)
    assert opt_outs(worker, other) == []  # another service's STOP is not the backfill's


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"twilio_senders": ()}, "OPTOUTS_TWILIO_SENDERS or OPTOUTS_TWILIO_MESSAGING_SERVICES"),
        ({"twilio_auth_token": "wrong"}, "listing messages from Twilio failed: HTTP 401"),
    ],
    ids=["no senders", "wrong token"],
)
def test_backfill_that_cannot_run_says_why(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio, changes: dict[str, Any], fragment: str
) -> None:
    settings = settings_for(worker, kafka_brokers, twilio, **changes)

    done = cli(settings, "backfill", "--since", "2026-01-01")

    assert done.returncode == 2
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr


# ---- channels ------------------------------------------------------------------------------------

AGENT = "acme_agent"


def test_an_sms_send_through_a_service_is_refused_after_an_rcs_stop_to_that_service(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(
        kafka_brokers,
        sent(person, phone, AGENT, channel="rcs", messaging_service_sid=SERVICE),
        received(phone, AGENT, "STOP", channel="rcs", messaging_service_sid=SERVICE),
    )
    eventually(lambda: senders(worker, person) == {AGENT})

    result = send(
        settings_for(worker, kafka_brokers, twilio),
        person,
        phone,
        OTHER_SENDER,
        messaging_service_sid=SERVICE,
    )

    assert result.outcome == "refused"
    assert f"opted out of {AGENT} on rcs (Messaging Service {SERVICE})" in result.reason
    assert twilio.requests == []


def test_a_whatsapp_send_goes_out_on_whatsapp_and_is_published_as_one(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER), received(phone, SENDER, "STOP"))
    eventually(lambda: senders(worker, person) == {SENDER})

    # The SMS opt-out is not a WhatsApp one: Twilio documents no such rule.
    result = send(settings_for(worker, kafka_brokers, twilio), person, phone, f"whatsapp:{SENDER}")

    assert result.outcome == "sent", result.reason
    assert result.event is not None and result.event.channel == "whatsapp"
    [create] = twilio.creates()
    assert (create.params["From"], create.params["To"]) == ([f"whatsapp:{SENDER}"], [f"whatsapp:{phone}"])


def test_backfill_recovers_a_missed_rcs_stop_as_an_rcs_stop(
    worker: ServiceProcess, kafka_brokers: str, twilio: StandinTwilio
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, AGENT, channel="rcs"))
    missed = twilio.add_message(
        from_=f"rcs:{phone}", to=f"rcs:{AGENT}", body="STOP", date_sent=now - timedelta(minutes=30)
    )
    settings = settings_for(worker, kafka_brokers, twilio, twilio_senders=(f"rcs:{AGENT}",))

    done = cli(settings, "backfill", "--since", (now - timedelta(hours=1)).isoformat())

    assert done.returncode == 0, done.stderr
    [entry] = eventually(lambda: opt_outs(worker, person))
    assert (entry["channel"], entry["sender"], entry["keyword"]) == ("rcs", AGENT, "STOP")
    assert history(worker, person)[0]["source_event_id"] == missed["sid"]


# ---- a worker without Twilio settings ------------------------------------------------------------


def test_without_an_auth_token_the_worker_refuses_every_webhook(worker: ServiceProcess) -> None:
    form = inbound_form(from_=unique_phone(), to=SENDER, body="STOP", message_sid=sid())

    for signed in (False, True):
        answer = post_webhook(
            worker.url, "/twilio/messages", form, public_base_url="https://example.com", signed=signed
        )
        assert answer.status == 503
        assert "OPTOUTS_TWILIO_AUTH_TOKEN" in answer.body
