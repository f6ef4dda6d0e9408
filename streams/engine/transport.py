"""Faust's Kafka transport with a shorter fetch wait and fetched batches for the input topics.

Faust builds its consumer with `fetch_max_wait_ms=1500` and no setting to change it
(faust/transport/drivers/aiokafka.py). A broker that does not end a long poll when data arrives on
another of the partitions fetched (Tansu, seen here: a record on one of four partitions waited
~550 ms for the poll to time out) then adds that wait to every hop of the pipeline. On Kafka a
shorter wait only adds an idle fetch now and then, so it is a setting (OPTOUTS_FETCH_MAX_WAIT).

The consumer hands the records of the app's batched topics over one event per partition per fetch
(streams.engine.batches explains why); every other topic (changelogs, the control topic) goes through
Faust's own per-record path unchanged.

Decision records: docs/decisions/0004-commit-bookkeeping-for-batched-partitions.md,
docs/decisions/0010-fetch-wait-setting.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, ConsumerMessage, Message

from streams.engine import faust_hooks
from streams.engine.batches import Fetched, batching


class PromptConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads it when the consumer starts, which is after this.
        faust_hooks.set_fetch_max_wait(consumer, batching(self.app).fetch_max_wait)
        # A partition's batch is bounded by `consumer_max_fetch_size`, but brokers that ignore the
        # per-partition limit (Tansu) filled one partition's batch up to aiokafka's 50 MiB per fetch:
        # 25,000 records held at once, where a batch was meant to be about 1,000. The same bound on
        # the whole fetch holds on every broker (a fetch is at least one record batch, as Kafka's).
        faust_hooks.set_fetch_max_bytes(consumer, self.app.conf.consumer_max_fetch_size)
        return consumer

    async def seek_back(self, tp: TP, offset: int) -> None:
        """`seek_back` in the consumer's own thread, where Faust's seeks run too."""
        await self.call_thread(seek_back, self._ensure_consumer(), tp, offset)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        # Faust's, which is aiokafka's, with the input partitions it leaves alone sought too. (Typed
        # as Faust types it; aiokafka's values are None for a partition with nothing committed.)
        sought: Mapping[TP, int] = await self.call_thread(
            seek_to_committed, self._ensure_consumer(), batching(self.app).batched_topics
        )
        return sought


async def seek_to_committed(consumer: aiokafka.AIOKafkaConsumer, batched: set[str]) -> dict[Any, int | None]:
    """Seek every assigned partition to its committed offset, and each partition of a `batched` topic
    with nothing committed to its beginning; the committed offsets.

    aiokafka seeks only the partitions whose committed offset is above 0, and leaves the others where
    the last fetch left them: past batches a rebalance then dropped from an agent's queue unfolded. A
    worker paused past its session timeout, whose every commit was refused, left a partition with no
    commit at all, and its next assignment folded on after the dropped batches (the chaos soak:
    sms-person-events[1] 61-120 never folded). The changelogs are the recovery's to seek."""
    committed: dict[Any, int | None] = await consumer.seek_to_committed()
    uncommitted = not_sought(committed, batched)
    if uncommitted:
        await consumer.seek_to_beginning(*uncommitted)
    return committed


async def seek_back(consumer: aiokafka.AIOKafkaConsumer, tp: TP, offset: int) -> None:
    """Move `tp`'s position back to `offset`, never forward: a recovery may have just sought the
    partition further back (a standby to what its store holds), and a plain seek to `offset` after it
    skipped the records between (the chaos soak: a standby read on from 613 with its store at 487)."""
    partition = aiokafka.TopicPartition(tp.topic, tp.partition)
    if partition not in consumer.assignment():
        return  # not assigned any more: the rebalance seeks it
    if await consumer.position(partition) > offset:
        consumer.seek(partition, offset)


