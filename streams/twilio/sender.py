"""The guarded sender: one SMS through Twilio, never to a person who opted out of that sender, with
what happened published to `sms-messaging-events` (`message.sent` or `message.blocked`). A sender
given with Twilio's channel prefix (`rcs:acme_agent`, `whatsapp:+14155550100`) sends on that
channel, and is refused by the opt-outs that cover it (an RCS STOP covers SMS, and back).

For upstream Python systems:

    async with GuardedSender.open(Settings()) as sender:
        result = await sender.send_sms("cus_1234", "+14155550123", "+14155550100", "Your code is 1234")
    if not result.sent:
        print(result.outcome, result.reason)

The list is read from the service's HTTP API (`GET /people/{id}/sms-opt-outs`): that answer is the
person's current list, read by key on the worker that owns the person (a Kafka topic has no look-up
by key, and the tables live in the workers). When the list cannot be read the message is not sent:
the guard fails closed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlencode

import aiohttp
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from twilio.base import values
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from schemas import inputs
from schemas.addresses import Channel, address_key, as_channel, phone_address, sender_address
from schemas.codec import decode_opt_out_list, encode
from schemas.errors import DecodeError, InvalidNumber, OptOutsError
from schemas.events import MessageBlocked, MessageSent, OptOutList
from streams.engine.topics import MESSAGING_EVENTS
from streams.settings import Settings
from streams.twilio.api import twilio_client
from streams.web.api_client import Api

UNSUBSCRIBED = 21610

Outcome = Literal["sent", "accepted", "refused", "blocked", "failed", "unchecked"]


@dataclass(frozen=True)
class SendResult:
    """What became of one send, and why.

    - `sent`: Twilio took the message (`message.sent` published).
    - `accepted`: a Messaging Service took it (`message.sent` published); a 21610 comes later
      through the status callback.
    - `refused`: the sender is on the person's list; Twilio was not called.
    - `blocked`: Twilio refused with 21610 (`message.blocked` published).
    - `failed`: Twilio refused otherwise, or could not be reached; nothing published.
    - `unchecked`: the person's list could not be read, so nothing was sent.
    """

    outcome: Outcome
    reason: str
    message_sid: str | None = None
    event: MessageSent | MessageBlocked | None = None

    @property
    def sent(self) -> bool:
        return self.outcome in ("sent", "accepted")


class InvalidSend(OptOutsError, ValueError):
    """A send that cannot be attempted as given (a person id, phone or sender that does not parse)."""


class NotPublished(OptOutsError):
    """Twilio's answer is known but could not be published: `result` says what Twilio did, and
    `result.event` must still be published (`GuardedSender.publish`) or the log misses it."""

    def __init__(self, result: SendResult, cause: BaseException) -> None:
        super().__init__(f"{result.outcome}, but the event was not published: {cause!r}")
        self.result = result


def refusal(
    opt_outs: OptOutList, sender: str, messaging_service_sid: str | None, channel: Channel = "sms"
) -> str | None:
    """Why this send on `channel` must not happen, or None. The person opted out of the sender on
    that channel (at whichever of their phones: they asked that sender to stop), or an entry that
    covers the channel (Twilio's unified RCS, SMS and MMS opt-out) names the same sender or the
    Messaging Service the send goes through (one STOP blocks every sender of a service)."""
    for entry in opt_outs.opt_outs:
        same_service = (
            messaging_service_sid is not None and entry.messaging_service_sid == messaging_service_sid
        )
        same_sender = address_key(entry.channel, entry.sender) == address_key(channel, sender)
        covered = channel in entry.covers and (entry.sender == sender or same_service)
        if same_sender or covered:
            via = f" (Messaging Service {entry.messaging_service_sid})" if same_service else ""
            on = "" if entry.channel == "sms" else f" on {entry.channel}"
            came = "" if entry.source_channel == entry.channel else f" on {entry.source_channel}"
            cause = f"texted {entry.keyword}{came}" if entry.keyword else "Twilio blocked a send (21610)"
            return (
                f"{opt_outs.person_id} opted out of {entry.sender}{on}{via} at {entry.phone}"
                f" since {entry.since.isoformat()}: {cause}"
            )
    return None


class GuardedSender:
    """Sends SMS one at a time through the `twilio` Client, checking the person's list first."""

    def __init__(
        self,
        settings: Settings,
        twilio: Client,
        producer: AIOKafkaProducer,
        http: aiohttp.ClientSession,
        api: Api | None = None,
    ) -> None:
        self.settings = settings
        self.twilio = twilio
        self.producer = producer
        self.http = http
        self.api = api or Api.of(settings)  # the list is read with the operator token

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[GuardedSender]:
        """A sender with its Twilio client, Kafka producer (acks=all) and HTTP session, closed after."""
        if not settings.brokers:
            raise OptOutsError("set OPTOUTS_KAFKA_BROKERS: the sender publishes what Twilio did")
        api = Api.of(settings)
        twilio = twilio_client(settings)
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.brokers,
            acks="all",
            request_timeout_ms=int(settings.send_timeout * 1000),
        )
        try:
            try:
                await producer.start()
            except KafkaError as exc:
                raise OptOutsError(f"cannot reach Kafka at {settings.kafka_brokers}: {exc!r}") from exc
            async with api.session(timeout=settings.send_timeout) as http:
                yield cls(settings, twilio, producer, http, api)
        finally:
            await producer.stop()
            await twilio.http_client.close()

    async def send_sms(
        self, person_id: str, phone: str, sender: str, body: str, *, messaging_service_sid: str | None = None
    ) -> SendResult:
        """Send `body` from `sender` to `person_id` at `phone`, unless the person opted out of it."""
        try:
            inputs.person_id(person_id)
        except inputs.InvalidInput as exc:
            raise InvalidSend(str(exc)) from None
        region = self.settings.default_region
        sender_channel, sender = sender_address(sender, region)
        phone_channel, phone = phone_address(phone, region)
        if phone_channel not in ("sms", sender_channel):  # a plain number takes the sender's channel
            raise InvalidNumber(phone, f"is on {phone_channel}, the sender on {sender_channel}")
        channel = as_channel(sender_channel)

        opt_outs = await self._opt_outs(person_id)
        if isinstance(opt_outs, SendResult):
            return opt_outs
        reason = refusal(opt_outs, sender, messaging_service_sid, channel)
        if reason is not None:
            return SendResult("refused", reason)

        try:
            message = await self.twilio.messages.create_async(
                to=address_key(channel, phone),
                from_=address_key(channel, sender),
                body=body,
                messaging_service_sid=messaging_service_sid or values.unset,
                status_callback=self._status_callback(person_id) or values.unset,
            )
        except TwilioRestException as exc:
            if exc.code != UNSUBSCRIBED:
                return SendResult(
                    "failed", f"Twilio refused the send: HTTP {exc.status}, error {exc.code}: {exc.msg}"
                )
            blocked = MessageBlocked(
                # Unique per attempt: a later 21610 after an operator's override must count again.
                event_id=f"21610-{uuid.uuid4()}",
                occurred_at=datetime.now(UTC),
                channel=channel,
                person_id=person_id,
                phone=phone,
                sender=sender,
                message_sid=None,
                messaging_service_sid=messaging_service_sid,
            )
            result = SendResult("blocked", f"Twilio refused with 21610: {phone} unsubscribed from {sender}")
            return await self._published(result, blocked)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Twilio may or may not have taken it: nothing is published, the caller decides.
            return SendResult(
                "failed", f"Twilio could not be reached: {exc!r} (it may have sent the message)"
            )

        sent = MessageSent(
            event_id=message.sid,
            occurred_at=datetime.now(UTC),
            channel=channel,
            person_id=person_id,
            phone=phone,
            sender=sender,
            message_sid=message.sid,
            messaging_service_sid=message.messaging_service_sid or messaging_service_sid,
        )
        if message.status == "accepted":
            result = SendResult(
                "accepted",
                f"accepted by {sent.messaging_service_sid}; a 21610 would come by status callback",
                message.sid,
            )
        else:
            result = SendResult("sent", f"Twilio took it ({message.status})", message.sid)
        return await self._published(result, sent)

    async def publish(self, event: MessageSent | MessageBlocked) -> None:
        """Publish an event to `sms-messaging-events`, keyed by its phone, acknowledged (acks=all)."""
        await asyncio.wait_for(
            self.producer.send_and_wait(MESSAGING_EVENTS, encode(event), key=event.phone.encode()),
            self.settings.send_timeout,
        )

    async def _published(self, result: SendResult, event: MessageSent | MessageBlocked) -> SendResult:
        result = SendResult(result.outcome, result.reason, result.message_sid, event)
        try:
            await self.publish(event)
        except Exception as exc:
            raise NotPublished(result, exc) from exc
        return result

    async def _opt_outs(self, person_id: str) -> OptOutList | SendResult:
        url = self.api.url("people", person_id, "sms-opt-outs")
        try:
            async with self.http.get(url) as response:
                if response.status != 200:
                    text = (await response.text())[:200]
                    return SendResult("unchecked", f"GET {url} answered {response.status}: {text}; not sent")
                return decode_opt_out_list(await response.read())
        except (aiohttp.ClientError, TimeoutError, DecodeError) as exc:
            return SendResult("unchecked", f"could not read the opt-out list at {url}: {exc!r}; not sent")

    def _status_callback(self, person_id: str) -> str | None:
        # The person rides along in the callback URL, so a 21610 there needs no look-up.
        if not self.settings.public_base_url:
            return None
        return (
            f"{self.settings.public_base_url.rstrip('/')}/twilio/status?{urlencode({'person_id': person_id})}"
        )


async def send_sms(
    person_id: str,
    phone: str,
    sender: str,
    body: str,
    *,
    settings: Settings,
    messaging_service_sid: str | None = None,
) -> SendResult:
    """One guarded send with a sender opened and closed for it."""
    async with GuardedSender.open(settings) as guarded:
        return await guarded.send_sms(
            person_id, phone, sender, body, messaging_service_sid=messaging_service_sid
        )
