"""Appending an operator's override to `sms-person-events`: acknowledged by the brokers (acks=all)
within `OPTOUTS_SEND_TIMEOUT`, or `NotAppended`, with nothing of it sent after.

An override answered 503 should not reach the log later, long after the operator moved on. A write
the brokers received but did not acknowledge in time may still be there, so the 503 says the outcome
is unknown and names the override's id (streams.web.views); what is still queued here is never sent.
The app's own producer cannot promise that: Faust gives its records 20
minutes (`producer_request_timeout`), and aiokafka has no delivery timeout (Kafka's KIP-91): a batch
whose partition leader is known is never expired while its broker is unreachable, only when a send
to it fails (aiokafka/producer/message_accumulator.py `drain_by_nodes`, producer/sender.py
`_can_retry`), so a record that timed out here is sent once the broker is back. Overrides therefore
go through a producer of their own, which is discarded, records and all, when one times out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer

from schemas.codec import encode
from schemas.events import OptOutOverridden
from streams.engine.topics import PERSON_EVENTS

log = logging.getLogger(__name__)


class NotAppended(Exception):
    """The override is not in the log, and never will be from this attempt."""


class OverrideLog:
    def __init__(self, servers: list[str], timeout: float, client_id: str) -> None:
        self.servers = servers
        self.timeout = timeout
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def append(self, event: OptOutOverridden) -> None:
        """The event in the person log (acks=all), or `NotAppended` within the timeout."""
        async with self._lock:  # one at a time: a discarded producer takes only its own record along
            try:
                await asyncio.wait_for(self._send(event), self.timeout)
            except Exception as exc:
                await self._discard()
                raise NotAppended(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc

    async def _send(self, event: OptOutOverridden) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.servers,
                acks="all",
                client_id=self.client_id,
                request_timeout_ms=int(self.timeout * 1000),
            )
            await producer.start()
            self._producer = producer
        # Keyed by person with the default (murmur2) partitioner, as Faust's producer does.
        await self._producer.send_and_wait(PERSON_EVENTS, encode(event), key=event.person_id.encode())

    async def _discard(self) -> None:
        """Drop the producer without delivering what it still holds: stop its sender first, since
        `stop()` would flush (and wait for a broker that may be gone)."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        sender = getattr(producer, "_sender", None)
        with contextlib.suppress(Exception):
            if sender is not None:
                await sender.close()  # cancels the task that would send the pending batch
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 1.0)
        with contextlib.suppress(Exception):
            await producer.client.close()

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), self.timeout)
