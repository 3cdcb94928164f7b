"""httpx with the transport failures already mapped to the outcome taxonomy.

The distinction that matters for "never twice": a failure *before* the request left
(connect error, connect timeout) is Transient — nothing happened at the network. A failure
*after* it left (read timeout, dropped connection) on a write is Ambiguous — the post may
exist, so the engine must reconcile instead of replaying.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import httpx

from platforms.base import Ambiguous, AuthExpired, RateLimited, Transient

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_RATE_LIMIT_WAIT = timedelta(seconds=60)
_SECRETISH = re.compile(
    r'("?(?:access_token|refresh_token|accessJwt|refreshJwt|client_secret|id_token)"?\s*[:=]\s*"?)'
    r'[^"&,\s}]+', re.IGNORECASE)
# An OAuth code in a URL or form is a secret; Meta's numeric {"code": 190} is not.
_CODE_PARAM = re.compile(r'([?&]code=)[^&\s"]+')


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def excerpt(response: httpx.Response, limit: int = 300) -> str:
    """A short, redacted piece of a response body for the publish journal."""
    try:
        text = response.text
    except Exception:  # undecodable body: the status says enough
        return ""
    return _CODE_PARAM.sub(r"\1[redacted]", _SECRETISH.sub(r"\1[redacted]", text))[:limit]


def json_or_empty(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {"_": body}


def retry_after(response: httpx.Response) -> datetime | None:
    """RFC 9110 Retry-After (seconds or HTTP date), which none of the nine document but any
    may send; adapters call this as the last resort after their own reset signal."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return utcnow() + timedelta(seconds=int(value))
    try:
        from email.utils import parsedate_to_datetime
        return parsedate_to_datetime(value).astimezone(timezone.utc)
    except (TypeError, ValueError):
        return None


def from_epoch(value: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(float(value)), timezone.utc) if value else None
    except (TypeError, ValueError):
        return None


def from_iso(value: str | None) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc) if parsed else None


def in_seconds(seconds: float | int | None) -> datetime | None:
    return utcnow() + timedelta(seconds=float(seconds)) if seconds is not None else None


class HttpClient:
    """A thin httpx.Client whose `request` raises taxonomy errors for transport failures and
    returns every HTTP response (adapters classify statuses with their own rules)."""

    def __init__(self, label: str, *, timeout: float = 20.0, transport=None):
        self.label = label
        self.client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def request(self, method: str, url: str, *, ambiguous: bool | None = None, **kw) -> httpx.Response:
        """`ambiguous` says whether a failure after sending may have had an effect; by default
        every non-GET is treated as a write."""
        method = method.upper()
        writes = (method not in SAFE_METHODS) if ambiguous is None else ambiguous
        try:
            return self.client.request(method, url, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise Transient(f"Couldn't reach {self.label}; will try again.",
                            code=type(exc).__name__) from None
        except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError,
                httpx.ReadError, httpx.WriteError) as exc:
            if writes:
                raise Ambiguous(f"{self.label} didn't answer in time; the post may or may not exist.",
                                code=type(exc).__name__) from None
            raise Transient(f"{self.label} didn't answer in time; will try again.",
                            code=type(exc).__name__) from None

    def get(self, url: str, **kw) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw) -> httpx.Response:
        return self.request("POST", url, **kw)

    def close(self) -> None:
        self.client.close()


def generic_status_error(label: str, response: httpx.Response, message: str | None = None,
                         reset: datetime | None = None):
    """The fallback classification every adapter uses for statuses its network doesn't
    describe more precisely. Returns an exception to raise, or None for 2xx/3xx."""
    status = response.status_code
    detail = excerpt(response)
    if status < 400:
        return None
    if status == 429:
        retry_at = reset or retry_after(response) or utcnow() + DEFAULT_RATE_LIMIT_WAIT
        return RateLimited(message or f"{label} rate limit reached; waiting until it resets.",
                           retry_at=retry_at, http_status=status, detail=detail)
    if status == 401:
        return AuthExpired(message or f"{label} says the access token is no longer valid.",
                           http_status=status, detail=detail)
    if status >= 500:
        return Transient(message or f"{label} had a server error ({status}); will try again.",
                         http_status=status, detail=detail)
    from platforms.base import Permanent
    return Permanent(message or f"{label} refused the request ({status}).", http_status=status,
                     detail=detail)
