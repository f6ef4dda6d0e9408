"""`optouts soak` (`make soak`): the chaos soak. A producer streams a generated log while one or more
worker processes of one app id, each on its own data dir, go through a seeded schedule of faults:
SIGKILL and a restart on the same data dir (`kill`) or on an empty one (`wipe`), SIGSTOP past the
session timeout then SIGCONT (`zombie`: the group moves its partitions to the others, then it wakes in
the middle of what it was doing), and the broker stalling for seconds behind a TCP proxy (`stall`).
At the end every person's list (HTTP API, table changelog, `sms-opt-outs`) and every phone's contacts
must be the pure fold of the log (`streams.rebuild.verify`). Prints progress on stderr, then any
differences and one JSON line on stdout.

The log is cut into one slice per step of the schedule, each streamed as the step begins (after the
workers killed in the step before are started again), so that every restart has a backlog to fold and
most faults land mid-batch: between a table write, the sends and the offset commit, where a crash or a
pause can lose, repeat or reorder work.
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
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from schemas.errors import OptOutsError
from streams.devtools.tcp_proxy import TcpProxy
from streams.devtools.workload import generate
from streams.engine.broker import EmbeddedBroker, free_port
from streams.engine.log_reader import read, snapshot, total
from streams.engine.topics import (
    CONTACTS_TABLE,
    MESSAGING_EVENTS,
    OPT_OUTS,
    OPT_OUTS_TABLE,
    PERSON_EVENTS,
    changelog_topic,
    create_topics,
)
from streams.engine.versions import version_of
from streams.progress import Progress
from streams.rebuild.verify import Verification, VerifyError, verify
from streams.settings import Settings

EXIT_AGREE, EXIT_DIFFERENT, EXIT_FAILED = 0, 1, 2
FAULTS = ("kill", "wipe", "zombie", "stall")
_STARTING_SHARE = 0.25  # of faults, during start-up: table recovery, the group join, a rebalance
_STARTING_SECONDS = (0.5, 8.0)  # after the step began; a start-up takes about this long
_ZOMBIE_EXTRA = (2.0, 8.0)  # seconds a zombie sleeps past the session timeout
_STALL_SHARE = (0.3, 2.0)  # of the session timeout, how long the broker stalls: short and past it
_FOLD_WAIT = 120.0  # seconds a fault waits at most for its share of the slice to be folded
_READY_WAIT = 180.0  # seconds the last workers may take to answer HTTP
_SHOWN = 10  # differences printed


class SoakError(OptOutsError):
    """The soak could not run to its verdict (a worker that died by itself is one)."""


def add_soak_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    soak = commands.add_parser(
        "soak",
        help="stream events while workers are killed, wiped, paused and the broker stalls;"
        " check every list against the log",
    )
    soak.add_argument("-n", "--events", type=int, default=20_000, help="input events streamed (20000)")
    soak.add_argument("--workers", type=int, default=1, help="worker processes of the one app id (1)")
    soak.add_argument(
        "--kills", type=int, default=5, help="SIGKILLs of a worker, started again on its data dir (5)"
    )
    soak.add_argument(
        "--wipes", type=int, default=0, help="SIGKILLs of a worker, started again on an empty data dir (0)"
    )
    soak.add_argument(
        "--zombies",
        type=int,
        default=0,
        help="SIGSTOPs of a worker past the session timeout, then SIGCONT (0)",
    )
    soak.add_argument(
        "--stalls", type=int, default=0, help="broker stalls through a TCP proxy (0; embedded broker only)"
    )
    soak.add_argument("--persons", type=int, help="distinct persons (default: events / 10)")
    soak.add_argument("--seed", type=int, help="seed of the events and the schedule (default: random)")
    soak.add_argument("--rate", type=float, default=2000.0, help="events/s the producer streams (2000)")
    soak.add_argument(
        "--timeout", type=float, default=300.0, help="seconds the workers have to catch up at the end (300)"
    )
    soak.add_argument(
        "--session-timeout",
        type=float,
        default=6.0,
        help="the workers' session and rebalance timeouts, seconds (6): a restart waits for them",
    )
    soak.add_argument("--keep", action="store_true", help="keep the work dir (data dirs, worker logs)")
    soak.set_defaults(handler=soak_command, could_not_run=2)


def progress(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Plan:
    events: int
    persons: int
    seed: int
    rate: float
    timeout: float
    workers: int
    session_timeout: float
    schedule: tuple[str, ...]  # one fault per step but the last, in order


def schedule(seed: int, **counts: int) -> tuple[str, ...]:
    """The faults (`kill=3, zombie=2`, ...) in a seeded order."""
    faults = [kind for kind in FAULTS for _ in range(counts.get(kind, 0))]
    random.Random(f"soak-schedule-{seed}").shuffle(faults)
    return tuple(faults)


@dataclass(frozen=True)
class Fault:
    step: int
    kind: str  # one of FAULTS
    worker: int | None  # the victim; None for a stall (every client)
    moment: str  # "starting" or "folding"
    after_s: float  # since the step began
    folded: int  # events stage 1 had folded in the step, all workers (redeliveries included)
    seconds: float = 0.0  # how long a zombie slept or the broker stalled

    def told(self) -> str:
        victim = f"worker {self.worker}" if self.worker is not None else "the broker"
        what = {
            "kill": f"killed {victim}",
            "wipe": f"killed {victim} and emptied its data dir",
            "zombie": f"paused {victim} for {self.seconds:.1f} s (SIGSTOP, SIGCONT)",
            "stall": f"stalled {victim} for {self.seconds:.1f} s",
        }[self.kind]
        return (
            f"step {self.step}: {what} while {self.moment}, {self.after_s:.1f} s into the step,"
            f" {self.folded:,} events folded"
        )


@dataclass
class Outcome:
    faults: list[Fault] = field(default_factory=list)
    verification: Verification | None = None
    problems: list[str] = field(default_factory=list)  # why the logs and the lists disagree
    evidence: list[str] = field(default_factory=list)  # where the first differing persons' records are
    timings: dict[str, float] = field(default_factory=dict)
    folded: int = 0  # events stage 1 folded over all workers' incarnations
    verify_passes: int = 0


def soak_command(args: argparse.Namespace, settings: Settings) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    counts = {"kill": args.kills, "wipe": args.wipes, "zombie": args.zombies, "stall": args.stalls}
    plan = Plan(
        events=args.events,
        persons=args.persons or max(10, args.events // 10),
        seed=seed,
        rate=args.rate,
        timeout=args.timeout,
        workers=args.workers,
        session_timeout=args.session_timeout,
        schedule=schedule(seed, **counts),
    )
    refusal = (
        "give every fault count as 0 or more"
        if min(counts.values()) < 0
        else "give at least one worker (--workers 1 or more)"
        if plan.workers < 1
        else "give at least one event per step (--events more than the faults)"
        if plan.events < len(plan.schedule) + 1
        else "--stalls needs the embedded broker (a proxy in front of it); unset OPTOUTS_KAFKA_BROKERS"
        if args.stalls and settings.brokers
        else None
    )
    if refusal:
        print(f"soak: {refusal}", file=sys.stderr)
        return EXIT_FAILED
    work = Path(tempfile.mkdtemp(prefix="optouts-soak-"))
    broker = proxy = None
    if not settings.brokers:
        # The broker advertises the proxy, so that every client (workers, producer, verify) can be
        # stalled; without stalls there is no proxy in between.
        port = free_port()
        proxy = TcpProxy(port).start() if args.stalls else None
        broker = EmbeddedBroker(
            port=port, advertised=proxy.address if proxy else None, log_path=work / "broker.log"
        ).start()
    token = settings.operator_token or SecretStr(secrets.token_urlsafe(24))  # one for every worker
    settings = settings.model_copy(
        update={
            "kafka_brokers": proxy.address if proxy else broker.address if broker else settings.kafka_brokers,
            "app_id": f"optouts-soak-{seed}-{uuid.uuid4().hex[:6]}",
            "data_dir": work / "data",
            "web_host": "127.0.0.1",
            "session_timeout": args.session_timeout,
            "rebalance_timeout": args.session_timeout,
            "operator_token": token,
        }
    )
    progress(
        f"{plan.events:,} events for {plan.persons:,} persons, {plan.workers} worker(s),"
        f" faults {' '.join(plan.schedule) or 'none'}, seed {plan.seed}, on {settings.kafka_brokers};"
        f" work dir {work}"
    )
    started = time.monotonic()
    outcome = Outcome()
    failure = None
    try:
        asyncio.run(soak(plan, settings, work, outcome, proxy))
    except (OptOutsError, OSError) as exc:
        failure = str(exc)
    finally:
        if broker is not None:
            broker.stop()
        if proxy is not None:
            proxy.stop()
    outcome.timings["total_s"] = time.monotonic() - started
    status = EXIT_FAILED if failure else EXIT_DIFFERENT if outcome.problems else EXIT_AGREE
    for line in outcome.problems[:_SHOWN]:
        print(line, flush=True)
    if len(outcome.problems) > _SHOWN:
        print(f"... and {len(outcome.problems) - _SHOWN:,} more: {work / 'problems.txt'}", flush=True)
    for line in outcome.evidence:
        print(line, flush=True)
    if failure:
        print(f"soak failed: {failure}", flush=True)
    if status == EXIT_AGREE and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        progress(f"kept {work} (worker-N.log, data/wN/)")
    print(json.dumps(summary(plan, settings, outcome, status, failure)), flush=True)
    return status


async def soak(plan: Plan, settings: Settings, work: Path, outcome: Outcome, proxy: TcpProxy | None) -> None:
    await create_topics(settings)
    if total(await snapshot(settings.brokers, [MESSAGING_EVENTS])):
        raise SoakError(f"{MESSAGING_EVENTS} already holds events: run the soak on an empty cluster")
    events = list(generate(plan.events, plan.persons, plan.seed))
    slices = cut(events, len(plan.schedule) + 1)
    # Fault moments and victims have a stream of their own: the same seed gives the same events,
    # faults and moments.
    moments = random.Random(f"soak-kills-{plan.seed}")
    workers = [Worker(settings, work, n) for n in range(plan.workers)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.brokers, acks="all", linger_ms=5)
    await producer.start()
    started = time.monotonic()
    streaming: asyncio.Task[None] | None = None
    # A bar on a terminal only: the faults are told above it, as in a log.
    streamed = Progress("[soak] streaming", len(events), quiet=True)
    try:
        for step, part in enumerate(slices):
            for worker in workers:
                if worker.process is None:
                    worker.start(step)
            began, before = time.monotonic(), await folded_by(workers)
            streaming = asyncio.create_task(stream(producer, part, plan.rate, streamed))
            if step < len(plan.schedule):
                fault = await inflict(
                    plan.schedule[step], step, workers, proxy, moments, (began, before, len(part)), plan
                )
                outcome.faults.append(fault)
                progress(fault.told())
            await streaming
        streamed.finish()
        outcome.timings["produce_and_fault_s"] = time.monotonic() - started
        progress("streamed every event; the last step runs to the end")
        caught_up = time.monotonic()
        for worker in workers:
            await worker.until_serving(_READY_WAIT)
        await until_agreed(plan, settings, workers[0].url, workers, outcome)
        outcome.timings["catch_up_and_verify_s"] = time.monotonic() - caught_up
        outcome.folded = sum(worker.folded_before for worker in workers) + int(await folded_by(workers))
        if outcome.problems and outcome.verification:
            outcome.evidence = await evidence(settings, outcome)
            (work / "problems.txt").write_text("\n".join([*outcome.problems, *outcome.evidence, ""]))
    finally:
        streamed.finish()  # a bar left running would keep the terminal's cursor hidden
        if proxy is not None:
            proxy.resume()  # a soak that failed mid-stall: the workers' graceful stop needs the broker
        for worker in workers:
            worker.stop()
        if streaming is not None and not streaming.done():  # the soak failed while it streamed
            streaming.cancel()
            await asyncio.gather(streaming, return_exceptions=True)
        await producer.stop()


def cut(events: Sequence[dict[str, Any]], parts: int) -> list[list[dict[str, Any]]]:
    """`events` in `parts` consecutive slices of near-equal size (a redelivery may be in a later slice
    than its original: de-duplication must survive the restarts in between)."""
    size, extra = divmod(len(events), parts)
    slices, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        slices.append(list(events[start:end]))
        start = end
    return slices


async def stream(
    producer: AIOKafkaProducer, events: Sequence[dict[str, Any]], rate: float, streamed: Progress
) -> None:
    """Send `events` keyed by phone at about `rate` per second, each acknowledged by all replicas."""
    began = time.monotonic()
    pending = []
    for index, event in enumerate(events):
        pending.append(
            await producer.send(MESSAGING_EVENTS, json.dumps(event).encode(), key=event["phone"].encode())
        )
        if index % 100 == 99:
            await asyncio.gather(*pending)
            streamed.advance(len(pending))
            pending.clear()
            await asyncio.sleep(max(0.0, began + (index + 1) / rate - time.monotonic()))
    await asyncio.gather(*pending)
    streamed.advance(len(pending))


async def inflict(
    kind: str,
    step: int,
    workers: Sequence[Worker],
    proxy: TcpProxy | None,
    moments: random.Random,
    slice_: tuple[float, float, int],
    plan: Plan,
) -> Fault:
    """The step's fault, at a random moment: either while the workers start (a random time after the
    step began: recovering tables, joining the group, rebalancing) or once the workers folded a random
    share of the step's slice (mid-backlog, between a batch's table writes, its sends and the commit).
    A killed or wiped worker is started again when the next step begins; a zombie wakes and a stalled
    broker resumes within the step."""
    began, before, backlog = slice_
    victim = moments.randrange(len(workers)) if kind != "stall" else None
    if moments.random() < _STARTING_SHARE:
        moment, delay = "starting", moments.uniform(*_STARTING_SECONDS)
        await alive_for(workers, delay)
    else:
        moment, target = "folding", max(1, round(moments.uniform(0.05, 0.95) * backlog))
        deadline = time.monotonic() + _FOLD_WAIT
        while await folded_by(workers) - before < target:
            if time.monotonic() > deadline:
                raise SoakError(
                    f"step {step}: the workers folded fewer than {target:,} events in {_FOLD_WAIT:.0f} s:"
                    f" see {', '.join(str(worker.log) for worker in workers)}"
                )
            await alive_for(workers, 0.02)
    folded = int(await folded_by(workers) - before)
    after = time.monotonic() - began
    seconds = 0.0
    if kind in ("kill", "wipe"):
        assert victim is not None
        workers[victim].kill(wipe=kind == "wipe")
    elif kind == "zombie":
        assert victim is not None
        # Past the session timeout, so that the group gives its partitions to the others (or, alone,
        # to itself again after it rejoins) while it sleeps in the middle of what it was doing.
        seconds = plan.session_timeout + moments.uniform(*_ZOMBIE_EXTRA)
        workers[victim].pause()
        try:
            await asyncio.sleep(seconds)
        finally:
            workers[victim].resume()
    else:
        if proxy is None:
            raise SoakError("a stall needs the proxy in front of the embedded broker")
        seconds = plan.session_timeout * moments.uniform(*_STALL_SHARE)
        proxy.stall()
        try:
            await alive_for(workers, seconds)
        finally:
            proxy.resume()
    return Fault(step, kind, victim, moment, round(after, 2), folded, round(seconds, 1))


async def alive_for(workers: Sequence[Worker], seconds: float) -> None:
    """Wait `seconds`, failing the soak as soon as a worker exits by itself."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        for worker in workers:
            worker.running()
        await asyncio.sleep(min(left, 0.1))
    for worker in workers:
        worker.running()


