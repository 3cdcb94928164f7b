"""Telling Slack: publish results in the approval thread, reconnect requests in the project
channel. The what comes from core.notify and bot.blocks.results; this is only the call.

Slack 429s are honoured without losing the message: the task raises RetryTask with Slack's
Retry-After (no worker thread sleeps meanwhile). Other failures retry a few times; what is
still unsent after that (or lost with a killed worker) is found by the sweep, because only a
message Slack accepted gets its `*.notified` audit entry.
"""
from __future__ import annotations

import logging

from huey.exceptions import RetryTask
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from core import networks, notify
from db.models import Post, SlackBot, Workspace
from tasks.queue import huey, settings, with_database

log = logging.getLogger(__name__)

# Slack errors that another try won't fix: record them so the sweep stops trying.
PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "account_inactive",
             "token_revoked", "no_permission", "missing_scope", "msg_too_long", "invalid_blocks",
             "restricted_action", "team_access_not_granted"}


def slack_client(workspace_id):
    """A WebClient with the workspace's bot token (one workspace: SLACK_BOT_TOKEN; installable:
    the workspace's SlackBot row), or None while Slack isn't configured."""
    from bot.app import web_client
    conf = settings()
    if conf.slack_mode == "single":
        token = conf.slack_bot_token
    elif conf.slack_mode == "oauth":
        workspace = Workspace.with_deleted().where(Workspace.id == workspace_id).first()
        bot = workspace and (SlackBot.select().where(SlackBot.team_id == workspace.team_id)
                             .order_by(SlackBot.installed_at.desc()).first())
        token = bot.bot_token.reveal() if bot and bot.bot_token else None
    else:
        return None
    if not token:
        return None
    client = web_client(conf, token)
    # The worker waits for Slack with RetryTask(delay=Retry-After), never by sleeping.
    client.retry_handlers = [h for h in client.retry_handlers
                             if not isinstance(h, RateLimitErrorRetryHandler)]
    return client


def _retry_after(exc: SlackApiError) -> float | None:
    response = exc.response
    if response.status_code != 429 and response.get("error") != "ratelimited":
        return None
    for key, value in (response.headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return max(1.0, float(value if not isinstance(value, list) else value[0]))
            except (TypeError, ValueError):
                break
    return 30.0


def _post(client, note, text: str, blocks: list) -> str | None:
    """chat.postMessage; returns the ts, or None when Slack refused for good (recorded)."""
    try:
        answer = client.chat_postMessage(channel=note.channel, thread_ts=getattr(note, "thread_ts", None),
                                         text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
    except SlackApiError as exc:
        wait = _retry_after(exc)
        if wait is not None:
            log.info("Slack rate-limited a notification; trying again in %.0f s", wait)
            raise RetryTask(delay=wait)
        error = exc.response.get("error")
        if error in PERMANENT:
            log.warning("Slack refused a notification in %s for good: %s", note.channel, error)
            notify.mark_notified(note, channel=note.channel, ts=None, error=error)
            return None
        raise
    return answer.get("ts")


@huey.task(retries=5, retry_delay=30)
@with_database
def notify_target(target_id: str) -> None:
    note = notify.target_note(target_id)
    if note is None:
        return
    client = slack_client(note.workspace_id)
    if client is None:
        return
    from bot.blocks.results import target_result
    text, blocks = target_result(note, networks.adapter(note.platform).label)
    ts = _post(client, note, text, blocks)
    if ts is None:
        return
    notify.mark_notified(note, channel=note.channel, ts=ts)
    _refresh_surfaces(client, note)


@huey.task(retries=5, retry_delay=30)
@with_database
def notify_account(account_id: str) -> None:
    note = notify.account_note(account_id, settings().public_url)
    if note is None:
        return
    client = slack_client(note.workspace_id)
    if client is None:
        return
    from bot.blocks.results import account_needs_reauth
    text, blocks = account_needs_reauth(note, networks.adapter(note.platform).label)
    ts = _post(client, note, text, blocks)
    if ts is not None:
        notify.mark_notified(note, channel=note.channel, ts=ts)


def _refresh_surfaces(client, note) -> None:
    """Once the post is settled: the approval message shows its final status, and the App
    Homes it appears on are brought up to date. Never raises (the result is already out)."""
    try:
        post = Post.with_deleted().where(Post.id == note.post_id).first()
        if post is None or post.status in ("publishing", "scheduled"):
            return
        from bot import approval_flow, home
        approval_flow.refresh_approval_message(client, post)
        home.configure(settings().public_url)
        workspace = Workspace.with_deleted().where(Workspace.id == post.workspace_id).first()
        home.refresh_after_change(client, workspace, post)
    except Exception:
        log.exception("refreshing the approval message / App Home after post %s failed", note.post_id)


def announce(kind: str, ids: list) -> None:
    """The notifier core.notify calls after commit."""
    task = notify_target if kind == "target" else notify_account
    for entity_id in ids:
        task(str(entity_id))
