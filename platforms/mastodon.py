"""Mastodon: per-instance OAuth apps, statuses API with Idempotency-Key.

Contract: shared/reference/platforms.md §9.

Choices worth knowing:
- No global host. Every account lives on an instance, and every instance needs its own app
  registration (client_id/secret). The registration belongs to the instance, not the account:
  store it once per instance and bind an adapter to it:

      client_id, secret = adapter.register_app("https://mastodon.social", redirect_uri)
      bound = adapter.for_instance("https://mastodon.social", client_id, secret)
      bound.authorize_url(state, pkce) … bound.exchange_code(code, pkce)

  (A single-instance deployment can put the same three values in PlatformConfig instead.)
  Calls made for an account use `Credentials.extra["instance_url"]` (exchange_code puts it in
  TokenSet.extra), falling back to the adapter's api_url; `revoke` also needs the app's
  client_id/secret, from `Credentials.extra["client_id"/"client_secret"]` or the bound config.
- Tokens never expire and there are no refresh tokens (§9.1). `refresh` checks the token with
  verify_credentials and returns it unchanged; if Mastodon refuses it, InvalidGrant (reconnect).
- Never twice. POST /api/v1/statuses carries `Idempotency-Key: <request.idempotency_key>`;
  Mastodon returns the originally created status for a repeat within 1 hour per account, so
  retrying with the same key is the safe way to settle an ambiguous attempt in that hour.
  `find_published` also lists the account's recent statuses and matches the text.
- Media: POST /api/v2/media, then poll GET /api/v1/media/:id (206 while processing) until it has
  a url; media ids are checkpointed before polling, so a retry resumes instead of re-uploading.
"""
from __future__ import annotations

import html
import re
import time
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlparse

import httpx
from twitter_text import extract_urls_with_indices

from platforms.base import (Adapter, AuthExpired, Capabilities, Checkpoint, Credentials, Identity,
                            InvalidGrant, Lookup, Media, Metrics, Permanent, Pkce, PlatformConfig,
                            PlatformError, Published, PublishRequest, RateLimited, TokenSet,
                            Transient, ACCOUNT_METRICS, POST_METRICS)
from platforms.http import (DEFAULT_RATE_LIMIT_WAIT, excerpt, from_iso, json_or_empty,
                            retry_after, utcnow)
from platforms.text import graphemes

DEFAULT_SCOPES = ("read:accounts", "read:statuses", "write:statuses", "write:media")
URL_LENGTH = 23                      # configuration.statuses.characters_reserved_per_url
LOOKUP_PAGES = 5                     # × 40 statuses: how far back find_published looks
CLOCK_SKEW = timedelta(minutes=5)    # the instance's clock vs ours when comparing created_at
_REMOTE_MENTION = re.compile(r"(?<![\w/])@(\w+)@[\w.-]+\w", re.UNICODE)


def normalize_instance(url: str) -> str:
    """'mastodon.social', 'https://mastodon.social/' → 'https://mastodon.social'."""
    url = (url or "").strip().rstrip("/")
    if url and "://" not in url:
        url = "https://" + url
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}" if parsed.netloc else ""


