"""Pinterest API v5. Contract: shared/reference/platforms.md §7 and specs/pinterest-v5-openapi.json.

- OAuth authorization code with HTTP Basic client auth; no PKCE (PSPEC doesn't describe it).
  Refresh returns a new continuous refresh token (60 days, refreshable indefinitely), which is
  always handed back for storage.
- A pin needs a board and media: the post text becomes the description (800 characters); the
  title (100), link and board come from the target's options (`board_id` falls back to the
  account's `credentials.extra["board_id"]`, which `identity()` fills with the first board).
- Images are pulled by Pinterest from their URL (`image_url`, or `multiple_image_urls` for 2-5).
  Video goes through `POST /v5/media` → S3 form upload → status polling → `video_id` pin.
- No idempotency key. A create that times out or answers 5xx may exist, so it is Ambiguous,
  and `find_published` lists the board's pins and matches the description.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import httpx

from platforms.base import (ACCOUNT_METRICS, POST_METRICS, Adapter, Ambiguous, AuthExpired,
                            Capabilities, Checkpoint, Credentials, Identity, InvalidGrant, Lookup,
                            Media, Metrics, Permanent, Pkce, PlatformError, Published,
                            PublishRequest, RateLimited, TokenSet, Transient)
from platforms.http import (excerpt, from_epoch, from_iso, in_seconds, json_or_empty, retry_after,
                            utcnow)
from platforms.text import code_points

# Creating pins needs boards:read/write + pins:read/write; the account, its follower counts
# and its analytics need user_accounts:read.
SCOPES = ("boards:read", "boards:write", "pins:read", "pins:write", "user_accounts:read")
TITLE_LIMIT = 100
PIN_URL = "https://www.pinterest.com/pin/{}/"
_PIN_METRICS = {"impressions": "impression", "likes": "reaction", "comments": "comment"}
_ACCOUNT_ANALYTICS = {"impressions": "IMPRESSION", "engagement": "ENGAGEMENT"}


class PinterestAdapter(Adapter):
    name = "pinterest"
    label = "Pinterest"
    default_api_url = "https://api.pinterest.com"
    default_auth_url = "https://www.pinterest.com/oauth/"
    capabilities = Capabilities(
        text_limit=800,
        counting="characters, as the pin description (a title of up to 100 is a separate option)",
        image_mimes=frozenset({"image/jpeg", "image/png"}),
        video_mimes=frozenset({"video/mp4", "video/quicktime"}),
        max_images=5,                    # multiple_image_urls takes 2-5 (PSPEC)
        max_videos=1,
        requires_media=True,
        publish_text=False,
        rotates_refresh_token=True,
        idempotency=False,
        reconcile=True,
        delete=True,
        pkce=False,
        account_metrics=frozenset({"followers", "following", "posts"} | set(_ACCOUNT_ANALYTICS)),
        post_metrics=frozenset(set(_PIN_METRICS) | {"saves", "views"}),
    )

    def count(self, text: str) -> int:
        return code_points(text)         # PSPEC maxLength, i.e. characters

    # -- connect --------------------------------------------------------------------------
    def authorize_url(self, state: str, pkce: Pkce | None = None) -> str:
        params = {"client_id": self.config.client_id, "redirect_uri": self.config.redirect_uri,
                  "response_type": "code", "scope": ",".join(SCOPES), "state": state}
        # Base strips the trailing slash; Pinterest's page is /oauth/.
        return f"{self.auth_url}/?{urlencode(params)}"

    def exchange_code(self, code: str, pkce: Pkce | None = None) -> TokenSet:
        # continuous_refresh=true matters for apps created before 2025-09-25 and is to be
        # "disregarded" by newer ones (PSPEC /oauth/token description).
        response = self._token_call("/v5/oauth/token", {
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": self.config.redirect_uri, "continuous_refresh": "true"})
        if response.status_code in (400, 401, 403):
            raise self._oauth_error(response, "Pinterest refused the sign-in; please connect again.")
        self._raise_for(response)
        return self._token_set(json_or_empty(response))

    def refresh(self, credentials: Credentials) -> TokenSet:
        if not credentials.refresh_token:
            raise InvalidGrant("Pinterest gave no refresh token for this account; please reconnect it.")
        response = self._token_call("/v5/oauth/token", {
            "grant_type": "refresh_token", "refresh_token": credentials.refresh_token})
        if response.status_code in (400, 401, 403):
            raise self._oauth_error(response, "Pinterest refused the refresh token; please "
                                              "reconnect the account.", refreshing=True)
        self._raise_for(response)
        tokens = self._token_set(json_or_empty(response))
        tokens.refresh_token = tokens.refresh_token or credentials.refresh_token
        return tokens

    def revoke(self, credentials: Credentials) -> None:
        for token, hint in ((credentials.refresh_token, "refresh_token"),
                            (credentials.access_token, "access_token")):
            if not token:
                continue
            response = self._token_call("/v5/oauth/token/revoke",
                                        {"token": token, "token_type_hint": hint})
            if response.status_code == 400:
                continue                 # already invalid
            if response.status_code in (401, 403):
                raise self._oauth_error(response, "Pinterest refused to revoke the token.")
            self._raise_for(response)

    def identity(self, tokens: TokenSet) -> Identity:
        headers = _bearer(tokens.access_token)
        response = self.http.get(f"{self.api_url}/v5/user_account", headers=headers)
        self._raise_for(response)
        account = json_or_empty(response)
        response = self.http.get(f"{self.api_url}/v5/boards", params={"page_size": 100},
                                 headers=headers)
        self._raise_for(response)
        boards = [{"id": str(b.get("id")), "name": b.get("name", ""), "privacy": b.get("privacy")}
                  for b in json_or_empty(response).get("items") or []]
        username = account.get("username", "")
        return Identity(platform_user_id=str(account.get("id", "")), handle=username,
                        display_name=account.get("business_name") or username,
                        avatar_url=account.get("profile_image", ""),
                        extra={"account_type": account.get("account_type"), "boards": boards,
                               "board_id": boards[0]["id"] if boards else None})

    def _token_call(self, path: str, form: dict) -> httpx.Response:
        return self.http.post(f"{self.api_url}{path}", data=form,
                              auth=(self.config.client_id, self.config.client_secret))

    @staticmethod
    def _token_set(body: dict) -> TokenSet:
        expires = body.get("expires_in")
        refresh_at = (from_epoch(body.get("refresh_token_expires_at"))
                      or in_seconds(body.get("refresh_token_expires_in")))
        return TokenSet(access_token=body.get("access_token", ""),
                        refresh_token=body.get("refresh_token"),
                        expires_at=in_seconds(expires) if expires else None,
                        refresh_expires_at=refresh_at,
                        scopes=tuple(s for s in re.split(r"[,\s]+", body.get("scope") or "") if s))

    def _oauth_error(self, response: httpx.Response, message: str, *,
                     refreshing: bool = False) -> PlatformError:
        body = json_or_empty(response)
        kw = {"code": str(body.get("code") or body.get("error") or "") or None,
              "http_status": response.status_code, "detail": excerpt(response)}
        # 401 code 2 "Authentication failed." is the Basic client auth (PSPEC revoke example).
        if response.status_code == 401 and body.get("code") in (2, None) \
                and body.get("error") != "invalid_grant":
            return Permanent("Pinterest refused Herald's app credentials (app id or secret).", **kw)
        if response.status_code == 403:
            return Permanent("Pinterest doesn't allow this app to do that.", **kw)
        if refreshing:
            return InvalidGrant(message, **kw)
        return Permanent(message, **kw)

    # -- publish --------------------------------------------------------------------------
    def publish(self, request: PublishRequest, credentials: Credentials,
                checkpoint: Checkpoint = lambda state: None) -> Published:
        state = dict(request.state)
        if state.get("post_id"):                 # created on an earlier attempt: never again
            return Published(state["post_id"], PIN_URL.format(state["post_id"]))
        board_id = self._board(request, credentials)
        title = str(request.options.get("title") or "")
        if len(title) > TITLE_LIMIT:
            raise Permanent(f"Pinterest allows {TITLE_LIMIT} characters in a pin title; "
                            f"this is {len(title)}.")
        images = [m for m in request.media if m.kind == "image"]
        videos = [m for m in request.media if m.kind == "video"]
        if videos:
            source = self._video_source(videos[0], request, credentials, state, checkpoint)
        elif len(images) == 1:
            source = {"source_type": "image_url", "url": images[0].url}
        elif images:
            source = {"source_type": "multiple_image_urls",
                      "items": [{"url": m.url} for m in images[:5]]}
        else:
            raise Permanent("Pinterest needs an image or a video.")
        body = {"board_id": board_id, "media_source": source}
        if request.text:
            body["description"] = request.text
        if title:
            body["title"] = title
        if request.options.get("link"):
            body["link"] = str(request.options["link"])
        alt = next((m.alt_text for m in request.media if m.alt_text), "")
        if alt:
            body["alt_text"] = alt[:500]
        response = self.http.post(f"{self.api_url}/v5/pins", json=body,
                                  headers=_bearer(credentials.access_token))
        self._raise_for(response, creating=True)
        pin = json_or_empty(response)
        pin_id = str(pin.get("id") or "")
        if not pin_id:
            raise Ambiguous("Pinterest accepted the pin but didn't return its id.",
                            http_status=response.status_code, detail=excerpt(response))
        checkpoint({**state, "post_id": pin_id})
        return Published(pin_id, PIN_URL.format(pin_id), from_iso(pin.get("created_at")) or utcnow())

    @staticmethod
    def _board(request: PublishRequest, credentials: Credentials) -> str:
        board_id = request.options.get("board_id") or credentials.extra.get("board_id")
        if not board_id:
            raise Permanent("Pinterest needs a board to pin to; choose one for this account.")
        return str(board_id)

    def _video_source(self, media: Media, request: PublishRequest, credentials: Credentials,
                      state: dict, checkpoint: Checkpoint) -> dict:
        headers = _bearer(credentials.access_token)
        video = state.get("video") or {}
        media_id = video.get("media_id") if video.get("uploaded") else None
        if media_id is None:
            # Start over when the upload didn't finish: a registered, never-used media id
            # costs nothing, and the S3 form fields aren't worth storing.
            data = self.download(media)
            response = self.http.post(f"{self.api_url}/v5/media", json={"media_type": "video"},
                                      headers=headers, ambiguous=False)
            self._raise_for(response)
            registered = json_or_empty(response)
            media_id = str(registered["media_id"])
            state["video"] = {"media_id": media_id, "uploaded": False}
            checkpoint(dict(state))
            # The upload store is S3: its own form fields authenticate; never send our token.
            response = self.http.post(registered["upload_url"],
                                      data=registered.get("upload_parameters") or {},
                                      files={"file": ("video", data, media.mime)}, ambiguous=False)
            if response.status_code >= 500:
                raise Transient(f"Pinterest's upload store had an error ({response.status_code}); "
                                "will try again.", http_status=response.status_code)
            if response.status_code >= 300:
                raise Permanent(f"Pinterest's upload store refused the video ({response.status_code}).",
                                http_status=response.status_code, detail=excerpt(response))
            state["video"] = {"media_id": media_id, "uploaded": True}
            checkpoint(dict(state))
        self._await_processing(media_id, headers)
        source = {"source_type": "video_id", "media_id": media_id}
        if request.options.get("cover_image_url"):
            source["cover_image_url"] = str(request.options["cover_image_url"])
        else:
            source["cover_image_key_frame_time"] = 0
        return source

    def _await_processing(self, media_id: str, headers: dict) -> None:
        deadline = time.monotonic() + self.config.poll_budget
        while True:
            response = self.http.get(f"{self.api_url}/v5/media/{media_id}", headers=headers)
            self._raise_for(response)
            status = json_or_empty(response).get("status")
            if status == "succeeded":
                return
            if status == "failed":
                raise Permanent("Pinterest couldn't process the video.")
            if time.monotonic() + self.config.poll_interval > deadline:
                raise Transient("Pinterest is still processing the video; will check again.")
            time.sleep(self.config.poll_interval)

    # -- reconcile ------------------------------------------------------------------------
    def find_published(self, request: PublishRequest, credentials: Credentials,
                       since: datetime) -> Lookup:
        if request.state.get("post_id"):
            pin_id = request.state["post_id"]
            return Lookup("found", Published(pin_id, PIN_URL.format(pin_id)))
        try:
            board_id = self._board(request, credentials)
        except Permanent:
            return Lookup("unknown", reason="No Pinterest board to look in.")
        wanted = _comparable(request.text)
        title = _comparable(str(request.options.get("title") or ""))
        if not wanted and not title:
            return Lookup("unknown", reason="A pin without a description or title can't be matched.")
        earliest = since.astimezone(timezone.utc) - timedelta(minutes=5)   # clock skew
        params: dict = {"page_size": 100}
        # PSPEC doesn't promise an order for board pins, so no early stop on dates: read up
        # to 10 pages and say "unknown" if the board is bigger than that.
        for _ in range(10):
            response = self.http.get(f"{self.api_url}/v5/boards/{board_id}/pins", params=params,
                                     headers=_bearer(credentials.access_token))
            self._raise_for(response)
            body = json_or_empty(response)
            for pin in body.get("items") or []:
                created = from_iso(pin.get("created_at"))
                if created is not None and created < earliest:
                    continue
                if _comparable(pin.get("description") or "") == wanted \
                        and (not title or _comparable(pin.get("title") or "") == title):
                    pin_id = str(pin["id"])
                    return Lookup("found", Published(pin_id, PIN_URL.format(pin_id), created))
            if not body.get("bookmark"):
                return Lookup("not_found", reason="No pin with this description on the board "
                                                  "since the attempt.")
            params["bookmark"] = body["bookmark"]
        return Lookup("unknown", reason="The Pinterest board has too many pins to check them all.")

    # -- delete ---------------------------------------------------------------------------
    def delete(self, platform_post_id: str, credentials: Credentials) -> None:
        response = self.http.request("DELETE", f"{self.api_url}/v5/pins/{platform_post_id}",
                                     headers=_bearer(credentials.access_token), ambiguous=False)
        if response.status_code == 404:
            return                               # already gone
        self._raise_for(response)

    # -- metrics --------------------------------------------------------------------------
    def account_metrics(self, credentials: Credentials) -> Metrics:
        headers = _bearer(credentials.access_token)
        response = self.http.get(f"{self.api_url}/v5/user_account", headers=headers)
        self._raise_for(response)
        account = json_or_empty(response)
        values = {name: account[key] for name, key in (
            ("followers", "follower_count"), ("following", "following_count"),
            ("posts", "pin_count")) if isinstance(account.get(key), int)}
        extra = {k: account[k] for k in ("monthly_views", "board_count") if k in account}
        today = utcnow().date()
        response = self.http.get(f"{self.api_url}/v5/user_account/analytics", headers=headers,
                                 params={"start_date": (today - timedelta(days=30)).isoformat(),
                                         "end_date": today.isoformat(),
                                         "metric_types": "IMPRESSION,ENGAGEMENT,SAVE,PIN_CLICK,"
                                                         "OUTBOUND_CLICK"})
        if response.status_code == 403:
            # Analytics exist on Pinterest but not for every account (e.g. personal ones):
            # leave them out rather than calling them unsupported or 0.
            extra["analytics"] = "not available for this account"
        else:
            self._raise_for(response)
            summary = _summary(json_or_empty(response))
            values.update({name: int(summary[key]) for name, key in _ACCOUNT_ANALYTICS.items()
                           if isinstance(summary.get(key), (int, float))})
            extra.update({f"last_30d_{k.lower()}": summary[k] for k in
                          ("SAVE", "PIN_CLICK", "OUTBOUND_CLICK") if k in summary})
        return Metrics(values=values,
                       unsupported=frozenset(ACCOUNT_METRICS) - self.capabilities.account_metrics,
                       extra=extra)

    def post_metrics(self, platform_post_id: str, credentials: Credentials) -> Metrics:
        headers = _bearer(credentials.access_token)
        response = self.http.get(f"{self.api_url}/v5/pins/{platform_post_id}",
                                 params={"pin_metrics": "true"}, headers=headers)
        self._raise_for(response)
        pin = json_or_empty(response)
        lifetime = (pin.get("pin_metrics") or {}).get("lifetime_metrics") or {}
        values = {name: lifetime[key] for name, key in _PIN_METRICS.items()
                  if isinstance(lifetime.get(key), int)}
        extra = {k: lifetime[k] for k in ("pin_click", "clickthrough") if k in lifetime}
        is_video = (pin.get("media") or {}).get("media_type") == "video"
        # Saves and video views aren't in lifetime metrics; the analytics endpoint has them for
        # at most the last 90 days (so a pin older than that reports its last 90 days).
        today = utcnow().date()
        start = max(today - timedelta(days=89),
                    (from_iso(pin.get("created_at")) or utcnow()).date())
        response = self.http.get(f"{self.api_url}/v5/pins/{platform_post_id}/analytics",
                                 headers=headers,
                                 params={"start_date": min(start, today).isoformat(),
                                         "end_date": today.isoformat(),
                                         "metric_types": "SAVE,VIDEO_MRC_VIEW" if is_video else "SAVE"})
        self._raise_for(response)
        summary = _summary(json_or_empty(response))
        if isinstance(summary.get("SAVE"), (int, float)):
            values["saves"] = int(summary["SAVE"])
        if is_video and isinstance(summary.get("VIDEO_MRC_VIEW"), (int, float)):
            values["views"] = int(summary["VIDEO_MRC_VIEW"])
        unsupported = frozenset(POST_METRICS) - self.capabilities.post_metrics
        if not is_video:
            unsupported |= {"views"}             # image pins have impressions, not views
        return Metrics(values=values, unsupported=unsupported, extra=extra)

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
        code = body.get("code")
        message = _short(str(body.get("message") or ""))
        kw = {"code": str(code) if code is not None else None, "http_status": status,
              "detail": excerpt(response)}
        if status == 429:
            return RateLimited("Pinterest rate limit reached; waiting until it resets.",
                               retry_at=self._reset(response), **kw)
        if status == 401 or code == 1104:        # 1104: "token … not valid or has expired"
            return AuthExpired("Pinterest says the access token is no longer valid.", **kw)
        if status >= 500:
            if creating:
                return Ambiguous(f"Pinterest had a server error ({status}) after receiving the "
                                 "pin; it may or may not exist.", **kw)
            return Transient(f"Pinterest had a server error ({status}); will try again.", **kw)
        if status == 403:
            return Permanent(f"Pinterest refused: {message or 'not permitted'}", **kw)
        if status == 404:
            return Permanent(f"Pinterest couldn't find it: {message or 'not found'}", **kw)
        return Permanent(f"Pinterest rejected the request ({status}): "
                         f"{message or 'no reason given'}", **kw)

    @staticmethod
    def _reset(response: httpx.Response) -> datetime:
        """Retry-After if sent; else x-ratelimit-reset, whose format PSPEC doesn't give [U]:
        a large number is read as epoch seconds, a small one as seconds from now."""
        found = retry_after(response)
        if found:
            return found
        value = response.headers.get("x-ratelimit-reset", "")
        try:
            number = float(value)
        except ValueError:
            return utcnow() + timedelta(seconds=60)
        return from_epoch(value) if number > 1e9 else utcnow() + timedelta(seconds=number)


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _comparable(text: str) -> str:
    return " ".join(text.split())


def _summary(body: dict) -> dict:
    """Analytics come keyed by group ("all" when not split): take the first group's summary."""
    for group in body.values():
        if isinstance(group, dict) and isinstance(group.get("summary_metrics"), dict):
            return group["summary_metrics"]
    return {}

