"""The two RocksDB tables (with Kafka changelogs). Keys are the UTF-8 entity ids; values are plain
JSON, the folds' `to_json` forms (Faust ignores custom table serializers: faust-streaming #556)."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from streams.settings import Settings
from streams.topics import CONTACTS_TABLE, OPT_OUTS_TABLE


@dataclass(frozen=True)
class Tables:
    contacts: faust.Table  # per phone: projections.contacts.Contacts
    opt_outs: faust.Table  # per person: projections.opt_outs.PersonOptOuts


def declare_tables(app: faust.App, settings: Settings) -> Tables:
    def table(name: str, help: str) -> faust.Table:
        return app.Table(
            name,
            default=None,
            partitions=settings.partitions,
            # bytes keys are stored raw, as the topics' keys are: the partition a key hashes to is
            # then the same for the input topic, the changelog and Faust's request routing.
            key_type=bytes,
            options={"driver": "rocksdict"},
            help=help,
        )

    return Tables(
        contacts=table(CONTACTS_TABLE, "Per phone: who received SMS from which sender."),
        opt_outs=table(OPT_OUTS_TABLE, "Per person: the SMS opt-out list and its history."),
    )
