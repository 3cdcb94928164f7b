"""TikTok: Content Posting API (Direct Post) + Display API, Login Kit v2 for OAuth.

Contract: shared/reference/platforms.md §2. The short version:
- Every v2 answer is an envelope `{"data": …, "error": {"code": "ok", "message", "log_id"}}`;
  the OAuth token endpoint instead answers flat (`{"error": "invalid_grant", …}` on failure).
- Refresh tokens rotate: the old one stops working once a new one is issued.
- Publishing is creator_info → init (→ upload chunks) → poll status until PUBLISH_COMPLETE.
  Each init creates a new post and there is no idempotency key, so the publish_id is
  checkpointed right after init and every later attempt resumes from it instead of re-initing.
- There is no API to delete a published TikTok. Text alone can't be posted.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from urllib.parse import urlencode

import httpx

from platforms.base import (
    Adapter, AuthExpired, Capabilities, Checkpoint, Credentials, Identity, InvalidGrant, Lookup,
    Media, Metrics, Permanent, Pkce, PlatformError, Published, PublishRequest, RateLimited,
    TokenSet, Transient, ACCOUNT_METRICS, POST_METRICS,
)
from platforms.http import excerpt, in_seconds, json_or_empty, retry_after, utcnow
from platforms.text import utf16_units

MB = 1024 * 1024
PHOTO_TITLE_LIMIT = 90
DEFAULT_RATE_LIMIT_WAIT = timedelta(seconds=60)   # init is limited per minute (6/min/token)

# Short, human messages for the documented error codes (§2.4). Class chosen by `_error`.
_MESSAGES = {
    "access_token_invalid": "TikTok says the access token is no longer valid.",
    "scope_not_authorized": "TikTok hasn't granted Herald the permission this needs; reconnect "
                            "the account.",
    "scope_permission_missed": "TikTok hasn't granted Herald the permission this needs; "
                               "reconnect the account.",
    "spam_risk_too_many_posts": "TikTok says this account has reached its daily limit of posts "
                                "from apps; try again tomorrow.",
    "spam_risk_user_banned_from_posting": "TikTok has blocked this account from posting.",
    "reached_active_user_cap": "TikTok's daily limit of accounts posting through Herald was "
                               "reached; try again tomorrow.",
    "unaudited_client_can_only_post_to_private_accounts":
        "TikTok only lets this app post privately until TikTok audits it; choose the "
        "'Only me' privacy level.",
    "privacy_level_option_mismatch": "TikTok doesn't allow that privacy level for this account.",
    "url_ownership_unverified": "TikTok can't fetch the media: its web address isn't verified "
                                "for this app.",
}
_FAIL_REASONS = {
    "file_format_check_failed": "the file format isn't supported",
    "duration_check_failed": "the video is too long or too short",
    "frame_rate_check_failed": "the frame rate isn't supported",
    "picture_size_check_failed": "the picture size isn't supported",
}


def _cut_utf16(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` UTF-16 units (never splits a surrogate pair)."""
    out, used = [], 0
    for char in text:
        used += utf16_units(char)
        if used > limit:
            break
        out.append(char)
    return "".join(out)


