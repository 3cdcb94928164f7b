"""Logging set-up with a last line of defence: anything shaped like a token is masked
before it is written, whoever logged it."""
from __future__ import annotations

import logging
import re

_PATTERNS = [
    re.compile(r"xox[abeposr]-[A-Za-z0-9-]+"),                           # Slack tokens
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)((?:access|refresh)_?token[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"),
    re.compile(r"(?i)((?:client_secret|password|accessJwt|refreshJwt)[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"),
    re.compile(r"gAAAAA[A-Za-z0-9_=-]{20,}"),                            # Fernet ciphertext
]


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def configure(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    root.setLevel(level)
    # httpx logs every request URL at INFO, and some networks (Meta) carry tokens in the query.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
