"""`/social [new [text] | queue | drafts | cancel <id> | accounts | admin | report | help]`.

Every answer is ephemeral (only the person who typed the command sees it) and goes through
the command's response_url after ack(), so a slow query never makes Slack show a timeout.
Unknown input gets the help text; failures get one short sentence, never a trace.
"""
from __future__ import annotations

import logging
import re

from bot.approval_flow import refresh_approval_message
from bot.blocks import ids
from bot.blocks.common import section
from bot.blocks.lists import AccountRow, PostRow, accounts_message, drafts_message, help_message, \
    queue_message
from bot.context import acting_user, connected, message_for
from bot.listeners.views.compose import open_compose
from core import accounts as core_accounts
from core import networks, posts, signin
from core.permissions import require

log = logging.getLogger(__name__)


def register(app, settings) -> None:
    @app.command(ids.COMMAND)
    @connected
    def social_command(ack, body, client, context, respond):
        verb, rest = split(body.get("text") or "")
        if verb not in SUBCOMMANDS and verb not in COMPOSE_VERBS:
            # Help needs nothing from the database: answer in the ack itself (ephemeral).
            text, blocks = help_message(f"Herald doesn't know “{verb}”. Here is what it does:"
                                        if verb != "help" else "")
            ack(text=text, blocks=blocks)
            return
        ack()

        def reply(text: str, blocks: list | None = None) -> None:
            respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)

        if verb in COMPOSE_VERBS:
            open_compose(client, body, context, settings, trigger_id=body.get("trigger_id"),
                         text=rest if verb else "", channel_id=body.get("channel_id"), reply=reply)
            return
        handler = SUBCOMMANDS[verb]
        try:
            workspace, user = acting_user(body, context, client)
            text, blocks = handler(workspace, user, rest, client=client, settings=settings)
        except Exception as exc:  # noqa: BLE001 — HeraldError gives its sentence; bugs are logged
            reply(message_for(exc))
            return
        reply(text, blocks)


# --------------------------------------------------------------------------------------
# Subcommands: (workspace, user, rest of the text) -> (text, blocks)


def split(text: str) -> tuple[str, str]:
    """('new', 'the rest, newlines kept') from '  NEW the rest…'."""
    match = re.match(r"\s*(\S*)\s*(.*)", text, re.S)
    return match.group(1).lower(), match.group(2).strip()


def row_of(post) -> PostRow:
    nets = sorted({networks.adapter(t.account.platform).label for t in posts.targets_of(post)})
    return PostRow(post_id=str(post.id), short_id=posts.short_id(post), status=post.status,
                   scheduled_at=post.scheduled_at, project=post.project.name, body=post.body,
                   author_slack_id=post.author.slack_user_id, networks=nets)


def queue(workspace, user, rest, **_):
    require(user, "view")
    mine = posts.upcoming(workspace, author=user)
    others = [p for p in posts.upcoming(workspace, limit=40) if p.author_id != user.id]
    return queue_message([row_of(p) for p in mine], [row_of(p) for p in others])


def drafts(workspace, user, rest, **_):
    require(user, "view")
    return drafts_message([row_of(p) for p in posts.drafts(user)])


def cancel(workspace, user, rest, *, client, **_):
    if not rest:
        return "Which post? Use `/social cancel <id>`; `/social queue` shows the ids.", None
    post = posts.find_post(workspace, rest.split()[0])
    before = post.status
    post = posts.cancel(user, post.id)
    if before == "cancelled":
        return f"Post `{posts.short_id(post)}` was already cancelled.", None
    refresh_approval_message(client, post)   # the approval message loses its buttons
    return f"Cancelled post `{posts.short_id(post)}` (it was {before.replace('_', ' ')}).", None


def accounts(workspace, user, rest, *, settings, **_):
    rows = [AccountRow(network=row.label, handle=row.account.handle, status=row.account.status,
                       project=group.project.name if group.project else "",
                       health=row.health.summary)
            for group in core_accounts.list_accounts(user) for row in group.accounts]
    return accounts_message(rows, f"{settings.public_url}/accounts")


def admin(workspace, user, rest, *, settings, **_):
    # The link signs this person in once; it is shown only to them and never logged.
    url = signin.issue_link(user, settings)
    minutes = int(signin.LINK_LIFETIME.total_seconds() // 60)
    return (f"Your sign-in link for Herald's web pages (works once, for {minutes} minutes): {url}",
            [section(f"<{url}|Sign in to Herald> — works once, for {minutes} minutes. "
                     "Don't share it: it signs in as you.")])


def report(workspace, user, rest, *, settings, **_):
    require(user, "view_reports")
    return ("Reports aren't in Herald yet. Each post's results are in its approval thread, "
            "and the Home tab shows recent failures."), None


COMPOSE_VERBS = ("", "new", "post", "compose")
SUBCOMMANDS = {"queue": queue, "drafts": drafts, "cancel": cancel, "accounts": accounts,
               "admin": admin, "report": report, "reports": report}
