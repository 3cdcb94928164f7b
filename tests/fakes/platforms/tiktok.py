"""A local TikTok following shared/reference/platforms.md §2 (Content Posting + Display API).

One server plays both hosts: the Login Kit page (`/v2/auth/authorize/`, normally www.tiktok.com)
and the API (`/v2/...`, normally open.tiktokapis.com), plus the upload host for FILE_UPLOAD.
Point an adapter at it with
`PlatformConfig(api_url=fake.url, auth_url=fake.url + "/v2/auth/authorize/")`.

What it enforces: the v2 envelope on every answer; Bearer tokens and scopes (401
access_token_invalid / scope_not_authorized); refresh-token rotation (the previous refresh token
is refused with invalid_grant once a new one is issued); creator privacy options
(privacy_level_option_mismatch), unaudited clients (SELF_ONLY only), verified pull URLs
(url_ownership_unverified), the daily post cap (spam_risk_too_many_posts), 6 inits per minute per
token (429 rate_limit_exceeded), FILE_UPLOAD chunk rules with Content-Range (206 then 201), and
the status machine PROCESSING_UPLOAD / PROCESSING_DOWNLOAD -> PUBLISH_COMPLETE or FAILED.
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, redirect, request
from werkzeug.serving import make_server

from tests.fakes.server import FakeServer

MB = 1024 * 1024
ACCESS_TTL = 2 * 3600          # the newer doc generation: 2 h access / 180 d refresh, rotated
REFRESH_TTL = 180 * 24 * 3600
BASIC_FIELDS = {"open_id", "union_id", "avatar_url", "avatar_url_100", "avatar_large_url",
                "display_name"}
PROFILE_FIELDS = {"username", "bio_description", "profile_deep_link", "is_verified"}
STATS_FIELDS = {"follower_count", "following_count", "likes_count", "video_count"}
VIDEO_FIELDS = {"id", "title", "create_time", "cover_image_url", "share_url", "like_count",
                "comment_count", "share_count", "view_count", "video_description", "duration"}


@dataclass
class Token:
    open_id: str
    scopes: tuple[str, ...]
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshToken:
    open_id: str
    scopes: tuple[str, ...]
    expires_at: float
    active: bool = True


class FakeTikTok(FakeServer):
    name = "tiktok"

    def __init__(self, *, client_key: str = "tt-client", client_secret: str = "tt-secret",
                 open_id: str = "-000OpenId123", username: str = "herald.demo",
                 display_name: str = "Herald Demo"):
        self.client_key = client_key
        self.client_secret = client_secret
        self.open_id = open_id
        self.username = username
        self.display_name = display_name
        self.privacy_level_options = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS",
                                      "FOLLOWER_OF_CREATOR", "SELF_ONLY"]
        self.comment_disabled = False
        self.duet_disabled = False
        self.stitch_disabled = False
        self.max_video_post_duration_sec = 600
        self.verified_prefixes: list[str] | None = None   # None: this fake's own /_media/ URLs
        self.processing_polls = 2       # status fetches that answer PROCESSING_* before the end
        self.public_id_polls = 0        # further fetches before publicaly_available_post_id shows
        self.next_fail_reason: str | None = None   # the next post ends FAILED with this reason
        self.unaudited = False
        self.daily_post_cap: int | None = None
        self.init_limit_per_minute = 6
        self.deny_authorization = False
        self.refuse_chunks: set[int] = set()   # chunk numbers answered once with 500
        self.stats = {"follower_count": 1200, "following_count": 31, "likes_count": 5400}
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.publishes: dict[str, dict] = {}
        self.videos: dict[str, dict] = {}   # public posts by id (videos and photo posts)
        self._inits: dict[str, list[float]] = {}
        self._ids = itertools.count(7300000000000000001)
        self._pub = itertools.count(1)
        self._state = threading.RLock()
        super().__init__()

    def start(self) -> "FakeTikTok":
        # As FakeServer.start, but serve_forever polls for shutdown every 50 ms instead of
        # werkzeug's 500 ms, which otherwise adds half a second to every test's teardown.
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name=f"fake-{self.name}")
        self._thread.start()
        return self

    # -- helpers for tests ----------------------------------------------------------------
    def issue_token(self, scopes=("user.info.basic", "user.info.profile", "user.info.stats",
                                  "video.publish", "video.list")) -> dict:
        """Tokens as if the creator had just connected (skips the browser dance)."""
        with self._state:
            return self._grant(tuple(scopes))

    def expire(self, access_token: str) -> None:
        self.tokens[access_token].expires_at = time.time() - 1

    def set_video_stats(self, video_id: str, **counts: int) -> None:
        self.videos[video_id].update(counts)

    # -- plumbing -------------------------------------------------------------------------
    def _grant(self, scopes: tuple[str, ...]) -> dict:
        access = "act." + secrets.token_urlsafe(16)
        refresh = "rft." + secrets.token_urlsafe(16)
        now = time.time()
        self.tokens[access] = Token(self.open_id, scopes, now + ACCESS_TTL)
        self.refresh_tokens[refresh] = RefreshToken(self.open_id, scopes, now + REFRESH_TTL)
        return {"access_token": access, "expires_in": ACCESS_TTL, "open_id": self.open_id,
                "refresh_expires_in": REFRESH_TTL, "refresh_token": refresh,
                "scope": ",".join(scopes), "token_type": "Bearer"}

    def _client_ok(self, form) -> bool:
        return (form.get("client_key") == self.client_key
                and form.get("client_secret") == self.client_secret)

    @staticmethod
    def _log_id() -> str:
        return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()

    def _ok(self, data: dict, status: int = 200) -> Response:
        log_id = self._log_id()
        response = jsonify({"data": data, "error": {"code": "ok", "message": "",
                                                    "log_id": log_id}})
        response.status_code = status
        response.headers["x-tt-logid"] = log_id
        return response

    def _fail(self, status: int, code: str, message: str) -> Response:
        log_id = self._log_id()
        response = jsonify({"data": {}, "error": {"code": code, "message": message,
                                                  "log_id": log_id}})
        response.status_code = status
        response.headers["x-tt-logid"] = log_id
        return response

    def _oauth_fail(self, status: int, error: str, description: str) -> Response:
        response = jsonify({"error": error, "error_description": description,
                            "log_id": self._log_id()})
        response.status_code = status
        return response

    def _auth(self, *scopes: str):
        header = request.headers.get("Authorization", "")
        token = self.tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if token is None or token.revoked or token.expires_at < time.time():
            return None, self._fail(401, "access_token_invalid",
                                    "The access token is invalid or not found in the request.")
        for scope in scopes:
            if scope not in token.scopes:
                return None, self._fail(401, "scope_not_authorized",
                                        f"The user did not authorize the scope required for "
                                        f"completing this request ({scope}).")
        return token, None

    def _json_body(self):
        if not (request.content_type or "").startswith("application/json"):
            return None, self._fail(400, "invalid_params", "Content-Type must be application/json")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return None, self._fail(400, "invalid_params", "Request body must be a JSON object")
        return body, None

    def _verified(self, url: str) -> bool:
        prefixes = self.verified_prefixes
        if prefixes is None:
            prefixes = [f"{self.url}/_media/"]
        return any(url.startswith(p) for p in prefixes)

    def _media_for(self, url: str):
        prefix = f"{self.url}/_media/"
        return self.media.get(url[len(prefix):]) if url.startswith(prefix) else None

    def _rate_limited(self, header: str):
        now = time.time()
        recent = [t for t in self._inits.get(header, []) if now - t < 60]
        if len(recent) >= self.init_limit_per_minute:
            self._inits[header] = recent
            return self._fail(429, "rate_limit_exceeded",
                              "API rate limit was exceeded, please try again later.")
        self._inits[header] = recent + [now]
        return None

    def _post_checks(self, token: Token, post_info: dict, title_limit: int):
        privacy = post_info.get("privacy_level")
        if privacy not in self.privacy_level_options:
            return self._fail(403, "privacy_level_option_mismatch",
                              "privacy_level is not one of the creator's privacy_level_options")
        if self.unaudited and privacy != "SELF_ONLY":
            return self._fail(403, "unaudited_client_can_only_post_to_private_accounts",
                              "Unaudited clients can only post to private accounts")
        if len(str(post_info.get("title") or "").encode("utf-16-le")) // 2 > title_limit:
            return self._fail(400, "invalid_params", f"title exceeds {title_limit} characters")
        if self.daily_post_cap is not None:
            today = sum(1 for p in self.publishes.values() if p["open_id"] == token.open_id)
            if today >= self.daily_post_cap:
                return self._fail(403, "spam_risk_too_many_posts",
                                  "The daily post cap from the API has been reached")
        return None

    def _new_publish(self, token: Token, prefix: str, **record) -> str:
        publish_id = f"{prefix}~v2.{next(self._pub)}"
        self.publishes[publish_id] = {
            "open_id": token.open_id, "status": "PROCESSING_UPLOAD", "received": 0,
            "polls_left": self.processing_polls, "public_polls_left": self.public_id_polls,
            "fail_reason": self.next_fail_reason, "video_id": None, "data": b"",
            "created_at": time.time(), **record}
        self.next_fail_reason = None
        return publish_id

    # -- routes ---------------------------------------------------------------------------
    def build(self, app: Flask) -> None:
        app.add_url_rule("/v2/auth/authorize/", view_func=self.authorize, strict_slashes=False)
        app.add_url_rule("/v2/oauth/token/", view_func=self.token, methods=["POST"])
        app.add_url_rule("/v2/oauth/revoke/", view_func=self.revoke, methods=["POST"])
        app.add_url_rule("/v2/user/info/", view_func=self.user_info)
        app.add_url_rule("/v2/post/publish/creator_info/query/", view_func=self.creator_info,
                         methods=["POST"])
        app.add_url_rule("/v2/post/publish/video/init/", view_func=self.video_init,
                         methods=["POST"])
        app.add_url_rule("/v2/post/publish/content/init/", view_func=self.content_init,
                         methods=["POST"])
        app.add_url_rule("/v2/post/publish/status/fetch/", view_func=self.status_fetch,
                         methods=["POST"])
        app.add_url_rule("/upload/video/", view_func=self.upload, methods=["PUT"])
        app.add_url_rule("/v2/video/list/", view_func=self.video_list, methods=["POST"])
        app.add_url_rule("/v2/video/query/", view_func=self.video_query, methods=["POST"])

    # Login Kit -----------------------------------------------------------------------------
    def authorize(self):
        args = request.args
        if args.get("client_key") != self.client_key:
            return Response("client_key is invalid", status=400)
        if args.get("response_type") != "code" or not args.get("redirect_uri") \
                or not args.get("scope"):
            return Response("invalid request", status=400)
        target = args["redirect_uri"]
        joiner = "&" if "?" in target else "?"
        if self.deny_authorization:
            return redirect(target + joiner + urlencode({
                "error": "access_denied", "error_description": "The user denied access",
                "state": args.get("state", "")}))
        scopes = tuple(s for s in args["scope"].split(",") if s)
        code = "code-" + secrets.token_urlsafe(12)
        with self._state:
            self.codes[code] = {"redirect_uri": target, "scopes": scopes,
                                "challenge": args.get("code_challenge")}
        return redirect(target + joiner + urlencode({"code": code, "scopes": ",".join(scopes),
                                                     "state": args.get("state", "")}))

    def token(self):
        form = request.form
        if not self._client_ok(form):
            return self._oauth_fail(401, "invalid_client", "Client key or secret is incorrect.")
        grant = form.get("grant_type")
        with self._state:
            if grant == "authorization_code":
                issued = self.codes.pop(form.get("code", ""), None)
                if issued is None or issued["redirect_uri"] != form.get("redirect_uri"):
                    return self._oauth_fail(400, "invalid_grant",
                                            "Authorization code is expired or invalid.")
                if issued["challenge"]:
                    verifier = form.get("code_verifier", "").encode("ascii")
                    expected = base64.urlsafe_b64encode(
                        hashlib.sha256(verifier).digest()).rstrip(b"=").decode("ascii")
                    if expected != issued["challenge"]:
                        return self._oauth_fail(400, "invalid_request",
                                                "Code verifier or code challenge is invalid.")
                return jsonify(self._grant(issued["scopes"]))
            if grant == "refresh_token":
                old = self.refresh_tokens.get(form.get("refresh_token", ""))
                if old is None or not old.active or old.expires_at < time.time():
                    return self._oauth_fail(400, "invalid_grant",
                                            "Refresh token is invalid or expired.")
                old.active = False   # rotated: the previous refresh token stops working
                body = self._grant(old.scopes)
                self.refresh_tokens[body["refresh_token"]].expires_at = old.expires_at
                body["refresh_expires_in"] = int(old.expires_at - time.time())
                return jsonify(body)
        return self._oauth_fail(400, "unsupported_grant_type", "Grant type is not supported.")

    def revoke(self):
        form = request.form
        if not self._client_ok(form):
            return self._oauth_fail(401, "invalid_client", "Client key or secret is incorrect.")
        with self._state:
            token = self.tokens.get(form.get("token", ""))
            if token is None or token.revoked:
                return self._fail(401, "access_token_invalid", "The access token is invalid.")
            for record in self.tokens.values():
                if record.open_id == token.open_id:
                    record.revoked = True
            for record in self.refresh_tokens.values():
                if record.open_id == token.open_id:
                    record.active = False
        return self._ok({})

    # Display API ---------------------------------------------------------------------------
    def user_info(self):
        fields = [f for f in request.args.get("fields", "").split(",") if f]
        if not fields or set(fields) - BASIC_FIELDS - PROFILE_FIELDS - STATS_FIELDS:
            return self._fail(400, "invalid_params", "fields is missing or invalid")
        needed = ["user.info.basic"]
        if set(fields) & PROFILE_FIELDS:
            needed.append("user.info.profile")
        if set(fields) & STATS_FIELDS:
            needed.append("user.info.stats")
        token, error = self._auth(*needed)
        if error:
            return error
        with self._state:
            user = {"open_id": token.open_id, "union_id": "union-" + token.open_id,
                    "avatar_url": f"https://p16.tiktokcdn.com/{token.open_id}.jpeg",
                    "display_name": self.display_name, "username": self.username,
                    "video_count": len(self.videos), **self.stats}
        return self._ok({"user": {f: user[f] for f in fields if f in user}})

    def video_list(self):
        token, error = self._auth("video.list")
        if error:
            return error
        body, error = self._json_body()
        if error:
            return error
        fields = [f for f in request.args.get("fields", "").split(",") if f in VIDEO_FIELDS]
        max_count = int(body.get("max_count", 10))
        if not fields or not 1 <= max_count <= 20:
            return self._fail(400, "invalid_params", "fields or max_count is invalid")
        cursor = int(body.get("cursor") or 2**62)
        with self._state:
            mine = sorted((v for v in self.videos.values() if v["open_id"] == token.open_id
                           and v["create_time"] * 1000 < cursor),
                          key=lambda v: v["create_time"], reverse=True)
        page = mine[:max_count]
        return self._ok({"videos": [{f: v.get(f) for f in fields} for v in page],
                         "cursor": page[-1]["create_time"] * 1000 if page else 0,
                         "has_more": len(mine) > max_count})

    def video_query(self):
        token, error = self._auth("video.list")
        if error:
            return error
        body, error = self._json_body()
        if error:
            return error
        fields = [f for f in request.args.get("fields", "").split(",") if f in VIDEO_FIELDS]
        ids = ((body.get("filters") or {}).get("video_ids")) or []
        if not fields or not 1 <= len(ids) <= 20:
            return self._fail(400, "invalid_params", "fields or video_ids is invalid")
        with self._state:
            found = [self.videos[i] for i in ids
                     if i in self.videos and self.videos[i]["open_id"] == token.open_id]
        return self._ok({"videos": [{f: v.get(f) for f in fields} for v in found],
                         "cursor": 0, "has_more": False})

    # Content Posting API -------------------------------------------------------------------
    def creator_info(self):
        _, error = self._auth("video.publish")
        if error:
            return error
        return self._ok({
            "creator_avatar_url": f"https://p16.tiktokcdn.com/{self.open_id}.jpeg",
            "creator_username": self.username, "creator_nickname": self.display_name,
            "privacy_level_options": (["SELF_ONLY"] if self.unaudited
                                      else list(self.privacy_level_options)),
            "comment_disabled": self.comment_disabled, "duet_disabled": self.duet_disabled,
            "stitch_disabled": self.stitch_disabled,
            "max_video_post_duration_sec": self.max_video_post_duration_sec})

    def video_init(self):
        token, error = self._auth("video.publish")
        if error:
            return error
        body, error = self._json_body()
        if error:
            return error
        with self._state:
            error = self._rate_limited(request.headers["Authorization"])
            if error:
                return error
            post_info = body.get("post_info") or {}
            source = body.get("source_info") or {}
            error = self._post_checks(token, post_info, 2200)
            if error:
                return error
            if source.get("source") == "PULL_FROM_URL":
                url = str(source.get("video_url") or "")
                if not self._verified(url):
                    return self._fail(403, "url_ownership_unverified",
                                      "The domain or URL prefix of video_url is not verified")
                media = self._media_for(url)
                publish_id = self._new_publish(
                    token, "v_pub_url", kind="video", source="PULL_FROM_URL", size=0,
                    title=post_info.get("title", ""), post_info=post_info,
                    data=media[0] if media else b"", mime=media[1] if media else "",
                    fail_reason=self.next_fail_reason or (None if media else "video_pull_failed"))
                return self._ok({"publish_id": publish_id})
            if source.get("source") == "FILE_UPLOAD":
                size = int(source.get("video_size") or 0)
                chunk = int(source.get("chunk_size") or 0)
                count = int(source.get("total_chunk_count") or 0)
                valid = size > 0 and chunk > 0 and count == size // chunk and 1 <= count <= 1000
                if size < 5 * MB:
                    valid = valid and chunk == size and count == 1
                else:
                    valid = valid and 5 * MB <= chunk <= 64 * MB and \
                        size - (count - 1) * chunk <= 128 * MB
                if not valid:
                    return self._fail(400, "invalid_params",
                                      "video_size, chunk_size and total_chunk_count don't agree")
                upload_id = secrets.token_hex(8)
                publish_id = self._new_publish(
                    token, "v_pub_file", kind="video", source="FILE_UPLOAD", size=size,
                    chunk_size=chunk, chunks=count, upload_id=upload_id,
                    title=post_info.get("title", ""), post_info=post_info, mime="")
                return self._ok({"publish_id": publish_id, "upload_url":
                                 f"{self.url}/upload/video/?upload_id={upload_id}"
                                 f"&upload_token={secrets.token_hex(8)}"})
        return self._fail(400, "invalid_params", "source_info.source is invalid")

    def content_init(self):
        token, error = self._auth("video.publish")
        if error:
            return error
        body, error = self._json_body()
        if error:
            return error
        with self._state:
            error = self._rate_limited(request.headers["Authorization"])
            if error:
                return error
            post_info = body.get("post_info") or {}
            source = body.get("source_info") or {}
            if body.get("media_type") != "PHOTO" or \
                    body.get("post_mode") not in ("DIRECT_POST", "MEDIA_UPLOAD"):
                return self._fail(400, "invalid_params", "media_type or post_mode is invalid")
            error = self._post_checks(token, post_info, 90)
            if error:
                return error
            if len(str(post_info.get("description") or "").encode("utf-16-le")) // 2 > 4000:
                return self._fail(400, "invalid_params", "description exceeds 4000 characters")
            images = source.get("photo_images") or []
            if source.get("source") != "PULL_FROM_URL" or not 1 <= len(images) <= 35 or \
                    not 0 <= int(source.get("photo_cover_index", 0)) < len(images):
                return self._fail(400, "invalid_params", "source_info is invalid")
            if not all(self._verified(u) for u in images):
                return self._fail(403, "url_ownership_unverified",
                                  "The domain or URL prefix of photo_images is not verified")
            found = [self._media_for(u) for u in images]
            reason = None
            if any(m is None for m in found):
                reason = "photo_pull_failed"
            elif any(m[1] not in ("image/jpeg", "image/webp") for m in found):
                reason = "file_format_check_failed"   # PNG isn't accepted
            publish_id = self._new_publish(
                token, "p_pub_url", kind="photo", source="PULL_FROM_URL", size=0,
                title=post_info.get("title", ""), description=post_info.get("description", ""),
                post_info=post_info, fail_reason=self.next_fail_reason or reason)
        return self._ok({"publish_id": publish_id})

    def upload(self):
        upload_id = request.args.get("upload_id", "")
        with self._state:
            record = next((p for p in self.publishes.values()
                           if p.get("upload_id") == upload_id), None)
            if record is None:
                return self._fail(404, "invalid_params", "upload not found")
            if request.content_type not in ("video/mp4", "video/quicktime", "video/webm"):
                return self._fail(400, "invalid_file_upload", "Content-Type is not supported")
            try:
                unit, spec = request.headers["Content-Range"].split(" ", 1)
                span, total = spec.split("/")
                first, last = (int(x) for x in span.split("-"))
            except (KeyError, ValueError):
                return self._fail(400, "invalid_file_upload", "Content-Range is missing or bad")
            data = request.get_data()
            size, chunk = record["size"], record["chunk_size"]
            if first // chunk in self.refuse_chunks:
                self.refuse_chunks.discard(first // chunk)
                return self._fail(500, "internal_error", "Upload failed, please retry")
            is_last = last == size - 1
            if (unit != "bytes" or int(total) != size or first != record["received"]
                    or len(data) != last - first + 1
                    or (not is_last and len(data) != chunk)):
                return self._fail(400, "invalid_file_upload", "Chunk doesn't follow the plan")
            record["data"] += data
            record["received"] = last + 1
            record["mime"] = request.content_type
        return Response("", status=201 if is_last else 206)

    def status_fetch(self):
        token, error = self._auth()
        if error:
            return error
        body, error = self._json_body()
        if error:
            return error
        with self._state:
            record = self.publishes.get(str(body.get("publish_id") or ""))
            if record is None or record["open_id"] != token.open_id:
                return self._fail(400, "invalid_params", "publish_id is invalid")
            data = self._advance(record)
        return self._ok(data)

    def _advance(self, record: dict) -> dict:
        """One status fetch: the post moves one step through its life."""
        uploading = record["source"] == "FILE_UPLOAD" and record["received"] < record["size"]
        if uploading:
            record["status"] = "PROCESSING_UPLOAD"
        elif record["status"] in ("PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD"):
            if record["polls_left"] > 0:
                record["polls_left"] -= 1
                record["status"] = ("PROCESSING_UPLOAD" if record["source"] == "FILE_UPLOAD"
                                    else "PROCESSING_DOWNLOAD")
            elif record["fail_reason"]:
                record["status"] = "FAILED"
            else:
                record["status"] = "PUBLISH_COMPLETE"
                video_id = str(next(self._ids))
                record["video_id"] = video_id
                kind = record["kind"]
                self.videos[video_id] = {
                    "id": video_id, "open_id": record["open_id"], "kind": kind,
                    "title": record["title"], "create_time": int(time.time()),
                    "share_url": f"https://www.tiktok.com/@{self.username}/{kind}/{video_id}",
                    "like_count": 0, "comment_count": 0, "share_count": 0, "view_count": 0}
        data = {"status": record["status"]}
        if record["source"] == "FILE_UPLOAD":
            data["uploaded_bytes"] = record["received"]
        else:
            data["downloaded_bytes"] = len(record["data"])
        if record["status"] == "FAILED":
            data["fail_reason"] = record["fail_reason"]
        if record["status"] == "PUBLISH_COMPLETE":
            if record["public_polls_left"] > 0:   # moderation still running
                record["public_polls_left"] -= 1
                data["publicaly_available_post_id"] = []
            else:
                data["publicaly_available_post_id"] = [int(record["video_id"])]
        return data
