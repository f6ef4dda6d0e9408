"""Replay and verification split over processes, as the workers split the partitions, and a replay
killed part-way (SIGKILL, twice) that goes on where it stopped: through the real broker, a real worker
and the real `optouts` command."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.codec import decode_person_event
from schemas.errors import DecodeError
from schemas.events import AnyPersonEvent
from streams.engine.topics import OPT_OUTS, PERSON_EVENTS
from tests.factories import received, sent, unique, unique_phone
from tests.integration.kafka import publish
from tests.integration.processes import ROOT, ServiceProcess, new_worker
from tests.integration.test_pipeline import SENDER, eventually, publish_events, senders
from tests.integration.test_replay import answering_app_id, optouts, read_all

pytestmark = pytest.mark.integration

KEYWORD = "HALTEZ"  # a custom opt-out keyword no other test uses
PERSONS = 30


@pytest.fixture(scope="module")
def worker(
    kafka_brokers: str, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> Iterator[ServiceProcess]:
    app_id = unique("optouts-parts")
    process = new_worker(
        kafka_brokers, tmp_path_factory.mktemp("parts"), app_id, output_dir / f"{app_id}.log"
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def persons(worker: ServiceProcess, kafka_brokers: str) -> dict[str, list[str]]:
    """Persons who texted the new keyword (listed only by a fold that knows it), and persons who
    texted STOP (listed by every fold), each at a phone of their own."""
    texted = {
        "keyword": [unique("haltez") for _ in range(PERSONS)],
        "stop": [unique("stop") for _ in range(5)],
    }
    events = []
    for kind, names in texted.items():
        for person in names:
            phone = unique_phone()
            events += [
                sent(person, phone, SENDER),
                received(phone, SENDER, KEYWORD if kind == "keyword" else "STOP"),
            ]
    publish_events(kafka_brokers, *events)
    eventually(lambda: all(senders(worker, person) == {SENDER} for person in texted["stop"]), timeout=60)
    return texted


def replay_killed_at(worker: ServiceProcess, line_with: str) -> None:
    """`optouts replay --processes 2`, SIGKILLed (the process started, not its parts) as soon as a
    part prints a line with `line_with`; its parts die with it."""
    replay = subprocess.Popen(
        [sys.executable, "-m", "streams", "replay", "--no-switch", "--json", "--processes", "2"],
        env={**worker.env, "OPTOUTS_OPT_OUT_KEYWORDS": KEYWORD},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(120, replay.kill)  # a deadline on the wait for the line
    watchdog.start()
    try:
        assert replay.stderr is not None
        seen = []
        for line in replay.stderr:
            seen.append(line)
            if line.startswith("[part ") and line_with in line:
                parts = children(replay.pid)
                replay.send_signal(signal.SIGKILL)
                break
        else:
            pytest.fail(f"the replay ended before printing {line_with!r}: {''.join(seen[-5:])}")
    finally:
        watchdog.cancel()
    replay.wait(timeout=30)
    assert parts, "the replay had started no part"
    eventually(lambda: not any(alive(pid) for pid in parts))


def person_events(brokers: str) -> Iterator[AnyPersonEvent]:
    """The person log's events; the values other tests put there that are not events are left out."""
    for _, value in read_all(brokers, PERSON_EVENTS):
        try:
            yield decode_person_event(value)
        except DecodeError:
            continue


def answering_generation(worker: ServiceProcess) -> int:
    """The number of the generation the worker answers from (its app id, -gN after a switch)."""
    app_id, base = answering_app_id(worker), worker.env["OPTOUTS_APP_ID"]
    assert app_id is not None and (app_id == base or app_id.startswith(f"{base}-g")), app_id
    return 0 if app_id == base else int(app_id.removeprefix(f"{base}-g"))


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_replay_killed_twice_goes_on_where_it_stopped_and_appends_each_fact_once(
    worker: ServiceProcess, kafka_brokers: str, persons: dict[str, list[str]]
) -> None:
    assert senders(worker, persons["keyword"][0]) == set()  # the running fold does not know the keyword
    # The next generation: 1, or one more if another test of the module built and switched one first.
    following = answering_generation(worker) + 1

    replay_killed_at(worker, "stage 1, ")
    replay_killed_at(worker, "stage 2, ")
    done = optouts(
        worker, "replay", "--no-switch", "--json", "--processes", "2", OPTOUTS_OPT_OUT_KEYWORDS=KEYWORD
    )

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["resumed"] and summary["processes"] == 2 and len(summary["parts"]) == 2
    assert summary["generation"] == following  # the one the killed runs started, not one more each
    assert f"going on with the replay into generation {following} (" in done.stderr
    # Every fact of the new keyword is in the person log once, whichever run appended it.
    facts = Counter(
        event.event_id for event in person_events(kafka_brokers) if event.person_id in persons["keyword"]
    )
    assert len(facts) == PERSONS and set(facts.values()) == {1}
    assert not list((Path(worker.env["OPTOUTS_DATA_DIR"]) / "rebuild").glob("*")), "the stores stay behind"

    switched = optouts(worker, "switch", str(summary["generation"]))
    assert switched.returncode == 0, switched.stderr
    eventually(lambda: answering_app_id(worker) == summary["app_id"], timeout=90)
    eventually(lambda: all(senders(worker, person) == {SENDER} for person in persons["keyword"]), timeout=30)
    agreed = optouts(worker, "verify", "--processes", "2", *persons["keyword"], *persons["stop"][1:])
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert f"verified {PERSONS + 4} persons" in agreed.stdout and "all agree" in agreed.stdout


