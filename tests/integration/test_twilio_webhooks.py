"""Twilio's webhooks, posted the way Twilio posts them (signed by the twilio package's own code, over
real HTTP) to a real worker behind a pretend TLS proxy: its public URL is https with a path prefix,
the worker itself is plain http. Through the real broker to the lists."""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.engine.topics import PERSON_EVENTS
from streams.settings import Settings
from streams.twilio.sender import send_sms
from tests.factories import received, sent, unique, unique_phone
from tests.integration.kafka import raw_values
from tests.integration.processes import ServiceProcess, http_json, new_worker, operator_headers
from tests.integration.test_pipeline import (
    OTHER_SENDER,
    SENDER,
    eventually,
    history,
    opt_outs,
    publish_events,
    senders,
)
from tests.twilio_standin import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    StandinTwilio,
    WebhookAnswer,
    inbound_form,
    post_webhook,
    sid,
    signature,
    status_form,
)

pytestmark = pytest.mark.integration

# What Twilio is given; a proxy ends TLS and strips /sms before the worker.
PUBLIC = "https://optouts.example.com/sms"


@pytest.fixture(scope="module")
def twilio_worker(
    kafka_brokers: str, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> Iterator[ServiceProcess]:
    app_id = unique("optouts-twilio")
    process = new_worker(
        kafka_brokers,
        tmp_path_factory.mktemp("twilio-worker"),
        app_id,
        output_dir / f"{app_id}.log",
        OPTOUTS_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        OPTOUTS_PUBLIC_BASE_URL=PUBLIC,
        OPTOUTS_OPT_OUT_KEYWORDS="ARRET, Baja",
    )
    process.start()
    yield process
    process.stop()


def inbound(
    worker: ServiceProcess, form: list[tuple[str, str]], *, path: str = "/twilio/messages", **options: Any
) -> WebhookAnswer:
    options.setdefault("public_base_url", PUBLIC)
    return post_webhook(worker.url, path, form, **options)


def status(worker: ServiceProcess, form: list[tuple[str, str]], query: str = "") -> WebhookAnswer:
    return post_webhook(worker.url, f"/twilio/status{query}", form, public_base_url=PUBLIC)


def metric_value(worker: ServiceProcess, name: str, **labels: str) -> float:
    """One series of a metric on the worker's /metrics (0 when absent)."""
    _, text = http_json("GET", f"{worker.url}/metrics")
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def assert_folded_after(worker: ServiceProcess, brokers: str, phone: str) -> None:
    """Wait until everything published for `phone` so far is folded: a 21610 for a marker person on
    the same phone is published after it, so it is folded after it too."""
    marker = unique("marker")
    form = status_form(message_sid=sid(), status="failed", to=phone, from_=OTHER_SENDER, error_code="21610")
    assert status(worker, form, f"?person_id={marker}").status == 200
    eventually(lambda: senders(worker, marker) == {OTHER_SENDER})


def test_a_signed_stop_puts_the_sender_on_the_list_and_answers_empty_twiml(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER))
    form = inbound_form(from_=phone, to=SENDER, body="Stop", MessagingServiceSid="MG" + "1" * 32)

    answer = inbound(twilio_worker, form)

    assert (answer.status, answer.content_type) == (200, "text/xml")
    assert re.fullmatch(r'<\?xml version="1.0" encoding="UTF-8"\?><Response ?/>', answer.body)
    [entry] = eventually(lambda: opt_outs(twilio_worker, person))
    assert (entry["sender"], entry["cause"], entry["keyword"]) == (SENDER, "keyword", "STOP")
    assert entry["messaging_service_sid"] == "MG" + "1" * 32
    [change] = history(twilio_worker, person)
    assert change["source_event_id"] == dict(form)["MessageSid"]


def test_national_numbers_in_the_form_are_read_in_the_default_region(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER))
    national = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"

    assert (
        inbound(twilio_worker, inbound_form(from_=national, to="+1 415 555 0100", body="stop")).status == 200
    )

    eventually(lambda: senders(twilio_worker, person) == {SENDER})


