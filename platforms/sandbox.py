"""Sandbox: a network that publishes to a local JSON-lines log — for demos, dry runs and
benchmarks. It behaves like a careful real network: real ids, idempotency keys honoured, a
lookup for reconciliation, and failures on demand.

Configured by its URL (SANDBOX_API_URL), so no extra settings are needed:

    file:///path/to/sandbox.jsonl?latency_ms=100&fail=transient:0.1,ambiguous:0.02

`fail` lists outcome:probability pairs drawn per publish: rate_limited, transient,
permanent, auth_expired, ambiguous (the post IS written, then the answer is "lost").
"""
from __future__ import annotations

import fcntl
import json
import random
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

from platforms.base import Adapter, Ambiguous, AuthExpired, Capabilities, Credentials, Identity, \
    Lookup, Metrics, Permanent, Pkce, PlatformConfig, Published, PublishRequest, RateLimited, \
    TokenSet, Transient, ACCOUNT_METRICS, POST_METRICS
from platforms.text import code_points

OUTCOMES = ("rate_limited", "transient", "permanent", "auth_expired", "ambiguous")


class SandboxAdapter(Adapter):
    name = "sandbox"
    label = "Sandbox"
    default_api_url = "file:///tmp/herald-sandbox.jsonl"
    capabilities = Capabilities(
        text_limit=5000, counting="characters",
        image_mimes=frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"}),
        video_mimes=frozenset({"video/mp4", "video/quicktime"}),
        max_images=10, idempotency=True, reconcile=True, delete=True, refresh=True,
        account_metrics=frozenset({"followers", "following", "posts"}),
        post_metrics=frozenset({"likes", "comments", "shares"}),
    )
    _lock = threading.Lock()

    def __init__(self, config: PlatformConfig | None = None, **kw):
        super().__init__(config, **kw)
        parsed = urlparse(self.config.api_url or self.default_api_url)
        self.path = Path(unquote(parsed.path))
        options = dict(parse_qsl(parsed.query))
        self.latency = float(options.get("latency_ms", 0)) / 1000
        self.failures = _parse_failures(options.get("fail", ""))

    def count(self, text: str) -> int:
        return code_points(text)

    # -- connect: the sandbox hands out tokens without a consent page ---------------------
    def authorize_url(self, state: str, pkce: Pkce | None = None) -> str:
        return f"{self.config.redirect_uri}?code=sandbox-{uuid.uuid4().hex}&state={state}"

    def exchange_code(self, code: str, pkce: Pkce | None = None) -> TokenSet:
        return self._tokens()

    def identity(self, tokens: TokenSet) -> Identity:
        handle = tokens.extra.get("handle", "sandbox")
        return Identity(platform_user_id=tokens.extra.get("user_id", handle), handle=handle,
                        display_name="Sandbox account")

    def refresh(self, credentials: Credentials) -> TokenSet:
        return self._tokens()

    def revoke(self, credentials: Credentials) -> None:
        return None

    def _tokens(self) -> TokenSet:
        return TokenSet(access_token=f"sandbox-{uuid.uuid4().hex}",
                        refresh_token=f"sandbox-r-{uuid.uuid4().hex}",
                        expires_at=datetime.now(timezone.utc) + timedelta(hours=2),
                        extra={"handle": "sandbox", "user_id": "sandbox"})

    # -- publish --------------------------------------------------------------------------
    def publish(self, request: PublishRequest, credentials: Credentials,
                checkpoint=lambda state: None) -> Published:
        if self.latency:
            time.sleep(self.latency)  # stands in for the network's response time
        outcome = self._draw()
        if outcome == "rate_limited":
            raise RateLimited("Sandbox rate limit (injected).",
                              retry_at=datetime.now(timezone.utc) + timedelta(seconds=30))
        if outcome == "transient":
            raise Transient("Sandbox server error (injected); will try again.", http_status=503)
        if outcome == "permanent":
            raise Permanent("Sandbox refused this post (injected).", http_status=400)
        if outcome == "auth_expired":
            raise AuthExpired("Sandbox says the token expired (injected).", http_status=401)
        record = self._write(request, credentials)
        if outcome == "ambiguous":
            raise Ambiguous("Sandbox didn't answer in time (injected); the post may exist.")
        return self._published(record)

    def find_published(self, request: PublishRequest, credentials: Credentials,
                       since: datetime) -> Lookup:
        for record in self._records():
            if record["key"] == request.idempotency_key and not record.get("deleted"):
                return Lookup("found", self._published(record))
        return Lookup("not_found")

    def delete(self, platform_post_id: str, credentials: Credentials) -> None:
        self._append({"op": "delete", "id": platform_post_id})

    def account_metrics(self, credentials: Credentials) -> Metrics:
        posts = sum(1 for r in self._records() if r.get("account") == credentials.platform_user_id)
        return Metrics({"followers": 0, "following": 0, "posts": posts},
                       frozenset(ACCOUNT_METRICS) - self.capabilities.account_metrics)

    def post_metrics(self, platform_post_id: str, credentials: Credentials) -> Metrics:
        return Metrics({"likes": 0, "comments": 0, "shares": 0},
                       frozenset(POST_METRICS) - self.capabilities.post_metrics)

    # -- the log --------------------------------------------------------------------------
    def records(self) -> list[dict]:
        """Every live post in the log (tests and the demo read it)."""
        return self._records()

    def _draw(self) -> str | None:
        roll = random.random()
        for outcome, probability in self.failures:
            if roll < probability:
                return outcome
            roll -= probability
        return None

    def _write(self, request: PublishRequest, credentials: Credentials) -> dict:
        with self._locked() as fh:
            fh.seek(0)
            for line in fh:
                record = json.loads(line)
                if record.get("key") == request.idempotency_key and record.get("op") == "publish":
                    return record  # the same key twice is the same post (like Mastodon)
            record = {"op": "publish", "id": uuid.uuid4().hex, "key": request.idempotency_key,
                      "target": request.target_id, "account": credentials.platform_user_id,
                      "text": request.text, "media": [m.url for m in request.media],
                      "at": datetime.now(timezone.utc).isoformat()}
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            return record

    def _append(self, record: dict) -> None:
        with self._locked() as fh:
            fh.write(json.dumps(record) + "\n")

    def _records(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self._locked() as fh:
            fh.seek(0)
            lines = [json.loads(line) for line in fh if line.strip()]
        deleted = {r["id"] for r in lines if r.get("op") == "delete"}
        return [dict(r, deleted=r["id"] in deleted) for r in lines if r.get("op") == "publish"]

    def _locked(self):
        adapter = self

        class _Locked:
            def __enter__(self):
                adapter.path.parent.mkdir(parents=True, exist_ok=True)
                adapter._lock.acquire()
                self.fh = open(adapter.path, "a+")
                fcntl.flock(self.fh, fcntl.LOCK_EX)  # other processes (several workers)
                return self.fh

            def __exit__(self, *exc):
                fcntl.flock(self.fh, fcntl.LOCK_UN)
                self.fh.close()
                adapter._lock.release()

        return _Locked()

    def _published(self, record: dict) -> Published:
        return Published(platform_post_id=record["id"], url=f"{self.path.as_uri()}#{record['id']}",
                         published_at=datetime.fromisoformat(record["at"]))


def _parse_failures(raw: str) -> list[tuple[str, float]]:
    failures = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        outcome, _, probability = part.partition(":")
        if outcome not in OUTCOMES:
            raise ValueError(f"sandbox: unknown failure {outcome!r} (one of {', '.join(OUTCOMES)})")
        failures.append((outcome, float(probability or 1)))
    return failures
