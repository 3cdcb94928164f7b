"""X (Twitter API v2). Contract: shared/reference/platforms.md §1 and specs/x-openapi.json.

- OAuth 2.0 authorization code + PKCE (S256). Access tokens last 2 h; a refresh token comes only
  with `offline.access` and rotates on every refresh (the old one is single-use), so the new
  one is always returned for storage.
- Publishing: media first (one-shot upload for images, initialize/append/finalize + STATUS
  polling for video, the dedicated XSPEC endpoints), then `POST /2/tweets`.
- X has no idempotency key. A create that times out or answers 5xx may still have posted,
  so it is Ambiguous and `find_published` looks the post up in the account's timeline.
- Query field lists use XSPEC's `post.fields` name (XDOCS still says `tweet.fields`); responses
  are read under both the docs' and XSPEC 2.167's metric names (`retweet_count`/`repost_count`,
  `tweet_count`/`post_count`).
"""
from __future__ import annotations

import html
import re
import time
import unicodedata
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import httpx

from platforms.base import (ACCOUNT_METRICS, POST_METRICS, Adapter, Ambiguous, AuthExpired,
                            Capabilities, Checkpoint, Credentials, Identity, InvalidGrant, Lookup,
                            Media, Metrics, Permanent, Pkce, PlatformError, Published,
                            PublishRequest, RateLimited, TokenSet, Transient)
from platforms.http import (excerpt, from_epoch, from_iso, in_seconds, json_or_empty, retry_after,
                            utcnow)
from platforms.text import x_weighted

# publish + media + delete need tweet.read/tweet.write/users.read/media.write; metrics need
# tweet.read/users.read; offline.access is what makes X issue a refresh token at all.
SCOPES = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")
CHUNK_BYTES = 4 * 1024 * 1024             # APPEND segments; segment_index tops out at 999
DUPLICATE_MESSAGE = "X says this post is a duplicate of a recent one."
_URL = re.compile(r"https?://\S+")
_ACCOUNT = {"followers": ("followers_count",), "following": ("following_count",),
            "posts": ("tweet_count", "post_count")}
_POST = {"likes": ("like_count",), "comments": ("reply_count",),
         "shares": ("retweet_count", "repost_count"), "saves": ("bookmark_count",),
         "impressions": ("impression_count",)}


