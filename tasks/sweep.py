"""The periodic sweep and token refreshes.

Huey runs periodic tasks in the one consumer started without `-n`, checking once a minute.
SWEEP_INTERVAL (seconds, below 60) makes that consumer check more often — for tests and demos;
it applies to every periodic task, so leave it at 60 in production.
"""
from __future__ import annotations

import logging

from huey import crontab

from core import publishing, reconcile, tokens
from db.fields import utcnow
from tasks.notify import notify_account, notify_target
from tasks.publish import enqueue, schedule_reconcile
from tasks.queue import huey, with_database

log = logging.getLogger(__name__)

_interval = publishing.EngineConfig.from_env().sweep_interval
if _interval < 60:
    from huey.consumer import Scheduler
    Scheduler.periodic_task_seconds = _interval   # only a consumer's scheduler reads it


@huey.periodic_task(crontab())
@with_database
def sweep() -> None:
    cfg = publishing.config()
    try:
        backlog = huey.pending_count()
    except Exception:  # the queue can't say: ring anyway (a duplicate ring is harmless)
        backlog = 0
    report = reconcile.sweep(cfg=cfg, backlog=backlog)
    for target_id, lease in report.reconcile:
        schedule_reconcile(target_id, lease)
    for target_id, due in report.ring:
        enqueue(target_id, due)
    for account_id in report.refresh:
        refresh_account_token(account_id)
    for target_id in report.notify_targets:
        notify_target(target_id)
    for account_id in report.notify_accounts:
        notify_account(account_id)
    if any((report.missed, report.reconcile, report.ring, report.refresh, report.notify_targets,
            report.notify_accounts)):
        log.info("sweep at %s: %s", utcnow().strftime("%H:%M:%S"), report.summary())


@huey.task()
@with_database
def refresh_account_token(account_id: str) -> None:
    outcome = tokens.refresh_account(account_id, publishing.config().refresh_ahead)
    if outcome not in ("fresh", "skipped"):
        log.info("token of account %s: %s", account_id, outcome)
