"""A local X (Twitter API v2) that follows shared/reference/platforms.md §1.

Every request is validated against XSPEC (specs/x-openapi.json) by `SpecCheck`; the OAuth
endpoints, which XSPEC leaves out, are checked against XDOCS as the reference records it.
A request that breaks either gets a 400 and lands in `fake.violations`.

What it models:
- OAuth 2.0 authorization code + PKCE (S256/plain), confidential (Basic) or public clients,
  2 h access tokens, refresh tokens only with `offline.access`, rotated on every refresh and
  single-use (a reused one gets `invalid_grant`), revoke.
- `POST /2/tweets` (201), duplicate text → the observed 403, `DELETE /2/tweets/:id`,
  `GET /2/tweets/:id`, `GET /2/users/me`, `GET /2/users/:id/tweets` (newest first).
- Media: one-shot upload, initialize/append/finalize, STATUS polling through
  pending → in_progress → succeeded (or failed / stuck), alt text metadata.
- Rate headers on every API response; problem+json errors.

Failures are injected with `fail(...)` (see tests/fakes/server.py) or the helpers below.
"""
from __future__ import annotations

import base64
import hashlib
import html
import itertools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Flask, Response, jsonify, redirect, request
from twitter_text import parse_tweet

from tests.fakes.platforms.openapi import SpecCheck
from tests.fakes.server import FakeServer

PROBLEMS = "https://api.x.com/2/problems/"
DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
_URL = re.compile(r"https?://\S+")
ALL_SCOPES = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")


@dataclass
class User:
    id: str
    username: str
    name: str
    profile_image_url: str = "https://pbs.twimg.com/profile_images/1/avatar_normal.jpg"
    followers_count: int = 1200
    following_count: int = 180
    tweet_count: int = 3400
    listed_count: int = 12
    like_count: int = 560
    media_count: int = 40


@dataclass
class Tweet:
    id: str
    text: str
    author_id: str
    created_at: datetime
    media_ids: list[str] = field(default_factory=list)
    original: str = ""            # the text as sent, before X's rewriting
    metrics: dict = field(default_factory=lambda: {
        "retweet_count": 3, "reply_count": 2, "like_count": 17, "quote_count": 1,
        "bookmark_count": 4, "impression_count": 910})


@dataclass
class Upload:
    id: str
    owner: str
    media_type: str
    category: str
    total_bytes: int | None = None
    segments: dict[int, bytes] = field(default_factory=dict)
    state: str = "uploading"      # uploading → pending → in_progress → succeeded | failed
    polls: int = 0
    alt_text: str = ""

    @property
    def size(self) -> int:
        return sum(len(part) for part in self.segments.values())


