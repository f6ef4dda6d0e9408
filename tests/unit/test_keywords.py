"""How an inbound body is read: Twilio's default keywords, whole-body matching, OptOutType, custom
keywords."""

from __future__ import annotations

import pytest

from projections.keywords import DEFAULT_KEYWORDS, Intent, Keywords, classify, keyword_text
from schemas.events import OptOutType
from streams.settings import Settings

# Twilio's defaults (2025+), copied from docs/rules.md rather than from the code under test.
OPT_OUT_WORDS = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
OPT_IN_WORDS = ["START", "YES", "UNSTOP"]
HELP_WORDS = ["HELP", "INFO"]

BODIES = [
    # body, intent, what Twilio does with it
    ("STOP", Intent.OPT_OUT, "blocks every later send from this sender to this phone"),
    (" stop ", Intent.OPT_OUT, "trims surrounding white space and ignores case: blocks"),
    ("\tStop\n", Intent.OPT_OUT, "any surrounding white space, tabs and newlines too: blocks"),
    ("Stop.", Intent.NONE, "the trimmed body is not exactly a keyword: no block"),
    ("STOP PLEASE", Intent.NONE, "more than the keyword: Twilio does not block"),
    ("PLEASE STOP", Intent.NONE, "keyword not the whole body: Twilio does not block"),
    ("STOP STOP", Intent.NONE, "the keyword twice is not the keyword: no block"),
    ("revoke", Intent.OPT_OUT, "REVOKE is a default since 2025: blocks"),
    ("OptOut", Intent.OPT_OUT, "OPTOUT in any case: blocks"),
    ("OPT OUT", Intent.NONE, "two words, not the keyword OPTOUT: no block"),
    ("OPT-OUT", Intent.NONE, "not one of Twilio's default keywords: no block"),
    ("ARRET", Intent.NONE, "French is not a default; only via custom keywords or OptOutType"),
    ("UNSTOP", Intent.OPT_IN, "lifts the block for this sender and phone"),
    ("yes", Intent.OPT_IN, "opt-in in any case: lifts the block"),
    ("Start ", Intent.OPT_IN, "opt-in, trimmed: lifts the block"),
    ("help", Intent.HELP, "answers with the help text; the block is unchanged"),
    ("info", Intent.HELP, "same as HELP: answers, no change"),
    ("HELP ME", Intent.NONE, "not a keyword: passed to the webhook only"),
    ("", Intent.NONE, "empty body (an MMS with only media): nothing"),
    ("   ", Intent.NONE, "only white space: nothing"),
    ("hello, when is my appointment?", Intent.NONE, "an ordinary reply: passed to the webhook only"),
]


@pytest.mark.parametrize(("body", "intent", "twilio"), BODIES, ids=[repr(b[0]) for b in BODIES])
def test_classify_reads_a_body_the_way_twilio_does(body: str, intent: Intent, twilio: str) -> None:
    assert classify(body, None) is intent, twilio


@pytest.mark.parametrize("word", OPT_OUT_WORDS)
def test_every_default_opt_out_keyword_is_an_opt_out_in_any_case(word: str) -> None:
    assert classify(word, None) is Intent.OPT_OUT
    assert classify(word.lower(), None) is Intent.OPT_OUT
    assert classify(f"  {word.capitalize()} ", None) is Intent.OPT_OUT


@pytest.mark.parametrize("word", OPT_IN_WORDS)
def test_every_default_opt_in_keyword_is_an_opt_in_in_any_case(word: str) -> None:
    assert classify(word, None) is Intent.OPT_IN
    assert classify(word.lower(), None) is Intent.OPT_IN
    assert classify(f"  {word.capitalize()} ", None) is Intent.OPT_IN


@pytest.mark.parametrize("word", HELP_WORDS)
def test_every_default_help_keyword_is_help_in_any_case(word: str) -> None:
    assert classify(word, None) is Intent.HELP
    assert classify(word.lower(), None) is Intent.HELP


