"""`optouts people ...`: an operator's commands, through the service's HTTP API (any worker will do:
requests reach the worker that owns the person)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from schemas.addresses import address_key
from schemas.inputs import InvalidInput
from schemas.inputs import person_id as checked_person_id
from streams.settings import Settings
from streams.web.api_client import Api, BadApiUrl, api_url

EXIT_REFUSED = 1  # the service answered no (not listed, bad input)
EXIT_UNREACHABLE = 3  # no answer from the service (`optouts` prints why: streams.cli.main)


def api_argument(text: str) -> str:
    """`--api`: checked here, so that a malformed URL is a usage error."""
    try:
        api_url(text)
    except BadApiUrl as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def person_argument(text: str) -> str:
    """A person id as the log defines it (`schemas.inputs`)."""
    try:
        return checked_person_id(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_operator_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    people = commands.add_parser("people", help="show a person's SMS opt-outs and history; remove an entry")
    people.set_defaults(could_not_run=EXIT_UNREACHABLE)
    people.add_argument(
        "--api",
        type=api_argument,
        help="the service's base URL (default: OPTOUTS_API_URL, else http://OPTOUTS_WEB_HOST:OPTOUTS_WEB_PORT)",
    )
    people.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    actions = people.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="the senders a person opted out of")
    show.add_argument("person_id", type=person_argument)
    show.set_defaults(handler=show_command)
    history = actions.add_parser("history", help="every change of a person's list, oldest first")
    history.add_argument("person_id", type=person_argument)
    history.set_defaults(handler=history_command)
    remove = actions.add_parser("remove", help="remove a sender from a person's list (an audited override)")
    remove.add_argument("person_id", type=person_argument)
    remove.add_argument("sender")
    remove.add_argument("--actor", required=True, help="who removes it (your name or email)")
    remove.add_argument("--reason", required=True, help="why")
    remove.add_argument("--phone", help="which phone, when the sender is listed for several")
    remove.set_defaults(handler=remove_command)


def show_command(args: argparse.Namespace, settings: Settings) -> int:
    status, body = call(args, settings, "GET", "people", args.person_id, "sms-opt-outs")
    if status != 200:
        return refused(status, body)
    if args.json:
        return dump(body)
    entries = body["opt_outs"]
    if not entries:
        print(f"{args.person_id} has no SMS opt-outs.")
        return 0
    print(f"SMS opt-outs of {args.person_id}:")
    print_table(
        ["SENDER", "PHONE", "SINCE", "CAUSE"],
        # A sender on another channel than SMS as the list keys it (`whatsapp:+1...`): what `remove` takes.
        [[_address(e), e["phone"], e["since"], describe(e["cause"], e["keyword"])] for e in entries],
    )
    return 0


def history_command(args: argparse.Namespace, settings: Settings) -> int:
    status, body = call(args, settings, "GET", "people", args.person_id, "sms-opt-outs", "history")
    if status != 200:
        return refused(status, body)
    if args.json:
        return dump(body)
    changes = body["history"]
    if not changes:
        print(f"{args.person_id} has no changes yet.")
        return 0
    print_table(
        ["WHEN", "CHANGE", "SENDER", "PHONE", "CAUSE", "BY", "REASON", "SOURCE EVENT"],
        [
            [
                c["occurred_at"],
                c["type"].removeprefix("opt_out."),
                _address(c),
                c["phone"],
                describe(c["cause"], c["keyword"]),
                c.get("actor", ""),
                c.get("reason", ""),
                c["source_event_id"],
            ]
            for c in changes
        ],
    )
    return 0


def remove_command(args: argparse.Namespace, settings: Settings) -> int:
    body = {"actor": args.actor, "reason": args.reason, **({"phone": args.phone} if args.phone else {})}
    status, event = call(
        args, settings, "DELETE", "people", args.person_id, "sms-opt-outs", args.sender, body=body
    )
    if status != 200:
        return refused(status, event)
    if args.json:
        return dump(event)
    shown = "" if event["list_updated"] else " (the list may take a moment to show it)"
    print(f"Removed {event['sender']} at {event['phone']} from {args.person_id}'s list{shown}.")
    print(f"Override {event['event_id']} by {event['actor']}: {event['reason']}")
    return 0


def call(
    args: argparse.Namespace, settings: Settings, method: str, *segments: str, body: Any = None
) -> tuple[int, Any]:
    """The API's answer, with the operator token sent (streams.web.api_client); NoAnswer when none."""
    return Api.of(settings, args.api).call(method, *segments, body=body)


def refused(status: int, body: Any) -> int:
    error = body.get("error") if isinstance(body, dict) else None
    print(f"error ({status}): {error or body}", file=sys.stderr)
    for problem in body.get("problems", []) if isinstance(body, dict) else []:
        print(f"  {problem['field']}: {problem['problem']}", file=sys.stderr)
    return EXIT_REFUSED


def describe(cause: str, keyword: str | None) -> str:
    return {"send_blocked": "send blocked (21610)", "override": "operator override"}.get(
        cause, f"replied {keyword}"
    )


def dump(body: Any) -> int:
    print(json.dumps(body, indent=2))
    return 0


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _address(item: dict[str, Any]) -> str:
    return address_key(str(item.get("channel", "sms")), str(item["sender"]))
