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
from collections.abc import AsyncIterator, Sequence
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
        return consumer


class PromptConsumer(driver.Consumer):
    def _new_consumer_thread(self) -> PromptConsumerThread:
        return PromptConsumerThread(self, loop=self.loop, beacon=self.beacon)

    # A batched partition's records are folded in order, one batch after the other, by the one
    # agent that reads its topic, and each batch is acked as one message carrying its last offset:
    # once acked, every offset up to it was folded. So its commit is the last acked offset + 1,
    # rather than Faust's search for a run of consecutive acked offsets with the offsets between
    # them marked as gaps, which left a partition's commits stuck short of its end in the crash
    # soak, the worker idle and every event folded.
    def _new_offset(self, tp: TP) -> int | None:
        if tp.topic not in batching(self.app).batched_topics:
            return super()._new_offset(tp)
        acked = faust_hooks.acked_offsets(self, tp)
        if not acked:
            return None
        offset = max(acked) + 1
        faust_hooks.forget_acked(self, tp)
        return offset

    def ack(self, message: Message) -> bool:
        # A batch fetched before a rebalance is still acked when its agent is done with it, or when
        # Faust discards it, after the rebalance cleared the partition's acked offsets: its offset
        # then counted for the new assignment, and the next commit could pass records this worker
        # never folded since (the chaos soak: a partition committed from 11 to 32 with the store
        # folded up to 10; another worker started there). A batch of an older generation is not
        # counted; its records are fetched again from the committed offset.
        acked: bool = super().ack(message)  # done with, whatever its generation: nothing waits on it
        if (
            acked
            and message.topic in batching(self.app).batched_topics
            and message.generation_id is not None
            and message.generation_id != self.app.consumer_generation_id
        ):
            faust_hooks.forget_acked_offset(self, message.tp, message.offset)
            return False
        return acked

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
                await self._seek(tp, offset)

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
            Fetched(tp.topic, tp.partition, records),  # type: ignore[arg-type]
            None,
            0,
            sum(record.serialized_value_size for record in records),
            tp,
            generation_id=self.app.consumer_generation_id,
        )


class PromptTransport(driver.Transport):
    Consumer = PromptConsumer
