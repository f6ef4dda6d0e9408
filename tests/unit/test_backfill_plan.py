"""Which inbound messages listed by Twilio a backfill publishes: the ones the log misses, oldest
first, except a missed keyword that a later keyword in the log already overruled."""

from __future__ import annotations

from projections.backfill import plan_backfill
from projections.keywords import DEFAULT_KEYWORDS
from schemas.events import MessageReceived
from tests.unit.conftest import OTHER_PHONE, OTHER_SENDER, received


def sids(events: tuple[MessageReceived, ...]) -> list[str]:
    return [event.message_sid for event in events]


def test_messages_the_log_misses_are_published_oldest_first() -> None:
    listed = [received("late", "hello", minute=9), received("early", "STOP", minute=1)]

    plan = plan_backfill(listed, in_log=[])

    assert sids(plan.publish) == ["SMearly", "SMlate"]
    assert plan.known == plan.superseded == ()


def test_messages_whose_sid_is_in_the_log_are_known_and_not_published() -> None:
    stop = received("r1", "STOP", minute=1)

    plan = plan_backfill([stop, received("r2", "hi", minute=2)], in_log=[stop])

    assert sids(plan.known) == ["SMr1"]
    assert sids(plan.publish) == ["SMr2"]


def test_a_missed_stop_older_than_a_start_in_the_log_is_superseded() -> None:
    plan = plan_backfill([received("stop", "STOP", minute=1)], in_log=[received("start", "START", minute=5)])

    assert sids(plan.superseded) == ["SMstop"]
    assert plan.publish == ()


def test_a_missed_start_older_than_a_stop_in_the_log_is_superseded_too() -> None:
    plan = plan_backfill([received("start", "yes", minute=1)], in_log=[received("stop", "QUIT", minute=5)])

    assert sids(plan.superseded) == ["SMstart"]


def test_a_missed_keyword_newer_than_the_last_keyword_in_the_log_is_published() -> None:
    plan = plan_backfill([received("stop", "STOP", minute=9)], in_log=[received("start", "START", minute=5)])

    assert sids(plan.publish) == ["SMstop"]


def test_only_keywords_of_the_same_phone_and_sender_overrule() -> None:
    in_log = [
        received("other-phone", "START", minute=5, phone=OTHER_PHONE),
        received("other-sender", "START", minute=5, sender=OTHER_SENDER),
        received("not-a-keyword", "start me up", minute=5),
    ]

    plan = plan_backfill([received("stop", "STOP", minute=1)], in_log)

    assert sids(plan.publish) == ["SMstop"]


def test_a_missed_ordinary_message_is_published_whatever_the_log_holds() -> None:
    plan = plan_backfill([received("hi", "hello", minute=1)], in_log=[received("start", "START", minute=5)])

    assert sids(plan.publish) == ["SMhi"]


def test_opt_out_type_and_custom_keywords_make_a_keyword() -> None:
    keywords = DEFAULT_KEYWORDS.with_custom(opt_in=["REPRENDRE"])
    in_log = [received("again", "reprendre", minute=5)]
    listed = [received("arret", "arrêt", minute=1, opt_out_type="STOP")]

    assert sids(plan_backfill(listed, in_log, keywords).superseded) == ["SMarret"]
    assert sids(plan_backfill(listed, in_log).publish) == ["SMarret"]


def test_a_message_listed_twice_is_planned_once() -> None:
    stop = received("r1", "STOP", minute=1)

    assert sids(plan_backfill([stop, stop], in_log=[]).publish) == ["SMr1"]


def test_a_later_sms_keyword_overrules_a_missed_rcs_one_but_never_a_whatsapp_one() -> None:
    # Twilio unifies RCS and SMS opt-outs of one sender; WhatsApp keeps its own.
    plan = plan_backfill(
        [
            received("r1", "STOP", minute=1, channel="whatsapp"),
            received("r2", "STOP", minute=1, channel="rcs"),
        ],
        [received("r3", "START", minute=5)],
    )

    assert sids(plan.publish) == ["SMr1"]
    assert sids(plan.superseded) == ["SMr2"]
