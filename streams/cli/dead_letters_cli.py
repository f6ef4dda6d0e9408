"""`optouts dead-letters ...`: read what the agents kept aside in `sms-dead-letters`, and publish a
value again (fixed, or as it was once the service reads it) to where it came from, under its key.

A dead letter is named by where it is on `sms-dead-letters`: `PARTITION:OFFSET` (`list` shows it).
A value is published again only once it decodes with the decoder the agents use, so nothing that
would be refused again is published.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from schemas.codec import MAX_AHEAD
from schemas.dead_letters import DeadLetter
from schemas.errors import DecodeError, OptOutsError
from streams.cli.operator_cli import print_table
from streams.engine.log_reader import Span, read, snapshot
from streams.engine.topics import DEAD_LETTERS, MESSAGING_EVENTS, PERSON_EVENTS
from streams.pipeline.admission import messaging_event, person_event
from streams.settings import Settings

EXIT_REFUSED = 1  # no such dead letter, or a value that would be refused again: nothing published
EXIT_CANNOT_RUN = 2  # no brokers configured or reachable


class Refused(OptOutsError):
    """The command cannot do what was asked; the message says why. Nothing was published."""


# ---- the pure core ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A dead letter and where it is on `sms-dead-letters`."""

    partition: int
    offset: int
    letter: DeadLetter

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"


def parse_id(text: str) -> tuple[int | None, int]:
    """`PARTITION:OFFSET`, or a bare `OFFSET` (then any partition that has exactly one there)."""
    partition, sep, offset = text.strip().rpartition(":")
    try:
        return (int(partition) if sep else None), int(offset)
    except ValueError:
        raise Refused(f"{text!r} is not a dead letter id: PARTITION:OFFSET, as `list` shows") from None


def check_foldable(topic: str, value: bytes, region: str, max_ahead: timedelta = MAX_AHEAD) -> None:
    """Raise `Refused` unless the agents reading `topic` would fold `value` published now: read as
    they read it (`streams.pipeline.admission`), against a record logged at this moment."""
    record = _LoggedNow(value, int(time.time() * 1000))
    readers: dict[str, Callable[[_LoggedNow], Any]] = {
        MESSAGING_EVENTS: lambda r: messaging_event(r, region=region, max_ahead=max_ahead),
        PERSON_EVENTS: lambda r: person_event(r, max_ahead=max_ahead),
    }
    reader = readers.get(topic)
    if reader is None:
        raise Refused(f"{topic} is not a topic the agents fold: nothing to publish it again to")
    try:
        reader(record)
    except DecodeError as exc:
        raise Refused(f"the value would be refused again, nothing was published: {exc}") from exc


@dataclass(frozen=True)
class _LoggedNow:
    value: bytes | None
    timestamp: int


def value_to_publish(found: Found, given: bytes | None) -> bytes:
    """The value given, else the value as it was (for an event of a version the service now reads)."""
    if given is not None:
        return given
    if found.letter.value_truncated:
        raise Refused(f"dead letter {found.id} keeps only the start of its value: give the whole value")
    original = found.letter.original_value()
    if original is None:
        raise Refused(f"dead letter {found.id} has no value: give one with --value or --value-file")
    return original


def row(found: Found) -> list[str]:
    letter = found.letter
    key = letter.key if letter.key_encoding == "utf-8" else f"base64:{letter.key}"
    return [
        found.id,
        letter.dead_lettered_at.isoformat().replace("+00:00", "Z"),
        f"{letter.topic}[{letter.partition}]@{letter.offset}",
        key if key is not None else "(none)",
        letter.kind,
        letter.reason,
    ]


def as_json(found: Found) -> str:
    return json.dumps({"id": found.id, **found.letter.model_dump(mode="json")})


# ---- the I/O shell ----------------------------------------------------------------------------------


def add_dead_letter_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "dead-letters", help="list the values the agents kept aside; publish one again once fixed"
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every dead letter, oldest first per partition")
    listing.add_argument("--topic", help="only those from this source topic")
    listing.add_argument("--key", help="only those with this key (UTF-8)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line, with its id")
    listing.set_defaults(handler=list_command, could_not_run=2)
    again = actions.add_parser(
        "republish", help="publish a dead letter's value again, fixed, to its topic under its key"
    )
    again.add_argument("id", metavar="ID", help="PARTITION:OFFSET on sms-dead-letters, as `list` shows")
    values = again.add_mutually_exclusive_group()
    values.add_argument("--value", help="the fixed value, JSON")
    values.add_argument("--value-file", type=Path, help="a file holding the fixed value")
    again.set_defaults(handler=republish_command, could_not_run=2)


