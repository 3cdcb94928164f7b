"""What the engine tells people, and the record that it did (Slack itself lives in tasks/ and bot/).

Two kinds of announcement leave core through a seam like core.scheduling's, after commit:

    announce("target", ids)    a target reached published / failed / needs_review / missed
    announce("account", ids)   an account needs reconnecting

tasks/ registers a notifier that enqueues one notify task per id. A notification is
durable without a table of its own: once Slack has it, `mark_notified` appends a
`target.notified` / `account.reauth_notified` entry to the audit log, and the sweep
re-announces anything whose latest change has no such entry after it (a notify task lost
to a crash, a Slack outage longer than the task's retries). The note builders below answer
None when there is nothing (more) to say, so a repeated task posts nothing twice in the
ordinary case.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable

from core import audit
from db import database
from db.fields import utcnow
from db.models import AuditLog, Post, PostTarget, Project, PublishAttempt, SocialAccount

log = logging.getLogger(__name__)

NOTIFY_TARGET_STATUSES = ("published", "failed", "needs_review", "missed")
TARGET_NOTIFIED = "target.notified"
ACCOUNT_NOTIFIED = "account.reauth_notified"
GRACE = timedelta(minutes=2)     # the ordinary notify task's head start before the sweep steps in
WINDOW = timedelta(hours=6)      # how far back the sweep looks for unsent notifications

Notifier = Callable[[str, list], None]
_notifiers: list[Notifier] = []


def register_notifier(notifier: Notifier) -> None:
    if notifier not in _notifiers:
        _notifiers.append(notifier)


def announce(kind: str, ids: Iterable) -> None:
    ids = [str(i) for i in ids]
    if not ids:
        return

    def ring():
        for notifier in list(_notifiers):
            try:
                notifier(kind, ids)
            except Exception:  # the sweep re-announces; a queue outage must not undo a result
                log.exception("could not enqueue %d %s notification(s); the sweep will", len(ids), kind)

    database.after_commit(ring) if database.in_transaction() else ring()


def announce_targets(post, ids: Iterable) -> None:
    """Results of a post's targets; nothing to say where the post has no channel to say it in."""
    if getattr(post, "approval_channel_id", None):
        announce("target", ids)


# --------------------------------------------------------------------------------------
# Notes: everything a message needs, as plain data


@dataclass(frozen=True)
class TargetNote:
    target_id: str
    post_id: str
    workspace_id: str
    status: str                   # published | failed | needs_review | missed
    platform: str
    handle: str
    channel: str
    thread_ts: str | None
    text: str
    url: str | None = None
    published_at: datetime | None = None
    due_at: datetime | None = None
    error: str | None = None
    attempts: int = 0
    changed_at: datetime | None = None

    @property
    def lateness(self) -> float | None:
        if self.published_at is None or self.due_at is None:
            return None
        return (self.published_at - self.due_at).total_seconds()


@dataclass(frozen=True)
class AccountNote:
    account_id: str
    workspace_id: str
    platform: str
    handle: str
    channel: str
    reason: str
    reconnect_url: str
    waiting: int                  # scheduled targets waiting for the reconnect
    changed_at: datetime | None = None


def _notified_since(entity_type: str, action: str, entity_id: str) -> datetime | None:
    value = (AuditLog.select(AuditLog.created_at)
             .where((AuditLog.entity_type == entity_type) & (AuditLog.entity_id == entity_id)
                    & (AuditLog.action == action))
             .order_by(AuditLog.created_at.desc()).limit(1).scalar())
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value


def target_note(target_id, *, force: bool = False) -> TargetNote | None:
    target = PostTarget.get_or_none(PostTarget.id == target_id)
    if target is None or target.status not in NOTIFY_TARGET_STATUSES:
        return None
    post = Post.with_deleted().where(Post.id == target.post_id).first()
    if post is None or not post.approval_channel_id:
        return None
    if not force:
        sent = _notified_since("post_targets", TARGET_NOTIFIED, str(target.id))
        if sent is not None and sent >= target.updated_at:
            return None
    account = SocialAccount.get_by_id(target.account_id)
    first = (PublishAttempt.select(PublishAttempt.started_at).where(PublishAttempt.target == target.id)
             .order_by(PublishAttempt.number).first())
    due = post.scheduled_at or (first.started_at if first else None)
    return TargetNote(
        target_id=str(target.id), post_id=str(post.id), workspace_id=str(post.workspace_id),
        status=target.status, platform=account.platform, handle=account.handle,
        channel=post.approval_channel_id, thread_ts=post.approval_message_ts,
        text=target.text_override or post.body, url=target.platform_url,
        published_at=target.published_at, due_at=due, error=target.last_error,
        attempts=target.attempts, changed_at=target.updated_at)


