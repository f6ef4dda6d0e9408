"""`optouts bench` (`make bench`): throughput, latency and memory of the whole service, measured on
generated logs (mixes) on the embedded broker (or OPTOUTS_KAFKA_BROKERS). Prints progress, then one
JSON line per mix; with `--baseline REF`, the same for another commit side by side
(streams.devtools.bench_compare).

Figures are printed, never asserted: the machine is shared and noisy, so compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from yarl import URL

from streams.devtools.bench_compare import Option, compare
from streams.devtools.workload import SENDERS, generate, person_id, phones
from streams.engine.broker import EmbeddedBroker, free_port, stopped_with_this_process
from streams.engine.recovery import log_end_offsets
from streams.engine.topics import MESSAGING_EVENTS, OPT_OUTS, create_topics
from streams.progress import Progress
from streams.rebuild.replay import replay
from streams.settings import Settings
from streams.web.api_client import Api

MARKER_SENDER = "+14155550000"


# What each mix is; all are `streams.devtools.workload`'s mix of events, over different numbers of persons.
MIXES = {
    "cold": "over --persons persons, most sends to a phone not seen before",
    "steady": "over --steady-persons persons, phones repeat: most sends to known recipients",
}
# Passed on as they are to a bench of another commit (--baseline), which may lack the newer ones.
FORWARDED = [
    ("--events", "events"),
    ("--persons", "persons"),
    ("--steady-persons", "steady_persons"),
    ("--samples", "samples"),
    ("--background-rate", "background_rate"),
    ("--read-rate", "read_rate"),
    ("--read-seconds", "read_seconds"),
    ("--seed", "seed"),
    ("--workers", "workers"),
]


def add_bench_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench", help="measure throughput, latency and memory; print one JSON line per mix"
    )
    bench.add_argument("-n", "--events", type=int, default=200_000, help="input events in the log (200000)")
    bench.add_argument("--persons", type=int, default=100_000, help="distinct persons (100000)")
    bench.add_argument(
        "--steady-persons", type=int, default=10_000, help="distinct persons of the steady mix (10000)"
    )
    bench.add_argument(
        "--mixes",
        type=mix_list,
        default=None,
        help="the logs measured, in order, each on a fresh log: "
        + "; ".join(f"{name}: {what}" for name, what in MIXES.items())
        + " (cold,steady; cold alone on OPTOUTS_KAFKA_BROKERS, which holds one log)",
    )
    bench.add_argument("--samples", type=int, default=200, help="STOP latency samples (200)")
    bench.add_argument(
        "--background-rate", type=int, default=1000, help="sends/s to the mix's persons during them (1000)"
    )
    bench.add_argument("--read-rate", type=int, default=500, help="GET requests/s for read latency (500)")
    bench.add_argument("--read-seconds", type=float, default=5.0, help="how long reads are measured (5)")
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the partitions, as on one machine (1)",
    )
    bench.add_argument(
        "--baseline",
        metavar="REF",
        help="also bench commit REF (a temporary git worktree, run with this virtualenv), back to back"
        " with this checkout, each run on a fresh embedded broker; print both and their ratios",
    )
    bench.add_argument(
        "--rounds", type=int, default=1, help="with --baseline: this, baseline, this, baseline... (1)"
    )

    def handle(args: argparse.Namespace, settings: Settings) -> int:
        if args.baseline is None:
            return asyncio.run(bench_command(args, settings))
        options = [Option(flag, getattr(args, dest), bench.get_default(dest)) for flag, dest in FORWARDED]
        return compare(args.baseline, args.mixes or list(MIXES), options, args.rounds, settings)

    bench.set_defaults(handler=handle)


def mix_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MIXES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"mixes are {', '.join(MIXES)}, comma-separated; not {text!r}")
    return names


def mixes(args: argparse.Namespace, settings: Settings) -> list[str]:
    """The mixes asked for. Each needs an empty log, and the topic names are fixed: a broker we are
    given holds one."""
    if args.mixes is None:
        if settings.brokers and args.baseline is None:
            progress("OPTOUTS_KAFKA_BROKERS holds one log: the cold mix only (--mixes steady for the other)")
            return ["cold"]
        return list(MIXES)
    if settings.brokers and len(args.mixes) > 1:
        raise SystemExit("OPTOUTS_KAFKA_BROKERS holds one log: pass one mix (--mixes cold or --mixes steady)")
    return list(args.mixes)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


async def bench_command(args: argparse.Namespace, settings: Settings) -> int:
    for mix in mixes(args, settings):
        figures = await measure_mix(args, settings, mix)
        print(json.dumps({"mix": mix, **figures}), flush=True)
    return 0


async def measure_mix(args: argparse.Namespace, settings: Settings, mix: str) -> dict[str, Any]:
    """One mix on an empty log: a fresh embedded broker of its own unless one is configured."""
    persons = args.steady_persons if mix == "steady" else args.persons
    progress(f"the {mix} mix")
    broker = None if settings.brokers else EmbeddedBroker().start()
    if broker is not None:
        settings = settings.model_copy(update={"kafka_brokers": broker.address})
    work = Path(tempfile.mkdtemp(prefix=f"optouts-bench-{mix}-"))
    try:
        return await measure(argparse.Namespace(**{**vars(args), "persons": persons}), settings, work)
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)


async def measure(args: argparse.Namespace, settings: Settings, work: Path) -> dict[str, Any]:
    await create_topics(settings)
    servers = settings.brokers
    already = await log_end_offsets(servers, await end_offsets(servers, MESSAGING_EVENTS))
    if any(already.values()):
        raise SystemExit(f"{MESSAGING_EVENTS} already holds events: run the benchmark on an empty cluster")
    progress(f"producing {args.events:,} events for {args.persons:,} persons on {','.join(servers)}")
    marker = f"bench-marker-{uuid.uuid4().hex[:8]}"
    marker_phone = "+19995550100"
    events = [
        (event["phone"].encode(), json.dumps(event).encode())
        for event in chain(
            generate(args.events - 2, args.persons, args.seed),
            [
                _marker_event("message.sent", marker, marker_phone),
                _marker_event("message.received", marker, marker_phone),
            ],
        )
    ]
    started = time.perf_counter()
    await produce(servers, events)
    progress(f"produced in {time.perf_counter() - started:.1f} s")

    raw = await raw_consume(servers, len(events))
    progress(f"raw consume + decode: {raw:,.0f} events/s")

    app_id = f"optouts-bench-{uuid.uuid4().hex[:8]}"
    token = secrets.token_urlsafe(24)  # the API as operators use it: the token checked on every read
    # Started together, so that they join the group in one rebalance (each its own data dir).
    workers = [
        Worker(settings, app_id, token, work / f"data{i}", work / f"worker{i}.log")
        for i in range(args.workers)
    ]
    try:
        pipeline = await measure_pipeline(workers, len(events), marker)
        progress(f"pipeline: {pipeline:,.0f} events/s through both stages")
        p50, p99 = await stop_visible(servers, args)
        progress(f"STOP visible: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        read_p99 = await read_latency(workers, args)
        progress(f"GET list: p99 {read_p99:.1f} ms at {args.read_rate}/s")
        # The service's memory: with several workers, the sum of their peaks.
        rss = sum(worker.peak_rss_mb() for worker in workers)
        # The whole log again, into a new generation the workers are not switched to.
        summary = await replay(settings.model_copy(update={"app_id": app_id}), switch=False)
        progress(f"replay: {summary.events_per_s:,.0f} events/s")
    finally:
        for worker in workers:
            worker.stop()
    return {
        "n": len(events),
        "persons": args.persons,
        "raw_consume_events_per_s": round(raw),
        "pipeline_events_per_s": round(pipeline),
        "stop_visible_p50_ms": _round(p50, 1),
        "stop_visible_p99_ms": _round(p99, 1),
        "replay_events_per_s": round(summary.events_per_s),
        "read_p99_ms": round(read_p99, 2),
        "rss_mb": round(rss, 1),
        "workers": args.workers,
        "standby_replicas": settings.standby_replicas,
        "cores": os.cpu_count(),
        "broker": ",".join(servers),
    }


class Worker:
    """One `optouts worker` process of a fresh app id, measured from the outside."""

    def __init__(self, settings: Settings, app_id: str, token: str, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = Api(URL(self.url), token)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUTS_")}
        env.update(
            OPTOUTS_KAFKA_BROKERS=",".join(settings.brokers),
            OPTOUTS_APP_ID=app_id,
            OPTOUTS_OPERATOR_TOKEN=token,
            OPTOUTS_DATA_DIR=str(data_dir),
            OPTOUTS_WEB_HOST="127.0.0.1",
            OPTOUTS_WEB_PORT=str(self.port),
            OPTOUTS_SESSION_TIMEOUT=str(settings.session_timeout),
            OPTOUTS_REBALANCE_TIMEOUT=str(settings.rebalance_timeout),
            OPTOUTS_PARTITIONS=str(settings.partitions),
            OPTOUTS_STANDBY_REPLICAS=str(settings.standby_replicas),
            OPTOUTS_FETCH_MAX_WAIT=str(settings.fetch_max_wait),
            OPTOUTS_LOG_LEVEL="warning",
        )
        # Stopped by the kernel if the bench dies, even by SIGTERM or SIGKILL (no handler runs): a
        # worker left behind went on folding, on the cores the next run measures with.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            preexec_fn=stopped_with_this_process,
        )

    async def folded(self, http: aiohttp.ClientSession, stage: str = "resolve") -> float:
        try:
            async with http.get(f"{self.url}/metrics") as response:
                text = await response.text()
        except aiohttp.ClientError:
            return 0.0
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(f'optouts_events_folded_total{{stage="{stage}"')
        )

    async def listed(self, http: aiohttp.ClientSession, person: str) -> bool:
        async with http.get(self.api.url("people", person, "sms-opt-outs")) as response:
            return bool((await response.json())["opt_outs"])

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        return peak_kb / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def measure_pipeline(workers: list[Worker], total: int, marker: str) -> float:
    """Input events per second from the first event folded until every event was folded (counted
    on the workers' /metrics) and the marker, the last event of its partition, shows on the API:
    partitions are folded side by side, so neither alone says the log is done."""

    async def folded(http: aiohttp.ClientSession, stage: str = "resolve") -> float:
        return sum([await worker.folded(http, stage) for worker in workers])

    async with workers[0].api.session() as http:
        while await folded(http) == 0:
            await asyncio.sleep(0.02)
        first = reported = time.perf_counter()
        progress("the workers are folding" if len(workers) > 1 else "the worker is folding")
        while (done := await folded(http)) < total or not await workers[0].listed(http, marker):
            if time.perf_counter() - reported >= 5:
                reported = time.perf_counter()
                persons = await folded(http, stage="project")
                progress(
                    f"{reported - first:.0f} s: folded {done:,.0f} of {total:,} events,"
                    f" then {persons:,.0f} person events"
                )
            await asyncio.sleep(0.05)
        return total / (time.perf_counter() - first)


async def produce(servers: list[str], records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    shown = Progress("[bench] producing", len(records), quiet=True)  # a bar on a terminal only
    try:
        for start in range(0, len(records), 5000):
            batch = [
                await producer.send(MESSAGING_EVENTS, value, key=key)
                for key, value in records[start : start + 5000]
            ]
            await asyncio.gather(*batch)
            shown.advance(len(batch))
    finally:
        shown.finish()
        await producer.stop()


async def end_offsets(servers: list[str], topic: str) -> dict[Any, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=servers)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def raw_consume(servers: list[str], total: int) -> float:
    """The ceiling: a plain aiokafka consumer reading and decoding the log (no fold, no writes)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers, enable_auto_commit=False, max_partition_fetch_bytes=8 << 20
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(MESSAGING_EVENTS, p)
            for p in sorted(consumer.partitions_for_topic(MESSAGING_EVENTS) or [])
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        started = time.perf_counter()
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                for record in records:
                    json.loads(record.value)
                seen += len(records)
        return total / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def stop_visible(servers: list[str], args: argparse.Namespace) -> tuple[float, float]:
    """Milliseconds from a STOP's publication until the person's new list is on `sms-opt-outs`, with
    background sends running at `args.background_rate` per second."""
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=0)
    await producer.start()
    # A short fetch wait: a broker may hold a fetch for its whole wait although records came in
    # (Tansu does), and the watcher's wait is not the pipeline's latency.
    watcher = AIOKafkaConsumer(
        OPT_OUTS, bootstrap_servers=servers, auto_offset_reset="latest", fetch_max_wait_ms=5
    )
    await watcher.start()
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    stop = asyncio.Event()

    async def background() -> None:
        rng = random.Random(args.seed)
        phone_of = phones(args.persons)
        interval = 1 / args.background_rate
        next_at = time.perf_counter()
        while not stop.is_set():
            event = background_send(rng, phone_of)
            await producer.send(MESSAGING_EVENTS, json.dumps(event).encode(), key=event["phone"].encode())
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    async def watch() -> None:
        while len(latencies) < args.samples:
            batch = await watcher.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    person = record.key.decode()
                    if person in sent_at and json.loads(record.value)["opt_outs"]:
                        latencies.append((now - sent_at.pop(person)) * 1000)

    async def sample(index: int) -> None:
        person, phone = f"bench-sample-{uuid.uuid4().hex[:8]}", f"+1999{index:07d}"
        sent = _marker_event("message.sent", person, phone)
        await (await producer.send(MESSAGING_EVENTS, json.dumps(sent).encode(), key=phone.encode()))
        stop_event = json.dumps(_marker_event("message.received", person, phone)).encode()
        sent_at[person] = time.perf_counter()
        await producer.send(MESSAGING_EVENTS, stop_event, key=phone.encode())

    await asyncio.sleep(1.0)  # let the watcher's first fetch position itself at the end
    load = asyncio.create_task(background())
    watching = asyncio.create_task(watch())
    try:
        for index in range(args.samples):
            await sample(index)
            await asyncio.sleep(0.02)
        await asyncio.wait_for(watching, timeout=120)
    except TimeoutError:
        # A worker slower than the background load never catches up: say so, report what came.
        progress(f"only {len(latencies)} of {args.samples} STOPs showed within 120 s")
    finally:
        stop.set()
        await load
        await watcher.stop()
        await producer.stop()
    if not latencies:
        return float("nan"), float("nan")
    return statistics.median(latencies), percentile(latencies, 99)