async def folded_by(workers: Sequence[Worker]) -> float:
    """Events stage 1 folded by the running workers since each last started."""
    return sum([await worker.folded() for worker in workers if worker.process is not None])


async def until_agreed(
    plan: Plan, settings: Settings, api: str, workers: Sequence[Worker], outcome: Outcome
) -> None:
    """Verify (through the API at `api`: any worker answers for every person) until the lists agree
    with the log, the same disagreement is found twice with nothing left to fold (a real difference,
    not lag), or the timeout passes."""
    deadline = time.monotonic() + plan.timeout
    previous: list[str] | None = None
    while True:
        began = time.monotonic()
        try:
            wait = max(1.0, deadline - time.monotonic())
            result = await verify(settings, api=api, wait=wait, contacts=True)
        except VerifyError as exc:
            raise SoakError(f"could not verify: {exc}") from exc
        outcome.verify_passes += 1
        outcome.timings["last_verify_s"] = time.monotonic() - began
        outcome.verification, outcome.problems = result, problems(result)
        if not outcome.problems:
            return
        settled = not result.behind and not result.not_judged and outcome.problems == previous
        if settled or time.monotonic() >= deadline:
            return
        previous = outcome.problems
        progress(
            f"not agreed yet ({len(outcome.problems):,} problems, {result.behind:,} events behind): again"
        )
        await asyncio.sleep(2.0)


