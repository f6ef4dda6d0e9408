"""Generations of the projection: which store the workers of an app id answer from.

A generation is a Faust app id (consumer group, changelog topics) and a data dir of its own:
generation 0 is `OPTOUTS_APP_ID` itself, generation N is `OPTOUTS_APP_ID-gN` in `OPTOUTS_DATA_DIR/gN`.
`optouts replay` builds a new generation next to the running one; the switch is one value on the
compacted control topic (key: the app id). A worker reads it at start, watches it while it runs,
and restarts itself into the generation it names (`restart`), recovering that generation's tables
from their changelogs into the fresh data dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import OptOutsError
from streams.engine.log_reader import snapshot
from streams.engine.topics import CONTACTS_TABLE, CONTROL
from streams.settings import Settings

log = logging.getLogger(__name__)

_POLL_MS = 1000  # how often a worker looks for a switch
_RETRY_SECONDS = 2.0  # after the control topic could not be read


class GenerationError(OptOutsError):
    """A generation that cannot be switched to or built."""


class Switch(BaseModel):
    """A value of the control topic: from now on, the workers of `app_id` run `generation`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    app_id: str
    generation: int = Field(ge=0)
    switched_at: datetime
    by: str = "optouts"


@dataclass(frozen=True)
class Generation:
    base_app_id: str
    number: int = 0

    @property
    def app_id(self) -> str:
        return self.base_app_id if self.number == 0 else f"{self.base_app_id}-g{self.number}"

    def data_dir(self, base: Path) -> Path:
        return base if self.number == 0 else base / f"g{self.number}"

    def settings(self, settings: Settings) -> Settings:
        """`settings` (those of the base app id) for this generation's workers."""
        return settings.model_copy(
            update={"app_id": self.app_id, "data_dir": self.data_dir(settings.data_dir)}
        )

    def __str__(self) -> str:
        return f"generation {self.number} ({self.app_id})"


async def current_generation(settings: Settings) -> Generation:
    """The generation the control topic names for `settings.app_id`; 0 when it names none.

    Read from the start until a fetch returns nothing (the log end, whatever the broker reports):
    one consumer, as this runs at every worker start.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.brokers, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        number = 0
        if CONTROL not in await consumer.topics():
            return Generation(settings.app_id, number)
        partition = TopicPartition(CONTROL, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        while records := (await consumer.getmany(partition, timeout_ms=300)).get(partition):
            for record in records:
                switch = _switch_in(record.key, record.value, settings.app_id)
                number = switch.generation if switch is not None else number
        return Generation(settings.app_id, number)
    finally:
        await consumer.stop()


async def switch_generation(settings: Settings, generation: Generation, by: str) -> None:
    """Make `generation` the one the workers of the app id run (they restart into it)."""
    value = Switch(app_id=settings.app_id, generation=generation.number, switched_at=datetime.now(UTC), by=by)
    producer = AIOKafkaProducer(bootstrap_servers=settings.brokers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(CONTROL, value.model_dump_json().encode(), key=settings.app_id.encode())
    finally:
        await producer.stop()


async def built_generations(settings: Settings) -> set[int]:
    """The generations of the app id whose changelog topics exist, and 0 (the app id itself)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.brokers)
    await consumer.start()
    try:
        topics = await consumer.topics()
    finally:
        await consumer.stop()
    pattern = re.compile(rf"{re.escape(settings.app_id)}-g(\d+)-{re.escape(CONTACTS_TABLE)}-changelog")
    return {0} | {int(match.group(1)) for topic in topics if (match := pattern.fullmatch(topic))}


def _switch_in(key: bytes | None, value: bytes | None, app_id: str) -> Switch | None:
    if key != app_id.encode() or value is None:
        return None
    try:
        return Switch.model_validate_json(value)
    except ValidationError as exc:  # written by hand: not a switch, and no reason to stop a worker
        log.warning("ignored a value of %s for %s that is not a switch: %s", CONTROL, app_id, exc)
        return None


@dataclass
class Restart:
    """Set by the watcher when the generation changed; `run_worker` restarts into it once stopped."""

    into: Generation | None = None


def watch_generation(app: faust.App, settings: Settings, running: Generation, restart: Restart) -> None:
    """While the worker runs, follow the control topic; on a switch away from `running`, log it and
    stop the worker gracefully (as SIGTERM does), for `restart_process` to start it again."""

    @app.task  # type: ignore[untyped-decorator]  # Faust's app.task is unannotated
    async def follow_generation() -> None:
        # The watch must outlive a broker outage: aiokafka cancels a pending fetch when its
        # connection drops (seen as a CancelledError in getmany while the worker runs on), and a
        # watcher that died then would never follow a later replay's switch.
        while not app.should_stop:
            try:
                if await _follow(settings, running, restart, lambda: bool(app.should_stop)):
                    return
            except asyncio.CancelledError:
                if app.should_stop:
                    raise
                log.warning("watching %s was interrupted: watching it again", CONTROL)
            except Exception as exc:
                log.warning("cannot watch %s (%r): trying again in %.0f s", CONTROL, exc, _RETRY_SECONDS)
            await asyncio.sleep(_RETRY_SECONDS)


async def _follow(
    settings: Settings, running: Generation, restart: Restart, stopping: Callable[[], bool]
) -> bool:
    """Read the control topic until it names another generation than `running`: then set `restart`,
    stop the worker as SIGTERM does, and return True. Return False once `stopping()`.

    The worker's stop cancels this task, but a cancellation can be lost on its way through the
    Kafka client (seen here: a Ctrl-C just as the watcher started left it polling, and the worker
    waiting for it, for good): the poll loop also asks whether the worker is stopping."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.brokers, enable_auto_commit=False)
    try:
        await consumer.start()
        partition = TopicPartition(CONTROL, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        # Only the last value up to the end counts: an older switch read first is history.
        (end,) = (await snapshot(settings.brokers, [CONTROL])).values()
        latest = running.number
        while not stopping():
            batch = await consumer.getmany(partition, timeout_ms=_POLL_MS)
            for record in batch.get(partition, []):
                switch = _switch_in(record.key, record.value, settings.app_id)
                latest = switch.generation if switch is not None else latest
            caught_up = await consumer.position(partition) >= end.end
            if caught_up and latest != running.number:
                restart.into = Generation(settings.app_id, latest)
                log.warning("switched from %s to %s: restarting into it", running, restart.into)
                os.kill(os.getpid(), signal.SIGTERM)
                return True
        return False
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(consumer.stop())


def restart_process(generation: Generation, env: Mapping[str, str] | None = None) -> None:
    """Replace this process with the same command (same PID, same arguments), `env` added to its
    environment: it starts again, reads the control topic and runs `generation`."""
    log.warning("restarting into %s", generation)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    logging.shutdown()
    os.execve(sys.executable, sys.orig_argv, {**os.environ, **(env or {})})
