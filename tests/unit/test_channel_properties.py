"""Properties of channels: the address parser never drops a prefix and reads every plain number as
before; over generated logs on every channel, WhatsApp never touches another channel's entries, and
a redelivery of any event changes no list."""

from __future__ import annotations

import json

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.contacts import EMPTY_CONTACTS, Contacts, resolve
from schemas.addresses import (
    NO_PHONE_PREFIXES,
    PREFIXES,
    UnknownChannel,
    address_key,
    key_channel,
    key_sender,
    phone_address,
    sender_address,
    split_address,
)
from schemas.errors import InvalidNumber
from schemas.events import MessagingEvent
from schemas.phones import normalise_phone, normalise_sender
from tests.unit.conftest import blocked, received, sent
from tests.unit.test_rules import People, run

PROPERTIES = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# Example numbers of every region phonenumbers knows: plain E.164 as Twilio posts them.
E164 = sorted(
    {
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        for region in phonenumbers.SUPPORTED_REGIONS
        for number in [phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)]
        if number is not None
    }
)
e164 = st.sampled_from(E164)
prefix_like = st.from_regex(r"[A-Za-z][A-Za-z0-9+.\-_]{0,12}", fullmatch=True)


@PROPERTIES
@given(prefix=st.sampled_from(sorted(PREFIXES)), rest=st.text(min_size=1, max_size=30), upper=st.booleans())
def test_a_known_prefix_is_never_dropped(prefix: str, rest: str, upper: bool) -> None:
    text = f"{prefix.upper() if upper else prefix}:{rest}"
    try:
        channel, _ = split_address(text)
    except InvalidNumber:
        return  # refused (nothing after it, or a second prefix): never read as something else
    assert channel == prefix


@PROPERTIES
@given(prefix=prefix_like, number=e164)
def test_an_unknown_prefix_is_refused_whatever_follows_it(prefix: str, number: str) -> None:
    if prefix.lower() in PREFIXES:
        return
    with pytest.raises(UnknownChannel):
        split_address(f"{prefix}:{number}")
    with pytest.raises(InvalidNumber):
        phone_address(f"{prefix}:{number}", "US")
    with pytest.raises(InvalidNumber):
        sender_address(f"{prefix}:{number}", "US")


@PROPERTIES
@given(number=e164, prefix=st.one_of(prefix_like, st.sampled_from(sorted(PREFIXES))))
def test_no_number_parser_reads_a_prefixed_number(number: str, prefix: str) -> None:
    with pytest.raises(InvalidNumber):
        normalise_phone(f"{prefix}:{number}", "US")
    with pytest.raises(InvalidNumber):
        normalise_sender(f"{prefix}:{number}", "US")


@PROPERTIES
@given(number=e164, spaces=st.sampled_from(["", " ", "  "]))
def test_every_plain_e164_number_parses_as_before(number: str, spaces: str) -> None:
    text = f"{spaces}{number}{spaces}"

    assert phone_address(text, "US") == ("sms", normalise_phone(text, "US"))
    assert sender_address(text, "US") == ("sms", normalise_sender(text, "US"))


@PROPERTIES
@given(number=e164, channel=st.sampled_from(sorted(PREFIXES - NO_PHONE_PREFIXES)))
def test_a_prefixed_number_is_its_channel_and_the_same_number(number: str, channel: str) -> None:
    assert phone_address(f"{channel}:{number}", "US") == (channel, normalise_phone(number, "US"))
    key = address_key(*sender_address(f"{channel}:{number}", "US"))
    assert (key_channel(key), key_sender(key)) == (channel, normalise_phone(number, "US"))


@pytest.mark.parametrize("prefix", sorted(NO_PHONE_PREFIXES))
def test_a_channel_without_phones_is_read_but_never_taken_for_a_phone(prefix: str) -> None:
    assert split_address(f"{prefix}:1234567890").channel == prefix
    with pytest.raises(InvalidNumber, match="not a phone number"):
        phone_address(f"{prefix}:1234567890", "US")


# ---- the fold over generated logs on every channel ------------------------------------------------

PERSONS = ("ann", "bob")
# (channel, sender): an SMS number, the same number on RCS and WhatsApp, an RCS agent, a short code
SENDERS = (
    ("sms", "+14155550100"),
    ("sms", "12345"),
    ("rcs", "+14155550100"),
    ("rcs", "acme_agent"),
    ("whatsapp", "+14155550100"),
)
SERVICES = (None, "MG1", "MG2")
BODIES = ("STOP", "START", "HELP", "hi")

step = st.tuples(
    st.sampled_from(["sent", "sent", "received", "blocked"]),
    st.sampled_from(PERSONS),
    st.sampled_from(SENDERS),
    st.sampled_from(SERVICES),
    st.sampled_from(BODIES),
    st.integers(min_value=0, max_value=20),
)


def build(steps: list[tuple[str, str, tuple[str, str], str | None, str, int]]) -> list[MessagingEvent]:
    log: list[MessagingEvent] = []
    for n, (kind, person, (channel, sender), service, body, minute) in enumerate(steps):
        common = {"sender": sender, "service": service, "minute": minute, "channel": channel}
        if kind == "sent":
            log.append(sent(f"e{n}", person, **common))  # type: ignore[arg-type]
        elif kind == "received":
            log.append(received(f"e{n}", body, **common))  # type: ignore[arg-type]
        else:
            log.append(blocked(f"e{n}", person, **common))  # type: ignore[arg-type]
    return log


def lists(people: People, keep: set[str] | None = None) -> dict[str, set[tuple[str, str]]]:
    return {
        person: {key for key in state.entries if keep is None or key_channel(key[0]) in keep}
        for person, state in people.items()
        if any(keep is None or key_channel(key[0]) in keep for key in state.entries)
    }


@PROPERTIES
@given(steps=st.lists(step, max_size=25))
def test_whatsapp_never_touches_the_entries_of_another_channel(
    steps: list[tuple[str, str, tuple[str, str], str | None, str, int]],
) -> None:
    log = build(steps)
    without_whatsapp = [e for e in log if e.channel != "whatsapp"]
    only_whatsapp = [e for e in log if e.channel == "whatsapp"]

    assert lists(run(*log), {"sms", "rcs"}) == lists(run(*without_whatsapp))
    assert lists(run(*log), {"whatsapp"}) == lists(run(*only_whatsapp))


@PROPERTIES
@given(steps=st.lists(step, max_size=25), data=st.data())
def test_a_redelivery_of_any_event_changes_no_list(
    steps: list[tuple[str, str, tuple[str, str], str | None, str, int]], data: st.DataObject
) -> None:
    log = build(steps)
    if not log:
        return
    again = data.draw(st.sampled_from(log))

    assert lists(run(*log, again)) == lists(run(*log))


@PROPERTIES
@given(steps=st.lists(step, max_size=25))
def test_contacts_read_back_from_the_table_fold_every_channel_as_the_live_ones(
    steps: list[tuple[str, str, tuple[str, str], str | None, str, int]],
) -> None:
    live, stored = EMPTY_CONTACTS, EMPTY_CONTACTS
    for event in build(steps):
        from_live = resolve(live, event)
        from_stored = resolve(Contacts.from_json(json.loads(json.dumps(stored.to_json()))), event)
        live, stored = from_live.contacts, from_stored.contacts

        assert [e.model_dump_json() for e in from_stored.emitted] == [
            e.model_dump_json() for e in from_live.emitted
        ]
    assert json.loads(json.dumps(stored.to_json())) == json.loads(json.dumps(live.to_json()))
