"""The operator's pages escape what people, senders and operators typed: a person id, a sender, an
actor or a reason holding markup or quotes shows as text, and never ends an attribute or starts a
script."""

from __future__ import annotations

import dataclasses

from markupsafe import escape

from projections.opt_outs import PersonOptOuts, project_all
from schemas.events import AnyPersonEvent
from streams.web.operator_auth import login_page
from streams.web.pages import RemovalForm, not_from_here, person_page, removal_page
from streams.web.rendering import message
from tests.unit.conftest import overridden, recorded

# A person id has no '/' or space (schemas.inputs); a sender, actor or reason may hold anything.
HOSTILE_ID = '<script>alert("id")\'&'
HOSTILE = "<script>alert('x')</script>\" onfocus=\"alert(1)"
ESCAPED = str(escape(HOSTILE))


def hostile(event: AnyPersonEvent) -> AnyPersonEvent:
    """`event` with what no event passes validation with, as an old or hand-made record might hold."""
    fields = {"sender": HOSTILE, "phone": HOSTILE, "source_event_id": HOSTILE}
    if hasattr(event, "actor"):
        fields |= {"actor": HOSTILE, "reason": HOSTILE}
    return event.model_copy(update=fields)


def hostile_person() -> PersonOptOuts:
    state = project_all([recorded("e1", HOSTILE_ID, minute=1)], person_id=HOSTILE_ID)
    history = (*state.history, overridden("e2", HOSTILE_ID, minute=2))
    return dataclasses.replace(
        state,
        entries={
            key: entry.model_copy(
                update={"sender": HOSTILE, "phone": HOSTILE, "messaging_service_sid": HOSTILE}
            )
            for key, entry in state.entries.items()
        },
        history=tuple(hostile(event) for event in history),
    )


def assert_shown_as_text(page: str, *values: str) -> None:
    for value in values:
        assert value not in page
        assert str(escape(value)) in page
    assert "<script>alert" not in page
    assert 'onfocus="' not in page


def test_the_person_page_escapes_the_person_id_senders_actors_and_reasons() -> None:
    page = person_page(hostile_person(), logout_csrf=HOSTILE)

    assert_shown_as_text(page, HOSTILE_ID, HOSTILE)
    assert page.count(ESCAPED) >= 9  # sender, phone, service in the row; sender, phone, actor, reason, source


def test_the_removal_form_escapes_everything_it_offers_again() -> None:
    form = RemovalForm(HOSTILE_ID, HOSTILE, HOSTILE, actor=HOSTILE, reason=HOSTILE, removal=HOSTILE)

    page = removal_page(form, csrf=HOSTILE, problem=HOSTILE)

    assert_shown_as_text(page, HOSTILE_ID, HOSTILE)


def test_the_error_and_login_pages_escape_what_they_repeat() -> None:
    assert_shown_as_text(not_from_here(HOSTILE_ID), HOSTILE_ID)
    assert_shown_as_text(message("Not a point in time", HOSTILE), HOSTILE)
    assert_shown_as_text(login_page("/", HOSTILE, 12).text or "", HOSTILE)


def test_a_page_holds_no_script_but_its_own() -> None:
    pages = [
        removal_page(RemovalForm(HOSTILE_ID, HOSTILE), csrf=HOSTILE, problem=HOSTILE),
        not_from_here(HOSTILE_ID),
        message(HOSTILE, HOSTILE),
        login_page(HOSTILE, HOSTILE, 12).text or "",
    ]

    assert ["<script" in page for page in pages] == [False] * len(pages)
    assert person_page(hostile_person()).count("<script") == 1  # the page's own, admitted by its hash
