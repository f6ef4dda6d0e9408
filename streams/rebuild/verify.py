"""`optouts verify`: fold the logs offline with the workers' own rules and compare every person's list (or a
sample, or the persons named) with what the running generation shows: the HTTP API, its store (the
table's changelog, what a worker recovers from) and the latest value per person in `sms-opt-outs`. Each
difference is printed per person; the exit status is 1 on any, 0 when all agree.

The fold is a replay that builds nothing (streams.rebuild.part): partition by partition, on one process
or several (`--processes N`), each partition's expected state in a local store, so that memory does not
grow with the log; the comparison goes partition by partition too. Its only write is its own exchange
topic, deleted at the end.

The running workers are given time to fold what the logs hold (their consumer group's committed
offsets reach the ends the fold read to) before a partition is compared; a person whose events arrive
while the verification runs is reported as not judged rather than as a difference.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from aiokafka import TopicPartition

from projections.contacts import EMPTY_CONTACTS, Contacts
from projections.differences import contacts_differences, empty_list, list_differences
from projections.opt_outs import PersonOptOuts
from schemas.codec import decode_opt_out_list, decode_person_event
from schemas.errors import DecodeError, OptOutsError
from schemas.events import OptOutList, OptOutOverridden
from streams.engine.log_reader import read, snapshot
from streams.engine.native_heap import fix_mmap_threshold
from streams.engine.tables import stored
from streams.engine.topics import (
    CONTACTS_TABLE,
    MESSAGING_EVENTS,
    OPT_OUTS,
    OPT_OUTS_TABLE,
    PERSON_EVENTS,
    changelog_topic,
)
from streams.engine.versions import decode_version, encode_version, supersedes, version_key, version_of
from streams.pipeline.generations import Generation, current_generation
from streams.pipeline.person_history import is_history_key
from streams.progress import say
from streams.rebuild.contacts_partition import rebuild_contacts
from streams.rebuild.context import RebuildContext
from streams.rebuild.exchange import create_exchange, delete_exchange, exchange_topic
from streams.rebuild.group_offsets import committed_offsets
from streams.rebuild.lists_partition import FACT, LOGGED, rebuild_lists
from streams.rebuild.local_store import LocalStore
from streams.rebuild.part import peak_rss_mb
from streams.rebuild.parts import Part
from streams.rebuild.processes import run_parts
from streams.rebuild.shipper import Shipper, partition_count
from streams.rebuild.tally import Tally
from streams.settings import Settings
from streams.web.api_client import Api

EXIT_AGREE, EXIT_DIFFERENT, EXIT_UNREACHABLE = 0, 1, 3
Found = OptOutList | str  # a list, or why there is no list to compare
_CONCURRENT_REQUESTS = 16
_API_CHUNK = 500  # persons asked for at a time
_UNDERIVED_KEPT = 100  # ids of underived events named in the result (all are counted)


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
    # Derived facts the person log lacks that a later fact in the log about their entries decides.
    superseded_facts: int = 0
    # Ids of events in the person log written by stage 1 that the fold of the messaging log does not
    # derive as they are (a keyword setting changed since, or a worker folded against a state the
    # log does not give): the person log itself is then not the fold of the messaging log.
    underived: list[str] = field(default_factory=list)
    underived_count: int = 0
    behind: int = 0  # events the running workers had not folded when the waits ended
    # topic -> likely cause -> records on another partition than murmur2 of their key: not folded
    # where they are (the workers forward them and fold the copy, and so does the offline fold)
    misplaced: dict[str, Counter[str]] = field(default_factory=dict)
    # phone -> how its contacts in the stage 1 store (changelog) differ from the log's; compared on
    # request only (`contacts=True`): phones that change while verifying are not told apart yet.
    contacts_differences: dict[str, list[str]] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation.number,
            "persons": self.persons,
            "sources": self.sources,
            "differences": self.differences,
            "not_judged": sorted(self.not_judged),
            "pending_facts": self.pending_facts,
            "superseded_facts": self.superseded_facts,
            "underived": self.underived,
            "underived_count": self.underived_count,
            "behind": self.behind,
            "misplaced": {topic: dict(causes) for topic, causes in self.misplaced.items()},
            "contacts_differences": self.contacts_differences,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }

    def merge(self, data: Mapping[str, Any]) -> None:
        """Add a part's result (`to_json` of another process's)."""
        self.persons += data["persons"]
        self.sources = self.sources or list(data["sources"])
        self.differences.update(data["differences"])
        self.not_judged |= set(data["not_judged"])
        self.pending_facts += data["pending_facts"]
        self.superseded_facts += data["superseded_facts"]
        self.underived = [*self.underived, *data["underived"]][:_UNDERIVED_KEPT]
        self.underived_count += data["underived_count"]
        self.behind += data["behind"]
        for topic, causes in data["misplaced"].items():
            self.misplaced.setdefault(topic, Counter()).update(causes)
        self.contacts_differences.update(data["contacts_differences"])
        self.peak_rss_mb = max(self.peak_rss_mb, data["peak_rss_mb"])


@dataclass(frozen=True)
class Scope:
    """Which persons are compared: all, or `only` these; of them, a `sample` (a fraction, chosen by a
    hash of the id, the same on every run)."""

    only: frozenset[str] | None = None
    sample: float | None = None

    def __call__(self, person: str) -> bool:
        if self.only is not None and person not in self.only:
            return False
        return self.sample is None or zlib.crc32(person.encode()) < self.sample * 2**32


async def verify(
    settings: Settings,
    *,
    api: Api | str | None,
    wait: float,
    only: set[str] | None = None,
    contacts: bool = False,
    sample: float | None = None,
    processes: int = 1,
) -> Verification:
    """Compare every person's list (those in `only`; a `sample` of them) with the log's, on `processes`
    processes. With `contacts`, every phone's contacts in the stage 1 store too (for a log that is
    not written to)."""
    if not settings.brokers:
        raise VerifyError("OPTOUTS_KAFKA_BROKERS is not set: point it at the brokers the workers use")
    running = await current_generation(settings)
    run = uuid.uuid4().hex[:10]
    say(f"verify: against {running}")
    exchange = _exchange(running, run)
    await create_exchange(settings, exchange, await partition_count(settings.brokers, MESSAGING_EVENTS))
    try:
        if processes == 1:
            client = None if api is None else api if isinstance(api, Api) else Api.of(settings, api)
            return await verify_part(
                settings,
                run,
                Part(),
                api=client,
                wait=wait,
                scope=Scope(_frozen(only), sample),
                contacts=contacts,
            )
        command = ["verify", "--run", run, "--wait", str(wait)]
        command += ["--no-api"] if api is None else ["--api", api if isinstance(api, str) else str(api.base)]
        command += ["--contacts"] if contacts else []
        command += [] if sample is None else ["--sample", str(sample)]
        command += sorted(only or ())
        result = Verification(running)
        for part in await run_parts(settings, command, processes):
            result.merge(part)
        return result
    finally:
        await delete_exchange(settings, exchange)
        shutil.rmtree(_work_dir(settings, run), ignore_errors=True)


def _frozen(only: Iterable[str] | None) -> frozenset[str] | None:
    return None if only is None else frozenset(only)


def _exchange(running: Generation, run: str) -> str:
    return exchange_topic(f"{running.app_id}-verify-{run}")


def _work_dir(settings: Settings, run: str) -> Path:
    return settings.data_dir / "rebuild" / f"verify-{run}"


async def verify_part(
    settings: Settings,
    run: str,
    part: Part,
    *,
    api: Api | None,
    wait: float,
    scope: Scope = Scope(),
    contacts: bool = False,
) -> Verification:
    """This process's part of verification `run`: the partitions of `part`, folded and compared."""
    fix_mmap_threshold()
    running = await current_generation(settings)
    result = Verification(running)
    shipper = Shipper(settings.brokers)
    await shipper.start()
    try:
        partitions = await shipper.partitions(MESSAGING_EVENTS)
        mine = part.partitions(partitions)

        async def until_folded(ends: dict[int, int]) -> None:
            # What the workers derive from the messaging log must be in the person log before it is read.
            folded = {TopicPartition(MESSAGING_EVENTS, p): end for p, end in ends.items()}
            result.behind = max(result.behind, await _until_folded(settings, running, folded, wait))

        ctx = RebuildContext(
            settings,
            _work_dir(settings, run),
            _exchange(running, run),
            shipper,
            partitions,
            before_person_log=until_folded,
            wanted=scope,
        )
        stage1, stage2 = Tally(), Tally()
        for partition in mine:
            stage1 += await rebuild_contacts(ctx, partition)
            if contacts:
                result.contacts_differences.update(await _contacts_differences(ctx, running, partition))
        api_source = None if api is None else f"API ({api.base})"
        store_topic = changelog_topic(running.settings(settings), OPT_OUTS_TABLE)
        result.sources = [f"store ({store_topic})", OPT_OUTS, *([api_source] if api_source else [])]
        for partition in mine:
            expected, tally = await rebuild_lists(ctx, partition)
            try:
                stage2 += tally
                end = int(expected.meta("person_next", 0))
                result.behind += await _until_folded(
                    settings, running, {TopicPartition(PERSON_EVENTS, partition): end}, wait
                )
                _underived(expected, result)
                await _compare_partition(ctx, running, partition, expected, scope, api, result)
                if result.differences:
                    changed = await _persons_since(settings, partition, end)
                    for person in changed & set(result.differences):
                        result.not_judged.add(person)
                        del result.differences[person]
            finally:
                expected.close()
    finally:
        await shipper.stop()
    result.pending_facts, result.superseded_facts = stage2.pending, stage2.superseded
    result.misplaced = {
        topic: tally.misplaced
        for topic, tally in ((MESSAGING_EVENTS, stage1), (PERSON_EVENTS, stage2))
        if tally.misplaced
    }
    result.peak_rss_mb = peak_rss_mb()
    return result


