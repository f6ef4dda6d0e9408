"""`optouts`: the service's command line (run with the embedded default, run a worker, create topics)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys

from streams.broker import EmbeddedBroker
from streams.settings import Settings
from streams.topics import create_topics
from streams.worker import run_worker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="optouts", description="Event-sourced SMS opt-out lists.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run",
        help="start the worker and its HTTP API; with no OPTOUTS_KAFKA_BROKERS, an embedded broker first",
    )
    commands.add_parser("worker", help="start a worker against OPTOUTS_KAFKA_BROKERS")
    commands.add_parser("create-topics", help="create the service's topics on OPTOUTS_KAFKA_BROKERS")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "run":
        run(settings)
    elif args.command == "worker":
        run_worker(settings)
    elif args.command == "create-topics":
        created = asyncio.run(create_topics(settings))
        print("created: " + (", ".join(created) or "nothing, every topic exists"))


def run(settings: Settings) -> None:
    """The embedded default: a broker of our own when none is configured, then the worker."""
    if settings.brokers:
        run_worker(settings, on_ready=lambda: announce(settings, None))
        return
    # The embedded broker keeps its log in memory, so tables kept from an earlier run would
    # describe a log that no longer exists: its worker starts from an empty data dir.
    data_dir = settings.data_dir / "embedded"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    broker = EmbeddedBroker(log_path=settings.data_dir / "embedded-broker.log").start()
    settings = settings.model_copy(update={"kafka_brokers": broker.address, "data_dir": data_dir})
    try:
        run_worker(settings, on_ready=lambda: announce(settings, broker))
    finally:
        pid = broker.pid
        broker.stop()
        print(f"stopped the embedded broker (pid {pid})", file=sys.stderr)


def announce(settings: Settings, broker: EmbeddedBroker | None) -> None:
    api = f"http://{settings.web_host}:{settings.web_port}"
    lines = ["", "sms-optouts is ready", f"  Kafka brokers  {settings.kafka_brokers}"]
    if broker is not None:
        lines.append(
            f"                 (embedded Tansu, pid {broker.pid}, in memory only: gone when this stops;"
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
