"""Small pieces every builder uses."""
from __future__ import annotations

from datetime import datetime


def slack_date(instant: datetime | None, fmt: str = "{date_short_pretty} at {time}") -> str:
    """Slack renders this in each reader's own time zone; the fallback is UTC."""
    if instant is None:
        return "no time set"
    fallback = instant.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(instant.timestamp())}^{fmt}|{fallback}>"


def escape(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) must be escaped in user text."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str, **extra) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}, **extra}


def context(*texts: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t[:3000]} for t in texts]}


def button(text: str, action_id: str, value: str, style: str | None = None, url: str | None = None) -> dict:
    element = {"type": "button", "text": {"type": "plain_text", "text": text[:75]},
               "action_id": action_id, "value": value[:2000]}
    if style:
        element["style"] = style
    if url:
        element["url"] = url
    return element


def quote(text: str, limit: int = 600) -> str:
    text = escape(text)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return "\n".join("> " + line for line in (text.splitlines() or [""]))
