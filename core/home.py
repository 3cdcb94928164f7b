"""What a person's App Home shows, as plain data (no Slack here): the workspace's upcoming
posts, posts waiting for their approval, their drafts, recent failures they may act on, and
the connected accounts' health. Each list comes with its total, so a surface can say
"and N more" without loading everything.

Nothing here depends on the current time except through thresholds (a token is "expiring"
within a few days, a failure is "recent" for a week), so the same database state gives the
same Home — which lets the Slack side skip publishing when nothing changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from peewee import JOIN, Case

from core import audit, networks
from core.errors import NotFound, PermissionDenied
from core.ids import parse_id
from core.permissions import ROLE_ACTIONS, can, role_of
from core.posts import CANCELLABLE, UPCOMING, derive_status, short_id, targets_of
from db import for_update, write_transaction
from db.fields import utcnow
from db.models import Approval, Membership, OAuthToken, Post, PostTarget, Project, SocialAccount, \
    User, Workspace

RECENT_FAILURES = timedelta(days=7)
EXPIRING_SOON = timedelta(days=3)
FAILED_STATUSES = ("failed", "needs_review", "missed")
DISMISSABLE = ("failed", "missed")
EXCERPT = 140

T = TypeVar("T")


@dataclass(frozen=True)
class Listing(Generic[T]):
    items: list[T] = field(default_factory=list)
    total: int = 0

    @property
    def more(self) -> int:
        return max(0, self.total - len(self.items))


@dataclass(frozen=True)
class PostLine:
    id: str
    short_id: str
    project: str
    author_slack_id: str
    status: str
    scheduled_at: datetime | None
    excerpt: str
    networks: list[str]
    content_hash: str
    can_cancel: bool = False


@dataclass(frozen=True)
class FailureLine:
    target_id: str
    post_id: str
    short_id: str
    network: str
    handle: str
    status: str              # failed | needs_review | missed
    error: str
    at: datetime
    can_retry: bool = False
    can_cancel: bool = False


@dataclass(frozen=True)
class AccountLine:
    id: str
    network: str
    handle: str
    status: str              # active | needs_reauth | disconnected | error
    detail: str
    health: str              # ok | expiring | expired | needs_reauth | disconnected | error
    expires_at: datetime | None      # the access token's expiry — never the token


@dataclass(frozen=True)
class Home:
    member: bool                                  # False: not a Herald user here yet
    role: str | None = None
    upcoming: Listing[PostLine] = field(default_factory=Listing)
    awaiting: Listing[PostLine] = field(default_factory=Listing)
    drafts: Listing[PostLine] = field(default_factory=Listing)
    failures: Listing[FailureLine] = field(default_factory=Listing)
    accounts: Listing[AccountLine] = field(default_factory=Listing)


@dataclass(frozen=True)
class Limits:
    upcoming: int = 10
    awaiting: int = 8
    drafts: int = 8
    failures: int = 5
    accounts: int = 15


def gather(workspace: Workspace, user: User | None, *, now: datetime | None = None,
           limits: Limits = Limits()) -> Home:
    """The Home of `user` (None: someone Herald doesn't know yet — they see no data)."""
    if user is None or user.workspace_id != workspace.id:
        return Home(member=False)
    now = now or utcnow()
    role = role_of(user)
    approver = can(user, "approve")

    def may_act(post) -> bool:
        return post.author_id == user.id or approver

    upcoming_q = Post.select().where((Post.workspace == workspace) & Post.status.in_(UPCOMING))
    upcoming = _posts(upcoming_q, _by_schedule, limits.upcoming,
                      lambda p: p.status in CANCELLABLE and may_act(p))
    awaiting = _posts(awaiting_query(user), _by_schedule, limits.awaiting) if approver else Listing()
    drafts_q = Post.select().where((Post.author == user) & (Post.status == "draft"))
    drafts = _posts(drafts_q, lambda q: q.order_by(Post.updated_at.desc()), limits.drafts)

    failures_q = (PostTarget.select(PostTarget, Post, SocialAccount)
                  .join(Post).switch(PostTarget).join(SocialAccount)
                  .where((Post.workspace == workspace) & Post.deleted_at.is_null()
                         & PostTarget.status.in_(FAILED_STATUSES)
                         & (PostTarget.updated_at >= now - RECENT_FAILURES)))
    if not approver:
        failures_q = failures_q.where(Post.author == user)
    failures = _listing(failures_q, failures_q.order_by(PostTarget.updated_at.desc()),
                        limits.failures, lambda t: _failure_line(t, may_act(t.post)))

    accounts_q = (SocialAccount
                  .select(SocialAccount, OAuthToken.expires_at, OAuthToken.refresh_expires_at,
                          # whether a refresh token exists, without decrypting it
                          Case(None, [(OAuthToken.refresh_token.is_null(), 0)], 1).alias("renewable"))
                  .join(OAuthToken, JOIN.LEFT_OUTER)
                  .where(SocialAccount.workspace == workspace))
    accounts = _listing(SocialAccount.select().where(SocialAccount.workspace == workspace),
                        accounts_q.order_by(SocialAccount.platform, SocialAccount.handle).objects(),
                        limits.accounts, lambda a: _account_line(a, now))
    return Home(member=True, role=role, upcoming=upcoming, awaiting=awaiting, drafts=drafts,
                failures=failures, accounts=accounts)


def approvers(workspace: Workspace, limit: int = 25) -> list[User]:
    """People who may approve in this workspace (their "waiting for your approval" lists)."""
    roles = [role for role, actions in ROLE_ACTIONS.items() if "approve" in actions]
    return list(User.select().join(Membership, on=(Membership.user == User.id))
                .where((User.workspace == workspace) & (Membership.workspace == workspace)
                       & Membership.role.in_(roles))
                .order_by(User.created_at).limit(limit))


def author_of(post: Post) -> User:
    return User.get_by_id(post.author_id)


def awaiting_query(user: User):
    """Pending posts `user` may approve and hasn't decided on yet (for this version)."""
    mine = (Approval.select(Approval.post)
            .where((Approval.approver == user) & (Approval.content_hash == Post.content_hash)))
    return Post.select().where((Post.workspace == user.workspace_id)
                               & (Post.status == "pending_approval")
                               & (Post.author != user) & ~Post.id.in_(mine))


def _by_schedule(query):
    return query.order_by(Post.scheduled_at.asc(nulls="LAST"), Post.created_at)


def _listing(count_query, rows_query, limit: int, line) -> Listing:
    rows = list(rows_query.limit(limit))
    total = len(rows) if len(rows) < limit else count_query.count()
    return Listing([line(row) for row in rows], total)


def _posts(query, order, limit: int, cancellable=lambda post: False) -> Listing[PostLine]:
    """A few queries for the whole list (not a few per post): posts with their project and
    author, then every live target of those posts at once."""
    rows = list(order(query.select(Post, Project.name, User.slack_user_id)
                      .join(Project, on=(Post.project == Project.id))
                      .switch(Post).join(User, on=(Post.author == User.id)))
                .limit(limit).objects())
    total = len(rows) if len(rows) < limit else query.count()
    labels: dict = {post.id: [] for post in rows}
    if rows:
        for target in (PostTarget.select(PostTarget.post, SocialAccount.platform)
                       .join(SocialAccount)
                       .where(PostTarget.post.in_(list(labels)) & (PostTarget.status != "cancelled"))
                       .order_by(SocialAccount.platform).objects()):
            label = networks.adapter(target.platform).label
            if label not in labels[target.post_id]:
                labels[target.post_id].append(label)
    return Listing([PostLine(id=str(post.id), short_id=short_id(post), project=post.name,
                             author_slack_id=post.slack_user_id, status=post.status,
                             scheduled_at=post.scheduled_at, excerpt=_excerpt(post.body),
                             networks=labels[post.id], content_hash=post.content_hash,
                             can_cancel=bool(cancellable(post)))
                    for post in rows], total)


def _failure_line(target: PostTarget, may_act: bool) -> FailureLine:
    account = target.account
    return FailureLine(target_id=str(target.id), post_id=str(target.post_id),
                       short_id=short_id(target.post), network=networks.adapter(account.platform).label,
                       handle=account.handle, status=target.status,
                       error=_excerpt(target.last_error or ""), at=target.updated_at,
                       can_retry=may_act and target.status == "failed",
                       can_cancel=may_act and target.status in DISMISSABLE)


def _account_line(account: SocialAccount, now: datetime) -> AccountLine:
    expires_at = getattr(account, "expires_at", None)
    refresh_expires_at = getattr(account, "refresh_expires_at", None)
    renewable = bool(getattr(account, "renewable", 0)) and networks.adapter(account.platform).capabilities.refresh
    if account.status != "active":
        health = account.status
    elif refresh_expires_at is not None and refresh_expires_at <= now:
        health = "expired"
    elif expires_at is not None and expires_at <= now and not renewable:
        health = "expired"
    elif (expires_at is not None and expires_at <= now + EXPIRING_SOON and not renewable) or \
            (refresh_expires_at is not None and refresh_expires_at <= now + EXPIRING_SOON):
        health = "expiring"
    else:
        health = "ok"
    return AccountLine(id=str(account.id), network=networks.adapter(account.platform).label,
                       handle=account.handle or account.display_name, status=account.status,
                       detail=_excerpt(account.status_detail or ""), health=health,
                       expires_at=expires_at)


def _excerpt(text: str, limit: int = EXCERPT) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --------------------------------------------------------------------------------------
# The Cancel button next to a failure


def dismiss_failure(actor: User, target_id) -> PostTarget:
    """Give up on a failed (or missed) target: it becomes `cancelled` and the post's status
    is derived again (e.g. the other networks published → `published`). Repeats are no-ops."""
    uuid_ = parse_id(target_id)
    with write_transaction():
        target = uuid_ and for_update(
            PostTarget.select().join(Post)
            .where((PostTarget.id == uuid_) & (Post.workspace == actor.workspace_id)
                   & Post.deleted_at.is_null())).first()
        if target is None:
            raise NotFound("That post doesn't exist (or was deleted).")
        post = Post.get_by_id(target.post_id)
        if post.author_id != actor.id and not can(actor, "approve"):
            raise PermissionDenied("Only the author or an approver can cancel this post.")
        if target.status not in DISMISSABLE:
            return target
        before = target.status
        target.status, target.next_attempt_at = "cancelled", None
        target.save()
        post.status = derive_status([t.status for t in targets_of(post)] or ["cancelled"])
        post.save()
        audit.record(actor, "target.cancelled", target, {"status": [before, "cancelled"],
                                                         "post": str(post.id)})
    return target


__all__ = ["Home", "Listing", "PostLine", "FailureLine", "AccountLine", "Limits", "gather",
           "approvers", "author_of", "awaiting_query", "dismiss_failure"]
