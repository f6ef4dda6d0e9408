"""`optouts`: the service's command line. The service commands (run, worker, create-topics) live here;
other groups of commands live in their own modules and register themselves through `add_commands`."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from collections.abc import Callable

from streams.bench import add_bench_commands
from streams.broker import EmbeddedBroker, stop_child
from streams.dead_letters_cli import add_dead_letter_commands
from streams.operator_cli import add_operator_commands
from streams.replay_cli import add_replay_commands
from streams.settings import Settings
from streams.soak import add_soak_commands
from streams.topics import create_topics
from streams.twilio_cli import add_twilio_commands
from streams.worker import run_worker

# A command handler gets the parsed arguments and the settings, and returns the exit status.
Handler = Callable[[argparse.Namespace, Settings], int]
CommandGroup = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="optouts", description="Event-sourced SMS opt-out lists.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_commands in command_groups():
        add_commands(commands)
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    sys.exit(handler(args, Settings()))


def command_groups() -> list[CommandGroup]:
    return [
        add_service_commands,
        add_operator_commands,
        add_dead_letter_commands,
        add_bench_commands,
        add_soak_commands,
        add_twilio_commands,
        add_replay_commands,
    ]


def add_service_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser(
        "run",
        help="start the worker and its HTTP API; with no OPTOUTS_KAFKA_BROKERS, an embedded broker first",
    ).set_defaults(handler=lambda args, settings: run(settings))
    commands.add_parser("worker", help="start a worker against OPTOUTS_KAFKA_BROKERS").set_defaults(
        handler=lambda args, settings: run_worker(settings) or 0
    )
    commands.add_parser(
        "create-topics", help="create the service's topics on OPTOUTS_KAFKA_BROKERS"
    ).set_defaults(handler=lambda args, settings: create_topics_command(settings))


def create_topics_command(settings: Settings) -> int:
    created = asyncio.run(create_topics(settings))
    print("created: " + (", ".join(created) or "nothing, every topic exists"))
    return 0


def run(settings: Settings) -> int:
    """The embedded default: a broker of our own when none is configured, then the worker."""
    pid = settings.embedded_broker_pid
    if pid is not None:  # restarted into a new generation: the broker started before is ours
        return run_on_embedded(settings, lambda: stop_child(pid))
    if settings.brokers:
        run_worker(settings, on_ready=lambda: announce(settings, None))
        return 0
    # The embedded broker keeps its log in memory, so tables kept from an earlier run would
    # describe a log that no longer exists: its worker starts from an empty data dir.
    data_dir = settings.data_dir / "embedded"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    broker = EmbeddedBroker(log_path=settings.data_dir / "embedded-broker.log").start()
    settings = settings.model_copy(
        update={"kafka_brokers": broker.address, "data_dir": data_dir, "embedded_broker_pid": broker.pid}
    )
    return run_on_embedded(settings, broker.stop)


def run_on_embedded(settings: Settings, stop_broker: Callable[[], None]) -> int:
    # A switch of generation (`optouts replay`) restarts this process, same PID and command, with
    # the broker handed over: its in-memory log lives on, and Ctrl-C still stops both.
    handover = {
        "OPTOUTS_KAFKA_BROKERS": settings.kafka_brokers or "",
        "OPTOUTS_DATA_DIR": str(settings.data_dir),
        "OPTOUTS_EMBEDDED_BROKER_PID": str(settings.embedded_broker_pid),
    }
    try:
        run_worker(
            settings, on_ready=lambda: announce(settings, settings.embedded_broker_pid), restart_env=handover
        )
    finally:
        stop_broker()
        print(f"stopped the embedded broker (pid {settings.embedded_broker_pid})", file=sys.stderr)
    return 0


def announce(settings: Settings, broker_pid: int | None) -> None:
    api = f"http://{settings.web_host}:{settings.web_port}"
    lines = ["", "sms-optouts is ready", f"  Kafka brokers  {settings.kafka_brokers}"]
    if broker_pid is not None:
        lines.append(
            f"                 (embedded Tansu, pid {broker_pid}, in memory only: gone when this stops;"
            " set OPTOUTS_KAFKA_BROKERS for a real cluster)"
        )
    lines += [
        f"  data dir       {settings.data_dir.resolve()}",
        f"  opt-out lists  {api}/people/{{person_id}}/sms-opt-outs",
        f"  history        {api}/people/{{person_id}}/sms-opt-outs/history",
        f"  health, ready  {api}/health  {api}/ready",
        f"  metrics        {api}/metrics",
        "  publish events to sms-messaging-events; Ctrl-C stops everything",
        "",
    ]
    print("\n".join(lines), flush=True)