class TikTokAdapter(Adapter):
    name = "tiktok"
    label = "TikTok"
    default_api_url = "https://open.tiktokapis.com"
    default_auth_url = "https://www.tiktok.com/v2/auth/authorize/"
    # Direct post, identity (+ username via user.info.profile), follower stats, video metrics.
    scopes = ("user.info.basic", "user.info.profile", "user.info.stats", "video.publish",
              "video.list")
    upload_chunk_size = 10 * MB   # FILE_UPLOAD chunks must be 5–64 MB; files ≤ this go whole

    capabilities = Capabilities(
        text_limit=2200,
        counting="UTF-16 units, emoji count 2; photo posts' titles are cut to 90",
        image_mimes=frozenset({"image/jpeg", "image/webp"}),   # PNG isn't accepted
        video_mimes=frozenset({"video/mp4", "video/quicktime", "video/webm"}),
        max_images=35,
        max_videos=1,
        requires_media=True,
        publish_text=False,
        refresh=True,
        rotates_refresh_token=True,
        idempotency=False,
        reconcile=True,          # status/fetch with the checkpointed publish_id
        delete=False,            # TikTok offers no delete API
        pkce=False,              # Login Kit requires PKCE only for mobile/desktop apps, not web
        account_metrics=frozenset({"followers", "following", "likes", "posts"}),
        post_metrics=frozenset({"likes", "comments", "shares", "views"}),
    )

    # -- helpers --------------------------------------------------------------------------
    def count(self, text: str) -> int:
        return utf16_units(text)

    def _headers(self, token: str) -> dict:
        return {"Authorization": f"Bearer {token}",
                "Content-Type": "application/json; charset=UTF-8"}

    def _error(self, response: httpx.Response) -> PlatformError | None:
        """The exception for a failed TikTok answer, or None when it succeeded (§2.4)."""
        status = response.status_code
        body = json_or_empty(response)
        error = body.get("error")
        if isinstance(error, dict):
            code, message = str(error.get("code") or ""), str(error.get("message") or "")
        elif isinstance(error, str):   # OAuth endpoints: {"error": "invalid_grant", …}
            code, message = error, str(body.get("error_description") or "")
        else:
            code, message = "", ""
        if status < 400 and code in ("", "ok"):
            return None
        kw = {"code": code or None, "http_status": status, "detail": excerpt(response)}
        if code == "rate_limit_exceeded" or status == 429:
            retry_at = retry_after(response) or utcnow() + DEFAULT_RATE_LIMIT_WAIT
            return RateLimited("TikTok rate limit reached; waiting a minute.",
                               retry_at=retry_at, **kw)
        if code == "invalid_grant":
            return InvalidGrant("TikTok refused to renew the connection; reconnect the account.",
                                **kw)
        if code in ("access_token_invalid", "scope_not_authorized", "scope_permission_missed"):
            return AuthExpired(_MESSAGES[code], **kw)
        if code in _MESSAGES:
            return Permanent(_MESSAGES[code], **kw)
        if code.startswith("spam_risk"):
            return Permanent("TikTok refused the post as spam risk.", **kw)
        if code == "internal_error" or status >= 500:
            return Transient(f"TikTok had a server error ({status}); will try again.", **kw)
        if status == 401:
            return AuthExpired("TikTok says the access token is no longer valid.", **kw)
        short = f": {message[:150]}" if message else "."
        return Permanent(f"TikTok refused the request ({code or status}){short}", **kw)

    def _call(self, method: str, path: str, token: str, *, ambiguous: bool = False,
              **kw) -> dict:
        """An API call that returns `data`. Only the two create steps pass ambiguous=True."""
        response = self.http.request(method, f"{self.api_url}{path}", ambiguous=ambiguous,
                                     headers=self._headers(token), **kw)
        error = self._error(response)
        if error is not None:
            raise error
        data = json_or_empty(response).get("data")
        return data if isinstance(data, dict) else {}

    # -- connect --------------------------------------------------------------------------
    def authorize_url(self, state: str, pkce: Pkce | None = None) -> str:
        params = {"client_key": self.config.client_id, "scope": ",".join(self.scopes),
                  "response_type": "code", "redirect_uri": self.config.redirect_uri,
                  "state": state}
        if pkce is not None:   # only meaningful for desktop/mobile registrations
            params.update(code_challenge=pkce.challenge, code_challenge_method=pkce.method)
        # The real URL ends in ".../authorize/?": Adapter strips the trailing slash.
        return f"{self.auth_url}/?{urlencode(params)}"

    def _token_request(self, form: dict) -> dict:
        form = {"client_key": self.config.client_id, "client_secret": self.config.client_secret,
                **form}
        response = self.http.post(f"{self.api_url}/v2/oauth/token/", data=form, ambiguous=False)
        error = self._error(response)
        if error is not None:
            raise error
        body = json_or_empty(response)
        if not body.get("access_token"):
            raise Transient("TikTok sent an unexpected sign-in reply; will try again.")
        return body

    @staticmethod
    def _tokens(body: dict) -> TokenSet:
        return TokenSet(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token"),
            expires_at=in_seconds(body.get("expires_in")),
            refresh_expires_at=in_seconds(body.get("refresh_expires_in")),
            scopes=tuple(s for s in str(body.get("scope") or "").split(",") if s),
            extra={"open_id": body.get("open_id")} if body.get("open_id") else {},
        )

    def exchange_code(self, code: str, pkce: Pkce | None = None) -> TokenSet:
        form = {"code": code, "grant_type": "authorization_code",
                "redirect_uri": self.config.redirect_uri}
        if pkce is not None:
            form["code_verifier"] = pkce.verifier
        try:
            return self._tokens(self._token_request(form))
        except InvalidGrant as exc:   # a bad/used code isn't a lost connection: just retry sign-in
            raise Permanent("TikTok refused the sign-in; please connect again.",
                            code=exc.code, http_status=exc.http_status) from None

    def refresh(self, credentials: Credentials) -> TokenSet:
        if not credentials.refresh_token:
            raise InvalidGrant("TikTok needs the account to be reconnected.")
        body = self._token_request({"grant_type": "refresh_token",
                                    "refresh_token": credentials.refresh_token})
        # The returned refresh token replaces the old one, which stops working: persist it.
        return self._tokens(body)

    def revoke(self, credentials: Credentials) -> None:
        response = self.http.post(f"{self.api_url}/v2/oauth/revoke/", ambiguous=False, data={
            "client_key": self.config.client_id, "client_secret": self.config.client_secret,
            "token": credentials.access_token})
        error = self._error(response)
        if error is not None and not isinstance(error, AuthExpired):   # already unusable: fine
            raise error

    def identity(self, tokens: TokenSet) -> Identity:
        user = self._call("GET", "/v2/user/info/", tokens.access_token, params={
            "fields": "open_id,union_id,avatar_url,display_name,username"}).get("user") or {}
        open_id = user.get("open_id") or tokens.extra.get("open_id")
        if not open_id:
            raise Transient("TikTok didn't say who this account is; will try again.")
        name = user.get("display_name") or ""
        return Identity(platform_user_id=open_id, handle=user.get("username") or name,
                        display_name=name, avatar_url=user.get("avatar_url") or "",
                        extra={"union_id": user["union_id"]} if user.get("union_id") else {})

    # -- publish --------------------------------------------------------------------------
    def publish(self, request: PublishRequest, credentials: Credentials,
                checkpoint: Checkpoint = lambda state: None) -> Published:
        """Options: `privacy_level` (default: the first the creator allows), `disable_comment`,
        `disable_duet`, `disable_stitch`, `video_cover_timestamp_ms`, `brand_content_toggle`,
        `brand_organic_toggle`, `is_aigc`, `title` / `auto_add_music` / `photo_cover_index`
        (photos), `upload: "file"` to skip PULL_FROM_URL.
        State: `publish_id`, `kind`, `username`, `upload_url`, `uploaded`."""
        state = dict(request.state)
        token = credentials.access_token
        if not state.get("publish_id"):
            self._start(request, token, state, checkpoint)
        elif state.get("upload_url") and not state.get("uploaded"):
            # An earlier attempt stopped mid-upload: finish the same upload, don't re-init.
            self._upload(request.media[0], token, state, checkpoint, resume=True)
        return self._await(state, token, checkpoint)

    def _start(self, request: PublishRequest, token: str, state: dict,
               checkpoint: Checkpoint) -> None:
        media = request.media
        if not media:
            raise Permanent("TikTok needs an image or a video.")
        creator = self._call("POST", "/v2/post/publish/creator_info/query/", token)
        allowed = creator.get("privacy_level_options") or []
        privacy = request.options.get("privacy_level") or (allowed[0] if allowed else None)
        if privacy not in allowed:
            raise Permanent(f"TikTok doesn't allow privacy level {privacy} for this account "
                            f"({', '.join(allowed) or 'none offered'}).")
        opts = request.options
        # The creator's own settings win: TikTok requires honouring disabled interactions.
        post_info = {"privacy_level": privacy,
                     "disable_comment": bool(opts.get("disable_comment")
                                             or creator.get("comment_disabled"))}
        state["username"] = creator.get("creator_username") or ""

        if media[0].kind == "image":
            # Photo titles stop at 90; the whole text goes in the description.
            post_info.update(title=_cut_utf16(opts.get("title") or request.text.split("\n", 1)[0],
                                              PHOTO_TITLE_LIMIT),
                             description=request.text,
                             auto_add_music=bool(opts.get("auto_add_music", False)))
            body = {"media_type": "PHOTO", "post_mode": "DIRECT_POST", "post_info": post_info,
                    "source_info": {"source": "PULL_FROM_URL",
                                    "photo_cover_index": int(opts.get("photo_cover_index", 0)),
                                    "photo_images": [m.url for m in media]}}
            data = self._call("POST", "/v2/post/publish/content/init/", token, json=body,
                              ambiguous=True)
            state.update(publish_id=data.get("publish_id"), kind="photo")
        else:
            item = media[0]
            limit = creator.get("max_video_post_duration_sec")
            if item.duration and limit and item.duration > float(limit):
                raise Permanent(f"TikTok allows this account videos up to {limit} seconds; "
                                f"this one is {item.duration:.0f}.")
            post_info.update(
                title=request.text,
                disable_duet=bool(opts.get("disable_duet") or creator.get("duet_disabled")),
                disable_stitch=bool(opts.get("disable_stitch") or creator.get("stitch_disabled")),
                **{k: opts[k] for k in ("video_cover_timestamp_ms", "brand_content_toggle",
                                        "brand_organic_toggle", "is_aigc") if k in opts})
            data = None
            if opts.get("upload") != "file":
                try:
                    data = self._init_video(token, post_info, {
                        "source": "PULL_FROM_URL", "video_url": item.url})
                except Permanent as exc:
                    if exc.code != "url_ownership_unverified":
                        raise
                    # Refused outright, so nothing was created: send the bytes ourselves.
            if data is None:
                content = self.download(item)
                chunk_size, chunks = self._chunk_plan(len(content))
                data = self._init_video(token, post_info, {
                    "source": "FILE_UPLOAD", "video_size": len(content),
                    "chunk_size": chunk_size, "total_chunk_count": chunks})
                state["upload_url"] = data.get("upload_url")
                state["_content"] = content   # kept in memory only, never checkpointed
            state.update(publish_id=data.get("publish_id"), kind="video")
        if not state.get("publish_id"):
            raise Permanent("TikTok accepted the post but gave no publish id.")
        checkpoint(self._persistable(state))   # from here on, resume — never init again
        if state.get("upload_url"):
            self._upload(media[0], token, state, checkpoint)

    def _init_video(self, token: str, post_info: dict, source_info: dict) -> dict:
        return self._call("POST", "/v2/post/publish/video/init/", token, ambiguous=True,
                          json={"post_info": post_info, "source_info": source_info})

    @staticmethod
    def _persistable(state: dict) -> dict:
        return {k: v for k, v in state.items() if not k.startswith("_")}

    def _chunk_plan(self, size: int) -> tuple[int, int]:
        """(chunk_size, total_chunk_count): whole file when small, else fixed chunks with the
        remainder folded into the last one (total = floor(size / chunk_size), §2.2)."""
        if size <= self.upload_chunk_size:
            return size, 1
        return self.upload_chunk_size, size // self.upload_chunk_size

    def _upload(self, media: Media, token: str, state: dict, checkpoint: Checkpoint, *,
                resume: bool = False) -> None:
        content = state.pop("_content", None) or self.download(media)
        size = len(content)
        chunk_size, chunks = self._chunk_plan(size)
        # Resuming: TikTok reports how many bytes it already has; send only the rest.
        done = int(self._status(state["publish_id"], token).get("uploaded_bytes") or 0) \
            if resume else 0
        for n in range(chunks):
            first = n * chunk_size
            last = size - 1 if n == chunks - 1 else first + chunk_size - 1
            if last < done:
                continue
            response = self.http.request(
                "PUT", state["upload_url"], content=content[first:last + 1],
                # A lost chunk publishes nothing; the checkpointed publish_id lets us resume.
                ambiguous=False,
                headers={"Content-Type": media.mime,
                         "Content-Range": f"bytes {first}-{last}/{size}"})
            if response.status_code not in (200, 201, 206):
                raise self._error(response) or Transient("TikTok refused a video chunk.")
        state["uploaded"] = True
        checkpoint(self._persistable(state))

    def _status(self, publish_id: str, token: str) -> dict:
        return self._call("POST", "/v2/post/publish/status/fetch/", token,
                          json={"publish_id": publish_id})

    def _await(self, state: dict, token: str, checkpoint: Checkpoint) -> Published:
        """Poll status/fetch until the post is out. Never re-inits (§2.2, §11.2)."""
        publish_id = state["publish_id"]
        deadline = time.monotonic() + self.config.poll_budget
        while True:
            data = self._status(publish_id, token)
            status = data.get("status")
            if status in ("PUBLISH_COMPLETE", "SEND_TO_USER_INBOX"):
                return self._published(data, state)
            if status == "FAILED":
                reason = str(data.get("fail_reason") or "unknown")
                # FAILED means nothing was posted, so a later attempt may start afresh.
                checkpoint({k: v for k, v in self._persistable(state).items()
                            if k not in ("publish_id", "upload_url", "uploaded")})
                if reason == "internal":
                    raise Transient("TikTok failed to process the post; will try again.",
                                    code=reason)
                raise Permanent("TikTok couldn't publish it: "
                                f"{_FAIL_REASONS.get(reason, reason.replace('_', ' '))}.",
                                code=reason)
            if time.monotonic() >= deadline:
                raise Transient("TikTok is still processing the post; will check again.",
                                code="still_processing")
            time.sleep(self.config.poll_interval)

    @staticmethod
    def _published(data: dict, state: dict) -> Published:
        ids = data.get("publicaly_available_post_id") or []   # sic: TikTok's spelling
        username = state.get("username") or ""   # TikTok resolves /@/video/<id> too
        if not ids:
            # The public id only arrives after moderation: keep the publish_id (post_metrics can
            # resolve it later) and link the profile meanwhile.
            return Published(platform_post_id=state["publish_id"],
                             url=f"https://www.tiktok.com/@{username}" if username
                             else "https://www.tiktok.com/", published_at=utcnow())
        post_id = str(ids[0])
        kind = "photo" if state.get("kind") == "photo" else "video"
        return Published(platform_post_id=post_id,
                         url=f"https://www.tiktok.com/@{username}/{kind}/{post_id}",
                         published_at=utcnow())

    def find_published(self, request: PublishRequest, credentials: Credentials,
                       since: datetime) -> Lookup:
        state = dict(request.state)
        if state.get("publish_id"):
            try:
                return Lookup("found", self._await(state, credentials.access_token,
                                                   lambda _: None))
            except Permanent as exc:
                return Lookup("not_found", reason=exc.message)
            except Transient as exc:
                if exc.code == "internal":          # FAILED: nothing was posted
                    return Lookup("not_found", reason=exc.message)
                if exc.code == "still_processing":
                    return Lookup("unknown", reason=exc.message)
                raise                               # couldn't ask: try reconciling later
        return self._find_in_recent(request, credentials, since)

    def _find_in_recent(self, request: PublishRequest, credentials: Credentials,
                        since: datetime) -> Lookup:
        """No publish_id: the init's answer was lost. Look for the caption among recent posts;
        absence proves nothing (processing and moderation take time), so that's "unknown"."""
        try:
            data = self._call("POST", "/v2/video/list/", credentials.access_token,
                              params={"fields": "id,title,create_time,share_url"},
                              json={"max_count": 20})
        except (Permanent, AuthExpired) as exc:
            return Lookup("unknown", reason=exc.message)
        wanted = {request.text.strip(),
                  _cut_utf16(request.text.split("\n", 1)[0], PHOTO_TITLE_LIMIT).strip()}
        for item in data.get("videos") or []:
            created = datetime.fromtimestamp(int(item.get("create_time") or 0), since.tzinfo)
            if created >= since and (item.get("title") or "").strip() in wanted:
                return Lookup("found", Published(
                    platform_post_id=str(item["id"]), url=item.get("share_url") or
                    f"https://www.tiktok.com/video/{item['id']}", published_at=created))
        return Lookup("unknown", reason="TikTok shows no matching post yet; it may still be "
                                        "processing.")

    def delete(self, platform_post_id: str, credentials: Credentials) -> None:
        raise Permanent("TikTok doesn't let apps delete posts; delete it in the TikTok app.")

    # -- metrics --------------------------------------------------------------------------
    def account_metrics(self, credentials: Credentials) -> Metrics:
        user = self._call("GET", "/v2/user/info/", credentials.access_token, params={
            "fields": "open_id,follower_count,following_count,likes_count,video_count",
        }).get("user") or {}
        names = {"follower_count": "followers", "following_count": "following",
                 "likes_count": "likes", "video_count": "posts"}
        values = {ours: int(user[theirs]) for theirs, ours in names.items()
                  if user.get(theirs) is not None}
        return Metrics(values=values,
                       unsupported=frozenset(ACCOUNT_METRICS) - self.capabilities.account_metrics)

    def post_metrics(self, platform_post_id: str, credentials: Credentials) -> Metrics:
        unsupported = frozenset(POST_METRICS) - self.capabilities.post_metrics
        token = credentials.access_token
        video_id = platform_post_id
        if not video_id.isdigit():
            # A publish_id saved before moderation finished: ask for the public id now.
            ids = self._status(video_id, token).get("publicaly_available_post_id") or []
            if not ids:
                return Metrics(values={}, unsupported=unsupported,
                               extra={"pending": "TikTok hasn't made the post public yet."})
            video_id = str(ids[0])
        data = self._call("POST", "/v2/video/query/", token,
                          params={"fields": "id,like_count,comment_count,share_count,view_count"},
                          json={"filters": {"video_ids": [video_id]}})
        video = next((v for v in data.get("videos") or [] if str(v.get("id")) == video_id), None)
        if video is None:
            raise Permanent("TikTok can't find that post; it may have been deleted or made "
                            "private.")
        names = {"like_count": "likes", "comment_count": "comments", "share_count": "shares",
                 "view_count": "views"}
        values = {ours: int(video[theirs]) for theirs, ours in names.items()
                  if video.get(theirs) is not None}
        return Metrics(values=values, unsupported=unsupported, extra={"video_id": video_id})
