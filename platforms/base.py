"""The one interface every social network implements.

Adapters are plain HTTP clients: they never touch the database and never read the
environment. The engine (tasks/) and the web connect flow (web/) hand them a
`PlatformConfig`, `Credentials` and a `PublishRequest`, and get back typed values or one
of the `PlatformError` outcomes below.

Outcome taxonomy (DESIGN §4) — what the engine does with each:

    PlatformError
    ├── RateLimited(retry_at)  wait until retry_at, then try again (not counted as a failure)
    ├── AuthExpired            refresh the token once and retry once; else needs_reauth
    ├── Transient              nothing was published; retry with backoff
    ├── Permanent              the network refused this post; never retry (duplicate, invalid media…)
    └── Ambiguous              the request may have landed (timeout after send); reconcile, never replay
"""
from __future__ import annotations

import base64
import hashlib
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Literal

# --------------------------------------------------------------------------------------
# Errors


class PlatformError(Exception):
    """A failure with a short message a person can act on ("X says this post is a duplicate")."""

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None,
                 detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code                  # the network's own error code, for the journal
        self.http_status = http_status
        self.detail = detail              # redacted response excerpt (never a token)


class RateLimited(PlatformError):
    def __init__(self, message: str, *, retry_at: datetime, **kw):
        super().__init__(message, **kw)
        self.retry_at = retry_at          # aware UTC


class AuthExpired(PlatformError):
    pass


class InvalidGrant(AuthExpired):
    """A refresh was refused for good: the person must reconnect the account."""


class Transient(PlatformError):
    pass


class Permanent(PlatformError):
    pass


class Ambiguous(PlatformError):
    pass


# --------------------------------------------------------------------------------------
# Values passed in and out


@dataclass(frozen=True)
class PlatformConfig:
    """What an adapter needs from settings. Empty URLs mean "use the network's real host"."""

    client_id: str = ""
    client_secret: str = ""
    api_url: str = ""
    auth_url: str = ""
    redirect_uri: str = ""
    timeout: float = 20.0                 # seconds per HTTP request
    poll_budget: float = 300.0            # seconds a slow media flow may poll before Transient
    poll_interval: float = 2.0            # seconds between status polls (tests set it low)

    def __repr__(self) -> str:  # the secret must never reach a log line
        return f"PlatformConfig(client_id={self.client_id!r}, api_url={self.api_url!r})"


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str
    method: str = "S256"

    @classmethod
    def generate(cls) -> "Pkce":
        verifier = secrets.token_urlsafe(64)[:96]
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return cls(verifier=verifier, challenge=challenge)


@dataclass
class TokenSet:
    """Tokens as the network returned them. `extra` carries network-specific ids
    (Instagram user id, Facebook page id, Bluesky did and PDS, Mastodon instance)."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"TokenSet(expires_at={self.expires_at!r}, scopes={self.scopes!r})"


@dataclass(frozen=True)
class Identity:
    platform_user_id: str
    handle: str
    display_name: str = ""
    avatar_url: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class Credentials:
    """What a publish/metrics call needs: the (decrypted) access token and the account ids."""

    access_token: str
    platform_user_id: str
    refresh_token: str | None = None
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Credentials(platform_user_id={self.platform_user_id!r})"


MediaKind = Literal["image", "video"]


@dataclass(frozen=True)
class Media:
    url: str                              # publicly fetchable URL (networks pull from it)
    mime: str
    kind: MediaKind
    size: int | None = None               # bytes
    width: int | None = None
    height: int | None = None
    duration: float | None = None         # seconds, video only
    alt_text: str = ""


@dataclass
class PublishRequest:
    """One target's content. `state` is what earlier attempts checkpointed (container ids,
    upload ids): an adapter resumes from it instead of creating the post again."""

    target_id: str
    text: str
    idempotency_key: str
    media: list[Media] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)


Checkpoint = Callable[[dict], None]
"""Called by an adapter with state to persist before its next step (e.g. a container id).
The dict given REPLACES the target's saved state, so adapters pass the whole state."""


@dataclass(frozen=True)
class Published:
    platform_post_id: str
    url: str
    published_at: datetime | None = None


@dataclass(frozen=True)
class Lookup:
    """Reconciliation answer: found (with the post), not_found (safe to retry), unknown."""

    status: Literal["found", "not_found", "unknown"]
    published: Published | None = None
    reason: str = ""


ACCOUNT_METRICS = ("followers", "following", "posts", "impressions", "reach", "engagement",
                   "profile_views", "likes")
