"""The seam between the workflow and the publishing engine.

When posts become `scheduled` (approved, or rescheduled), the workflow calls
`targets_scheduled(target_ids)` inside its transaction. After the transaction commits, the
registered ringer enqueues one publish task per target with eta = its next_attempt_at.
The database row is the truth either way: a lost or late ring is caught by the engine's
sweep, and an early or stale ring finds nothing to claim.

tasks/ registers the ringer at import (web, worker and CLI all import it through
core.bootstrap); with none registered, scheduled targets wait for the sweep.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from db import database

log = logging.getLogger(__name__)

Ringer = Callable[[list], None]
_ringers: list[Ringer] = []


def register_ringer(ringer: Ringer) -> None:
    if ringer not in _ringers:
        _ringers.append(ringer)


def targets_scheduled(target_ids: Iterable) -> None:
    ids = [str(i) for i in target_ids]
    if not ids:
        return

    def ring():
        for ringer in list(_ringers):
            try:
                ringer(ids)
            except Exception:  # the sweep re-rings; a queue outage must not undo an approval
                log.exception("could not enqueue %d scheduled target(s); the sweep will", len(ids))

    database.after_commit(ring) if database.in_transaction() else ring()
