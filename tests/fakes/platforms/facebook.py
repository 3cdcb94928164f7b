"""Fake Facebook Login + Pages Graph API (reference §4.1, §5): the dialog/oauth page, the
code → short-lived → long-lived (fb_exchange_token) user tokens, /me/accounts with Page tokens
that don't expire, /{page}/feed|photos|videos|posts|insights, post fields and insights, DELETE of
posts and of /{user}/permissions.

    fake = FacebookFake().start()
    fake.throttle(f"/{fake.version}/{fake.page_id}/feed", code=32, regain_minutes=12)
"""
from __future__ import annotations

import json
import time

from flask import Flask, jsonify, request

from tests.fakes.platforms.meta import (SHORT_LIFETIME, GraphError, GraphFake, insight,
                                        metric_names, not_found, pick, split_fields, stamp)

SCOPES = ("pages_show_list", "pages_manage_posts", "pages_read_engagement", "read_insights")
PAGE_METRICS = {"page_total_media_view_unique", "page_media_view", "page_post_engagements",
                "page_daily_follows", "page_follows"}
POST_METRICS = {"post_total_media_view_unique", "post_reactions_by_type_total", "post_clicks",
                "post_clicks_by_type"}


class FacebookFake(GraphFake):
    name = "facebook"
    authorize_path = "/<version>/dialog/oauth"   # any Graph version, as www.facebook.com does
    buc_type = "pages"
    default_scopes = SCOPES
    id_base = 122_000_000_000_000

    def __init__(self):
        self.user = {"id": "10000000000000001", "name": "Pat Example",
                     "picture": {"data": {"url": "https://cdn.example/fb/pat.jpg"}}}
        self.page_id = "104000000000001"
        self.pages = {
            self.page_id: {"id": self.page_id, "name": "Herald Test Page", "username": "heraldtest",
                           "link": "https://www.facebook.com/heraldtest", "category": "Media",
                           "picture": {"data": {"url": "https://cdn.example/fb/page.jpg"}},
                           "followers_count": 5400, "fan_count": 5100},
            "104000000000002": {"id": "104000000000002", "name": "Other Page", "username": "other",
                                "link": "https://www.facebook.com/other", "category": "Media",
                                "picture": {"data": {"url": "https://cdn.example/fb/other.jpg"}},
                                "followers_count": 10, "fan_count": 9},
        }
        self.photos: dict[str, dict] = {}          # photo id → {"page", "url", "published"}
        self.page_insights = {"page_total_media_view_unique": 700,
                              "page_media_view": {"paid": 150, "organic": 850},
                              "page_post_engagements": 64, "page_daily_follows": 5,
                              "page_follows": 5400}
        self.post_stats = {"reactions": 31, "comments": 7, "shares": 4, "reach": 420,
                           "clicks": 12}
        super().__init__()
        self.authorizing_user = self.user["id"]

    def business_id(self) -> str:
        return self.page_id

    def routes(self, app: Flask) -> None:
        v = self.version
        # Explicit, so it wins over /{v}/<node>/<edge> for this path.
        app.add_url_rule(f"/{v}/dialog/oauth", "authorize_current", self._authorize,
                         methods=["GET", "POST"])
        app.add_url_rule(f"/{v}/oauth/access_token", "access_token", self._access_token)
        app.add_url_rule(f"/{v}/<node>", "node", self._node, methods=["GET", "DELETE"])
        app.add_url_rule(f"/{v}/<node>/<edge>", "edge", self._edge,
                         methods=["GET", "POST", "DELETE"])

    def page_token_for(self, page_id: str | None = None) -> str:
        """A Page token as /me/accounts would give it, for tests that start connected."""
        return self.issue(page_id or self.page_id, "page", SCOPES, None,
                          person=self.user["id"]).value

    # -- OAuth ----------------------------------------------------------------------------
    def _access_token(self):
        values = request.args.to_dict()
        if values.get("grant_type") == "fb_exchange_token":
            if values.get("client_id") != self.client_id or values.get("client_secret") != self.client_secret:
                raise GraphError(101, "Error validating client secret.")
            return jsonify(self.token_answer(self.exchange(values.get("fb_exchange_token", ""))))
        grant = self.redeem(values)
        token = self.issue(grant.user, "short", grant.scopes, SHORT_LIFETIME)
        return jsonify(self.token_answer(token))

    # -- nodes ----------------------------------------------------------------------------
    def _node(self, node: str):
        token = self.authenticate()
        node = token.user if node == "me" else node
        fields = request.args.get("fields")
        if request.method == "DELETE":
            return self._delete(token, node)
        if node == self.user["id"] and token.kind != "page":
            return jsonify(pick(self.user, fields))
        if node in self.pages:
            return jsonify(pick(self.pages[node], fields))
        if node in self.posts:
            return jsonify(self._post_fields(self.posts[node], fields))
        raise not_found(node)

    def _post_fields(self, post: dict, fields: str | None) -> dict:
        names = split_fields(fields) or ["id", "message", "created_time"]
        out = {"id": post["id"]}
        for name in names:
            if name in ("reactions", "comments"):
                count = self.post_stats[name]
                out[name] = {"data": [], "summary": {"total_count": count}}
            elif name == "shares":
                if post["kind"] == "video":
                    raise GraphError(100, "(#100) Tried accessing nonexisting field (shares) on "
                                          "node type (Video)")
                if self.post_stats["shares"]:          # Graph omits `shares` when there are none
                    out["shares"] = {"count": self.post_stats["shares"]}
            elif name in post:
                out[name] = post[name]
        return out

    def _delete(self, token, node: str):
        post = self.posts.get(node)
        if post is None:
            raise not_found(node)
        if token.kind != "page" or token.user != post["page"]:
            raise GraphError(200, "(#200) Permissions error", status=403)
        del self.posts[node]
        return jsonify({"success": True})

    def _edge(self, node: str, edge: str):
        token = self.authenticate()
        node = token.user if node == "me" else node
        method = request.method
        if node == self.user["id"] and token.kind != "page":
            if (method, edge) == ("GET", "accounts"):
                return self._accounts(token)
            if (method, edge) == ("DELETE", "permissions"):
                self.revoke_person(self.user["id"])
                return jsonify({"success": True})
        if node in self.pages:
            handler = {("POST", "feed"): self._feed, ("POST", "photos"): self._photos,
                       ("POST", "videos"): self._videos, ("GET", "posts"): self._list_posts,
                       ("GET", "feed"): self._list_posts, ("GET", "insights"): self._page_insights,
                       }.get((method, edge))
            if handler:
                return handler(token, node)
        if (method, edge) == ("GET", "insights") and node in self.posts:
            return self._post_insights(node)
        raise not_found(node)

    def _accounts(self, token):
        data = []
        for page in self.pages.values():
            page_token = self.issue(page["id"], "page", token.scopes, None, person=token.user)
            data.append({**pick(page, request.args.get("fields") or "id,name"),
                         "access_token": page_token.value, "tasks": ["CREATE_CONTENT", "ANALYZE"]})
        return jsonify({"data": data, "paging": {}})

    def _as_page(self, token, page_id: str) -> None:
        """Publishing needs that Page's own token; a user token gets the real (#200) answer."""
        if token.kind != "page" or token.user != page_id:
            raise GraphError(200, "(#200) If posting to a page, requires both "
                                  "pages_read_engagement and pages_manage_posts as an admin with "
                                  "sufficient administrative permission", status=403)
        if "pages_manage_posts" not in token.scopes:
            raise GraphError(200, "(#200) The user hasn't authorized the application to "
                                  "perform this action", status=403)

    def _new_post(self, page_id: str, kind: str, message: str, **extra) -> dict:
        post_id = f"{page_id}_{self.new_id()}"
        post = {"id": post_id, "page": page_id, "kind": kind, "message": message,
                "created_time": stamp(time.time()), "created_at": time.time(),
                "permalink_url": f"https://www.facebook.com/{page_id}/posts/{post_id.split('_')[1]}",
                **extra}
        self.posts[post_id] = post
        return post

    def _feed(self, token, page_id: str):
        self._as_page(token, page_id)
        values = self.params()
        message, link = values.get("message", ""), values.get("link")
        attached = values.get("attached_media") or []
        if isinstance(attached, str):
            attached = json.loads(attached)
        if not (message or link or attached):
            raise GraphError(100, "(#100) Missing message or attachment")
        last = next((p for p in reversed(self.posts.values())
                     if p["page"] == page_id and p["kind"] == "status"), None)
        if message and last is not None and last["message"] == message and not attached:
            raise GraphError(506, "(#506) Duplicate status message")
        photo_ids = []
        for index, item in enumerate(attached):
            photo = self.photos.get(str(item.get("media_fbid")))
            if photo is None or photo["page"] != page_id or photo["published"]:
                raise GraphError(100, f"(#100) param attached_media[{index}] must be a valid "
                                      "unpublished photo")
            photo["published"] = True
            photo_ids.append(str(item["media_fbid"]))
        post = self._new_post(page_id, "photos" if photo_ids else "status", message,
                              link=link, photo_ids=photo_ids)
        return jsonify(pick(post, request.args.get("fields") or "id"))

    def _photos(self, token, page_id: str):
        self._as_page(token, page_id)
        values = self.params()
        url = values.get("url", "")
        if not url or not self.media_reachable(url):
            raise GraphError(324, "(#324) Missing or invalid image file")
        published = values.get("published", True) not in (False, "false", "0")
        photo_id = self.new_id()
        self.photos[photo_id] = {"page": page_id, "url": url, "published": published}
        if not published:
            return jsonify({"id": photo_id})
        post = self._new_post(page_id, "photo", values.get("caption", ""), photo_ids=[photo_id])
        return jsonify({"id": photo_id, "post_id": post["id"]})

    def _videos(self, token, page_id: str):
        self._as_page(token, page_id)
        values = self.params()
        url = values.get("file_url", "")
        if not url or not self.media_reachable(url):
            raise GraphError(100, "(#100) file_url must be a reachable video", subcode=1363019)
        video_id = self.new_id()
        # A video is its own node (bare id); its permalink_url is relative.
        self.posts[video_id] = {"id": video_id, "page": page_id, "kind": "video",
                                "message": values.get("description", ""),
                                "description": values.get("description", ""),
                                "created_time": stamp(time.time()), "created_at": time.time(),
                                "permalink_url": f"/{page_id}/videos/{video_id}/",
                                "status": {"video_status": "ready"}}
        return jsonify({"id": video_id})

    def _list_posts(self, token, page_id: str):
        since = float(request.args.get("since", 0))
        limit = int(request.args.get("limit", 25))
        fields = request.args.get("fields") or "id,message,created_time"
        newest = [p for p in reversed(self.posts.values())
                  if p["page"] == page_id and p["created_at"] >= since][:limit]
        return jsonify({"data": [pick(p, fields) for p in newest], "paging": {}})

    def _page_insights(self, token, page_id: str):
        if "read_insights" not in token.scopes:
            raise GraphError(10, "(#10) This endpoint requires the 'read_insights' permission",
                             status=403)
        if request.args.get("period") != "day":
            raise GraphError(100, "(#100) The parameter period is required")
        names = metric_names(PAGE_METRICS)
        return jsonify({"data": [insight(page_id, n, self.page_insights.get(n, 0), period="day")
                                 for n in names], "paging": {}})

    def _post_insights(self, node: str):
        post = self.posts[node]
        if post["kind"] == "video":
            raise GraphError(100, "(#100) Tried accessing nonexisting field (insights) on node "
                                  "type (Video)")
        names = metric_names(POST_METRICS)
        values = {"post_total_media_view_unique": self.post_stats["reach"],
                  "post_reactions_by_type_total": {"like": self.post_stats["reactions"] - 1,
                                                   "love": 1},
                  "post_clicks": self.post_stats["clicks"],
                  "post_clicks_by_type": {"link clicks": self.post_stats["clicks"]}}
        return jsonify({"data": [insight(node, n, values[n]) for n in names], "paging": {}})

    # -- test helpers ---------------------------------------------------------------------
    def page_posts(self, page_id: str | None = None) -> list[dict]:
        return [p for p in self.posts.values() if p["page"] == (page_id or self.page_id)]