def problems(result: Verification) -> list[str]:
    """Everything that makes the lists not the pure fold of the log, one line each; empty when none.
    Unlike `optouts verify`, facts missing from the person log and events the fold does not derive
    are failures here: the soak changes no setting, so the person log must be the fold's, exactly."""
    lines = [
        f"person {person}: {difference}"
        for person, differences in sorted(result.differences.items())
        for difference in differences
    ]
    lines += [f"person {person}: changed while verifying" for person in sorted(result.not_judged)]
    lines += [
        f"phone {phone}: {difference}"
        for phone, differences in sorted(result.contacts_differences.items())
        for difference in differences
    ]
    if result.behind:
        lines.append(f"the worker had not folded {result.behind:,} events when the wait ended")
    if result.pending_facts or result.superseded_facts:
        lines.append(
            f"{result.pending_facts + result.superseded_facts:,} facts the fold derives from"
            f" {MESSAGING_EVENTS} are not in {PERSON_EVENTS} (lost by the worker)"
        )
    if result.underived:
        lines.append(
            f"{max(result.underived_count, len(result.underived)):,} events in {PERSON_EVENTS} are not"
            " what the fold of"
            f" {MESSAGING_EVENTS} derives, e.g. {', '.join(result.underived[:3])}"
        )
    return lines


