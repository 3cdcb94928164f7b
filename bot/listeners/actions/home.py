"""Buttons only App Home has: Retry and Cancel next to a failure, Cancel next to an upcoming
post, New post and Edit (the compose modal, opened by bot.listeners.views.compose), and the
Reconnect link (a link button still sends an action, which must be acked).
After each, the clicker's Home is re-published with a line saying what happened (Home
clicks have no response_url), and the other Homes the change touched are refreshed."""
from __future__ import annotations

import logging

from bot import approval_flow, home
from bot.blocks import ids
from bot.context import acting_user, connected, message_for, team_of
from core import home as core_home
from core import posts
from db.models import Post

log = logging.getLogger(__name__)


def register(app, settings) -> None:
    app.action(ids.HOME_RETRY_TARGET)(retry_target)
    app.action(ids.HOME_CANCEL_TARGET)(cancel_target)
    app.action(ids.HOME_CANCEL_POST)(cancel_post)
    app.action(ids.HOME_RECONNECT_ACCOUNT)(lambda ack: ack())

    @connected
    def new_post(ack, body, client, context):
        ack()
        _compose(body, client, context, settings, None)

    @connected
    def edit_draft(ack, body, action, client, context):
        ack()
        _compose(body, client, context, settings, action.get("value"))

    app.action(ids.HOME_NEW_POST)(new_post)
    app.action(ids.HOME_EDIT_DRAFT)(edit_draft)


def _compose(body, client, context, settings, post_id) -> None:
    from bot.listeners.views.compose import open_compose
    team_id, _, _ = team_of(body, context)
    slack_user_id = (body.get("user") or {}).get("id")

    def reply(text):          # Home clicks have no response_url: say it on the Home
        home.publish(client, team_id, slack_user_id, notice=text)

    open_compose(client, body, context, settings, trigger_id=body["trigger_id"],
                 post_id=post_id, reply=reply)


@connected
def retry_target(ack, body, action, client, context):
    ack()
    _act(body, action, client, context, lambda user, value: posts.retry_target(user, value),
         lambda target: "Retrying now." if target.status == "scheduled"
         else "That one isn't failed any more; nothing to retry.")


@connected
def cancel_target(ack, body, action, client, context):
    ack()
    _act(body, action, client, context, lambda user, value: core_home.dismiss_failure(user, value),
         lambda target: "Cancelled; Herald won't try that network again for this post."
         if target.status == "cancelled" else "That one isn't failed any more; nothing to cancel.")


@connected
def cancel_post(ack, body, action, client, context):
    ack()

    def cancel(user, value):
        post = posts.cancel(user, value)
        approval_flow.refresh_approval_message(client, post)
        if post.author_id != user.id:
            approval_flow.tell_author(client, post, f":no_entry_sign: <@{user.slack_user_id}> "
                                                    f"cancelled your post `{posts.short_id(post)}`.")
        return post

    _act(body, action, client, context, cancel, lambda post: "Cancelled; it won't be published.")


def _act(body, action, client, context, do, done) -> None:
    workspace = user = post = None
    try:
        workspace, user = acting_user(body, context, client)
        changed = do(user, action.get("value"))
        text = done(changed)
        post = changed if isinstance(changed, Post) else posts.get_post(workspace, changed.post_id)
    except Exception as exc:
        text = message_for(exc)
    if workspace is None:
        return
    home.refresh_after_change(client, workspace, post, actor=user, notice=text)
