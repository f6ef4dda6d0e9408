"""`optouts`: the service's command line. The service commands (run, worker, create-topics) live here;
other groups of commands live in their own modules and register themselves through `add_commands`.

Every expected failure (a bad setting or argument, brokers or an API that do not answer) is one line
on stderr and the command's exit status (`could_not_run`, 1 unless the command says otherwise; 2
for a usage error), never a traceback, never a secret's value.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import shutil
import sys
from collections.abc import Callable
from typing import NoReturn, cast

from aiokafka.errors import KafkaError
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError

from schemas.errors import OptOutsError
from streams.cli.dead_letters_cli import add_dead_letter_commands
from streams.cli.operator_cli import add_operator_commands
from streams.cli.replay_cli import add_replay_commands
from streams.cli.twilio_cli import add_twilio_commands
from streams.cli.workers import run_workers, worker_count
from streams.engine.broker import EmbeddedBroker, stop_child
from streams.engine.topics import create_topics
from streams.settings import Settings
from streams.web.api_client import BadApiUrl
from streams.worker import run_worker

# A command handler gets the parsed arguments and the settings, and returns the exit status.
Handler = Callable[[argparse.Namespace, Settings], int]
CommandGroup = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

EXIT_FAILED = 1  # the command could not run (unless it says otherwise with `could_not_run`)
EXIT_USAGE = 2  # argparse's own status for a bad argument
_OWN_LOGGERS = ("streams", "schemas", "projections")


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(prog="optouts", description="Event-sourced SMS opt-out lists.")
    # The subparsers are OneLineParsers (their usage errors one line too); the command groups add
    # them through argparse's own type.
    commands = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"),
    )
    for add_commands in command_groups(command_asked_for(sys.argv[1:] if argv is None else argv)):
        add_commands(commands)
    args = parser.parse_args(argv)
    own_lines_only()
    sys.exit(run_command(args))


def run_command(args: argparse.Namespace) -> int:
    """The handler's exit status; an expected failure is one line on stderr and `could_not_run`."""
    could_not_run: int = getattr(args, "could_not_run", EXIT_FAILED)
    try:
        settings = Settings()
    except (ValidationError, SettingsError) as exc:
        return failed(args, f"bad settings: {settings_problems(exc)}", could_not_run)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except BadApiUrl as exc:
        return failed(args, str(exc), EXIT_USAGE)
    except OptOutsError as exc:
        return failed(args, str(exc), could_not_run)
    except KafkaError as exc:
        brokers = settings.kafka_brokers or "the embedded broker"
        return failed(
            args, f"the Kafka brokers at {brokers} do not answer ({type(exc).__name__})", could_not_run
        )
    except OSError as exc:  # a port in use, a data dir that cannot be written, ...
        return failed(args, f"{type(exc).__name__}: {exc}", could_not_run)
    except KeyboardInterrupt:
        return 130


