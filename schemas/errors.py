"""The one exception root of the service, and the errors that carry what a person needs to act."""

from __future__ import annotations


class OptOutsError(Exception):
    """Root of every error this service raises on purpose."""


class InvalidNumber(OptOutsError, ValueError):
    """A phone or sender value that cannot be normalised; it is rejected, never guessed."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"{value!r} {reason}")
        self.value = value
        self.reason = reason


class DecodeError(OptOutsError):
    """Bytes that are not a valid event: names the event type, the field and the value at fault."""

    def __init__(self, message: str, *, event_type: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.event_type = event_type
        self.field = field


class FoldError(OptOutsError):
    """A decoded event whose fold raised: a defect of the fold, not of the event. It is kept aside
    like a value that cannot be decoded, to be published again once the fold is fixed."""

    def __init__(self, event_type: str, exc: Exception) -> None:
        super().__init__(f"{event_type}: could not be folded: {type(exc).__name__}: {str(exc)[:200]}")
        self.event_type: str | None = event_type
        self.field: str | None = None


class UnknownSchemaVersion(DecodeError):
    """An event of a `schema_version` newer than this service reads: written by a newer producer.
    It is not folded (guessing its meaning could change a list wrongly) but kept aside."""

    def __init__(self, event_type: str, version: int, latest: int) -> None:
        super().__init__(
            f"{event_type}: field 'schema_version' = {version}: this service reads {event_type}"
            f" up to version {latest}; upgrade it to fold this event",
            event_type=event_type,
            field="schema_version",
        )
        self.version = version


class NotOnList(OptOutsError):
    """An override named a sender that is not on the person's list: nothing is appended."""

    def __init__(self, person_id: str, sender: str, phone: str | None) -> None:
        at = f" at {phone}" if phone else ""
        super().__init__(f"sender {sender}{at} is not on the SMS opt-out list of person {person_id!r}")


class AmbiguousEntry(OptOutsError):
    """An override named a sender listed for several of the person's phones without saying which."""

    def __init__(self, person_id: str, sender: str, phones: list[str]) -> None:
        super().__init__(
            f"sender {sender} is on the list of person {person_id!r} for phones {', '.join(phones)}:"
            " say which one in 'phone'"
        )
        self.phones = phones
