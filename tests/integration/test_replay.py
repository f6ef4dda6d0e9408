"""Replay, verification, point in time and dead letters, through the real broker, a real worker process,
real HTTP and the real `optouts` command. The module's worker starts at generation 0; the fixture
`generation_1` replays and switches it to generation 1 for the tests that need it, whichever of them
runs first, so that each test passes alone and in any order."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faust.serializers.codecs import dumps as faust_dumps

from projections.opt_outs import project_all
from schemas.events import OptOutRecorded
from streams.engine.log_reader import read, snapshot
from streams.engine.topics import DEAD_LETTERS, MESSAGING_EVENTS, OPT_OUTS, PERSON_EVENTS
from tests.factories import blocked, received, recorded, sent, unique, unique_phone
from tests.integration.kafka import latest_values, publish, run
from tests.integration.processes import ROOT, ServiceProcess, http_json, new_worker, run_optouts
from tests.integration.test_pipeline import SENDER, eventually, history, opt_outs, publish_events, senders

pytestmark = pytest.mark.integration

NEW_KEYWORD = "ARRETEZ"  # a custom opt-out keyword no other test uses


@pytest.fixture(scope="module")
def worker(
    kafka_brokers: str, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> Iterator[ServiceProcess]:
    app_id = unique("optouts-replay")
    process = new_worker(
        kafka_brokers, tmp_path_factory.mktemp("replay"), app_id, output_dir / f"{app_id}.log"
    )
    process.start()
    yield process
    process.stop()


@dataclass(frozen=True)
class Story:
    stays: str  # STOP: listed
    clears: str  # STOP, then START: not listed, two changes
    blocked: str  # a send blocked with 21610: listed
    french: str  # texted the new keyword: listed only by a fold that knows it
    french_message: dict[str, Any]

    @property
    def persons(self) -> list[str]:
        return [self.stays, self.clears, self.blocked, self.french]

    @property
    def unchanged(self) -> list[str]:
        return [self.stays, self.clears, self.blocked]


@pytest.fixture(scope="module")
def story(worker: ServiceProcess, kafka_brokers: str) -> Story:
    stays, clears, blocked_person, french = (
        unique(name) for name in ("stays", "clears", "blocked", "french")
    )
    phone, other_phone, french_phone = unique_phone(), unique_phone(), unique_phone()
    french_sent = sent(french, french_phone, SENDER)  # sent before the keyword, in time as in the log
    french_message = received(french_phone, SENDER, NEW_KEYWORD.lower())
    # Records the agents keep aside, on both logs, under keys of their own: the replay and verify
    # must read past them, whether or not the dead-letter tests ran before them.
    poison_phone, poison_person = unique_phone(), unique("poison")
    future = {**sent(poison_person, poison_phone, SENDER), "schema_version": 9}
    publish(kafka_brokers, MESSAGING_EVENTS, [(poison_phone, b"{not json"), (poison_phone, future)])
    publish(kafka_brokers, PERSON_EVENTS, [(poison_person, None)])
    publish_events(
        kafka_brokers,
        sent(stays, phone, SENDER),
        received(phone, SENDER, "STOP"),
        sent(clears, other_phone, SENDER),
        received(other_phone, SENDER, "STOP"),
        received(other_phone, SENDER, "START"),
        blocked(blocked_person, unique_phone(), SENDER),
        french_sent,
        french_message,
    )
    eventually(lambda: senders(worker, stays) == {SENDER} and senders(worker, blocked_person) == {SENDER})
    eventually(lambda: len(history(worker, clears)) == 2)
    return Story(stays, clears, blocked_person, french, french_message)


@dataclass(frozen=True)
class Replayed:
    """What `generation_1` saw on the way: the replay's test judges it."""

    answering_before: str | None  # the app id answering before the replay
    before: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]  # story.unchanged: list, history
    french_before: set[str]  # the French person's senders, folded without the new keyword
    answers: list[tuple[str | None, list[dict[str, Any]]]]  # (app id, story.stays' list) polled meanwhile
    summary: dict[str, Any]  # the replay's --json line
    progress: str  # what it printed to stderr
    late: str  # a person opted out after the replay and before the switch
    answering_before_switch: str | None


