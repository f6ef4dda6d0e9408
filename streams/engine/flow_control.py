"""Flow control whose resume keeps what the queues hold: records are dropped from the agents' and the
recovery's queues when a rebalance stops the flow, never when the flow starts again.

Faust's app holds one flow control for every queue between the consumer and the agents and tables:
each agent's stream queue and the tables' changelog queue are "cleared on resume". A rebalance stops
the flow and clears them (what they hold was fetched for the old assignment; the consumer seeks every
partition again). But Faust's recovery also resumes the flow several times while it runs and when it
ends, after it has sought the partitions and while the consumer is already handing over what it
fetched from there: each resume then dropped the records queued at that moment, with the consumer's
position past them. The recovery went on with the next records, advanced a standby's persisted
offset over the hole, and the standby's store lacked those keys' values for good. Found by the
two-worker chaos soak: about one standby in three restarted with a record missing (a changelog
partition read 0-578 with offset 14 missing), and a worker that took such a partition over folded
from the hole: a phone's contacts without a recipient, a later STOP without its person.

Decision record: docs/decisions/0014-queues-kept-on-resume.md.
"""

from __future__ import annotations

from mode.utils.queues import FlowControlEvent


class KeptOnResume(FlowControlEvent):
    """`resume` lets the queues fill again without emptying them; `clear` (a rebalance, with the
    flow stopped) empties them as before."""

    def resume(self) -> None:
        self._suspend.clear()
        self._resume.set()
