"""The reason modal's submission: decide with the note, then tell everyone.

The decision is made before ack, so an empty reason or a refusal can be shown in the modal
(inline error, or the modal turned into a notice); the Slack calls that follow (approval
message, author DM, Homes, the ephemeral answer) run after ack.
"""
from __future__ import annotations

import logging

from slack_sdk.webhook import WebhookClient

from bot import approval_flow, home
from bot.blocks import ids
from bot.blocks.reason import WORDING, ReasonContext, notice_view
from bot.context import acting_user, connected, message_for
from core import approvals
from core.errors import ValidationError

log = logging.getLogger(__name__)

EMPTY_REASON = {"changes_requested": "Say what should change, so the author knows.",
                "rejected": "Say why, so the author knows."}


def register(app, settings) -> None:
    app.view(ids.REASON_VIEW)(submit_reason)


@connected
def submit_reason(ack, body, view, client, context):
    reason_context = ReasonContext.load(view.get("private_metadata"))
    parsed = reason_context and approval_flow.parse_value(
        f"{reason_context.post_id}:{reason_context.content_hash}")
    if not parsed:
        ack(response_action="update", view=notice_view("Herald", approval_flow.FORGED))
        return
    decision = reason_context.decision
    title = WORDING[decision]["title"]
    values = ((view.get("state") or {}).get("values") or {})
    reason = ((values.get(ids.REASON_BLOCK) or {}).get(ids.REASON) or {}).get("value") or ""
    if not reason.strip():
        ack(response_action="errors", errors={ids.REASON_BLOCK: EMPTY_REASON[decision]})
        return
    try:
        workspace, user = acting_user(body, context, client)
        outcome = approvals.decide(user, parsed[0], decision, seen_hash=parsed[1], comment=reason)
    except ValidationError as exc:
        ack(response_action="errors",
            errors={ids.REASON_BLOCK: exc.errors.get("reason") or exc.message})
        return
    except Exception as exc:
        ack(response_action="update", view=notice_view(title, message_for(exc)))
        return
    if not outcome.changed:              # someone decided first, or the post was edited
        ack(response_action="update", view=notice_view(title, outcome.message))
        return
    ack()
    if reason_context.origin != "home":
        tell_clicker(reason_context.response_url, outcome.message)
    approval_flow.after_decision(client, outcome, user, decision, reason.strip())
    home.refresh_after_change(client, workspace, outcome.post, actor=user,
                              notice=outcome.message if reason_context.origin == "home" else None)


def tell_clicker(response_url: str, text: str) -> None:
    """Ephemeral answer through the response_url of the click that opened the modal (valid
    30 minutes, 5 uses)."""
    if not response_url:
        return
    try:
        WebhookClient(response_url).send(text=text, response_type="ephemeral",
                                         replace_original=False)
    except Exception:
        log.warning("could not answer the clicker through the response_url")