def list_command(args: argparse.Namespace, settings: Settings) -> int:
    def keep(found: Found) -> bool:
        return (args.topic is None or found.letter.topic == args.topic) and (
            args.key is None or (found.letter.key == args.key and found.letter.key_encoding == "utf-8")
        )

    found = _run(settings, lambda: read_letters(settings.brokers))
    if found is None:
        return EXIT_CANNOT_RUN
    shown = [f for f in found if keep(f)]
    if args.json:
        for f in shown:
            print(as_json(f))
        return 0
    if not shown:
        print("No dead letters" + (" from that topic or key." if args.topic or args.key else "."))
        return 0
    print_table(["ID", "KEPT AT", "FROM", "KEY", "KIND", "REASON"], [row(f) for f in shown])
    return 0


def republish_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        given = _given_value(args)
        partition, offset = parse_id(args.id)
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED

    async def republish() -> str:
        found = await find_letter(settings.brokers, partition, offset)
        value = value_to_publish(found, given)
        check_foldable(
            found.letter.topic, value, settings.default_region, timedelta(seconds=settings.max_ahead)
        )
        where = await publish(settings.brokers, found.letter.topic, found.letter.original_key(), value)
        return f"published dead letter {found.id} again to {where}, key {found.letter.key!r}"

    try:
        said = _run(settings, republish)
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if said is None:
        return EXIT_CANNOT_RUN
    print(said)
    return 0


async def read_letters(servers: list[str]) -> list[Found]:
    """Every dead letter, read to the log's real end (never to a reported high watermark)."""
    return await _letters(servers, await snapshot(servers, [DEAD_LETTERS]))


async def find_letter(servers: list[str], partition: int | None, offset: int) -> Found:
    spans = await snapshot(servers, [DEAD_LETTERS])
    at = {
        tp: Span(offset, offset + 1)
        for tp, span in spans.items()
        if partition in (None, tp.partition) and span.start <= offset < span.end
    }
    matches = [found for found in await _letters(servers, at) if found.offset == offset]
    if not matches:
        raise Refused(f"no dead letter at {partition if partition is not None else '*'}:{offset}")
    if len(matches) > 1:
        ids = ", ".join(found.id for found in matches)
        raise Refused(f"several dead letters are at offset {offset} ({ids}): say which, PARTITION:OFFSET")
    return matches[0]


async def _letters(servers: list[str], spans: dict[TopicPartition, Span]) -> list[Found]:
    found: list[Found] = []
    async for records in read(servers, spans):
        for record in records:
            try:
                letter = DeadLetter.model_validate_json(record.value or b"")
            except ValidationError:  # not a dead letter this service can read: left out
                continue
            found.append(Found(record.partition, record.offset, letter))
    return found


async def publish(servers: list[str], topic: str, key: bytes | None, value: bytes) -> str:
    """Publish with acks=all and the default (murmur2) partitioner, as every producer must."""
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
    return f"{topic}[{sent.partition}]@{sent.offset}"


def _given_value(args: argparse.Namespace) -> bytes | None:
    if args.value is not None:
        return str(args.value).encode()
    if args.value_file is not None:
        try:
            return Path(args.value_file).read_bytes()
        except OSError as exc:
            raise Refused(f"cannot read {args.value_file}: {exc.strerror}") from exc
    return None


def _run(settings: Settings, work: Callable[[], Any]) -> Any:
    """Run `work()` against the brokers; None (with the reason on stderr) when they cannot be used."""
    if not settings.brokers:
        print("error: OPTOUTS_KAFKA_BROKERS is not set", file=sys.stderr)
        return None
    try:
        return asyncio.run(work())
    except Refused:
        raise
    except Exception as exc:  # the brokers' answer, whatever it was: the command could not run
        print(f"error: could not use the brokers at {settings.kafka_brokers}: {exc!r}", file=sys.stderr)
        return None
