"""Instagram through the Instagram API with Instagram Login (reference §4).

Instagram Login rather than Facebook Login: the account needn't be linked to a Facebook Page,
and its long-lived token can be refreshed (`ig_refresh_token`) instead of re-authorised.
Publishing is the container flow shared with Threads (platforms.meta.ContainerAdapter).
"""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlencode

from platforms.base import (ACCOUNT_METRICS, POST_METRICS, Capabilities, Checkpoint, Credentials,
                            Identity, Media, Metrics, Permanent, Pkce, Published, PublishRequest,
                            TokenSet)
from platforms.http import utcnow
from platforms.meta import (ContainerAdapter, epoch, insight_values, make_metrics, media_param,
                            token_set)
from platforms.text import code_points

SCOPES = ("instagram_business_basic", "instagram_business_content_publish",
          "instagram_business_manage_insights")
MAX_HASHTAGS, MAX_MENTIONS = 30, 20
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_MENTION = re.compile(r"(?<!\w)@[\w.]+")

ACCOUNT_OFFERED = frozenset({"followers", "following", "posts", "reach", "impressions",
                             "engagement", "likes"})
POST_OFFERED = frozenset({"likes", "comments", "shares", "saves", "views", "reach"})
INSIGHTS_WINDOW = timedelta(days=1)


