"""Bluesky (AT Protocol): app-password sessions, posts as records in the account's repo.

Contract: shared/reference/platforms.md §8 and the lexicons in specs/bluesky-lexicons/.

Choices worth knowing:
- Connect. Bluesky's OAuth profile needs PAR, DPoP and hosted client metadata (reference §8.2);
  a bot signs in with an app password instead, so `create_session(identifier, app_password)`
  takes the place of authorize_url/exchange_code (which raise Permanent and say so).
- Never twice. There is no idempotency header, but the client may choose the record key. The
  rkey is derived from the request's idempotency key (TID syntax, as the post lexicon's
  `"key": "tid"` asks), so every attempt writes the same at:// URI. A PDS refuses a create on an
  existing key (the reference PDS answers a bare 500 from its MST; others may answer 400), so on
  any refused create we look the record up and, when it is there, report it as published.
- Rich text. Bluesky detects nothing itself: links, mentions and hashtags are sent as facets
  whose offsets count UTF-8 bytes.
- Video uses the documented "simple method" (docs.bsky.app/docs/tutorials/video): upload the mp4
  as a blob to the PDS and embed it with app.bsky.embed.video; the video service transcodes it
  after the post appears (the post shows a placeholder for a few seconds).
"""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import httpx
import regex

from platforms.base import (Adapter, AuthExpired, Capabilities, Checkpoint, Credentials, Identity,
                            InvalidGrant, Lookup, Media, Metrics, Permanent, Pkce, PlatformError,
                            Published, PublishRequest, RateLimited, TokenSet, Transient,
                            ACCOUNT_METRICS, POST_METRICS)
from platforms.http import (DEFAULT_RATE_LIMIT_WAIT, excerpt, from_epoch, from_iso, json_or_empty,
                            retry_after, utcnow)
from platforms.text import graphemes

POST = "app.bsky.feed.post"
ACCESS_LIFETIME = timedelta(minutes=120)     # reference PDS (§8.1), used when the JWT is opaque
REFRESH_LIFETIME = timedelta(days=90)
IMAGE_MAX_BYTES = 2_000_000                  # app.bsky.embed.images#image maxSize
VIDEO_MAX_BYTES = 50_000_000                 # PDS hard blob cap (§8.3); the lexicon says 100 MB
BLOB_REUSE = timedelta(minutes=5)            # unreferenced blobs are GC'd "within minutes"; a
                                             # re-upload is harmless (same bytes, same CID)
TAG_MAX_GRAPHEMES = 64                       # app.bsky.richtext.facet#tag
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"

# Facet detection follows the official RichText.detectFacets (@atproto/api): a mention or link
# starts the text or follows whitespace or "("; a hashtag starts the text or follows whitespace.
_MENTION = regex.compile(r"(?:^|(?<=[\s(]))@([a-zA-Z0-9.-]+)\b")
_HANDLE = regex.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
                        r"[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_LINK = regex.compile(r"(?:^|(?<=[\s(]))(https?://\S+)", regex.IGNORECASE)
_INVISIBLE = "\u00AD\u2060\u200A\u200B\u200C\u200D\u20e2"
_TAG = regex.compile(
    rf"(?:^|(?<=\s))([#＃])((?!\ufe0f)[^\s{_INVISIBLE}]*[^\d\s\p{{P}}{_INVISIBLE}]+"
    rf"[^\s{_INVISIBLE}]*)")


def record_key(idempotency_key: str) -> str:
    """The rkey every attempt of one request writes to: a TID-syntax key (13 base32-sortable
    characters of a 63-bit number) taken from a hash of the idempotency key. The PDS checks only
    record-key syntax (prepare.ts: "validate against Lexicon record 'key' type" is still open upstream), but
    following the lexicon's `tid` keeps us valid if that check arrives. The timestamp bits are
    therefore not a time; nothing orders posts by them (feeds sort by createdAt/indexedAt)."""
    digest = hashlib.sha256(f"herald:bluesky:{idempotency_key}".encode("utf-8")).digest()
    number = int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)   # TIDs keep the top bit zero
    return "".join(_TID_ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(13)))