POST_METRICS = ("likes", "comments", "shares", "saves", "views", "impressions", "reach")


@dataclass(frozen=True)
class Metrics:
    """Normalised metrics. A name absent from `values` and present in `unsupported` is one the
    network doesn't offer — never report it as 0."""

    values: dict[str, int]
    unsupported: frozenset[str]
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Capabilities:
    text_limit: int
    counting: str                         # how text is counted, in words for the README table
    max_bytes: int | None = None
    image_mimes: frozenset[str] = frozenset({"image/jpeg", "image/png"})
    video_mimes: frozenset[str] = frozenset({"video/mp4"})
    max_images: int = 4
    max_videos: int = 1
    requires_media: bool = False          # TikTok, Instagram and Pinterest can't post text alone
    mixed_media: bool = False             # images and a video in one post (Meta carousels)
    publish_text: bool = True
    publish_image: bool = True
    publish_video: bool = True
    refresh: bool = True
    rotates_refresh_token: bool = False
    idempotency: bool = False             # the network honours an idempotency key / record key
    reconcile: bool = False               # find_published can look a post up
    delete: bool = True
    connect: Literal["oauth", "app_password", "instance_oauth"] = "oauth"
    pkce: bool = False
    account_metrics: frozenset[str] = frozenset()
    post_metrics: frozenset[str] = frozenset()


# --------------------------------------------------------------------------------------
# The adapter interface


class Adapter(ABC):
    name: str = ""                        # registry key: "x", "linkedin", …
    label: str = ""                       # what people read: "X", "LinkedIn", …
    capabilities: Capabilities
    default_api_url: str = ""
    default_auth_url: str = ""

    def __init__(self, config: PlatformConfig | None = None, *, transport=None):
        from platforms.http import HttpClient
        self.config = config or PlatformConfig()
        self.api_url = (self.config.api_url or self.default_api_url).rstrip("/")
        self.auth_url = (self.config.auth_url or self.default_auth_url).rstrip("/")
        self.http = HttpClient(self.label, timeout=self.config.timeout, transport=transport)

    # -- text and media -------------------------------------------------------------------
    @abstractmethod
    def count(self, text: str) -> int:
        """Length of text as the network counts it."""

    def download(self, media: Media) -> bytes:
        """The bytes behind a media URL, for networks that take uploads rather than URLs.
        Failures name the media host's answer: nothing has been sent to the network yet."""
        try:
            response = self.http.get(media.url, follow_redirects=True)
        except Transient:
            raise Transient(f"Couldn't download the {media.kind} for {self.label}; "
                            "will try again.") from None
        status = response.status_code
        if status < 400:
            return response.content
        if status >= 500 or status == 429:
            raise Transient(f"Couldn't download the {media.kind} for {self.label} "
                            f"(HTTP {status}); will try again.", http_status=status)
        raise Permanent(f"Couldn't download the {media.kind} for {self.label} (HTTP {status}).",
                        http_status=status)

    def validate(self, text: str, media: list[Media]) -> list[str]:
        """Problems with this content, in plain words; empty when the network will take it."""
        from platforms.validation import validate_content
        return validate_content(self, text, media)

    # -- connect --------------------------------------------------------------------------
    @abstractmethod
    def authorize_url(self, state: str, pkce: Pkce | None = None) -> str: ...

    @abstractmethod
    def exchange_code(self, code: str, pkce: Pkce | None = None) -> TokenSet: ...

    @abstractmethod
    def identity(self, tokens: TokenSet) -> Identity: ...

    @abstractmethod
    def refresh(self, credentials: Credentials) -> TokenSet:
        """New tokens. Raises InvalidGrant when the person must reconnect."""

    @abstractmethod
    def revoke(self, credentials: Credentials) -> None: ...

    # -- publish --------------------------------------------------------------------------
    @abstractmethod
    def publish(self, request: PublishRequest, credentials: Credentials,
                checkpoint: Checkpoint = lambda state: None) -> Published: ...

    @abstractmethod
    def find_published(self, request: PublishRequest, credentials: Credentials,
                       since: datetime) -> Lookup: ...

    @abstractmethod
    def delete(self, platform_post_id: str, credentials: Credentials) -> None: ...

    # -- metrics --------------------------------------------------------------------------
    @abstractmethod
    def account_metrics(self, credentials: Credentials) -> Metrics: ...

    @abstractmethod
    def post_metrics(self, platform_post_id: str, credentials: Credentials) -> Metrics: ...
