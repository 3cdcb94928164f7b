"""Fake Instagram API with Instagram Login (reference §4): www.instagram.com/oauth/authorize,
api.instagram.com/oauth/access_token, graph.instagram.com access_token / refresh_access_token and
the versioned Graph paths, all served from one loopback host.

    fake = InstagramFake().start()
    fake.add_media("cat.jpg", b"...", "image/jpeg")   # URL Instagram "downloads" from
    fake.fail_next_container("Media download has failed")   # ERROR switch
    fake.throttle(f"/{fake.version}/{fake.user_id}/media_publish", code=80002, regain_minutes=7)
"""
from __future__ import annotations

import secrets
import time

from flask import Flask, jsonify, request

from platforms.text import code_points
from tests.fakes.platforms.meta import (SHORT_LIFETIME, GraphError, GraphFake, insight,
                                        metric_names, not_found, pick, stamp)

SCOPES = ("instagram_business_basic", "instagram_business_content_publish",
          "instagram_business_manage_insights")
MEDIA_METRICS = {"views", "reach", "saved", "likes", "comments", "shares", "total_interactions"}
TOTAL_VALUE_METRICS = {"likes", "views", "comments", "shares", "saves", "replies", "reach",
                       "profile_views", "total_interactions", "accounts_engaged"}
TIME_SERIES_METRICS = {"reach", "follower_count"}