def detect_facets(text: str) -> list[tuple[int, int, str, str]]:
    """(byteStart, byteEnd, kind, value) for each link, mention (value: handle) and hashtag
    (value: tag without '#'). Offsets count UTF-8 bytes, as app.bsky.richtext.facet#byteSlice
    requires; Python indexes code points, so each offset is the byte length of the prefix."""
    def span(start: int, end: int) -> tuple[int, int]:
        return len(text[:start].encode("utf-8")), len(text[:end].encode("utf-8"))

    found: list[tuple[int, int, str, str]] = []
    for match in _MENTION.finditer(text):
        handle = match.group(1).rstrip(".")
        if _HANDLE.match(handle):
            found.append((*span(match.start(), match.start(1) + len(handle)), "mention",
                          handle.lower()))
    for match in _LINK.finditer(text):
        uri = match.group(1)
        # Sentence punctuation and an unbalanced ")" belong to the text, not the link.
        while uri and (uri[-1] in ".,;:!?'\"" or (uri[-1] == ")" and "(" not in uri)):
            uri = uri[:-1]
        if len(uri) > len("https://"):
            found.append((*span(match.start(1), match.start(1) + len(uri)), "link", uri))
    for match in _TAG.finditer(text):
        tag = regex.sub(r"\p{P}+$", "", match.group(2).strip())
        if tag and graphemes(tag) <= TAG_MAX_GRAPHEMES:
            found.append((*span(match.start(1), match.start(2) + len(tag)), "tag", tag))
    found.sort()
    # A later facet overlapping an earlier one (e.g. "@a.b" inside a link) is dropped.
    kept: list[tuple[int, int, str, str]] = []
    for facet in found:
        if not kept or facet[0] >= kept[-1][1]:
            kept.append(facet)
    return kept


