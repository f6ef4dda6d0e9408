"""Normalising numbers at the edge: person phones to E.164; senders to E.164, or kept as given when
they are short codes or alphanumeric sender IDs."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from schemas.errors import InvalidNumber

# Short codes are 3 to 8 digits depending on the country (5-6 in the US); alphanumeric sender IDs
# are up to 11 letters, digits and spaces with at least one letter (Twilio's rules).
_SHORT_CODE = re.compile(r"[0-9]{3,8}")
_ALPHANUMERIC_ID = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")


# Numbers repeat (a phone texts many times, a handful of senders send everything): parsing is the
# costliest part of decoding an event, so results are cached. Errors are not cached. The workers do
# not parse a phone their store already holds (streams.engine.tables.KnownKeys), so this covers
# the rest (senders, numbers written in national form, a person event's phone): 16,384 of them,
# ~3 MB, where 65,536 held ~17 MB of a million-person worker's memory.
_CACHED = 1 << 14


@lru_cache(maxsize=_CACHED)
def normalise_phone(value: str, region: str | None) -> str:
    """Return `value` in E.164, reading a national number in `region` (with no region, only
    international numbers parse); raise InvalidNumber otherwise."""
    text = value.strip()
    if not text:
        raise InvalidNumber(value, "is empty, not a phone number")
    if ":" in text:
        # `whatsapp:+14155550123` is a channel and a number, and phonenumbers would read the number
        # and drop the rest: the channel is read apart (schemas.addresses), never skipped here.
        raise InvalidNumber(value, "has a channel prefix (or a ':'): not a plain phone number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(value, f"is not a phone number ({exc._msg})") from exc
    # "Possible" (a plausible length for the country) rather than "valid" (in a known range): a
    # newly allocated range missing from the metadata must not make us drop a STOP.
    if not phonenumbers.is_possible_number(number):
        raise InvalidNumber(value, f"is not a possible phone number (region {region})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=_CACHED)
def normalise_sender(value: str, region: str | None) -> str:
    """Return a sender as the one key it has everywhere: E.164 for numbers, else the short code or
    alphanumeric ID as given (trimmed)."""
    text = value.strip()
    if _SHORT_CODE.fullmatch(text) or _ALPHANUMERIC_ID.fullmatch(text):
        return text
    return normalise_phone(text, region)
