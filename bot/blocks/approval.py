"""The approval message in a project's approval channel: a preview per target with its
character count, the schedule in each reader's zone, who asked, and the decision buttons
(or, once decided, who decided and when)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.blocks import ids
from bot.blocks.common import button, context, escape, quote, section, slack_date


@dataclass(frozen=True)
class TargetPreview:
    network: str           # "X", "Mastodon", …
    handle: str
    text: str
    length: int
    limit: int
    counting: str


@dataclass(frozen=True)
class Decision:
    slack_user_id: str
    decision: str          # approved | changes_requested | rejected
    at: datetime
    comment: str = ""


@dataclass(frozen=True)
class ApprovalRequest:
    post_id: str
    short_id: str
    content_hash: str
    project: str
    author_slack_id: str
    status: str
    scheduled_at: datetime | None
    targets: list[TargetPreview]
    media: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    approvals: int = 0
    needed: int = 1


VERBS = {"approved": "approved", "changes_requested": "asked for changes", "rejected": "rejected"}


def approval_message(request: ApprovalRequest) -> tuple[str, list[dict]]:
    """(fallback text, blocks)."""
    text = f"Post for approval in {request.project} from <@{request.author_slack_id}>"
    blocks: list[dict] = [
        section(f"*{escape(request.project)}* · post `{request.short_id}` from "
                f"<@{request.author_slack_id}>\n:calendar: {slack_date(request.scheduled_at)}"),
    ]
    for target in request.targets:
        over = target.length > target.limit
        count = f"{target.length}/{target.limit}" + (" :warning: too long" if over else "")
        blocks.append(section(f"*{escape(target.network)}* @{escape(target.handle)} · {count}\n"
                              f"{quote(target.text)}"))
    if request.media:
        blocks.append(context(*[f":frame_with_picture: {escape(url)}" for url in request.media[:5]]))
    if request.tags:
        blocks.append(context(" ".join(f"`#{escape(t)}`" for t in request.tags)))
    for decision in request.decisions:
        note = f": “{escape(decision.comment)}”" if decision.comment else ""
        blocks.append(context(f"<@{decision.slack_user_id}> {VERBS[decision.decision]} "
                              f"{slack_date(decision.at, '{date_short_pretty} at {time}')}{note}"))
    if request.status == "pending_approval":
        if request.needed > 1:
            blocks.append(context(f"{request.approvals} of {request.needed} approvals"))
        value = f"{request.post_id}:{request.content_hash}"
        blocks.append({"type": "actions", "block_id": f"decide:{request.post_id}", "elements": [
            button("Approve", ids.APPROVE, value, style="primary"),
            button("Request changes", ids.REQUEST_CHANGES, value),
            button("Reject", ids.REJECT, value, style="danger"),
        ]})
    else:
        blocks.append(context(f"*Status:* {STATUS_WORDS.get(request.status, request.status)}"))
    return text, blocks


STATUS_WORDS = {
    "draft": "back with the author for changes",
    "scheduled": ":white_check_mark: approved and scheduled",
    "rejected": ":no_entry: rejected",
    "cancelled": "cancelled",
    "publishing": "publishing",
    "published": ":white_check_mark: published",
    "partially_published": ":warning: partly published",
    "failed": ":x: failed",
    "needs_review": ":eyes: needs review",
    "missed": ":hourglass: missed its time",
}


def superseded_message(request: ApprovalRequest, edited_at: datetime) -> tuple[str, list[dict]]:
    """What an old approval message becomes when its post is edited: no buttons (a click
    there would be about a version nobody will publish), and a pointer to the new request."""
    text = f"Post {request.short_id} in {request.project} was edited; the new version is below"
    blocks = [
        section(f"*{escape(request.project)}* · post `{request.short_id}` from "
                f"<@{request.author_slack_id}>"),
        context(f":pencil2: Edited {slack_date(edited_at)} — this version is out of date. "
                f"The new version is below; earlier approvals don't count for it."),
    ]
    return text, blocks
