"""The JSON Schema of the value of every topic, generated from the models: `make schemas` writes them to
`schemas/json/<topic>.schema.json` (committed, for upstream and downstream teams), and a unit test
fails when they are stale.

`sms-messaging-events` is described as writers may publish it (every version still read, defaults
optional); the topics the service writes are described as it writes them (every field present).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter

from schemas.dead_letters import DeadLetter
from schemas.events import AnyPersonEvent, MessageBlocked, MessageReceived, MessageSent, OptOutList
from schemas.upcasting import MessageReceivedV1

DIRECTORY = Path(__file__).resolve().parent / "json"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"

Mode = Literal["validation", "serialization"]

# topic -> (the type of its values, how it is described, what a value is)
TOPIC_VALUES: dict[str, tuple[Any, Mode, str]] = {
    "sms-messaging-events": (
        MessageSent | MessageReceivedV1 | MessageReceived | MessageBlocked,
        "validation",
        "A messaging event, keyed by the phone in E.164. `message.received` is read in versions 1"
        " and 2 (2 adds `keyword`); every other type is at version 1.",
    ),
    "sms-person-events": (
        AnyPersonEvent,
        "serialization",
        "A change to one person's SMS opt-out list, keyed by person_id: the audit log.",
    ),
    "sms-opt-outs": (
        OptOutList,
        "serialization",
        "A person's whole current SMS opt-out list, keyed by person_id; compacted: the latest value"
        " per key is the list.",
    ),
    "sms-dead-letters": (
        DeadLetter,
        "serialization",
        "A value the service could not fold, with where it was and why; keyed by the original key.",
    ),
}


def schema_for(topic: str) -> dict[str, Any]:
    value_type, mode, description = TOPIC_VALUES[topic]
    schema = TypeAdapter(value_type).json_schema(mode=mode)
    if mode == "serialization":
        # The service writes every field of its models (no field is ever left out of a dump).
        for definition in [schema, *schema.get("$defs", {}).values()]:
            if "properties" in definition:
                definition["required"] = list(definition["properties"])
    return {"$schema": _DRAFT, "title": f"value of {topic}", "description": description, **schema}


def render(topic: str) -> str:
    return json.dumps(schema_for(topic), indent=2, ensure_ascii=False) + "\n"


def path_for(topic: str, directory: Path = DIRECTORY) -> Path:
    return directory / f"{topic}.schema.json"


def stale(directory: Path = DIRECTORY) -> list[str]:
    """The topics whose committed schema is missing or differs from the models."""
    return [
        topic
        for topic in TOPIC_VALUES
        if not path_for(topic, directory).exists() or path_for(topic, directory).read_text() != render(topic)
    ]


def main(argv: list[str]) -> int:
    """`python -m schemas.json_schemas` writes every file; with `--check`, exits 1 when one is stale."""
    if "--check" in argv:
        outdated = stale()
        for topic in outdated:
            print(f"{path_for(topic)} is stale: run `make schemas`", file=sys.stderr)
        return 1 if outdated else 0
    DIRECTORY.mkdir(exist_ok=True)
    for topic in TOPIC_VALUES:
        path_for(topic).write_text(render(topic))
        print(f"wrote {path_for(topic)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
