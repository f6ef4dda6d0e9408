"""`optouts verify`: fold the logs offline with the same pure folds and compare every person's list with
what the running generation shows: the HTTP API, its store (the table's changelog, what a worker
recovers from) and the latest value per person in `sms-opt-outs`. Each difference is printed per
person; the exit status is 1 on any, 0 when all agree.

The running workers are given time to fold what the logs hold (their consumer group's committed
offsets reach the snapshotted ends) before anything is compared; a person whose events arrive while
the verification runs is reported as not judged rather than as a difference.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO, cast

import aiohttp
from aiokafka import TopicPartition

from projections.contacts import EMPTY_CONTACTS, Contacts
from projections.differences import contacts_differences, empty_list, list_differences
from projections.opt_outs import PersonOptOuts, project_log
from projections.rebuild import MessagingFold, new_facts
from schemas.codec import decode_opt_out_list
from schemas.errors import DecodeError, OptOutsError
from schemas.events import AnyPersonEvent, OptOutList, OptOutOverridden, PersonEvent
from streams.engine.log_reader import Span, ends_of, latest_values, snapshot
from streams.engine.topics import (
    CONTACTS_TABLE,
    MESSAGING_EVENTS,
    OPT_OUTS,
    OPT_OUTS_TABLE,
    PERSON_EVENTS,
    changelog_topic,
)
from streams.pipeline.generations import Generation, current_generation
from streams.pipeline.person_history import is_history_key
from streams.progress import say
from streams.rebuild.group_offsets import committed_offsets
from streams.rebuild.offline_fold import fold_messaging_log, read_person_log
from streams.settings import Settings
from streams.web.api_client import Api

EXIT_AGREE, EXIT_DIFFERENT, EXIT_UNREACHABLE = 0, 1, 3
Found = OptOutList | str  # a list, or why there is no list to compare
_CONCURRENT_REQUESTS = 16


class VerifyError(OptOutsError):
    """The verification could not be made (not a difference)."""


@dataclass
class Verification:
    generation: Generation
    persons: int = 0
    sources: list[str] = field(default_factory=list)
    differences: dict[str, list[str]] = field(default_factory=dict)  # person -> "source: what"
    not_judged: set[str] = field(default_factory=set)
    pending_facts: int = 0
    # Derived facts the person log lacks that a later fact about the same entry already decides: they
    # change no list, but a worker that folded every event would have written them.
    superseded_facts: int = 0
    # Ids of events in the person log written by stage 1 that the fold of the messaging log does not
    # derive as they are (a keyword setting changed since, or a worker folded against a state the
    # log does not give): the person log itself is then not the fold of the messaging log.
    underived: list[str] = field(default_factory=list)
    behind: int = 0  # events the running workers had not folded when the waits ended
    # topic -> likely cause -> records on another partition than murmur2 of their key: not folded
    # where they are (the workers forward them and fold the copy, and so does the offline fold)
    misplaced: dict[str, Counter[str]] = field(default_factory=dict)
    # phone -> how its contacts in the stage 1 store (changelog) differ from the log's; compared on
    # request only (`contacts=True`): phones that change while verifying are not told apart yet.
    contacts_differences: dict[str, list[str]] = field(default_factory=dict)


async def verify(
    settings: Settings,
    *,
    api: Api | str | None,
    wait: float,
    only: set[str] | None = None,
    contacts: bool = False,
) -> Verification:
    """Compare every person's list (or those in `only`) with the log's; the logs are read whole. With
    `contacts`, every phone's contacts in the stage 1 store too (for a log that is not written to)."""
    if not settings.brokers:
        raise VerifyError("OPTOUTS_KAFKA_BROKERS is not set: point it at the brokers the workers use")
    running = await current_generation(settings)
    live = running.settings(settings)
    result = Verification(running)
    say(f"verify: against {running}")

    messaging_spans = await snapshot(settings.brokers, [MESSAGING_EVENTS])
    fold = MessagingFold(settings.keywords)
    messaging = await fold_messaging_log(settings, messaging_spans, fold, f"stage 1, {MESSAGING_EVENTS}")
    # What the workers derive from these events must be in the person log before it is read.
    result.behind = await _until_folded(settings, running, ends_of(messaging_spans), wait)
    person_spans = await snapshot(settings.brokers, [PERSON_EVENTS])
    events: list[AnyPersonEvent] = []
    person_log = await read_person_log(settings, person_spans, events, f"stage 2, {PERSON_EVENTS}")
    result.misplaced = {
        topic: read.misplaced
        for topic, read in ((MESSAGING_EVENTS, messaging), (PERSON_EVENTS, person_log))
        if read.misplaced
    }
    # What the logs say: the person log, plus what the fold derives from the messaging log that the
    # person log lacks (lost by a worker, or a keyword changed since), placed as a replay would.
    missing = new_facts(fold.derived.values(), fold.positions, events)
    # The fold derives only events of the person log's union (projections.keywords).
    appended = cast("list[AnyPersonEvent]", list(missing.append))
    expected = {person: state.as_list() for person, state in project_log([*events, *appended]).items()}
    result.pending_facts, result.superseded_facts = len(missing.append), len(missing.superseded)
    result.underived = underived_events(fold.derived, events)
    result.behind += await _until_folded(settings, running, ends_of(person_spans), wait)

    if contacts:
        result.contacts_differences = await _contacts_differences(settings, live, fold.contacts)
    store = changelog_topic(live, OPT_OUTS_TABLE)
    found: dict[str, dict[str, Found]] = {
        f"store ({store})": await _stored_lists(settings, store),
        OPT_OUTS: await _published_lists(settings),
    }
    persons = set(expected).union(*(set(lists) for lists in found.values())) if only is None else only
    if api is not None:
        client = api if isinstance(api, Api) else Api.of(settings, api)  # with the operator token
        found[f"API ({client.base})"] = await _api_lists(client, persons)
    result.sources, result.persons = list(found), len(persons)
    for person in sorted(persons):
        want = expected.get(person) or empty_list(person)
        for source, lists in found.items():
            have = lists.get(person) or empty_list(person)
            differences = [have] if isinstance(have, str) else list_differences(want, have)
            for difference in differences:
                result.differences.setdefault(person, []).append(f"{source} {difference}")
    if result.differences:
        changed = await _persons_since(settings, ends_of(person_spans))
        result.not_judged = changed & set(result.differences)
        for person in result.not_judged:
            del result.differences[person]
    return result


