"""Threads API (reference §6): graph.threads.net, its own version (v1.0), its own app id.

Publishing is the container flow shared with Instagram (platforms.meta.ContainerAdapter);
text alone is a TEXT container. There is no refresh token: the long-lived access token is
itself renewed with `th_refresh_token`.
"""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from platforms.base import (ACCOUNT_METRICS, POST_METRICS, Capabilities, Checkpoint, Credentials,
                            Identity, Media, Metrics, Permanent, Pkce, PublishRequest, TokenSet)
from platforms.http import utcnow
from platforms.meta import (THREADS_VERSION, ContainerAdapter, epoch, insight_values,
                            make_metrics, media_param, token_set)
from platforms.text import threads_length

# threads_delete for delete(), threads_manage_insights for metrics.
SCOPES = ("threads_basic", "threads_content_publish", "threads_manage_insights", "threads_delete")

ACCOUNT_OFFERED = frozenset({"followers", "likes", "engagement", "profile_views"})
POST_OFFERED = frozenset({"likes", "comments", "shares", "views"})
INSIGHTS_WINDOW = timedelta(days=1)


class ThreadsAdapter(ContainerAdapter):
    name = "threads"
    label = "Threads"
    api_version = THREADS_VERSION
    default_api_url = "https://graph.threads.net"
    default_auth_url = "https://threads.net/oauth/authorize"
    capabilities = Capabilities(
        text_limit=500,
        mixed_media=True,                 # carousels may mix images and videos
        counting="characters, each emoji counted as its UTF-8 bytes",
        image_mimes=frozenset({"image/jpeg", "image/png"}),
        video_mimes=frozenset({"video/mp4", "video/quicktime"}),
        max_images=20,                # a carousel takes 2–20 items
        max_videos=1,
        requires_media=False,
        refresh=True,
        rotates_refresh_token=False,  # the access token itself is renewed
        idempotency=False,
        reconcile=True,
        delete=True,
        connect="oauth",
        pkce=False,
        account_metrics=ACCOUNT_OFFERED,
        post_metrics=POST_OFFERED,
    )

    container_edge = "threads"
    publish_edge = "threads_publish"
    status_fields = "status,error_message"
    status_key = "status"
    text_field = "text"
    recent_fields = "id,text,permalink,timestamp"

    # -- text -----------------------------------------------------------------------------
    def count(self, text: str) -> int:
        return threads_length(text)

    # -- connect --------------------------------------------------------------------------
    def authorize_url(self, state: str, pkce: Pkce | None = None) -> str:
        # No PKCE on Threads (§6.1); `pkce` is ignored.
        query = {"client_id": self.config.client_id, "redirect_uri": self.config.redirect_uri,
                 "scope": ",".join(SCOPES), "response_type": "code", "state": state}
        return f"{self.auth_url}?{urlencode(query)}"

    def exchange_code(self, code: str, pkce: Pkce | None = None) -> TokenSet:
        short = self.parse(self.http.post(f"{self.api_url}/oauth/access_token", data={
            "client_id": self.config.client_id, "client_secret": self.config.client_secret,
            "code": code, "grant_type": "authorization_code",
            "redirect_uri": self.config.redirect_uri}, ambiguous=False))
        long = self.parse(self.http.get(f"{self.api_url}/access_token", params={
            "grant_type": "th_exchange_token", "client_secret": self.config.client_secret,
            "access_token": short.get("access_token", "")}))
        return token_set(long, scopes=SCOPES, extra={"user_id": str(short.get("user_id", ""))})

    def identity(self, tokens: TokenSet) -> Identity:
        body = self.graph("GET", "me", tokens.access_token, params={
            "fields": "id,username,name,threads_profile_picture_url"})
        return Identity(platform_user_id=str(body.get("id")), handle=body.get("username", ""),
                        display_name=body.get("name") or body.get("username", ""),
                        avatar_url=body.get("threads_profile_picture_url", ""),
                        extra={"username": body.get("username", "")})

    def refresh(self, credentials: Credentials) -> TokenSet:
        """Swap the long-lived token (≥ 24 h old, unexpired) for a new 60-day one; an expired
        one (code 190) can't be renewed: InvalidGrant."""
        body = self.refresh_with(lambda: self.parse(self.http.get(
            f"{self.api_url}/refresh_access_token",
            params={"grant_type": "th_refresh_token", "access_token": credentials.access_token})))
        return token_set(body, scopes=SCOPES, extra={"user_id": credentials.platform_user_id})

    def revoke(self, credentials: Credentials) -> None:
        """Threads offers no revoke endpoint (people remove the app in Threads settings, and
        tokens lapse after 60 days). Nothing to call; the caller forgets the token."""

    # -- publish --------------------------------------------------------------------------
    def create_container(self, request: PublishRequest, credentials: Credentials, state: dict,
                         checkpoint: Checkpoint, deadline: float) -> str:
        if not request.media:
            return self.new_container(credentials, {"media_type": "TEXT", "text": request.text})
        if len(request.media) == 1:
            return self.new_container(credentials, self._item(request.media[0], request.text))
        return self.carousel(request, credentials, state, checkpoint, deadline, "text")

    @staticmethod
    def _item(item: Media, text: str | None, child: bool = False) -> dict:
        params = {"media_type": "VIDEO" if item.kind == "video" else "IMAGE",
                  media_param(item): item.url}
        if item.alt_text:
            params["alt_text"] = item.alt_text
        if child:
            params["is_carousel_item"] = "true"
        if text:
            params["text"] = text
        return params

    def fallback_url(self, credentials: Credentials) -> str:
        username = credentials.extra.get("username")
        return f"https://www.threads.net/@{username}" if username else "https://www.threads.net/"

    def container_failed(self, body: dict, status: str) -> str:
        if status == "EXPIRED":
            return "Threads let the prepared post expire; post it again."
        reason = str(body.get("error_message") or "").strip() or "it couldn't process the media"
        return f"Threads couldn't prepare the post: {reason}."

    def delete(self, platform_post_id: str, credentials: Credentials) -> None:
        body = self.graph("DELETE", platform_post_id, credentials.access_token)
        if not body.get("success"):
            raise Permanent("Threads didn't confirm the delete.", detail=str(body)[:200])

    # -- metrics --------------------------------------------------------------------------
    def account_metrics(self, credentials: Credentials) -> Metrics:
        until = utcnow()
        found = insight_values(self.graph(
            "GET", f"{credentials.platform_user_id}/threads_insights", credentials.access_token,
            params={"metric": "views,likes,replies,reposts,quotes,clicks,followers_count",
                    "since": epoch(until - INSIGHTS_WINDOW), "until": epoch(until)}))
        interactions = [found[k] for k in ("likes", "replies", "reposts", "quotes") if k in found]
        values = {"followers": found.get("followers_count"), "likes": found.get("likes"),
                  # Account-level `views` are views of the profile.
                  "profile_views": found.get("views"),
                  "engagement": sum(interactions) if interactions else None}
        return make_metrics(values, ACCOUNT_METRICS, ACCOUNT_OFFERED,
                            extra={"window": "last 24 h", **found})

    def post_metrics(self, platform_post_id: str, credentials: Credentials) -> Metrics:
        found = insight_values(self.graph(
            "GET", f"{platform_post_id}/insights", credentials.access_token,
            params={"metric": "views,likes,replies,reposts,quotes,shares"}))
        passed_on = [found[k] for k in ("reposts", "shares") if k in found]
        values = {"likes": found.get("likes"), "comments": found.get("replies"),
                  "shares": sum(passed_on) if passed_on else None, "views": found.get("views")}
        return make_metrics(values, POST_METRICS, POST_OFFERED, extra=found)
