"""Channels, told through both stages: Twilio's unified opt-out of RCS, SMS and MMS (an RCS STOP
records the SMS senders it covers, and the other way round), WhatsApp kept to itself, and every
existing rule (time order, redeliveries, late sends) on every channel."""

from __future__ import annotations

import pytest

from projections.contacts import EMPTY_CONTACTS, Contacts, resolve
from projections.overrides import override
from schemas import inputs
from schemas.events import OptOutCleared, OptOutRecorded
from tests.unit.conftest import PHONE, SENDER, at, blocked, received, sent
from tests.unit.test_rules import history, listed, run

AGENT = "acme_agent"
SMS_2 = "+14155550111"  # a second SMS sender of the Messaging Service
MG = "MG0001"


def test_an_rcs_stop_through_a_service_lists_the_sms_senders_of_that_service_the_person_received_from() -> (
    None
):
    people = run(
        sent("s1", "ann", service=MG),
        sent("s2", "ann", sender=SMS_2, service=MG),
        sent("s3", "ann", sender="+14155550177"),  # not in the service: not covered
        sent("s4", "ann", sender=AGENT, service=MG, channel="rcs", minute=1),
        received("r1", "STOP", sender=AGENT, service=MG, channel="rcs", minute=2),
    )

    assert listed(people, "ann") == {(SENDER, PHONE), (SMS_2, PHONE), (f"rcs:{AGENT}", PHONE)}
    entries = {key: people["ann"].entries[key] for key in listed(people, "ann")}
    assert {(e.channel, e.source_channel, e.keyword) for e in entries.values()} == {
        ("sms", "rcs", "STOP"),
        ("rcs", "rcs", "STOP"),
    }
    assert entries[(SENDER, PHONE)].covers == ("sms", "mms", "rcs")


def test_an_rcs_stop_covers_the_sms_sender_with_the_same_number_without_a_service() -> None:
    people = run(sent("s1", "ann"), received("r1", "stop", sender=SENDER, channel="rcs", minute=1))

    assert listed(people, "ann") == {(SENDER, PHONE)}
    assert people["ann"].entries[(SENDER, PHONE)].source_channel == "rcs"


def test_an_rcs_stop_lists_nobody_who_received_nothing_before_it() -> None:
    people = run(
        received("r1", "STOP", sender=AGENT, service=MG, channel="rcs", minute=1),
        sent("s1", "ann", service=MG, minute=2),
    )

    assert listed(people, "ann") == set()


def test_an_sms_stop_covers_the_rcs_sender_of_its_service() -> None:
    people = run(
        sent("s1", "ann", sender=AGENT, service=MG, channel="rcs"),
        sent("s2", "ann", service=MG),
        received("r1", "STOP", service=MG, minute=1),
    )

    assert listed(people, "ann") == {(SENDER, PHONE), (f"rcs:{AGENT}", PHONE)}
    rcs = people["ann"].entries[(f"rcs:{AGENT}", PHONE)]
    assert (rcs.channel, rcs.sender, rcs.source_channel) == ("rcs", AGENT, "sms")


def test_an_rcs_start_lifts_the_sms_entries_it_covers() -> None:
    people = run(
        sent("s1", "ann", service=MG),
        sent("s2", "ann", sender=AGENT, service=MG, channel="rcs"),
        received("r1", "STOP", service=MG, minute=1),
        received("r2", "START", sender=AGENT, service=MG, channel="rcs", minute=2),
    )

    assert listed(people, "ann") == set()
    assert history(people, "ann").count("opt_out.cleared") == 2


def test_a_whatsapp_stop_never_lists_the_sms_sender_with_the_same_number() -> None:
    people = run(
        sent("s1", "ann"),
        sent("s2", "ann", channel="whatsapp", service=MG),
        received("r1", "STOP", channel="whatsapp", service=MG, minute=1),
    )

    assert listed(people, "ann") == {(f"whatsapp:{SENDER}", PHONE)}
    entry = people["ann"].entries[(f"whatsapp:{SENDER}", PHONE)]
    assert (entry.channel, entry.covers) == ("whatsapp", ("whatsapp",))


def test_a_whatsapp_start_never_clears_an_sms_entry() -> None:
    people = run(
        sent("s1", "ann"),
        sent("s2", "ann", channel="whatsapp"),
        received("r1", "STOP", minute=1),
        received("r2", "START", channel="whatsapp", minute=2),
    )

    assert listed(people, "ann") == {(SENDER, PHONE)}


def test_an_sms_stop_never_lists_a_whatsapp_sender() -> None:
    people = run(
        sent("s1", "ann", channel="whatsapp", service=MG), received("r1", "STOP", service=MG, minute=1)
    )

    assert listed(people, "ann") == set()


@pytest.mark.parametrize("channel", ["sms", "rcs", "whatsapp"])
def test_a_late_send_before_a_standing_stop_is_listed_on_every_channel(channel: str) -> None:
    sender = AGENT if channel == "rcs" else SENDER
    people = run(
        received("r1", "STOP", sender=sender, channel=channel, minute=5),  # type: ignore[arg-type]
        sent("s1", "ann", sender=sender, channel=channel, minute=1),  # type: ignore[arg-type]
    )

    key = sender if channel == "sms" else f"{channel}:{sender}"
    assert listed(people, "ann") == {(key, PHONE)}


