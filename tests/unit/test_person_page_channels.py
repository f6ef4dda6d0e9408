"""The operator's page shows the channel of every entry and history line, and where the keyword came
when it came on another channel; an entry is removed by its sender as the list keys it."""

from __future__ import annotations

from projections.contacts import EMPTY_CONTACTS, Contacts, resolve
from projections.opt_outs import PersonOptOuts, project
from schemas.events import MessagingEvent
from streams.web.pages import person_page
from tests.unit.conftest import PHONE, SENDER, received, sent


def state_after(*log: MessagingEvent) -> PersonOptOuts:
    contacts: Contacts = EMPTY_CONTACTS
    state = PersonOptOuts("ann")
    for event in log:
        resolution = resolve(contacts, event)
        contacts = resolution.contacts
        for person_event in resolution.emitted:
            state = project(state, person_event)  # type: ignore[arg-type]
    return state


def test_the_page_shows_the_channel_of_each_entry_and_history_line() -> None:
    html = person_page(
        state_after(
            sent("s1", "ann", service="MG1"),
            sent("s2", "ann", channel="whatsapp"),
            received("r1", "STOP", sender="acme_agent", service="MG1", channel="rcs", minute=1),
            received("r2", "STOP", channel="whatsapp", minute=2),
        )
    )

    assert f'data-sender="{SENDER}" data-phone="{PHONE}" data-channel="sms"' in html
    assert f'data-sender="whatsapp:{SENDER}" data-phone="{PHONE}" data-channel="whatsapp"' in html
    assert "<th>Channel</th>" in html
    assert html.count("keyword on RCS") == 2  # the SMS entry and its history line
    assert html.count("<td>WhatsApp</td>") == 2
    assert "sender=whatsapp%3A%2B14155550100" in html