@pytest.mark.parametrize(
    ("how", "options"),
    [
        ("unsigned", {"signed": False}),
        ("signed with another token", {"token": "not-the-auth-token"}),
        ("signed for the worker's own URL, not the public one", {"public_base_url": "worker"}),
        ("signature of another request", {"headers": {"X-Twilio-Signature": "c2lnbmF0dXJl"}}),
    ],
)
def test_a_forged_request_is_refused_with_403_and_counted(
    twilio_worker: ServiceProcess, how: str, options: dict[str, Any]
) -> None:
    if options.get("public_base_url") == "worker":
        options = {"public_base_url": twilio_worker.url}
    labels = {"endpoint": "messages", "outcome": "forbidden"}
    forbidden = metric_value(twilio_worker, "optouts_twilio_webhooks_total", **labels)

    answer = inbound(twilio_worker, inbound_form(from_=unique_phone(), to=SENDER, body="STOP"), **options)

    assert answer.status == 403, how
    assert "X-Twilio-Signature" in answer.body
    assert metric_value(twilio_worker, "optouts_twilio_webhooks_total", **labels) == forbidden + 1


def test_a_forged_stop_changes_nothing(twilio_worker: ServiceProcess, kafka_brokers: str) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER))

    answer = inbound(twilio_worker, inbound_form(from_=phone, to=SENDER, body="STOP"), token="forged")

    assert answer.status == 403
    assert_folded_after(twilio_worker, kafka_brokers, phone)
    assert senders(twilio_worker, person) == set()


def test_a_signed_form_changed_on_the_way_is_refused(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    phone = unique_phone()
    form = inbound_form(from_=phone, to=SENDER, body="HELP")
    good = signature(AUTH_TOKEN, PUBLIC + "/twilio/messages", form)
    tampered = [(k, "STOP" if k == "Body" else v) for k, v in form]

    answer = inbound(twilio_worker, tampered, signed=False, headers={"X-Twilio-Signature": good})

    assert answer.status == 403


def test_the_signed_url_is_the_public_one_with_the_query_as_called(twilio_worker: ServiceProcess) -> None:
    form = inbound_form(from_=unique_phone(), to=SENDER, body="hello")

    assert inbound(twilio_worker, form, path="/twilio/messages?source=console&a=%2F").status == 200
    # Signed without the query Twilio called with: not what Twilio signs, so not accepted.
    unsigned_query = signature(AUTH_TOKEN, PUBLIC + "/twilio/messages", form)
    answer = inbound(
        twilio_worker,
        form,
        path="/twilio/messages?source=console",
        signed=False,
        headers={"X-Twilio-Signature": unsigned_query},
    )
    assert answer.status == 403


def test_repeated_extra_parameters_are_signed_over_and_accepted(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER))
    form = [
        *inbound_form(from_=phone, to=SENDER, body="QUIT"),
        ("AddOns", '{"status":"successful"}'),
        ("AddOns", '{"status":"failed"}'),
        ("MediaUrl0", ""),
        ("Body", "QUIT"),  # a required one repeated with the same value is the same message
    ]

    assert inbound(twilio_worker, form).status == 200

    eventually(lambda: senders(twilio_worker, person) == {SENDER})


def test_a_required_parameter_repeated_with_another_value_is_refused(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER))
    form = [*inbound_form(from_=phone, to=SENDER, body="STOP"), ("Body", "just kidding")]

    answer = inbound(twilio_worker, form)

    assert answer.status == 400
    assert "Body" in answer.body
    assert "kidding" not in answer.body
    assert_folded_after(twilio_worker, kafka_brokers, phone)
    assert senders(twilio_worker, person) == set()


def test_three_deliveries_of_one_message_give_one_history_entry(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER))
    form = inbound_form(from_=phone, to=SENDER, body="UNSUBSCRIBE")

    # Twilio's retry keeps the idempotency token; a replay or a redelivery from the console does not.
    answers = [
        inbound(twilio_worker, form, headers={"I-Twilio-Idempotency-Token": token})
        for token in ("token-1", "token-1", "token-2")
    ]

    assert [answer.status for answer in answers] == [200, 200, 200]
    assert_folded_after(twilio_worker, kafka_brokers, phone)
    [change] = history(twilio_worker, person)
    assert change["source_event_id"] == dict(form)["MessageSid"]
    # Each delivery was stamped with its own receipt time; the person events it caused were not:
    # a redelivery re-sends what the first delivery emitted, to the byte.
    emitted = raw_values(kafka_brokers, PERSON_EVENTS, {person})[person]
    assert len(emitted) == 3 and len(set(emitted)) == 1, emitted


