"""`optouts replay`: rebuild the contacts and every person's list from the logs, from offset 0, into the
store of a new generation, then switch the workers to it (`streams.pipeline.generations`). The running
generation answers until the switch.

The rebuild runs as the workers run: partition by partition, on one process or several (`--processes N`
here, `--part K/N` on other machines), each partition's state in a local RocksDB store of its own, so that
memory does not grow with the log (streams.rebuild.part):

1. Stage 1, per phone partition: `sms-messaging-events` to the end it has when the partition is first
   taken, folded by the agents' own rule; the facts it derives cross to the persons' partitions through
   the replay's exchange topic (streams.rebuild.exchange).
2. Stage 2, per person partition: the derived facts the person log lacks (a changed fold: a new custom
   keyword applies to the past) are appended to it unless a later fact decides them (projections.rebuild); the
   whole person log is folded, those facts and whatever arrived meanwhile included.
3. Every state goes to the new generation's changelogs, exactly as the agents write table values, on its
   partition; the new consumer group's offsets are committed where the folds stopped, so its workers go
   on from there; every person's list is published to `sms-opt-outs`. Then the switch.

A replay killed part-way is resumed by running it again (on the same machine: the stores are in
OPTOUTS_DATA_DIR/rebuild): each partition goes on from its last commit, and no fact is appended twice.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field

from schemas.errors import OptOutsError
from streams.engine.topics import (
    CONTACTS_TABLE,
    DEAD_LETTERS,
    MESSAGING_EVENTS,
    OPT_OUTS_TABLE,
    PERSON_EVENTS,
    changelog_topic,
    create_topics,
)
from streams.pipeline.generations import Generation, built_generations, current_generation, switch_generation
from streams.progress import say
from streams.rebuild.exchange import create_exchange, delete_exchange, exchange_topic
from streams.rebuild.part import PartSummary, peak_rss_mb, replay_part, replay_work_dir
from streams.rebuild.parts import Part
from streams.rebuild.processes import run_parts
from streams.rebuild.shipper import partition_count
from streams.rebuild.tally import Tally
from streams.settings import Settings

_PLAN = "plan.json"


class ReplayError(OptOutsError):
    """A replay that could not start or finish; nothing was switched."""


@dataclass
class ReplaySummary:
    generation: int
    app_id: str
    processes: int = 1
    resumed: bool = False
    messaging_events: int = 0
    person_events: int = 0
    appended: int = 0  # facts of the fold the person log lacked
    superseded: int = 0  # such facts a later fact about their entry decides: not appended
    skipped: dict[str, int] = field(default_factory=dict)
    # Not folded where they are, as the workers forward them (streams.pipeline.forwarding): their copies are.
    miskeyed: int = 0  # keyed by another form of their entity
    misplaced: dict[str, int] = field(default_factory=dict)  # on another partition: likely cause -> how many
    republished: int = 0  # of those, the ones the running generation had not forwarded yet
    phones: int = 0
    persons: int = 0
    persons_listed: int = 0
    entries: int = 0
    seconds: float = 0.0
    events_per_s: float = 0.0
    peak_rss_mb: float = 0.0  # the largest of the processes'
    parts: list[dict[str, object]] = field(default_factory=list)
    switched: bool = False

    def count(self, tally: Tally) -> None:
        self.messaging_events, self.person_events = tally.messaging_events, tally.person_events
        self.appended, self.superseded = tally.appended, tally.superseded
        self.skipped, self.miskeyed = dict(tally.skipped), tally.miskeyed
        self.misplaced, self.republished = dict(tally.misplaced), tally.republished
        self.phones, self.persons = tally.phones, tally.persons
        self.persons_listed, self.entries = tally.persons_listed, tally.entries

    def lines(self) -> list[str]:
        skipped = ", ".join(f"{count:,} {why}" for why, count in self.skipped.items()) or "none"
        misplaced = "; ".join(f"{count:,} {cause}" for cause, count in self.misplaced.items()) or "none"
        return [
            f"replayed into generation {self.generation} ({self.app_id}) in {self.seconds:.1f} s"
            f" ({self.events_per_s:,.0f} events/s, {self.processes} process(es),"
            f" peak RSS {self.peak_rss_mb:,.0f} MB{', resumed' if self.resumed else ''})",
            f"  read           {self.messaging_events:,} messaging events,"
            f" {self.person_events:,} person events",
            f"  skipped        {skipped} (the workers keep them in {DEAD_LETTERS})",
            f"  forwarded      {self.miskeyed:,} mis-keyed, {sum(self.misplaced.values()):,} misplaced"
            f" ({misplaced}): their copies were folded; {self.republished:,} published again",
            f"  new facts      {self.appended:,} appended to {PERSON_EVENTS}, {self.superseded:,} superseded"
            " (a later fact about their entries is in the log)",
            f"  store          {self.phones:,} phones, {self.persons:,} persons"
            f" ({self.persons_listed:,} with opt-outs, {self.entries:,} entries)",
            "  switched       "
            + (
                "yes: the workers restart into it and answer from it once recovered"
                if self.switched
                else f"no: `optouts switch {self.generation}` makes the workers use it"
            ),
        ]


async def replay(settings: Settings, *, switch: bool = True, processes: int = 1) -> ReplaySummary:
    """Rebuild into a new generation (or go on with the one a killed replay left on this machine)
    with `processes` processes, then switch to it."""
    if not settings.brokers:
        raise ReplayError("OPTOUTS_KAFKA_BROKERS is not set: point it at the brokers the workers use")
    started = time.monotonic()
    await create_topics(settings)
    running = await current_generation(settings)
    target = await _unfinished(settings, running)
    resumed = target is not None
    if target is None:
        target = await _new_generation(settings, running)
        work = replay_work_dir(settings, target)
        work.mkdir(parents=True, exist_ok=True)
        (work / _PLAN).write_text(json.dumps({"generation": target.number}))
        say(f"replay: {running} answers until the switch; building {target}")
    else:
        say(f"replay: going on with the replay into {target} that was stopped part-way ({running} answers)")
    await create_exchange(
        settings, exchange_topic(target.app_id), await partition_count(settings.brokers, MESSAGING_EVENTS)
    )
    if processes == 1:
        parts = [await replay_part(settings, running, target, Part())]
    else:
        found = await run_parts(settings, ["replay", "--generation", str(target.number)], processes)
        parts = [PartSummary.from_json(part) for part in found]
    summary = ReplaySummary(target.number, target.app_id, processes=processes, resumed=resumed)
    summary.count(sum((part.tally for part in parts), Tally()))
    summary.parts = [part.to_json() for part in parts]
    summary.peak_rss_mb = round(max(peak_rss_mb(), *(part.peak_rss_mb for part in parts)), 1)
    if switch:
        await switch_generation(settings, target, by="optouts replay")
        summary.switched = True
    await delete_exchange(settings, exchange_topic(target.app_id))
    shutil.rmtree(replay_work_dir(settings, target), ignore_errors=True)
    summary.seconds = time.monotonic() - started
    summary.events_per_s = (summary.messaging_events + summary.person_events) / max(summary.seconds, 1e-9)
    return summary


async def replay_part_of(settings: Settings, generation: int, part: Part) -> PartSummary:
    """`optouts replay --generation G --part K/N`: this machine's part of a replay into generation G,
    started by `optouts replay --processes` here or by hand on several machines (then
    `optouts switch G` once every part is done)."""
    if not settings.brokers:
        raise ReplayError("OPTOUTS_KAFKA_BROKERS is not set: point it at the brokers the workers use")
    running = await current_generation(settings)
    target = Generation(settings.app_id, generation)
    # Newer than the running one and never switched to: a generation a replay builds.
    if generation <= running.number or generation not in await built_generations(settings):
        raise ReplayError(f"{target} is not a generation being built (`optouts replay --prepare` starts one)")
    await create_exchange(
        settings, exchange_topic(target.app_id), await partition_count(settings.brokers, MESSAGING_EVENTS)
    )
    return await replay_part(settings, running, target, part)


async def prepare(settings: Settings) -> Generation:
    """`optouts replay --prepare`: create a new generation and its exchange for parts run by hand on
    several machines (`optouts replay --generation G --part K/N` each), then `optouts switch G`."""
    if not settings.brokers:
        raise ReplayError("OPTOUTS_KAFKA_BROKERS is not set: point it at the brokers the workers use")
    await create_topics(settings)
    target = await _new_generation(settings, await current_generation(settings))
    await create_exchange(
        settings, exchange_topic(target.app_id), await partition_count(settings.brokers, MESSAGING_EVENTS)
    )
    return target


async def _unfinished(settings: Settings, running: Generation) -> Generation | None:
    """The generation a replay on this machine was building when it was stopped, if it is still one
    to build (not switched to since, its topics there)."""
    root = settings.data_dir / "rebuild"
    built = await built_generations(settings)
    found: Generation | None = None
    for plan in sorted(root.glob(f"{settings.app_id}-g*/{_PLAN}")):
        number = int(json.loads(plan.read_text())["generation"])
        if number != running.number and number in built and (found is None or number > found.number):
            found = Generation(settings.app_id, number)
        else:
            shutil.rmtree(plan.parent, ignore_errors=True)  # finished, or of another cluster
    return found


async def _new_generation(settings: Settings, running: Generation) -> Generation:
    """The next generation number after every one built, not only the running one: an abandoned
    replay's topics are never written into again."""
    target = Generation(settings.app_id, max(await built_generations(settings) | {running.number}) + 1)
    created = await create_topics(target.settings(settings))
    wanted = {changelog_topic(target.settings(settings), table) for table in (CONTACTS_TABLE, OPT_OUTS_TABLE)}
    if not wanted <= set(created):
        raise ReplayError(f"the topics of {target} exist already: is another replay running?")
    return target


def print_summary(summary: ReplaySummary, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(summary)), flush=True)
    else:
        print("\n".join(summary.lines()), flush=True)
