"""Stage 1 of a rebuild, one phone partition: `sms-messaging-events` from its start to the end it had
when this partition was first taken, folded by the agents' own batch rule into a local store; every fact
derived goes to the exchange; then the end markers, and (a replay) the contacts to the new generation's
changelog and its consumer group's offset. Resumed from the last commit when taken again."""

from __future__ import annotations

from aiokafka import TopicPartition

from streams.engine.log_reader import Span, read, snapshot
from streams.engine.topics import CONTACTS_TABLE, MESSAGING_EVENTS, changelog_topic
from streams.pipeline.stages import resolve_records, stored_contacts
from streams.progress import Progress
from streams.rebuild.context import CHECKPOINT_RECORDS, RebuildContext
from streams.rebuild.exchange import send_end
from streams.rebuild.group_offsets import commit_offsets
from streams.rebuild.local_store import LocalStore
from streams.rebuild.offline_unit import OfflineForward, OfflineUnit
from streams.rebuild.tally import Tally


async def rebuild_contacts(ctx: RebuildContext, partition: int) -> Tally:
    """Fold phone partition `partition`; what it counted (all of it, a resumed run's earlier part too)."""
    store = LocalStore(ctx.store_path("contacts", partition))
    try:
        tally = Tally.from_json(store.meta("tally"))
        if store.meta("done"):
            return tally
        tp = TopicPartition(MESSAGING_EVENTS, partition)
        end = store.meta("end")
        if end is None:  # first taken: the log's end now is where this rebuild stops
            end = (await snapshot(ctx.settings.brokers, [MESSAGING_EVENTS]))[tp].end
            store.set_meta("end", end)
            store.commit()
        await _fold(ctx, store, tp, end, tally)
        await send_end(ctx.shipper, ctx.exchange, ctx.partitions, partition, end)
        tally.phones = 0
        for key, value in store.entities():
            tally.phones += 1
            if ctx.target is not None:  # as the agents write a table value, on the phone's partition
                await ctx.shipper.send(changelog_topic(ctx.target, CONTACTS_TABLE), key, value, partition)
        await ctx.shipper.drain()
        if ctx.target is not None:
            await commit_offsets(ctx.settings, ctx.target.app_id, {tp: end})
        store.set_meta("done", True)
        store.set_meta("tally", tally.to_json())
        return tally
    finally:
        store.close()


async def _fold(ctx: RebuildContext, store: LocalStore, tp: TopicPartition, end: int, tally: Tally) -> None:
    start = store.meta("next", 0)
    spans = await snapshot(ctx.settings.brokers, [MESSAGING_EVENTS], since={tp: start})
    span = Span(spans[tp].start, end)
    progress = Progress(f"stage 1, {tp.topic}[{tp.partition}]", span.size)

    async def to_exchange(topic: str, key: bytes | None, value: bytes) -> None:
        await ctx.shipper.send(ctx.exchange, key, value)  # the derived person events, keyed by person

    unit = OfflineUnit(store, to_exchange, tally)
    forward = OfflineForward(ctx.partitions, tally, ctx.shipper, ctx.republish_from)
    region = ctx.settings.default_region
    since_commit = 0
    decoded = stored_contacts()
    async for records in read(ctx.settings.brokers, {tp: span}):
        await resolve_records(
            unit,
            records,
            keywords=ctx.settings.keywords,
            region=region,
            max_ahead=ctx.max_ahead,
            forward=forward,
            decoded=decoded,
        )
        tally.messaging_events += len(records)
        store.set_meta("next", records[-1].offset + 1)
        progress.advance(len(records))
        since_commit += len(records)
        if since_commit >= CHECKPOINT_RECORDS:
            await _commit(ctx, store, tally)
            since_commit = 0
    await _commit(ctx, store, tally)
    progress.finish()


async def _commit(ctx: RebuildContext, store: LocalStore, tally: Tally) -> None:
    # What was derived is acknowledged before the store records it as folded: a kill in between
    # folds the batch again and sends its facts twice, never none.
    await ctx.shipper.drain()
    store.set_meta("tally", tally.to_json())
    store.commit()