async def read_latency(workers: list[Worker], args: argparse.Namespace) -> float:
    """p99 milliseconds of `GET /people/{id}/sms-opt-outs` at `args.read_rate` requests per second,
    spread over the workers as a load balancer would (a worker forwards what another owns)."""
    rng = random.Random(args.seed)
    total = int(args.read_rate * args.read_seconds)
    latencies: list[float] = []
    async with workers[0].api.session() as http:

        async def one(worker: Worker, person: str) -> None:
            started = time.perf_counter()
            async with http.get(worker.api.url("people", person, "sms-opt-outs")) as response:
                await response.read()
            latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        tasks = []
        for index in range(total):
            await asyncio.sleep(max(0.0, started + index / args.read_rate - time.perf_counter()))
            worker = workers[index % len(workers)]
            tasks.append(asyncio.create_task(one(worker, f"person-{rng.randrange(args.persons)}")))
        await asyncio.gather(*tasks)
    return percentile(latencies, 99)


def _round(value: float, digits: int) -> float | None:
    return None if value != value else round(value, digits)  # NaN (nothing measured) -> null


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def background_send(rng: random.Random, phone_of: Sequence[str]) -> dict[str, Any]:
    """A send now to one of the mix's persons at their phone, from one of the log's senders: what
    the log's own sends are, mostly to a recipient the fold already knows.

    The background used to send to one phone, each time for another person. That phone's contacts
    grew by a person a send, and each new person copies and re-encodes them all: the STOP's tail
    measured that one phone, not the worker (docs/performance.md, "The STOP's tail")."""
    person = rng.randrange(len(phone_of))
    return _marker_event("message.sent", person_id(person), phone_of[person], sender=rng.choice(SENDERS))


def _marker_event(kind: str, person: str, phone: str, sender: str = MARKER_SENDER) -> dict[str, Any]:
    sid = f"SM{uuid.uuid4().hex}"
    event: dict[str, Any] = {
        "type": kind,
        "event_id": sid,
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "phone": phone,
        "sender": sender,
        "message_sid": sid,
    }
    if kind == "message.sent":
        event["person_id"] = person
    else:
        event.update(body="STOP", account_sid="AC00000000000000000000000000000000")
    return event