def underived_events(derived: Mapping[str, PersonEvent], person_log: list[AnyPersonEvent]) -> list[str]:
    """The ids of the stage 1 events of `person_log` (every event but overrides) that are not among
    `derived`, or differ from the event derived under their id; each id once."""
    found: dict[str, None] = {}
    for event in person_log:
        if not isinstance(event, OptOutOverridden) and derived.get(event.event_id) != event:
            found[event.event_id] = None
    return list(found)


async def _until_folded(
    settings: Settings, running: Generation, ends: Mapping[TopicPartition, int], wait: float
) -> int:
    """Wait (at most `wait` seconds) until the running group has committed `ends`; the events short of
    them when the wait ended."""
    deadline = time.monotonic() + wait
    while True:
        committed = await committed_offsets(settings, running.app_id, set(ends))
        behind = sum(max(0, end - committed.get(tp, 0)) for tp, end in ends.items())
        if not behind or time.monotonic() >= deadline:
            return behind
        await asyncio.sleep(0.5)


async def _stored_lists(settings: Settings, topic: str) -> dict[str, Found]:
    """The table as its changelog holds it: what a worker recovers from."""
    spans = await snapshot(settings.brokers, [topic])
    lists: dict[str, Found] = {}
    for key, (_, value) in (await latest_values(settings.brokers, spans)).items():
        person = key.decode(errors="replace")
        if value is not None and not is_history_key(key):
            try:
                lists[person] = PersonOptOuts.from_json(person, json.loads(value)).as_list()
            except (ValueError, KeyError, TypeError) as exc:  # a value the service did not write
                lists[person] = f"holds a value that is not a stored list: {exc}"
    return lists


async def _contacts_differences(
    settings: Settings, live: Settings, expected: Mapping[str, Contacts]
) -> dict[str, list[str]]:
    """How each phone's contacts, as the stage 1 table's changelog holds them (what a worker
    recovers from), differ from the fold of the messaging log."""
    store = changelog_topic(live, CONTACTS_TABLE)
    stored = await latest_values(settings.brokers, await snapshot(settings.brokers, [store]))
    found: dict[str, Contacts] = {}
    differences: dict[str, list[str]] = {}
    for key, (_, value) in stored.items():
        phone = key.decode(errors="replace")
        try:
            found[phone] = Contacts.from_json(json.loads(value)) if value else EMPTY_CONTACTS
        except (ValueError, KeyError, TypeError) as exc:  # a value the service did not write
            differences[phone] = [f"store ({store}) holds a value that is not stored contacts: {exc}"]
    for phone in sorted((expected.keys() | found.keys()) - differences.keys()):
        differing = contacts_differences(
            expected.get(phone, EMPTY_CONTACTS), found.get(phone, EMPTY_CONTACTS)
        )
        if differing:
            differences[phone] = [f"store ({store}) {difference}" for difference in differing]
    return differences


