"""Approve / Request changes / Reject — on the approval message and on App Home (the same
action ids, so the same listeners).

Approve decides at once. Request changes and Reject open the reason modal first (views.open
right after ack: the trigger_id lives ~3 s), then check whether this person may decide at
all and, if not, turn the modal into a short notice. The decision itself is always
core.approvals.decide; Slack only shows what it says.

The clicker hears back ephemerally through the click's response_url. Clicks on the Home tab
have no response_url, so there the answer appears on top of their re-published Home.
"""
from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot import approval_flow, home
from bot.blocks import ids
from bot.blocks.reason import WORDING, ReasonContext, notice_view, reason_view
from bot.context import acting_user, connected, message_for, team_of
from core import approvals

log = logging.getLogger(__name__)

TRIGGER_EXPIRED = "Slack took too long to open the form; click the button again."


def register(app, settings) -> None:
    app.action(ids.APPROVE)(approve)
    app.action(ids.REQUEST_CHANGES)(ask_reason)
    app.action(ids.REJECT)(ask_reason)


@connected
def approve(ack, body, action, client, context, respond):
    ack()
    parsed = approval_flow.parse_value(action.get("value"))
    if parsed is None:
        answer(body, client, respond, approval_flow.FORGED)
        return
    workspace = user = None
    try:
        workspace, user = acting_user(body, context, client)
        outcome = approvals.decide(user, parsed[0], "approved", seen_hash=parsed[1])
    except Exception as exc:                     # refused (HeraldError) or a bug: say so briefly
        answer(body, client, respond, message_for(exc), workspace=workspace, user=user)
        return
    answer(body, client, respond, outcome.message, workspace=workspace, user=user,
           post=outcome.post if outcome.changed else None)
    approval_flow.after_decision(client, outcome, user, "approved")
    if outcome.changed:
        home.refresh_after_change(client, workspace, outcome.post, actor=user,
                                  notice=outcome.message if on_home(body) else None)


@connected
def ask_reason(ack, body, action, client, context, respond):
    ack()
    decision = "changes_requested" if action.get("action_id") == ids.REQUEST_CHANGES else "rejected"
    parsed = approval_flow.parse_value(action.get("value"))
    if parsed is None:
        answer(body, client, respond, approval_flow.FORGED)
        return
    where = body.get("container") or {}
    reason = ReasonContext(post_id=parsed[0], content_hash=parsed[1], decision=decision,
                           channel_id=where.get("channel_id") or (body.get("channel") or {}).get("id") or "",
                           message_ts=where.get("message_ts") or "",
                           response_url=body.get("response_url") or "",
                           origin="home" if on_home(body) else "message")
    # Open first, check second: the trigger_id expires while we'd be reading the database.
    try:
        opened = client.views_open(trigger_id=body["trigger_id"], view=reason_view(reason))["view"]
    except SlackApiError as exc:
        log.warning("reason modal not opened: %s", exc.response.get("error"))
        answer(body, client, respond, TRIGGER_EXPIRED)
        return
    try:
        _, user = acting_user(body, context, client)
        problem = approval_flow.refusal(user, parsed[0], parsed[1])
    except Exception as exc:
        problem = message_for(exc)
    if problem:
        try:
            client.views_update(view_id=opened["id"], hash=opened.get("hash"),
                                view=notice_view(WORDING[decision]["title"], problem))
        except SlackApiError as exc:   # e.g. they already typed and submitted: decide() refuses then
            log.info("reason modal not replaced by the refusal: %s", exc.response.get("error"))


def on_home(body: dict) -> bool:
    return (body.get("container") or {}).get("type") == "view" and \
        (body.get("view") or {}).get("type") == "home"


def answer(body: dict, client, respond, text: str, *, workspace=None, user=None, post=None) -> None:
    """Tell the clicker, only them: ephemerally where they clicked, or — for a click on their
    Home, which has no response_url — as a notice on top of their re-published Home (done by
    the caller's Home refresh when the post changed)."""
    if on_home(body):
        if post is None:        # nothing changed: no general refresh will follow; show it here
            team_id, _, _ = team_of(body)
            try:
                home.publish(client, team_id, (body.get("user") or {}).get("id"),
                             workspace=workspace, user=user, notice=text)
            except Exception:
                log.exception("App Home notice not published")
        return
    say(respond if body.get("response_url") else None, text)


def say(respond, text: str) -> None:
    if respond is None:
        return
    try:
        respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception:     # the answer is a courtesy; the decision (if any) is committed
        log.warning("could not answer the clicker through the response_url")
