"""When the guarded sender refuses to send: the sender is on the person's list (at any of their
phones), or the send goes through a Messaging Service the person opted out of."""

from __future__ import annotations

from schemas.addresses import Channel
from schemas.events import OptOutEntry, OptOutList
from streams.twilio.sender import refusal
from tests.unit.conftest import OTHER_PHONE, OTHER_SENDER, PHONE, SENDER, at

SERVICE = "MG" + "1" * 32


def listed(*entries: OptOutEntry) -> OptOutList:
    return OptOutList(person_id="cus_1", opt_outs=entries, updated_at=at(5) if entries else None)


def entry(
    sender: str = SENDER,
    phone: str = PHONE,
    *,
    keyword: str | None = "STOP",
    service: str | None = None,
    channel: Channel = "sms",
    source_channel: Channel | None = None,
) -> OptOutEntry:
    return OptOutEntry(
        channel=channel,
        source_channel=source_channel or channel,
        sender=sender,
        phone=phone,
        since=at(5),
        cause="keyword" if keyword else "send_blocked",
        keyword=keyword,
        messaging_service_sid=service,
    )


def test_an_empty_list_refuses_nothing() -> None:
    assert refusal(listed(), SENDER, None) is None
    assert refusal(listed(), SENDER, SERVICE) is None


def test_a_sender_on_the_list_is_refused_saying_who_when_and_why() -> None:
    reason = refusal(listed(entry()), SENDER, None)

    assert reason == f"cus_1 opted out of {SENDER} at {PHONE} since 2025-03-01T09:05:00+00:00: texted STOP"


def test_a_sender_on_the_list_for_another_phone_of_the_person_is_refused() -> None:
    assert refusal(listed(entry(phone=OTHER_PHONE)), SENDER, None) is not None


def test_a_blocked_send_on_the_list_is_refused_saying_so() -> None:
    reason = refusal(listed(entry(keyword=None)), SENDER, None)

    assert reason is not None and reason.endswith("Twilio blocked a send (21610)")


def test_another_sender_is_not_refused() -> None:
    assert refusal(listed(entry()), OTHER_SENDER, None) is None


def test_any_sender_through_a_messaging_service_on_the_list_is_refused() -> None:
    reason = refusal(listed(entry(service=SERVICE)), OTHER_SENDER, SERVICE)

    assert reason is not None and f"(Messaging Service {SERVICE})" in reason


def test_another_messaging_service_is_not_refused() -> None:
    assert refusal(listed(entry(service=SERVICE)), OTHER_SENDER, "MG" + "2" * 32) is None
    assert refusal(listed(entry(service=None)), OTHER_SENDER, SERVICE) is None


# ---- channels: Twilio's unified RCS, SMS and MMS opt-out; WhatsApp apart ---------------------------


def test_an_sms_send_through_a_service_is_refused_by_the_rcs_opt_out_that_covers_it() -> None:
    rcs = entry("acme_agent", channel="rcs", service=SERVICE)

    reason = refusal(listed(rcs), SENDER, SERVICE, "sms")

    assert reason is not None
    assert "acme_agent on rcs (Messaging Service" in reason


def test_an_rcs_send_is_refused_by_an_sms_opt_out_of_the_same_number() -> None:
    assert refusal(listed(entry()), SENDER, None, "rcs") is not None


def test_an_sms_entry_recorded_by_an_rcs_stop_says_where_the_keyword_came() -> None:
    reason = refusal(listed(entry(source_channel="rcs")), SENDER, None, "sms")

    assert reason is not None
    assert reason.endswith("texted STOP on rcs")


def test_a_whatsapp_opt_out_never_refuses_an_sms_send_and_the_other_way_round() -> None:
    whatsapp = entry(channel="whatsapp", service=SERVICE)

    assert refusal(listed(whatsapp), SENDER, SERVICE, "sms") is None
    assert refusal(listed(whatsapp), SENDER, SERVICE, "whatsapp") is not None
    assert refusal(listed(entry(service=SERVICE)), SENDER, SERVICE, "whatsapp") is None