def _jwt_expiry(token: str) -> datetime | None:
    """`exp` from a JWT payload, read without verifying (the PDS verifies; we only schedule)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), timezone.utc)
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(str(message).split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _iso_now() -> str:
    """atproto datetime: RFC 3339 with milliseconds and Z (createdAt must satisfy both RFC 3339
    and ISO 8601, prepare.ts assertValidCreatedAt)."""
    now = utcnow()
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class BlueskyAdapter(Adapter):
    name = "bluesky"
    label = "Bluesky"
    default_api_url = "https://bsky.social"   # entryway: sign-in; the account's PDS comes back
    default_auth_url = "https://bsky.social"  # in the session's DID document
    capabilities = Capabilities(
        text_limit=300,
        counting="grapheme clusters, an emoji counts 1; at most 3000 bytes",
        max_bytes=3000,
        image_mimes=frozenset({"image/jpeg", "image/png", "image/webp"}),
        video_mimes=frozenset({"video/mp4"}),
        max_images=4,
        max_videos=1,
        refresh=True,
        rotates_refresh_token=True,
        idempotency=True,             # our deterministic rkey: a retry can't make a second post
        reconcile=True,
        delete=True,
        connect="app_password",
        pkce=False,
        account_metrics=frozenset({"followers", "following", "posts"}),
        post_metrics=frozenset({"likes", "comments", "shares", "saves"}),
    )

    record_key = staticmethod(record_key)

    def __init__(self, config=None, *, transport=None):
        super().__init__(config, transport=transport)
        # Sign-in goes to the entryway; a test or self-hosted PDS set as api_url serves both.
        self.auth_url = (self.config.auth_url or self.api_url).rstrip("/")

    # -- text and media -------------------------------------------------------------------
    def count(self, text: str) -> int:
        return graphemes(text)

    def validate(self, text: str, media: list[Media]) -> list[str]:
        problems = super().validate(text, media)
        for item in media:
            limit = IMAGE_MAX_BYTES if item.kind == "image" else VIDEO_MAX_BYTES
            if item.size is not None and item.size > limit:
                problems.append(f"Bluesky takes {item.kind}s up to {limit // 1_000_000} MB; "
                                f"this one is {item.size / 1_000_000:.1f} MB.")
        return problems

    # -- connect --------------------------------------------------------------------------
    def authorize_url(self, state: str, pkce: Pkce | None = None) -> str:
        raise Permanent("Bluesky connects with your handle and an app password "
                        "(Settings → Privacy and security → App passwords), not a sign-in link.")

    def exchange_code(self, code: str, pkce: Pkce | None = None) -> TokenSet:
        raise Permanent("Bluesky connects with your handle and an app password, "
                        "not a sign-in code.")

    def create_session(self, identifier: str, app_password: str) -> TokenSet:
        """Sign in with a handle (or DID/email) and an app password. The password is used for
        this one call and not kept: the session's refreshJwt keeps the account connected."""
        response = self._xrpc("POST", "com.atproto.server.createSession", self.auth_url,
                              json={"identifier": identifier.strip().lstrip("@"),
                                    "password": app_password},
                              ambiguous=False)   # a repeated sign-in is harmless
        if response.status_code != 200:
            raise self._session_error(response)
        return self._tokens(json_or_empty(response))

    def identity(self, tokens: TokenSet) -> Identity:
        pds = tokens.extra.get("pds_url") or self.api_url
        did = tokens.extra.get("did", "")
        profile = self._get(pds, "app.bsky.actor.getProfile", tokens.access_token,
                            {"actor": did or tokens.extra.get("handle", "")}, "read the profile")
        return Identity(platform_user_id=profile.get("did") or did,
                        handle=profile.get("handle") or tokens.extra.get("handle", ""),
                        display_name=profile.get("displayName") or "",
                        avatar_url=profile.get("avatar") or "",
                        extra={"pds_url": pds})

    def refresh(self, credentials: Credentials) -> TokenSet:
        """refreshSession with the refreshJwt as bearer. The answer carries a new refreshJwt and
        the old one stops working (after a short grace period): persist the returned tokens."""
        if not credentials.refresh_token:
            raise InvalidGrant("Bluesky session has no refresh token; reconnect the account.")
        response = self._xrpc("POST", "com.atproto.server.refreshSession", self._pds(credentials),
                              token=credentials.refresh_token, ambiguous=False)
        if response.status_code == 200:
            return self._tokens(json_or_empty(response), fallback_pds=self._pds(credentials))
        error = self._error(response, "refresh the session")
        if isinstance(error, (RateLimited, Transient)):
            raise error
        if error.code == "AccountTakedown":
            raise InvalidGrant("Bluesky has taken this account down.", code=error.code,
                               http_status=error.http_status, detail=error.detail)
        # ExpiredToken, InvalidToken (rotated or revoked), AuthMissing…: only a new sign-in helps.
        raise InvalidGrant("Bluesky ended this session; reconnect the account with an app "
                           "password.",
                           code=error.code, http_status=error.http_status, detail=error.detail)

    def revoke(self, credentials: Credentials) -> None:
        """deleteSession takes the refreshJwt. A session that is already gone counts as revoked."""
        if not credentials.refresh_token:
            return
        response = self._xrpc("POST", "com.atproto.server.deleteSession", self._pds(credentials),
                              token=credentials.refresh_token, ambiguous=False)
        if response.status_code == 200:
            return
        error = self._error(response, "end the session")
        if isinstance(error, AuthExpired):
            return
        raise error

    # -- publish --------------------------------------------------------------------------
    def publish(self, request: PublishRequest, credentials: Credentials,
                checkpoint: Checkpoint = lambda state: None) -> Published:
        pds, token = self._pds(credentials), credentials.access_token
        did = credentials.platform_user_id
        rkey = record_key(request.idempotency_key)
        # Reads first (handle resolution), then blob uploads (checkpointed), then the one write.
        record: dict = {"$type": POST, "text": request.text, "createdAt": _iso_now()}
        facets = self._facets(request.text, pds, token)
        if facets:
            record["facets"] = facets
        langs = request.options.get("langs") or request.options.get("language")
        if langs:
            record["langs"] = ([langs] if isinstance(langs, str) else list(langs))[:3]
        embed = self._embed(request, pds, token, checkpoint)
        if embed:
            record["embed"] = embed

        response = self._xrpc("POST", "com.atproto.repo.createRecord", pds, token=token,
                              json={"repo": did, "collection": POST, "rkey": rkey,
                                    "validate": True, "record": record})
        if response.status_code == 200:
            uri = json_or_empty(response).get("uri") or f"at://{did}/{POST}/{rkey}"
            return Published(uri, self.post_url(uri), published_at=from_iso(record["createdAt"]))
        error = self._error(response, "publish the post")
        if isinstance(error, (RateLimited, AuthExpired)):
            raise error
        # Refused: perhaps because an earlier attempt already wrote this rkey.
        try:
            existing = self._get_post(pds, token, did, rkey)
        except PlatformError:
            raise error from None
        if existing is not None:
            return existing
        raise error

    def find_published(self, request: PublishRequest, credentials: Credentials,
                       since: datetime) -> Lookup:
        did = credentials.platform_user_id
        rkey = record_key(request.idempotency_key)
        published = self._get_post(self._pds(credentials), credentials.access_token, did, rkey)
        if published is None:
            return Lookup("not_found", reason=f"No Bluesky post at rkey {rkey}.")
        return Lookup("found", published=published)

    def delete(self, platform_post_id: str, credentials: Credentials) -> None:
        did, collection, rkey = self._parse_uri(platform_post_id)
        response = self._xrpc("POST", "com.atproto.repo.deleteRecord", self._pds(credentials),
                              token=credentials.access_token,
                              json={"repo": did, "collection": collection, "rkey": rkey})
        if response.status_code != 200:   # deleteRecord is idempotent: gone is fine
            raise self._error(response, "delete the post")

    # -- metrics --------------------------------------------------------------------------
    def account_metrics(self, credentials: Credentials) -> Metrics:
        profile = self._get(self._pds(credentials), "app.bsky.actor.getProfile",
                            credentials.access_token, {"actor": credentials.platform_user_id},
                            "read the profile")
        values = {name: int(profile[key]) for name, key in
                  (("followers", "followersCount"), ("following", "followsCount"),
                   ("posts", "postsCount")) if isinstance(profile.get(key), int)}
        return Metrics(values=values, unsupported=frozenset(ACCOUNT_METRICS) - set(values),
                       extra={"handle": profile.get("handle", "")})

    def post_metrics(self, platform_post_id: str, credentials: Credentials) -> Metrics:
        self._parse_uri(platform_post_id)
        body = self._get(self._pds(credentials), "app.bsky.feed.getPosts",
                         credentials.access_token, {"uris": [platform_post_id]}, "read the post")
        posts = [p for p in body.get("posts") or [] if p.get("uri") == platform_post_id]
        if not posts:
            raise Permanent("Bluesky can't find this post; it may have been deleted.")
        post = posts[0]
        counts = {key: int(post.get(key) or 0) for key in
                  ("likeCount", "replyCount", "repostCount", "quoteCount")}
        values = {"likes": counts["likeCount"], "comments": counts["replyCount"],
                  "shares": counts["repostCount"] + counts["quoteCount"]}
        if isinstance(post.get("bookmarkCount"), int):   # newer AppViews only
            values["saves"] = post["bookmarkCount"]
        # No view, impression or reach counts exist on Bluesky (§8.4).
        return Metrics(values=values, unsupported=frozenset(POST_METRICS) - set(values),
                       extra={"reposts": counts["repostCount"], "quotes": counts["quoteCount"]})

    # -- helpers --------------------------------------------------------------------------
    def post_url(self, uri: str) -> str:
        """bsky.app link by DID: unlike the handle, it survives a handle change."""
        did, _, rkey = self._parse_uri(uri)
        return f"https://bsky.app/profile/{did}/post/{rkey}"

    @staticmethod
    def _parse_uri(uri: str) -> tuple[str, str, str]:
        parts = uri.removeprefix("at://").split("/") if uri.startswith("at://") else []
        if len(parts) != 3 or not all(parts):
            raise Permanent(f"Not a Bluesky post id: {uri[:80]!r}.")
        return parts[0], parts[1], parts[2]

    def _pds(self, credentials: Credentials) -> str:
        return (credentials.extra.get("pds_url") or self.api_url).rstrip("/")

    def _xrpc(self, method: str, nsid: str, base: str, *, token: str | None = None,
              params: dict | None = None, json: dict | None = None, content: bytes | None = None,
              content_type: str | None = None, ambiguous: bool | None = None) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return self.http.request(method, f"{base.rstrip('/')}/xrpc/{nsid}", params=params,
                                 json=json, content=content, headers=headers, ambiguous=ambiguous)

    def _get(self, base: str, nsid: str, token: str, params: dict, doing: str) -> dict:
        response = self._xrpc("GET", nsid, base, token=token, params=params)
        if response.status_code != 200:
            raise self._error(response, doing)
        return json_or_empty(response)

    def _get_post(self, pds: str, token: str, did: str, rkey: str) -> Published | None:
        response = self._xrpc("GET", "com.atproto.repo.getRecord", pds, token=token,
                              params={"repo": did, "collection": POST, "rkey": rkey})
        if response.status_code == 200:
            body = json_or_empty(response)
            uri = body.get("uri") or f"at://{did}/{POST}/{rkey}"
            created = (body.get("value") or {}).get("createdAt")
            return Published(uri, self.post_url(uri), published_at=from_iso(created))
        body = json_or_empty(response)
        # Current lexicon: RecordNotFound; older PDSes: InvalidRequest "Could not locate record".
        if response.status_code == 400 and (
                body.get("error") == "RecordNotFound"
                or "could not locate record" in str(body.get("message", "")).lower()):
            return None
        raise self._error(response, "look the post up")

    def _tokens(self, session: dict, fallback_pds: str | None = None) -> TokenSet:
        if not all(isinstance(session.get(k), str) for k in ("accessJwt", "refreshJwt", "did")):
            raise Transient("Bluesky's session answer was incomplete; will try again.")
        access, refresh = session["accessJwt"], session["refreshJwt"]
        now = utcnow()
        pds = self._pds_from(session.get("didDoc")) or fallback_pds or self.api_url
        return TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=_jwt_expiry(access) or now + ACCESS_LIFETIME,
            refresh_expires_at=_jwt_expiry(refresh) or now + REFRESH_LIFETIME,
            scopes=("atproto",),
            extra={"did": session["did"], "handle": session.get("handle", ""),
                   "pds_url": pds})

    @staticmethod
    def _pds_from(did_doc) -> str | None:
        """The account's PDS from its DID document (service "#atproto_pds")."""
        if not isinstance(did_doc, dict):
            return None
        for service in did_doc.get("service") or []:
            if isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds"):
                endpoint = service.get("serviceEndpoint")
                if isinstance(endpoint, str) and urlparse(endpoint).scheme in ("http", "https"):
                    return endpoint.rstrip("/")
        return None

    def _facets(self, text: str, pds: str, token: str) -> list[dict]:
        facets = []
        for start, end, kind, value in detect_facets(text):
            if kind == "mention":
                did = self._resolve_handle(pds, token, value)
                if did is None:          # unknown handle: plain text, as the app does
                    continue
                feature = {"$type": "app.bsky.richtext.facet#mention", "did": did}
            elif kind == "link":
                feature = {"$type": "app.bsky.richtext.facet#link", "uri": value}
            else:
                feature = {"$type": "app.bsky.richtext.facet#tag", "tag": value}
            facets.append({"index": {"byteStart": start, "byteEnd": end}, "features": [feature]})
        return facets

    def _resolve_handle(self, pds: str, token: str, handle: str) -> str | None:
        response = self._xrpc("GET", "com.atproto.identity.resolveHandle", pds, token=token,
                              params={"handle": handle})
        if response.status_code == 200:
            did = json_or_empty(response).get("did")
            return did if isinstance(did, str) and did.startswith("did:") else None
        if response.status_code == 400:     # InvalidRequest / HandleNotFound: no such account
            return None
        # Rate limit, outage: nothing is published yet, so say so rather than drop the mention.
        raise self._error(response, "look up a mentioned handle")

    def _embed(self, request: PublishRequest, pds: str, token: str,
               checkpoint: Checkpoint) -> dict | None:
        if not request.media:
            return None
        kinds = [m.kind for m in request.media]
        if "video" in kinds and len(kinds) > 1:
            # One embed per post: images or a single video (app.bsky.feed.post#embed).
            raise Permanent("Bluesky takes either up to 4 images or one video in a post.")
        saved = request.state.get("blobs") or []
        entries: list[dict | None] = []
        for index, media in enumerate(request.media):
            entry = saved[index] if index < len(saved) and isinstance(saved[index], dict) else None
            if entry and entry.get("url") == media.url and self._fresh(entry.get("uploaded_at")):
                entries.append(entry)
                continue
            blob = self._upload_blob(pds, token, media)
            entries.append({"url": media.url, "blob": blob, "uploaded_at": utcnow().isoformat()})
            checkpoint({**request.state, "blobs": entries + saved[index + 1:]})

        def aspect(media: Media) -> dict:
            return ({"aspectRatio": {"width": media.width, "height": media.height}}
                    if media.width and media.height else {})

        videos = [(m, e) for m, e in zip(request.media, entries) if m.kind == "video"]
        if videos:
            media, entry = videos[0]
            embed = {"$type": "app.bsky.embed.video", "video": entry["blob"], **aspect(media)}
            if media.alt_text:
                embed["alt"] = media.alt_text
            return embed
        return {"$type": "app.bsky.embed.images",
                "images": [{"image": e["blob"], "alt": m.alt_text or "", **aspect(m)}
                           for m, e in zip(request.media, entries)]}

    @staticmethod
    def _fresh(uploaded_at: str | None) -> bool:
        when = from_iso(uploaded_at)
        return when is not None and utcnow() - when < BLOB_REUSE

    def _upload_blob(self, pds: str, token: str, media: Media) -> dict:
        data = self.download(media)
        limit = IMAGE_MAX_BYTES if media.kind == "image" else VIDEO_MAX_BYTES
        if len(data) > limit:
            raise Permanent(f"Bluesky takes {media.kind}s up to {limit // 1_000_000} MB; "
                            f"this one is {len(data) / 1_000_000:.1f} MB.")
        # An upload repeated after a timeout only stores the same content-addressed blob again.
        response = self._xrpc("POST", "com.atproto.repo.uploadBlob", pds, token=token,
                              content=data, content_type=media.mime, ambiguous=False)
        if response.status_code != 200:
            raise self._error(response, f"take the {media.kind}")
        blob = json_or_empty(response).get("blob")
        if not isinstance(blob, dict) or "ref" not in blob:
            raise Transient("Bluesky's upload answer had no blob; will try again.",
                            detail=excerpt(response))
        return blob

    def _session_error(self, response: httpx.Response) -> PlatformError:
        error = self._error(response, "sign in")
        if isinstance(error, (RateLimited, Transient)):
            return error
        messages = {
            "AuthFactorTokenRequired":
                "Bluesky asked for an email code; use an app password instead.",
            "AccountTakedown": "Bluesky has taken this account down.",
        }
        message = messages.get(error.code or "",
                               "Bluesky didn't accept that handle and app password.")
        return Permanent(message, code=error.code, http_status=error.http_status,
                         detail=error.detail)

    def _error(self, response: httpx.Response, doing: str) -> PlatformError:
        """XRPC errors are `{"error": Name, "message": …}` (§8.5); classify by name first."""
        status = response.status_code
        body = json_or_empty(response)
        name = str(body.get("error") or "") or None
        message = _short(body.get("message") or "")
        kw = {"code": name, "http_status": status, "detail": excerpt(response)}
        if status == 429 or name == "RateLimitExceeded":
            reset = from_epoch(response.headers.get("ratelimit-reset"))
            retry_at = reset or retry_after(response) or utcnow() + DEFAULT_RATE_LIMIT_WAIT
            return RateLimited("Bluesky rate limit reached; waiting until it resets.",
                               retry_at=retry_at, **kw)
        if name == "ExpiredToken":
            return AuthExpired("Bluesky session expired.", **kw)
        if name in ("InvalidToken", "AuthMissing", "AuthRequired", "AuthenticationRequired") \
                or status == 401:
            # A revoked or wrongly scoped session: refreshing (or else reconnecting) is the fix,
            # so this is an auth outcome, not a refusal of the post.
            return AuthExpired("Bluesky no longer accepts this session.", **kw)
        if status >= 500:
            return Transient(f"Bluesky had a server error ({status}); will try again.", **kw)
        if status == 413:
            return Permanent(f"Bluesky says the file is too large to {doing}.", **kw)
        if message:
            return Permanent(f"Bluesky refused to {doing}: {message}", **kw)
        return Permanent(f"Bluesky refused to {doing} ({status}).", **kw)
