"""The publishing engine (DESIGN §4): the database is the truth, Huey only rings the bell.

One publish of one target:

1. Claim — one conditional UPDATE: status scheduled → publishing, lease_until = now + lease,
   attempts + 1, where the target is due (next_attempt_at <= now), not stale (no more than
   MISSED_AFTER late) and its account is active. Zero rows: a stale or duplicate ring, an
   edit, a cancel, or another worker got there first — do nothing. In the same transaction
   a `publish_attempts` row is written in `sending`; it commits BEFORE any network call.
   The post row is locked first (the order every writer uses: post, then targets), so an
   edit or a cancel can't slip between the claim and the post's derived status.
2. Call the adapter with the target's checkpointed state; checkpoints are saved in their own
   small transaction (and extend the lease) so a retry resumes instead of re-creating.
3. Settle — one transaction, conditional on still holding the lease (lease_until is the
   claim token): accepted → published; rate limited → scheduled at the platform's reset;
   transient → scheduled with exponential backoff and jitter until the retry budget is
   spent, then failed; permanent → failed in plain words; ambiguous (the request may have
   landed) → the attempt is `ambiguous`, the target stays `publishing` with a short lease,
   and reconciliation (core/reconcile.py) looks the post up before anything is retried.
   A 401 refreshes the token once and retries once; a refused refresh marks the account
   needs_reauth and the target waits (scheduled, not failed) until it is reconnected or
   the missed window passes.

Results go out through two seams, after commit: `core.scheduling.targets_scheduled` (retry
rings) and `core.notify.announce` (Slack results). Core never imports Huey or Slack.
"""
from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from peewee import JOIN, fn

from core import notify, scheduling, tokens
from core.posts import derive_status
from core.settings import parse_duration
from db import database, for_update, write_transaction
from db.fields import utcnow
from db.models import AuditLog, Media, OAuthToken, Post, PostTarget, PublishAttempt, SocialAccount
from platforms.base import Ambiguous, AuthExpired, InvalidGrant, Media as PlatformMedia, \
    Permanent, PlatformError, Published, PublishRequest, RateLimited, Transient

log = logging.getLogger(__name__)

# Post statuses under the engine's control: only these follow their targets.
ENGINE_POST_STATUSES = ("scheduled", "publishing", "published", "partially_published", "failed",
                        "needs_review", "missed")
FINAL_TARGET_STATUSES = ("published", "failed", "needs_review", "missed")
# What the engine reads of a post (fewer columns: less SQL to build and rows to parse).
POST_COLUMNS = (Post.id, Post.workspace, Post.author, Post.body, Post.status, Post.scheduled_at,
                Post.approval_channel_id, Post.approval_message_ts, Post.deleted_at)
HUMAN_RETRY_ACTIONS = ("target.retried", "target.publish_again")


# --------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class EngineConfig:
    """Engine knobs, from the environment (README "Settings"). Defaults suit production;
    tests shorten the lease, the sweep interval and the reconcile delay."""

    lease: timedelta = timedelta(minutes=10)          # PUBLISH_LEASE
    max_attempts: int = 8                             # PUBLISH_MAX_ATTEMPTS (transient failures)
    backoff: timedelta = timedelta(seconds=15)        # PUBLISH_BACKOFF (first retry, doubling)
    backoff_cap: timedelta = timedelta(minutes=10)    # PUBLISH_BACKOFF_CAP
    reconcile_after: timedelta = timedelta(seconds=60)   # RECONCILE_AFTER
    reconcile_give_up: timedelta = timedelta(hours=1)    # lookups keep failing → needs_review
    safe_retry_window: timedelta = timedelta(minutes=45)  # Mastodon keeps keys for 1 h
    sweep_interval: int = 60                          # SWEEP_INTERVAL (seconds)
    refresh_ahead: timedelta = timedelta(hours=6)     # TOKEN_REFRESH_AHEAD
    missed_after: timedelta = timedelta(hours=24)     # MISSED_AFTER
    ring_lead: timedelta = timedelta(seconds=1)       # the bell rings this early; the task waits

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "EngineConfig":
        env = os.environ if environ is None else environ

        def duration(name: str, default: timedelta) -> timedelta:
            raw = env.get(name, "").strip()
            return parse_duration(raw, name) if raw else default

        interval = int(parse_duration(env.get("SWEEP_INTERVAL", "").strip() or "60",
                                      "SWEEP_INTERVAL").total_seconds())
        attempts = int(env.get("PUBLISH_MAX_ATTEMPTS", "").strip() or cls.max_attempts)
        return cls(
            lease=duration("PUBLISH_LEASE", cls.lease),
            max_attempts=max(1, attempts),
            backoff=duration("PUBLISH_BACKOFF", cls.backoff),
            backoff_cap=duration("PUBLISH_BACKOFF_CAP", cls.backoff_cap),
            reconcile_after=duration("RECONCILE_AFTER", cls.reconcile_after),
            sweep_interval=max(1, min(60, interval)),
            refresh_ahead=duration("TOKEN_REFRESH_AHEAD", cls.refresh_ahead),
            missed_after=duration("MISSED_AFTER", cls.missed_after),
        )


