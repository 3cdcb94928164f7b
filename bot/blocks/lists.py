"""Ephemeral answers to `/social queue`, `/social drafts`, `/social accounts` and
`/social help`: pure builders returning (fallback text, blocks)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.blocks import ids
from bot.blocks.common import button, context, escape, section, slack_date

MAX_ROWS = 15           # per list; a message holds ≤ 50 blocks


@dataclass(frozen=True)
class PostRow:
    post_id: str
    short_id: str
    status: str
    scheduled_at: datetime | None
    project: str
    body: str
    author_slack_id: str = ""
    networks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AccountRow:
    network: str
    handle: str
    status: str
    project: str = ""
    health: str = ""                 # "Renews automatically", "Expires in 3 days", …


STATUS = {"draft": "draft", "pending_approval": ":hourglass: waiting for approval",
          "scheduled": ":calendar: scheduled", "publishing": ":rocket: publishing",
          "rejected": ":no_entry: rejected"}
ACCOUNT_STATUS = {"active": ":large_green_circle: active",
                  "needs_reauth": ":warning: needs reconnecting",
                  "disconnected": ":white_circle: disconnected", "error": ":red_circle: error"}

HELP = [
    ("/social", "open the compose window"),
    ("/social new [text]", "compose, starting with that text"),
    ("/social queue", "upcoming posts: yours and everyone's"),
    ("/social drafts", "your drafts, with Edit buttons"),
    ("/social cancel <id>", "cancel a post (ids are in the queue)"),
    ("/social accounts", "connected social accounts and their health"),
    ("/social admin", "a one-time sign-in link to Herald's web pages"),
    ("/social report", "where to find how posts did"),
    ("/social help", "this list"),
]


def excerpt(text: str, limit: int = 120) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _post_line(row: PostRow, *, show_author: bool) -> str:
    who = f" · <@{row.author_slack_id}>" if show_author and row.author_slack_id else ""
    nets = f" · {escape(', '.join(row.networks))}" if row.networks else ""
    body = escape(excerpt(row.body)) or "_(no text)_"
    return (f"`{row.short_id}` {STATUS.get(row.status, row.status.replace('_', ' '))} · "
            f"{slack_date(row.scheduled_at)} · *{escape(row.project)}*{nets}{who}\n{body}")


def queue_message(mine: list[PostRow], others: list[PostRow]) -> tuple[str, list[dict]]:
    if not mine and not others:
        text = "Nothing is waiting to go out. Start a post with `/social`."
        return text, [section(text)]
    blocks: list[dict] = []
    if mine:
        blocks.append(section("*Your upcoming posts*"))
        blocks += [section(_post_line(r, show_author=False)) for r in mine[:MAX_ROWS]]
    if others:
        blocks.append(section("*Everyone else's*"))
        blocks += [section(_post_line(r, show_author=True)) for r in others[:MAX_ROWS]]
    blocks.append(context("Cancel one with `/social cancel <id>`. Times show in your own time zone."))
    return f"Upcoming posts: {len(mine)} of yours, {len(others)} from others", blocks


def drafts_message(rows: list[PostRow]) -> tuple[str, list[dict]]:
    if not rows:
        text = "You have no drafts. Start one with `/social`."
        return text, [section(text)]
    blocks = [section("*Your drafts*")]
    for row in rows[:MAX_ROWS]:
        when = slack_date(row.scheduled_at) if row.scheduled_at else "no time set"
        blocks.append(section(f"`{row.short_id}` · *{escape(row.project)}* · {when}\n"
                              f"{escape(excerpt(row.body)) or '_(no text)_'}",
                              accessory=button("Edit", ids.DRAFT_EDIT, row.post_id)))
    return f"You have {len(rows)} draft{'s' if len(rows) != 1 else ''}", blocks


def accounts_message(rows: list[AccountRow], accounts_url: str) -> tuple[str, list[dict]]:
    link = f"<{accounts_url}|{escape(accounts_url)}>"
    if not rows:
        text = f"No social accounts are connected yet. Connect one at {link}."
        return "No social accounts are connected yet.", [section(text)]
    lines = []
    for row in rows[:40]:
        project = f" · {escape(row.project)}" if row.project else ""
        health = f" · {escape(row.health)}" if row.health and row.status == "active" else ""
        lines.append(f"*{escape(row.network)}* @{escape(row.handle)} · "
                     f"{ACCOUNT_STATUS.get(row.status, escape(row.status))}{health}{project}")
    blocks = [section("*Connected accounts*\n" + "\n".join(lines))]
    if len(rows) > 40:
        blocks.append(context(f"…and {len(rows) - 40} more."))
    blocks.append(context(f"Connect, reconnect or disconnect accounts at {link}."))
    return f"{len(rows)} connected account{'s' if len(rows) != 1 else ''}", blocks


def help_message(note: str = "") -> tuple[str, list[dict]]:
    lines = "\n".join(f"`{escape(cmd)}` — {what}" for cmd, what in HELP)
    blocks = [section(escape(note))] if note else []
    blocks.append(section(f"*Herald* drafts, approves and schedules social posts.\n{lines}"))
    blocks.append(context("Shortcuts: *New social post* (anywhere), "
                          "*Draft a post from this message* (on a message's ⋮ menu)."))
    text = "Herald commands: /social, queue, drafts, cancel, accounts, admin, report, help"
    return (f"{note} {text}" if note else text), blocks