class InstagramFake(GraphFake):
    name = "instagram"
    buc_type = "instagram"
    token_prefix = "IGAA"
    default_scopes = SCOPES
    id_base = 17_900_000_000_000_000

    def __init__(self):
        self.user_id = "17841400000000001"         # the professional account id (`user_id`)
        self.app_scoped_id = "26000000000000001"   # what /oauth/access_token calls user_id
        self.profile = {"user_id": self.user_id, "id": self.app_scoped_id,
                        "username": "herald.test", "name": "Herald Test",
                        "profile_picture_url": "https://cdn.example/ig/avatar.jpg",
                        "account_type": "BUSINESS", "followers_count": 1200,
                        "follows_count": 80}
        self.account_insights = {"reach": 640, "follower_count": 3, "likes": 25, "views": 900,
                                 "comments": 4, "shares": 2, "saves": 3, "replies": 1}
        self.media_insights = {"views": 500, "reach": 300, "saved": 7, "likes": 42,
                               "comments": 5, "shares": 3, "total_interactions": 57}
        self.publish_cap = 100                     # posts per rolling 24 h
        super().__init__()
        self.authorizing_user = self.user_id

    def business_id(self) -> str:
        return self.user_id

    def routes(self, app: Flask) -> None:
        app.add_url_rule("/oauth/access_token", "code_exchange", self._code_exchange,
                         methods=["POST"])
        app.add_url_rule("/access_token", "long_lived", self._long_lived)
        app.add_url_rule("/refresh_access_token", "refresh", self._refresh)
        app.add_url_rule(f"/{self.version}/<node>", "node", self._node,
                         methods=["GET", "POST", "DELETE"])
        app.add_url_rule(f"/{self.version}/<node>/<edge>", "edge", self._edge,
                         methods=["GET", "POST"])

    # -- OAuth ----------------------------------------------------------------------------
    def _code_exchange(self):
        """api.instagram.com answers errors in its own older shape, not the Graph envelope."""
        form = request.form.to_dict()
        if form.get("grant_type") != "authorization_code":
            return _ig_error("Invalid grant_type")
        try:
            grant = self.redeem(form)
        except GraphError as exc:
            return _ig_error(exc.body["error"]["message"])
        token = self.issue(grant.user, "short", grant.scopes, SHORT_LIFETIME)
        return jsonify({"access_token": token.value, "user_id": int(self.app_scoped_id),
                        "permissions": ",".join(sorted(grant.scopes))})

    def _long_lived(self):
        args = request.args
        if args.get("grant_type") != "ig_exchange_token" or args.get("client_secret") != self.client_secret:
            raise GraphError(100, "Invalid parameter", type="IGApiException")
        token = self.exchange(args.get("access_token", ""), user_kinds=("short",))
        return jsonify(self.token_answer(token))

    def _refresh(self):
        if request.args.get("grant_type") != "ig_refresh_token":
            raise GraphError(100, "Invalid parameter", type="IGApiException")
        token = self.exchange(request.args.get("access_token", ""), user_kinds=("long",))
        return jsonify(self.token_answer(token))

    # -- nodes ----------------------------------------------------------------------------
    def _node(self, node: str):
        token = self.authenticate()
        node = token.user if node == "me" else node
        fields = request.args.get("fields")
        if request.method == "DELETE":
            # Instagram Login can't delete media (§4.2).
            raise GraphError(100, "Unsupported delete request.", subcode=33)
        if request.method != "GET":
            raise not_found(node)
        if node == self.user_id and token.user == self.user_id:
            return jsonify(pick(self.account(), fields))
        if node in self.containers and self.containers[node].owner == token.user:
            container = self.poll(self.containers[node])
            return jsonify(pick({"id": container.id, "status_code": container.status,
                                 "status": _status_text(container)}, fields))
        if node in self.posts and self.posts[node]["owner"] == token.user:
            return jsonify(pick(self.posts[node], fields))
        raise not_found(node)

    def account(self) -> dict:
        return {**self.profile, "media_count": len(self.posts)}

    def _edge(self, node: str, edge: str):
        token = self.authenticate()
        node = token.user if node == "me" else node
        if node == token.user:
            handler = {("POST", "media"): self._create_container,
                       ("GET", "media"): self._list_media,
                       ("POST", "media_publish"): self._publish,
                       ("GET", "insights"): self._account_insights,
                       ("GET", "content_publishing_limit"): self._publishing_limit,
                       }.get((request.method, edge))
            if handler:
                return handler(token)
        if edge == "insights" and node in self.posts and self.posts[node]["owner"] == token.user:
            names = metric_names(MEDIA_METRICS)
            stats = self.posts[node]["insights"]
            return jsonify({"data": [insight(node, n, stats.get(n, 0)) for n in names]})
        raise not_found(node)

    def _create_container(self, token):
        self.require_scope(token, "instagram_business_content_publish")
        params = self.params()
        params.pop("access_token", None)
        kind = params.get("media_type", "IMAGE")
        if code_points(params.get("caption", "")) > 2200:
            raise GraphError(100, "The caption is too long.", subcode=2207010)
        if kind == "VIDEO" and params.get("is_carousel_item") != "true":
            raise GraphError(100, "The VIDEO media type is no longer supported for single videos; "
                                  "use REELS.", subcode=2207023)
        if kind == "CAROUSEL":
            children = [c for c in params.get("children", "").split(",") if c]
            if not 2 <= len(children) <= 10:
                raise GraphError(100, "The carousel has too little or too many attachments.",
                                 subcode=2207028)
            for child in children:
                found = self.containers.get(child)
                if (found is None or found.owner != token.user or found.status != "FINISHED"
                        or found.params.get("is_carousel_item") != "true"):
                    raise GraphError(100, "Carousel validation failed.", subcode=2207028)
            container = self.new_container(token.user, params)
        elif kind in ("REELS", "VIDEO"):
            if not params.get("video_url"):
                raise GraphError(100, "The parameter video_url is required.")
            container = self.new_container(token.user, params, video=True)
        elif kind in ("IMAGE", "STORIES"):
            if not params.get("image_url"):
                raise GraphError(100, "The parameter image_url is required.")
            container = self.new_container(token.user, params)
        else:
            raise GraphError(100, "Unknown media type.", subcode=2207023)
        return jsonify({"id": container.id})

    def _publish(self, token):
        self.require_scope(token, "instagram_business_content_publish")
        day_ago = time.time() - 86400
        if sum(1 for p in self.posts.values() if p["created_at"] > day_ago) >= self.publish_cap:
            raise GraphError(9, "(#9) Application request limit reached", subcode=2207042,
                             user_msg="You have reached the maximum number of posts that is "
                                      "allowed to be published in 24 hours.")
        container = self.take_for_publish(token.user, self.params().get("creation_id", ""))
        media_id = self.new_id()
        kind = container.params.get("media_type", "IMAGE")
        self.posts[media_id] = {
            "id": media_id, "owner": token.user, "caption": container.params.get("caption", ""),
            "media_type": {"REELS": "VIDEO", "CAROUSEL": "CAROUSEL_ALBUM"}.get(kind, kind),
            "media_product_type": "REELS" if kind == "REELS" else "FEED",
            "permalink": f"https://www.instagram.com/p/{secrets.token_urlsafe(8)}/",
            "timestamp": stamp(time.time()), "created_at": time.time(),
            "username": self.profile["username"], "like_count": self.media_insights["likes"],
            "comments_count": self.media_insights["comments"],
            "container_id": container.id, "insights": dict(self.media_insights)}
        container.status, container.media_id = "PUBLISHED", media_id
        return jsonify({"id": media_id})

    def _list_media(self, token):
        limit = int(request.args.get("limit", 25))
        fields = request.args.get("fields") or "id"
        newest = [p for p in reversed(self.posts.values()) if p["owner"] == token.user][:limit]
        return jsonify({"data": [pick(p, fields) for p in newest], "paging": {}})

    def _account_insights(self, token):
        if request.args.get("period") != "day":
            raise GraphError(100, "(#100) The parameter period is required")
        if request.args.get("metric_type") == "total_value":
            names = metric_names(TOTAL_VALUE_METRICS)
            return jsonify({"data": [insight(token.user, n, self.account_insights.get(n, 0),
                                             period="day", total=True) for n in names]})
        names = metric_names(TIME_SERIES_METRICS | TOTAL_VALUE_METRICS)
        needs_total = [n for n in names if n not in TIME_SERIES_METRICS]
        if needs_total:
            raise GraphError(100, f"(#100) The following metrics ({', '.join(needs_total)}) "
                                  "should be specified with parameter metric_type=total_value")
        return jsonify({"data": [insight(token.user, n, self.account_insights.get(n, 0),
                                         period="day") for n in names]})

    def _publishing_limit(self, token):
        day_ago = time.time() - 86400
        used = sum(1 for p in self.posts.values() if p["created_at"] > day_ago)
        return jsonify({"data": [{"quota_usage": used, "config": {
            "quota_total": self.publish_cap, "quota_duration": 86400}}]})

    # -- test helpers ---------------------------------------------------------------------
    def published_captions(self) -> list[str]:
        return [p["caption"] for p in self.posts.values()]


def _status_text(container) -> str:
    if container.status == "ERROR":
        return f"Error: {container.error}"
    return {"IN_PROGRESS": "In Progress", "FINISHED": "Finished", "PUBLISHED": "Published",
            "EXPIRED": "Expired"}.get(container.status, container.status)


def _ig_error(message: str):
    return jsonify({"error_type": "OAuthException", "code": 400,
                    "error_message": message}), 400