def _underived(store: LocalStore, result: Verification) -> None:
    """The stage 1 events of the person log that are not among the derived facts, or differ from
    the fact derived under their id."""
    for key, value in store.scan(LOGGED):
        fact = store.get(FACT + key[1:])
        if fact == value:
            continue
        event = decode_person_event(value)
        if isinstance(event, OptOutOverridden):
            continue
        if fact is None or decode_person_event(fact) != event:
            result.underived_count += 1
            if len(result.underived) < _UNDERIVED_KEPT:
                result.underived.append(event.event_id)


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


async def _latest(settings: Settings, topic: str, partition: int, into: LocalStore) -> None:
    """The latest value of each key of a compacted topic's partition, into a local store (a key
    whose latest value is a tombstone is not there): of values with versions, the highest version's
    (streams.engine.versions), as a worker's recovery keeps them; kept next to each value."""
    tp = TopicPartition(topic, partition)
    spans = await snapshot(settings.brokers, [topic])
    async for records in read(settings.brokers, {tp: spans[tp]}):
        for record in records:
            if record.key is None or record.key.startswith(b"\x00"):  # no entity's: a marker
                continue
            incoming = version_of(record.headers)
            if not supersedes(incoming, decode_version(into.get(version_key(record.key)))):
                continue  # a late write of an older fold (a zombie's)
            if incoming is None:
                into.delete(version_key(record.key))
            else:
                into.put(version_key(record.key), encode_version(incoming))
            if record.value is None:
                into.delete(record.key)
            else:
                into.put(record.key, record.value)
        into.commit()


