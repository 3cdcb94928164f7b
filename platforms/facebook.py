"""Facebook Pages through the Graph API (reference §5, OAuth as §4.1 Facebook Login).

Tokens: the code gives a short-lived user token, exchanged (`fb_exchange_token`) for a
long-lived (~60 d) one; `/me/accounts` then gives each Page's own token, which does not
expire. So `TokenSet.access_token` is the Page token (everything we do acts as the Page) and
`TokenSet.refresh_token` is the long-lived user token, kept only to derive a Page token again
(`refresh`) and to revoke. Page id and name go in `extra`; no token is put in `extra`.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from platforms.base import (ACCOUNT_METRICS, POST_METRICS, Ambiguous, Capabilities, Checkpoint,
                            Credentials, Identity, InvalidGrant, Lookup, Metrics, Permanent,
                            PlatformError, Pkce, Published, PublishRequest, TokenSet,
                            Transient)
from platforms.http import from_iso, in_seconds, utcnow
from platforms.meta import (GRAPH_VERSION, GraphAdapter, epoch, insight_values, make_metrics,
                            same_text)
from platforms.text import code_points

# Listing Pages, publishing/deleting as a Page, reading its posts, reading insights.
# (business_management is only needed to discover Pages through Business Manager; we use
# /me/accounts, so we don't ask for it.)
SCOPES = ("pages_show_list", "pages_manage_posts", "pages_read_engagement", "read_insights")

ACCOUNT_OFFERED = frozenset({"followers", "likes", "reach", "impressions", "engagement"})
POST_OFFERED = frozenset({"likes", "comments", "shares", "reach"})
INSIGHTS_WINDOW = timedelta(days=1)
WEB = "https://www.facebook.com"


class FacebookAdapter(GraphAdapter):
    name = "facebook"
    label = "Facebook"
    default_api_url = "https://graph.facebook.com"
    default_auth_url = f"https://www.facebook.com/{GRAPH_VERSION}/dialog/oauth"
    capabilities = Capabilities(
        text_limit=63206,             # [U] in the reference; the commonly quoted Page post limit
        counting="characters (Unicode code points)",
        image_mimes=frozenset({"image/jpeg", "image/png", "image/gif"}),
        video_mimes=frozenset({"video/mp4", "video/quicktime"}),
        max_images=10,                # several photos become one post with attached_media
        max_videos=1,
        requires_media=False,
        refresh=True,                 # re-derives the (non-expiring) Page token
        rotates_refresh_token=False,
        idempotency=False,
        reconcile=True,
        delete=True,
        connect="oauth",
        pkce=False,
        account_metrics=ACCOUNT_OFFERED,
        post_metrics=POST_OFFERED,
    )

    def count(self, text: str) -> int:
        return code_points(text)

    # -- connect --------------------------------------------------------------------------
    def authorize_url(self, state: str, pkce: Pkce | None = None) -> str:
        # Facebook Login for a confidential client: state, no PKCE (§4.1).
        query = {"client_id": self.config.client_id, "redirect_uri": self.config.redirect_uri,
                 "state": state, "response_type": "code", "scope": ",".join(SCOPES)}
        return f"{self.auth_url}?{urlencode(query)}"

    def _token_call(self, params: dict) -> dict:
        return self.parse(self.http.get(self.graph_url("oauth/access_token"), params={
            "client_id": self.config.client_id, "client_secret": self.config.client_secret,
            **params}))

    def exchange_code(self, code: str, pkce: Pkce | None = None) -> TokenSet:
        short = self._token_call({"redirect_uri": self.config.redirect_uri, "code": code})
        long = self._token_call({"grant_type": "fb_exchange_token",
                                 "fb_exchange_token": short.get("access_token", "")})
        user_token = long.get("access_token") or ""
        user = self.graph("GET", "me", user_token, params={"fields": "id,name"})
        pages = self._pages(user_token)
        if not pages:
            raise Permanent("Facebook says this account manages no Pages the app may use; "
                            "reconnect and pick a Page.")
        page = pages[0]  # the first Page granted; `extra["pages"]` lets the UI offer the rest
        return TokenSet(
            access_token=page["access_token"], refresh_token=user_token,
            expires_at=None,                                # Page tokens don't expire
            refresh_expires_at=in_seconds(long.get("expires_in")),
            scopes=SCOPES,
            extra={"page_id": str(page["id"]), "page_name": page.get("name", ""),
                   "user_id": str(user.get("id", "")),
                   "pages": [{"id": str(p["id"]), "name": p.get("name", "")} for p in pages]})

    def _pages(self, user_token: str) -> list[dict]:
        body = self.graph("GET", "me/accounts", user_token,
                          params={"fields": "id,name,access_token,picture", "limit": 100})
        return [p for p in body.get("data") or [] if p.get("id") and p.get("access_token")]

    def identity(self, tokens: TokenSet) -> Identity:
        page_id = tokens.extra.get("page_id") or "me"
        body = self.graph("GET", page_id, tokens.access_token,
                          params={"fields": "id,name,username,link,picture"})
        picture = (body.get("picture") or {}).get("data") or {}
        return Identity(platform_user_id=str(body.get("id")),
                        handle=body.get("username") or body.get("name", ""),
                        display_name=body.get("name", ""), avatar_url=picture.get("url", ""),
                        extra={"page_id": str(body.get("id")), "link": body.get("link", ""),
                               "user_id": tokens.extra.get("user_id", "")})

    def refresh(self, credentials: Credentials) -> TokenSet:
        """Page tokens don't expire, so there is no refresh grant: this derives the Page token
        again from the stored long-lived user token (after Facebook invalidated the old one,
        or to switch to another Page in `extra["page_id"]`). A user token that is expired or
        revoked (190), or a Page no longer granted, means reconnecting: InvalidGrant."""
        user_token = credentials.refresh_token
        page_id = credentials.extra.get("page_id") or credentials.platform_user_id
        if not user_token:
            raise InvalidGrant("Facebook needs the account reconnected (no user token stored).")
        pages = self.refresh_with(lambda: self._pages(user_token))
        page = next((p for p in pages if str(p["id"]) == str(page_id)), None)
        if page is None:
            raise InvalidGrant("Facebook no longer lets the app act as this Page; reconnect it.")
        return TokenSet(access_token=page["access_token"], refresh_token=user_token,
                        scopes=SCOPES, extra={**credentials.extra, "page_id": str(page["id"]),
                                              "page_name": page.get("name", "")})

    def revoke(self, credentials: Credentials) -> None:
        """`DELETE /{user-id}/permissions` with the user token removes the app's grant, which
        also invalidates the Page tokens derived from it."""
        user_id = credentials.extra.get("user_id") or "me"
        token = credentials.refresh_token or credentials.access_token
        self.graph("DELETE", f"{user_id}/permissions", token, ambiguous=False)

    # -- publish --------------------------------------------------------------------------
    def publish(self, request: PublishRequest, credentials: Credentials,
                checkpoint: Checkpoint = lambda state: None) -> Published:
        page, token = self._page(credentials), credentials.access_token
        state = dict(request.state)
        if state.get("post_id"):     # an earlier attempt published; only its answer was lost
            return self._published(state["post_id"], token)
        images = [m for m in request.media if m.kind == "image"]
        videos = [m for m in request.media if m.kind == "video"]
        if videos:
            body = self.graph("POST", f"{page}/videos", token, json={
                "file_url": videos[0].url, "description": request.text, "published": True})
            post_id = self._id(body)
        elif len(images) == 1:
            body = self.graph("POST", f"{page}/photos", token, json={
                "url": images[0].url, "caption": request.text, "published": True,
                **({"alt_text_custom": images[0].alt_text} if images[0].alt_text else {})})
            post_id = str(body.get("post_id") or self._id(body))
        else:
            feed = {"message": request.text, "published": True}
            if request.options.get("link"):
                feed["link"] = request.options["link"]
            if images:
                feed["attached_media"] = [{"media_fbid": fbid} for fbid in
                                          self._unpublished_photos(images, page, token, state,
                                                                   checkpoint)]
            body = self.graph("POST", f"{page}/feed", token, json=feed,
                              params={"fields": "id,permalink_url"})   # read-after-write
            post_id = self._id(body)
        state["post_id"] = post_id
        checkpoint(dict(state))
        if body.get("permalink_url"):
            return Published(post_id, self._absolute(body["permalink_url"]))
        return self._published(post_id, token)

    def _unpublished_photos(self, images, page: str, token: str, state: dict,
                            checkpoint: Checkpoint) -> list[str]:
        """Upload each photo unpublished (invisible until the feed post attaches them), with a
        checkpoint after each, so a retry reuses them instead of uploading again."""
        photo_ids = list(state.get("photo_ids") or [])
        for image in images[len(photo_ids):]:
            body = self.graph("POST", f"{page}/photos", token, ambiguous=False,
                              json={"url": image.url, "published": False})
            if not body.get("id"):
                raise Transient("Facebook didn't return a photo id; will try again.")
            photo_ids.append(str(body["id"]))
            state["photo_ids"] = photo_ids
            checkpoint(dict(state))
        return photo_ids

    def _id(self, body: dict) -> str:
        if not body.get("id"):
            raise Ambiguous("Facebook answered without a post id.", detail=str(body)[:200])
        return str(body["id"])

    @staticmethod
    def _page(credentials: Credentials) -> str:
        return str(credentials.extra.get("page_id") or credentials.platform_user_id)

    @staticmethod
    def _absolute(url: str) -> str:
        return f"{WEB}{url}" if url.startswith("/") else url   # video permalinks are relative

    def _published(self, post_id: str, token: str) -> Published:
        # The post is live: a failed permalink lookup must not become an error.
        try:
            body = self.graph("GET", post_id, token, params={"fields": "permalink_url"})
        except PlatformError:
            body = {}
        url = body.get("permalink_url")
        return Published(post_id, self._absolute(url) if url else f"{WEB}/{post_id}")

    def find_published(self, request: PublishRequest, credentials: Credentials,
                       since: datetime) -> Lookup:
        token = credentials.access_token
        if request.state.get("post_id"):
            return Lookup("found", self._published(request.state["post_id"], token),
                          reason="the publish call had answered")
        body = self.graph("GET", f"{self._page(credentials)}/posts", token, params={
            "fields": "id,message,created_time,permalink_url", "since": epoch(since),
            "limit": 25})
        for post in body.get("data") or []:
            if same_text(post.get("message"), request.text):
                url = post.get("permalink_url")
                return Lookup("found", Published(str(post["id"]),
                                                 self._absolute(url) if url else f"{WEB}/{post['id']}",
                                                 from_iso(post.get("created_time"))),
                              reason="a recent Page post has the same text")
        # No idempotency and no container state to ask: absence from the list isn't proof.
        return Lookup("unknown", reason="no recent Page post has this text; check the Page")

    def delete(self, platform_post_id: str, credentials: Credentials) -> None:
        body = self.graph("DELETE", platform_post_id, credentials.access_token)
        if not body.get("success"):
            raise Permanent("Facebook didn't confirm the delete.", detail=str(body)[:200])

    # -- metrics --------------------------------------------------------------------------
    def account_metrics(self, credentials: Credentials) -> Metrics:
        page, token = self._page(credentials), credentials.access_token
        counts = self.graph("GET", page, token, params={"fields": "followers_count,fan_count"})
        until = utcnow()
        found = insight_values(self.graph("GET", f"{page}/insights", token, params={
            "metric": "page_total_media_view_unique,page_media_view,page_post_engagements,"
                      "page_daily_follows",
            "period": "day", "since": epoch(until - INSIGHTS_WINDOW), "until": epoch(until)}))
        values = {"followers": counts.get("followers_count"), "likes": counts.get("fan_count"),
                  "reach": found.get("page_total_media_view_unique"),
                  "impressions": found.get("page_media_view"),   # media views, paid + organic
                  "engagement": found.get("page_post_engagements")}
        return make_metrics(values, ACCOUNT_METRICS, ACCOUNT_OFFERED,
                            extra={"window": "last 24 h",
                                   "new_follows": found.get("page_daily_follows")})

    def post_metrics(self, platform_post_id: str, credentials: Credentials) -> Metrics:
        token = credentials.access_token
        counts_fields = "reactions.summary(total_count),comments.summary(total_count)"
        if "_" not in platform_post_id:
            # A bare id is a video: its node has no `shares` field and no `insights` edge.
            body = self.graph("GET", platform_post_id, token, params={"fields": counts_fields})
            return make_metrics(self._counts(body), POST_METRICS, POST_OFFERED,
                                extra={"kind": "video"})
        body = self.graph("GET", platform_post_id, token,
                          params={"fields": f"{counts_fields},shares"})
        values = self._counts(body)
        values["shares"] = int((body.get("shares") or {}).get("count", 0))  # omitted when 0
        found = insight_values(self.graph("GET", f"{platform_post_id}/insights", token, params={
            "metric": "post_total_media_view_unique,post_reactions_by_type_total,post_clicks"}))
        values["reach"] = found.get("post_total_media_view_unique")
        return make_metrics(values, POST_METRICS, POST_OFFERED,
                            extra={"clicks": found.get("post_clicks")})

    @staticmethod
    def _counts(body: dict) -> dict:
        total = lambda edge: ((body.get(edge) or {}).get("summary") or {}).get("total_count")  # noqa: E731
        return {"likes": total("reactions"), "comments": total("comments")}