def plain_text(content_html: str) -> str:
    """A status's HTML content back to comparable text. Mastodon splits long links into
    invisible/ellipsis spans but keeps every character, so stripping tags restores them."""
    text = re.sub(r"<br\s*/?>", "\n", content_html or "")
    text = re.sub(r"</p>\s*<p[^>]*>", "\n\n", text)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def comparable(text: str) -> str:
    """Whitespace collapsed and remote mentions shortened to @user: the HTML shows a mention by
    its username, so both sides are reduced to that before comparing."""
    return " ".join(_REMOTE_MENTION.sub(r"@\1", text).split())


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(str(message).split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


class MastodonAdapter(Adapter):
    name = "mastodon"
    label = "Mastodon"
    default_api_url = ""     # no global host: the instance comes with the account
    default_auth_url = ""
    capabilities = Capabilities(
        text_limit=500,
        counting="characters, an emoji counts 1 and every link 23; the limit is per instance",
        image_mimes=frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"}),
        video_mimes=frozenset({"video/mp4", "video/webm", "video/quicktime"}),
        max_images=4,
        max_videos=1,
        refresh=False,                # tokens never expire; there is nothing to refresh
        rotates_refresh_token=False,
        idempotency=True,             # Idempotency-Key: same status for 1 h per account
        reconcile=True,
        delete=True,
        connect="instance_oauth",
        pkce=True,                    # S256, Mastodon 4.3+ (§9.1)
        account_metrics=frozenset({"followers", "following", "posts"}),
        post_metrics=frozenset({"likes", "comments", "shares"}),
    )

    def __init__(self, config: PlatformConfig | None = None, *, transport=None,
                 scopes: tuple[str, ...] = DEFAULT_SCOPES):
        super().__init__(config, transport=transport)
        self._transport = transport
        self.scopes = tuple(scopes)
        self.url_length = URL_LENGTH
        self.api_url = normalize_instance(self.api_url) or self.api_url
        self.auth_url = normalize_instance(self.auth_url) or self.api_url

    def for_instance(self, instance_url: str, client_id: str = "", client_secret: str = "", *,
                     redirect_uri: str | None = None,
                     scopes: tuple[str, ...] | None = None) -> "MastodonAdapter":
        """An adapter bound to one instance and its app registration."""
        instance = normalize_instance(instance_url)
        config = replace(self.config, api_url=instance, auth_url=instance,
                         client_id=client_id or self.config.client_id,
                         client_secret=client_secret or self.config.client_secret,
                         redirect_uri=redirect_uri or self.config.redirect_uri)
        return type(self)(config, transport=self._transport, scopes=scopes or self.scopes)

    # -- text and media -------------------------------------------------------------------
    def count(self, text: str) -> int:
        """Mastodon's StatusLengthValidator: grapheme clusters, each http(s) URL as 23.
        (Remote mentions are counted in full here; Mastodon counts only @user, so we may
        overcount, never undercount.)"""
        pieces, last = [], 0
        for url in extract_urls_with_indices(text, extract_urls_without_protocol=False):
            start, end = url["indices"]
            pieces += [text[last:start], "x" * self.url_length]
            last = end
        pieces.append(text[last:])
        return graphemes("".join(pieces))

    def configure_from_instance(self, instance_url: str | None = None) -> Capabilities:
        """Read the instance's own limits (GET /api/v2/instance) into this adapter: text limit,
        URL weight, media count and accepted types. Call it on an adapter bound to the instance."""
        instance = self._base(instance_url)
        response = self.http.get(f"{instance}/api/v2/instance")
        if response.status_code != 200:
            raise self._error(response, "describe the instance")
        config = json_or_empty(response).get("configuration") or {}
        statuses = config.get("statuses") or {}
        mimes = set((config.get("media_attachments") or {}).get("supported_mime_types") or [])
        caps = self.capabilities
        caps = replace(
            caps,
            text_limit=int(statuses.get("max_characters") or caps.text_limit),
            max_images=int(statuses.get("max_media_attachments") or caps.max_images),
            image_mimes=frozenset(m for m in mimes if m.startswith("image/")) or caps.image_mimes,
            video_mimes=frozenset(m for m in mimes if m.startswith("video/")) or caps.video_mimes)
        self.capabilities = caps
        self.url_length = int(statuses.get("characters_reserved_per_url") or URL_LENGTH)
        return caps

    # -- connect --------------------------------------------------------------------------
    def register_app(self, instance_url: str, redirect_uri: str,
                     scopes: tuple[str, ...] | None = None, *, client_name: str = "Herald",
                     website: str | None = None) -> tuple[str, str]:
        """POST /api/v1/apps on the instance → (client_id, client_secret). Do it once per
        instance and keep the pair (the secret is as sensitive as a token)."""
        instance = normalize_instance(instance_url)
        if not instance:
            raise Permanent("That doesn't look like a Mastodon instance address.")
        body = {"client_name": client_name, "redirect_uris": redirect_uri,
                "scopes": " ".join(scopes or self.scopes)}
        if website:
            body["website"] = website
        # Registering twice only leaves an unused app behind, so a timeout is a plain retry.
        response = self.http.post(f"{instance}/api/v1/apps", json=body, ambiguous=False)
        app = json_or_empty(response)
        if response.status_code == 200 and app.get("client_id") and app.get("client_secret"):
            return str(app["client_id"]), str(app["client_secret"])
        if response.status_code in (200, 404, 405):
            raise Permanent(f"{urlparse(instance).netloc} doesn't look like a Mastodon instance.",
                            http_status=response.status_code, detail=excerpt(response))
        raise self._error(response, "register Herald")

    def authorize_url(self, state: str, pkce: Pkce | None = None) -> str:
        instance, client_id, _ = self._app()
        params = {"response_type": "code", "client_id": client_id,
                  "redirect_uri": self.config.redirect_uri, "scope": " ".join(self.scopes),
                  "state": state}
        if pkce is not None:
            params.update(code_challenge=pkce.challenge, code_challenge_method=pkce.method)
        return f"{instance}/oauth/authorize?{urlencode(params)}"

    def exchange_code(self, code: str, pkce: Pkce | None = None) -> TokenSet:
        instance, client_id, client_secret = self._app()
        form = {"grant_type": "authorization_code", "code": code, "client_id": client_id,
                "client_secret": client_secret, "redirect_uri": self.config.redirect_uri}
        if pkce is not None:
            form["code_verifier"] = pkce.verifier
        # The code is single-use: after a timeout a retry can only fail, so no Ambiguous here.
        response = self.http.post(f"{instance}/oauth/token", data=form, ambiguous=False)
        body = json_or_empty(response)
        if response.status_code == 200 and body.get("access_token"):
            return TokenSet(access_token=body["access_token"], refresh_token=None,
                            expires_at=None,       # "Tokens will not expire automatically"
                            scopes=tuple(str(body.get("scope") or "").split()),
                            extra={"instance_url": instance, "client_id": client_id,
                                   "created_at": body.get("created_at")})
        if body.get("error") == "invalid_client":
            raise Permanent("Mastodon doesn't recognise Herald's app on this instance; "
                            "register it again.", code="invalid_client",
                            http_status=response.status_code, detail=excerpt(response))
        if body.get("error") in ("invalid_grant", "invalid_request"):
            raise Permanent("Mastodon didn't accept the sign-in code; please connect again.",
                            code=body["error"], http_status=response.status_code,
                            detail=excerpt(response))
        raise self._error(response, "finish connecting")

    def identity(self, tokens: TokenSet) -> Identity:
        instance = self._base(tokens.extra.get("instance_url"))
        account = self._verify(instance, tokens.access_token)
        host = urlparse(instance).netloc
        return Identity(platform_user_id=str(account["id"]),
                        handle=f"{account.get('username', '')}@{host}",
                        display_name=account.get("display_name") or account.get("username", ""),
                        avatar_url=account.get("avatar") or "",
                        extra={"instance_url": instance, "url": account.get("url", "")})

    def refresh(self, credentials: Credentials) -> TokenSet:
        """Mastodon tokens don't expire and can't be refreshed. Check the token is still
        accepted and hand it back; a refused token means the person must reconnect."""
        instance = self._instance(credentials)
        try:
            self._verify(instance, credentials.access_token)
        except AuthExpired as exc:
            raise InvalidGrant("Mastodon no longer accepts this account's token; reconnect it.",
                               code=exc.code, http_status=exc.http_status,
                               detail=exc.detail) from None
        return TokenSet(access_token=credentials.access_token, refresh_token=None,
                        expires_at=None, extra={"instance_url": instance})

    def revoke(self, credentials: Credentials) -> None:
        instance = self._instance(credentials)
        client_id = credentials.extra.get("client_id") or self.config.client_id
        client_secret = credentials.extra.get("client_secret") or self.config.client_secret
        if not (client_id and client_secret):
            raise Permanent("Mastodon needs this instance's app registration to revoke the token.")
        response = self.http.post(f"{instance}/oauth/revoke", ambiguous=False,
                                  data={"client_id": client_id, "client_secret": client_secret,
                                        "token": credentials.access_token})
        if response.status_code != 200:   # revoking an unknown/revoked token is a 200 too
            raise self._error(response, "revoke the token")

    # -- publish --------------------------------------------------------------------------
    def publish(self, request: PublishRequest, credentials: Credentials,
                checkpoint: Checkpoint = lambda state: None) -> Published:
        instance = self._instance(credentials)
        media_ids = self._media(instance, request, credentials.access_token, checkpoint)
        body: dict = {"status": request.text}
        if media_ids:
            body["media_ids"] = media_ids
        for option in ("visibility", "language", "spoiler_text", "sensitive"):
            if request.options.get(option) not in (None, ""):
                body[option] = request.options[option]
        response = self.http.post(f"{instance}/api/v1/statuses", json=body,
                                  headers={**self._auth(credentials.access_token),
                                           "Idempotency-Key": request.idempotency_key})
        if response.status_code != 200:
            raise self._error(response, "publish the post")
        return self._published(json_or_empty(response))

    def find_published(self, request: PublishRequest, credentials: Credentials,
                       since: datetime) -> Lookup:
        """Look through the account's statuses since `since` for this text (and media count).
        Within an hour of the attempt, publishing again with the same idempotency key is also
        safe: Mastodon answers with the status it already created."""
        instance = self._instance(credentials)
        wanted = comparable(request.text)
        params: dict = {"limit": 40, "exclude_reblogs": "true"}
        match, covered = None, False
        for _ in range(LOOKUP_PAGES):
            response = self.http.get(
                f"{instance}/api/v1/accounts/{credentials.platform_user_id}/statuses",
                params=params, headers=self._auth(credentials.access_token))
            if response.status_code != 200:
                raise self._error(response, "list the account's posts")
            statuses = json_or_empty(response).get("_")      # a JSON list comes back as {"_": […]}
            if not isinstance(statuses, list):
                return Lookup("unknown", reason="Mastodon's list of posts was unreadable.")
            for status in statuses:   # newest first
                created = from_iso(status.get("created_at"))
                if created is not None and created < since - CLOCK_SKEW:
                    covered = True
                    break
                if (comparable(plain_text(status.get("content", ""))) == wanted
                        and len(status.get("media_attachments") or []) == len(request.media)):
                    match = status    # keep going: the oldest match is the first attempt's
            if covered or len(statuses) < params["limit"]:
                covered = True
                break
            params["max_id"] = statuses[-1]["id"]
        if match is not None:
            return Lookup("found", published=self._published(match))
        if covered:
            return Lookup("not_found", reason="No matching Mastodon post since then.")
        return Lookup("unknown", reason="Too many Mastodon posts since then to check them all.")

    def delete(self, platform_post_id: str, credentials: Credentials) -> None:
        instance = self._instance(credentials)
        response = self.http.request("DELETE", f"{instance}/api/v1/statuses/{platform_post_id}",
                                     headers=self._auth(credentials.access_token))
        if response.status_code in (200, 404):   # 404: already gone, which is what we wanted
            return
        raise self._error(response, "delete the post")

    # -- metrics --------------------------------------------------------------------------
    def account_metrics(self, credentials: Credentials) -> Metrics:
        account = self._verify(self._instance(credentials), credentials.access_token)
        values = {name: int(account[key]) for name, key in
                  (("followers", "followers_count"), ("following", "following_count"),
                   ("posts", "statuses_count")) if isinstance(account.get(key), int)}
        return Metrics(values=values, unsupported=frozenset(ACCOUNT_METRICS) - set(values))

    def post_metrics(self, platform_post_id: str, credentials: Credentials) -> Metrics:
        instance = self._instance(credentials)
        response = self.http.get(f"{instance}/api/v1/statuses/{platform_post_id}",
                                 headers=self._auth(credentials.access_token))
        if response.status_code != 200:
            raise self._error(response, "read the post")
        status = json_or_empty(response)
        reblogs = int(status.get("reblogs_count") or 0)
        quotes = int(status.get("quotes_count") or 0)      # 4.5+; absent before
        values = {"likes": int(status.get("favourites_count") or 0),
                  "comments": int(status.get("replies_count") or 0),
                  "shares": reblogs + quotes}
        # Bookmarks are private and there are no view/impression/reach counts (§9.3).
        return Metrics(values=values, unsupported=frozenset(POST_METRICS) - set(values),
                       extra={"reblogs": reblogs, "quotes": quotes})

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _auth(token: str) -> dict:
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def _base(self, instance_url: str | None) -> str:
        instance = normalize_instance(instance_url or "") or self.api_url
        if not instance:
            raise Permanent("Mastodon needs the account's instance address.")
        return instance

    def _instance(self, credentials: Credentials) -> str:
        return self._base(credentials.extra.get("instance_url"))

    def _app(self) -> tuple[str, str, str]:
        instance = self.auth_url or self.api_url
        if not (instance and self.config.client_id and self.config.client_secret):
            raise Permanent("Mastodon needs the instance's app registration first "
                            "(register_app, then for_instance).")
        return instance, self.config.client_id, self.config.client_secret

    def _verify(self, instance: str, token: str) -> dict:
        response = self.http.get(f"{instance}/api/v1/accounts/verify_credentials",
                                 headers=self._auth(token))
        if response.status_code != 200:
            raise self._error(response, "read the account")
        return json_or_empty(response)

    @staticmethod
    def _published(status: dict) -> Published:
        return Published(str(status["id"]), status.get("url") or status.get("uri") or "",
                         published_at=from_iso(status.get("created_at")))

    def _media(self, instance: str, request: PublishRequest, token: str,
               checkpoint: Checkpoint) -> list[str]:
        saved = request.state.get("media") or []
        entries: list[dict] = []
        deadline = time.monotonic() + self.config.poll_budget   # one budget for the whole post
        for index, media in enumerate(request.media):
            entry = saved[index] if index < len(saved) and isinstance(saved[index], dict) else None
            if entry and entry.get("url") == media.url and entry.get("id"):
                if self._wait_for_media(instance, token, entry["id"], deadline):
                    entries.append(entry)
                    continue
                # Gone (unattached media is cleaned up): upload it again.
            media_id, ready = self._upload(instance, token, media)
            entries.append({"url": media.url, "id": media_id})
            # Persist the id before polling: a retry resumes the wait instead of re-uploading.
            checkpoint({**request.state, "media": entries + saved[index + 1:]})
            if not ready and not self._wait_for_media(instance, token, media_id, deadline):
                raise Transient("Mastodon lost the uploaded media; will try again.")
        return [entry["id"] for entry in entries]

    def _upload(self, instance: str, token: str, media: Media) -> tuple[str, bool]:
        data = self.download(media)
        filename = (urlparse(media.url).path.rsplit("/", 1)[-1]
                    or f"upload.{media.mime.split('/')[-1]}")
        form = {"description": media.alt_text} if media.alt_text else {}
        # An orphaned upload is cleaned up by the instance, so a timeout is a plain retry.
        response = self.http.post(f"{instance}/api/v2/media", headers=self._auth(token),
                                  files={"file": (filename, data, media.mime)}, data=form,
                                  ambiguous=False)
        body = json_or_empty(response)
        if response.status_code not in (200, 202) or not body.get("id"):
            raise self._error(response, f"take the {media.kind}")
        # 200: processed synchronously (url set); 202: still processing (url null).
        return str(body["id"]), response.status_code == 200 and bool(body.get("url"))

    def _wait_for_media(self, instance: str, token: str, media_id: str, deadline: float) -> bool:
        """Poll until the attachment has a url (True) or no longer exists (False); Transient
        once the deadline (config.poll_budget) has passed. Never re-creates anything."""
        while True:
            response = self.http.get(f"{instance}/api/v1/media/{media_id}",
                                     headers=self._auth(token))
            if response.status_code == 200 and json_or_empty(response).get("url"):
                return True
            if response.status_code == 404:
                return False
            if response.status_code not in (200, 206):
                raise self._error(response, "process the media")
            if time.monotonic() + self.config.poll_interval > deadline:
                raise Transient("Mastodon is still processing the media; will try again.")
            time.sleep(self.config.poll_interval)

    def _error(self, response: httpx.Response, doing: str) -> PlatformError:
        """Mastodon errors are `{"error": "…"[, "error_description"]}` (§9.4)."""
        status = response.status_code
        body = json_or_empty(response)
        message = _short(body.get("error_description") or body.get("error") or "")
        kw = {"code": str(body.get("error"))[:80] if body.get("error") else None,
              "http_status": status, "detail": excerpt(response)}
        if status == 429:
            # X-RateLimit-Reset is an ISO 8601 instant (not epoch seconds) on Mastodon.
            reset = from_iso(response.headers.get("x-ratelimit-reset"))
            retry_at = reset or retry_after(response) or utcnow() + DEFAULT_RATE_LIMIT_WAIT
            return RateLimited("Mastodon rate limit reached; waiting until it resets.",
                               retry_at=retry_at, **kw)
        if status == 401:
            return AuthExpired("Mastodon says the access token is no longer valid.", **kw)
        if status >= 500:
            return Transient(f"Mastodon had a server error ({status}); will try again.", **kw)
        if status == 422 and "finished processing" in message:
            return Transient("Mastodon is still processing the media; will try again.", **kw)
        if status == 404:
            return Permanent(f"Mastodon couldn't find what Herald needed to {doing}.", **kw)
        if message:
            return Permanent(f"Mastodon refused to {doing}: {message}", **kw)
        return Permanent(f"Mastodon refused to {doing} ({status}).", **kw)
