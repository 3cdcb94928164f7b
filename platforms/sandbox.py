"""Sandbox: a network of Herald's own, for demos, dry runs, benchmarks and engine tests. It
behaves like a careful real network: real ids, idempotency keys honoured, a lookup for
reconciliation, rotating refresh tokens, and failures on demand.

Configured by its URL (SANDBOX_API_URL), so no extra settings are needed. Two modes:

    file:///path/to/sandbox.jsonl?latency_ms=100&fail=transient:0.1,ambiguous:0.02

        Posts go to a local JSON-lines log (one line per post; several processes may share
        it). `fail` lists outcome:probability pairs drawn per publish: rate_limited,
        transient, permanent, auth_expired, ambiguous (the post IS written, then the answer
        is "lost"). `latency_ms` stands in for the network's response time.

    http://127.0.0.1:8123?timeout=2&idempotency=1

        The same network over HTTP (tests/fakes/platforms/engine.py serves it), so the
        engine can be tested against real sockets: timeouts after send, 429s with a reset
        header, 5xx, 401s, rotating refresh tokens. `timeout` is seconds per request;
        `idempotency=0` models a network that ignores Idempotency-Key (like X): the engine
        must then reconcile by lookup instead of retrying; `reconcile=0` one that can't be
        searched either (an unconfirmed post then goes to people).

    The HTTP contract (JSON bodies, `Authorization: Bearer <access token>`):

        POST /v1/posts      {"text", "media": [url], "target", "options"} + Idempotency-Key
                            → 201 {"id", "url", "created_at"}; 200 with the same post when
                              the key was seen before (if the server honours keys)
        GET  /v1/posts?key=K → 200 {"posts": [...]}: the posts created with that key
        DELETE /v1/posts/ID → 204
        GET  /v1/me         → 200 {"id", "handle", "followers", "following", "posts"}
        POST /oauth/token   grant_type=refresh_token&refresh_token=R (form)
                            → 200 {"access_token", "refresh_token", "expires_in"}, the old
                              refresh token spent; 400 {"error": "invalid_grant"} for a spent
                              or unknown one
        Errors: 401 (token), 429 + X-RateLimit-Reset (epoch seconds) and/or Retry-After,
        4xx {"error", "message"} (refused), 5xx (try again).
"""
from __future__ import annotations

import fcntl
import json
import random
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse, urlunparse

from platforms.base import Adapter, Ambiguous, AuthExpired, Capabilities, Credentials, Identity, \
    InvalidGrant, Lookup, Metrics, Permanent, Pkce, PlatformConfig, Published, PublishRequest, \
    RateLimited, TokenSet, Transient, ACCOUNT_METRICS, POST_METRICS
