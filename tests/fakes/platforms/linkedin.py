"""A local LinkedIn following shared/reference/platforms.md §3 (Posts API on /rest).

One server plays both hosts: the OAuth pages (`/oauth/v2/...`, normally www.linkedin.com) and
the API (`/rest/...`, `/v2/userinfo`, normally api.linkedin.com). Point an adapter at it with
`PlatformConfig(api_url=fake.url, auth_url=fake.url + "/oauth/v2")`.

What it enforces: Bearer tokens (401 expired/revoked), `LinkedIn-Version` (400 missing, 426
sunset) and `X-Restli-Protocol-Version: 2.0.0` on /rest, scopes (403 ACCESS_DENIED), the post
author, 422 DUPLICATE_POST for repeated content, the image/video upload flows, media
processing states, programmatic refresh (off by default, as for most apps) with a refresh-token
lifetime that a refresh does not extend.
"""
from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, redirect, request
from werkzeug.serving import make_server

from tests.fakes.server import FakeServer

DAY = 24 * 3600
ACCESS_TTL = 60 * DAY
REFRESH_TTL = 365 * DAY


@dataclass
class Token:
    member: str
    scopes: tuple[str, ...]
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshGrant:
    member: str
    scopes: tuple[str, ...]
    expires_at: float            # fixed at the original grant: refreshing never extends it
    revoked: bool = False


@dataclass
class Post:
    urn: str
    author: str
    commentary: str
    body: dict
    created_at: float
    stats: dict = field(default_factory=dict)


