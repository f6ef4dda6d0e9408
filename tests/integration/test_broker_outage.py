"""The brokers become unreachable while a worker runs, then reachable again: the worker says it is not
ready, refuses overrides and webhooks with 503 and appends nothing, then recovers by itself, without
a restart, and folds what comes next.

The outage is a cut proxy, not a stopped broker: the embedded broker keeps its log in memory, so a
stopped one would come back empty. Here it advertises the proxy's address, so the worker (and the
test's own clients) reach it only through the proxy, and `cut()` closes every connection and
refuses new ones while the broker and its log live on.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streams.devtools.tcp_proxy import TcpProxy
from streams.engine.broker import EmbeddedBroker, free_port
from streams.engine.topics import PERSON_EVENTS
from streams.pipeline.generations import Generation, switch_generation
from streams.settings import Settings
from tests.factories import unique, unique_phone
from tests.integration.processes import ServiceProcess, http_json, new_worker
from tests.integration.test_overrides import opted_out, remove
from tests.integration.test_pipeline import OTHER_SENDER, SENDER, eventually, metric, senders
from tests.integration.test_replay import read_all
from tests.twilio_standin import AUTH_TOKEN, post_webhook, sid, status_form

pytestmark = pytest.mark.integration

PUBLIC = "https://optouts.example.com"
SEND_TIMEOUT = 3.0  # OPTOUTS_SEND_TIMEOUT: an override or webhook answers 503 past it
LAG_INTERVAL = 1.0  # OPTOUTS_LAG_INTERVAL: how often the worker looks at the brokers
# The bounds this test holds the worker to:
NOT_READY_WITHIN = 2 * LAG_INTERVAL + 3  # after the cut: one interval, one look's timeout, slack
ANSWER_WITHIN = SEND_TIMEOUT + 2  # an override or webhook during the outage answers 503 in time
READY_AGAIN_WITHIN = 60.0  # after the restore: reconnect, rejoin the group (6 s on Tansu), look again
OUTAGE = 10.0  # longer than the session timeout (6 s in tests): the group forgets the worker


@dataclass
class Outage:
    proxy: TcpProxy
    worker: ServiceProcess

    @property
    def brokers(self) -> str:
        return self.proxy.address


@pytest.fixture
def outage(tmp_path: Path, output_dir: Path) -> Iterator[Outage]:
    app_id = unique("optouts-cut")
    broker_port = free_port()
    proxy = TcpProxy(broker_port).start()
    broker = EmbeddedBroker(
        port=broker_port, advertised=proxy.address, log_path=output_dir / f"{app_id}-broker.log"
    ).start()
    worker = new_worker(
        proxy.address,
        tmp_path / "worker",
        app_id,
        output_dir / f"{app_id}.log",
        OPTOUTS_SEND_TIMEOUT=str(SEND_TIMEOUT),
        OPTOUTS_LAG_INTERVAL=str(LAG_INTERVAL),
        OPTOUTS_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        OPTOUTS_PUBLIC_BASE_URL=PUBLIC,
    )
    try:
        worker.start()
        yield Outage(proxy, worker)
    finally:
        worker.stop()
        proxy.stop()
        broker.stop()


def ready(worker: ServiceProcess) -> tuple[int, Any]:
    return http_json("GET", f"{worker.url}/ready", timeout=5)


def person_log(brokers: str, person: str) -> list[dict[str, Any]]:
    return [
        json.loads(value or b"") for key, value in read_all(brokers, PERSON_EVENTS) if key == person.encode()
    ]


def test_while_the_brokers_are_cut_off_nothing_is_acknowledged_and_the_worker_recovers_by_itself(
    outage: Outage,
) -> None:
    worker, proxy = outage.worker, outage.proxy
    app_id = worker.env["OPTOUTS_APP_ID"]
    person, _ = opted_out(worker, outage.brokers, SENDER, OTHER_SENDER)
    pid = worker.process.pid if worker.process else None

    proxy.cut()
    cut_at = time.monotonic()

    status, body = eventually(
        lambda: (answer := ready(worker))[0] == 503 and answer, timeout=NOT_READY_WITHIN
    )
    assert body["brokers_reachable"] is False, body
    assert metric(worker, "optouts_broker_reachable") == 0

    started = time.monotonic()
    status, refused = remove(worker, person, SENDER)
    assert (status, time.monotonic() - started < ANSWER_WITHIN) == (503, True), refused
    assert "may or may not be in the log" in refused["error"] and refused["event_id"], refused

    # Another person's: a webhook's event refused with 503 may still reach the log later (Twilio
    # does not retry a 5xx; the event is idempotent), which an override's must not.
    blocked = status_form(
        message_sid=sid(), status="failed", to=unique_phone(), from_=SENDER, error_code="21610"
    )
    started = time.monotonic()
    webhook = post_webhook(
        worker.url, f"/twilio/status?person_id={unique('person')}", blocked, public_base_url=PUBLIC
    )
    assert (webhook.status, time.monotonic() - started < ANSWER_WITHIN) == (503, True), webhook.body
    assert senders(worker, person) == {SENDER, OTHER_SENDER}  # reads answer from the table all along

    time.sleep(max(0.0, OUTAGE - (time.monotonic() - cut_at)))
    assert ready(worker)[0] == 503
    proxy.restore()
    eventually(lambda: ready(worker)[0] == 200, timeout=READY_AGAIN_WITHIN)
    assert worker.process is not None and worker.process.pid == pid  # the same process: no restart

    # It folds what comes next, and an override is appended (once) again.
    later, _ = opted_out(worker, outage.brokers, SENDER)
    assert later != person
    status, event = remove(worker, person, OTHER_SENDER)
    assert status == 200, event
    assert senders(worker, person) == {SENDER}

    # The refused override did not reach the log here (its producer was discarded while cut off): the
    # history would have shown its event_id if it had.
    logged = [(e["type"], e["sender"]) for e in person_log(outage.brokers, person)]
    assert sorted(logged) == sorted(
        [
            ("opt_out.recorded", SENDER),
            ("opt_out.recorded", OTHER_SENDER),
            ("opt_out.overridden", OTHER_SENDER),
        ]
    )
    assert metric(worker, "optouts_broker_reachable") == 1

    # It still follows the control topic: a replay's switch restarts it into the new generation.
    asyncio.run(
        switch_generation(
            Settings(kafka_brokers=outage.brokers, app_id=app_id), Generation(app_id, 1), by="test"
        )
    )
    eventually(lambda: (ready(worker)[1] or {}).get("app_id") == f"{app_id}-g1", timeout=READY_AGAIN_WITHIN)
