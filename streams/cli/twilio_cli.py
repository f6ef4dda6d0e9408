"""The Twilio commands of `optouts`: `send` (one SMS through the guarded sender, for an operator) and
`backfill` (publish the inbound messages Twilio has and our log misses, after an outage)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, date, datetime

from schemas.errors import OptOutsError
from streams.cli.operator_cli import api_argument, person_argument
from streams.settings import Settings
from streams.twilio.backfill import PAGE_SIZE, backfill
from streams.twilio.sender import NotPublished, send_sms


def add_twilio_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    send = commands.add_parser(
        "send",
        help="send one SMS through Twilio, unless the person opted out of the sender",
        description="Reads the person's list from the service's HTTP API (OPTOUTS_API_URL), refuses when"
        " the sender is on it, else sends with Twilio and publishes message.sent or message.blocked.",
    )
    send.add_argument("--person", required=True, type=person_argument, help="the person's id")
    send.add_argument(
        "--to", required=True, help="the person's phone (national numbers: OPTOUTS_DEFAULT_REGION)"
    )
    send.add_argument(
        "--from", dest="sender", required=True, help="our Twilio number, short code or sender ID"
    )
    send.add_argument("--messaging-service", help="send through this Messaging Service (MG...)")
    send.add_argument("--body", required=True, help="the text")
    send.add_argument(
        "--api", type=api_argument, help="the service's base URL, for the list (default: OPTOUTS_API_URL)"
    )
    send.set_defaults(handler=send_command, could_not_run=2)

    run = commands.add_parser(
        "backfill",
        help="publish the inbound messages of our senders that Twilio has and the log misses",
        description="Lists inbound messages to OPTOUTS_TWILIO_SENDERS / OPTOUTS_TWILIO_MESSAGING_SERVICES"
        " from Twilio's REST API and publishes those not already in sms-messaging-events. Safe to run"
        " again: event ids are the MessageSids.",
    )
    run.add_argument(
        "--since", required=True, type=moment, help="start, e.g. 2026-11-27 or 2026-11-27T09:00Z"
    )
    run.add_argument("--until", type=moment, help="end (excluded); default: now")
    run.add_argument(
        "--page-size", type=page_size, default=PAGE_SIZE, help=f"messages per page (default {PAGE_SIZE})"
    )
    run.set_defaults(handler=backfill_command, could_not_run=2)


def moment(text: str) -> datetime:
    """An ISO 8601 date or date and time; without an offset it is UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or time") from None
    if len(text) == 10:  # a date alone: its start, in UTC
        parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def page_size(text: str) -> int:
    """Twilio pages hold 1 to 1000 records."""
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a page size from 1 to 1000")
    return int(text)


def send_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.api:
        settings = settings.model_copy(update={"api_url": args.api})
    try:
        result = asyncio.run(
            send_sms(
                args.person,
                args.to,
                args.sender,
                args.body,
                settings=settings,
                messaging_service_sid=args.messaging_service,
            )
        )
    except NotPublished as exc:
        print(f"{exc.result.outcome}: {exc.result.reason}", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OptOutsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{result.outcome}: {result.reason}" + (f" ({result.message_sid})" if result.message_sid else ""))
    return 0 if result.sent else 1


def backfill_command(args: argparse.Namespace, settings: Settings) -> int:
    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        summary = asyncio.run(backfill(settings, args.since, args.until, progress, args.page_size))
    except OptOutsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0
