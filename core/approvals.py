"""Approve, request changes, reject.

Rules: only approvers and owners decide; never the author; a decision is about one version of
the content (its hash) — after an edit, earlier approvals don't count. Decisions are
serialised on the post row, so two approvers clicking at once can't both miss the quorum,
and a double click records one decision.
"""
from __future__ import annotations

from dataclasses import dataclass

from peewee import IntegrityError

from core import audit
from core.compose import current_approvals
from core.errors import PermissionDenied, ValidationError
from core.permissions import require
from core.posts import _locked, schedule
from db import database, write_transaction
from db.models import Approval, Post, Project, User

NEEDS_REASON = ("changes_requested", "rejected")


@dataclass
class Outcome:
    post: Post
    changed: bool            # False: a repeat or a stale click; nothing happened
    approvals: int           # approvals counting for the current version
    needed: int
    message: str             # for the person who clicked


def needed_approvals(project: Project) -> int:
    return 0 if project.approval_policy == "none" else max(1, project.approvals_required)


def decide(approver: User, post_id, decision: str, *, seen_hash: str | None = None,
           comment: str = "", ip: str | None = None) -> Outcome:
    if decision not in ("approved", "changes_requested", "rejected"):
        raise ValueError(decision)
    require(approver, "approve")
    comment = (comment or "").strip()
    if decision in NEEDS_REASON and not comment:
        raise ValidationError({"reason": "Say what should change, so the author knows."})
    with write_transaction():
        post = _locked(approver.workspace_id, post_id)
        project = Project.get_by_id(post.project_id)
        needed = needed_approvals(project)
        count = len(current_approvals(post))
        if post.author_id == approver.id:
            raise PermissionDenied("You can't approve or reject your own post; ask another approver.")
        if post.status != "pending_approval":
            return Outcome(post, False, count, needed,
                           f"This post is already {post.status.replace('_', ' ')}.")
        if seen_hash is not None and seen_hash != post.content_hash:
            return Outcome(post, False, count, needed,
                           "This post was edited after you saw it; review the new version.")
        try:
            with database.atomic():  # savepoint: a duplicate leaves the transaction usable
                Approval.create(post=post, approver=approver, decision=decision, comment=comment,
                                content_hash=post.content_hash)
        except IntegrityError:
            return Outcome(post, False, count, needed, "Your decision was already recorded.")
        audit.record(approver, f"post.{decision}", post, {"comment": comment} if comment else {},
                     ip=ip)
        if decision == "approved":
            count += 1
            if count >= needed:
                schedule(post, actor=approver)
                message = "Approved — the post is scheduled."
            else:
                message = f"Approved ({count} of {needed}); waiting for {needed - count} more."
        elif decision == "changes_requested":
            post.status = "draft"
            post.save()
            message = "Sent back to the author with your note."
        else:
            post.status = "rejected"
            post.save()
            message = "Rejected; the author has been told why."
    return Outcome(post, True, count, needed, message)