async def _compare_partition(
    ctx: RebuildContext,
    running: Generation,
    partition: int,
    expected: LocalStore,
    scope: Scope,
    api: Api | None,
    result: Verification,
) -> None:
    settings = ctx.settings
    store_topic = changelog_topic(running.settings(settings), OPT_OUTS_TABLE)
    found_store = LocalStore(ctx.store_path("found-store", partition))
    found_published = LocalStore(ctx.store_path("found-published", partition))
    try:
        await _latest(settings, store_topic, partition, found_store)
        await _latest(settings, OPT_OUTS, partition, found_published)
        sources: list[tuple[str, Callable[[str], Found | None]]] = [
            (f"store ({store_topic})", lambda person: _stored_list(person, found_store.get(person.encode()))),
            (OPT_OUTS, lambda person: _published_list(found_published.get(person.encode()))),
        ]
        for persons in _chunks(_persons(scope, expected, found_store, found_published), _API_CHUNK):
            from_api: dict[str, Found] = {} if api is None else await _api_lists(api, persons)
            for person in persons:
                value = expected.get(person.encode())
                want = (
                    PersonOptOuts.from_json(person, stored(value)).as_list() if value else empty_list(person)
                )
                found = [(name, have(person)) for name, have in sources]
                if api is not None:
                    found.append((f"API ({api.base})", from_api.get(person)))
                for name, have in found:
                    have = have or empty_list(person)
                    differences = [have] if isinstance(have, str) else list_differences(want, have)
                    for difference in differences:
                        result.differences.setdefault(person, []).append(f"{name} {difference}")
                result.persons += 1
    finally:
        found_store.close()
        found_published.close()