async def evidence(settings: Settings, outcome: Outcome) -> list[str]:
    """Where the first differing persons' and phones' records are, as `topic[partition]@offset`, for
    the write-up of a bug: a person's records in the person log, `sms-opt-outs` and the opt-outs
    store; a phone's in the messaging log and the contacts store."""
    result = outcome.verification
    if result is None:
        return []
    persons = sorted(result.differences)[:3]
    phones = sorted(result.contacts_differences)[:2]
    topics = {
        PERSON_EVENTS: persons,
        OPT_OUTS: persons,
        changelog_topic(settings, OPT_OUTS_TABLE): persons,
        MESSAGING_EVENTS: phones,
        changelog_topic(settings, CONTACTS_TABLE): phones,
    }
    wanted = {topic: {key.encode() for key in keys} for topic, keys in topics.items() if keys}
    if not wanted:
        return []
    found: list[tuple[bytes, str, int, str]] = []  # sorted by key, topic, offset
    async for records in read(settings.brokers, await snapshot(settings.brokers, list(wanted))):
        for record in records:
            if record.key in wanted[record.topic]:
                where = f"{record.topic}[{record.partition}]@{record.offset}"
                version = version_of(record.headers)
                folded = f" (folded up to {version[1]})" if version else ""
                line = f"  {record.key.decode()} {where}{folded}: {brief(record.value)}"
                found.append((record.key, record.topic, record.offset, line))
    return [f"records of {', '.join([*persons, *phones])}:", *(line for *_, line in sorted(found))]


