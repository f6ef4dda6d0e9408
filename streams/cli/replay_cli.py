"""`optouts replay`, `optouts verify` and `optouts switch`: rebuilding the projection from the logs,
checking it against them, and choosing the generation the workers run."""

from __future__ import annotations

import argparse
import asyncio
import sys

from schemas.errors import OptOutsError
from streams.cli.operator_cli import api_argument, person_argument
from streams.pipeline.generations import Generation, built_generations, current_generation, switch_generation
from streams.rebuild.replay import print_summary, replay
from streams.rebuild.verify import EXIT_UNREACHABLE, VerifyError, report, verify
from streams.settings import Settings
from streams.web.api_client import Api

EXIT_FAILED = 1


def add_replay_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rebuild = commands.add_parser(
        "replay",
        help="rebuild the contacts and every list from the logs into a new generation, then switch to it",
    )
    rebuild.add_argument(
        "--no-switch",
        action="store_true",
        help="build the generation but leave the workers on the running one (`optouts switch N` later)",
    )
    rebuild.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    rebuild.set_defaults(handler=replay_command)

    check = commands.add_parser(
        "verify", help="fold the logs offline and compare every list with the API, the store and sms-opt-outs"
    )
    check.add_argument(
        "--api",
        type=api_argument,
        help="the service's base URL (default: OPTOUTS_API_URL, else http://OPTOUTS_WEB_HOST:OPTOUTS_WEB_PORT)",
    )
    check.add_argument("--no-api", action="store_true", help="compare the store and sms-opt-outs only")
    check.add_argument(
        "persons",
        nargs="*",
        type=person_argument,
        metavar="PERSON_ID",
        help="compare only these persons (default: all)",
    )
    check.add_argument(
        "--wait", type=float, default=30.0, help="seconds to let the workers fold the logs' tail first (30)"
    )
    check.set_defaults(handler=verify_command, could_not_run=EXIT_UNREACHABLE)

    switch = commands.add_parser(
        "switch", help="make the workers run generation N (0: OPTOUTS_APP_ID itself)"
    )
    switch.add_argument("generation", type=int, metavar="N")
    switch.set_defaults(handler=switch_command)


def replay_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        summary = asyncio.run(replay(settings, switch=not args.no_switch))
    except OptOutsError as exc:
        print(f"replay failed, nothing was switched: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print_summary(summary, args.json)
    return 0


def verify_command(args: argparse.Namespace, settings: Settings) -> int:
    api = None if args.no_api else Api.of(settings, args.api)
    try:
        result = asyncio.run(verify(settings, api=api, wait=args.wait, only=set(args.persons) or None))
    except VerifyError as exc:
        print(f"verify could not compare: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    return report(result, sys.stdout)


def switch_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return asyncio.run(_switch(settings, args.generation))
    except OptOutsError as exc:
        print(f"switch failed: {exc}", file=sys.stderr)
        return EXIT_FAILED


async def _switch(settings: Settings, number: int) -> int:
    if not settings.brokers:
        print("OPTOUTS_KAFKA_BROKERS is not set: point it at the brokers the workers use", file=sys.stderr)
        return EXIT_FAILED
    running = await current_generation(settings)
    target = Generation(settings.app_id, number)
    built = await built_generations(settings)
    if number not in built:
        print(
            f"no {target}: built are {', '.join(map(str, sorted(built)))} (`optouts replay` builds one)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if target == running:
        print(f"the workers already run {target}")
        return 0
    await switch_generation(settings, target, by="optouts switch")
    print(f"switched from {running} to {target}: the workers restart into it")
    return 0