_config: EngineConfig | None = None


def config() -> EngineConfig:
    global _config
    if _config is None:
        _config = EngineConfig.from_env()
    return _config


def configure(engine_config: EngineConfig | None) -> None:
    """Set (or, with None, forget) the process's engine configuration."""
    global _config
    _config = engine_config


def backoff(failures: int, cfg: EngineConfig | None = None, rng: random.Random | None = None) -> timedelta:
    """Delay before retry number `failures` (1-based): the ceiling doubles from PUBLISH_BACKOFF
    up to PUBLISH_BACKOFF_CAP, and the delay is drawn from [ceiling/2, ceiling] ("equal
    jitter"), so a burst that failed together doesn't come back together."""
    cfg = cfg or config()
    ceiling = min(cfg.backoff_cap, cfg.backoff * (2 ** max(0, failures - 1)))
    return ceiling / 2 + ceiling / 2 * (rng or random).random()


# --------------------------------------------------------------------------------------
# Results handed back to the task layer


@dataclass
class Result:
    """What happened, for the task layer's follow-ups and for logs and benchmarks."""

    kind: str            # nothing | published | retry | failed | missed | waiting | reconcile | needs_review
    target_id: str
    message: str = ""
    retry_at: datetime | None = None
    reconcile_at: datetime | None = None
    lease: datetime | None = None
    lateness: float | None = None      # seconds between due and the journal's `sending` commit


@dataclass
class Claim:
    """A held target: the lease value is the claim token every later write is conditional on."""

    target: PostTarget
    post: Post
    account: SocialAccount
    attempt: PublishAttempt
    lease: datetime
    due: datetime
    state: dict = field(default_factory=dict)
    token: object = None          # the OAuthToken read with the claim (saves a query)


class LeaseLost(Exception):
    """The lease ran out and someone else (the sweep) took the target over: stop now."""


# --------------------------------------------------------------------------------------
# Helpers shared with core.reconcile


def release_connection() -> None:
    """Give the connection back to the pool before a slow network call (never inside a
    transaction): N worker threads then need far fewer than N connections."""
    real = getattr(database, "obj", database)
    if real is None or real.is_closed() or real.in_transaction():
        return
    if getattr(real._state, "ctx", None):
        return          # inside someone's connection_context(): its owner closes it
    real.close()


def lock_post_of(target_id) -> Post | None:
    """Lock the post of a target (post first, then targets: the order every writer uses)."""
    of_target = PostTarget.select(PostTarget.post).where(PostTarget.id == target_id)
    return for_update(Post.with_deleted(*POST_COLUMNS).where(Post.id.in_(of_target))).first()


def refresh_post_status(post: Post) -> str:
    """Derive the post's status from its targets (call with the post locked)."""
    if post.status not in ENGINE_POST_STATUSES:
        return post.status
    statuses = [t.status for t in PostTarget.select(PostTarget.status).where(PostTarget.post == post.id)]
    derived = derive_status(statuses)
    if derived != post.status:
        Post.update(status=derived).where(Post.id == post.id).execute()
        post.status = derived
    return derived


def build_request(target: PostTarget, post: Post) -> PublishRequest:
    media = [PlatformMedia(url=m.url, mime=m.mime or "", kind="video" if (m.mime or "").startswith("video/")
                           else "image", size=m.size, width=m.width, height=m.height,
                           duration=m.duration, alt_text=m.alt_text or "")
             for m in Media.select().where(Media.post == post.id).order_by(Media.position)]
    return PublishRequest(target_id=str(target.id), text=target.text_override or post.body,
                          idempotency_key=str(target.idempotency_key), media=media,
                          options=dict(target.options or {}), state=dict(target.state or {}))


