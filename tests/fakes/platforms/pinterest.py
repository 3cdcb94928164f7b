"""A local Pinterest API v5 that follows shared/reference/platforms.md §7.

Every request under `/v5` is validated against PSPEC (specs/pinterest-v5-openapi.json) by
`SpecCheck`, including the OAuth token endpoints (which PSPEC does describe, with `basic`
security). The browser authorize page and the S3-style upload URL are outside the spec and
checked by hand. A request that breaks either gets a 400 and lands in `fake.violations`.

What it models:
- OAuth: authorize page → code; `POST /v5/oauth/token` with HTTP Basic; continuous refresh
  tokens that come back new on every refresh. Reusing an old refresh token is refused
  (reference: "store the new one"; single use is this fake's strict reading) and revoke.
- Pins: `POST /v5/pins` (image_url, multiple_image_urls, video_id), `GET /v5/pins/:id`
  (with `pin_metrics`), `GET /v5/pins/:id/analytics`, `DELETE /v5/pins/:id` (204),
  `GET /v5/boards`, `GET /v5/boards/:id/pins`.
- Video: `POST /v5/media` → upload to `upload_url` with every `upload_parameters` field plus
  `file` → `GET /v5/media/:id` goes registered → processing → succeeded (or failed / stuck).
- Account: `GET /v5/user_account`, `GET /v5/user_account/analytics`.
- Errors as `{"code", "message"}`.
"""
from __future__ import annotations

import base64
import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Flask, Response, jsonify, redirect, request

from tests.fakes.platforms.openapi import SpecCheck
from tests.fakes.server import FakeServer

SCOPES = ("boards:read", "boards:write", "pins:read", "pins:write", "user_accounts:read")
ACCESS_TTL = 30 * 24 * 3600
REFRESH_TTL = 60 * 24 * 3600


@dataclass
class Pin:
    id: str
    board_id: str
    owner: str
    media_source: dict
    title: str | None = None
    description: str | None = None
    link: str | None = None
    alt_text: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    lifetime: dict = field(default_factory=lambda: {
        "pin_click": 7, "impression": 240, "clickthrough": 3, "reaction": 10, "comment": 2})
    analytics: dict = field(default_factory=lambda: {
        "IMPRESSION": 200, "SAVE": 20, "PIN_CLICK": 37, "OUTBOUND_CLICK": 20,
        "TOTAL_COMMENTS": 2, "TOTAL_REACTIONS": 9, "VIDEO_MRC_VIEW": 31})

    @property
    def media_type(self) -> str:
        return "video" if self.media_source.get("source_type") == "video_id" else "image"


@dataclass
class Upload:
    media_id: str
    owner: str
    parameters: dict
    status: str = "registered"     # registered → processing → succeeded | failed
    polls: int = 0
    data: bytes = b""


