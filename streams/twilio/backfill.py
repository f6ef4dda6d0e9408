"""Backfill after an outage: Twilio blocks a STOP even while our webhook is down, and our list would
then miss it. This reads the inbound messages of our senders from Twilio's REST API (the Messages
list, paged, by date and by our numbers or Messaging Services) and publishes the ones the log does
not hold as `message.received`, with `event_id` = `MessageSid` like the webhook's, so running it
twice or over a window the webhook covered changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from projections.backfill import BackfillPlan, plan_backfill
from schemas.addresses import address_key, sender_address
from schemas.codec import decode_messaging_event, encode
from schemas.errors import DecodeError, InvalidNumber, OptOutsError
from schemas.events import MessageReceived
from streams.engine.topics import MESSAGING_EVENTS
from streams.progress import Progress as Counted
from streams.settings import Settings
from streams.twilio.api import twilio_client
from streams.twilio.forms import message_addresses

PAGE_SIZE = 100
# Records are stamped when they reach Kafka, a little after Twilio dates the message: the log is
# read from this long before the window so that the webhook's copies of its first messages count.
LOG_SLACK = timedelta(hours=1)

Progress = Callable[[str], None]


class BackfillError(OptOutsError):
    """The backfill cannot run as configured, or Twilio or Kafka failed it."""


@dataclass(frozen=True)
class BackfillSummary:
    seen: int  # inbound messages of our senders in the window
    published: int
    already_known: int  # their MessageSid is already in sms-messaging-events
    superseded: int  # missed keywords older than a keyword the log holds for that phone and sender
    skipped: int  # numbers that do not parse

    def __str__(self) -> str:
        return (
            f"seen {self.seen} inbound messages: published {self.published}, already in the log"
            f" {self.already_known}, superseded by a later keyword {self.superseded},"
            f" skipped (unreadable number) {self.skipped}"
        )


async def backfill(
    settings: Settings,
    since: datetime,
    until: datetime | None,
    progress: Progress,
    page_size: int = PAGE_SIZE,
) -> BackfillSummary:
    if not settings.brokers:
        raise BackfillError("set OPTOUTS_KAFKA_BROKERS: the backfill publishes to it")
    if not settings.twilio_senders and not settings.twilio_messaging_services:
        raise BackfillError(
            "set OPTOUTS_TWILIO_SENDERS or OPTOUTS_TWILIO_MESSAGING_SERVICES: whose messages?"
        )
    if until is not None and until <= since:
        raise BackfillError(f"--until {until.isoformat()} is not after --since {since.isoformat()}")
    region = settings.default_region
    try:
        # Keyed as the lists key senders: `rcs:acme_agent`, `whatsapp:+1...`, a plain SMS number; the
        # same form Twilio's Messages list filters `To` by.
        senders = {address_key(*sender_address(sender, region)) for sender in settings.twilio_senders}
    except InvalidNumber as exc:
        raise BackfillError(f"OPTOUTS_TWILIO_SENDERS: {exc}") from exc

    window = f"from {since.isoformat()}" + (f" until {until.isoformat()}" if until else " until now")
    progress(f"listing inbound messages {window}")
    listed: list[MessageReceived] = []
    skipped = 0
    client = twilio_client(settings)
    try:
        async for page_number, messages in _pages(client, settings, senders, since, until, page_size):
            for message in messages:
                if not _ours_and_inbound(message, settings, senders, since, until):
                    continue
                try:
                    received = _received(message, region)
                except InvalidNumber as exc:
                    skipped += 1
                    progress(f"  skipped {message.sid}: {exc}")
                    continue
                if received is None:  # a channel without phones (Messenger): no list to keep
                    skipped += 1
                    progress(f"  skipped {message.sid}: not on a channel with phones")
                else:
                    listed.append(received)
            ours = len(listed) + skipped
            progress(f"  page {page_number}: {len(messages)} messages, {ours} inbound to ours so far")
    except TwilioException as exc:
        raise BackfillError(f"listing messages from Twilio failed: {_twilio_error(exc)}") from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise BackfillError(f"listing messages from Twilio failed: {exc!r}") from exc
    finally:
        await client.http_client.close()

    progress(f"reading {MESSAGING_EVENTS} from {(since - LOG_SLACK).isoformat()} for what it already holds")
    try:
        in_log = await received_in_log(settings, since - LOG_SLACK)
    except KafkaError as exc:
        raise BackfillError(f"reading {MESSAGING_EVENTS} failed: {exc!r}") from exc
    plan = plan_backfill(listed, in_log, settings.keywords)
    progress(f"publishing {len(plan.publish)} messages the log does not hold, oldest first")
    await _publish(settings, plan)
    return BackfillSummary(
        seen=len(listed) + skipped,
        published=len(plan.publish),
        already_known=len(plan.known),
        superseded=len(plan.superseded),
        skipped=skipped,
    )


async def _pages(
    client: Client,
    settings: Settings,
    senders: set[str],
    since: datetime,
    until: datetime | None,
    page_size: int,
) -> AsyncIterator[tuple[int, list[Any]]]:
    """The pages of the Messages list: one walk per sender, filtered by Twilio (`To`); or, with
    Messaging Services, one walk over the whole window, since the list cannot filter by service."""
    recipients: list[str | None] = [None] if settings.twilio_messaging_services else [*sorted(senders)]
    number = 0
    for to in recipients:
        page = await client.messages.page_async(
            to=to if to is not None else values.unset,
            date_sent_after=since,
            date_sent_before=until if until is not None else values.unset,
            page_size=page_size,
        )
        while page is not None:
            number += 1
            yield number, list(page)
            page = await page.next_page_async()


def _twilio_error(exc: TwilioException) -> str:
    # A page that cannot be fetched comes as TwilioException(message, response), not as a
    # TwilioRestException: say what the API answered.
    response = exc.args[1] if len(exc.args) > 1 else None
    if isinstance(exc, TwilioRestException):
        return f"HTTP {exc.status}, error {exc.code}: {exc.msg}"
    if response is not None:
        return f"HTTP {response.status_code}: {str(response.text)[:200]}"
    return str(exc)


def _ours_and_inbound(
    message: Any, settings: Settings, senders: set[str], since: datetime, until: datetime | None
) -> bool:
    if message.direction != "inbound":
        return False
    # Twilio filters by day at least: the window is applied here to the second.
    sent_at = message.date_sent or message.date_created
    if sent_at is None or sent_at < since or (until is not None and sent_at >= until):
        return False
    if message.messaging_service_sid and message.messaging_service_sid in settings.twilio_messaging_services:
        return True
    try:
        return address_key(*sender_address(message.to or "", settings.default_region)) in senders
    except InvalidNumber:
        return False


def _received(message: Any, region: str) -> MessageReceived | None:
    # The list gives Twilio's addresses as the webhook does (`rcs:+1...`, `whatsapp:+1...`): read
    # the same way, so that a missed RCS STOP is recovered as one, and a WhatsApp one stays WhatsApp.
    addresses = message_addresses(message.from_ or "", message.to or "", region)
    if addresses is None:
        return None
    return MessageReceived(
        event_id=message.sid,
        occurred_at=(message.date_sent or message.date_created).astimezone(UTC),
        channel=addresses.channel,
        phone=addresses.phone,
        sender=addresses.sender,
        body=message.body or "",
        message_sid=message.sid,
        account_sid=message.account_sid,
        messaging_service_sid=message.messaging_service_sid or None,
        # The REST API does not say how Advanced Opt-Out read the body: the body decides.
        opt_out_type=None,
    )


async def received_in_log(settings: Settings, since: datetime) -> list[MessageReceived]:
    """The `message.received` events in `sms-messaging-events` from about `since` to its end.

    Read to the end by fetching until nothing comes back, not by the reported high watermark (some
    brokers, Tansu among them, report less than the log end; see streams/engine/recovery.py). A broker
    that cannot look offsets up by time (Tansu answers 0) is read from the start.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.brokers, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(MESSAGING_EVENTS, p) for p in consumer.partitions_for_topic(MESSAGING_EVENTS) or ()
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        starts = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
        for tp in partitions:
            found = starts.get(tp)
            if found is None:  # nothing at or after `since`: only the end is left to read
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found.offset)
        events: list[MessageReceived] = []
        idle = 0
        while idle < 3:
            batch = await consumer.getmany(timeout_ms=300)
            records = [record for records in batch.values() for record in records]
            idle = 0 if records else idle + 1
            for record in records:
                if record.value and b'"message.received"' in record.value:
                    try:
                        event = decode_messaging_event(record.value, region=settings.default_region)
                    except DecodeError:
                        continue  # the worker skips it too
                    if isinstance(event, MessageReceived):
                        events.append(event)
        return events
    finally:
        await consumer.stop()


async def _publish(settings: Settings, plan: BackfillPlan) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.brokers, acks="all", request_timeout_ms=int(settings.send_timeout * 1000)
    )
    await producer.start()
    # A bar on a terminal only: off one, the backfill's own lines say what it does.
    published = Counted("publishing", len(plan.publish), quiet=True)
    try:
        # In order, each acknowledged before the next: a phone's messages keep their time order.
        for event in plan.publish:
            await asyncio.wait_for(
                producer.send_and_wait(MESSAGING_EVENTS, encode(event), key=event.phone.encode()),
                settings.send_timeout,
            )
            published.advance(1)
    except Exception as exc:
        raise BackfillError(
            f"publishing to {MESSAGING_EVENTS} failed: {exc!r} (run the backfill again)"
        ) from exc
    finally:
        published.finish()
        await producer.stop()
