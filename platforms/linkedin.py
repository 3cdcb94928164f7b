"""LinkedIn: Posts API on the versioned /rest host, member (person) posting.

Contract: shared/reference/platforms.md §3. The short version:
- OAuth 3-legged on www.linkedin.com/oauth/v2; access tokens live 60 days. Refresh tokens exist
  only for approved (MDP) apps and a refresh does NOT extend the refresh token's own lifetime.
- Every /rest call carries `LinkedIn-Version` and `X-Restli-Protocol-Version: 2.0.0`; versions are
  sunset after about a year (426), so `api_version` must be bumped from time to time.
- `POST /rest/posts` answers 201 with an empty body; the post URN is in `x-restli-id`.
- No idempotency: identical content is refused with 422 DUPLICATE_POST, and there is no endpoint
  this app may use to list a member's posts, so reconciliation can only answer "unknown".
- Rate limits are daily (reset at midnight UTC) with a bare 429: no headers, no Retry-After.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

import httpx

from platforms.base import (
    Adapter, Ambiguous, AuthExpired, Capabilities, Checkpoint, Credentials, Identity,
    InvalidGrant, Lookup, Media, Metrics, Permanent, Pkce, PlatformError, Published,
    PublishRequest, RateLimited, TokenSet, Transient, ACCOUNT_METRICS, POST_METRICS,
)
from platforms.http import excerpt, in_seconds, json_or_empty, retry_after, utcnow
from platforms.text import utf16_units

# Little-text reserved characters (§3.2): escaped so LinkedIn shows them instead of silently
# truncating the commentary at the first one it can't parse.
_RESERVED = re.compile(r"([\\|{}@\[\]()<>#*_~])")
# Mention markup the author typed on purpose, left as is: @[Name](urn:li:organization:123)
_MENTION = re.compile(r"@\[[^\]\n]+\]\(urn:li:(?:person|organization):[^)\s]+\)")
_POST_URN = re.compile(r"urn:li:(?:share|ugcPost):\d+")

# memberCreatorPostAnalytics queryType -> our metric name (§3.5; POST_SAVE since li-lms-2026-04/06).
_POST_QUERIES = {"IMPRESSION": "impressions", "MEMBERS_REACHED": "reach", "RESHARE": "shares",
                 "REACTION": "likes", "COMMENT": "comments", "POST_SAVE": "saves"}
_ACCOUNT_QUERIES = {"IMPRESSION": "impressions", "MEMBERS_REACHED": "reach", "REACTION": "likes"}


def little_text(text: str) -> str:
    """Escape text for the `commentary` field, keeping deliberate mention markup."""
    out, pos = [], 0
    for match in _MENTION.finditer(text):
        out.append(_RESERVED.sub(r"\\\1", text[pos:match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(_RESERVED.sub(r"\\\1", text[pos:]))
    return "".join(out)


def _next_utc_midnight() -> datetime:
    now = utcnow()
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def _scopes(value) -> tuple[str, ...]:
    # LinkedIn answers "openid,profile,w_member_social"; be lenient about spaces too.
    return tuple(s for s in re.split(r"[,\s]+", value or "") if s)


class LinkedInAdapter(Adapter):
    name = "linkedin"
    label = "LinkedIn"
    default_api_url = "https://api.linkedin.com"
    default_auth_url = "https://www.linkedin.com/oauth/v2"
    api_version = "202610"  # YYYYMM; LinkedIn sunsets a version ~12 months after release (426)
    # Posting as the member + identity (OpenID userinfo) + member post analytics.
    scopes = ("openid", "profile", "w_member_social", "r_member_postAnalytics")

    capabilities = Capabilities(
        text_limit=3000,
        # LinkedIn says "characters"; counting UTF-16 units never under-counts (emoji count 2).
        counting="characters, emoji count 2",
        image_mimes=frozenset({"image/jpeg", "image/png", "image/gif"}),
        video_mimes=frozenset({"video/mp4"}),
        max_images=20,            # MultiImage: 2–20 images
        max_videos=1,
        refresh=True,             # only for apps LinkedIn approved for programmatic refresh
        rotates_refresh_token=False,
        idempotency=False,
        reconcile=False,          # no way for this app to list a member's posts
        delete=True,
        pkce=False,               # PKCE is only for native (loopback) apps; web apps use the secret
        account_metrics=frozenset(_ACCOUNT_QUERIES.values()),
        post_metrics=frozenset(_POST_QUERIES.values()),
    )

    # -- helpers --------------------------------------------------------------------------
    def count(self, text: str) -> int:
        return utf16_units(text)

    def _rest_headers(self, token: str, **extra) -> dict:
        return {"Authorization": f"Bearer {token}", "LinkedIn-Version": self.api_version,
                "X-Restli-Protocol-Version": "2.0.0", **extra}

    def _rest(self, method: str, path: str, token: str, **kw) -> httpx.Response:
        headers = self._rest_headers(token, **kw.pop("headers", {}))
        return self.http.request(method, f"{self.api_url}/rest/{path}", headers=headers, **kw)

    def _error(self, response: httpx.Response, *, writing: bool = False) -> PlatformError:
        """Classify a non-2xx LinkedIn answer (§3.6). Messages stay short and token-free."""
        status = response.status_code
        body = json_or_empty(response)
        code = str(body.get("code") or body.get("serviceErrorCode") or "") or None
        message = str(body.get("message") or "")[:200]
        kw = {"code": code, "http_status": status, "detail": excerpt(response)}
        if status == 429:
            # Daily limits that reset at midnight UTC; honour Retry-After should it ever appear.
            return RateLimited("LinkedIn's daily API limit was reached; waiting until it resets.",
                               retry_at=retry_after(response) or _next_utc_midnight(), **kw)
        if status == 401:
            return AuthExpired("LinkedIn says the access token expired or was revoked.", **kw)
        if status == 422 and self._is_duplicate(body):
            return Permanent("LinkedIn says this post is a duplicate of a recent one.",
                             **{**kw, "code": "DUPLICATE_POST"})
        if status == 426 or code in ("NONEXISTENT_VERSION", "VERSION_MISSING"):
            return Permanent(f"LinkedIn no longer accepts API version {self.api_version}; "
                             "Herald's LinkedIn adapter needs updating.", **kw)
        if status == 403:
            return Permanent("LinkedIn refused permission" + (f": {message}" if message else "."),
                             **kw)
        if status == 504 and writing:
            # A gateway timeout means the request reached LinkedIn; the post may exist.
            return Ambiguous("LinkedIn timed out answering; the post may or may not exist.", **kw)
        if status >= 500:
            return Transient(f"LinkedIn had a server error ({status}); will try again.", **kw)
        return Permanent(f"LinkedIn refused the request ({status})"
                         f"{': ' + message if message else '.'}", **kw)

    @staticmethod
    def _is_duplicate(body: dict) -> bool:
        details = (body.get("errorDetails") or {}).get("inputErrors") or []
        return (any(d.get("code") == "DUPLICATE_POST" for d in details if isinstance(d, dict))
                or "duplicate" in str(body.get("message", "")).lower())

    def _check(self, response: httpx.Response, *, writing: bool = False) -> httpx.Response:
        if response.status_code >= 400:
            raise self._error(response, writing=writing)
        return response

    def _value(self, response: httpx.Response, *keys: str) -> dict:
        value = json_or_empty(response).get("value")
        if not isinstance(value, dict) or any(not value.get(k) for k in keys):
            raise Transient("LinkedIn sent an unexpected reply; will try again.",
                            http_status=response.status_code, detail=excerpt(response))
        return value

    def _wait(self, check, what: str):
        """Call `check()` until it returns something, every poll_interval, within poll_budget."""
        deadline = time.monotonic() + self.config.poll_budget
        while True:
            result = check()
            if result is not None:
                return result
            if time.monotonic() >= deadline:
                raise Transient(f"LinkedIn is still processing the {what}; will check again.")
            time.sleep(self.config.poll_interval)

    # -- connect --------------------------------------------------------------------------
    def authorize_url(self, state: str, pkce: Pkce | None = None) -> str:
        params = {"response_type": "code", "client_id": self.config.client_id,
                  "redirect_uri": self.config.redirect_uri, "state": state,
                  "scope": " ".join(self.scopes)}
        if pkce is not None:  # native apps only, and only when LinkedIn enabled it for the app
            params.update(code_challenge=pkce.challenge, code_challenge_method=pkce.method)
        return f"{self.auth_url}/authorization?{urlencode(params)}"

    def _token_request(self, form: dict, *, refreshing: bool) -> TokenSet:
        form = {**form, "client_id": self.config.client_id,
                "client_secret": self.config.client_secret}
        response = self.http.post(f"{self.auth_url}/accessToken", data=form, ambiguous=False)
        body = json_or_empty(response)
        if response.status_code >= 400 or "error" in body:
            error = str(body.get("error") or "")
            kw = {"code": error or None, "http_status": response.status_code,
                  "detail": excerpt(response)}
            if response.status_code >= 500:
                raise Transient(f"LinkedIn's sign-in service failed ({response.status_code}); "
                                "will try again.", **kw)
            if response.status_code == 429:
                raise self._error(response)
            if refreshing:
                raise InvalidGrant("LinkedIn refused to renew the connection; reconnect the "
                                   "account.", **kw)
            raise Permanent("LinkedIn refused the sign-in; please connect again.", **kw)
        if not body.get("access_token"):
            raise Transient("LinkedIn sent an unexpected sign-in reply; will try again.")
        return TokenSet(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token"),
            expires_at=in_seconds(body.get("expires_in")),
            # Counts down from the original grant: a refresh never extends it (§3.1).
            refresh_expires_at=in_seconds(body.get("refresh_token_expires_in")),
            scopes=_scopes(body.get("scope")),
        )

    def exchange_code(self, code: str, pkce: Pkce | None = None) -> TokenSet:
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.config.redirect_uri}
        if pkce is not None:
            form["code_verifier"] = pkce.verifier
        return self._token_request(form, refreshing=False)

    def refresh(self, credentials: Credentials) -> TokenSet:
        if not credentials.refresh_token:
            # Apps without programmatic refresh get no refresh token: after 60 days the member
            # has to sign in again.
            raise InvalidGrant("LinkedIn doesn't let Herald renew this connection; reconnect "
                               "the account.")
        tokens = self._token_request({"grant_type": "refresh_token",
                                      "refresh_token": credentials.refresh_token}, refreshing=True)
        if not tokens.refresh_token:   # LinkedIn keeps the same refresh token
            tokens.refresh_token = credentials.refresh_token
        return tokens

    def revoke(self, credentials: Credentials) -> None:
        response = self.http.post(f"{self.auth_url}/revoke", ambiguous=False, data={
            "client_id": self.config.client_id, "client_secret": self.config.client_secret,
            "token": credentials.access_token})
        # 400/401: the token is already unusable, which is what revoking wanted.
        if response.status_code >= 400 and response.status_code not in (400, 401):
            raise self._error(response)

    def identity(self, tokens: TokenSet) -> Identity:
        # OpenID userinfo (unversioned /v2): `sub` is the member id in urn:li:person:{sub}.
        response = self._check(self.http.get(
            f"{self.api_url}/v2/userinfo",
            headers={"Authorization": f"Bearer {tokens.access_token}"}))
        body = json_or_empty(response)
        if not body.get("sub"):
            raise Transient("LinkedIn didn't say who this account is; will try again.")
        name = body.get("name") or " ".join(
            p for p in (body.get("given_name"), body.get("family_name")) if p)
        # LinkedIn gives a third-party app no public handle; the member's name is what people read.
        return Identity(platform_user_id=f"urn:li:person:{body['sub']}", handle=name or body["sub"],
                        display_name=name, avatar_url=body.get("picture") or "",
                        extra={k: body[k] for k in ("email", "locale") if body.get(k)})

    # -- publish --------------------------------------------------------------------------
    def publish(self, request: PublishRequest, credentials: Credentials,
                checkpoint: Checkpoint = lambda state: None) -> Published:
        """Posts as the member. Option: `visibility` (PUBLIC | CONNECTIONS).
        State: uploaded `images` / `video` URNs, `post_sent`."""
        state = dict(request.state)
        token = credentials.access_token
        author = credentials.platform_user_id   # urn:li:person:…, from identity()
        images = [m for m in request.media if m.kind == "image"]
        videos = [m for m in request.media if m.kind == "video"]

        content = None
        if videos:
            content = {"media": {"id": self._upload_video(videos[0], author, token, state,
                                                          checkpoint)}}
        elif images:
            urns = self._upload_images(images, author, token, state, checkpoint)
            entries = [{"id": urn, **({"altText": m.alt_text} if m.alt_text else {})}
                       for urn, m in zip(urns, images)]
            content = {"media": entries[0]} if len(entries) == 1 else \
                {"multiImage": {"images": entries}}

        body = {
            "author": author,
            "commentary": little_text(request.text),
            "visibility": request.options.get("visibility", "PUBLIC"),
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                             "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if content:
            body["content"] = content

        sent_before = bool(state.get("post_sent"))
        state["post_sent"] = True
        checkpoint(dict(state))   # from here on a failed attempt may have created the post
        response = self._rest("POST", "posts", token, json=body,
                              headers={"Content-Type": "application/json"})
        if response.status_code < 300:
            urn = response.headers.get("x-restli-id")
            if not urn:
                raise Ambiguous("LinkedIn accepted the post but didn't say its id.",
                                http_status=response.status_code)
            return self._published(urn)
        if sent_before and response.status_code == 422:
            # Our earlier attempt landed: LinkedIn names it in the duplicate message (§3.4).
            match = _POST_URN.search(str(json_or_empty(response).get("message", "")))
            if match and self._is_duplicate(json_or_empty(response)):
                return self._published(match.group(0))
        raise self._error(response, writing=True)

    @staticmethod
    def _published(urn: str) -> Published:
        return Published(platform_post_id=urn,
                         url=f"https://www.linkedin.com/feed/update/{urn}/",
                         published_at=utcnow())

    def _upload_images(self, images: list[Media], owner: str, token: str, state: dict,
                       checkpoint: Checkpoint) -> list[str]:
        uploaded: list[str] = list(state.get("images") or [])   # URNs, in media order
        for media in images[len(uploaded):]:
            value = self._value(self._check(self._rest(
                "POST", "images?action=initializeUpload", token, ambiguous=False,
                json={"initializeUploadRequest": {"owner": owner}})), "uploadUrl", "image")
            data = self.download(media)
            self._check(self.http.request(
                "PUT", value["uploadUrl"], content=data, ambiguous=False,
                headers={"Authorization": f"Bearer {token}", "Content-Type": media.mime}))
            uploaded.append(value["image"])
            state["images"] = list(uploaded)
            checkpoint(dict(state))   # a retry won't upload this image again
        for urn in uploaded:
            self._wait(lambda urn=urn: self._media_ready("images", urn, token), "image")
        return uploaded

    def _upload_video(self, media: Media, owner: str, token: str, state: dict,
                      checkpoint: Checkpoint) -> str:
        urn = state.get("video")
        if not urn:
            data = self.download(media)
            value = self._value(self._check(self._rest(
                "POST", "videos?action=initializeUpload", token, ambiguous=False,
                json={"initializeUploadRequest": {"owner": owner, "fileSizeBytes": len(data),
                                                  "uploadCaptions": False,
                                                  "uploadThumbnail": False}})),
                "video", "uploadInstructions")
            etags = []
            for part in value.get("uploadInstructions") or []:
                chunk = data[int(part["firstByte"]):int(part["lastByte"]) + 1]
                response = self._check(self.http.request(
                    "PUT", part["uploadUrl"], content=chunk, ambiguous=False,
                    headers={"Authorization": f"Bearer {token}",
                             "Content-Type": "application/octet-stream"}))
                etags.append(response.headers.get("etag", ""))
            self._check(self._rest(
                "POST", "videos?action=finalizeUpload", token, ambiguous=False,
                json={"finalizeUploadRequest": {"video": value["video"],
                                                "uploadToken": value.get("uploadToken", ""),
                                                "uploadedPartIds": etags}}))
            urn = value["video"]
            state["video"] = urn
            checkpoint(dict(state))   # uploaded and finalized: a retry only waits for it
        self._wait(lambda: self._media_ready("videos", urn, token), "video")
        return urn

    def _media_ready(self, kind: str, urn: str, token: str):
        """True when LinkedIn says AVAILABLE (or won't tell us), None while processing."""
        response = self._rest("GET", f"{kind}/{quote(urn, safe='')}", token)
        if response.status_code in (403, 404):
            return True   # member tokens may not read media back (§3.3): go ahead and post
        status = json_or_empty(self._check(response)).get("status")
        if status == "AVAILABLE":
            return True
        if status == "PROCESSING_FAILED":
            raise Permanent(f"LinkedIn couldn't process the {kind[:-1]}.", code=status)
        return None

    def find_published(self, request: PublishRequest, credentials: Credentials,
                       since: datetime) -> Lookup:
        # Listing a member's posts needs r_member_social, a closed permission (§3.2/§3.4); and
        # re-posting to provoke DUPLICATE_POST would be a blind replay. So a person decides.
        return Lookup("unknown", reason="LinkedIn doesn't let Herald list this member's posts; "
                                        "check the profile.")

    def delete(self, platform_post_id: str, credentials: Credentials) -> None:
        response = self._rest("DELETE", f"posts/{quote(platform_post_id, safe='')}",
                              credentials.access_token, headers={"X-RestLi-Method": "DELETE"})
        if response.status_code == 404:
            return   # already gone
        self._check(response)

    # -- metrics --------------------------------------------------------------------------
    def _analytics(self, token: str, query_type: str, entity: str | None = None) -> int:
        if entity is None:
            query = f"q=me&queryType={query_type}&aggregation=TOTAL"
        else:
            kind = "ugcPost" if ":ugcPost:" in entity else "share"
            query = (f"q=entity&entity=({kind}:{quote(entity, safe='')})"
                     f"&queryType={query_type}&aggregation=TOTAL")
        response = self._check(self._rest("GET", f"memberCreatorPostAnalytics?{query}", token))
        elements = json_or_empty(response).get("elements") or []
        return sum(int(e.get("count") or 0) for e in elements if isinstance(e, dict))

    def account_metrics(self, credentials: Credentials) -> Metrics:
        values = {name: self._analytics(credentials.access_token, query)
                  for query, name in _ACCOUNT_QUERIES.items()}
        # Follower/following/post counts and profile views aren't available for members here.
        return Metrics(values=values, unsupported=frozenset(ACCOUNT_METRICS) - set(values))

    def post_metrics(self, platform_post_id: str, credentials: Credentials) -> Metrics:
        if not _POST_URN.fullmatch(platform_post_id):
            raise Permanent("LinkedIn only reports statistics for share or ugcPost URNs.")
        values = {name: self._analytics(credentials.access_token, query, platform_post_id)
                  for query, name in _POST_QUERIES.items()}
        # Video views come from a separate video analytics API not covered here.
        return Metrics(values=values, unsupported=frozenset(POST_METRICS) - set(values))
