"""Publish and reconcile tasks: thin doorbells around core.publishing and core.reconcile.

Tasks get ids (and, for reconcile, the lease token as text) — never tokens or rows.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime

from core import publishing, reconcile
from db.fields import utcnow
from tasks.queue import huey, with_database

log = logging.getLogger(__name__)


@huey.task()
@with_database
def publish_target(target_id: str) -> None:
    cfg = publishing.config()
    peeked = publishing.peek(target_id)
    if peeked is None or peeked[0] != "scheduled":
        return                                   # a stale bell: edited, cancelled, done
    wait = (peeked[1] - utcnow()).total_seconds() if peeked[1] else 0
    if 0 < wait <= cfg.ring_lead.total_seconds() + 0.5:
        # The bell rings up to `ring_lead` early (Huey's scheduler wakes once a second);
        # wait here for the exact moment instead of up to a second late.
        publishing.release_connection()
        time.sleep(wait)
    follow_up(publishing.publish(target_id, cfg=cfg, peeked=peeked))


@huey.task()
@with_database
def reconcile_target(target_id: str, lease: str | None = None) -> None:
    token = datetime.fromisoformat(lease) if lease else None
    follow_up(reconcile.reconcile(target_id, token, cfg=publishing.config()))


def follow_up(result: publishing.Result) -> None:
    if result.kind != "nothing":
        log.info("target %s: %s%s%s", result.target_id, result.kind,
                 f" ({result.lateness:.3f} s after due)" if result.lateness is not None else "",
                 f" — {result.message}" if result.message else "")
    if result.kind == "reconcile" and result.reconcile_at is not None:
        schedule_reconcile(result.target_id, result.lease, result.reconcile_at)


def schedule_reconcile(target_id: str, lease: datetime | None, eta: datetime | None = None) -> None:
    args = (str(target_id), lease.isoformat() if lease else None)
    if eta is None or eta <= utcnow():
        reconcile_target(*args)
    else:
        reconcile_target.schedule(args=args, eta=eta)


def enqueue(target_id: str, due: datetime) -> None:
    """One bell for one target, `ring_lead` before it is due (aware UTC eta)."""
    eta = due - publishing.config().ring_lead
    if eta <= utcnow():
        publish_target(str(target_id))
    else:
        publish_target.schedule(args=(str(target_id),), eta=eta)


def ring(target_ids: list) -> None:
    """The ringer core.scheduling calls after a commit that scheduled targets."""
    for target_id, due in publishing.scheduled_due(target_ids):
        enqueue(target_id, due)
