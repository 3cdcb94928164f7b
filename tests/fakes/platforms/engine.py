"""A fake network for the publishing engine: the sandbox's HTTP contract
(platforms/sandbox.py), with the counters and knobs the engine's promises are tested with.

    fake = FakeSandbox(latency=0.1, honour_keys=True).start()
    SANDBOX_API_URL = fake.api_url(timeout=2)          # what a worker process is given
    access, refresh = fake.issue_tokens("acct-1")

What it records and offers:
- `creates`: how many posts each idempotency key created (a replay by key creates none), and
  `duplicates()`: keys or targets that got more than one post — the number that must be 0.
- `latency`: seconds every publish takes before answering (like a real network).
- `rate_limit(until)`: publishes before that instant get 429 + X-RateLimit-Reset (epoch
  seconds, fractions kept) and Retry-After; `publish_times` shows when each request came.
- `fail(...)` from FakeServer: status codes, `hang_after` (the post is created, then the
  answer stalls: timeout after send), `hang_before` (nothing is created).
- OAuth: access tokens expire (`expire(access)` → 401), refresh tokens rotate on every
  refresh and are single-use: a reused one gets 400 invalid_grant, like X and Bluesky.
  `refreshes` counts refresh requests.
"""
from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlencode

from flask import Flask, jsonify, request

from tests.fakes.server import FakeServer


@dataclass
class FakePost:
    id: str
    account: str
    key: str | None
    target: str | None
    text: str
    media: list
    created_at: float
    deleted: bool = False


@dataclass
class Account:
    id: str
    handle: str
    followers: int = 0
    following: int = 0


@dataclass
class AccessToken:
    account: str
    expires: float


@dataclass
class Grant:
    account: str
    spent: bool = False


@dataclass
class Stats:
    creates: Counter = field(default_factory=Counter)         # key -> posts created
    by_target: Counter = field(default_factory=Counter)       # target -> posts created
    publish_requests: int = 0
    replays: int = 0
    refreshes: int = 0
    invalid_grants: int = 0


