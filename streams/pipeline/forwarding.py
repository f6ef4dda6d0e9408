"""The agents' forward step: a record that is not where its entity's events are folded is sent on to
where they are, never folded where it landed (a phone's events folded in two partitions' stores lose
STOPs: the send in one store, the keyword in the other).

Two kinds, counted apart: a record keyed by another form of its entity (mis-keyed: a national phone
number), and one keyed right but on another partition than murmur2 of its key (misplaced: a producer
whose partitioner is not Kafka's default; streams.pipeline.placement names the likely one). Either is sent
again under its normalised key, which the service's producer places by murmur2, and folded there
after what that partition already holds. A record forwarded twice (a redelivered batch) is folded
once: its event id is the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel

from schemas.codec import encode
from streams.engine.sends import Sends
from streams.pipeline.metrics import Metrics
from streams.pipeline.placement import Throttle, expected_partition, likely_cause

log = logging.getLogger(__name__)

# Keys whose partition is remembered (phones and persons that recur); forgotten all at once past it.
# ~90 bytes a key, per topic: a log's recurring keys fit, a million persons' do not at any size.
_PLACED_KEYS = 16_384


class Forwarding:
    def __init__(
        self,
        sends: Sends,
        metrics: Metrics,
        topics: Iterable[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sends = sends
        self.metrics = metrics
        self._partitions: dict[str, int] = {}  # topic -> partitions, from the producer's metadata
        # topic -> key -> its partition: murmur2 in Python costs ~2.5 µs, a look-up ~0.05
        self._placed: dict[str, dict[bytes, int]] = {}
        self._throttle = Throttle(interval=60.0)  # one line per topic a minute at most
        self._clock = clock
        for topic in topics:  # a series from the start: an alert sees 0
            metrics.rekeyed.labels(topic).inc(0)
            metrics.misplaced.labels(topic).inc(0)

    async def elsewhere(self, record: Any, key: bytes, event: BaseModel) -> bool:
        """Whether `record` (an aiokafka ConsumerRecord), whose decoded `event` the contract keys
        `key`, belongs to another key or partition; if so it has been forwarded there (appended to
        the producer's batch, acknowledged before the batch is committed)."""
        if key == record.key:
            partitions = self._partitions.get(record.topic, 0)
            placed = self._placed.setdefault(record.topic, {})
            if record.partition >= partitions:  # not known yet, or the topic has grown since
                partitions = self._partitions[record.topic] = await self.sends.partition_count(record.topic)
                placed.clear()
            expected = placed.get(key)
            if expected is None:
                if len(placed) >= _PLACED_KEYS:
                    placed.clear()
                expected = placed[key] = expected_partition(key, partitions)
            if record.partition == expected:
                return False
            self.metrics.misplaced.labels(record.topic).inc()
            self._report(record, key, partitions, expected)
        else:
            self.metrics.rekeyed.labels(record.topic).inc()
        await self.sends.send(record.topic, key, encode(event))
        return True

    def _report(self, record: Any, key: bytes, partitions: int, expected: int) -> None:
        count = self._throttle.count(record.topic, self._clock())
        if count is None:
            return
        log.warning(
            "%s: %d record(s) since the last such line were on another partition than murmur2 of their"
            " key, and were forwarded to theirs (optouts_misplaced_records_total); e.g. %s[%s]@%s"
            " belongs on partition %s of %s, %s",
            record.topic,
            count,
            record.topic,
            record.partition,
            record.offset,
            expected,
            partitions,
            likely_cause(key, partitions, record.partition),
        )
