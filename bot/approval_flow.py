"""Posting and updating approval messages, and telling authors what happened.

Called by listeners after core has committed a change; reads the post from the database
and renders it with bot.blocks.approval. Slack failures are logged and never undo the
decision (it is already committed).

For the compose side: after saving an edit of a post that was waiting for approval or
scheduled, call `after_edit(client, post)` — the old approval message is marked out of date
and a new request is posted for the new version.
"""
from __future__ import annotations

import logging
import re

from slack_sdk.errors import SlackApiError

from bot import home
from bot.blocks.approval import ApprovalRequest, Decision, TargetPreview, approval_message, \
    superseded_message
from bot.blocks.common import escape, quote, slack_date
from core import networks, posts
from core.approvals import needed_approvals
from core.compose import current_approvals
from core.errors import HeraldError
from core.ids import parse_id
from core.permissions import require
from db.fields import utcnow
from db.models import Approval, Media, Post, Project, User, Workspace

FORGED = "That button isn't one Herald made (or it's out of date); nothing was changed."
_HASH = re.compile(r"^[0-9a-f]{1,64}$")

log = logging.getLogger(__name__)


def build_request(post: Post) -> ApprovalRequest:
    project = Project.get_by_id(post.project_id)
    author = User.get_by_id(post.author_id)
    targets = []
    for target in posts.targets_of(post):
        adapter = networks.adapter(target.account.platform)
        text = target.text_override or post.body
        targets.append(TargetPreview(adapter.label, target.account.handle, text,
                                     adapter.count(text), adapter.capabilities.text_limit,
                                     adapter.capabilities.counting))
    # Only decisions about this version: after an edit, earlier ones don't count and the new
    # request shouldn't look approved.
    decisions = [Decision(User.get_by_id(a.approver_id).slack_user_id, a.decision, a.created_at,
                          a.comment)
                 for a in Approval.select().where((Approval.post == post)
                                                  & (Approval.content_hash == post.content_hash))
                 .order_by(Approval.created_at)]
    return ApprovalRequest(
        post_id=str(post.id), short_id=posts.short_id(post), content_hash=post.content_hash,
        project=project.name, author_slack_id=author.slack_user_id, status=post.status,
        scheduled_at=post.scheduled_at, targets=targets,
        media=[m.url for m in Media.select().where(Media.post == post).order_by(Media.position)],
        tags=list(post.tags or []), decisions=decisions,
        approvals=len(current_approvals(post)), needed=needed_approvals(project))


def request_approval(client, post: Post) -> str | None:
    """Post (or, after an edit, re-post) the approval message. Returns the message ts."""
    project = Project.get_by_id(post.project_id)
    channel = post.approval_channel_id or project.approval_channel_id
    if not channel:
        log.warning("project %s has no approval channel; post %s waits in App Home", project.id, post.id)
        return None
    text, blocks = approval_message(build_request(post))
    try:
        answer = client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    except SlackApiError as exc:
        log.warning("approval message for post %s not posted: %s", post.id, exc.response.get("error"))
        return None
    (Post.update(approval_channel_id=channel, approval_message_ts=answer["ts"])
     .where(Post.id == post.id).execute())
    return answer["ts"]


def refresh_approval_message(client, post: Post) -> None:
    """chat.update the approval message with the decisions so far (buttons go once decided)."""
    if not (post.approval_channel_id and post.approval_message_ts):
        return
    text, blocks = approval_message(build_request(post))
    try:
        client.chat_update(channel=post.approval_channel_id, ts=post.approval_message_ts,
                           text=text, blocks=blocks)
    except SlackApiError as exc:
        log.warning("approval message for post %s not updated: %s", post.id, exc.response.get("error"))


def tell_author(client, post: Post, text: str) -> None:
    """A DM to the post's author."""
    author = User.get_by_id(post.author_id)
    try:
        channel = client.conversations_open(users=author.slack_user_id)["channel"]["id"]
        client.chat_postMessage(channel=channel, text=text)
    except SlackApiError as exc:
        log.warning("could not DM the author of post %s: %s", post.id, exc.response.get("error"))


# --------------------------------------------------------------------------------------
# Buttons and decisions


def parse_value(value) -> tuple[str, str] | None:
    """A decision button's value, "<post id>:<content hash>", or None when it isn't one."""
    post_id, _, seen_hash = str(value or "").partition(":")
    if parse_id(post_id) is None or not _HASH.match(seen_hash):
        return None
    return post_id, seen_hash


def refusal(user: User, post_id, seen_hash: str) -> str | None:
    """Why `user` can't decide on this post now (None: they can). The same rules
    core.approvals.decide enforces — checked before the reason modal is filled in, so nobody
    writes a reason only to be refused; decide() still checks everything again."""
    try:
        require(user, "approve")
        post = posts.get_post(user.workspace_id, post_id)
    except HeraldError as exc:
        return exc.message
    if post.author_id == user.id:
        return "You can't approve or reject your own post; ask another approver."
    if post.status != "pending_approval":
        return f"This post is already {post.status.replace('_', ' ')}."
    if seen_hash != post.content_hash:
        return "This post was edited after you saw it; review the new version."
    return None


def after_decision(client, outcome, actor: User, decision: str, comment: str = "") -> None:
    """Once core has recorded a decision: update the approval message (who, when; no buttons
    once decided) and tell the author when the post moved on. A repeated or stale click
    (outcome.changed False) changes nothing, so it updates nothing."""
    if not outcome.changed:
        return
    post = Post.get_by_id(outcome.post.id)
    refresh_approval_message(client, post)
    text = author_news(post, actor, decision, outcome.post.status, comment)
    if text:
        tell_author(client, post, text)


def author_news(post: Post, actor: User, decision: str, status: str, comment: str = "") -> str | None:
    project = Project.with_deleted().where(Project.id == post.project_id).first()
    where = f"`{posts.short_id(post)}` in *{escape(project.name if project else '')}*"
    if decision == "approved" and status == "scheduled":
        return (f":white_check_mark: Your post {where} was approved by <@{actor.slack_user_id}> "
                f"and is scheduled for {slack_date(post.scheduled_at)}.")
    if decision == "changes_requested":
        return (f":pencil2: <@{actor.slack_user_id}> asked for changes to your post {where}:\n"
                f"{quote(comment)}\nIt's back in your drafts: edit it with `/social drafts` "
                f"and submit it again.")
    if decision == "rejected":
        return (f":no_entry: <@{actor.slack_user_id}> rejected your post {where}:\n"
                f"{quote(comment)}")
    return None


def after_edit(client, post: Post) -> str | None:
    """Call after saving an edit (core.compose.save_draft with a post id). When the edit put
    the post back to waiting for approval: the old approval message says it was edited (and
    loses its buttons), a new request is posted for the new version, and the approvers' App
    Homes show it again. Returns the new message's ts (None if none was posted). Safe to call
    for any edit: a draft is left alone (its old message already says it went back to the
    author). Don't also call request_approval for the same edit."""
    post = Post.get_by_id(post.id)
    if post.status != "pending_approval":
        return None
    if post.approval_channel_id and post.approval_message_ts:
        text, blocks = superseded_message(build_request(post), utcnow())
        try:
            client.chat_update(channel=post.approval_channel_id, ts=post.approval_message_ts,
                               text=text, blocks=blocks)
        except SlackApiError as exc:
            log.warning("old approval message for post %s not updated: %s", post.id,
                        exc.response.get("error"))
    ts = request_approval(client, post)
    home.refresh_after_change(client, Workspace.get_by_id(post.workspace_id), post)
    return ts
