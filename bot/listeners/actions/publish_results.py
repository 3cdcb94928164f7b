"""Buttons on publish results in the approval thread: Retry (a failed target), It was posted
and Publish again (a target Herald couldn't confirm), Reconnect (a link: only acked).

Each calls one core function (core.posts.retry_target, core.reconcile.mark_posted /
publish_again — all audited and permission-checked there), then replaces the message's
buttons with a line saying who did what, so nobody presses them twice. Refusals are told to
the clicker only.
"""
from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot import home
from bot.blocks import ids
from bot.blocks.results import resolved
from bot.context import acting_user, connected, message_for
from core import posts, reconcile

log = logging.getLogger(__name__)


def register(app, settings) -> None:
    app.action(ids.RETRY_TARGET)(retry)
    app.action(ids.MARK_POSTED)(mark_posted)
    app.action(ids.PUBLISH_AGAIN)(publish_again)
    app.action(ids.RECONNECT_ACCOUNT)(lambda ack: ack())


@connected
def retry(ack, body, action, client, context, respond):
    ack()
    _act(body, action, client, context, respond,
         lambda user, value: posts.retry_target(user, value),
         lambda target, who: (f":repeat: {who} pressed Retry — publishing again now."
                              if target.status == "scheduled" else None),
         "That one isn't failed any more; nothing to retry.")


@connected
def mark_posted(ack, body, action, client, context, respond):
    ack()
    _act(body, action, client, context, respond,
         lambda user, value: reconcile.mark_posted(user, value),
         lambda target, who: f":white_check_mark: {who} checked: it was posted.",
         None)


@connected
def publish_again(ack, body, action, client, context, respond):
    ack()
    _act(body, action, client, context, respond,
         lambda user, value: reconcile.publish_again(user, value),
         lambda target, who: (f":repeat: {who} checked it wasn't posted and pressed Publish again "
                              "(same idempotency key)."),
         None)


def _act(body, action, client, context, respond, do, line, unchanged: str | None) -> None:
    workspace = user = None
    try:
        workspace, user = acting_user(body, context, client)
        target = do(user, action.get("value"))
    except Exception as exc:       # refused (HeraldError) or a bug: tell the clicker only
        _tell(respond, message_for(exc))
        return
    text = line(target, f"<@{user.slack_user_id}>")
    if text is None:
        _tell(respond, unchanged or "Nothing to do.")
        return
    _resolve_message(body, client, text)
    try:
        from db.models import Post
        home.refresh_after_change(client, workspace, Post.get_by_id(target.post_id), actor=user)
    except Exception:
        log.exception("App Home refresh after a publish-result button failed")


def _resolve_message(body: dict, client, line: str) -> None:
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    ts = message.get("ts") or (body.get("container") or {}).get("message_ts")
    if not (channel and ts):
        return
    try:
        client.chat_update(channel=channel, ts=ts, text=message.get("text") or line,
                           blocks=resolved(message.get("blocks") or [], line))
    except SlackApiError as exc:
        log.warning("publish result message not updated: %s", exc.response.get("error"))


def _tell(respond, text: str) -> None:
    try:
        respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception:
        log.warning("could not answer the clicker through the response_url")