def brief(raw: bytes | None) -> str:
    """One record's value in a few words: an event, a published list, or a stored state."""
    if raw is None:
        return "tombstone"
    try:
        value = json.loads(raw)
    except ValueError:
        return f"not JSON: {raw[:80]!r}"
    if isinstance(value, list):  # a chunk of a stored person's history
        return f"history chunk, {len(value)} changes"
    if not isinstance(value, dict):
        return f"JSON {str(value)[:80]}"
    if "opt_outs" in value:
        return "list " + ", ".join(f"{e['sender']} at {e['phone']}" for e in value["opt_outs"])
    if "history_length" in value:  # a stored person (the history is kept apart)
        return f"stored person, {len(value['entries'])} entries, {value['history_length']} changes"
    if "recipients" in value:  # a stored phone
        recipients = ", ".join(f"{s}: {'/'.join(p)}" for s, p in sorted(value["recipients"].items()))
        return f"stored phone, recipients {recipients or 'none'}; {len(value['applied'])} ids applied"
    person = f" person {value['person_id']}" if value.get("person_id") else ""
    body = f" body {value['body']!r}" if "body" in value else ""
    return (
        f"{value.get('type')}{person} {value.get('sender')} at {value.get('phone')}{body}"
        f" id {value.get('event_id')}"
        + (f" source {value['source_event_id']}" if value.get("source_event_id") else "")
    )


