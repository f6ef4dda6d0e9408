"""Faust's Kafka transport with a shorter fetch wait.

Faust builds its consumer with `fetch_max_wait_ms=1500` and no setting to change it
(faust/transport/drivers/aiokafka.py). A broker that does not end a long poll when data arrives on
another of the partitions fetched (Tansu, seen here: a record on one of four partitions waited
~550 ms for the poll to time out) then adds that wait to every hop of the pipeline. On Kafka a
shorter wait only adds an idle fetch now and then, so it is a setting (OPTOUTS_FETCH_MAX_WAIT).
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as driver


class PromptConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads it when the consumer starts, which is after this.
        consumer._fetch_max_wait_ms = int(self.app.fetch_max_wait * 1000)
        return consumer


class PromptConsumer(driver.Consumer):
    def _new_consumer_thread(self) -> PromptConsumerThread:
        return PromptConsumerThread(self, loop=self.loop, beacon=self.beacon)


class PromptTransport(driver.Transport):
    Consumer = PromptConsumer