def test_a_late_sms_send_before_a_standing_rcs_stop_that_covered_its_sender_is_listed() -> None:
    people = run(
        sent("s0", "bob", service=MG),  # makes the SMS sender known in the service
        received("r1", "STOP", sender=AGENT, service=MG, channel="rcs", minute=5),
        sent("s1", "ann", service=MG, minute=1),  # occurred before the STOP, folded after it
    )

    assert listed(people, "ann") == {(SENDER, PHONE)}
    assert people["ann"].entries[(SENDER, PHONE)].source_channel == "rcs"


@pytest.mark.parametrize("channel", ["sms", "rcs", "whatsapp"])
def test_an_older_stop_arriving_after_a_later_start_changes_nothing_on_every_channel(channel: str) -> None:
    people = run(
        sent("s1", "ann", channel=channel),  # type: ignore[arg-type]
        received("r2", "START", channel=channel, minute=5),  # type: ignore[arg-type]
        received("r1", "STOP", channel=channel, minute=3),  # type: ignore[arg-type]
    )

    assert listed(people, "ann") == set()


def test_a_redelivered_rcs_stop_emits_exactly_what_it_emitted_to_the_byte() -> None:
    contacts: Contacts = EMPTY_CONTACTS
    for event in (sent("s1", "ann", service=MG), sent("s2", "ann", sender=AGENT, service=MG, channel="rcs")):
        contacts = resolve(contacts, event).contacts
    stop = received("r1", "STOP", sender=AGENT, service=MG, channel="rcs", minute=1)
    first = resolve(contacts, stop)
    # Stored and read back, as the table does, then redelivered with another receipt time.
    stored = Contacts.from_json(first.contacts.to_json())
    again = resolve(stored, stop.model_copy(update={"occurred_at": stop.occurred_at.replace(minute=30)}))

    assert [e.model_dump_json() for e in again.emitted] == [e.model_dump_json() for e in first.emitted]
    assert again.contacts is stored
    assert len({e.event_id for e in first.emitted}) == 2  # one per sender: the SMS one has an id of its own


def test_a_blocked_rcs_send_lists_the_rcs_sender_only() -> None:
    people = run(sent("s1", "ann", service=MG), blocked("b1", "ann", sender=AGENT, channel="rcs", service=MG))

    assert listed(people, "ann") == {(f"rcs:{AGENT}", PHONE)}


def test_person_events_say_the_channel_they_came_on_and_what_they_cover() -> None:
    contacts = resolve(EMPTY_CONTACTS, sent("s1", "ann", service=MG)).contacts
    emitted = resolve(
        contacts, received("r1", "STOP", sender=AGENT, service=MG, channel="rcs", minute=1)
    ).emitted

    assert [(type(e), e.channel, e.sender, e.source_channel, e.covers) for e in emitted] == [
        (OptOutRecorded, "sms", SENDER, "rcs", ("sms", "mms", "rcs")),
    ]
    cleared = resolve(
        resolve(contacts, received("r1", "STOP", sender=AGENT, service=MG, channel="rcs", minute=1)).contacts,
        received("r2", "START", sender=AGENT, service=MG, channel="rcs", minute=2),
    ).emitted
    assert [(type(e), e.sender, e.source_channel) for e in cleared] == [(OptOutCleared, SENDER, "rcs")]


def test_an_operator_removes_a_whatsapp_entry_by_its_prefixed_sender_and_the_sms_one_stays() -> None:
    people = run(
        sent("s1", "ann"),
        sent("s2", "ann", channel="whatsapp"),
        received("r1", "STOP", minute=1),
        received("r2", "STOP", channel="whatsapp", minute=2),
    )
    key = inputs.sender(f"whatsapp:{SENDER}", "US")

    removal = override(
        people["ann"], key, None, actor="ops", reason="asked by phone", override_id="o1", at=at(3)
    )

    assert (key, removal.channel, removal.sender) == (f"whatsapp:{SENDER}", "whatsapp", SENDER)
    assert listed(
        run(
            sent("s1", "ann"),
            sent("s2", "ann", channel="whatsapp"),
            received("r1", "STOP", minute=1),
            received("r2", "STOP", channel="whatsapp", minute=2),
            removal,
        ),
        "ann",
    ) == {(SENDER, PHONE)}
    assert inputs.sender(" +1 415 555 0100 ", "US") == SENDER  # SMS as always


def test_a_late_send_from_an_sms_sender_of_the_service_unknown_when_the_rcs_stop_was_folded_is_listed() -> (
    None
):
    people = run(
        received("r1", "STOP", sender=AGENT, service=MG, channel="rcs", minute=5),
        sent("s1", "ann", service=MG, minute=1),  # occurred before the STOP, folded after it
        sent("s2", "bob", service=MG, minute=6),  # after the STOP: Twilio would have blocked it
        sent("s3", "cat", sender=SMS_2, minute=1),  # not through the service, another number
    )

    assert listed(people, "ann") == {(SENDER, PHONE)}
    assert people["ann"].entries[(SENDER, PHONE)].source_channel == "rcs"
    assert listed(people, "bob") == set()
    assert listed(people, "cat") == set()


def test_a_late_send_before_an_rcs_start_that_covers_it_is_not_undone_by_an_older_stop() -> None:
    people = run(
        sent("s0", "bob", sender=AGENT, service=MG, channel="rcs"),
        received("r2", "START", sender=AGENT, service=MG, channel="rcs", minute=5),
        sent("s1", "ann", service=MG, minute=1),
        received("r1", "STOP", service=MG, minute=3),  # older than the START: of the past
    )

    assert listed(people, "ann") == set()
