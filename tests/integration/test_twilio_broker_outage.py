"""A webhook while the broker is down answers 503 (nothing acknowledged, so Twilio's retry is not
lost) and, once the broker is back, 200 only after the event is in the log.

The broker here is a dedicated embedded one on a fixed port, stopped and started again on the same
port. It keeps its log in memory, so the one that comes back is empty: unlike a real cluster, it has
forgotten the topics and the consumer group. The test therefore creates the topics again (the
deploy step, `optouts create-topics`), and checks the fold with a worker started on the new log; the
worker that answered the webhooks folds nothing before the outage, since its tables would describe a
log that no longer exists (tests/integration/test_restart.py covers workers across restarts).

The request is a status callback with a 21610 for a named person: its event counts whatever came
before it in the log. (A STOP counts only after the person's `message.sent`, and the refused
request may still reach the log once the broker is back, at least once, as the producer retries
it: which of the two would come first in an emptied log is not up to the test.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streams.engine.broker import EmbeddedBroker, free_port
from streams.engine.topics import MESSAGING_EVENTS, create_topics
from streams.settings import Settings
from tests.factories import unique, unique_phone
from tests.integration.kafka import latest_values
from tests.integration.processes import new_worker
from tests.integration.test_pipeline import SENDER, eventually, history, opt_outs
from tests.twilio_standin import AUTH_TOKEN, WebhookAnswer, post_webhook, sid, status_form

pytestmark = pytest.mark.integration

PUBLIC = "https://optouts.example.com"
SEND_TIMEOUT = 3.0


def test_a_webhook_answers_503_while_the_broker_is_down_and_loses_nothing_once_it_is_back(
    tmp_path: Path, output_dir: Path
) -> None:
    port, app_id = free_port(), unique("optouts-outage")
    log = output_dir / f"{app_id}.log"
    broker = EmbeddedBroker(port=port, log_path=output_dir / f"{app_id}-broker.log").start()
    webhooks = new_worker(
        broker.address,
        tmp_path / "webhooks",
        app_id,
        log,
        OPTOUTS_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        OPTOUTS_PUBLIC_BASE_URL=PUBLIC,
        OPTOUTS_SEND_TIMEOUT=str(SEND_TIMEOUT),
    )
    folds = new_worker(broker.address, tmp_path / "folds", unique("optouts-outage-fold"), log)
    person, phone, message = unique("person"), unique_phone(), sid()
    blocked = status_form(message_sid=message, status="failed", to=phone, from_=SENDER, error_code="21610")

    def deliver() -> WebhookAnswer:  # Twilio, delivering the same request again
        return post_webhook(
            webhooks.url, f"/twilio/status?person_id={person}", blocked, public_base_url=PUBLIC
        )

    try:
        webhooks.start()
        broker.stop()

        started = time.monotonic()
        down = deliver()
        waited = time.monotonic() - started

        assert down.status == 503
        assert "could not be made durable" in down.body
        assert waited < SEND_TIMEOUT + 2

        broker = EmbeddedBroker(port=port, log_path=output_dir / f"{app_id}-broker.log").start()
        asyncio.run(create_topics(Settings(kafka_brokers=broker.address, app_id=app_id)))

        back = eventually(lambda: (answer := deliver()).status == 200 and answer, timeout=30)

        assert back.content_type == "text/xml"
        in_log = latest_values(broker.address, MESSAGING_EVENTS, {phone})[phone]
        assert (in_log["type"], in_log["event_id"]) == ("message.blocked", f"{message}:failed")
        folds.start()
        [entry] = eventually(lambda: opt_outs(folds, person))
        assert (entry["sender"], entry["cause"]) == (SENDER, "send_blocked")
        assert len(history(folds, person)) == 1
    finally:
        folds.stop()
        webhooks.kill()  # its consumer group died with the old broker: nothing to stop cleanly
        broker.stop()