def test_the_default_keywords_are_exactly_twilios() -> None:
    assert DEFAULT_KEYWORDS.opt_out == set(OPT_OUT_WORDS)
    assert DEFAULT_KEYWORDS.opt_in == set(OPT_IN_WORDS)
    assert DEFAULT_KEYWORDS.help == set(HELP_WORDS)


OVERRIDES: list[tuple[str, OptOutType, Intent, str]] = [
    # body, OptOutType, intent, why
    ("ARRET", "STOP", Intent.OPT_OUT, "a custom or translated keyword Twilio read as an opt-out"),
    ("STOP", "HELP", Intent.HELP, "Twilio says HELP: it is authoritative, whatever the body"),
    ("STOP", "START", Intent.OPT_IN, "Twilio says START: it is authoritative"),
    ("hello", "START", Intent.OPT_IN, "a custom opt-in keyword we do not know"),
    ("START", "STOP", Intent.OPT_OUT, "Twilio says STOP for a body we would read as opt-in"),
    ("AIDE", "HELP", Intent.HELP, "a translated help keyword"),
    ("", "STOP", Intent.OPT_OUT, "even an empty body"),
]


@pytest.mark.parametrize(("body", "opt_out_type", "intent", "why"), OVERRIDES)
def test_opt_out_type_overrides_the_body(
    body: str, opt_out_type: OptOutType, intent: Intent, why: str
) -> None:
    assert classify(body, opt_out_type) is intent, why


def test_opt_out_type_overrides_custom_keywords_too() -> None:
    keywords = DEFAULT_KEYWORDS.with_custom(opt_out=["ARRET"])

    assert classify("ARRET", "HELP", keywords) is Intent.HELP


def test_custom_keywords_add_to_the_defaults() -> None:
    keywords = DEFAULT_KEYWORDS.with_custom(opt_out=["arret", " Baja "], opt_in=["Reprendre"])

    assert classify("ARRET", None, keywords) is Intent.OPT_OUT
    assert classify("baja", None, keywords) is Intent.OPT_OUT
    assert classify(" reprendre", None, keywords) is Intent.OPT_IN
    assert classify("STOP", None, keywords) is Intent.OPT_OUT
    assert classify("START", None, keywords) is Intent.OPT_IN
    assert classify("HELP", None, keywords) is Intent.HELP


def test_custom_keywords_match_the_whole_body_only() -> None:
    keywords = DEFAULT_KEYWORDS.with_custom(opt_out=["ARRET"])

    assert classify("ARRET SVP", None, keywords) is Intent.NONE


def test_custom_keywords_leave_the_defaults_untouched() -> None:
    DEFAULT_KEYWORDS.with_custom(opt_out=["ARRET"], opt_in=["REPRENDRE"])

    assert classify("ARRET", None) is Intent.NONE
    assert classify("REPRENDRE", None) is Intent.NONE
    assert Keywords() == DEFAULT_KEYWORDS


def test_custom_keywords_stack() -> None:
    keywords = DEFAULT_KEYWORDS.with_custom(opt_out=["ARRET"]).with_custom(opt_out=["BAJA"])

    assert classify("arret", None, keywords) is Intent.OPT_OUT
    assert classify("baja", None, keywords) is Intent.OPT_OUT


@pytest.mark.parametrize(
    ("body", "text"), [(" stop ", "STOP"), ("Arrêt", "ARRÊT"), ("STOP PLEASE", "STOP PLEASE"), ("", "")]
)
def test_keyword_text_is_the_trimmed_upper_case_body(body: str, text: str) -> None:
    assert keyword_text(body) == text


def test_custom_keywords_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTOUTS_OPT_OUT_KEYWORDS", "arret, Baja")
    monkeypatch.setenv("OPTOUTS_OPT_IN_KEYWORDS", "Reprendre")

    keywords = Settings().keywords

    assert classify(" Arret ", None, keywords) is Intent.OPT_OUT
    assert classify("BAJA", None, keywords) is Intent.OPT_OUT
    assert classify("reprendre", None, keywords) is Intent.OPT_IN
    assert classify("STOP", None, keywords) is Intent.OPT_OUT
    assert classify("arret", "HELP", keywords) is Intent.HELP