class FakePinterest(FakeServer):
    name = "pinterest"

    def __init__(self, *, client_id: str = "1234567", client_secret: str = "pinterest-secret"):
        self.client_id = client_id
        self.client_secret = client_secret
        self.lock = threading.RLock()
        self._ids = itertools.count(813744226420795884)
        self.account = {"id": "2783136121146311751", "username": "heraldpins",
                        "account_type": "BUSINESS", "business_name": "Herald Pins",
                        "profile_image": "https://i.pinimg.com/600x600_R/42/f5/36/42f5.jpg",
                        "website_url": "https://herald.test", "board_count": 2,
                        "follower_count": 410, "following_count": 77, "pin_count": 339,
                        "monthly_views": 16300}
        self.boards = {"549755885175": {"id": "549755885175", "name": "Launches",
                                        "privacy": "PUBLIC"},
                       "549755885176": {"id": "549755885176", "name": "Drafts",
                                        "privacy": "SECRET"}}
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self.used_refresh_tokens: set[str] = set()
        self.revoked: list[tuple[str, str | None]] = []
        self.pins: dict[str, Pin] = {}
        self.uploads: dict[str, Upload] = {}
        self.processing_polls = 2           # GET /media polls that still say processing
        self.video_outcome = "succeeded"     # or "failed", or "stuck"
        self.analytics_allowed = True        # False: personal account, analytics → 403
        super().__init__()

    @property
    def board_id(self) -> str:
        return next(iter(self.boards))

    # -- helpers for tests ------------------------------------------------------------------
    def next_id(self) -> str:
        return str(next(self._ids))

    def issue_tokens(self, scopes=SCOPES, response_type: str = "authorization_code") -> dict:
        access = "pina_" + secrets.token_urlsafe(24)
        refresh = "pinr_" + secrets.token_urlsafe(24)
        now = int(time.time())
        with self.lock:
            self.access_tokens[access] = {"scopes": set(scopes), "expires": now + ACCESS_TTL}
            self.refresh_tokens[refresh] = {"scopes": tuple(scopes)}
        return {"access_token": access, "refresh_token": refresh, "response_type": response_type,
                "token_type": "bearer", "expires_in": ACCESS_TTL,
                "refresh_token_expires_in": REFRESH_TTL,
                "refresh_token_expires_at": now + REFRESH_TTL, "scope": ",".join(scopes)}

    def expire(self, access_token: str) -> None:
        with self.lock:
            self.access_tokens[access_token]["expires"] = time.time() - 1

    def add_pin(self, description: str, *, board_id: str | None = None, title: str | None = None,
                created_at: datetime | None = None) -> Pin:
        pin = Pin(self.next_id(), board_id or self.board_id, self.account["id"],
                  {"source_type": "image_url", "url": "https://example.com/a.jpg"},
                  title=title, description=description,
                  created_at=created_at or datetime.now(timezone.utc))
        with self.lock:
            self.pins[pin.id] = pin
        return pin

    def rate_limited(self, path: str, *, method: str | None = None, headers: dict | None = None,
                     times: int = 1) -> None:
        self.fail(path, method=method, status=429, times=times, headers=headers or {},
                  json={"code": 8, "message": "You have exceeded your rate limit. Try again later."})

    @staticmethod
    def error(status: int, code: int, message: str):
        return Response(jsonify({"code": code, "message": message}).get_data(), status=status,
                        content_type="application/json")

    # -- routes -------------------------------------------------------------------------------
    def build(self, app: Flask) -> None:
        SpecCheck("pinterest-v5-openapi.json", patches="pinterest", path_prefix="/v5").install(
            self, off_spec={
                ("GET", "/oauth/"): self._check_authorize,
                ("GET", "/oauth"): self._check_authorize,
                ("POST", "/_upload/*"): self._check_upload,
                ("GET", "/_media/*"): None,
            })
        app.add_url_rule("/oauth/", "authorize", self._authorize)
        app.add_url_rule("/oauth", "authorize_bare", self._authorize)
        app.add_url_rule("/_upload/<media_id>", "s3", self._s3_upload, methods=["POST"])
        app.add_url_rule("/v5/oauth/token", "token", self._token, methods=["POST"])
        app.add_url_rule("/v5/oauth/token/revoke", "revoke", self._revoke, methods=["POST"])
        app.add_url_rule("/v5/user_account", "account", self._account)
        app.add_url_rule("/v5/user_account/analytics", "account_analytics",
                         self._account_analytics)
        app.add_url_rule("/v5/boards", "boards", self._boards)
        app.add_url_rule("/v5/boards/<board_id>/pins", "board_pins", self._board_pins)
        app.add_url_rule("/v5/pins", "create", self._create, methods=["POST"])
        app.add_url_rule("/v5/pins/<pin_id>", "pin", self._pin, methods=["GET", "DELETE"])
        app.add_url_rule("/v5/pins/<pin_id>/analytics", "pin_analytics", self._pin_analytics)
        app.add_url_rule("/v5/media", "media", self._register_media, methods=["POST"])
        app.add_url_rule("/v5/media/<media_id>", "media_status", self._media_status)
        app.after_request(self._rate_headers)

    def _rate_headers(self, response):
        # Header names per the reference [U]; adapters must not depend on them.
        if request.path.startswith("/v5/"):
            response.headers.setdefault("x-ratelimit-limit", "1000")
            response.headers.setdefault("x-ratelimit-remaining", "999")
        return response

    # -- OAuth ------------------------------------------------------------------------------------
    def _check_authorize(self) -> list[str]:
        args = request.args
        problems = [f"missing {k}" for k in ("client_id", "redirect_uri", "response_type",
                                             "scope", "state") if not args.get(k)]
        if args.get("response_type", "code") != "code":
            problems.append("response_type must be code")
        scopes = set(args.get("scope", "").split(","))
        if " " in args.get("scope", ""):
            problems.append("Pinterest scopes are comma-separated")
        known = {"boards:read", "boards:write", "pins:read", "pins:write", "user_accounts:read",
                 "boards:read_secret", "boards:write_secret", "pins:read_secret",
                 "pins:write_secret", "user_accounts:write", "ads:read"}
        problems += [f"unknown scope {s!r}" for s in sorted(scopes - known) if s]
        return problems

    def _authorize(self):
        args = request.args
        if args["client_id"] != self.client_id:
            return Response("Invalid client_id", status=400, content_type="text/plain")
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {"redirect_uri": args["redirect_uri"],
                                "scopes": tuple(args["scope"].split(","))}
        return redirect(_with_query(args["redirect_uri"], code=code, state=args["state"]))

    def _client_ok(self) -> bool:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return request.headers.get("Authorization", "") == f"Basic {expected}"

    def _token(self):
        if not self._client_ok():
            return self.error(401, 2, "Authentication failed.")
        form = request.form
        with self.lock:
            if form["grant_type"] == "authorization_code":
                grant = self.codes.pop(form.get("code", ""), None)
                if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                    return self.error(400, 1, "Invalid authorization code or redirect_uri.")
                return jsonify(self.issue_tokens(grant["scopes"]))
            if form["grant_type"] == "refresh_token":
                token = form.get("refresh_token", "")
                grant = self.refresh_tokens.pop(token, None)
                if grant is None:
                    return self.error(400, 1, "invalid_grant: the refresh token is invalid, "
                                              "expired or already used.")
                self.used_refresh_tokens.add(token)
                return jsonify(self.issue_tokens(grant["scopes"], response_type="refresh_token"))
        return self.error(400, 1, "Unsupported grant_type.")

    def _revoke(self):
        if not self._client_ok():
            return self.error(401, 2, "Authentication failed.")
        token = request.form["token"]
        with self.lock:
            self.access_tokens.pop(token, None)
            self.refresh_tokens.pop(token, None)
            self.revoked.append((token, request.form.get("token_type_hint")))
        return Response("", status=200)

    # -- API --------------------------------------------------------------------------------------
    def _auth(self, *scopes: str):
        auth = request.headers.get("Authorization", "")
        grant = self.access_tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if grant is None or grant["expires"] < time.time():
            return self.error(401, 2, "Authentication failed.")
        if not set(scopes) <= grant["scopes"]:
            return self.error(403, 29, "You are not permitted to access that resource.")
        return None

    def _account(self):
        return self._auth("user_accounts:read") or jsonify(self.account)

    def _account_analytics(self):
        error = self._auth("user_accounts:read")
        if error:
            return error
        if not self.analytics_allowed:
            return self.error(403, 403, "Not authorized to access the user account analytics.")
        summary = {"IMPRESSION": 5120, "ENGAGEMENT": 310, "ENGAGEMENT_RATE": 0.06, "SAVE": 88,
                   "PIN_CLICK": 140, "OUTBOUND_CLICK": 52}
        wanted = set(filter(None, request.args.get("metric_types", "").split(",")))
        if wanted:
            summary = {k: v for k, v in summary.items() if k in wanted}
        return jsonify({"all": {"daily_metrics": [], "summary_metrics": summary}})

    def _boards(self):
        return self._auth("boards:read") or jsonify({"items": list(self.boards.values()),
                                                     "bookmark": None})

    def _pin_json(self, pin: Pin, metrics: bool = False) -> dict:
        body = {"id": pin.id, "board_id": pin.board_id, "title": pin.title,
                "description": pin.description, "link": pin.link, "alt_text": pin.alt_text,
                "created_at": pin.created_at.strftime("%Y-%m-%dT%H:%M:%S"),
                "board_owner": {"username": self.account["username"]}, "is_owner": True,
                "media": {"media_type": pin.media_type}, "creative_type": (
                    "VIDEO" if pin.media_type == "video" else "REGULAR")}
        if metrics:
            body["pin_metrics"] = {"90d": {k: pin.lifetime[k] for k in ("pin_click", "impression",
                                                                         "clickthrough")},
                                   "lifetime_metrics": dict(pin.lifetime)}
        return body

    def _board_pins(self, board_id):
        error = self._auth("boards:read", "pins:read")
        if error:
            return error
        if board_id not in self.boards:
            return self.error(404, 404, "Board not found.")
        size = int(request.args.get("page_size", 25))
        offset = int(request.args.get("bookmark") or 0)
        with self.lock:
            pins = sorted((p for p in self.pins.values() if p.board_id == board_id),
                          key=lambda p: int(p.id), reverse=True)
        page = pins[offset:offset + size]
        bookmark = str(offset + size) if offset + size < len(pins) else None
        return jsonify({"items": [self._pin_json(p) for p in page], "bookmark": bookmark})

    def _create(self):
        error = self._auth("boards:read", "boards:write", "pins:read", "pins:write")
        if error:
            return error
        body = request.get_json()
        if body.get("board_id") not in self.boards:
            return self.error(404, 40, "Board not found.")
        source = body.get("media_source") or {}
        kind = source.get("source_type")
        urls = [source.get("url")] if kind == "image_url" else \
            [item.get("url") for item in source.get("items", [])] if kind == "multiple_image_urls" else []
        for url in urls:     # Pinterest pulls the image; a dead URL is the caller's problem
            if url and url.startswith(self.url + "/_media/") and url.rsplit("/", 1)[-1] not in self.media:
                return self.error(400, 1, f"Invalid request: could not fetch image from {url}")
        if kind == "video_id":
            upload = self.uploads.get(source.get("media_id"))
            if upload is None or upload.status != "succeeded":
                return self.error(400, 1, "Invalid request: the video is not ready.")
        elif kind not in ("image_url", "multiple_image_urls"):
            return self.error(400, 1, f"Invalid request: unsupported source_type {kind!r}.")
        pin = Pin(self.next_id(), body["board_id"], self.account["id"], source,
                  title=body.get("title"), description=body.get("description"),
                  link=body.get("link"), alt_text=body.get("alt_text"))
        with self.lock:
            self.pins[pin.id] = pin
        return jsonify(self._pin_json(pin)), 201

    def _pin(self, pin_id):
        if request.method == "DELETE":
            error = self._auth("boards:read", "boards:write", "pins:read", "pins:write")
            if error:
                return error
            with self.lock:
                if self.pins.pop(pin_id, None) is None:
                    return self.error(404, 50, "Pin not found.")
            return Response(status=204)
        error = self._auth("boards:read", "pins:read")
        if error:
            return error
        pin = self.pins.get(pin_id)
        if pin is None:
            return self.error(404, 50, "Pin not found.")
        return jsonify(self._pin_json(pin, metrics=request.args.get("pin_metrics") == "true"))

    def _pin_analytics(self, pin_id):
        error = self._auth("boards:read", "pins:read")
        if error:
            return error
        pin = self.pins.get(pin_id)
        if pin is None:
            return self.error(404, 50, "Pin not found.")
        wanted = request.args["metric_types"].split(",")
        summary = {k: pin.analytics[k] for k in wanted if k in pin.analytics
                   and (k != "VIDEO_MRC_VIEW" or pin.media_type == "video")}
        return jsonify({"all": {"daily_metrics": [], "summary_metrics": summary,
                                "lifetime_metrics": {}}})

    # -- video ------------------------------------------------------------------------------------
    def _register_media(self):
        error = self._auth("pins:read", "pins:write")
        if error:
            return error
        media_id = self.next_id()
        parameters = {"x-amz-date": "20260127T185143Z", "x-amz-signature": secrets.token_hex(16),
                      "x-amz-security-token": secrets.token_urlsafe(12),
                      "x-amz-algorithm": "AWS4-HMAC-SHA256",
                      "key": f"uploads/11/aa/22/3:video:{media_id}", "policy": "eyJleHBpcmF0aW9u",
                      "x-amz-credential": "ASIA6QZJ64OPIKV7FRVX/20260127/us-east-1/s3/aws4_request",
                      "Content-Type": "multipart/form-data"}
        with self.lock:
            self.uploads[media_id] = Upload(media_id, self.account["id"], parameters)
        return jsonify({"media_id": media_id, "media_type": "video",
                        "upload_url": f"{self.url}/_upload/{media_id}",
                        "upload_parameters": parameters}), 201

    def _check_upload(self) -> list[str]:
        """S3 POST policy upload: every upload_parameters field plus `file`, and no token."""
        upload = self.uploads.get(request.path.rsplit("/", 1)[-1])
        if upload is None:
            return ["upload to an unknown media id"]
        problems = []
        if request.headers.get("Authorization"):
            problems.append("the Pinterest token must not be sent to the upload store")
        if request.mimetype != "multipart/form-data":
            problems.append("upload must be multipart/form-data")
        problems += [f"missing upload parameter {k}" for k, v in upload.parameters.items()
                     if request.form.get(k) != v]
        if "file" not in request.files:
            problems.append("missing file part")
        return problems

    def _s3_upload(self, media_id):
        with self.lock:
            upload = self.uploads[media_id]
            upload.data = request.files["file"].read()
            upload.status = "processing"
        return Response(status=204)

    def _media_status(self, media_id):
        error = self._auth("pins:read")
        if error:
            return error
        with self.lock:
            upload = self.uploads.get(media_id)
            if upload is None:
                return self.error(404, 404, "Media not found.")
            if upload.status == "processing":
                upload.polls += 1
                if self.video_outcome != "stuck" and upload.polls > self.processing_polls:
                    upload.status = self.video_outcome
            return jsonify({"media_id": media_id, "media_type": "video", "status": upload.status})


def _with_query(url: str, **params) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))