def account_note(account_id, public_url: str, *, force: bool = False) -> AccountNote | None:
    account = SocialAccount.get_or_none(SocialAccount.id == account_id)
    if account is None or account.status != "needs_reauth":
        return None
    project = Project.with_deleted().where(Project.id == account.project_id).first() \
        if account.project_id else None
    if project is None or not project.approval_channel_id:
        log.warning("account %s needs reconnecting but has no project channel to say so in", account.id)
        return None
    if not force:
        sent = _notified_since("social_accounts", ACCOUNT_NOTIFIED, str(account.id))
        if sent is not None and sent >= account.updated_at:
            return None
    waiting = (PostTarget.select().where((PostTarget.account == account.id)
                                         & (PostTarget.status == "scheduled")).count())
    return AccountNote(account_id=str(account.id), workspace_id=str(account.workspace_id),
                       platform=account.platform, handle=account.handle,
                       channel=project.approval_channel_id, reason=account.status_detail or "",
                       reconnect_url=f"{public_url.rstrip('/')}/accounts", waiting=waiting,
                       changed_at=account.updated_at)


def mark_notified(note: TargetNote | AccountNote, *, channel: str | None, ts: str | None,
                  error: str | None = None) -> None:
    """Append the "told them" record; `error` records a message Slack refused for good, so
    the sweep doesn't keep trying a channel that is gone."""
    changes = {"channel": channel, "ts": ts}
    if error:
        changes["error"] = error
    if isinstance(note, TargetNote):
        changes["status"] = note.status
        audit.record("Herald", TARGET_NOTIFIED, ("post_targets", note.target_id), changes,
                     workspace=note.workspace_id)
    else:
        audit.record("Herald", ACCOUNT_NOTIFIED, ("social_accounts", note.account_id), changes,
                     workspace=note.workspace_id)


# --------------------------------------------------------------------------------------
# The sweep's outbox: what was never told


def unsent_targets(now: datetime | None = None, limit: int = 200) -> list[str]:
    now = now or utcnow()
    candidates = list(PostTarget.select(PostTarget.id, PostTarget.updated_at)
                      .join(Post, on=(PostTarget.post == Post.id))
                      .where(PostTarget.status.in_(NOTIFY_TARGET_STATUSES)
                             & (PostTarget.updated_at >= now - WINDOW)
                             & (PostTarget.updated_at <= now - GRACE)
                             & Post.approval_channel_id.is_null(False))
                      .order_by(PostTarget.updated_at).limit(limit * 5))
    return _without_record(candidates, "post_targets", TARGET_NOTIFIED)[:limit]


def unsent_accounts(now: datetime | None = None, limit: int = 100) -> list[str]:
    now = now or utcnow()
    candidates = list(SocialAccount.select(SocialAccount.id, SocialAccount.updated_at)
                      .where((SocialAccount.status == "needs_reauth")
                             & (SocialAccount.updated_at >= now - WINDOW)
                             & (SocialAccount.updated_at <= now - GRACE))
                      .limit(limit))
    return _without_record(candidates, "social_accounts", ACCOUNT_NOTIFIED)


def _without_record(rows: list, entity_type: str, action: str) -> list[str]:
    if not rows:
        return []
    latest: dict[str, datetime] = {}
    ids = [str(r.id) for r in rows]
    for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
        for entry in (AuditLog.select(AuditLog.entity_id, AuditLog.created_at)
                      .where((AuditLog.entity_type == entity_type) & AuditLog.entity_id.in_(chunk)
                             & (AuditLog.action == action))):
            if entry.entity_id not in latest or entry.created_at > latest[entry.entity_id]:
                latest[entry.entity_id] = entry.created_at
    return [str(r.id) for r in rows
            if str(r.id) not in latest or latest[str(r.id)] < r.updated_at]


__all__ = ["register_notifier", "announce", "announce_targets", "TargetNote", "AccountNote", "target_note",
           "account_note", "mark_notified", "unsent_targets", "unsent_accounts"]