def _persons(scope: Scope, *stores: LocalStore) -> Iterator[str]:
    """Every person of any of `stores` in `scope`, once."""
    for index, store in enumerate(stores):
        for key, _ in store.entities():
            if is_history_key(key) or any(earlier.get(key) is not None for earlier in stores[:index]):
                continue
            person = key.decode(errors="replace")
            if scope(person):
                yield person


def _chunks(persons: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for person in persons:
        chunk.append(person)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _stored_list(person: str, value: bytes | None) -> Found | None:
    if value is None:
        return None
    try:
        return PersonOptOuts.from_json(person, json.loads(value)).as_list()
    except (ValueError, KeyError, TypeError) as exc:  # a value the service did not write
        return f"holds a value that is not a stored list: {exc}"


def _published_list(value: bytes | None) -> Found | None:
    if value is None:
        return None
    try:
        return decode_opt_out_list(value)
    except DecodeError as exc:  # a value the service did not write
        return f"holds a value that is not a list: {exc}"


async def _contacts_differences(
    ctx: RebuildContext, running: Generation, partition: int
) -> dict[str, list[str]]:
    """How each phone's contacts, as the stage 1 table's changelog holds them (what a worker
    recovers from), differ from the fold of the messaging log."""
    store = changelog_topic(running.settings(ctx.settings), CONTACTS_TABLE)
    expected = LocalStore(ctx.store_path("contacts", partition))
    found = LocalStore(ctx.store_path("found-contacts", partition))
    differences: dict[str, list[str]] = {}
    try:
        await _latest(ctx.settings, store, partition, found)
        for key, _ in [*expected.entities(), *found.entities()]:
            phone = key.decode(errors="replace")
            if phone in differences:
                continue
            try:
                have = _contacts(found.get(key))
            except (ValueError, KeyError, TypeError) as exc:  # a value the service did not write
                differences[phone] = [f"store ({store}) holds a value that is not stored contacts: {exc}"]
                continue
            differing = contacts_differences(_contacts(expected.get(key)), have)
            if differing:
                differences[phone] = [f"store ({store}) {difference}" for difference in differing]
    finally:
        expected.close()
        found.close()
    return differences


def _contacts(value: bytes | None) -> Contacts:
    return Contacts.from_json(json.loads(value)) if value else EMPTY_CONTACTS


async def _api_lists(api: Api, persons: list[str]) -> dict[str, Found]:
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


async def _persons_since(settings: Settings, partition: int, since: int) -> set[str]:
    """The persons of the person log's events in `partition` from offset `since` to its end now."""
    tp = TopicPartition(PERSON_EVENTS, partition)
    spans = await snapshot(settings.brokers, [PERSON_EVENTS], since={tp: since})
    persons: set[str] = set()
    async for records in read(settings.brokers, {tp: spans[tp]}):
        for record in records:
            try:
                persons.add(decode_person_event(record.value).person_id)
            except DecodeError:
                continue
    return persons


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
            f"note: {result.underived_count:,} events in {PERSON_EVENTS} are not what the fold of"
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