def failed(args: argparse.Namespace, message: str, status: int) -> int:
    print(f"optouts {args.command}: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return status


def settings_problems(exc: ValidationError | SettingsError) -> str:
    """Each bad setting by its variable and what is wrong, on one line; a secret's value is never
    shown, another's as an excerpt."""
    if isinstance(exc, SettingsError):
        return str(exc)
    problems = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        field = Settings.model_fields.get(name)
        secret = field is None or "SecretStr" in str(field.annotation) or field.annotation is SecretStr
        shown = "" if secret or "input" not in error else f" (got {str(error['input'])[:40]!r})"
        problems.append(f"OPTOUTS_{name.upper()}: {error['msg']}{shown}")
    return "; ".join(problems)


def own_lines_only() -> None:
    """A command's stderr carries its own lines: the Kafka client's and asyncio's log records (a
    broker that does not answer, a consumer a failed start left unclosed) stay out of it. A worker
    replaces this with its own logging once it starts."""
    handler = logging.StreamHandler()
    handler.addFilter(lambda record: record.name.split(".")[0] in _OWN_LOGGERS)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


# The development commands load streams.devtools only when one of them is asked for: the service's
# own commands (`optouts run`, `optouts worker`) never import the benchmark or the soak.
DEV_COMMANDS: dict[str, tuple[str, str, str]] = {  # command: (module, its add_commands, help)
    "bench": (
        "streams.devtools.bench",
        "add_bench_commands",
        "measure throughput, latency and memory; print one JSON line per mix",
    ),
    "bench-replay": (
        "streams.devtools.replay_bench",
        "add_bench_replay_commands",
        "replay logs of several sizes with 1, 2... processes; print wall time, speedup and peak RSS",
    ),
    "soak": (
        "streams.devtools.soak",
        "add_soak_commands",
        "stream events while a worker is killed and restarted; check every list against the log",
    ),
    "capacity": (
        "streams.devtools.capacity",
        "add_capacity_commands",
        "measure the bytes per event and per stored state the capacity model uses",
    ),
}


def command_asked_for(argv: list[str]) -> str | None:
    """The command's name: the first argument that is not an option (the top level has only -h)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def command_groups(asked_for: str | None = None) -> list[CommandGroup]:
    return [
        add_service_commands,
        add_operator_commands,
        add_dead_letter_commands,
        dev_commands("bench", asked_for),
        dev_commands("bench-replay", asked_for),
        dev_commands("soak", asked_for),
        dev_commands("capacity", asked_for),
        add_twilio_commands,
        add_replay_commands,
    ]


def dev_commands(name: str, asked_for: str | None) -> CommandGroup:
    """The development command `name`: its own parser when it is the one asked for, else only its
    name and help (for `optouts --help`), without importing its module."""
    module, function, help = DEV_COMMANDS[name]
    if name == asked_for:
        add_commands: CommandGroup = getattr(importlib.import_module(module), function)
        return add_commands

    def listed_only(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        commands.add_parser(name, help=help)

    return listed_only


def add_service_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run_parser = commands.add_parser(
        "run",
        help="start the worker and its HTTP API; with no OPTOUTS_KAFKA_BROKERS, an embedded broker first",
    )
    run_parser.add_argument(
        "--workers",
        type=worker_count,
        default=1,
        metavar="N",
        help="worker processes on this machine, sharing the partitions, each with its own data dir"
        " (OPTOUTS_DATA_DIR/worker-K) and port (OPTOUTS_WEB_PORT + K); auto: one per core (1)",
    )
    run_parser.set_defaults(handler=lambda args, settings: run(settings, args.workers))
    commands.add_parser("worker", help="start a worker against OPTOUTS_KAFKA_BROKERS").set_defaults(
        handler=lambda args, settings: worker(settings)
    )
    commands.add_parser(
        "create-topics", help="create the service's topics on OPTOUTS_KAFKA_BROKERS"
    ).set_defaults(handler=lambda args, settings: create_topics_command(settings))


def worker(settings: Settings) -> int:
    run_worker(settings)
    return 0


def create_topics_command(settings: Settings) -> int:
    if not settings.brokers:
        raise OptOutsError(
            "OPTOUTS_KAFKA_BROKERS is not set: point it at the brokers to create the topics on"
        )
    created = asyncio.run(create_topics(settings))
    print("created: " + (", ".join(created) or "nothing, every topic exists"))
    return 0


def run(settings: Settings, workers: int = 1) -> int:
    """The embedded default: a broker of our own when none is configured, then the worker (or
    `workers` worker processes, streams.cli.workers)."""
    pid = settings.embedded_broker_pid
    if pid is not None:  # restarted into a new generation: the broker started before is ours
        return run_on_embedded(settings, lambda: stop_child(pid))
    if settings.brokers:
        if workers > 1:
            return run_workers(settings, workers, None)
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
    if workers > 1:
        try:
            return run_workers(settings, workers, settings.embedded_broker_pid)
        finally:
            broker.stop()
            print(f"stopped the embedded broker (pid {settings.embedded_broker_pid})", file=sys.stderr)
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
