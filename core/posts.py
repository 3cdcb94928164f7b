"""Posts after drafting: lookups (always inside one workspace), submitting, cancelling,
retrying, and the post status derived from its targets."""
from __future__ import annotations

from datetime import datetime

from core import audit, scheduling
from core.errors import NotFound, PermissionDenied, ValidationError
from core.ids import parse_id
from core.permissions import can, require
from db import for_update, write_transaction
from db.fields import utcnow
from db.models import Post, PostTarget, Project, SocialAccount, User, Workspace

UPCOMING = ("pending_approval", "scheduled", "publishing")
CANCELLABLE = ("draft", "pending_approval", "scheduled", "rejected")


def short_id(post: Post) -> str:
    """What people type in `/social cancel <id>`: the first 8 hex digits."""
    return post.id.hex[:8]


def get_post(workspace: Workspace | object, post_id) -> Post:
    workspace_id = getattr(workspace, "id", workspace)
    uuid_ = parse_id(post_id)
    post = uuid_ and Post.select().where((Post.workspace == workspace_id) & (Post.id == uuid_)).first()
    if post is None:
        raise NotFound("That post doesn't exist (or was deleted).")
    return post


def find_post(workspace: Workspace, reference: str) -> Post:
    """By full id or by the short id shown in lists."""
    reference = (reference or "").strip().lower()
    if parse_id(reference):
        return get_post(workspace, reference)
    if len(reference) < 6 or any(c not in "0123456789abcdef" for c in reference):
        raise NotFound(f"“{reference}” isn't a post id; `/social queue` lists them.")
    matches = list(Post.select().where((Post.workspace == workspace)
                                       & Post.id.cast("text").startswith(reference)).limit(2))
    if len(matches) != 1:
        raise NotFound(f"No single post matches “{reference}”; `/social queue` lists them.")
    return matches[0]


def targets_of(post: Post) -> list[PostTarget]:
    return list(PostTarget.select(PostTarget, SocialAccount).join(SocialAccount)
                .where((PostTarget.post == post) & (PostTarget.status != "cancelled"))
                .order_by(SocialAccount.platform, SocialAccount.handle))


# --------------------------------------------------------------------------------------
# Lists for /social queue, /social drafts and App Home


def upcoming(workspace, author: User | None = None, limit: int = 20) -> list[Post]:
    query = Post.select().where((Post.workspace == workspace) & Post.status.in_(UPCOMING))
    if author is not None:
        query = query.where(Post.author == author)
    return list(query.order_by(Post.scheduled_at.asc(nulls="LAST"), Post.created_at).limit(limit))


def drafts(author: User, limit: int = 20) -> list[Post]:
    return list(Post.select().where((Post.author == author) & (Post.status == "draft"))
                .order_by(Post.updated_at.desc()).limit(limit))


def awaiting_approval(user: User, limit: int = 20) -> list[Post]:
    """Pending posts this person may approve and hasn't yet (for this version)."""
    if not can(user, "approve"):
        return []
    from db.models import Approval
    mine = (Approval.select(Approval.post)
            .where((Approval.approver == user) & (Approval.content_hash == Post.content_hash)))
    return list(Post.select()
                .where((Post.workspace == user.workspace_id) & (Post.status == "pending_approval")
                       & (Post.author != user) & ~Post.id.in_(mine))
                .order_by(Post.scheduled_at.asc(nulls="LAST")).limit(limit))


def failures(workspace, since: datetime, limit: int = 10) -> list[PostTarget]:
    return list(PostTarget.select(PostTarget, Post, SocialAccount)
                .join(Post).switch(PostTarget).join(SocialAccount)
                .where((Post.workspace == workspace) & Post.deleted_at.is_null()
                       & PostTarget.status.in_(("failed", "needs_review", "missed"))
                       & (PostTarget.updated_at >= since))
                .order_by(PostTarget.updated_at.desc()).limit(limit))


# --------------------------------------------------------------------------------------
# Moves