class FakeLinkedIn(FakeServer):
    name = "linkedin"

    def __init__(self, *, client_id: str = "li-client", client_secret: str = "li-secret",
                 member_sub: str = "aBc123", member_name: str = "Ada Lovelace"):
        self.client_id = client_id
        self.client_secret = client_secret
        self.member_sub = member_sub
        self.member_name = member_name
        self.oldest_version = "202511"   # older versions are "sunset" -> 426
        self.newest_version = "202611"   # newer ones don't exist yet -> 426
        self.programmatic_refresh = False
        self.images_readable = True      # False: 403 on GET /rest/images (member tokens, §3.3)
        self.image_processing_polls = 1  # GETs answering PROCESSING after the upload
        self.video_processing_polls = 2
        self.video_part_size = 4 * 1024 * 1024
        self.fail_video_processing = False
        self.deny_authorization = False
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_grants: dict[str, RefreshGrant] = {}
        self.posts: dict[str, Post] = {}
        self.deleted: dict[str, Post] = {}
        self.images: dict[str, dict] = {}
        self.videos: dict[str, dict] = {}
        self._ids = itertools.count(7141138937766391808)
        self._state = threading.RLock()
        super().__init__()

    def start(self) -> "FakeLinkedIn":
        # As FakeServer.start, but serve_forever polls for shutdown every 50 ms instead of
        # werkzeug's 500 ms, which otherwise adds half a second to every test's teardown.
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name=f"fake-{self.name}")
        self._thread.start()
        return self

    # -- helpers for tests ----------------------------------------------------------------
    @property
    def person_urn(self) -> str:
        return f"urn:li:person:{self.member_sub}"

    def issue_token(self, scopes=("openid", "profile", "w_member_social", "r_member_postAnalytics"),
                    *, refresh: bool | None = None) -> dict:
        """Tokens as if the member had just connected (skips the browser dance)."""
        with self._state:
            return self._grant(tuple(scopes), refresh=self.programmatic_refresh
                               if refresh is None else refresh)

    def expire(self, access_token: str) -> None:
        self.tokens[access_token].expires_at = time.time() - 1

    def set_stats(self, urn: str, **stats: int) -> None:
        """stats keyed by queryType: IMPRESSION=…, MEMBERS_REACHED=…, REACTION=…, …"""
        self.posts[urn].stats.update(stats)

    # -- plumbing -------------------------------------------------------------------------
    def _grant(self, scopes: tuple[str, ...], *, refresh: bool) -> dict:
        access = "li-at-" + secrets.token_urlsafe(16)
        now = time.time()
        self.tokens[access] = Token(self.member_sub, scopes, now + ACCESS_TTL)
        body = {"access_token": access, "expires_in": ACCESS_TTL, "scope": ",".join(scopes)}
        if refresh:
            rt = "li-rt-" + secrets.token_urlsafe(16)
            self.refresh_grants[rt] = RefreshGrant(self.member_sub, scopes, now + REFRESH_TTL)
            body.update(refresh_token=rt, refresh_token_expires_in=REFRESH_TTL)
        return body

    def _client_ok(self, form) -> bool:
        return (form.get("client_id") == self.client_id
                and form.get("client_secret") == self.client_secret)

    @staticmethod
    def _err(status: int, message: str, code: str | None = None, service_code: int = 100,
             **extra) -> Response:
        body = {"status": status, "serviceErrorCode": service_code, "message": message, **extra}
        if code:
            body["code"] = code
        response = jsonify(body)
        response.status_code = status
        return response

    @staticmethod
    def _oauth_err(status: int, error: str, description: str) -> Response:
        response = jsonify({"error": error, "error_description": description})
        response.status_code = status
        return response

    def _auth(self, scope: str | None = None):
        """(token, None) when the Bearer token is good, else (None, error response)."""
        header = request.headers.get("Authorization", "")
        token = self.tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if token is None:
            return None, self._err(401, "Invalid access token", "INVALID_ACCESS_TOKEN", 65600)
        if token.revoked:
            return None, self._err(401, "The token used in the request has been revoked by the "
                                        "user", "REVOKED_ACCESS_TOKEN", 65601)
        if token.expires_at < time.time():
            return None, self._err(401, "The token used in the request has expired",
                                   "EXPIRED_ACCESS_TOKEN", 65602)
        if scope and scope not in token.scopes:
            return None, self._err(403, f"Not enough permissions to access: {request.path}",
                                   "ACCESS_DENIED")
        return token, None

    def _rest(self, scope: str | None = None):
        """Checks for every /rest call: version headers first, then the token."""
        version = request.headers.get("LinkedIn-Version")
        if not version:
            return None, self._err(400, "A version must be present. Please specify a version "
                                        "by adding the LinkedIn-Version header.",
                                   "VERSION_MISSING")
        if not (version.isdigit() and len(version) == 6
                and self.oldest_version <= version <= self.newest_version):
            return None, self._err(426, f"Requested version {version} is not active",
                                   "NONEXISTENT_VERSION")
        if request.headers.get("X-Restli-Protocol-Version") != "2.0.0":
            return None, self._err(400, "X-Restli-Protocol-Version 2.0.0 is required",
                                   "ILLEGAL_ARGUMENT")
        return self._auth(scope)

    # -- routes ---------------------------------------------------------------------------
    def build(self, app: Flask) -> None:
        app.add_url_rule("/oauth/v2/authorization", view_func=self.authorization)
        app.add_url_rule("/oauth/v2/accessToken", view_func=self.access_token, methods=["POST"])
        app.add_url_rule("/oauth/v2/revoke", view_func=self.revoke, methods=["POST"])
        app.add_url_rule("/v2/userinfo", view_func=self.userinfo)
        app.add_url_rule("/rest/posts", view_func=self.create_post, methods=["POST"])
        app.add_url_rule("/rest/posts/<path:urn>", view_func=self.post_item,
                         methods=["GET", "DELETE"])
        app.add_url_rule("/rest/images", view_func=self.images_action, methods=["POST"])
        app.add_url_rule("/rest/images/<path:urn>", view_func=self.get_image)
        app.add_url_rule("/rest/videos", view_func=self.videos_action, methods=["POST"])
        app.add_url_rule("/rest/videos/<path:urn>", view_func=self.get_video)
        app.add_url_rule("/_upload/image/<upload_id>", view_func=self.upload_image,
                         methods=["PUT"])
        app.add_url_rule("/_upload/video/<upload_id>/<int:part>", view_func=self.upload_video,
                         methods=["PUT"])
        app.add_url_rule("/rest/memberCreatorPostAnalytics", view_func=self.analytics)

    # OAuth ---------------------------------------------------------------------------------
    def authorization(self):
        args = request.args
        if args.get("client_id") != self.client_id:
            return Response("Invalid client_id", status=400)
        if args.get("response_type") != "code" or not args.get("redirect_uri"):
            return Response("Invalid request", status=400)
        target = args["redirect_uri"]
        joiner = "&" if "?" in target else "?"
        if self.deny_authorization:
            return redirect(target + joiner + urlencode({
                "error": "user_cancelled_authorize",
                "error_description": "The user cancelled the authorization",
                "state": args.get("state", "")}))
        code = "li-code-" + secrets.token_urlsafe(12)
        with self._state:
            self.codes[code] = {"redirect_uri": target,
                                "scopes": tuple(args.get("scope", "").split()),
                                "challenge": args.get("code_challenge")}
        return redirect(target + joiner + urlencode({"code": code, "state": args.get("state", "")}))

    def access_token(self):
        form = request.form
        if not self._client_ok(form):
            return self._oauth_err(401, "invalid_client", "Client authentication failed")
        grant = form.get("grant_type")
        with self._state:
            if grant == "authorization_code":
                issued = self.codes.pop(form.get("code", ""), None)
                if issued is None:
                    return self._oauth_err(400, "invalid_request", "Unable to retrieve access "
                                           "token: appid/redirect uri/code verifier does not "
                                           "match authorization code. Or authorization code "
                                           "expired.")
                if issued["redirect_uri"] != form.get("redirect_uri"):
                    return self._oauth_err(400, "invalid_request", "redirect_uri mismatch")
                return jsonify(self._grant(issued["scopes"], refresh=self.programmatic_refresh))
            if grant == "refresh_token":
                rt = form.get("refresh_token", "")
                record = self.refresh_grants.get(rt)
                if (not self.programmatic_refresh or record is None or record.revoked
                        or record.expires_at < time.time()):
                    return self._oauth_err(400, "invalid_grant", "The provided authorization "
                                           "grant or refresh token is invalid, expired or "
                                           "revoked.")
                access = "li-at-" + secrets.token_urlsafe(16)
                self.tokens[access] = Token(record.member, record.scopes, time.time() + ACCESS_TTL)
                # Same refresh token; its remaining lifetime keeps counting down.
                return jsonify({"access_token": access, "expires_in": ACCESS_TTL,
                                "refresh_token": rt,
                                "refresh_token_expires_in": int(record.expires_at - time.time()),
                                "scope": ",".join(record.scopes)})
        return self._oauth_err(400, "unsupported_grant_type", "Unsupported grant type")

    def revoke(self):
        form = request.form
        if not self._client_ok(form):
            return self._oauth_err(401, "invalid_client", "Client authentication failed")
        with self._state:
            token = self.tokens.get(form.get("token", ""))
            if token is None:
                return self._oauth_err(400, "invalid_request", "Token not found")
            token.revoked = True
            for grant in self.refresh_grants.values():
                if grant.member == token.member:
                    grant.revoked = True
        return Response("", status=200)

    def userinfo(self):
        token, error = self._auth("openid")
        if error:
            return error
        return jsonify({"sub": token.member, "name": self.member_name,
                        "given_name": self.member_name.split()[0],
                        "family_name": self.member_name.split()[-1],
                        "picture": f"https://media.licdn.com/{token.member}.jpg",
                        "locale": {"country": "US", "language": "en"},
                        "email_verified": True})

    # Posts ---------------------------------------------------------------------------------
    def create_post(self):
        token, error = self._rest("w_member_social")
        if error:
            return error
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self._err(400, "Request body must be JSON", "ILLEGAL_ARGUMENT")
        missing = [k for k in ("author", "commentary", "visibility", "distribution",
                               "lifecycleState") if k not in body]
        if missing:
            return self._err(422, f"/{missing[0]} :: field is required", "UNPROCESSABLE_ENTITY")
        if body["author"] != f"urn:li:person:{token.member}":
            return self._err(403, f"Not enough permissions to post as {body['author']}",
                             "ACCESS_DENIED")
        if len(body["commentary"].encode("utf-16-le")) // 2 > 3000:
            return self._err(422, "/commentary :: length exceeds 3000", "UNPROCESSABLE_ENTITY")
        for urn in self._content_urns(body.get("content") or {}):
            store = self.images if ":image:" in urn else self.videos
            item = store.get(urn)
            if item is None or item["status"] not in ("AVAILABLE", "PROCESSING"):
                return self._err(400, f"Media {urn} is not ready", "ILLEGAL_ARGUMENT")
        with self._state:
            for post in self.posts.values():
                if (post.author == body["author"] and post.commentary == body["commentary"]
                        and post.body.get("content") == body.get("content")):
                    return self._err(422, f"Content is a duplicate of {post.urn}",
                                     errorDetailType="com.linkedin.common.error.BadRequest",
                                     errorDetails={"inputErrors": [{
                                         "description": "Duplicate post is detected",
                                         "input": {}, "code": "DUPLICATE_POST"}]})
            urn = f"urn:li:share:{next(self._ids)}"
            self.posts[urn] = Post(urn, body["author"], body["commentary"], body, time.time())
        return Response("", status=201, headers={"x-restli-id": urn})

    @staticmethod
    def _content_urns(content: dict) -> list[str]:
        if "media" in content:
            return [content["media"].get("id", "")]
        if "multiImage" in content:
            return [i.get("id", "") for i in content["multiImage"].get("images", [])]
        return []

    def post_item(self, urn: str):
        token, error = self._rest("w_member_social" if request.method == "DELETE" else None)
        if error:
            return error
        with self._state:
            post = self.posts.get(urn)
            if post is None:
                return self._err(404, f"Post {urn} not found", "NOT_FOUND")
            if request.method == "GET":
                return jsonify({"id": urn, **post.body})
            if post.author != f"urn:li:person:{token.member}":
                return self._err(403, "Not enough permissions to delete", "ACCESS_DENIED")
            self.deleted[urn] = self.posts.pop(urn)
        return Response("", status=204)

    # Media ---------------------------------------------------------------------------------
    def images_action(self):
        token, error = self._rest("w_member_social")
        if error:
            return error
        if request.args.get("action") != "initializeUpload":
            return self._err(400, "Unknown action", "ILLEGAL_ARGUMENT")
        body = request.get_json(silent=True) or {}
        owner = (body.get("initializeUploadRequest") or {}).get("owner")
        if owner != f"urn:li:person:{token.member}":
            return self._err(403, "Not enough permissions for this owner", "ACCESS_DENIED")
        upload_id = secrets.token_hex(6)
        urn = f"urn:li:image:C4E10AQ{upload_id}"
        with self._state:
            self.images[urn] = {"upload_id": upload_id, "status": "WAITING_UPLOAD", "owner": owner,
                                "data": b"", "polls": self.image_processing_polls}
        return jsonify({"value": {"uploadUrlExpiresAt": int(time.time() * 1000) + 3600_000,
                                  "uploadUrl": f"{self.url}/_upload/image/{upload_id}",
                                  "image": urn}})

    def upload_image(self, upload_id: str):
        _, error = self._auth()
        if error:
            return error
        with self._state:
            for item in self.images.values():
                if item["upload_id"] == upload_id:
                    item["data"] = request.get_data()
                    item["status"] = "PROCESSING"
                    return Response("", status=201)
        return Response("", status=404)

    def get_image(self, urn: str):
        _, error = self._rest()
        if error:
            return error
        if not self.images_readable:
            return self._err(403, "Not enough permissions to access: images.GET", "ACCESS_DENIED")
        with self._state:
            item = self.images.get(urn)
            if item is None:
                return self._err(404, "Not found", "NOT_FOUND")
            if item["status"] == "PROCESSING":
                if item["polls"] <= 0:
                    item["status"] = "AVAILABLE"
                item["polls"] -= 1
            return jsonify({"id": urn, "status": item["status"], "owner": item["owner"]})

    def videos_action(self):
        token, error = self._rest("w_member_social")
        if error:
            return error
        body = request.get_json(silent=True) or {}
        action = request.args.get("action")
        if action == "initializeUpload":
            req = body.get("initializeUploadRequest") or {}
            if req.get("owner") != f"urn:li:person:{token.member}":
                return self._err(403, "Not enough permissions for this owner", "ACCESS_DENIED")
            size = int(req.get("fileSizeBytes") or 0)
            if size <= 0:
                return self._err(400, "fileSizeBytes is required", "ILLEGAL_ARGUMENT")
            upload_id = secrets.token_hex(6)
            urn = f"urn:li:video:C5F10AQ{upload_id}"
            parts = []
            for n, first in enumerate(range(0, size, self.video_part_size)):
                last = min(first + self.video_part_size, size) - 1
                parts.append({"uploadUrl": f"{self.url}/_upload/video/{upload_id}/{n}",
                              "firstByte": first, "lastByte": last})
            with self._state:
                self.videos[urn] = {"upload_id": upload_id, "size": size, "parts": {},
                                    "token": "tok-" + upload_id, "status": "WAITING_UPLOAD",
                                    "polls": self.video_processing_polls,
                                    "expected": len(parts)}
            return jsonify({"value": {"uploadUrlsExpireAt": int(time.time() * 1000) + 3600_000,
                                      "video": urn, "uploadInstructions": parts,
                                      "uploadToken": "tok-" + upload_id}})
        if action == "finalizeUpload":
            req = body.get("finalizeUploadRequest") or {}
            with self._state:
                item = self.videos.get(req.get("video", ""))
                if item is None:
                    return self._err(404, "Video not found", "NOT_FOUND")
                etags = [item["parts"].get(n, (None, None))[1] for n in range(item["expected"])]
                if req.get("uploadToken") != item["token"] or req.get("uploadedPartIds") != etags:
                    return self._err(400, "Uploaded part ids don't match", "ILLEGAL_ARGUMENT")
                item["status"] = "PROCESSING"
            return Response("", status=200)
        return self._err(400, "Unknown action", "ILLEGAL_ARGUMENT")

    def upload_video(self, upload_id: str, part: int):
        _, error = self._auth()
        if error:
            return error
        with self._state:
            for item in self.videos.values():
                if item["upload_id"] == upload_id:
                    etag = "etag-" + secrets.token_hex(4)
                    item["parts"][part] = (request.get_data(), etag)
                    return Response("", status=200, headers={"ETag": etag})
        return Response("", status=404)

    def get_video(self, urn: str):
        _, error = self._rest()
        if error:
            return error
        with self._state:
            item = self.videos.get(urn)
            if item is None:
                return self._err(404, "Not found", "NOT_FOUND")
            if item["status"] == "PROCESSING":
                if item["polls"] <= 0:
                    item["status"] = ("PROCESSING_FAILED" if self.fail_video_processing
                                      else "AVAILABLE")
                item["polls"] -= 1
            return jsonify({"id": urn, "status": item["status"]})

    # Analytics -----------------------------------------------------------------------------
    def analytics(self):
        token, error = self._rest("r_member_postAnalytics")
        if error:
            return error
        args = request.args
        query_type = args.get("queryType")
        if query_type not in ("IMPRESSION", "MEMBERS_REACHED", "RESHARE", "REACTION", "COMMENT",
                              "POST_SAVE") or args.get("aggregation") not in ("TOTAL", "DAILY"):
            return self._err(400, "Invalid queryType or aggregation", "ILLEGAL_ARGUMENT")
        author = f"urn:li:person:{token.member}"
        with self._state:
            if args.get("q") == "me":
                count = sum(p.stats.get(query_type, 0) for p in self.posts.values()
                            if p.author == author)
            elif args.get("q") == "entity":
                entity = args.get("entity", "")
                # Rest.li 2.0: entity=(share:urn%3Ali%3Ashare%3A…) — Flask has decoded it.
                if not (entity.startswith("(") and entity.endswith(")") and ":" in entity):
                    return self._err(400, "Invalid entity", "ILLEGAL_ARGUMENT")
                urn = entity[1:-1].split(":", 1)[1]
                post = self.posts.get(urn)
                if post is None or post.author != author:
                    return self._err(404, "Entity not found", "NOT_FOUND")
                count = post.stats.get(query_type, 0)
            else:
                return self._err(400, "Unknown finder", "ILLEGAL_ARGUMENT")
        return jsonify({"paging": {"start": 0, "count": 10, "links": []}, "elements": [{
            "count": count,
            "metricType": {"com.linkedin.adsexternalapi.memberanalytics.v1."
                           "CreatorPostAnalyticsMetricTypeV1": query_type}}]})
