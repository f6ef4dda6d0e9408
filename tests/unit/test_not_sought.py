"""After a rebalance, an input partition with nothing committed is sought to its beginning, since
aiokafka's `seek_to_committed` leaves it where the last fetch left it, past batches the rebalance
dropped unfolded (streams.engine.transport, decision 13). Changelogs are the recovery's to seek."""

from __future__ import annotations

from faust.types import TP

from streams.engine.transport import not_sought


def test_only_input_partitions_with_nothing_committed_are_sought_to_their_beginning() -> None:
    committed = {
        TP("sms-person-events", 1): None,  # every commit refused (a paused worker): never committed
        TP("sms-person-events", 2): 0,  # aiokafka does not seek to 0 either
        TP("sms-person-events", 3): 61,
        TP("sms-messaging-events", 0): 2106,
        TP("optouts-contacts-changelog", 1): None,  # the recovery seeks it
    }

    assert not_sought(committed, {"sms-person-events", "sms-messaging-events"}) == [
        TP("sms-person-events", 1),
        TP("sms-person-events", 2),
    ]
