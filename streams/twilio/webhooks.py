"""Twilio's two webhooks on the worker's web server: `POST /twilio/messages` (inbound messages) and
`POST /twilio/status` (status callbacks).

A view reads the body (64 KiB at most), checks Twilio's signature, turns the form into an event
(`streams.twilio.forms`), publishes it keyed by the phone and answers an empty TwiML `<Response/>`
only once the broker has acknowledged it (acks=all). Anything else answers an error and publishes
nothing; when the event cannot be made durable in time the answer is 503, so that Twilio's
delivery is not taken as done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import faust
from faust.web import Request, Response, View
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from projections.keywords import Intent, classify
from schemas.codec import encode
from schemas.events import MessageBlocked, MessageReceived
from streams.engine.topics import Topics
from streams.pipeline.metrics import Metrics
from streams.settings import Settings
from streams.twilio.forms import (
    MAX_WEBHOOK_BYTES,
    FormParams,
    WebhookRejected,
    inbound_message,
    parse_form,
    signed_url,
    status_callback,
    too_large,
)

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
EMPTY_TWIML = str(MessagingResponse())  # <?xml ...?><Response />: no reply is sent
ENDPOINTS = ("messages", "status")
# Every outcome a request is counted under (WebhookRejected's and the two answers that publish or not).
OUTCOMES = ("published", "ignored", "forbidden", "invalid", "too_large", "unavailable", "not_configured")


def register_twilio_views(app: faust.App, settings: Settings, topics: Topics, metrics: Metrics) -> None:
    webhooks = TwilioWebhooks(settings, topics.messaging_events, metrics)
    if not webhooks.configured:
        log.warning(
            "OPTOUTS_TWILIO_AUTH_TOKEN or OPTOUTS_PUBLIC_BASE_URL is not set: the Twilio webhooks"
            " answer 503 to every request, since their signatures cannot be checked"
        )

    @app.page("/twilio/messages")
    class InboundMessages(View):
        async def post(self, request: Request) -> Response:
            return await webhooks.handle(self, request, "messages", webhooks.inbound)

    @app.page("/twilio/status")
    class StatusCallbacks(View):
        async def post(self, request: Request) -> Response:
            return await webhooks.handle(self, request, "status", webhooks.status)


Interpret = Callable[[FormParams, Any], MessageReceived | MessageBlocked | None]


class TwilioWebhooks:
    def __init__(self, settings: Settings, topic: faust.TopicT, metrics: Metrics) -> None:
        token = settings.twilio_auth_token
        self.validator = RequestValidator(token.get_secret_value()) if token else None
        self.public_base_url = settings.public_base_url
        self.region = settings.default_region
        self.keywords = settings.keywords
        self.publish_timeout = settings.send_timeout
        self.topic = topic
        self.metrics = metrics
        # A series from the start, at 0: the alerts' rate() sees a first refusal, not only a second.
        for endpoint in ENDPOINTS:
            for outcome in OUTCOMES:
                metrics.twilio_webhooks.labels(endpoint, outcome).inc(0)

    @property
    def configured(self) -> bool:
        return self.validator is not None and bool(self.public_base_url)

    async def handle(self, view: View, request: Any, endpoint: str, interpret: Interpret) -> Response:
        """Verify, interpret, publish and answer; every refusal is counted and logged, without the
        body of the message."""
        try:
            form = await self._verified_form(request)
            event = interpret(form, request)
            if event is not None:
                await self._publish(event)
        except WebhookRejected as exc:
            self.metrics.twilio_webhooks.labels(endpoint, exc.outcome).inc()
            log.warning("POST /twilio/%s refused with %s: %s", endpoint, exc.status, exc)
            return view.text(f"{exc}\n", status=exc.status)
        self.metrics.twilio_webhooks.labels(endpoint, "published" if event else "ignored").inc()
        return view.text(EMPTY_TWIML, content_type="text/xml")

    def inbound(self, form: FormParams, request: Any) -> MessageReceived | None:
        event = inbound_message(form, region=self.region, received_at=datetime.now(UTC))
        if event is None:  # a channel without phones (Messenger): no list to keep, nothing to publish
            return None
        intent = classify(event.body, event.opt_out_type, self.keywords)
        if intent is not Intent.NONE:  # the keyword, never any other body
            log.info(
                "inbound %s on %s from %s to %s: %s",
                event.message_sid,
                event.channel,
                event.phone,
                event.sender,
                intent.value,
            )
        return event

    def status(self, form: FormParams, request: Any) -> MessageBlocked | None:
        callback = status_callback(
            form, request.query.get("person_id"), region=self.region, received_at=datetime.now(UTC)
        )
        self.metrics.twilio_status_callbacks.labels(callback.status, callback.error_code).inc()
        if callback.blocked is not None:
            blocked = callback.blocked
            log.info(
                "status %s to %s from %s: 21610, blocked", blocked.message_sid, blocked.phone, blocked.sender
            )
        return callback.blocked

    async def _verified_form(self, request: Any) -> FormParams:
        if self.validator is None or not self.public_base_url:
            raise WebhookRejected(
                503,
                "not_configured",
                "this worker has no OPTOUTS_TWILIO_AUTH_TOKEN or OPTOUTS_PUBLIC_BASE_URL, so it cannot"
                " check Twilio's signature and takes no webhooks",
            )
        if request.content_type != FORM:
            raise WebhookRejected(415, "invalid", f"expected {FORM}, got {request.content_type or 'nothing'}")
        form = parse_form(await _read_body(request))
        # The URL Twilio signed is the public one: TLS and any path prefix end at a proxy.
        url = signed_url(self.public_base_url, request.raw_path)
        signature = request.headers.get(SIGNATURE_HEADER, "")
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
        if not signature or not self.validator.validate(url, form, signature, algorithm):
            raise WebhookRejected(
                403, "forbidden", f"{SIGNATURE_HEADER} is {'wrong' if signature else 'missing'} for {url}"
            )
        return form

    async def _publish(self, event: MessageReceived | MessageBlocked) -> None:
        async def send_and_wait_for_ack() -> None:
            # Outside an agent nothing is attached to an offset: `send` hands the record to the
            # producer (acks=all) and returns the future of the broker's acknowledgement.
            delivered = await self.topic.send(key=event.phone.encode(), value=encode(event))
            await delivered

        try:
            await asyncio.wait_for(send_and_wait_for_ack(), self.publish_timeout)
        except Exception as exc:  # whatever the reason, the event is not known to be durable
            log.warning("could not publish %s %s: %r", event.type, event.event_id, exc)
            raise WebhookRejected(
                503, "unavailable", f"the event could not be made durable in Kafka ({type(exc).__name__})"
            ) from exc


async def _read_body(request: Any) -> bytes:
    """The body, refused as soon as it is over the limit (before it is all read)."""
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        raise too_large(request.content_length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            raise too_large(None)
        chunks.append(chunk)
    return b"".join(chunks)