class InstagramAdapter(ContainerAdapter):
    name = "instagram"
    label = "Instagram"
    default_api_url = "https://graph.instagram.com"
    default_auth_url = "https://www.instagram.com/oauth/authorize"
    # The code exchange is the one call on api.instagram.com. When api_url is overridden (a
    # fake or a proxy) it goes there too, so one setting moves every API call.
    default_token_url = "https://api.instagram.com"
    capabilities = Capabilities(
        text_limit=2200,
        mixed_media=True,                 # carousels may mix images and videos
        counting="characters (Unicode code points); at most 30 hashtags and 20 @-mentions",
        image_mimes=frozenset({"image/jpeg"}),
        video_mimes=frozenset({"video/mp4", "video/quicktime"}),
        max_images=10,                # a carousel takes 2–10 items
        max_videos=1,                 # one reel
        requires_media=True,
        publish_text=False,
        refresh=True,
        rotates_refresh_token=False,  # the access token itself is renewed; the old one stays valid
        idempotency=False,
        reconcile=True,
        delete=False,                 # not offered with Instagram Login (§4.2)
        connect="oauth",
        pkce=False,
        account_metrics=ACCOUNT_OFFERED,
        post_metrics=POST_OFFERED,
    )

    container_edge = "media"
    publish_edge = "media_publish"
    status_fields = "status_code,status"
    status_key = "status_code"
    text_field = "caption"
    recent_fields = "id,caption,permalink,timestamp"

    @property
    def token_url(self) -> str:
        return self.api_url if self.config.api_url else self.default_token_url

    # -- text -----------------------------------------------------------------------------
    def count(self, text: str) -> int:
        return code_points(text)

    def validate(self, text: str, media: list[Media]) -> list[str]:
        problems = super().validate(text, media)
        if len(_HASHTAG.findall(text)) > MAX_HASHTAGS:
            problems.append(f"Instagram allows at most {MAX_HASHTAGS} hashtags.")
        if len(_MENTION.findall(text)) > MAX_MENTIONS:
            problems.append(f"Instagram allows at most {MAX_MENTIONS} @-mentions.")
        return problems

    # -- connect --------------------------------------------------------------------------
    def authorize_url(self, state: str, pkce: Pkce | None = None) -> str:
        # Instagram Login has no PKCE; `pkce` is ignored (state protects the callback).
        query = {"client_id": self.config.client_id, "redirect_uri": self.config.redirect_uri,
                 "response_type": "code", "scope": ",".join(SCOPES), "state": state}
        return f"{self.auth_url}?{urlencode(query)}"

    def exchange_code(self, code: str, pkce: Pkce | None = None) -> TokenSet:
        # Code → short-lived token (1 h). A timeout here had no lasting effect: not ambiguous.
        short = self.parse(self.http.post(f"{self.token_url}/oauth/access_token", data={
            "client_id": self.config.client_id, "client_secret": self.config.client_secret,
            "grant_type": "authorization_code", "redirect_uri": self.config.redirect_uri,
            "code": code}, ambiguous=False))
        if isinstance(short.get("data"), list) and short["data"]:  # newer docs wrap it in data[]
            short = short["data"][0]
        # Short → long-lived (60 days).
        long = self.parse(self.http.get(f"{self.api_url}/access_token", params={
            "grant_type": "ig_exchange_token", "client_secret": self.config.client_secret,
            "access_token": short.get("access_token", "")}))
        granted = short.get("permissions") or SCOPES
        if isinstance(granted, str):
            granted = granted.split(",")
        return token_set(long, scopes=granted, extra={"user_id": str(short.get("user_id", ""))})

    def identity(self, tokens: TokenSet) -> Identity:
        body = self.graph("GET", "me", tokens.access_token, params={
            "fields": "user_id,username,name,profile_picture_url,account_type"})
        return Identity(platform_user_id=str(body.get("user_id") or body.get("id")),
                        handle=body.get("username", ""), display_name=body.get("name", ""),
                        avatar_url=body.get("profile_picture_url", ""),
                        extra={"username": body.get("username", ""),
                               "account_type": body.get("account_type", "")})

    def refresh(self, credentials: Credentials) -> TokenSet:
        """A long-lived token (≥ 24 h old, unexpired) is swapped for a new 60-day one. An
        expired or revoked token (code 190) can't be: InvalidGrant."""
        body = self.refresh_with(lambda: self.parse(self.http.get(
            f"{self.api_url}/refresh_access_token",
            params={"grant_type": "ig_refresh_token", "access_token": credentials.access_token})))
        return token_set(body, scopes=SCOPES, extra={"user_id": credentials.platform_user_id})

    def revoke(self, credentials: Credentials) -> None:
        """Instagram Login offers no revoke endpoint (the person removes the app under
        Settings → Apps and websites). Nothing to call; the caller forgets the token."""

    # -- publish --------------------------------------------------------------------------
    def publish(self, request: PublishRequest, credentials: Credentials,
                checkpoint: Checkpoint = lambda state: None) -> Published:
        if not request.media and not request.state:
            raise Permanent("Instagram needs an image or a video; it can't post text alone.")
        return super().publish(request, credentials, checkpoint)

    def create_container(self, request: PublishRequest, credentials: Credentials, state: dict,
                         checkpoint: Checkpoint, deadline: float) -> str:
        if len(request.media) == 1:
            return self.new_container(credentials, self._item(request.media[0], request.text))
        return self.carousel(request, credentials, state, checkpoint, deadline, "caption")

    @staticmethod
    def _item(item: Media, caption: str | None, child: bool = False) -> dict:
        params = {media_param(item): item.url}
        if item.kind == "video":
            # Single videos are reels (VIDEO is deprecated there); carousel children stay VIDEO.
            params["media_type"] = "VIDEO" if child else "REELS"
        elif item.alt_text:
            params["alt_text"] = item.alt_text
        if child:
            params["is_carousel_item"] = "true"
        if caption is not None:
            params["caption"] = caption
        return params

    def permalink_fields(self) -> str:
        return "id,permalink,timestamp"

    def fallback_url(self, credentials: Credentials) -> str:
        username = credentials.extra.get("username")
        return f"https://www.instagram.com/{username}/" if username else "https://www.instagram.com/"

    def container_failed(self, body: dict, status: str) -> str:
        if status == "EXPIRED":
            return "Instagram let the prepared post expire (containers last 24 h); post it again."
        reason = str(body.get("status") or "").strip() or "it couldn't process the media"
        return f"Instagram couldn't prepare the post: {reason}."

    def delete(self, platform_post_id: str, credentials: Credentials) -> None:
        raise Permanent("Instagram doesn't let apps delete posts (network doesn't offer it); "
                        "delete it in the Instagram app.")

    # -- metrics --------------------------------------------------------------------------
    def account_metrics(self, credentials: Credentials) -> Metrics:
        token, user = credentials.access_token, credentials.platform_user_id
        counts = self.graph("GET", user, token,
                            params={"fields": "followers_count,follows_count,media_count"})
        until = utcnow()
        window = {"period": "day", "since": epoch(until - INSIGHTS_WINDOW), "until": epoch(until)}
        daily = insight_values(self.graph("GET", f"{user}/insights", token, params={
            "metric": "reach,follower_count", **window}))
        totals = insight_values(self.graph("GET", f"{user}/insights", token, params={
            "metric_type": "total_value",
            "metric": "likes,views,comments,shares,saves,replies", **window}))
        interactions = [totals[k] for k in ("likes", "comments", "shares", "saves", "replies")
                        if k in totals]
        values = {
            "followers": counts.get("followers_count"),
            "following": counts.get("follows_count"),
            "posts": counts.get("media_count"),
            "reach": daily.get("reach"),
            # Meta replaced impressions with views in 2025 (§4.3).
            "impressions": totals.get("views"),
            "likes": totals.get("likes"),
            # What Meta calls total interactions.
            "engagement": sum(interactions) if interactions else None,
        }
        return make_metrics(values, ACCOUNT_METRICS, ACCOUNT_OFFERED, extra={
            "window": "last 24 h", "new_followers": daily.get("follower_count"), **totals})

    def post_metrics(self, platform_post_id: str, credentials: Credentials) -> Metrics:
        found = insight_values(self.graph("GET", f"{platform_post_id}/insights",
                                          credentials.access_token,
                                          params={"metric": "views,reach,saved,likes,comments,shares"}))
        values = {"likes": found.get("likes"), "comments": found.get("comments"),
                  "shares": found.get("shares"), "saves": found.get("saved"),
                  "views": found.get("views"), "reach": found.get("reach")}
        return make_metrics(values, POST_METRICS, POST_OFFERED)
