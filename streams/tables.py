"""The two RocksDB tables (with Kafka changelogs). Keys are the UTF-8 entity ids; values are the
folds' `to_json` forms as compact JSON bytes, encoded once by the agents and written as they are to
the store and to the changelog (Faust would encode a dict twice, once for each)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import faust

from streams.settings import Settings
from streams.topics import CONTACTS_TABLE, OPT_OUTS_TABLE


@dataclass(frozen=True)
class Tables:
    contacts: faust.Table  # per phone: projections.contacts.Contacts
    opt_outs: faust.Table  # per person: projections.opt_outs.PersonOptOuts


def declare_tables(app: faust.App, settings: Settings) -> Tables:
    def table(name: str, help: str) -> faust.Table:
        declared = app.Table(
            name,
            default=None,
            partitions=settings.partitions,
            # bytes keys are stored raw, as the topics' keys are: the partition a key hashes to is
            # then the same for the input topic, the changelog and Faust's request routing.
            key_type=bytes,
            value_type=bytes,
            options={"driver": "rocksdict"},
            help=help,
        )
        # Table() takes no value_serializer (faust-streaming#556) and derives "json" from any
        # value type; the store and the changelog topic, built later, take it from here.
        declared.value_serializer = "raw"
        return declared

    return Tables(
        contacts=table(CONTACTS_TABLE, "Per phone: who received SMS from which sender."),
        opt_outs=table(OPT_OUTS_TABLE, "Per person: the SMS opt-out list and its history."),
    )


def stored(value: bytes | None) -> Any:
    """A table value as the fold's `from_json` reads it (None when the key has none)."""
    return None if value is None else json.loads(value)


def storable(state: Mapping[str, Any]) -> bytes:
    """A fold's `to_json` form as the table value."""
    return json.dumps(state, separators=(",", ":")).encode()