class FakeX(FakeServer):
    name = "x"

    def __init__(self, *, client_id: str = "x-client-id", client_secret: str = "x-client-secret"):
        self.client_id = client_id
        self.client_secret = client_secret   # "" makes it a public client (client_id in body)
        self.lock = threading.RLock()
        self._ids = itertools.count(1880028106020515840)
        self.users = {"2244994945": User("2244994945", "heraldbot", "Herald Bot")}
        self.default_user = "2244994945"
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self.used_refresh_tokens: set[str] = set()
        self.revoked: list[str] = []
        self.tweets: dict[str, Tweet] = {}
        self.uploads: dict[str, Upload] = {}
        # Knobs for the media state machine.
        self.processing_polls = 2          # STATUS polls that still answer in_progress
        self.video_outcome = "succeeded"    # or "failed", or "stuck" (never finishes)
        self.check_after_secs = 0           # X sends 1-5 s; tests don't wait
        self.access_ttl = 7200
        super().__init__()

    # -- ids and tokens ---------------------------------------------------------------------
    def next_id(self) -> str:
        return str(next(self._ids))

    def issue_tokens(self, user_id: str | None = None, scopes=ALL_SCOPES) -> dict:
        """Tokens as the token endpoint would return them (also used to skip the browser)."""
        user_id = user_id or self.default_user
        access = "xa-" + secrets.token_urlsafe(24)
        body = {"token_type": "bearer", "expires_in": self.access_ttl, "access_token": access,
                "scope": " ".join(scopes)}
        with self.lock:
            self.access_tokens[access] = {"user": user_id, "scopes": set(scopes),
                                          "expires": time.time() + self.access_ttl}
            if "offline.access" in scopes:
                refresh = "xr-" + secrets.token_urlsafe(24)
                self.refresh_tokens[refresh] = {"user": user_id, "scopes": tuple(scopes)}
                body["refresh_token"] = refresh
        return body

    def expire(self, access_token: str) -> None:
        with self.lock:
            self.access_tokens[access_token]["expires"] = time.time() - 1

    def add_tweet(self, text: str, *, user_id: str | None = None,
                  created_at: datetime | None = None) -> Tweet:
        tweet = Tweet(self.next_id(), _as_x_stores(text, False), user_id or self.default_user,
                      created_at or datetime.now(timezone.utc), original=text)
        with self.lock:
            self.tweets[tweet.id] = tweet
        return tweet

    def rate_limited(self, path: str, reset: int, *, method: str | None = None,
                     times: int = 1) -> None:
        """The observed 429: problem JSON plus `x-rate-limit-reset` (epoch seconds)."""
        self.fail(path, method=method, status=429, times=times,
                  json={"title": "Too Many Requests", "type": "about:blank", "status": 429,
                        "detail": "Too Many Requests"},
                  headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                           "x-rate-limit-reset": str(reset)})

    def usage_capped(self, path: str, period: str = "Monthly", *, reset: int | None = None) -> None:
        headers = {"x-rate-limit-reset": str(reset)} if reset else {}
        self.fail(path, status=429, headers=headers, json={
            "title": "UsageCapExceeded", "type": PROBLEMS + "usage-capped", "status": 429,
            "period": period, "scope": "Product",
            "detail": f"Usage cap exceeded: {period} product cap"})

    # -- routes -------------------------------------------------------------------------------
    def build(self, app: Flask) -> None:
        SpecCheck("x-openapi.json").install(self, off_spec={
            ("GET", "/i/oauth2/authorize"): None,       # a browser page: errors render for people
            ("POST", "/2/oauth2/token"): self._check_token_request,
            ("POST", "/2/oauth2/revoke"): self._check_revoke_request,
            ("GET", "/_media/*"): None,
        })
        app.after_request(self._rate_headers)
        app.add_url_rule("/i/oauth2/authorize", "authorize", self._authorize)
        app.add_url_rule("/2/oauth2/token", "token", self._token, methods=["POST"])
        app.add_url_rule("/2/oauth2/revoke", "revoke", self._revoke, methods=["POST"])
        app.add_url_rule("/2/users/me", "me", self._me)
        app.add_url_rule("/2/users/<user_id>/tweets", "timeline", self._timeline)
        app.add_url_rule("/2/tweets", "create", self._create, methods=["POST"])
        app.add_url_rule("/2/tweets/<tweet_id>", "tweet", self._tweet, methods=["GET", "DELETE"])
        app.add_url_rule("/2/media/upload", "upload", self._upload, methods=["GET", "POST"])
        app.add_url_rule("/2/media/upload/initialize", "initialize", self._initialize,
                         methods=["POST"])
        app.add_url_rule("/2/media/upload/<media_id>/append", "append", self._append,
                         methods=["POST"])
        app.add_url_rule("/2/media/upload/<media_id>/finalize", "finalize", self._finalize,
                         methods=["POST"])
        app.add_url_rule("/2/media/metadata", "metadata", self._metadata, methods=["POST"])

    def _rate_headers(self, response):
        if request.path.startswith("/2/") and "oauth2" not in request.path:
            reset = str(int(time.time()) + 900)
            for key, value in (("x-rate-limit-limit", "900"), ("x-rate-limit-remaining", "899"),
                               ("x-rate-limit-reset", reset)):
                response.headers.setdefault(key, value)
            if request.path == "/2/tweets" and request.method == "POST":
                for key, value in (("x-user-limit-24hour-limit", "100"),
                                   ("x-user-limit-24hour-remaining", "99"),
                                   ("x-user-limit-24hour-reset", str(int(time.time()) + 86400))):
                    response.headers.setdefault(key, value)
        return response

    @staticmethod
    def problem(status: int, title: str, detail: str, kind: str = "about:blank", **extra):
        body = {"title": title, "detail": detail, "type": kind if kind == "about:blank"
                else PROBLEMS + kind, "status": status, **extra}
        return Response(jsonify(body).get_data(), status=status,
                        content_type="application/problem+json")

    # -- OAuth (not in XSPEC: checked against XDOCS) --------------------------------------------
    def _authorize(self):
        args = request.args
        missing = [k for k in ("response_type", "client_id", "redirect_uri", "scope", "state",
                               "code_challenge", "code_challenge_method") if not args.get(k)]
        if missing or args["response_type"] != "code" or args["client_id"] != self.client_id \
                or args["code_challenge_method"] not in ("S256", "plain") \
                or len(args["state"]) > 500:
            return Response(f"Something went wrong. Missing or bad: {missing or 'parameters'}",
                            status=400, content_type="text/plain")
        scopes = tuple(args["scope"].split(" "))
        unknown = set(scopes) - set(ALL_SCOPES) - {"like.read", "like.write", "follows.read"}
        if unknown:
            return Response(f"Unknown scope: {sorted(unknown)}", status=400)
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {"redirect_uri": args["redirect_uri"], "scopes": scopes,
                                "challenge": args["code_challenge"],
                                "method": args["code_challenge_method"],
                                "user": self.default_user, "expires": time.time() + 30}
        return redirect(_with_query(args["redirect_uri"], state=args["state"], code=code))

    def _client_problems(self) -> list[str]:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            return []
        if self.client_secret:
            return []   # the handler answers the observed 401 unauthorized_client
        return [] if request.form.get("client_id") else ["public client must send client_id"]

    def _check_token_request(self) -> list[str]:
        problems = []
        if request.mimetype != "application/x-www-form-urlencoded":
            problems.append("token request must be application/x-www-form-urlencoded")
        form = request.form
        grant = form.get("grant_type")
        required = {"authorization_code": ("code", "redirect_uri", "code_verifier"),
                    "refresh_token": ("refresh_token",)}.get(grant)
        if required is None:
            return problems + [f"unsupported grant_type {grant!r}"]
        problems += [f"missing {name}" for name in required if not form.get(name)]
        return problems + self._client_problems()

    def _check_revoke_request(self) -> list[str]:
        problems = [] if request.form.get("token") else ["missing token"]
        if request.mimetype != "application/x-www-form-urlencoded":
            problems.append("revoke request must be application/x-www-form-urlencoded")
        return problems + self._client_problems()

    def _client_ok(self) -> bool:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            return auth[6:] == expected
        return not self.client_secret and request.form.get("client_id") == self.client_id

    @staticmethod
    def _oauth_error(status: int, error: str, description: str):
        return Response(jsonify({"error": error, "error_description": description}).get_data(),
                        status=status, content_type="application/json")

    def _token(self):
        if not self._client_ok():
            return self._oauth_error(401, "unauthorized_client", "Missing valid authorization header")
        form = request.form
        with self.lock:
            if form["grant_type"] == "authorization_code":
                grant = self.codes.pop(form["code"], None)
                if grant is None or grant["expires"] < time.time() \
                        or grant["redirect_uri"] != form["redirect_uri"] \
                        or not _pkce_ok(grant, form["code_verifier"]):
                    return self._oauth_error(400, "invalid_request",
                                             "Value passed for the authorization code was invalid.")
                return jsonify(self.issue_tokens(grant["user"], grant["scopes"]))
            token = form["refresh_token"]
            grant = self.refresh_tokens.pop(token, None)
            if grant is None:
                return self._oauth_error(400, "invalid_grant", "Value passed for the token was invalid.")
            self.used_refresh_tokens.add(token)   # single use: the next refresh must use the new one
            return jsonify(self.issue_tokens(grant["user"], grant["scopes"]))

    def _revoke(self):
        if not self._client_ok():
            return self._oauth_error(401, "unauthorized_client", "Missing valid authorization header")
        token = request.form["token"]
        with self.lock:
            self.access_tokens.pop(token, None)
            self.refresh_tokens.pop(token, None)
            self.revoked.append(token)
        return jsonify({"revoked": True})

    # -- API ------------------------------------------------------------------------------------
    def _user(self, *scopes: str):
        """The authenticated user id, or a Response to return."""
        auth = request.headers.get("Authorization", "")
        grant = self.access_tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if grant is None or grant["expires"] < time.time():
            return None, self.problem(401, "Unauthorized", "Unauthorized")
        if not set(scopes) <= grant["scopes"]:
            return None, self.problem(403, "Forbidden", "You are not permitted to perform this "
                                      "action.", "not-authorized-for-resource")
        return grant["user"], None

    @staticmethod
    def _fields(name: str) -> set[str]:
        return set(filter(None, request.args.get(name, "").split(",")))

    def _user_json(self, user: User) -> dict:
        body = {"id": user.id, "name": user.name, "username": user.username}
        fields = self._fields("user.fields")
        if "profile_image_url" in fields:
            body["profile_image_url"] = user.profile_image_url
        if "public_metrics" in fields:
            # The docs' names (XDOCS, XSPEC-OLD); XSPEC 2.167 says post_count (reference §1.5).
            body["public_metrics"] = {k: getattr(user, k) for k in (
                "followers_count", "following_count", "tweet_count", "listed_count",
                "like_count", "media_count")}
        return body

    def _me(self):
        user_id, error = self._user("users.read", "tweet.read")
        return error or jsonify({"data": self._user_json(self.users[user_id])})

    def _tweet_json(self, tweet: Tweet, viewer: str) -> dict:
        body = {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}
        fields = self._fields("post.fields")
        if "created_at" in fields:
            body["created_at"] = tweet.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if "author_id" in fields:
            body["author_id"] = tweet.author_id
        if "public_metrics" in fields:
            body["public_metrics"] = dict(tweet.metrics)
        if "non_public_metrics" in fields and viewer == tweet.author_id \
                and datetime.now(timezone.utc) - tweet.created_at < timedelta(days=30):
            body["non_public_metrics"] = {"impression_count": tweet.metrics["impression_count"],
                                          "url_link_clicks": 5, "user_profile_clicks": 2,
                                          "engagements": 30}
        return body

    def _timeline(self, user_id):
        viewer, error = self._user("tweet.read", "users.read")
        if error:
            return error
        start = _iso(request.args.get("start_time"))
        end = _iso(request.args.get("end_time"))
        limit = int(request.args.get("max_results", 10))
        offset = int(request.args.get("pagination_token", "0") or 0)
        with self.lock:
            mine = sorted((t for t in self.tweets.values() if t.author_id == user_id
                           and (start is None or t.created_at >= start)
                           and (end is None or t.created_at < end)),
                          key=lambda t: int(t.id), reverse=True)
        page = mine[offset:offset + limit]
        meta = {"result_count": len(page)}
        if page:
            meta.update(newest_id=page[0].id, oldest_id=page[-1].id)
            body = {"data": [self._tweet_json(t, viewer) for t in page], "meta": meta}
        else:
            body = {"meta": meta}          # X leaves `data` out when nothing matched
        if offset + limit < len(mine):
            meta["next_token"] = str(offset + limit)
        return jsonify(body)

    def _tweet(self, tweet_id):
        if request.method == "DELETE":
            user_id, error = self._user("tweet.read", "tweet.write", "users.read")
            if error:
                return error
            with self.lock:
                tweet = self.tweets.get(tweet_id)
                if tweet is None:
                    return self.problem(404, "Not Found Error",
                                        f"Could not find tweet with id: [{tweet_id}].",
                                        "resource-not-found")
                if tweet.author_id != user_id:
                    return self.problem(403, "Forbidden", "You are not allowed to delete this "
                                        "Tweet.", "not-authorized-for-resource")
                del self.tweets[tweet_id]
            return jsonify({"data": {"deleted": True}})
        viewer, error = self._user("tweet.read", "users.read")
        if error:
            return error
        tweet = self.tweets.get(tweet_id)
        if tweet is None:   # single lookups answer 200 with only `errors`
            return jsonify({"errors": [{
                "value": tweet_id, "detail": f"Could not find tweet with id: [{tweet_id}].",
                "title": "Not Found Error", "resource_type": "tweet", "parameter": "id",
                "resource_id": tweet_id, "type": PROBLEMS + "resource-not-found"}]})
        return jsonify({"data": self._tweet_json(tweet, viewer)})

    def _create(self):
        user_id, error = self._user("tweet.read", "tweet.write", "users.read")
        if error:
            return error
        body = request.get_json(silent=True) or {}
        text = body.get("text", "")
        media_ids = (body.get("media") or {}).get("media_ids") or []
        if not text and not media_ids:
            return self.problem(400, "Invalid Request", "One or more parameters to your request "
                                "was invalid.", "invalid-request",
                                errors=[{"message": "text or media is required"}])
        if text and parse_tweet(text).weightedLength > 280:
            return self.problem(400, "Invalid Request", "Your Tweet text is too long.",
                                "invalid-request")
        with self.lock:
            for media_id in media_ids:
                upload = self.uploads.get(media_id)
                if upload is None or upload.owner != user_id or upload.state != "succeeded":
                    return self.problem(400, "Invalid Request", "Your media IDs are invalid.",
                                        "invalid-request")
            if text and any(t.original == text and t.author_id == user_id
                            for t in self.tweets.values()):
                return self.problem(403, "Forbidden", DUPLICATE_DETAIL)
            tweet = Tweet(self.next_id(), _as_x_stores(text, bool(media_ids)), user_id,
                          datetime.now(timezone.utc), list(media_ids), original=text)
            self.tweets[tweet.id] = tweet
        return jsonify({"data": {"id": tweet.id, "text": tweet.text,
                                 "edit_history_tweet_ids": [tweet.id]}}), 201

    # -- media ----------------------------------------------------------------------------------
    def _media_json(self, upload: Upload) -> dict:
        body = {"id": upload.id, "media_key": f"{'7' if upload.media_type.startswith('video') else '3'}_{upload.id}",
                "size": upload.size, "expires_after_secs": 86400}
        if upload.media_type.startswith("image"):
            body["image"] = {"image_type": upload.media_type, "w": 1200, "h": 800}
        elif upload.state != "uploading":
            info = {"state": upload.state}
            if upload.state in ("pending", "in_progress"):
                info.update(check_after_secs=self.check_after_secs,
                            progress_percent=0 if upload.state == "pending" else 50)
            elif upload.state == "succeeded":
                info["progress_percent"] = 100
            body["processing_info"] = info
        return body

    def _upload(self):
        user_id, error = self._user("media.write")
        if error:
            return error
        if request.method == "GET":      # STATUS
            with self.lock:
                upload = self.uploads.get(request.args["media_id"])
                if upload is None or upload.owner != user_id:
                    return self.problem(400, "Invalid Request", "Invalid media_id.",
                                        "invalid-request")
                self._advance(upload)
                return jsonify({"data": self._media_json(upload)})
        data = request.files["media"].read()
        category = request.form["media_category"]
        upload = Upload(self.next_id(), user_id, _sniff(data), category, len(data), {0: data},
                        state="succeeded")
        with self.lock:
            self.uploads[upload.id] = upload
        return jsonify({"data": self._media_json(upload)})

    def _advance(self, upload: Upload) -> None:
        """Each STATUS poll moves processing on: pending → in_progress (N polls) → outcome."""
        if upload.state not in ("pending", "in_progress"):
            return
        upload.polls += 1
        if self.video_outcome == "stuck" or upload.polls <= self.processing_polls:
            upload.state = "in_progress"
        else:
            upload.state = self.video_outcome

    def _initialize(self):
        user_id, error = self._user("media.write")
        if error:
            return error
        body = request.get_json()
        upload = Upload(self.next_id(), user_id, body.get("media_type", "video/mp4"),
                        body.get("media_category", "tweet_video"), body.get("total_bytes"))
        with self.lock:
            self.uploads[upload.id] = upload
        return jsonify({"data": {"id": upload.id, "media_key": f"7_{upload.id}",
                                 "expires_after_secs": 86400}})

    def _append(self, media_id):
        user_id, error = self._user("media.write")
        if error:
            return error
        with self.lock:
            upload = self.uploads.get(media_id)
            if upload is None or upload.owner != user_id or upload.state != "uploading":
                return self.problem(400, "Invalid Request", "Invalid media_id.", "invalid-request")
            upload.segments[int(request.form["segment_index"])] = request.files["media"].read()
        return jsonify({"data": {"expires_at": int(time.time()) + 86400}})

    def _finalize(self, media_id):
        user_id, error = self._user("media.write")
        if error:
            return error
        with self.lock:
            upload = self.uploads.get(media_id)
            if upload is None or upload.owner != user_id:
                return self.problem(400, "Invalid Request", "Invalid media_id.", "invalid-request")
            if upload.total_bytes is not None and upload.size != upload.total_bytes:
                return self.problem(400, "Invalid Request", "File size does not match total_bytes.",
                                    "invalid-request")
            if sorted(upload.segments) != list(range(len(upload.segments))):
                return self.problem(400, "Invalid Request", "Segments are missing.",
                                    "invalid-request")
            upload.state = "pending" if upload.media_type.startswith("video") else "succeeded"
            return jsonify({"data": self._media_json(upload)})

    def _metadata(self):
        user_id, error = self._user("media.write")
        if error:
            return error
        body = request.get_json()
        with self.lock:
            upload = self.uploads.get(body["id"])
            if upload is None or upload.owner != user_id:
                return self.problem(400, "Invalid Request", "Invalid media id.", "invalid-request")
            upload.alt_text = ((body.get("metadata") or {}).get("alt_text") or {}).get("text", "")
        return jsonify({"data": {"associated_metadata": True, "id": upload.id}})


def _as_x_stores(text: str, has_media: bool) -> str:
    """X hands text back HTML-escaped, with every link rewritten to t.co and one more t.co
    link appended for attached media."""
    text = html.escape(text, quote=False)
    text = _URL.sub(lambda _: "https://t.co/" + secrets.token_urlsafe(7)[:10], text)
    if has_media:
        text = f"{text} https://t.co/{secrets.token_urlsafe(7)[:10]}".strip()
    return text


def _pkce_ok(grant: dict, verifier: str) -> bool:
    if grant["method"] == "plain":
        return verifier == grant["challenge"]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii") == grant["challenge"]


def _with_query(url: str, **params) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))


def _iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def _sniff(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"
