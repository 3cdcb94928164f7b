"""Publish results in the approval message's thread, and the "reconnect this account" message.

Pure builders: (fallback text, blocks) from core.notify's notes. Buttons carry the target id;
their listeners are in bot/listeners/actions/publish_results.py.
"""
from __future__ import annotations

from bot.blocks import ids
from bot.blocks.common import button, context, escape, section, slack_date

ICONS = {"published": ":white_check_mark:", "failed": ":x:", "needs_review": ":warning:",
         "missed": ":hourglass:"}


def lateness_words(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 0.05:
        return "on time"
    if seconds < 60:
        return f"{seconds:.1f} s late"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min late"
    return f"{seconds / 3600:.1f} h late"


def target_result(note, label: str) -> tuple[str, list]:
    """One target's outcome. `note` is a core.notify.TargetNote; `label` the network's name."""
    who = f"{label} ({escape(note.handle)})" if note.handle else label
    icon = ICONS.get(note.status, "")
    error = escape(note.error or "")
    actions = None
    if note.status == "published":
        late = lateness_words(note.lateness)
        when = slack_date(note.published_at, "{time_secs}") if note.published_at else ""
        link = f" · <{note.url}|View the post>" if note.url and note.url.startswith("http") else ""
        head = f"{icon} *Published to {who}*{link}"
        detail = " · ".join(filter(None, [f"at {when}" if when else "", late]))
        text = f"Published to {label} ({note.handle}){f', {late}' if late else ''}."
        blocks = [section(head + (f"\n{detail}" if detail else ""))]
    elif note.status == "failed":
        text = f"Not published to {label} ({note.handle}): {note.error or 'it failed'}"
        blocks = [section(f"{icon} *Not published to {who}*\n{error or 'The network refused it.'}")]
        actions = [button("Retry", ids.RETRY_TARGET, note.target_id, style="primary")]
    elif note.status == "needs_review":
        text = f"Herald isn't sure whether the post went out to {label} ({note.handle}); please check."
        blocks = [section(f"{icon} *Not sure whether this went out to {who}*\n{error}")]
        again = button("Publish again", ids.PUBLISH_AGAIN, note.target_id, style="danger")
        again["confirm"] = {
            "title": {"type": "plain_text", "text": "Publish again?"},
            "text": {"type": "mrkdwn", "text": f"Only if you checked {label} and it isn't there: "
                                               "if it did go out, it may appear twice."},
            "confirm": {"type": "plain_text", "text": "Publish again"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
        actions = [button("It was posted", ids.MARK_POSTED, note.target_id, style="primary"), again]
    else:  # missed
        text = f"Not published to {label} ({note.handle}): {note.error or 'it was too late'}"
        blocks = [section(f"{icon} *Missed on {who}*\n{error}")]
    if actions:
        blocks.append({"type": "actions", "block_id": f"publish_result:{note.target_id}",
                       "elements": actions})
    if note.status != "published" and note.attempts:
        blocks.append(context(f"{note.attempts} attempt{'s' if note.attempts != 1 else ''} · "
                              f"target `{note.target_id[:8]}`"))
    return text, blocks


def account_needs_reauth(note, label: str) -> tuple[str, list]:
    """The project channel hears that an account must be reconnected (core.notify.AccountNote)."""
    waiting = (f"{note.waiting} scheduled post{'s are' if note.waiting != 1 else ' is'} waiting for it"
               " and will go out once it is reconnected (unless they become too late)."
               if note.waiting else "Nothing scheduled is waiting for it right now.")
    text = f"Herald can't post as {note.handle} on {label} until the account is reconnected."
    blocks = [
        section(f":key: *Herald can't post as {escape(note.handle)} on {label} any more*\n"
                f"{escape(note.reason)}\n{waiting}"),
        {"type": "actions", "block_id": f"reconnect:{note.account_id}",
         "elements": [button("Reconnect", ids.RECONNECT_ACCOUNT, note.account_id, style="primary",
                             url=note.reconnect_url)]},
        context(f"Reconnect it on <{note.reconnect_url}|the Accounts page>."),
    ]
    return text, blocks


def resolved(blocks: list, line: str) -> list:
    """A result message after someone pressed one of its buttons: buttons gone, who did what."""
    kept = [b for b in (blocks or []) if b.get("type") != "actions"]
    return kept + [context(line)]


__all__ = ["target_result", "account_needs_reauth", "resolved", "lateness_words"]