class XAdapter(Adapter):
    name = "x"
    label = "X"
    default_api_url = "https://api.x.com"
    default_auth_url = "https://x.com/i/oauth2/authorize"
    capabilities = Capabilities(
        text_limit=280,
        counting="weighted: links count 23, emoji and CJK count 2 (twitter-text)",
        image_mimes=frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"}),
        video_mimes=frozenset({"video/mp4", "video/quicktime"}),
        max_images=4,
        max_videos=1,
        rotates_refresh_token=True,
        idempotency=False,
        reconcile=True,
        delete=True,
        pkce=True,
        account_metrics=frozenset(_ACCOUNT),
        # X's UI labels impression_count "Views"; it is reported once, as impressions.
        post_metrics=frozenset(_POST),
    )

    def count(self, text: str) -> int:
        return x_weighted(text)

    # -- connect --------------------------------------------------------------------------
    def authorize_url(self, state: str, pkce: Pkce | None = None) -> str:
        if pkce is None:
            raise ValueError("X requires PKCE for the authorization code flow")
        params = {"response_type": "code", "client_id": self.config.client_id,
                  "redirect_uri": self.config.redirect_uri, "scope": " ".join(SCOPES),
                  "state": state, "code_challenge": pkce.challenge,
                  "code_challenge_method": pkce.method}
        # XDOCS: scopes are space-separated and encoded as %20, not '+'.
        return f"{self.auth_url}?{urlencode(params, quote_via=quote)}"

    def exchange_code(self, code: str, pkce: Pkce | None = None) -> TokenSet:
        form = {"code": code, "grant_type": "authorization_code",
                "redirect_uri": self.config.redirect_uri}
        if pkce is not None:
            form["code_verifier"] = pkce.verifier
        response = self._token_call("/2/oauth2/token", form)
        if response.status_code in (400, 401):
            raise self._oauth_error(response, "X refused the sign-in; please connect again.")
        self._raise_for(response)
        return self._token_set(json_or_empty(response))

    def refresh(self, credentials: Credentials) -> TokenSet:
        if not credentials.refresh_token:
            raise InvalidGrant("X gave no refresh token for this account; please reconnect it.")
        response = self._token_call("/2/oauth2/token", {
            "grant_type": "refresh_token", "refresh_token": credentials.refresh_token})
        if response.status_code in (400, 401):
            raise self._oauth_error(response, "X refused the refresh token; please reconnect "
                                              "the account.", refreshing=True)
        self._raise_for(response)
        tokens = self._token_set(json_or_empty(response))
        # X rotates on every refresh; keeping the old one is only a fallback if it ever doesn't.
        tokens.refresh_token = tokens.refresh_token or credentials.refresh_token
        return tokens

    def revoke(self, credentials: Credentials) -> None:
        for token in (credentials.refresh_token, credentials.access_token):
            if not token:
                continue
            response = self._token_call("/2/oauth2/revoke", {"token": token})
            if response.status_code == 400:
                continue        # already invalid: that is what revoking wanted
            if response.status_code == 401:
                raise self._oauth_error(response, "X refused to revoke the token.")
            self._raise_for(response)

    def identity(self, tokens: TokenSet) -> Identity:
        response = self.http.get(f"{self.api_url}/2/users/me",
                                 params={"user.fields": "profile_image_url"},
                                 headers=_bearer(tokens.access_token))
        self._raise_for(response)
        user = json_or_empty(response).get("data") or {}
        return Identity(platform_user_id=str(user.get("id", "")), handle=user.get("username", ""),
                        display_name=user.get("name", ""),
                        avatar_url=user.get("profile_image_url", ""),
                        extra={"handle": user.get("username", "")})

    def _token_call(self, path: str, form: dict) -> httpx.Response:
        # Confidential clients authenticate with HTTP Basic; public clients send client_id.
        if self.config.client_secret:
            auth = (self.config.client_id, self.config.client_secret)
        else:
            auth, form = None, {**form, "client_id": self.config.client_id}
        return self.http.post(f"{self.api_url}{path}", data=form, auth=auth)

    @staticmethod
    def _token_set(body: dict) -> TokenSet:
        expires = body.get("expires_in")
        return TokenSet(access_token=body.get("access_token", ""),
                        refresh_token=body.get("refresh_token"),
                        expires_at=in_seconds(expires) if expires else None,
                        scopes=tuple(str(body.get("scope", "")).split()))

    def _oauth_error(self, response: httpx.Response, message: str, *,
                     refreshing: bool = False) -> PlatformError:
        body = json_or_empty(response)
        error = body.get("error", "")
        kw = {"code": error or None, "http_status": response.status_code,
              "detail": excerpt(response)}
        if error == "unauthorized_client" or response.status_code == 401:
            return Permanent("X refused Herald's app credentials (client id or secret).", **kw)
        if refreshing and error in ("invalid_grant", "invalid_request"):
            # X reports a used, revoked or expired refresh token as invalid_request
            # ("Value passed for the token was invalid.") as well as invalid_grant.
            return InvalidGrant(message, **kw)
        return Permanent(message, **kw)

    # -- publish --------------------------------------------------------------------------
    def publish(self, request: PublishRequest, credentials: Credentials,
                checkpoint: Checkpoint = lambda state: None) -> Published:
        state = dict(request.state)
        if state.get("post_id"):                 # created on an earlier attempt: never again
            return self._published(state["post_id"], credentials)
        media_ids = list(state.get("media_ids") or [])
        for index, media in enumerate(request.media):
            if index < len(media_ids):
                continue                         # uploaded on an earlier attempt
            media_ids.append(self._upload(media, credentials, state, checkpoint))
            state["media_ids"] = list(media_ids)
            state.pop("video", None)
            checkpoint(dict(state))
        body: dict = {"text": request.text}
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        response = self.http.post(f"{self.api_url}/2/tweets", json=body,
                                  headers=_bearer(credentials.access_token))
        self._raise_for(response, creating=True)
        post_id = str((json_or_empty(response).get("data") or {}).get("id") or "")
        if not post_id:
            raise Ambiguous("X accepted the post but didn't return its id.",
                            http_status=response.status_code, detail=excerpt(response))
        checkpoint({**state, "post_id": post_id})
        return self._published(post_id, credentials, published_at=utcnow())

    def _published(self, post_id: str, credentials: Credentials,
                   published_at: datetime | None = None) -> Published:
        handle = credentials.extra.get("handle") or credentials.extra.get("username")
        url = (f"https://x.com/{handle}/status/{post_id}" if handle
               else f"https://x.com/i/web/status/{post_id}")
        return Published(platform_post_id=str(post_id), url=url, published_at=published_at)

    def _upload(self, media: Media, credentials: Credentials, state: dict,
                checkpoint: Checkpoint) -> str:
        headers = _bearer(credentials.access_token)
        if media.kind == "image":
            data = self.download(media)
            category = "tweet_gif" if media.mime == "image/gif" else "tweet_image"
            # A timeout here can't have posted anything: an orphan upload just expires.
            response = self.http.post(f"{self.api_url}/2/media/upload", headers=headers,
                                      files={"media": ("media", data, media.mime)},
                                      data={"media_category": category}, ambiguous=False)
            self._raise_for(response)
            media_id = str(json_or_empty(response)["data"]["id"])
        else:
            media_id = self._upload_video(media, headers, state, checkpoint)
        if media.alt_text:
            response = self.http.post(f"{self.api_url}/2/media/metadata", headers=headers,
                                      json={"id": media_id,
                                            "metadata": {"alt_text": {"text": media.alt_text[:1000]}}},
                                      ambiguous=False)
            self._raise_for(response)
        return media_id

    def _upload_video(self, media: Media, headers: dict, state: dict,
                      checkpoint: Checkpoint) -> str:
        video = state.get("video") or {}
        if video.get("finalized"):               # resume: only the processing wait is left
            return self._await_processing(video["id"], None, headers)
        data = self.download(media)
        response = self.http.post(f"{self.api_url}/2/media/upload/initialize", headers=headers,
                                  json={"media_type": media.mime, "total_bytes": len(data),
                                        "media_category": "tweet_video"}, ambiguous=False)
        self._raise_for(response)
        media_id = str(json_or_empty(response)["data"]["id"])
        state["video"] = {"id": media_id, "finalized": False}
        checkpoint(dict(state))
        for index, start in enumerate(range(0, len(data), CHUNK_BYTES)):
            response = self.http.post(
                f"{self.api_url}/2/media/upload/{media_id}/append", headers=headers,
                files={"media": ("chunk", data[start:start + CHUNK_BYTES],
                                 "application/octet-stream")},
                data={"segment_index": str(index)}, ambiguous=False)
            self._raise_for(response)
        response = self.http.post(f"{self.api_url}/2/media/upload/{media_id}/finalize",
                                  headers=headers, ambiguous=False)
        self._raise_for(response)
        state["video"] = {"id": media_id, "finalized": True}
        checkpoint(dict(state))
        info = (json_or_empty(response).get("data") or {}).get("processing_info")
        return self._await_processing(media_id, info or {"state": "succeeded"}, headers)

    def _await_processing(self, media_id: str, info: dict | None, headers: dict) -> str:
        """Poll STATUS until X has processed the video. `info` None means "ask now"."""
        deadline = time.monotonic() + self.config.poll_budget
        while info is None or info.get("state") in ("pending", "in_progress"):
            if info is not None:
                # X suggests a wait (check_after_secs); never poll faster than configured.
                wait = max(self.config.poll_interval, float(info.get("check_after_secs") or 0))
                if time.monotonic() + wait > deadline:
                    raise Transient("X is still processing the video; will check again.")
                time.sleep(wait)
            response = self.http.get(f"{self.api_url}/2/media/upload", headers=headers,
                                     params={"media_id": media_id, "command": "STATUS"})
            self._raise_for(response)
            info = (json_or_empty(response).get("data") or {}).get("processing_info") \
                or {"state": "succeeded"}
        if info.get("state") == "failed":
            reason = (info.get("error") or {}).get("message") or "it was rejected"
            raise Permanent(f"X couldn't process the video: {reason}.")
        return media_id

    # -- reconcile ------------------------------------------------------------------------
    def find_published(self, request: PublishRequest, credentials: Credentials,
                       since: datetime) -> Lookup:
        if request.state.get("post_id"):
            return Lookup("found", self._published(request.state["post_id"], credentials))
        wanted = _comparable(request.text)
        if not wanted:
            return Lookup("unknown", reason="X posts without text can't be matched reliably.")
        # A few minutes' slack for clock skew between Herald and X.
        start = (since.astimezone(timezone.utc) - timedelta(minutes=5)).replace(microsecond=0)
        params = {"start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "max_results": 100,
                  "post.fields": "created_at,text"}
        for _ in range(5):                       # 500 posts since the attempt is plenty
            response = self.http.get(
                f"{self.api_url}/2/users/{credentials.platform_user_id}/tweets",
                params=params, headers=_bearer(credentials.access_token))
            self._raise_for(response)
            body = json_or_empty(response)
            for post in body.get("data") or []:
                if _same_text(post.get("text", ""), wanted, bool(request.media)):
                    return Lookup("found", self._published(
                        str(post["id"]), credentials, from_iso(post.get("created_at"))))
            token = (body.get("meta") or {}).get("next_token")
            if not token:
                return Lookup("not_found", reason="No post with this text on X since the attempt.")
            params["pagination_token"] = token
        return Lookup("unknown", reason="Too many X posts since the attempt to check them all.")

    # -- delete ---------------------------------------------------------------------------
    def delete(self, platform_post_id: str, credentials: Credentials) -> None:
        response = self.http.request("DELETE", f"{self.api_url}/2/tweets/{platform_post_id}",
                                     headers=_bearer(credentials.access_token), ambiguous=False)
        if response.status_code == 404:
            return                               # already gone
        self._raise_for(response)

    # -- metrics --------------------------------------------------------------------------
    def account_metrics(self, credentials: Credentials) -> Metrics:
        response = self.http.get(f"{self.api_url}/2/users/me",
                                 params={"user.fields": "public_metrics"},
                                 headers=_bearer(credentials.access_token))
        self._raise_for(response)
        public = (json_or_empty(response).get("data") or {}).get("public_metrics") or {}
        # like_count is posts this account liked, not likes received: extra, not "likes".
        extra = {k: public[k] for k in ("listed_count", "like_count", "media_count") if k in public}
        return _metrics(public, _ACCOUNT, ACCOUNT_METRICS, extra)

    def post_metrics(self, platform_post_id: str, credentials: Credentials) -> Metrics:
        response = self.http.get(f"{self.api_url}/2/tweets/{platform_post_id}",
                                 params={"post.fields": "public_metrics"},
                                 headers=_bearer(credentials.access_token))
        self._raise_for(response)
        body = json_or_empty(response)
        if not body.get("data"):
            raise Permanent("X can't find that post; it may have been deleted.",
                            code="resource-not-found", detail=excerpt(response))
        public = body["data"].get("public_metrics") or {}
        extra = {k: public[k] for k in ("quote_count",) if k in public}
        return _metrics(public, _POST, POST_METRICS, extra)

    # -- errors ---------------------------------------------------------------------------
    def _raise_for(self, response: httpx.Response, *, creating: bool = False) -> None:
        error = self._error(response, creating=creating)
        if error is not None:
            raise error

    def _error(self, response: httpx.Response, *, creating: bool = False) -> PlatformError | None:
        status = response.status_code
        if status < 400:
            return None
        body = json_or_empty(response)
        # v2 problems carry `type`/`detail`; v1.1-style bodies carry errors[{code, message}].
        kind = str(body.get("type") or "").rstrip("/").rsplit("/", 1)[-1]
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        codes = {e.get("code") for e in errors}
        detail = str(body.get("detail") or (errors[0].get("message") if errors else "")
                     or body.get("title") or "").strip()
        kw = {"http_status": status, "detail": excerpt(response),
              "code": (kind if kind and kind != "about:blank" else None)
              or (str(errors[0].get("code")) if errors and errors[0].get("code") else None)}
        if kind == "usage-capped":
            if str(body.get("period", "")).lower() == "daily":
                return RateLimited("X's daily usage cap is used up; posting resumes when it resets.",
                                   retry_at=self._reset(response, default=timedelta(hours=24)), **kw)
            return Permanent("X's monthly usage cap for this app is used up; posting needs the "
                             "next month or a higher X API plan.", **kw)
        if status == 429 or kind == "rate-limit-exceeded" or 88 in codes:
            return RateLimited("X rate limit reached; waiting until it resets.",
                               retry_at=self._reset(response), **kw)
        if status == 401 or 89 in codes:
            return AuthExpired("X says the access token is no longer valid.", **kw)
        if 187 in codes or "duplicate content" in detail.lower():
            return Permanent(DUPLICATE_MESSAGE, **{**kw, "code": "duplicate"})
        if kind == "client-forbidden":
            return Permanent("X refused: this app isn't enrolled for that endpoint "
                             "(check the app's project and access level).", **kw)
        if status >= 500:
            if creating:
                return Ambiguous(f"X had a server error ({status}) after receiving the post; "
                                 "it may or may not exist.", **kw)
            return Transient(f"X had a server error ({status}); will try again.", **kw)
        if status == 403:
            return Permanent(f"X refused the request: {_short(detail) or 'forbidden'}.", **kw)
        return Permanent(f"X rejected the request ({status}): {_short(detail) or 'no reason given'}.",
                         **kw)

    @staticmethod
    def _reset(response: httpx.Response, default: timedelta = timedelta(seconds=60)) -> datetime:
        headers = response.headers
        # The 24-hour post caps outlast the 15-minute window: when one is spent, wait for it.
        for scope in ("user", "app"):
            if headers.get(f"x-{scope}-limit-24hour-remaining") == "0":
                reset = from_epoch(headers.get(f"x-{scope}-limit-24hour-reset"))
                if reset:
                    return reset
        return (from_epoch(headers.get("x-rate-limit-reset")) or retry_after(response)
                or utcnow() + default)


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _metrics(public: dict, names: dict, known: tuple, extra: dict) -> Metrics:
    values = {}
    for name, keys in names.items():
        for key in keys:                         # docs' name first, XSPEC 2.167's second
            if isinstance(public.get(key), int):
                values[name] = public[key]
                break
    return Metrics(values=values, unsupported=frozenset(known) - frozenset(names), extra=extra)


def _comparable(text: str) -> str:
    """X returns text HTML-escaped, NFC-normalised and with every link rewritten to t.co."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    return " ".join(_URL.sub("<url>", text).split())


def _same_text(posted: str, wanted: str, has_media: bool) -> bool:
    found = _comparable(posted)
    if found == wanted:
        return True
    # Attached media shows up as one more t.co link at the end of the text.
    return has_media and found.endswith(" <url>") and found[: -len(" <url>")] == wanted
