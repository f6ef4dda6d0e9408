"""`optouts replay`, `optouts verify` and `optouts switch`: rebuilding the projection from the logs,
checking it against them, and choosing the generation the workers run."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from schemas.errors import OptOutsError
from streams.cli.operator_cli import api_argument, person_argument
from streams.pipeline.generations import Generation, built_generations, current_generation, switch_generation
from streams.rebuild.exchange import delete_exchange, exchange_topic
from streams.rebuild.parts import part_argument, processes_argument, sample_argument
from streams.rebuild.processes import PartFailed, die_with_parent
from streams.rebuild.replay import prepare, print_summary, replay, replay_part_of
from streams.rebuild.verify import EXIT_UNREACHABLE, Scope, VerifyError, report, verify, verify_part
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
    _processes_option(rebuild)
    rebuild.add_argument(
        "--prepare",
        action="store_true",
        help="only create the new generation, for parts run by hand on several machines (--part)",
    )
    rebuild.add_argument(
        "--part",
        type=part_argument,
        metavar="K/N",
        help="only part K of N of the partitions, of the replay into --generation (one machine of several)",
    )
    rebuild.add_argument(
        "--generation",
        type=int,
        metavar="G",
        help="with --part: the generation `optouts replay --prepare` created",
    )
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
    check.add_argument(
        "--sample",
        type=sample_argument,
        metavar="FRACTION",
        help="compare only this fraction of the persons (0 < FRACTION <= 1), the same ones on every run",
    )
    check.add_argument("--contacts", action="store_true", help="compare every phone's stage 1 contacts too")
    _processes_option(check)
    check.add_argument("--part", type=part_argument, metavar="K/N", help=argparse.SUPPRESS)
    check.add_argument("--run", help=argparse.SUPPRESS)
    check.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    check.set_defaults(handler=verify_command, could_not_run=EXIT_UNREACHABLE)

    switch = commands.add_parser(
        "switch", help="make the workers run generation N (0: OPTOUTS_APP_ID itself)"
    )
    switch.add_argument("generation", type=int, metavar="N")
    switch.set_defaults(handler=switch_command)


def _processes_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--processes",
        type=processes_argument,
        default=1,
        metavar="N",
        help="processes of this machine that share the partitions, as N workers would (auto: the cores; 1)",
    )


def replay_command(args: argparse.Namespace, settings: Settings) -> int:
    if (args.part is None) != (args.generation is None):
        print("--part and --generation go together (one part of a replay being built)", file=sys.stderr)
        return EXIT_FAILED
    try:
        if args.prepare:
            target = asyncio.run(prepare(settings))
            print(
                f"{target} is ready to build: on each of N machines run `optouts replay --generation"
                f" {target.number} --part K/N` (K = 0 to N-1), then `optouts switch {target.number}`",
                flush=True,
            )
            return 0
        if args.part is not None:
            die_with_parent()
            part = asyncio.run(replay_part_of(settings, args.generation, args.part))
            print(json.dumps(part.to_json()) if args.json else part.line(), flush=True)
            return 0
        summary = asyncio.run(replay(settings, switch=not args.no_switch, processes=args.processes))
    except OptOutsError as exc:
        print(f"replay failed, nothing was switched: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print_summary(summary, args.json)
    return 0


def verify_command(args: argparse.Namespace, settings: Settings) -> int:
    api = None if args.no_api else Api.of(settings, args.api)
    only = set(args.persons) or None
    try:
        if args.part is not None:  # one process of `--processes N`: its result, as JSON
            die_with_parent()
            scope = Scope(None if only is None else frozenset(only), args.sample)
            part = asyncio.run(
                verify_part(
                    settings,
                    args.run,
                    args.part,
                    api=api,
                    wait=args.wait,
                    scope=scope,
                    contacts=args.contacts,
                )
            )
            print(json.dumps(part.to_json()), flush=True)
            return 0
        result = asyncio.run(
            verify(
                settings,
                api=api,
                wait=args.wait,
                only=only,
                contacts=args.contacts,
                sample=args.sample,
                processes=args.processes,
            )
        )
    except (VerifyError, PartFailed) as exc:
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
    await delete_exchange(settings, exchange_topic(target.app_id), quiet=True)  # a replay's, once built
    print(f"switched from {running} to {target}: the workers restart into it")
    return 0