def test_verify_on_two_processes_names_a_difference_found_by_either(
    worker: ServiceProcess, kafka_brokers: str, persons: dict[str, list[str]]
) -> None:
    forged = persons["stop"][0]  # no other test compares this one
    publish(kafka_brokers, OPT_OUTS, [(forged, {"person_id": forged, "opt_outs": [], "updated_at": None})])

    differed = optouts(worker, "verify", "--processes", "2", "--wait", "10", *persons["stop"])

    assert differed.returncode == 1, differed.stdout + differed.stderr
    assert f"person {forged}: {OPT_OUTS} does not list {SENDER}" in differed.stdout
    assert differed.stdout.splitlines()[-1].endswith("1 persons differ")
    assert "[part 0/2]" in differed.stderr and "[part 1/2]" in differed.stderr


def test_verify_of_a_sample_compares_the_same_fraction_of_the_persons_on_every_run(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    # Persons of its own, listed by every fold: verify compares only persons the log or a list knows,
    # and the keyword persons are known to neither until a replay that knows the keyword has run.
    everyone = [unique("sampled") for _ in range(PERSONS)]
    stops = [(person, unique_phone()) for person in everyone]
    publish_events(
        kafka_brokers,
        *[sent(person, phone, SENDER) for person, phone in stops],
        *[received(phone, SENDER, "STOP") for _, phone in stops],
    )
    eventually(lambda: all(senders(worker, person) == {SENDER} for person in everyone), timeout=60)
    in_sample = [person for person in everyone if zlib.crc32(person.encode()) < 0.5 * 2**32]

    sampled = optouts(worker, "verify", "--sample", "0.5", "--wait", "10", *everyone)

    assert sampled.returncode == 0, sampled.stdout + sampled.stderr
    assert f"verified {len(in_sample)} persons" in sampled.stdout


def test_a_part_of_a_generation_not_being_built_is_refused(worker: ServiceProcess) -> None:
    refused = optouts(worker, "replay", "--part", "0/2", "--generation", "0")
    lone = optouts(worker, "replay", "--part", "0/2")

    assert refused.returncode == 1 and "is not a generation being built" in refused.stderr
    assert lone.returncode == 1 and "--part and --generation go together" in lone.stderr
    for bad in ("2/2", "x", "1"):
        wrong = optouts(worker, "replay", "--part", bad, "--generation", "1")
        assert wrong.returncode == 2 and "is not K/N" in wrong.stderr


def test_a_replay_prepared_then_built_by_parts_run_by_hand_is_switched_to_and_agrees(
    worker: ServiceProcess, persons: dict[str, list[str]]
) -> None:
    prepared = optouts(worker, "replay", "--prepare")
    assert prepared.returncode == 0, prepared.stderr
    generation = int(prepared.stdout.split("generation ", 1)[1].split()[0])
    assert f"optouts replay --generation {generation} --part K/N" in prepared.stdout

    parts = [  # as on two machines: each its own data dir
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams",
                "replay",
                "--generation",
                str(generation),
                "--part",
                f"{k}/2",
                "--json",
            ],
            env={**worker.env, "OPTOUTS_DATA_DIR": str(Path(worker.env["OPTOUTS_DATA_DIR"]) / f"machine{k}")},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    done = [part.communicate(timeout=180) for part in parts]
    assert [part.returncode for part in parts] == [0, 0], [err for _, err in done]
    summaries = [json.loads(out.splitlines()[-1]) for out, _ in done]
    assert sorted(p for summary in summaries for p in summary["partitions"]) == list(range(4))

    switched = optouts(worker, "switch", str(generation))
    assert switched.returncode == 0, switched.stderr
    eventually(
        lambda: answering_app_id(worker) == f"{worker.env['OPTOUTS_APP_ID']}-g{generation}", timeout=90
    )
    agreed = optouts(worker, "verify", *persons["stop"][1:])
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert all(senders(worker, person) == {SENDER} for person in persons["stop"][1:])