class FakeSandbox(FakeServer):
    name = "sandbox"

    def __init__(self, *, latency: float = 0.0, honour_keys: bool = True, access_ttl: float = 7200):
        self.latency = latency
        self.honour_keys = honour_keys
        self.access_ttl = access_ttl
        self.state_lock = threading.RLock()
        self._ids = itertools.count(1_900_000_000_000)
        self.posts: dict[str, FakePost] = {}
        self.by_key: dict[str, str] = {}
        self.accounts: dict[str, Account] = {}
        self.access: dict[str, AccessToken] = {}
        self.grants: dict[str, Grant] = {}
        self.stats = Stats()
        self.rate_limited_until: float = 0.0
        self.publish_times: list[tuple[float, int]] = []      # (when, status answered)
        super().__init__()

    # -- set-up and inspection ------------------------------------------------------------
    def api_url(self, **options) -> str:
        query = urlencode(options)
        return f"{self.url}?{query}" if query else self.url

    def add_account(self, account_id: str, handle: str | None = None) -> Account:
        with self.state_lock:
            account = self.accounts.setdefault(account_id, Account(account_id, handle or f"@{account_id}"))
        return account

    def issue_tokens(self, account_id: str) -> tuple[str, str]:
        """(access, refresh) as if the account had just been connected."""
        self.add_account(account_id)
        access, refresh = "sa-" + secrets.token_urlsafe(18), "sr-" + secrets.token_urlsafe(18)
        with self.state_lock:
            self.access[access] = AccessToken(account_id, time.time() + self.access_ttl)
            self.grants[refresh] = Grant(account_id)
        return access, refresh

    def expire(self, access: str) -> None:
        with self.state_lock:
            self.access[access].expires = time.time() - 1

    def expire_all(self) -> None:
        with self.state_lock:
            for token in self.access.values():
                token.expires = time.time() - 1

    def rate_limit(self, seconds: float) -> float:
        """Answer 429 to every publish for `seconds`; returns the reset instant (epoch)."""
        with self.state_lock:
            self.rate_limited_until = time.time() + seconds
            return self.rate_limited_until

    def live_posts(self, target: str | None = None) -> list[FakePost]:
        with self.state_lock:
            return [p for p in self.posts.values()
                    if not p.deleted and (target is None or p.target == target)]

    def duplicates(self) -> dict:
        """Keys and targets with more than one post created: must be empty."""
        with self.state_lock:
            keys = {k: n for k, n in self.stats.creates.items() if n > 1}
            targets = {t: n for t, n in self.stats.by_target.items() if n > 1}
        return {"keys": keys, "targets": targets}

    # -- routes ---------------------------------------------------------------------------
    def build(self, app: Flask) -> None:
        app.add_url_rule("/v1/posts", "create", self._create, methods=["POST"])
        app.add_url_rule("/v1/posts", "lookup", self._lookup, methods=["GET"])
        app.add_url_rule("/v1/posts/<post_id>", "get", self._get, methods=["GET"])
        app.add_url_rule("/v1/posts/<post_id>", "delete", self._delete, methods=["DELETE"])
        app.add_url_rule("/v1/me", "me", self._me, methods=["GET"])
        app.add_url_rule("/oauth/token", "token", self._token, methods=["POST"])

    def _account(self) -> Account | None:
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer "):] if header.startswith("Bearer ") else ""
        with self.state_lock:
            found = self.access.get(token)
            if found is None or found.expires < time.time():
                return None
            return self.accounts[found.account]

    @staticmethod
    def _unauthorized():
        return jsonify(error="invalid_token", message="The access token expired or was revoked."), 401

    def _post_json(self, post: FakePost) -> dict:
        return {"id": post.id, "url": f"{self.url}/p/{post.id}", "key": post.key,
                "target": post.target, "text": post.text, "media": post.media,
                "created_at": datetime.fromtimestamp(post.created_at, timezone.utc).isoformat(),
                "deleted": post.deleted}

    def _create(self):
        if self.latency:
            self._stop.wait(self.latency)
        now = time.time()
        with self.state_lock:
            self.stats.publish_requests += 1
            if now < self.rate_limited_until:
                self.publish_times.append((now, 429))
                reset = self.rate_limited_until
                return (jsonify(error="rate_limited", message="Too many posts."), 429,
                        {"X-RateLimit-Reset": f"{reset:.3f}",
                         "Retry-After": str(max(1, int(reset - now + 0.999)))})
        account = self._account()
        if account is None:
            with self.state_lock:
                self.publish_times.append((now, 401))
            return self._unauthorized()
        body = request.get_json(silent=True) or {}
        text = str(body.get("text") or "")
        if not text.strip() and not body.get("media"):
            return jsonify(error="invalid", message="A post needs text or media."), 422
        key = request.headers.get("Idempotency-Key")
        with self.state_lock:
            if key and self.honour_keys and (account.id, key) in self.by_key:
                self.stats.replays += 1
                self.publish_times.append((now, 200))
                return jsonify(self._post_json(self.posts[self.by_key[(account.id, key)]])), 200
            post = FakePost(str(next(self._ids)), account.id, key, body.get("target"), text,
                            list(body.get("media") or []), now)
            self.posts[post.id] = post
            if key:
                self.by_key.setdefault((account.id, key), post.id)
                self.stats.creates[key] += 1
            if post.target:
                self.stats.by_target[post.target] += 1
            self.publish_times.append((now, 201))
            return jsonify(self._post_json(post)), 201

    def _lookup(self):
        account = self._account()
        if account is None:
            return self._unauthorized()
        key = request.args.get("key")
        with self.state_lock:
            found = [self._post_json(p) for p in self.posts.values()
                     if p.account == account.id and key and p.key == key]
        return jsonify(posts=found)

    def _get(self, post_id):
        if self._account() is None:
            return self._unauthorized()
        post = self.posts.get(post_id)
        if post is None or post.deleted:
            return jsonify(error="not_found", message="No such post."), 404
        return jsonify(self._post_json(post))

    def _delete(self, post_id):
        account = self._account()
        if account is None:
            return self._unauthorized()
        with self.state_lock:
            post = self.posts.get(post_id)
            if post is None or post.account != account.id:
                return jsonify(error="not_found", message="No such post."), 404
            post.deleted = True
        return "", 204

    def _me(self):
        account = self._account()
        if account is None:
            return self._unauthorized()
        posts = len([p for p in self.posts.values() if p.account == account.id and not p.deleted])
        return jsonify(id=account.id, handle=account.handle, name=account.handle,
                       followers=account.followers, following=account.following, posts=posts)

    def _token(self):
        form = request.form
        with self.state_lock:
            self.stats.refreshes += 1
            if form.get("grant_type") != "refresh_token":
                return jsonify(error="unsupported_grant_type"), 400
            grant = self.grants.get(form.get("refresh_token", ""))
            if grant is None or grant.spent:
                self.stats.invalid_grants += 1
                return jsonify(error="invalid_grant",
                               error_description="The refresh token is invalid or was already used."), 400
            grant.spent = True                       # rotation: single use
            access, refresh = "sa-" + secrets.token_urlsafe(18), "sr-" + secrets.token_urlsafe(18)
            self.access[access] = AccessToken(grant.account, time.time() + self.access_ttl)
            self.grants[refresh] = Grant(grant.account)
        return jsonify(access_token=access, refresh_token=refresh, token_type="bearer",
                       expires_in=int(self.access_ttl))