async def _published_lists(settings: Settings) -> dict[str, Found]:
    spans = await snapshot(settings.brokers, [OPT_OUTS])
    lists: dict[str, Found] = {}
    for key, (_, value) in (await latest_values(settings.brokers, spans)).items():
        person = key.decode(errors="replace")
        if value is not None:
            try:
                lists[person] = decode_opt_out_list(value)
            except DecodeError as exc:  # a value the service did not write
                lists[person] = f"holds a value that is not a list: {exc}"
    return lists


async def _api_lists(api: Api, persons: set[str]) -> dict[str, Found]:
    limit = asyncio.Semaphore(_CONCURRENT_REQUESTS)

    async def fetch(http: aiohttp.ClientSession, person: str) -> tuple[str, OptOutList]:
        url = api.url("people", person, "sms-opt-outs")
        async with limit:
            for _ in range(20):  # 503 while partitions move between workers: try again shortly
                async with http.get(url) as answer:
                    body = await answer.read()
                    if answer.status != 503:
                        break
                await asyncio.sleep(0.5)
        if answer.status != 200:
            raise VerifyError(f"GET {url} answered {answer.status}: {body[:200]!r}")
        return person, decode_opt_out_list(body)

    try:
        async with api.session(timeout=30) as http:
            return dict(await asyncio.gather(*(fetch(http, person) for person in persons)))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise VerifyError(f"the API at {api.base} did not answer: {exc!r}") from exc


async def _persons_since(settings: Settings, ends: Mapping[TopicPartition, int]) -> set[str]:
    spans: dict[TopicPartition, Span] = await snapshot(settings.brokers, [PERSON_EVENTS], since=ends)
    events: list[AnyPersonEvent] = []
    await read_person_log(settings, spans, events, f"stage 2, {PERSON_EVENTS} (since the snapshot)")
    return {event.person_id for event in events}


def report(result: Verification, out: TextIO) -> int:
    """Print each difference per person and a summary; the exit status."""
    for person, differences in sorted(result.differences.items()):
        for difference in differences:
            print(f"person {person}: {difference}", file=out)
    for person in sorted(result.not_judged):
        print(f"person {person}: not judged, it changed while verifying", file=out)
    if result.behind:
        print(
            f"note: {result.generation} had not folded {result.behind:,} events of the logs when the"
            " wait ended (is a worker running?): differences may be that lag",
            file=out,
        )
    if result.pending_facts:
        print(
            f"note: {result.pending_facts:,} facts the fold derives from {MESSAGING_EVENTS} are not in"
            f" {PERSON_EVENTS} (a keyword setting changed since, or the workers missed them); the lists"
            " above are judged with them: `optouts replay` appends them",
            file=out,
        )
    for topic, causes in result.misplaced.items():
        print(
            f"note: {causes.total():,} records of {topic} are on another partition than murmur2 of their"
            f" key: {'; '.join(f'{count:,} {cause}' for cause, count in causes.most_common())}."
            " The workers forward each to its key's partition and fold the copy there (the lists above"
            " are judged so); fix the producer (docs/producers.md)",
            file=out,
        )
    if result.underived:
        print(
            f"note: {len(result.underived):,} events in {PERSON_EVENTS} are not what the fold of"
            f" {MESSAGING_EVENTS} derives (a keyword setting changed since, or a worker folded an event"
            f" against a state the logs do not give), e.g. {', '.join(result.underived[:3])}",
            file=out,
        )
    people = len(result.differences)
    verdict = f"{people:,} persons differ" if people else "all agree"
    print(
        f"verified {result.persons:,} persons of {result.generation} against the log"
        f" ({', '.join(result.sources)}): {verdict}",
        file=out,
        flush=True,
    )
    return EXIT_DIFFERENT if people else EXIT_AGREE
