"""The reason modal behind Request changes / Reject, and the small notice a modal turns into
when the decision can't be made. Pure: data in, view dicts out."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from bot.blocks import ids
from bot.blocks.common import escape, section

METADATA_LIMIT = 3000          # Slack's private_metadata limit
REASON_MAX = 2000

WORDING = {
    "changes_requested": {"title": "Request changes", "submit": "Send to author",
                          "label": "What should change?",
                          "hint": "The author gets this note and the post goes back to drafts."},
    "rejected": {"title": "Reject post", "submit": "Reject",
                 "label": "Why is it rejected?",
                 "hint": "The author gets this reason. A rejected post isn't published."},
}


@dataclass(frozen=True)
class ReasonContext:
    """What the submission needs, carried in private_metadata (a view submission has no
    channel and no response_url of its own)."""
    post_id: str
    content_hash: str
    decision: str                  # changes_requested | rejected
    channel_id: str = ""
    message_ts: str = ""
    response_url: str = ""         # the click's, for the ephemeral answer
    origin: str = "message"        # message | home

    def dump(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v}
        text = json.dumps(data, separators=(",", ":"))
        if len(text) > METADATA_LIMIT:          # only a monstrous response_url could do this
            data.pop("response_url", None)
            text = json.dumps(data, separators=(",", ":"))
        return text

    @classmethod
    def load(cls, text: str | None) -> "ReasonContext | None":
        try:
            data = json.loads(text or "")
            context = cls(**{k: str(v) for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError, AttributeError):
            return None
        if context.decision not in WORDING or not context.post_id:
            return None
        return context


def reason_view(context: ReasonContext) -> dict:
    words = WORDING[context.decision]
    return {
        "type": "modal",
        "callback_id": ids.REASON_VIEW,
        "private_metadata": context.dump(),
        "title": {"type": "plain_text", "text": words["title"]},
        "submit": {"type": "plain_text", "text": words["submit"]},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input",
            "block_id": ids.REASON_BLOCK,
            "label": {"type": "plain_text", "text": words["label"]},
            "hint": {"type": "plain_text", "text": words["hint"]},
            "element": {"type": "plain_text_input", "action_id": ids.REASON, "multiline": True,
                        "max_length": REASON_MAX,
                        "placeholder": {"type": "plain_text", "text": "Be specific and kind."}},
        }],
    }


def notice_view(title: str, text: str) -> dict:
    """A modal with only a message and a Close button (nothing left to submit)."""
    return {
        "type": "modal",
        "callback_id": f"{ids.REASON_VIEW}_notice",
        "title": {"type": "plain_text", "text": title[:24]},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [section(escape(text))],
    }
