"""The sweep and reconciliation: how the engine recovers from what Huey and crashes lose.

The sweep (every SWEEP_INTERVAL, one consumer) is a list of safe, repeatable steps:

1. Missed: scheduled targets more than MISSED_AFTER past due → `missed` (never published stale).
2. Leases: `publishing` targets whose lease ran out (a worker died mid-publish, or an answer
   was ambiguous) are taken over — their `sending` journal rows become `ambiguous` — and
   handed to `reconcile`. On Postgres the rows are picked with FOR UPDATE SKIP LOCKED, so
   several sweepers never take the same one; the take-over itself is a conditional update.
3. Ring: due `scheduled` targets of active accounts whose bell was lost (Redis flushed, a
   consumer killed between popping and running a task) are rung again. A duplicate ring is
   harmless: the claim lets one through.
4. Tokens expiring within their refresh horizon, and notifications never sent.

Reconcile never replays blindly: it asks the network (`find_published`), a lease (crash) or
RECONCILE_AFTER (timeout) after the doubtful attempt. Found → published. Not found (the
adapter looked: Lookup's contract says a retry is safe) → one retry, with the same
idempotency key. Undecidable (the network can't be searched) on a network that honours
idempotency keys, within the key's lifetime → one retry with the same key (the network drops
a repeat). A second doubt, or anything else → `needs_review`, and people decide with
"It was posted" / "Publish again" (both audited).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core import audit, notify, scheduling, tokens
from core.errors import NotFound, PermissionDenied, ValidationError
from core.ids import parse_id
from core.permissions import can
from core.publishing import Claim, EngineConfig, Result, build_request, config, lock_post_of, \
    mark_missed_locked, refresh_post_status, release_connection
from db import for_update, is_postgres, write_transaction
from db.fields import utcnow
from db.models import Post, PostTarget, PublishAttempt, SocialAccount, User
from platforms.base import AuthExpired, InvalidGrant, Lookup, PlatformError

log = logging.getLogger(__name__)

RING_GRACE = timedelta(seconds=5)     # a live bell rings within ~1 s of due; older means lost
BATCH = 500


@dataclass
class SweepReport:
    missed: list[str] = field(default_factory=list)
    reconcile: list[tuple[str, datetime]] = field(default_factory=list)   # (target id, lease token)
    ring: list[tuple[str, datetime]] = field(default_factory=list)        # (target id, due)
    refresh: list[str] = field(default_factory=list)                      # account ids
    notify_targets: list[str] = field(default_factory=list)
    notify_accounts: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"missed={len(self.missed)} reconcile={len(self.reconcile)} ring={len(self.ring)} "
                f"refresh={len(self.refresh)} notify={len(self.notify_targets)}+{len(self.notify_accounts)}")


def sweep(*, now: datetime | None = None, cfg: EngineConfig | None = None,
          backlog: int = 0, notifications: bool = True) -> SweepReport:
    """One pass. `backlog` is the queue's pending count: while the workers are behind (a burst
    due in the same minute), re-ringing would only double the queue, so ringing waits."""
    cfg = cfg or config()
    now = now or utcnow()
    report = SweepReport()
    report.missed = mark_missed(now, cfg)
    report.reconcile = expire_leases(now, cfg)
    if backlog < BATCH:
        report.ring = lost_rings(now, cfg)
    report.refresh = tokens.due_for_refresh(now, cfg.refresh_ahead)
    if notifications:
        report.notify_targets = notify.unsent_targets(now)
        report.notify_accounts = notify.unsent_accounts(now)
    return report


def mark_missed(now: datetime, cfg: EngineConfig, limit: int = BATCH) -> list[str]:
    stale = (PostTarget.select(PostTarget.id, PostTarget.post)
             .where((PostTarget.status == "scheduled")
                    & (PostTarget.next_attempt_at < now - cfg.missed_after))
             .order_by(PostTarget.next_attempt_at).limit(limit))
    by_post: dict[str, list[str]] = {}
    for row in stale:
        by_post.setdefault(str(row.post_id), []).append(str(row.id))
    changed: list[str] = []
    for post_id, target_ids in by_post.items():
        with write_transaction():
            post = _lock_post_skip(post_id)
            if post is None:
                continue                      # someone holds it (a claim, an edit): next sweep
            changed += mark_missed_locked(post, target_ids, now, cfg)
    return changed


def _lock_post_skip(post_id) -> Post | None:
    query = Post.with_deleted().where(Post.id == post_id)
    return (query.for_update(skip_locked=True) if is_postgres() else query).first()


def expire_leases(now: datetime, cfg: EngineConfig, limit: int = BATCH) -> list[tuple[str, datetime]]:
    """Take over publishing targets whose lease ran out. Returns (id, new lease) pairs for
    reconcile; the new lease is the claim token reconcile must still hold."""
    taken: list[tuple[str, datetime]] = []
    with write_transaction():
        expired = for_update(
            PostTarget.select(PostTarget.id)
            .where((PostTarget.status == "publishing")
                   & (PostTarget.lease_until.is_null() | (PostTarget.lease_until <= now)))
            .order_by(PostTarget.lease_until).limit(limit),
            skip_locked=True)
        for row in list(expired):
            lease = now + cfg.lease
            if _take_over(row.id, lease, now):
                taken.append((str(row.id), lease))
    return taken


def _take_over(target_id, lease: datetime, now: datetime, token: datetime | None = None) -> bool:
    """Conditional re-lease of a publishing target + its `sending` attempts → ambiguous
    (a worker that stopped mid-call can't tell us whether the request left)."""
    held = (PostTarget.lease_until == token) if token is not None else \
        (PostTarget.lease_until.is_null() | (PostTarget.lease_until <= now))
    n = (PostTarget.update(lease_until=lease)
         .where((PostTarget.id == target_id) & (PostTarget.status == "publishing") & held).execute())
    if n:
        (PublishAttempt.update(state="ambiguous", error_kind="ambiguous", finished_at=now,
                               error_message="Herald stopped while publishing (its lease ran out); "
                                             "the request may or may not have reached the network.")
         .where((PublishAttempt.target == target_id) & (PublishAttempt.state == "sending")).execute())
    return bool(n)


def lost_rings(now: datetime, cfg: EngineConfig, limit: int = BATCH) -> list[tuple[str, datetime]]:
    # Accounts that aren't active are few: a hashed NOT IN beats a lookup per due row.
    waiting = SocialAccount.select(SocialAccount.id).where(SocialAccount.status != "active")
    rows = (PostTarget.select(PostTarget.id, PostTarget.next_attempt_at)
            .where((PostTarget.status == "scheduled")
                   & (PostTarget.next_attempt_at <= now - RING_GRACE)
                   & (PostTarget.next_attempt_at >= now - cfg.missed_after)
                   & PostTarget.account.not_in(waiting))
            .order_by(PostTarget.next_attempt_at).limit(limit).tuples())
    return [(str(target_id), due) for target_id, due in rows]


# --------------------------------------------------------------------------------------
# Reconcile one target


def reconcile(target_id, lease: datetime | None = None, *, cfg: EngineConfig | None = None) -> Result:
    """Decide an ambiguous publish. `lease` is the token from the sweep's take-over; without
    it (the publish task's own follow-up) the target is taken over once its lease expired."""
    cfg = cfg or config()
    target_id = str(target_id)
    now = utcnow()
    with write_transaction():
        new_lease = now + cfg.lease
        if not _take_over(target_id, new_lease, now, token=lease):
            return Result("nothing", target_id)
        target = PostTarget.get_by_id(target_id)
        post = Post.with_deleted().where(Post.id == target.post_id).first()
        account = SocialAccount.get_by_id(target.account_id)
        attempts = list(PublishAttempt.select().where(PublishAttempt.target == target.id)
                        .order_by(PublishAttempt.number))
    release_connection()
    claim = Claim(target=target, post=post, account=account, attempt=attempts[-1] if attempts else None,
                  lease=new_lease, due=target.next_attempt_at or post.scheduled_at,
                  state=dict(target.state or {}))
    pending = [a for a in attempts if a.state == "ambiguous"]
    unresolved = _unresolved(attempts)
    if not unresolved:
        # Nothing was left in doubt (e.g. stopped between a refused 401 and its retry):
        # nothing reached the network, so it simply goes again.
        return _decide(claim, "retry", "Herald stopped before sending; trying again.", cfg)
    since = unresolved[0].started_at
    from core import networks
    adapter = networks.adapter(account.platform)
    lookup = _lookup(adapter, claim, since)
    if lookup is None:                      # the lookup itself failed: ask again a bit later
        if now - since > cfg.reconcile_give_up:
            return _decide(claim, "needs_review", "Herald couldn't reach the network to check whether "
                                                  "this went out.", cfg)
        return _decide(claim, "later", "", cfg)
    if lookup.status == "found":
        return _decide(claim, "found", lookup, cfg, attempt=unresolved[-1])
    if len(pending) <= 1:
        if lookup.status == "not_found":
            # The adapter looked and it isn't there (Lookup's contract: safe to retry). The
            # lookup runs a lease or RECONCILE_AFTER after the attempt, when any request
            # still in flight has long finished. Once only: a second doubt goes to people.
            return _decide(claim, "retry", "Not found on the network; trying once more"
                                           + (" with the same idempotency key." if adapter.capabilities.idempotency
                                              else "."), cfg)
        if adapter.capabilities.idempotency and now - since < cfg.safe_retry_window:
            # Can't look, but the network drops a repeat of the same key: a retry is safe.
            return _decide(claim, "retry", "Retrying once with the same idempotency key (the "
                                           "network drops duplicates).", cfg)
    reason = lookup.reason or ("The network can't be searched for it" if lookup.status == "unknown"
                               else "The network doesn't show it")
    return _decide(claim, "needs_review",
                   f"The network didn't confirm this post and Herald can't be sure whether it went "
                   f"out ({reason.rstrip('.')}). Check the account, then say whether it was posted.", cfg)


def _unresolved(attempts: list[PublishAttempt]) -> list[PublishAttempt]:
    """Ambiguous attempts since the last definite answer (accepted or rejected)."""
    out: list[PublishAttempt] = []
    for a in attempts:
        if a.state == "ambiguous":
            out.append(a)
        elif a.state in ("accepted", "rejected"):
            out = []
    return out


def _lookup(adapter, claim: Claim, since: datetime) -> Lookup | None:
    if not adapter.capabilities.reconcile:
        return Lookup("unknown", reason=f"{adapter.label} can't be searched for a post")
    request = build_request(claim.target, claim.post)
    request.state = dict(claim.state)
    for second_try in (False, True):
        try:
            credentials = tokens.credentials(claim.account, adapter)
            release_connection()
            return adapter.find_published(request, credentials, since)
        except InvalidGrant:
            return Lookup("unknown", reason="the account needs reconnecting before Herald can check")
        except AuthExpired:
            if second_try:
                return Lookup("unknown", reason="the network refused Herald's token")
            try:
                tokens.refresh(claim.account, adapter, force=True, seen_access=credentials.access_token)
            except InvalidGrant:
                return Lookup("unknown", reason="the account needs reconnecting before Herald can check")
            except PlatformError:
                return None
        except PlatformError as exc:
            log.warning("looking up target %s failed: %s", claim.target.id, exc.message)
            return None
        except Exception:
            log.exception("looking up target %s failed", claim.target.id)
            return None
    return None


def _decide(claim: Claim, decision: str, detail, cfg: EngineConfig, attempt: PublishAttempt | None = None) -> Result:
    target_id = str(claim.target.id)
    now = utcnow()
    with write_transaction():
        post = lock_post_of(target_id) or claim.post
        mine = ((PostTarget.id == target_id) & (PostTarget.status == "publishing")
                & (PostTarget.lease_until == claim.lease))
        if decision == "found":
            published = detail.published
            n = (PostTarget.update(status="published", platform_post_id=published.platform_post_id,
                                   platform_url=published.url,
                                   published_at=published.published_at or attempt.started_at,
                                   lease_until=None, next_attempt_at=None, last_error=None)
                 .where(mine).execute())
            if n and attempt is not None:
                (PublishAttempt.update(state="accepted", finished_at=now,
                                       error_message="Confirmed by looking the post up on the network.")
                 .where(PublishAttempt.id == attempt.id).execute())
                notify.announce_targets(post, [target_id])
            result = Result("published" if n else "nothing", target_id)
        elif decision == "retry":
            n = (PostTarget.update(status="scheduled", next_attempt_at=now, lease_until=None,
                                   last_error=detail).where(mine).execute())
            if n:
                scheduling.targets_scheduled([target_id])
            result = Result("retry" if n else "nothing", target_id, message=detail, retry_at=now)
        elif decision == "later":
            lease = now + cfg.reconcile_after
            n = PostTarget.update(lease_until=lease).where(mine).execute()
            result = Result("reconcile" if n else "nothing", target_id, reconcile_at=lease if n else None,
                            lease=lease if n else None)
        else:
            n = (PostTarget.update(status="needs_review", next_attempt_at=None, lease_until=None,
                                   last_error=detail).where(mine).execute())
            if n:
                notify.announce_targets(post, [target_id])
            result = Result("needs_review" if n else "nothing", target_id, message=detail)
        refresh_post_status(post)
    return result


# --------------------------------------------------------------------------------------
# People decide (the buttons on a needs_review message)


def _target_for(actor: User, target_id) -> tuple[PostTarget, Post]:
    uuid_ = parse_id(target_id)
    target = uuid_ and (PostTarget.select().join(Post, on=(PostTarget.post == Post.id))
                        .where((PostTarget.id == uuid_) & (Post.workspace == actor.workspace_id)).first())
    if not target:
        raise NotFound("That post doesn't exist (or was deleted).")
    post = lock_post_of(target.id)
    target = PostTarget.get_by_id(target.id)
    if post.author_id != actor.id and not can(actor, "approve"):
        raise PermissionDenied("Only the author or an approver can decide about this post.")
    return target, post


def mark_posted(actor: User, target_id, *, url: str | None = None, ip: str | None = None) -> PostTarget:
    """"It was posted": a person checked the network. The target becomes published."""
    with write_transaction():
        target, post = _target_for(actor, target_id)
        if target.status == "published":
            return target
        if target.status != "needs_review":
            raise ValidationError(f"This post is {target.status.replace('_', ' ')}; nothing to confirm.")
        first_doubt = (PublishAttempt.select(PublishAttempt.started_at)
                       .where((PublishAttempt.target == target.id) & (PublishAttempt.state == "ambiguous"))
                       .order_by(PublishAttempt.number.desc()).first())
        (PostTarget.update(status="published", platform_url=url or target.platform_url,
                           published_at=first_doubt.started_at if first_doubt else utcnow(),
                           last_error=None, next_attempt_at=None, lease_until=None)
         .where(PostTarget.id == target.id).execute())
        audit.record(actor, "target.marked_posted", target, {"post": str(post.id), "url": url}, ip=ip)
        refresh_post_status(post)
    return PostTarget.get_by_id(target.id)


def publish_again(actor: User, target_id, *, ip: str | None = None) -> PostTarget:
    """"Publish again": a person checked and it isn't there. Explicit, audited, and still
    with the same idempotency key — a network that honours keys can't make it twice."""
    with write_transaction():
        target, post = _target_for(actor, target_id)
        if target.status == "scheduled":
            return target
        if target.status != "needs_review":
            raise ValidationError(f"This post is {target.status.replace('_', ' ')}; it can't be "
                                  "published again from here.")
        now = utcnow()
        (PostTarget.update(status="scheduled", next_attempt_at=now, last_error=None, lease_until=None)
         .where(PostTarget.id == target.id).execute())
        audit.record(actor, "target.publish_again", target,
                     {"post": str(post.id), "idempotency_key": str(target.idempotency_key)}, ip=ip)
        refresh_post_status(post)
        scheduling.targets_scheduled([target.id])
    return PostTarget.get_by_id(target.id)


__all__ = ["sweep", "SweepReport", "reconcile", "mark_missed", "expire_leases", "lost_rings",
           "mark_posted", "publish_again"]