def test_a_custom_opt_out_keyword_from_the_settings_is_an_opt_out(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER))

    assert inbound(twilio_worker, inbound_form(from_=phone, to=SENDER, body=" baja ")).status == 200

    [entry] = eventually(lambda: opt_outs(twilio_worker, person))
    assert entry["keyword"] == "BAJA"


def test_opt_out_type_decides_over_the_body(twilio_worker: ServiceProcess, kafka_brokers: str) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER))
    form = inbound_form(from_=phone, to=SENDER, body="Halt", OptOutType="stop")

    assert inbound(twilio_worker, form).status == 200

    [entry] = eventually(lambda: opt_outs(twilio_worker, person))
    assert entry["keyword"] == "HALT"


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        (lambda form: [(k, v) for k, v in form if k != "MessageSid"], 400, "MessageSid is missing"),
        (lambda form: [(k, v) for k, v in form if k != "From"], 400, "From is missing"),
        (lambda form: [(k, v) for k, v in form if k != "AccountSid"], 400, "AccountSid is missing"),
        (lambda form: [(k, "not a phone" if k == "From" else v) for k, v in form], 400, "'not a phone'"),
        (lambda form: [(k, "x" * 5000 if k == "Body" else v) for k, v in form], 400, "Body"),
        (lambda form: [*form, ("Padding", "x" * 70_000)], 413, "65536-byte limit"),
    ],
    ids=["no MessageSid", "no From", "no AccountSid", "bad From", "Body too long", "over 64 KiB"],
)
def test_a_signed_but_unusable_form_is_refused_with_what_is_wrong(
    twilio_worker: ServiceProcess,
    change: Callable[[list[tuple[str, str]]], list[tuple[str, str]]],
    status: int,
    fragment: str,
) -> None:
    form = change(inbound_form(from_=unique_phone(), to=SENDER, body="STOP"))

    answer = inbound(twilio_worker, form)

    assert answer.status == status
    assert fragment in answer.body
    assert "x" * 100 not in answer.body  # never the body of the message


def test_a_status_callback_with_21610_and_the_person_in_its_url_puts_the_sender_on_the_list(
    twilio_worker: ServiceProcess,
) -> None:
    person, phone, message = unique("person"), unique_phone(), sid()
    form = status_form(message_sid=message, status="undelivered", to=phone, from_=SENDER, error_code="21610")

    answer = status(twilio_worker, form, f"?person_id={person}")

    assert (answer.status, answer.content_type) == (200, "text/xml")
    [entry] = eventually(lambda: opt_outs(twilio_worker, person))
    assert (entry["sender"], entry["phone"], entry["cause"]) == (SENDER, phone, "send_blocked")
    [change] = history(twilio_worker, person)
    assert change["source_event_id"] == f"{message}:undelivered"


