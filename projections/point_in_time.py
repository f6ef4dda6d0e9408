"""A person's list as it stood at a moment in the past, folded again from their history."""

from __future__ import annotations

from datetime import datetime

from projections.opt_outs import PersonOptOuts, project_all


def as_of(state: PersonOptOuts, moment: datetime) -> PersonOptOuts:
    """The list as it stood at `moment`: every change that had occurred by then, in log order.

    The history holds every change of the list and nothing else, so folding the changes up to
    `moment` gives the list the person had then; `updated_at` is that of the last of them.
    A change is placed by its `occurred_at`, not by when it reached the log.
    """
    changes = (event for event in state.history if event.occurred_at <= moment)
    return project_all(changes, person_id=state.person_id)
