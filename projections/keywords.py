"""What an inbound body means to Twilio: opt-out, opt-in, help, or nothing."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Intent(enum.Enum):
    OPT_OUT = "STOP"
    OPT_IN = "START"
    HELP = "HELP"
    NONE = "NONE"


@dataclass(frozen=True, slots=True)
class Keywords:
    """The keyword sets of a sender: Twilio's defaults plus a service's custom keywords."""

    opt_out: frozenset[str] = frozenset(
        {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
    )
    opt_in: frozenset[str] = frozenset({"START", "YES", "UNSTOP"})
    help: frozenset[str] = frozenset({"HELP", "INFO"})

    def with_custom(self, opt_out: Iterable[str] = (), opt_in: Iterable[str] = ()) -> Keywords:
        """These keywords plus a service's custom ones (Twilio Advanced Opt-Out)."""
        return Keywords(
            opt_out=self.opt_out | {keyword_text(k) for k in opt_out},
            opt_in=self.opt_in | {keyword_text(k) for k in opt_in},
            help=self.help,
        )


DEFAULT_KEYWORDS = Keywords()


def keyword_text(body: str) -> str:
    """The form a body is matched in: the whole body, trimmed, upper case."""
    return body.strip().upper()


def classify(body: str, opt_out_type: str | None, keywords: Keywords = DEFAULT_KEYWORDS) -> Intent:
    """Twilio's reading of an inbound body.

    `opt_out_type` (Twilio's `OptOutType`, sent when Advanced Opt-Out is on) is authoritative when
    present: it reflects the service's own keywords and languages. Otherwise the whole trimmed body,
    case-insensitive, must be one keyword: "STOP PLEASE" is not one, and Twilio does not block on it.
    """
    if opt_out_type is not None:
        return Intent(opt_out_type)
    text = keyword_text(body)
    if text in keywords.opt_out:
        return Intent.OPT_OUT
    if text in keywords.opt_in:
        return Intent.OPT_IN
    if text in keywords.help:
        return Intent.HELP
    return Intent.NONE
