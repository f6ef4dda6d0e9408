"""A batch whose fold fails is folded again, never skipped: what Faust would otherwise do (ack the event
an agent crashed on) would commit the whole batch unfolded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from streams.engine.batches import Fetched
from streams.pipeline.agents import until_folded
from streams.pipeline.metrics import Metrics


class Writes:
    """A hand-written stand-in for the agent's TableWrites: counts what a failed batch discarded."""

    def __init__(self) -> None:
        self.discarded = 0

    def discard(self) -> None:
        self.discarded += 1


def batch_of(count: int) -> Fetched:
    records = [
        ConsumerRecord("sms-messaging-events", 2, offset, 1, 0, b"k", b"v", None, 1, 1, ())
        for offset in range(10, 10 + count)
    ]
    return Fetched("sms-messaging-events", 2, records)


def test_a_batch_that_fails_is_folded_again_until_it_goes_through(caplog: pytest.LogCaptureFixture) -> None:
    metrics, writes, folds = Metrics(), Writes(), list[Fetched]()

    async def fold(batch: Fetched) -> None:
        folds.append(batch)
        if len(folds) < 3:
            raise ConnectionError("the broker went away")

    asyncio.run(until_folded(fold, batch_of(4), "resolve", writes, metrics, delay=0.01))  # type: ignore[arg-type]

    assert len(folds) == 3 and all(len(batch) == 4 for batch in folds)
    assert writes.discarded == 2
    assert metrics.registry.get_sample_value("optouts_fold_errors_total", {"stage": "resolve"}) == 2
    assert "sms-messaging-events[2]@10-13 failed" in caplog.text


def test_a_batch_that_keeps_failing_is_never_given_up_on() -> None:
    attempts = 0

    async def fold(batch: Any) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("still failing")

    async def main() -> None:
        task = asyncio.ensure_future(
            until_folded(fold, batch_of(1), "project", Writes(), Metrics(), delay=0.001)
        )  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        assert not task.done()  # still trying: the agent does not move on to the next batch
        task.cancel()

    asyncio.run(main())
    assert attempts >= 3