class PromptConsumer(driver.Consumer):
    def _new_consumer_thread(self) -> PromptConsumerThread:
        return PromptConsumerThread(self, loop=self.loop, beacon=self.beacon)

    # A batched partition's records are folded in order, one batch after the other, by the one
    # agent that reads its topic, and the agent says when a batch is folded (`batch_folded`): every
    # offset up to its last was folded then. So its commit is the last folded offset + 1, counted
    # only for batches fetched in the current consumer generation.
    #
    # Not Faust's acks: its search for a run of consecutive acked offsets, with the offsets between
    # two messages marked as gaps, left a partition's commits stuck short of its end (the crash
    # soak). And Faust acks more than folded batches: a batch fetched before a rebalance is acked
    # when its agent is done with it after the rebalance, in the next generation, and that ack
    # counted for the new assignment (the soak: a partition committed from 11 to 32 with the store
    # folded up to 10; another worker started there). Faust's compiled stream iterator (faust._cython)
    # writes its acks into the consumer's bookkeeping itself, past any `ack` of this class: a check
    # there held only where Faust happened to call it.
    def batch_folded(self, batch: Fetched) -> None:
        generation = self.app.consumer_generation_id
        if batch.generation is not None and batch.generation != generation:
            return  # fetched before a rebalance: fetched again from the committed offset
        tp = TP(batch.topic, batch.partition)
        folded = _folded_offsets(self)
        before = folded.get(tp)
        last = batch.records[-1].offset
        if before is not None and before[0] == generation:
            last = max(last, before[1])
        folded[tp] = (generation, last)
        faust_hooks.acked_offsets(self, tp)  # Faust commits the partitions it holds acks for

    def _new_offset(self, tp: TP) -> int | None:
        if tp.topic not in batching(self.app).batched_topics:
            return super()._new_offset(tp)
        faust_hooks.forget_acked(self, tp)
        folded = _folded_offsets(self).pop(tp, None)
        if folded is None or folded[0] != self.app.consumer_generation_id:
            return None  # folded before the last rebalance: what was fetched since is folded again
        return folded[1] + 1

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Faust's drain marks the offsets between two messages as a gap; a batched partition's
        # messages are batches, committed by their last offset (above).
        if tp.topic not in batching(self.app).batched_topics:
            await super()._add_gap(tp, offset_from, offset_to)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        # Faust's Consumer.getmany, with the batched topics' records yielded as one message per
        # partition. The checks are Faust's: records fetched while the flow is stopped (a
        # rebalance) or from an older generation are dropped, the consumer seeks back to the
        # committed offsets and fetches them again.
        records, active_partitions = await faust_hooks.next_records(self, timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            try:
                await self.perform_seek()
            except Exception as exc:
                self.log.warning(f"exception performing seek when flow not active {exc}")
            return
        batched: set[str] = batching(self.app).batched_topics

        def wanted(tp: TP) -> bool:
            if not self.flow_active or self.app.consumer_generation_id != generation_id:
                return False
            if (
                active_partitions is None
                or tp in active_partitions
                or tp in faust_hooks.buffered_partitions(self)
            ):
                self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                return True
            return False

        # A record not wanted any more is dropped, as Faust drops it, but the consumer's position had
        # moved past it: Faust pauses a partition (the recovery of a changelog partition done, a
        # standby's turn over) while its fetched records wait here, and the next fetch after it is
        # resumed began after them. A standby or a recovery then applied the records after the gap
        # and advanced its persisted offset over it: stores silently lacked values (the chaos
        # soak's restarts on empty data dirs). The position goes back to the first record dropped,
        # so that it is fetched again when wanted (docs/decisions/0013-no-fetched-record-dropped-past.md).
        rewound: set[TP] = set()

        async def rewind(tp: TP, offset: int) -> None:
            rewound.add(tp)
            with contextlib.suppress(Exception):  # not assigned any more: the rebalance seeks it
                await faust_hooks.consumer_thread(self).seek_back(tp, offset)

        singles = {tp: each for tp, each in records.items() if tp.topic not in batched}
        for tp, record in self.scheduler.iterate(singles):
            if tp in rewound:
                continue
            if wanted(tp):
                yield tp, faust_hooks.record_message(self, tp, record)
            else:
                await rewind(tp, record.offset)
        for tp, each in records.items():
            if tp.topic in batched and each:
                if wanted(tp):
                    yield tp, self._batch_message(tp, each)
                else:
                    await rewind(tp, each[0].offset)

    def _batch_message(self, tp: TP, records: Sequence[Any]) -> ConsumerMessage:
        last = records[-1]
        return ConsumerMessage(
            tp.topic,
            tp.partition,
            last.offset,
            # Faust types these for a record's own message: a time and bytes. A batch's value is
            # the `Fetched` records (decoded by BatchedTopic), and a record may have no time.
            None if last.timestamp is None else last.timestamp / 1000.0,  # type: ignore[arg-type]
            last.timestamp_type,
            [],
            None,
            Fetched(tp.topic, tp.partition, records, self.app.consumer_generation_id),  # type: ignore[arg-type]
            None,
            0,
            sum(record.serialized_value_size for record in records),
            tp,
            generation_id=self.app.consumer_generation_id,
        )


def not_sought(committed: Mapping[Any, int | None], batched: set[str]) -> list[Any]:
    """The input partitions `seek_to_committed` left where they were: nothing (or 0) committed."""
    return [tp for tp, offset in committed.items() if tp.topic in batched and not offset]


def _folded_offsets(consumer: PromptConsumer) -> dict[TP, tuple[int, int]]:
    """partition -> (consumer generation, the last offset folded in it since the partition's last
    commit), kept on the consumer."""
    folded: dict[TP, tuple[int, int]] | None = consumer.__dict__.get("_folded_offsets")
    if folded is None:
        folded = consumer.__dict__["_folded_offsets"] = {}
    return folded


class PromptTransport(driver.Transport):
    Consumer = PromptConsumer