def test_a_status_callback_with_21610_names_everyone_texted_from_that_sender_at_the_phone(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    # Twilio blocks the phone and the sender, not one message: alice and bob share the phone, and
    # a send to either of them is refused alike. cat was texted there only by another sender.
    alice, bob, cat, phone = unique("alice"), unique("bob"), unique("cat"), unique_phone()
    to_alice, to_bob = sent(alice, phone, SENDER), sent(bob, phone, SENDER)
    publish_events(kafka_brokers, to_alice, to_bob, sent(cat, phone, OTHER_SENDER))
    form = status_form(
        message_sid=to_bob["message_sid"], status="failed", to=phone, from_=SENDER, error_code="21610"
    )

    assert status(twilio_worker, form).status == 200

    eventually(lambda: senders(twilio_worker, bob) == {SENDER} and senders(twilio_worker, alice) == {SENDER})
    assert senders(twilio_worker, cat) == set()


@pytest.mark.parametrize("missing", ["MessageSid", "MessageStatus", "To", "From"])
def test_a_21610_callback_missing_a_required_parameter_is_400_naming_it_and_lists_nothing(
    twilio_worker: ServiceProcess, kafka_brokers: str, missing: str
) -> None:
    person, phone = unique("person"), unique_phone()
    form = status_form(message_sid=sid(), status="failed", to=phone, from_=SENDER, error_code="21610")
    # SmsSid and SmsStatus are Twilio's older names of the same values: gone with them.
    older = {"MessageSid": "SmsSid", "MessageStatus": "SmsStatus"}.get(missing)
    form = [(k, v) for k, v in form if k not in (missing, older)]

    answer = status(twilio_worker, form, f"?person_id={person}")

    assert (answer.status, f"{missing} is missing" in answer.body) == (400, True), answer.body
    # Then a callback that does name everything, for the same person: only its entry shows.
    other = unique_phone()
    good = status_form(message_sid=sid(), status="failed", to=other, from_=SENDER, error_code="21610")
    assert status(twilio_worker, good, f"?person_id={person}").status == 200
    [entry] = eventually(lambda: opt_outs(twilio_worker, person))
    assert entry["phone"] == other


def test_status_callbacks_repeated_for_one_message_and_status_record_once(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone, message = unique("person"), unique_phone(), sid()
    form = status_form(message_sid=message, status="failed", to=phone, from_=SENDER, error_code="21610")

    for _ in range(3):
        assert status(twilio_worker, form, f"?person_id={person}").status == 200

    eventually(lambda: senders(twilio_worker, person) == {SENDER})
    assert_folded_after(twilio_worker, kafka_brokers, phone)
    assert len(history(twilio_worker, person)) == 1


@pytest.mark.parametrize(
    ("message_status", "error_code"),
    [
        ("delivered", None),
        ("sent", None),
        ("undelivered", "30003"),
        ("failed", "30007"),
        ("delivered", "21610"),
    ],
)
def test_other_statuses_and_codes_are_counted_by_status_and_code(
    twilio_worker: ServiceProcess, message_status: str, error_code: str | None
) -> None:
    labels = {"status": message_status, "error_code": error_code or "none"}
    before = metric_value(twilio_worker, "optouts_twilio_status_callbacks_total", **labels)
    form = status_form(
        message_sid=sid(), status=message_status, to=unique_phone(), from_=SENDER, error_code=error_code
    )

    answer = status(twilio_worker, form, f"?person_id={unique('person')}")

    assert (answer.status, answer.content_type) == (200, "text/xml")
    assert metric_value(twilio_worker, "optouts_twilio_status_callbacks_total", **labels) == before + 1


def test_a_failure_other_than_21610_changes_nothing(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    to_person = sent(person, phone, SENDER)
    publish_events(kafka_brokers, to_person)
    for message_status, code in (("undelivered", "30003"), ("delivered", "21610")):
        form = status_form(
            message_sid=to_person["message_sid"],
            status=message_status,
            to=phone,
            from_=SENDER,
            error_code=code,
        )
        assert status(twilio_worker, form, f"?person_id={person}").status == 200

    assert_folded_after(twilio_worker, kafka_brokers, phone)
    assert senders(twilio_worker, person) == set()


def test_a_forged_status_callback_is_refused(twilio_worker: ServiceProcess) -> None:
    person, phone = unique("person"), unique_phone()
    form = status_form(message_sid=sid(), status="failed", to=phone, from_=SENDER, error_code="21610")

    answer = post_webhook(
        twilio_worker.url, f"/twilio/status?person_id={person}", form, public_base_url=PUBLIC, token="nope"
    )

    assert answer.status == 403


def test_a_bad_person_id_in_the_callback_url_is_refused(twilio_worker: ServiceProcess) -> None:
    form = status_form(
        message_sid=sid(), status="failed", to=unique_phone(), from_=SENDER, error_code="21610"
    )

    answer = status(twilio_worker, form, "?person_id=a%20b")

    assert answer.status == 400
    assert "person_id" in answer.body


SERVICE = "MG" + "5" * 32


@pytest.mark.parametrize("person_in_url", [True, False], ids=["person in the callback URL", "found by sid"])
def test_a_messaging_service_send_is_accepted_and_its_21610_callback_records_the_opt_out(
    twilio_worker: ServiceProcess, kafka_brokers: str, person_in_url: bool
) -> None:
    person, phone = unique("person"), unique_phone()
    with StandinTwilio() as twilio:
        settings = Settings(
            kafka_brokers=kafka_brokers,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_api_url=twilio.url,
            api_url=twilio_worker.url,
            public_base_url=PUBLIC,
        )
        result = asyncio.run(
            send_sms(
                person, phone, SENDER, "Your order shipped", settings=settings, messaging_service_sid=SERVICE
            )
        )
        [create] = twilio.creates()
    assert result.outcome == "accepted", result.reason
    callback = create.params["StatusCallback"][0]
    assert callback == f"{PUBLIC}/twilio/status?person_id={person}"
    path = callback.removeprefix(PUBLIC) if person_in_url else "/twilio/status"

    # Later, Twilio calls back: the Messaging Service could not deliver, the recipient unsubscribed.
    form = status_form(
        message_sid=str(result.message_sid),
        status="failed",
        to=phone,
        from_=SENDER,
        error_code="21610",
        MessagingServiceSid=SERVICE,
    )
    assert post_webhook(twilio_worker.url, path, form, public_base_url=PUBLIC).status == 200

    [entry] = eventually(lambda: opt_outs(twilio_worker, person))
    assert (entry["sender"], entry["cause"], entry["messaging_service_sid"]) == (
        SENDER,
        "send_blocked",
        SERVICE,
    )


def test_a_body_that_is_not_a_form_is_refused_with_415(twilio_worker: ServiceProcess) -> None:
    form = inbound_form(from_=unique_phone(), to=SENDER, body="STOP")

    answer = inbound(twilio_worker, form, headers={"Content-Type": "application/json"})

    assert answer.status == 415


def test_the_worker_logs_neither_message_text_nor_the_auth_token(twilio_worker: ServiceProcess) -> None:
    secret = f"my appointment is at {unique('clinic')}"
    phone = unique_phone()

    assert inbound(twilio_worker, inbound_form(from_=phone, to=SENDER, body=secret)).status == 200
    assert (
        inbound(twilio_worker, [*inbound_form(from_=phone, to=SENDER, body="STOP"), ("Body", secret)]).status
        == 400
    )
    assert (
        inbound(twilio_worker, inbound_form(from_=phone, to=SENDER, body=secret), token="forged").status
        == 403
    )

    logged = twilio_worker.log_path.read_text()
    assert "refused with 400: parameter Body is given 2 times" in logged
    assert secret not in logged
    assert AUTH_TOKEN not in logged


# ---- channels: Twilio names them in the address (`rcs:`, `whatsapp:`) -------------------------------

AGENT = "acme_agent"


def entries_by_sender(worker: ServiceProcess, person: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(entry["channel"], entry["sender"]): entry for entry in opt_outs(worker, person)}


def test_an_rcs_stop_through_a_service_lists_the_sms_senders_of_that_service_the_person_received_from(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone, service = unique("person"), unique_phone(), unique("MG")
    third = "+14155550177"  # not in the service: an RCS STOP there does not cover it
    publish_events(
        kafka_brokers,
        sent(person, phone, SENDER, messaging_service_sid=service),
        sent(person, phone, OTHER_SENDER, messaging_service_sid=service),
        sent(person, phone, third),
        sent(person, phone, AGENT, channel="rcs", messaging_service_sid=service),
    )
    form = inbound_form(from_=f"rcs:{phone}", to=f"rcs:{AGENT}", body="STOP", MessagingServiceSid=service)

    assert inbound(twilio_worker, form).status == 200

    entries = eventually(
        lambda: (found := entries_by_sender(twilio_worker, person)) and len(found) == 3 and found
    )
    assert set(entries) == {("sms", SENDER), ("sms", OTHER_SENDER), ("rcs", AGENT)}
    sms = entries["sms", SENDER]
    assert (sms["source_channel"], sms["covers"], sms["keyword"]) == ("rcs", ["sms", "mms", "rcs"], "STOP")
    assert {(change["channel"], change["source_channel"]) for change in history(twilio_worker, person)} == {
        ("sms", "rcs"),
        ("rcs", "rcs"),
    }


def test_a_whatsapp_stop_never_creates_an_sms_entry(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(
        kafka_brokers, sent(person, phone, SENDER), sent(person, phone, SENDER, channel="whatsapp")
    )
    form = inbound_form(from_=f"whatsapp:{phone}", to=f"whatsapp:{SENDER}", body="STOP")

    assert inbound(twilio_worker, form).status == 200

    [entry] = eventually(lambda: opt_outs(twilio_worker, person))
    assert (entry["channel"], entry["sender"], entry["covers"]) == ("whatsapp", SENDER, ["whatsapp"])


def test_a_whatsapp_start_never_clears_an_sms_entry(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(
        kafka_brokers, sent(person, phone, SENDER), sent(person, phone, SENDER, channel="whatsapp")
    )
    assert inbound(twilio_worker, inbound_form(from_=phone, to=SENDER, body="STOP")).status == 200
    eventually(lambda: senders(twilio_worker, person) == {SENDER})

    start = inbound_form(from_=f"whatsapp:{phone}", to=f"whatsapp:{SENDER}", body="START")
    assert inbound(twilio_worker, start).status == 200

    assert_folded_after(twilio_worker, kafka_brokers, phone)
    assert [(e["channel"], e["sender"]) for e in opt_outs(twilio_worker, person)] == [("sms", SENDER)]


@pytest.mark.parametrize(
    ("from_", "to", "named"),
    [
        ("telegram:{phone}", "telegram:+14155550100", "From"),
        ("{phone}", "tel:+14155550100", "To"),
        ("whatsapp:{phone}", "+14155550100", "From and To"),
    ],
)
def test_an_unknown_channel_prefix_or_two_channels_are_refused_with_400_and_change_nothing(
    twilio_worker: ServiceProcess, kafka_brokers: str, from_: str, to: str, named: str
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER))

    answer = inbound(twilio_worker, inbound_form(from_=from_.format(phone=phone), to=to, body="STOP"))

    assert answer.status == 400
    assert named in answer.body
    assert_folded_after(twilio_worker, kafka_brokers, phone)
    assert senders(twilio_worker, person) == set()


def test_a_21610_on_rcs_lists_the_rcs_sender(twilio_worker: ServiceProcess, kafka_brokers: str) -> None:
    person, phone = unique("person"), unique_phone()
    form = status_form(
        message_sid=sid(), status="undelivered", to=f"rcs:{phone}", from_=f"rcs:{AGENT}", error_code="21610"
    )

    assert status(twilio_worker, form, f"?person_id={person}").status == 200

    [entry] = eventually(lambda: opt_outs(twilio_worker, person))
    assert (entry["channel"], entry["sender"], entry["cause"]) == ("rcs", AGENT, "send_blocked")


def test_an_operator_removes_the_whatsapp_entry_by_its_prefixed_sender_and_the_sms_one_stays(
    twilio_worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(
        kafka_brokers,
        sent(person, phone, SENDER),
        sent(person, phone, SENDER, channel="whatsapp"),
        received(phone, SENDER, "STOP"),
        received(phone, SENDER, "STOP", channel="whatsapp"),
    )
    eventually(lambda: len(opt_outs(twilio_worker, person)) == 2)
    path = urllib.parse.quote(f"whatsapp:{SENDER}", safe="")
    who = {"actor": "ops@example.com", "reason": "opted in again on WhatsApp"}

    status_code, event = http_json(
        "DELETE",
        f"{twilio_worker.url}/people/{person}/sms-opt-outs/{path}",
        who,
        headers=operator_headers(twilio_worker),
    )

    assert status_code == 200, event
    assert (event["channel"], event["sender"], event["list_updated"]) == ("whatsapp", SENDER, True)
    assert [(e["channel"], e["sender"]) for e in opt_outs(twilio_worker, person)] == [("sms", SENDER)]
