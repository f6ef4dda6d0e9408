"""What Twilio's webhook forms mean: the inbound message and the status callback as events, the
signed URL, and the refusals, each naming the parameter at fault and never a message's body."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from schemas.events import MessageBlocked, MessageReceived
from streams.twilio.forms import (
    MAX_WEBHOOK_BYTES,
    FormParams,
    StatusCallback,
    WebhookRejected,
    inbound_message,
    parse_form,
    signed_url,
    status_callback,
)

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ACCOUNT = "AC" + "0" * 32
SERVICE = "MG" + "1" * 32
INBOUND = [
    ("ToCountry", "US"),
    ("Body", " Stop "),
    ("To", "+14155550100"),
    ("MessageSid", "SM" + "a" * 32),
    ("AccountSid", ACCOUNT),
    ("From", "+14155550123"),
    ("ApiVersion", "2010-04-01"),
]


def form(pairs: list[tuple[str, str]]) -> FormParams:
    return parse_form(urlencode(pairs).encode())


def without(pairs: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in pairs if k != name]


def replaced(pairs: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    return [(k, value if k == name else v) for k, v in pairs]


def inbound(pairs: list[tuple[str, str]], region: str = "US") -> MessageReceived:
    event = inbound_message(form(pairs), region=region, received_at=NOW)
    assert event is not None
    return event


def rejected(pairs: list[tuple[str, str]]) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as raised:
        inbound(pairs)
    return raised.value


# ---- the form and the signed URL ------------------------------------------------------------------


def test_a_form_keeps_every_value_of_a_repeated_parameter_in_order() -> None:
    params = form([("AddOns", "a"), ("Body", "hi"), ("AddOns", "b")])

    assert params.getall("AddOns") == ["a", "b"]
    assert params["AddOns"] == "a"
    assert list(params) == ["AddOns", "Body"]
    assert len(params) == 2


def test_a_signature_over_repeated_parameters_validates_against_the_parsed_form() -> None:
    pairs = [*INBOUND, ("AddOns", "x"), ("AddOns", "y")]
    validator = RequestValidator("token")
    url = "https://optouts.example.com/twilio/messages?a=1"

    class Pairs:  # the signer's view of the form, independent of FormParams
        def __iter__(self) -> Iterator[str]:
            return iter(dict.fromkeys(k for k, _ in pairs))

        def getall(self, name: str) -> list[str]:
            return [v for k, v in pairs if k == name]

    signature = validator.compute_signature(url, Pairs())

    assert validator.validate(url, form(pairs), signature)
    assert not validator.validate(url, form(pairs[:-1]), signature)


def test_the_signed_url_is_the_public_base_url_plus_the_path_and_query_as_called() -> None:
    assert (
        signed_url("https://optouts.example.com/sms/", "/twilio/status?person_id=cus%2F1")
        == "https://optouts.example.com/sms/twilio/status?person_id=cus%2F1"
    )


def test_a_body_over_64_kib_is_refused_with_413() -> None:
    with pytest.raises(WebhookRejected) as raised:
        parse_form(b"a=" + b"x" * MAX_WEBHOOK_BYTES)

    assert (raised.value.status, raised.value.outcome) == (413, "too_large")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"Body=%FF%FE", "not UTF-8"),
        (b"\xff\xfe=1", "not UTF-8"),
        (b"&".join([b"a=1"] * 501), "over 500 fields"),
    ],
)
def test_a_form_that_cannot_be_read_is_refused_with_400(body: bytes, fragment: str) -> None:
    with pytest.raises(WebhookRejected) as raised:
        parse_form(body)

    assert raised.value.status == 400
    assert fragment in str(raised.value)


# ---- the inbound message --------------------------------------------------------------------------


def test_an_inbound_message_is_a_message_received_with_the_message_sid_as_its_id() -> None:
    event = inbound([*INBOUND, ("MessagingServiceSid", SERVICE), ("OptOutType", "stop")])

    assert event == MessageReceived(
        event_id="SM" + "a" * 32,
        occurred_at=NOW,
        phone="+14155550123",
        sender="+14155550100",
        body=" Stop ",
        message_sid="SM" + "a" * 32,
        account_sid=ACCOUNT,
        messaging_service_sid=SERVICE,
        opt_out_type="STOP",
    )


def test_numbers_are_normalised_national_ones_in_the_region_short_codes_kept() -> None:
    event = inbound(replaced(replaced(INBOUND, "From", "020 7946 0018"), "To", "12345"), region="GB")

    assert (event.phone, event.sender) == ("+442079460018", "12345")


def test_an_unknown_opt_out_type_leaves_the_body_to_decide() -> None:
    assert inbound([*INBOUND, ("OptOutType", "STOPALL")]).opt_out_type is None
    assert inbound([*INBOUND, ("OptOutType", "")]).opt_out_type is None


def test_a_message_without_a_body_has_an_empty_body() -> None:
    assert inbound(without(INBOUND, "Body")).body == ""


def test_extra_parameters_are_ignored() -> None:
    assert inbound([*INBOUND, ("NumMedia", "1"), ("MediaUrl0", "https://x"), ("Whatever", "new")]) == inbound(
        INBOUND
    )


@pytest.mark.parametrize("name", ["MessageSid", "AccountSid", "From", "To"])
def test_a_missing_required_parameter_is_refused_by_name(name: str) -> None:
    error = rejected(without(INBOUND, name))

    assert (error.status, error.outcome) == (400, "invalid")
    assert str(error) == f"parameter {name} is missing"


def test_a_parameter_repeated_with_different_values_is_refused_and_one_value_repeated_is_not() -> None:
    assert inbound([*INBOUND, ("Body", " Stop ")]).body == " Stop "

    error = rejected([*INBOUND, ("Body", "secret text")])

    assert str(error) == "parameter Body is given 2 times, differently"


def test_a_number_that_does_not_parse_is_refused_naming_the_parameter() -> None:
    error = rejected(replaced(INBOUND, "From", "555"))

    assert str(error).startswith("parameter From: '555' is not")


def test_a_body_too_long_is_refused_without_repeating_it() -> None:
    error = rejected(replaced(INBOUND, "Body", "private words " * 400))

    assert str(error).startswith("parameter Body: ")
    assert "private" not in str(error)


def test_a_malformed_sid_is_refused_naming_the_parameter() -> None:
    assert str(rejected(replaced(INBOUND, "AccountSid", "AC 123"))).startswith("parameter AccountSid: ")


# ---- the status callback --------------------------------------------------------------------------

CALLBACK = [
    ("MessageSid", "SM" + "b" * 32),
    ("MessageStatus", "failed"),
    ("ErrorCode", "21610"),
    ("To", "+14155550123"),
    ("From", "+14155550100"),
    ("AccountSid", ACCOUNT),
]


def callback(pairs: list[tuple[str, str]], person_id: str | None = "cus_1") -> StatusCallback:
    return status_callback(form(pairs), person_id, region="US", received_at=NOW)


@pytest.mark.parametrize("status", ["failed", "undelivered", "FAILED"])
def test_21610_failed_or_undelivered_is_a_blocked_send_of_that_message(status: str) -> None:
    result = callback([*replaced(CALLBACK, "MessageStatus", status), ("MessagingServiceSid", SERVICE)])

    assert result.blocked == MessageBlocked(
        event_id=f"SM{'b' * 32}:{status.lower()}",
        occurred_at=NOW,
        person_id="cus_1",
        phone="+14155550123",
        sender="+14155550100",
        message_sid="SM" + "b" * 32,
        messaging_service_sid=SERVICE,
    )
    assert (result.status, result.error_code) == (status.lower(), "21610")


def test_a_blocked_send_without_a_person_in_the_url_leaves_the_person_to_the_sid() -> None:
    blocked = callback(CALLBACK, person_id=None).blocked

    assert blocked is not None
    assert (blocked.person_id, blocked.message_sid) == (None, "SM" + "b" * 32)


def test_the_same_message_and_status_give_the_same_event_id_and_another_status_another() -> None:
    first, again = callback(CALLBACK).blocked, callback(CALLBACK).blocked
    other = callback(replaced(CALLBACK, "MessageStatus", "undelivered")).blocked

    assert first is not None and again is not None and other is not None
    assert first.event_id == again.event_id != other.event_id


@pytest.mark.parametrize(
    ("status", "code", "labels"),
    [
        ("delivered", None, ("delivered", "none")),
        ("sent", "", ("sent", "none")),
        ("undelivered", "30003", ("undelivered", "30003")),
        ("failed", "30007", ("failed", "30007")),
        ("delivered", "21610", ("delivered", "21610")),
        ("made-up", "21610", ("other", "21610")),
        ("failed", "2161O", ("failed", "other")),
    ],
)
def test_other_statuses_and_codes_are_no_event_and_give_bounded_labels(
    status: str, code: str | None, labels: tuple[str, str]
) -> None:
    pairs = without(replaced(CALLBACK, "MessageStatus", status), "ErrorCode")
    if code is not None:
        pairs.append(("ErrorCode", code))

    result = callback(pairs)

    assert result.blocked is None
    assert (result.status, result.error_code) == labels


def test_a_bad_person_id_in_the_url_is_refused_naming_it() -> None:
    with pytest.raises(WebhookRejected) as raised:
        callback(CALLBACK, person_id="a b")

    assert str(raised.value).startswith("query parameter person_id: ")


def test_a_callback_without_its_status_is_refused() -> None:
    with pytest.raises(WebhookRejected, match="parameter MessageStatus is missing"):
        callback(without(CALLBACK, "MessageStatus"))


def test_a_non_blocking_callback_needs_no_numbers() -> None:
    assert callback(without(replaced(CALLBACK, "MessageStatus", "delivered"), "To")).blocked is None


# ---- channels: Twilio names them in the address -----------------------------------------------------


def test_a_plain_inbound_message_is_an_sms() -> None:
    assert inbound(INBOUND).channel == "sms"


def test_an_rcs_stop_to_an_agent_is_an_rcs_message_from_the_phone() -> None:
    event = inbound(
        replaced(
            replaced([*INBOUND, ("MessagingServiceSid", SERVICE)], "From", "rcs:+14155550123"),
            "To",
            "rcs:acme_agent",
        )
    )

    assert (event.channel, event.phone, event.sender, event.messaging_service_sid) == (
        "rcs",
        "+14155550123",
        "acme_agent",
        SERVICE,
    )


def test_a_whatsapp_stop_is_a_whatsapp_message_never_an_sms() -> None:
    event = inbound(
        replaced(replaced(INBOUND, "From", "whatsapp:+14155550123"), "To", "whatsapp:+14155550100")
    )

    assert (event.channel, event.phone, event.sender) == ("whatsapp", "+14155550123", "+14155550100")


@pytest.mark.parametrize(
    ("name", "value"),
    [("From", "telegram:+14155550123"), ("To", "tel:+14155550100"), ("From", "whatsapp:rcs:+14155550123")],
)
def test_an_unknown_channel_prefix_is_refused_naming_the_parameter(name: str, value: str) -> None:
    refusal = rejected(replaced(INBOUND, name, value))

    assert refusal.status == 400
    assert f"parameter {name}" in str(refusal)


def test_addresses_on_two_channels_are_refused() -> None:
    refusal = rejected(replaced(INBOUND, "From", "whatsapp:+14155550123"))

    assert refusal.status == 400
    assert "two channels (whatsapp and sms)" in str(refusal)


def test_a_messenger_message_publishes_nothing() -> None:
    pairs = replaced(replaced(INBOUND, "From", "messenger:123456789"), "To", "messenger:987654321")

    assert inbound_message(form(pairs), region="US", received_at=NOW) is None


def test_a_21610_on_whatsapp_is_a_blocked_whatsapp_send() -> None:
    callback = status_callback(
        form(
            [
                ("MessageSid", "SM" + "b" * 32),
                ("MessageStatus", "failed"),
                ("ErrorCode", "21610"),
                ("To", "whatsapp:+14155550123"),
                ("From", "whatsapp:+14155550100"),
            ]
        ),
        "cus_1",
        region="US",
        received_at=NOW,
    )

    assert callback.blocked is not None
    assert (callback.blocked.channel, callback.blocked.phone, callback.blocked.sender) == (
        "whatsapp",
        "+14155550123",
        "+14155550100",
    )