def submit(author: User, post_id, *, now: datetime | None = None, ip: str | None = None) -> Post:
    """Draft → pending approval; with the project's policy `none`, straight to scheduled."""
    require(author, "compose")
    now = now or utcnow()
    with write_transaction():
        post = _locked(author.workspace_id, post_id)
        if post.author_id != author.id and not can(author, "approve"):
            raise PermissionDenied("Only the author or an approver can submit this post.")
        if post.status != "draft":
            return post  # a repeated click: already submitted
        problems = {}
        if post.scheduled_at is None:
            problems["schedule"] = "Pick when to publish before submitting."
        elif post.scheduled_at <= now:
            problems["schedule"] = "That time has already passed; pick a time in the future."
        if not targets_of(post):
            problems["accounts"] = "Choose at least one account to post to."
        if problems:
            raise ValidationError(problems)
        project = Project.get_by_id(post.project_id)
        post.status = "pending_approval"
        post.save()
        audit.record(author, "post.submitted", post, {"policy": project.approval_policy}, ip=ip)
        if project.approval_policy == "none":
            schedule(post, actor=author)
    return post


def schedule(post: Post, actor) -> None:
    """Mark a post and its targets scheduled and ring the engine after commit. Call inside
    a write transaction holding the post."""
    post.status = "scheduled"
    post.save()
    targets = [t.id for t in targets_of(post)]
    (PostTarget.update(status="scheduled", next_attempt_at=post.scheduled_at, lease_until=None,
                       last_error=None)
     .where(PostTarget.id.in_(targets)).execute())
    audit.record(actor, "post.scheduled", post, {"scheduled_at": post.scheduled_at,
                                                  "targets": len(targets)})
    scheduling.targets_scheduled(targets)


def cancel(actor: User, post_id, *, ip: str | None = None) -> Post:
    with write_transaction():
        post = _locked(actor.workspace_id, post_id)
        if post.author_id != actor.id and not can(actor, "approve"):
            raise PermissionDenied("Only the author or an approver can cancel this post.")
        if post.status == "cancelled":
            return post
        if post.status not in CANCELLABLE:
            raise ValidationError(f"This post is {post.status.replace('_', ' ')}; it can't be cancelled now.")
        before = post.status
        post.status = "cancelled"
        post.save()
        # A publish task still queued for these targets will find nothing to claim.
        (PostTarget.update(status="cancelled", next_attempt_at=None)
         .where((PostTarget.post == post) & PostTarget.status.in_(("pending", "scheduled")))
         .execute())
        audit.record(actor, "post.cancelled", post, {"status": [before, "cancelled"]}, ip=ip)
    return post


def retry_target(actor: User, target_id, *, now: datetime | None = None) -> PostTarget:
    """A failed target goes out again now (the Retry button)."""
    now = now or utcnow()
    uuid_ = parse_id(target_id)
    with write_transaction():
        target = uuid_ and for_update(
            PostTarget.select().join(Post)
            .where((PostTarget.id == uuid_) & (Post.workspace == actor.workspace_id))).first()
        if target is None:
            raise NotFound("That post doesn't exist (or was deleted).")
        post = Post.get_by_id(target.post_id)
        if post.author_id != actor.id and not can(actor, "approve"):
            raise PermissionDenied("Only the author or an approver can retry this post.")
        if target.status != "failed":
            return target
        target.status, target.next_attempt_at, target.last_error = "scheduled", now, None
        target.save()
        post.status = derive_status([t.status for t in targets_of(post)])
        post.save()
        audit.record(actor, "target.retried", target, {"post": str(post.id)})
        scheduling.targets_scheduled([target.id])
    return target


def _locked(workspace_id, post_id) -> Post:
    uuid_ = parse_id(post_id)
    post = uuid_ and for_update(Post.select().where((Post.workspace == workspace_id)
                                                    & (Post.id == uuid_))).first()
    if post is None:
        raise NotFound("That post doesn't exist (or was deleted).")
    return post


def derive_status(target_statuses: list[str]) -> str:
    """A post's status once it is in the engine's hands, from its targets'."""
    live = [s for s in target_statuses if s != "cancelled"] or ["cancelled"]
    states = set(live)
    if states == {"cancelled"}:
        return "cancelled"
    if "publishing" in states or ("scheduled" in states and "published" in states):
        return "publishing"
    if "scheduled" in states or "pending" in states:
        return "scheduled"
    if "needs_review" in states:
        return "needs_review"
    if states == {"published"}:
        return "published"
    if "published" in states:
        return "partially_published"
    if states == {"missed"}:
        return "missed"
    return "failed"
