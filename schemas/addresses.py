"""Twilio's channel addresses read explicitly: `whatsapp:+14155550123` is the WhatsApp channel and the
number +14155550123, a plain `+14155550123` is SMS (and MMS). The channel is data, never text a number
parser is left to skip: a prefix this module does not know is refused, not guessed at.

Twilio names the channel in the address ("channel-specific addresses", docs/twilio.md#channels).
Which opt-outs cover which channels is Twilio's rule too: RCS, SMS and MMS share one opt-out per
sender or Messaging Service (`UNIFIED`); every other channel keeps its own.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple, get_args

from schemas.errors import InvalidNumber
from schemas.phones import normalise_phone, normalise_sender

# The channels an event may carry: those whose person address is a phone number, which keys the
# messaging topic. Plain numbers are "sms", which Twilio's addresses do not tell apart from MMS.
Channel = Literal["sms", "rcs", "whatsapp"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)
# Prefixes Twilio documents that the service reads but keeps no list for: Facebook Messenger's
# addresses are page-scoped ids, not phone numbers, so nothing on them is a person's phone.
NO_PHONE_PREFIXES = frozenset({"messenger"})
PREFIXES = frozenset(c for c in CHANNELS if c != "sms") | NO_PHONE_PREFIXES

# Twilio (changelog, 15 March 2026): an opt-out on RCS blocks SMS and MMS from the same sender or
# Messaging Service, and the other way round. Nothing is documented for WhatsApp across channels.
UNIFIED: frozenset[str] = frozenset({"sms", "rcs"})
_UNIFIED_COVERS: tuple[str, ...] = ("sms", "mms", "rcs")

# A prefix is a scheme as in RFC 3986 (letters first, then letters, digits, '+', '-', '.') before a
# colon. A value with a colon anywhere is never a plain number: `tel:` and the like are refused too.
_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9+.\-_]*):(.*)", re.DOTALL)
# An RCS agent id: Twilio gives `rcs:<agent id>`, letters, digits, '_', '-' and '.'.
_AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


class UnknownChannel(InvalidNumber):
    """An address with a prefix Twilio does not document (or the service does not read)."""


class Address(NamedTuple):
    """An address split into its channel and the rest, as Twilio wrote it (not yet normalised)."""

    channel: str  # one of CHANNELS or NO_PHONE_PREFIXES
    value: str


def split_address(text: str) -> Address:
    """`text` as (channel, the rest). Without a prefix it is SMS; an unknown prefix raises
    UnknownChannel, and so does any other colon (a plain number never has one)."""
    stripped = text.strip()
    match = _PREFIX.fullmatch(stripped)
    if match is None:
        if ":" in stripped:
            raise UnknownChannel(text, "has a ':' but no channel prefix Twilio documents")
        return Address("sms", stripped)
    prefix, rest = match.group(1).lower(), match.group(2).strip()
    if prefix not in PREFIXES:
        known = ", ".join(f"{p}:" for p in sorted(PREFIXES))
        raise UnknownChannel(text, f"has the channel prefix {prefix!r}, which is not one of {known}")
    if ":" in rest:
        raise UnknownChannel(text, "has more than one channel prefix")
    if not rest:
        raise InvalidNumber(text, f"has the channel prefix {prefix!r} and nothing after it")
    return Address(prefix, rest)


def as_channel(channel: str) -> Channel:
    """`channel` as an event's channel; InvalidNumber-free callers check NO_PHONE_PREFIXES first."""
    if channel not in CHANNELS:
        raise ValueError(f"{channel!r} is not a channel with phones ({', '.join(CHANNELS)})")
    return channel


def phone_address(text: str, region: str | None) -> tuple[str, str]:
    """A person's address: (channel, the phone in E.164)."""
    channel, value = split_address(text)
    if channel in NO_PHONE_PREFIXES:
        raise InvalidNumber(text, f"is a {channel} address, not a phone number")
    return channel, normalise_phone(value, region)


def sender_address(text: str, region: str | None) -> tuple[str, str]:
    """One of our senders: (channel, the sender as events hold it; see `normalise_channel_sender`)."""
    channel, value = split_address(text)
    if channel in NO_PHONE_PREFIXES:
        raise InvalidNumber(text, f"is a {channel} address, not a sender the service keeps lists for")
    return channel, normalise_channel_sender(channel, value, region)


def normalise_channel_sender(channel: str, value: str, region: str | None) -> str:
    """A sender of `channel` without its prefix: SMS as `normalise_sender` (E.164, short code or
    alphanumeric ID); WhatsApp an E.164 number; RCS an E.164 number or an agent id, as given."""
    if ":" in value:
        raise InvalidNumber(value, "has a ':': give the channel apart, not as a prefix")
    if channel == "sms":
        return normalise_sender(value, region)
    if channel == "rcs":
        text = value.strip()
        return text if _AGENT_ID.fullmatch(text) and not text.isdigit() else normalise_phone(text, region)
    return normalise_phone(value, region)


def address_key(channel: str, sender: str) -> str:
    """The one string naming a sender on a channel, as Twilio writes it: the sender itself for SMS
    (as it always was), `channel:sender` otherwise. Entries and contacts are keyed by it."""
    return sender if channel == "sms" else f"{channel}:{sender}"


def key_channel(key: str) -> str:
    """The channel of an `address_key`."""
    prefix, colon, _ = key.partition(":")
    return prefix if colon else "sms"


def key_sender(key: str) -> str:
    """The sender of an `address_key`, without its channel."""
    prefix, colon, rest = key.partition(":")
    return rest if colon else prefix


def covers(channel: str) -> tuple[str, ...]:
    """The channels Twilio blocks after an opt-out keyword on `channel` (for the same sender or
    Messaging Service): SMS, MMS and RCS together; any other channel only itself."""
    return _UNIFIED_COVERS if channel in UNIFIED else (channel,)
