"""Fake Threads API (reference §6): threads.net/oauth/authorize and graph.threads.net
(oauth/access_token, access_token th_exchange_token, refresh_access_token th_refresh_token,
/v1.0/… containers, publish, insights, delete), all on one loopback host.

    fake = ThreadsFake().start()
    fake.fail_next_container("The video could not be processed")   # ERROR switch
    fake.throttle(f"/v1.0/{fake.user_id}/threads_publish", code=4, regain_minutes=5)
"""
from __future__ import annotations

import secrets
import time

from flask import Flask, jsonify, request

from platforms.meta import THREADS_VERSION
from platforms.text import threads_length
from tests.fakes.platforms.meta import (SHORT_LIFETIME, GraphError, GraphFake, insight,
                                        metric_names, missing_permission, not_found, pick, stamp)

SCOPES = ("threads_basic", "threads_content_publish", "threads_manage_insights", "threads_delete")
POST_METRICS = {"views", "likes", "replies", "reposts", "quotes", "shares"}
USER_METRICS = {"views", "likes", "replies", "reposts", "quotes", "clicks", "followers_count",
                "follower_demographics"}


class ThreadsFake(GraphFake):
    name = "threads"
    version = THREADS_VERSION
    buc_type = "threads"
    token_prefix = "THAA"
    default_scopes = SCOPES
    id_base = 18_000_000_000_000_000

    def __init__(self):
        self.user_id = "25000000000000001"
        self.profile = {"id": self.user_id, "username": "herald.threads", "name": "Herald Threads",
                        "threads_profile_picture_url": "https://cdn.example/th/avatar.jpg",
                        "threads_biography": "Posts from Herald"}
        self.account_insights = {"views": 310, "likes": 40, "replies": 6, "reposts": 4,
                                 "quotes": 2, "clicks": 9, "followers_count": 870}
        self.post_insights = {"views": 1000, "likes": 55, "replies": 8, "reposts": 6,
                              "quotes": 1, "shares": 2}
        self.publish_cap = 250
        super().__init__()
        self.authorizing_user = self.user_id

    def business_id(self) -> str:
        return self.user_id

    def routes(self, app: Flask) -> None:
        app.add_url_rule("/oauth/access_token", "code_exchange", self._code_exchange,
                         methods=["POST"])
        app.add_url_rule("/access_token", "long_lived", self._long_lived)
        app.add_url_rule("/refresh_access_token", "refresh", self._refresh)
        app.add_url_rule(f"/{self.version}/<node>", "node", self._node, methods=["GET", "DELETE"])
        app.add_url_rule(f"/{self.version}/<node>/<edge>", "edge", self._edge,
                         methods=["GET", "POST"])

    # -- OAuth ----------------------------------------------------------------------------
    def _code_exchange(self):
        values = self.params()
        if values.get("grant_type") != "authorization_code":
            raise GraphError(100, "Invalid grant_type")
        grant = self.redeem(values)
        token = self.issue(grant.user, "short", grant.scopes, SHORT_LIFETIME)
        return jsonify({"access_token": token.value, "user_id": grant.user})

    def _long_lived(self):
        args = request.args
        if args.get("grant_type") != "th_exchange_token" or args.get("client_secret") != self.client_secret:
            raise GraphError(100, "Invalid parameter")
        token = self.exchange(args.get("access_token", ""), user_kinds=("short",))
        return jsonify(self.token_answer(token))

    def _refresh(self):
        if request.args.get("grant_type") != "th_refresh_token":
            raise GraphError(100, "Invalid parameter")
        token = self.exchange(request.args.get("access_token", ""), user_kinds=("long",))
        return jsonify(self.token_answer(token))

    # -- nodes ----------------------------------------------------------------------------
    def _node(self, node: str):
        token = self.authenticate()
        node = token.user if node == "me" else node
        fields = request.args.get("fields")
        if request.method == "DELETE":
            return self._delete(token, node)
        if node == token.user == self.user_id:
            return jsonify(pick(self.profile, fields))
        if node in self.containers and self.containers[node].owner == token.user:
            container = self.poll(self.containers[node])
            body = {"id": container.id, "status": container.status}
            if container.status == "ERROR":
                body["error_message"] = container.error
            return jsonify(pick(body, fields))
        if node in self.posts and self.posts[node]["owner"] == token.user:
            return jsonify(pick(self.posts[node], fields))
        raise not_found(node)

    def _delete(self, token, node: str):
        if "threads_delete" not in token.scopes:
            raise missing_permission()
        if node not in self.posts or self.posts[node]["owner"] != token.user:
            raise not_found(node)
        del self.posts[node]
        return jsonify({"success": True, "deleted_id": node})

    def _edge(self, node: str, edge: str):
        token = self.authenticate()
        node = token.user if node == "me" else node
        if node == token.user:
            handler = {("POST", "threads"): self._create_container,
                       ("GET", "threads"): self._list,
                       ("POST", "threads_publish"): self._publish,
                       ("GET", "threads_insights"): self._account_insights,
                       ("GET", "threads_publishing_limit"): self._publishing_limit,
                       }.get((request.method, edge))
            if handler:
                return handler(token)
        if edge == "insights" and node in self.posts and self.posts[node]["owner"] == token.user:
            names = metric_names(POST_METRICS)
            stats = self.posts[node]["insights"]
            return jsonify({"data": [insight(node, n, stats.get(n, 0)) for n in names]})
        raise not_found(node)

    def _create_container(self, token):
        self.require_scope(token, "threads_content_publish")
        params = self.params()
        params.pop("access_token", None)
        kind = params.get("media_type")
        if threads_length(params.get("text", "")) > 500:
            raise GraphError(100, "Param text must be at most 500 characters long.")
        if kind == "TEXT":
            if not params.get("text"):
                raise GraphError(100, "Param text is required for TEXT posts.")
        elif kind == "IMAGE":
            if not params.get("image_url"):
                raise GraphError(100, "Param image_url is required for IMAGE posts.")
        elif kind == "VIDEO":
            if not params.get("video_url"):
                raise GraphError(100, "Param video_url is required for VIDEO posts.")
        elif kind == "CAROUSEL":
            children = [c for c in params.get("children", "").split(",") if c]
            if not 2 <= len(children) <= 20:
                raise GraphError(100, "A carousel needs 2 to 20 children.")
            for child in children:
                found = self.containers.get(child)
                if found is None or found.owner != token.user or found.status != "FINISHED":
                    raise GraphError(100, f"Carousel child {child} is not ready.")
        else:
            raise GraphError(100, "Param media_type must be one of TEXT, IMAGE, VIDEO, CAROUSEL.")
        container = self.new_container(token.user, params, video=kind == "VIDEO")
        return jsonify({"id": container.id})

    def _publish(self, token):
        self.require_scope(token, "threads_content_publish")
        container = self.take_for_publish(token.user, self.params().get("creation_id", ""))
        media_id = self.new_id()
        username = self.profile["username"]
        self.posts[media_id] = {
            "id": media_id, "owner": token.user, "text": container.params.get("text", ""),
            "media_type": {"TEXT": "TEXT_POST", "CAROUSEL": "CAROUSEL_ALBUM"}.get(
                container.params["media_type"], container.params["media_type"]),
            "permalink": f"https://www.threads.net/@{username}/post/{secrets.token_urlsafe(8)}",
            "timestamp": stamp(time.time()), "created_at": time.time(), "username": username,
            "container_id": container.id, "insights": dict(self.post_insights)}
        container.status, container.media_id = "PUBLISHED", media_id
        return jsonify({"id": media_id})

    def _list(self, token):
        limit = int(request.args.get("limit", 25))
        since = float(request.args.get("since", 0))
        fields = request.args.get("fields") or "id"
        newest = [p for p in reversed(self.posts.values())
                  if p["owner"] == token.user and p["created_at"] >= since][:limit]
        return jsonify({"data": [pick(p, fields) for p in newest], "paging": {}})

    def _account_insights(self, token):
        self.require_scope(token, "threads_manage_insights")
        names = metric_names(USER_METRICS)
        data = []
        for name in names:
            value = self.account_insights.get(name, 0)
            # `views` is a daily series; the rest are totals (§6.3).
            data.append(insight(token.user, name, value, period="day", total=name != "views"))
        return jsonify({"data": data})

    def _publishing_limit(self, token):
        day_ago = time.time() - 86400
        used = sum(1 for p in self.posts.values() if p["created_at"] > day_ago)
        return jsonify({"data": [{"quota_usage": used, "config": {
            "quota_total": self.publish_cap, "quota_duration": 86400}}]})
