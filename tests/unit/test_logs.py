"""Whatever gets logged, tokens come out masked."""
import logging

from core.logs import RedactingFilter, redact


def test_redact_masks_token_shapes():
    text = ("bot xoxb-123-456-abcdef app xapp-1-A-2 Authorization: Bearer abcdefghijklmnop "
            'body {"access_token": "ya29.secret", "refresh_token":"r-1"} '
            "form client_secret=shh&code=1 cipher gAAAAABlongciphertextvalue12345678")
    out = redact(text)
    for secret in ("xoxb-123", "xapp-1", "abcdefghijklmnop", "ya29.secret", "r-1", "shh",
                   "gAAAAABlong"):
        assert secret not in out
    assert "Bearer [redacted]" in out and '"access_token": "[redacted]' in out


def test_the_filter_rewrites_records(caplog):
    logger = logging.getLogger("herald.test")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("refreshing with %s", "refresh_token=abc123")
    assert "abc123" not in caplog.text and "[redacted]" in caplog.text