def retry_origin(target: PostTarget, post: Post) -> datetime:
    """Where the missed window and the retry budget start: the scheduled time, or the last
    time a person asked for another try (Retry / Publish again)."""
    origin = post.scheduled_at or target.created_at
    human = (AuditLog.select(fn.MAX(AuditLog.created_at))
             .where((AuditLog.entity_type == "post_targets") & (AuditLog.entity_id == str(target.id))
                    & AuditLog.action.in_(HUMAN_RETRY_ACTIONS)).scalar())
    if isinstance(human, str):
        human = datetime.fromisoformat(human)
    return max(origin, human) if human else origin


def _journal(attempt: PublishAttempt, state: str, error: Exception | None = None,
             now: datetime | None = None, http_status: int | None = None) -> None:
    fields = {"state": state, "finished_at": now or utcnow()}
    if isinstance(error, PlatformError):
        fields.update(http_status=error.http_status, error_code=(error.code or None) and str(error.code)[:64],
                      error_message=error.message, response_excerpt=(error.detail or None)
                      and error.detail[:500], error_kind=error_kind(error))
    elif error is not None:
        fields.update(error_kind="ambiguous", error_message=f"{type(error).__name__}: {error}"[:500])
    elif http_status is not None:
        fields["http_status"] = http_status
    PublishAttempt.update(**fields).where(PublishAttempt.id == attempt.id).execute()


def error_kind(error: Exception) -> str:
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, AuthExpired):
        return "auth_expired"
    if isinstance(error, Transient):
        return "transient"
    if isinstance(error, Permanent):
        return "permanent"
    return "ambiguous"