def summary(
    plan: Plan, settings: Settings, outcome: Outcome, status: int, failure: str | None
) -> dict[str, Any]:
    result = outcome.verification
    inflicted = Counter(fault.kind for fault in outcome.faults)
    return {
        "n": plan.events,
        "workers": plan.workers,
        **{f"{kind}s": inflicted[kind] for kind in FAULTS},
        "faults_planned": len(plan.schedule),
        "seed": plan.seed,
        "persons": plan.persons,
        "partitions": settings.partitions,
        "faults_while_starting": sum(fault.moment == "starting" for fault in outcome.faults),
        "faults_while_folding": sum(fault.moment == "folding" for fault in outcome.faults),
        # Records stage 1 folded more than once: the redeliveries after the kills and rebalances.
        "refolded_events": max(0, outcome.folded - plan.events),
        "persons_verified": result.persons if result else 0,
        "verify_passes": outcome.verify_passes,
        **{name: round(seconds, 1) for name, seconds in outcome.timings.items()},
        "result": "failed" if failure else "differ" if status == EXIT_DIFFERENT else "agree",
        "problems": len(outcome.problems),
        "broker": settings.kafka_brokers,
    }


class Worker:
    """Worker `n`: `python -m streams worker`, started again and again on its data dir and port."""

    def __init__(self, settings: Settings, work: Path, n: int) -> None:
        self.n = n
        self.data_dir = settings.data_dir / f"w{n}"
        self.url = f"http://{settings.web_host}:{(port := free_port())}"
        self.log = work / f"worker-{n}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUTS_")}
        self.env.update(
            OPTOUTS_KAFKA_BROKERS=",".join(settings.brokers),
            OPTOUTS_APP_ID=settings.app_id,
            OPTOUTS_DATA_DIR=str(self.data_dir),
            OPTOUTS_WEB_HOST=settings.web_host,
            OPTOUTS_WEB_PORT=str(port),
            OPTOUTS_SESSION_TIMEOUT=str(settings.session_timeout),
            OPTOUTS_REBALANCE_TIMEOUT=str(settings.rebalance_timeout),
            OPTOUTS_PARTITIONS=str(settings.partitions),
        )
        # One token for all: a worker re-checks the token of a request another forwarded to it.
        if settings.operator_token is not None:
            self.env["OPTOUTS_OPERATOR_TOKEN"] = settings.operator_token.get_secret_value()
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.folded_before = 0  # events folded by the incarnations killed so far
        self.last_folded = 0.0  # the incarnation's figure when last read

    def start(self, step: int) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            log.write(f"\n==== soak: worker {self.n} started at step {step} ====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.started = time.monotonic()
        self.last_folded = 0.0

    def running(self) -> subprocess.Popen[bytes]:
        """The process; a worker that exited by itself fails the soak (a restart must not crash)."""
        if self.process is None:
            raise SoakError(f"worker {self.n} is not running")
        code = self.process.poll()
        if code is not None:
            raise SoakError(f"worker {self.n} exited by itself with status {code}: see {self.log}")
        return self.process

    async def until_serving(self, timeout: float) -> None:
        """Until the worker answers HTTP (`/health`). Not `/ready`: that stays false while the
        worker lags, and the last incarnation starts far behind; verify waits for it to catch up."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while time.monotonic() < deadline:
                self.running()
                try:
                    async with http.get(f"{self.url}/health") as answer:
                        if answer.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.25)
        raise SoakError(f"worker {self.n} did not serve HTTP within {timeout:.0f} s: see {self.log}")

    async def folded(self) -> float:
        """Events stage 1 folded since this incarnation started (its /metrics; 0 until it serves; the
        last figure read while it does not answer)."""
        self.running()
        timeout = aiohttp.ClientTimeout(total=5)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(f"{self.url}/metrics") as answer,
            ):
                text = await answer.text()
        except (aiohttp.ClientError, TimeoutError):
            return self.last_folded
        self.last_folded = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith('optouts_events_folded_total{stage="resolve"')
        )
        return self.last_folded

    def kill(self, wipe: bool = False) -> None:
        """SIGKILL, by PID; `wipe` empties its data dir, so that it starts again with no local store
        (it restores its tables from their changelogs, as a new machine would)."""
        process = self.running()
        self.folded_before += int(self.last_folded)
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.process = None
        if wipe:
            shutil.rmtree(self.data_dir)

    def pause(self) -> None:
        self.running().send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.running().send_signal(signal.SIGCONT)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