from platforms.http import excerpt, generic_status_error, json_or_empty, retry_after
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
        rotates_refresh_token=True,
        account_metrics=frozenset({"followers", "following", "posts"}),
        post_metrics=frozenset({"likes", "comments", "shares"}),
    )
    _lock = threading.Lock()

    def __init__(self, config: PlatformConfig | None = None, **kw):
        config = config or PlatformConfig()
        parsed = urlparse(config.api_url or self.default_api_url)
        options = dict(parse_qsl(parsed.query))
        if "timeout" in options:
            config = replace(config, timeout=float(options["timeout"]))
        super().__init__(config, **kw)
        self.mode = "http" if parsed.scheme in ("http", "https") else "file"
        self.path = Path(unquote(parsed.path))
        self.base = urlunparse(parsed._replace(query="", fragment="")).rstrip("/")
        self.latency = float(options.get("latency_ms", 0)) / 1000
        self.failures = _parse_failures(options.get("fail", ""))
        honours = options.get("idempotency", "1").lower() not in ("0", "false", "no")
        searchable = options.get("reconcile", "1").lower() not in ("0", "false", "no")
        if not (honours and searchable):
            self.capabilities = replace(type(self).capabilities, idempotency=honours,
                                        reconcile=searchable)

    def count(self, text: str) -> int:
        return code_points(text)

    # -- connect: the sandbox hands out tokens without a consent page ---------------------
    def authorize_url(self, state: str, pkce: Pkce | None = None) -> str:
        return f"{self.config.redirect_uri}?code=sandbox-{uuid.uuid4().hex}&state={state}"

    def exchange_code(self, code: str, pkce: Pkce | None = None) -> TokenSet:
        return self._tokens()

    def identity(self, tokens: TokenSet) -> Identity:
        if self.mode == "http":
            me = self._json(self.http.get(f"{self.base}/v1/me", headers=_bearer(tokens.access_token)),
                            "read the account")
            return Identity(platform_user_id=str(me["id"]), handle=me.get("handle", ""),
                            display_name=me.get("name", "Sandbox account"))
        handle = tokens.extra.get("handle", "sandbox")
        return Identity(platform_user_id=tokens.extra.get("user_id", handle), handle=handle,
                        display_name="Sandbox account")

    def refresh(self, credentials: Credentials) -> TokenSet:
        if self.mode == "file":
            return self._tokens()
        if not credentials.refresh_token:
            raise InvalidGrant("The sandbox gave no refresh token for this account; reconnect it.")
        response = self.http.post(f"{self.base}/oauth/token", ambiguous=True, data={
            "grant_type": "refresh_token", "refresh_token": credentials.refresh_token})
        body = json_or_empty(response)
        if response.status_code in (400, 401) and body.get("error") in ("invalid_grant", "invalid_request"):
            raise InvalidGrant("The sandbox refused the refresh token; please reconnect the account.",
                               code=body.get("error"), http_status=response.status_code,
                               detail=excerpt(response))
        self._raise_for(response, "refresh the token")
        expires_in = body.get("expires_in")
        return TokenSet(access_token=body["access_token"],
                        refresh_token=body.get("refresh_token") or credentials.refresh_token,
                        expires_at=(datetime.now(timezone.utc) + timedelta(seconds=float(expires_in))
                                    if expires_in is not None else None))

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
        if self.mode == "http":
            return self._publish_http(request, credentials)
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
        if self.mode == "http":
            response = self.http.get(f"{self.base}/v1/posts", params={"key": request.idempotency_key},
                                     headers=_bearer(credentials.access_token))
            posts = self._json(response, "look the post up").get("posts") or []
            live = [p for p in posts if not p.get("deleted")]
            if live:
                return Lookup("found", self._published_http(live[0]))
            return Lookup("not_found", reason="The sandbox has no post with this key.")
        for record in self._records():
            if record["key"] == request.idempotency_key and not record.get("deleted"):
                return Lookup("found", self._published(record))
        return Lookup("not_found", reason="The sandbox log has no post with this key.")

    def delete(self, platform_post_id: str, credentials: Credentials) -> None:
        if self.mode == "http":
            response = self.http.request("DELETE", f"{self.base}/v1/posts/{platform_post_id}",
                                         headers=_bearer(credentials.access_token), ambiguous=False)
            if response.status_code != 404:
                self._raise_for(response, "delete the post")
            return
        self._append({"op": "delete", "id": platform_post_id})

    def account_metrics(self, credentials: Credentials) -> Metrics:
        if self.mode == "http":
            me = self._json(self.http.get(f"{self.base}/v1/me",
                                          headers=_bearer(credentials.access_token)), "read metrics")
            return Metrics({k: int(me.get(k, 0)) for k in ("followers", "following", "posts")},
                           frozenset(ACCOUNT_METRICS) - self.capabilities.account_metrics)
        posts = sum(1 for r in self._records() if r.get("account") == credentials.platform_user_id)
        return Metrics({"followers": 0, "following": 0, "posts": posts},
                       frozenset(ACCOUNT_METRICS) - self.capabilities.account_metrics)

    def post_metrics(self, platform_post_id: str, credentials: Credentials) -> Metrics:
        return Metrics({"likes": 0, "comments": 0, "shares": 0},
                       frozenset(POST_METRICS) - self.capabilities.post_metrics)

    # -- HTTP mode ------------------------------------------------------------------------
    def _publish_http(self, request: PublishRequest, credentials: Credentials) -> Published:
        headers = {**_bearer(credentials.access_token), "Idempotency-Key": request.idempotency_key}
        body = {"text": request.text, "media": [m.url for m in request.media],
                "target": request.target_id, "options": request.options}
        response = self.http.post(f"{self.base}/v1/posts", json=body, headers=headers)
        if response.status_code in (200, 201):
            return self._published_http(json_or_empty(response))
        self._raise_for(response, "publish")
        raise Ambiguous(f"The sandbox answered {response.status_code}; the post may exist.",
                        http_status=response.status_code, detail=excerpt(response))

    def _published_http(self, post: dict) -> Published:
        created = post.get("created_at")
        return Published(platform_post_id=str(post["id"]), url=post.get("url") or f"{self.base}/p/{post['id']}",
                         published_at=datetime.fromisoformat(created.replace("Z", "+00:00"))
                         if created else None)

    def _raise_for(self, response, doing: str) -> None:
        status = response.status_code
        if status < 400:
            return
        body = json_or_empty(response)
        message = body.get("message") or body.get("error") or ""
        if status == 429:
            reset_at = _epoch(response.headers.get("x-ratelimit-reset"))
            raise RateLimited("The sandbox rate limit was reached; waiting until it resets.",
                              retry_at=reset_at or retry_after(response)
                              or datetime.now(timezone.utc) + timedelta(seconds=60),
                              http_status=status, code=body.get("error"), detail=excerpt(response))
        if status in (400, 403, 404, 409, 422):
            raise Permanent(f"The sandbox refused to {doing}: {message or status}.", http_status=status,
                            code=body.get("error"), detail=excerpt(response))
        error = generic_status_error(self.label, response)
        if error is not None:
            error.code = error.code or body.get("error")
            raise error

    def _json(self, response, doing: str) -> dict:
        self._raise_for(response, doing)
        return json_or_empty(response)

    # -- the log --------------------------------------------------------------------------
    def records(self) -> list[dict]:
        """Every post in the log (tests and the demo read it)."""
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
            if self.capabilities.idempotency:
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


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _epoch(value: str | None) -> datetime | None:
    """Epoch seconds, fractions kept (the fake's resets are sub-second in tests)."""
    try:
        return datetime.fromtimestamp(float(value), timezone.utc) if value else None
    except (TypeError, ValueError):
        return None


def _parse_failures(raw: str) -> list[tuple[str, float]]:
    failures = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        outcome, _, probability = part.partition(":")
        if outcome not in OUTCOMES:
            raise ValueError(f"sandbox: unknown failure {outcome!r} (one of {', '.join(OUTCOMES)})")
        failures.append((outcome, float(probability or 1)))
    return failures


__all__ = ["SandboxAdapter", "OUTCOMES"]
