"""Ids arrive from outside (Slack `value`s, URLs, forms) and may be forged or garbled."""
from __future__ import annotations

import uuid


def parse_id(value) -> uuid.UUID | None:
    """The UUID in `value`, or None when it isn't one (which callers treat as not found)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None