@pytest.fixture(scope="module")
def generation_1(worker: ServiceProcess, kafka_brokers: str, story: Story) -> Replayed:
    """`optouts replay --no-switch` with a new keyword while generation 0 answers, a late opt-out
    folded by generation 0 alone, then `optouts switch 1`: the worker answers as generation 1."""
    app_id = worker.env["OPTOUTS_APP_ID"]
    answering_before = answering_app_id(worker)
    before = {person: (opt_outs(worker, person), history(worker, person)) for person in story.unchanged}
    french_before = senders(worker, story.french)

    rebuilding = subprocess.Popen(
        [sys.executable, "-m", "streams", "replay", "--no-switch", "--json"],
        env={**worker.env, "OPTOUTS_OPT_OUT_KEYWORDS": NEW_KEYWORD},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers: list[tuple[str | None, list[dict[str, Any]]]] = []
    deadline = time.monotonic() + 180
    while rebuilding.poll() is None:  # the running generation answers all through the replay
        if time.monotonic() > deadline:
            rebuilding.kill()
            progress = rebuilding.communicate(timeout=10)[1]
            pytest.fail(f"the replay did not end within 180 s: {progress[-2000:]}")
        answers.append((answering_app_id(worker), opt_outs(worker, story.stays)))
    output, progress = rebuilding.communicate(timeout=180)
    assert rebuilding.returncode == 0, progress
    summary = json.loads(output.splitlines()[-1])

    # Not switched yet: generation 0 answers, and folds what arrives, which generation 1 must see too.
    late, late_phone = unique("late"), unique_phone()
    publish_events(kafka_brokers, sent(late, late_phone, SENDER), received(late_phone, SENDER, "QUIT"))
    eventually(lambda: senders(worker, late) == {SENDER})
    answering_before_switch = answering_app_id(worker)

    switched = optouts(worker, "switch", "1")
    assert switched.returncode == 0, switched.stderr
    eventually(lambda: answering_app_id(worker) == f"{app_id}-g1", timeout=90)  # the same process, restarted
    return Replayed(
        answering_before, before, french_before, answers, summary, progress, late, answering_before_switch
    )


def of_this_worker(letter: dict[str, Any], worker: ServiceProcess) -> bool:
    """Kept by this module's worker, in whichever generation it runs when the test does (generation
    N writes its base app id with -gN): workers of other modules keep the same records again."""
    base = worker.env["OPTOUTS_APP_ID"]
    return bool(letter["app_id"] == base or letter["app_id"].startswith(f"{base}-g"))


def optouts(worker: ServiceProcess, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m streams ARGS` with the worker's settings (its app id and brokers), plus `env`."""
    return run_optouts({**worker.env, **env}, *args, timeout=180)


def answering_app_id(worker: ServiceProcess) -> str | None:
    status, ready = http_json("GET", f"{worker.url}/ready")
    return ready["app_id"] if status == 200 else None


def read_all(brokers: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    async def values() -> list[tuple[bytes | None, bytes | None]]:
        spans = await snapshot([brokers], [topic])
        return [(r.key, r.value) async for records in read([brokers], spans) for r in records]

    return run(values)


# ---- dead letters and the list as of a moment, on either generation --------------------------------


def test_undecodable_values_and_events_of_a_future_version_are_kept_in_dead_letters(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    future = {**sent(person, phone, SENDER), "schema_version": 9}
    poison: list[tuple[str, Any]] = [
        (phone, None),
        (phone, {**sent(person, phone, SENDER), "occurred_at": "0001-01-01T00:00:00+01:00"}),
        (phone, {**sent(person, phone, SENDER), "occurred_at": "9999-12-31T23:59:59-05:00"}),
        (phone, {**sent(person, phone, SENDER), "occurred_at": "2999-01-01T00:00:00Z"}),
    ]
    send = sent(person, phone, SENDER)
    publish(kafka_brokers, MESSAGING_EVENTS, [(phone, b"{not json"), (phone, future), *poison, (phone, send)])
    publish_events(kafka_brokers, received(phone, SENDER, "STOP"))
    eventually(lambda: senders(worker, person) == {SENDER})  # the bad ones did not stop the agent

    def kept() -> list[dict[str, Any]]:
        letters = [
            json.loads(value or b"")
            for key, value in read_all(kafka_brokers, DEAD_LETTERS)
            if key == phone.encode()
        ]
        return [letter for letter in letters if of_this_worker(letter, worker)]

    letters = eventually(lambda: found if len(found := kept()) == 2 + len(poison) else None)
    assert [(letter["kind"], letter["topic"]) for letter in letters] == [
        ("undecodable", MESSAGING_EVENTS),
        ("unknown_schema_version", MESSAGING_EVENTS),
        *[("undecodable", MESSAGING_EVENTS)] * len(poison),
    ]
    assert [letter["field"] for letter in letters[2:]] == [None, "occurred_at", "occurred_at", "occurred_at"]
    assert letters[0]["value"] == "{not json"
    assert json.loads(letters[1]["value"]) == future
    assert letters[1]["reason"].startswith("message.sent: field 'schema_version' = 9")
    assert letters[0]["partition"] == letters[1]["partition"]
    assert letters[1]["offset"] == letters[0]["offset"] + 1
    assert senders(worker, person) == {SENDER}  # the future version's send was not folded either way


def test_a_null_value_and_a_time_out_of_range_on_the_person_log_are_kept_aside_and_what_follows_is_folded(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person = unique("person")
    value = recorded(person, unique_phone(), SENDER)
    overflowing = {**value, "event_id": unique("derived"), "occurred_at": "9999-12-31T23:59:59-05:00"}
    publish(kafka_brokers, PERSON_EVENTS, [(person, None), (person, overflowing), (person, value)])

    eventually(lambda: senders(worker, person) == {SENDER})

    def kept() -> list[dict[str, Any]]:
        letters = [
            json.loads(v or b"") for k, v in read_all(kafka_brokers, DEAD_LETTERS) if k == person.encode()
        ]
        return [letter for letter in letters if of_this_worker(letter, worker)]

    letters = eventually(lambda: found if len(found := kept()) == 2 else None)
    assert [(letter["topic"], letter["value"] is None) for letter in letters] == [
        (PERSON_EVENTS, True),
        (PERSON_EVENTS, False),
    ]


def test_the_list_as_of_a_past_moment_is_the_list_as_it_stood_then(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    send = sent(person, phone, SENDER)
    stop, start = received(phone, SENDER, "STOP"), received(phone, SENDER, "START")
    publish_events(kafka_brokers, send, stop, start)
    eventually(lambda: len(history(worker, person)) == 2)

    def as_of(moment: str) -> tuple[int, Any]:
        return http_json("GET", f"{worker.url}/people/{person}/sms-opt-outs?as_of={moment}")

    between = stop["occurred_at"].replace("Z", ".5+00:00").replace("+", "%2B")
    status, then = as_of(between)
    assert status == 200
    assert [(e["sender"], e["since"]) for e in then["opt_outs"]] == [(SENDER, stop["occurred_at"])]
    assert (then["updated_at"], then["as_of"]) == (
        stop["occurred_at"],
        stop["occurred_at"].replace("Z", ".500000Z"),
    )
    assert as_of(start["occurred_at"])[1]["opt_outs"] == []
    assert as_of("2000-01-01T00:00:00Z")[1] == {
        "person_id": person,
        "opt_outs": [],
        "updated_at": None,
        "as_of": "2000-01-01T00:00:00Z",
    }
    assert opt_outs(worker, person) == []

    status, page = http_json("GET", f"{worker.url}/people/{person}?as_of={between}")
    assert status == 200
    assert "As the list stood at" in page and f'data-sender="{SENDER}"' in page
    assert 'id="manage"' not in page  # nothing to remove from the past


@pytest.mark.parametrize("moment", ["yesterday", "2026-11-27T09:00:00", "2026-13-01T00:00:00Z"])
def test_a_bad_as_of_is_refused_naming_it(worker: ServiceProcess, moment: str) -> None:
    status, body = http_json("GET", f"{worker.url}/people/{unique('p')}/sms-opt-outs?as_of={moment}")

    assert status == 422
    assert f"as_of {moment!r}" in body["error"]


# ---- replay: a new generation, built while the running one answers --------------------------------


def test_a_replay_builds_a_new_generation_while_the_running_one_answers_then_the_workers_switch(
    worker: ServiceProcess, kafka_brokers: str, story: Story, generation_1: Replayed
) -> None:
    app_id, replayed = worker.env["OPTOUTS_APP_ID"], generation_1
    assert replayed.answering_before == app_id
    assert replayed.french_before == set()  # the running fold does not know the keyword
    # The running generation answered all through the replay, with the list it had.
    assert replayed.answers
    assert {answering for answering, _ in replayed.answers} == {app_id}
    assert all(listed == replayed.before[story.stays][0] for _, listed in replayed.answers)
    summary = replayed.summary
    assert (summary["generation"], summary["app_id"], summary["switched"]) == (1, f"{app_id}-g1", False)
    assert summary["appended"] >= 1 and summary["messaging_events"] > 0
    assert f"stage 1, {MESSAGING_EVENTS}[0]: " in replayed.progress and "events/s" in replayed.progress
    assert replayed.answering_before_switch == app_id  # not switched until told

    assert answering_app_id(worker) == f"{app_id}-g1"
    assert worker.process is not None and worker.process.poll() is None  # the same process, restarted
    for person in story.unchanged:  # the replayed lists are the live fold's
        assert (opt_outs(worker, person), history(worker, person)) == replayed.before[person]
    [entry] = opt_outs(worker, story.french)  # the new keyword, applied to the past
    assert (entry["keyword"], entry["since"]) == (NEW_KEYWORD, story.french_message["occurred_at"])
    eventually(
        lambda: senders(worker, replayed.late) == {SENDER}
    )  # folded by generation 1 from where the replay stopped

    # Written as Faust writes table values: byte for byte what generation 0's worker wrote.
    def stored(generation_app_id: str) -> bytes | None:
        key = story.stays.encode()
        return dict(read_all(kafka_brokers, f"{generation_app_id}-opt-outs-changelog")).get(key)

    assert stored(f"{app_id}-g1") == stored(app_id) is not None


def test_a_consumer_reading_sms_opt_outs_from_the_start_sees_each_persons_latest_list(
    worker: ServiceProcess, kafka_brokers: str, story: Story, generation_1: Replayed
) -> None:
    persons = set(story.persons)
    answers = {
        person: http_json("GET", f"{worker.url}/people/{person}/sms-opt-outs")[1] for person in persons
    }

    latest = eventually(
        lambda: (found := latest_values(kafka_brokers, OPT_OUTS, persons)) == answers and found
    )

    assert [entry["keyword"] for entry in latest[story.french]["opt_outs"]] == [NEW_KEYWORD]
    assert latest[story.clears]["opt_outs"] == []


# ---- verify ---------------------------------------------------------------------------------------


def test_verify_agrees_with_the_projection_of_the_replayed_generation(
    worker: ServiceProcess, story: Story, generation_1: Replayed
) -> None:
    agreed = optouts(worker, "verify", *story.persons)

    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert "all agree" in agreed.stdout and "generation 1" in agreed.stdout


def test_verify_names_each_person_changed_behind_the_logs_back(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    # Persons of this test alone: what it forges must not reach the lists other tests compare.
    listed, cleared, untouched = unique("listed"), unique("cleared"), unique("untouched")
    phone, other_phone, third_phone = unique_phone(), unique_phone(), unique_phone()
    publish_events(
        kafka_brokers,
        sent(listed, phone, SENDER),
        received(phone, SENDER, "STOP"),
        sent(cleared, other_phone, SENDER),
        received(other_phone, SENDER, "STOP"),
        received(other_phone, SENDER, "START"),
        sent(untouched, third_phone, SENDER),
        received(third_phone, SENDER, "STOP"),
    )
    eventually(lambda: senders(worker, listed) == senders(worker, untouched) == {SENDER})
    eventually(lambda: len(history(worker, cleared)) == 2)

    # A list published by someone else than the service, and a table value written to the store of
    # the generation answering.
    forged = {"person_id": listed, "opt_outs": [], "updated_at": "2026-11-27T09:00:00Z"}
    publish(kafka_brokers, OPT_OUTS, [(listed, forged)])
    other = OptOutRecorded.model_validate_json(json.dumps(history(worker, listed)[0]))
    store_value = project_all([other.model_copy(update={"person_id": cleared})], person_id=cleared)
    store = f"{answering_app_id(worker)}-opt-outs-changelog"
    publish(kafka_brokers, store, [(cleared, faust_dumps("json", store_value.to_json()))])

    differed = optouts(worker, "verify", "--wait", "5", listed, cleared, untouched)

    assert differed.returncode == 1, differed.stdout + differed.stderr
    lines = differed.stdout.splitlines()
    assert f"person {listed}: {OPT_OUTS} does not list {SENDER}" in differed.stdout
    assert f"person {cleared}: store ({store}) lists {SENDER}" in differed.stdout
    assert not [line for line in lines if untouched in line]
    assert lines[-1].endswith("2 persons differ")


# ---- refusals: a clear error, nothing changed ----------------------------------------------------


def test_switching_to_a_generation_never_built_is_refused_and_changes_nothing(
    worker: ServiceProcess, generation_1: Replayed
) -> None:
    refused = optouts(worker, "switch", "7")

    assert refused.returncode == 1
    assert "no generation 7" in refused.stderr and "built are 0, 1" in refused.stderr
    assert answering_app_id(worker) == f"{worker.env['OPTOUTS_APP_ID']}-g1"


def test_replay_and_verify_without_brokers_say_what_is_missing(worker: ServiceProcess) -> None:
    env = {k: v for k, v in worker.env.items() if k != "OPTOUTS_KAFKA_BROKERS"}
    for command, status in (("replay", 1), ("verify", 3)):
        done = run_optouts(env, command)
        assert done.returncode == status
        assert "OPTOUTS_KAFKA_BROKERS is not set" in done.stderr


def test_verify_says_so_when_the_api_does_not_answer(worker: ServiceProcess, story: Story) -> None:
    done = optouts(worker, "verify", "--wait", "0", "--api", "http://127.0.0.1:9", story.stays)

    assert done.returncode == 3
    assert "the API at http://127.0.0.1:9 did not answer" in done.stderr


def test_verify_judges_the_lists_with_the_facts_a_changed_fold_finds_in_the_messaging_log(
    worker: ServiceProcess, kafka_brokers: str
) -> None:
    person, phone = unique("person"), unique_phone()
    publish_events(kafka_brokers, sent(person, phone, SENDER), received(phone, SENDER, "Basta"))

    same_fold = optouts(worker, "verify", "--wait", "20", person)
    changed_fold = optouts(worker, "verify", "--wait", "20", person, OPTOUTS_OPT_OUT_KEYWORDS="BASTA")

    assert same_fold.returncode == 0, same_fold.stdout + same_fold.stderr
    assert changed_fold.returncode == 1, changed_fold.stdout + changed_fold.stderr
    assert f"person {person}: API (" in changed_fold.stdout
    assert f"does not list {SENDER} at {phone}" in changed_fold.stdout
    assert "`optouts replay` appends them" in changed_fold.stdout