def _clock(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M UTC")


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0 and seconds >= 86400:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def missed_message(due: datetime, now: datetime, cfg: EngineConfig) -> str:
    return (f"Not published: it was due at {_clock(due)} and Herald could only get to it at "
            f"{_clock(now)}, more than {_span(cfg.missed_after)} late (MISSED_AFTER). Publishing "
            "it now would be stale; schedule it again if it still matters.")


# --------------------------------------------------------------------------------------
# Ringing: when is a target due?


def peek(target_id) -> tuple[str, datetime | None] | None:
    """(status, due) of a target, read without any lock: the bell's first, cheap look."""
    return (PostTarget.select(PostTarget.status, PostTarget.next_attempt_at)
            .where(PostTarget.id == target_id).tuples().first())


def due_at(target_id) -> datetime | None:
    """The due time of a scheduled target (None when it isn't scheduled)."""
    row = peek(target_id)
    return row[1] if row and row[0] == "scheduled" else None


def scheduled_due(target_ids) -> list[tuple[str, datetime]]:
    """(id, due) for the scheduled ones among these targets: what a ring enqueues."""
    ids = [str(i) for i in target_ids]
    rows = (PostTarget.select(PostTarget.id, PostTarget.next_attempt_at)
            .where(PostTarget.id.in_(ids) & (PostTarget.status == "scheduled")
                   & PostTarget.next_attempt_at.is_null(False)))
    return [(str(r.id), r.next_attempt_at) for r in rows]


# --------------------------------------------------------------------------------------
# Publish one target


def publish(target_id, *, cfg: EngineConfig | None = None, peeked=None) -> Result:
    cfg = cfg or config()
    claim = claim_target(target_id, cfg=cfg, peeked=peeked)
    if isinstance(claim, Result):
        return claim
    release_connection()
    return attempt(claim, cfg)


def claim_target(target_id, *, cfg: EngineConfig | None = None, now: datetime | None = None,
                 peeked=None):
    """Claim + journal in one transaction. Returns a Claim, or a Result when there is nothing
    to do (or the target turned out to be stale and is now `missed`). `peeked` is a `peek()`
    the caller already made (it only saves a read: the claim itself re-checks everything)."""
    cfg = cfg or config()
    target_id = str(target_id)
    # A stale ring (edited, cancelled, already published) costs one read, no write lock.
    given = now
    status, due = (peeked or peek(target_id) or (None, None))
    if status != "scheduled" or due is None or due > (given or utcnow()):
        return Result("nothing", target_id)
    with write_transaction():
        now = given or utcnow()          # after the lock: waiting for it may have taken a while
        post = lock_post_of(target_id)
        if post is None or post.deleted_at is not None or post.status not in ENGINE_POST_STATUSES:
            return Result("nothing", target_id)
        lease = now + cfg.lease
        active = SocialAccount.select(SocialAccount.id).where(SocialAccount.status == "active")
        claimed = (PostTarget
                   .update(status="publishing", lease_until=lease, attempts=PostTarget.attempts + 1)
                   .where((PostTarget.id == target_id)
                          & (PostTarget.status == "scheduled")
                          & (PostTarget.next_attempt_at <= now)
                          & (PostTarget.next_attempt_at >= now - cfg.missed_after)
                          & PostTarget.account.in_(active))
                   .execute())
        if not claimed:
            return _missed_or_nothing(post, target_id, now, cfg)
        target = (PostTarget.select(PostTarget, SocialAccount, OAuthToken)
                  .join(SocialAccount, on=(PostTarget.account == SocialAccount.id))
                  .join(OAuthToken, JOIN.LEFT_OUTER, on=(OAuthToken.account == SocialAccount.id),
                        attr="token")
                  .where(PostTarget.id == target_id).get())
        account = target.account
        token = getattr(account, "token", None)
        token = token if token is not None and token.id is not None else None
        due = target.next_attempt_at
        journal = PublishAttempt.create(target=target, number=target.attempts,
                                        idempotency_key=target.idempotency_key, state="sending",
                                        started_at=utcnow())
        if post.status != "publishing":     # a publishing target makes its post publishing
            Post.update(status="publishing").where(Post.id == post.id).execute()
            post.status = "publishing"
    return Claim(target=target, post=post, account=account, attempt=journal, lease=lease, due=due,
                 state=dict(target.state or {}), token=token)


def _missed_or_nothing(post: Post, target_id: str, now: datetime, cfg: EngineConfig) -> Result:
    row = PostTarget.select(PostTarget.next_attempt_at, PostTarget.status).where(PostTarget.id == target_id).first()
    if row is None or row.status != "scheduled" or row.next_attempt_at is None \
            or row.next_attempt_at >= now - cfg.missed_after:
        return Result("nothing" if row is None or row.status != "scheduled" else "waiting", target_id)
    message = missed_message(row.next_attempt_at, now, cfg)
    if mark_missed_locked(post, [target_id], now, cfg, message):
        return Result("missed", target_id, message=message)
    return Result("nothing", target_id)


def mark_missed_locked(post: Post, target_ids: list, now: datetime, cfg: EngineConfig,
                       message: str | None = None) -> list[str]:
    """Stale scheduled targets of a locked post → missed. Returns the ids changed."""
    stale = [str(t.id) for t in PostTarget.select(PostTarget.id, PostTarget.next_attempt_at)
             .where(PostTarget.id.in_([str(i) for i in target_ids]) & (PostTarget.post == post.id)
                    & (PostTarget.status == "scheduled")
                    & (PostTarget.next_attempt_at < now - cfg.missed_after))]
    changed = []
    for target_id in stale:
        row = PostTarget.get_by_id(target_id)
        text = message or missed_message(row.next_attempt_at, now, cfg)
        n = (PostTarget.update(status="missed", next_attempt_at=None, lease_until=None, last_error=text)
             .where((PostTarget.id == target_id) & (PostTarget.status == "scheduled")).execute())
        if n:
            changed.append(target_id)
    if changed:
        refresh_post_status(post)
        notify.announce_targets(post, changed)
    return changed


def _next_attempt(claim: Claim) -> None:
    """A second attempt inside the same claim (after a 401 and a refresh): journalled and
    committed before the request, like the first."""
    with write_transaction():
        n = (PostTarget.update(attempts=PostTarget.attempts + 1)
             .where((PostTarget.id == claim.target.id) & (PostTarget.status == "publishing")
                    & (PostTarget.lease_until == claim.lease)).execute())
        if not n:
            raise LeaseLost()
        target = PostTarget.get_by_id(claim.target.id)
        claim.attempt = PublishAttempt.create(target=target, number=target.attempts,
                                              idempotency_key=target.idempotency_key,
                                              state="sending", started_at=utcnow())
    release_connection()


def make_checkpoint(claim: Claim, cfg: EngineConfig):
    """The adapter's checkpoint callback: its own small transaction, conditional on the lease
    (which it extends — a long media flow keeps its claim while it makes progress)."""
    def checkpoint(state: dict) -> None:
        lease = utcnow() + cfg.lease
        with write_transaction():
            n = (PostTarget.update(state=dict(state), lease_until=lease)
                 .where((PostTarget.id == claim.target.id) & (PostTarget.status == "publishing")
                        & (PostTarget.lease_until == claim.lease)).execute())
        release_connection()
        if not n:
            raise LeaseLost()
        claim.lease, claim.state = lease, dict(state)
    return checkpoint


def attempt(claim: Claim, cfg: EngineConfig) -> Result:
    """The network part of a claim, then its settlement."""
    from core import networks
    adapter = networks.adapter(claim.account.platform)
    request = build_request(claim.target, claim.post)
    request.state = dict(claim.state)
    checkpoint = make_checkpoint(claim, cfg)
    refreshed = False
    lateness = (claim.attempt.started_at - claim.due).total_seconds()
    while True:
        try:
            credentials = tokens.credentials(claim.account, adapter, token=claim.token)
        except InvalidGrant as exc:
            return settle(claim, "waiting", exc, cfg, lateness=lateness)
        except RateLimited as exc:
            return settle(claim, "rate_limited", exc, cfg, lateness=lateness)
        except PlatformError as exc:        # the token endpoint failed; the post wasn't sent
            return settle(claim, "transient", Transient(f"Couldn't refresh the token: {exc.message}",
                                                        code=exc.code, http_status=exc.http_status),
                          cfg, lateness=lateness)
        claim.token = None                  # after a refresh, read it again
        release_connection()
        try:
            published = adapter.publish(request, credentials, checkpoint=checkpoint)
        except LeaseLost as exc:
            return settle(claim, "ambiguous", exc, cfg, lateness=lateness)
        except InvalidGrant as exc:
            return settle(claim, "waiting", exc, cfg, lateness=lateness)
        except AuthExpired as exc:
            if refreshed:
                tokens.mark_needs_reauth(claim.account.id, f"{exc.message} (still refused after a "
                                                           "fresh token)")
                return settle(claim, "waiting", exc, cfg, lateness=lateness)
            with write_transaction():
                _journal(claim.attempt, "rejected", exc)
            try:
                tokens.refresh(claim.account, adapter, force=True, seen_access=credentials.access_token)
                _next_attempt(claim)
            except InvalidGrant as refused:
                return settle(claim, "waiting", refused, cfg, lateness=lateness, journalled=True)
            except LeaseLost as lost:
                return settle(claim, "ambiguous", lost, cfg, lateness=lateness, journalled=True)
            except PlatformError as failed:   # the refresh endpoint itself failed: try later
                return settle(claim, "transient", Transient(f"Couldn't refresh the token: {failed.message}"),
                              cfg, lateness=lateness, journalled=True)
            refreshed = True
            request.state = dict(claim.state)
            continue
        except RateLimited as exc:
            return settle(claim, "rate_limited", exc, cfg, lateness=lateness)
        except Transient as exc:
            return settle(claim, "transient", exc, cfg, lateness=lateness)
        except Permanent as exc:
            return settle(claim, "permanent", exc, cfg, lateness=lateness)
        except Ambiguous as exc:
            return settle(claim, "ambiguous", exc, cfg, lateness=lateness)
        except Exception as exc:  # an adapter bug after the request may have left: never replay blindly
            log.exception("unexpected error publishing target %s; treating it as ambiguous", claim.target.id)
            return settle(claim, "ambiguous", exc, cfg, lateness=lateness)
        return settle(claim, "accepted", published, cfg, lateness=lateness)


def settle(claim: Claim, outcome: str, detail, cfg: EngineConfig, *, lateness: float | None = None,
           journalled: bool = False) -> Result:
    """Write the outcome: journal row + target + post status, in one transaction conditional
    on still holding the lease."""
    target_id = str(claim.target.id)
    now = utcnow()
    result: Result
    with write_transaction():
        post = lock_post_of(target_id) or claim.post
        mine = ((PostTarget.id == target_id) & (PostTarget.status == "publishing")
                & (PostTarget.lease_until == claim.lease))
        if outcome == "accepted":
            published: Published = detail
            if not journalled:
                _journal(claim.attempt, "accepted", now=now)
            fields = dict(status="published", platform_post_id=published.platform_post_id,
                          platform_url=published.url, published_at=published.published_at or now,
                          lease_until=None, next_attempt_at=None, last_error=None, state=claim.state)
            if not PostTarget.update(**fields).where(mine).execute():
                # We lost the lease but the network took the post: that is the truth.
                log.warning("target %s: accepted after its lease ran out; recording it anyway", target_id)
                (PostTarget.update(**fields)
                 .where((PostTarget.id == target_id) & (PostTarget.status != "published")).execute())
            result = Result("published", target_id, lateness=lateness)
            notify.announce_targets(post, [target_id])
        elif outcome == "ambiguous":
            if not journalled:
                _journal(claim.attempt, "ambiguous", detail, now=now)
            lease = now + cfg.reconcile_after
            message = "The network didn't confirm the post; Herald is checking whether it went out."
            n = PostTarget.update(lease_until=lease, last_error=message).where(mine).execute()
            result = Result("reconcile" if n else "nothing", target_id, message=message,
                            reconcile_at=lease if n else None, lease=lease if n else None,
                            lateness=lateness)
        else:
            if not journalled:
                _journal(claim.attempt, "rejected", detail, now=now)
            result = _reschedule_or_fail(claim, outcome, detail, post, now, cfg, mine, lateness)
        refresh_post_status(post)
    return result


def _reschedule_or_fail(claim: Claim, outcome: str, error: PlatformError, post: Post,
                        now: datetime, cfg: EngineConfig, mine, lateness) -> Result:
    target_id = str(claim.target.id)
    origin = retry_origin(claim.target, post)
    base = dict(lease_until=None, state=claim.state)
    if outcome == "waiting":
        # The account needs reconnecting: wait (due as before) instead of failing.
        message = (f"Waiting for the {claim.account.platform} account to be reconnected: "
                   f"{error.message}")
        PostTarget.update(status="scheduled", next_attempt_at=claim.due, last_error=message,
                          **base).where(mine).execute()
        return Result("waiting", target_id, message=message, lateness=lateness)
    if outcome == "permanent":
        PostTarget.update(status="failed", next_attempt_at=None, last_error=error.message,
                          **base).where(mine).execute()
        notify.announce_targets(post, [target_id])
        return Result("failed", target_id, message=error.message, lateness=lateness)
    if outcome == "rate_limited":
        retry_at = max(error.retry_at, now + timedelta(seconds=1))
        retry_at += timedelta(seconds=random.random() * min(1.0, (retry_at - now).total_seconds() / 10))
        reason = f"{error.message} (until {retry_at.strftime('%H:%M:%S')} UTC)"
    else:
        failures = (PublishAttempt.select()
                    .where((PublishAttempt.target == target_id) & (PublishAttempt.error_kind == "transient")
                           & (PublishAttempt.started_at >= origin)).count())
        if failures >= cfg.max_attempts:
            message = (f"{error.message} Herald tried {failures} times and gave up; "
                       "press Retry when the network is back.")
            PostTarget.update(status="failed", next_attempt_at=None, last_error=message,
                              **base).where(mine).execute()
            notify.announce_targets(post, [target_id])
            return Result("failed", target_id, message=message, lateness=lateness)
        retry_at = now + backoff(failures, cfg)
        reason = error.message
    if retry_at - origin > cfg.missed_after:
        message = (f"{reason} The next try would be more than {_span(cfg.missed_after)} after the "
                   "scheduled time, so Herald stopped rather than publish it stale.")
        PostTarget.update(status="missed", next_attempt_at=None, last_error=message,
                          **base).where(mine).execute()
        notify.announce_targets(post, [target_id])
        return Result("missed", target_id, message=message, lateness=lateness)
    n = PostTarget.update(status="scheduled", next_attempt_at=retry_at, last_error=reason,
                          **base).where(mine).execute()
    if n:
        scheduling.targets_scheduled([target_id])
    return Result("retry", target_id, message=reason, retry_at=retry_at, lateness=lateness)


__all__ = ["EngineConfig", "Result", "Claim", "LeaseLost", "config", "configure", "backoff",
           "publish", "claim_target", "attempt", "settle", "due_at", "scheduled_due",
           "build_request", "refresh_post_status", "lock_post_of", "release_connection",
           "FINAL_TARGET_STATUSES"]
