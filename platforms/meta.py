"""What Instagram, Facebook Pages and Threads share (reference §10): the Graph API error
envelope, the usage headers, insights parsing and the container flow
(create → poll status → publish) that Instagram and Threads both use.

Errors are classified by the envelope's `error.code`, never by HTTP status alone: Meta
reports throttling as 400/403 with codes 4/17/32/613/80001/80002, not as 429.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from typing import Iterable

import httpx

from abc import abstractmethod

from platforms.base import (Adapter, Ambiguous, AuthExpired, Checkpoint, Credentials, InvalidGrant, Lookup,
                            Media, Metrics, Permanent, PlatformError, Published, PublishRequest,
                            RateLimited, TokenSet, Transient)
from platforms.http import (excerpt, from_iso, generic_status_error, in_seconds, json_or_empty,
                            retry_after, utcnow)

# The one place the API versions live. v23.0 rather than an older version because the Page
# "media view" insights that replaced page_impressions_* only exist from v23.0 (§5).
GRAPH_VERSION = "v23.0"        # graph.facebook.com and graph.instagram.com
THREADS_VERSION = "v1.0"       # graph.threads.net versions separately (§6)

AUTH_CODE = 190
THROTTLE_CODES = {4: "app", 17: "user", 32: "Page", 613: "custom",
                  80001: "Page business-use-case", 80002: "Instagram business-use-case"}
PUBLISH_CAP_CODE, PUBLISH_CAP_SUBCODE = 9, 2207042
INVALID_PARAMETER = 100
TRANSIENT_CODES = {1, 2}       # "An unknown error occurred" / "Service temporarily unavailable"
DEFAULT_THROTTLE_WAIT = timedelta(minutes=15)   # Meta's windows roll over an hour; no reset time is sent
PUBLISH_CAP_WAIT = timedelta(hours=1)           # the cap is a rolling 24 h window: re-check hourly

_TOKENISH = re.compile(r"(access_token|client_secret|code)=[^&\s]+|\b[A-Za-z0-9_\-]{40,}\b")


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _said(error: dict) -> str:
    """The network's own words, shortened, with its '(#100) ' prefix and anything token-like cut."""
    text = str(error.get("error_user_msg") or error.get("message") or "").strip()
    text = re.sub(r"^\(#\d+\)\s*", "", text)
    text = _TOKENISH.sub("[redacted]", text)
    return (text[:200].rstrip() or "no reason given").rstrip(".")


# --------------------------------------------------------------------------------------
# Usage headers


def _json_header(response: httpx.Response, name: str):
    raw = response.headers.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def usage(response: httpx.Response) -> dict[str, int]:
    """Highest percentage (0–100) per usage header present: {"app": 16, "business": 100}."""
    found: dict[str, int] = {}
    for key, header in (("app", "X-App-Usage"), ("page", "X-Page-Usage")):
        body = _json_header(response, header)
        if isinstance(body, dict):
            found[key] = max((_int(v) or 0 for v in body.values()), default=0)
    for entry in _buc_entries(response):
        percent = max((_int(entry.get(k)) or 0
                       for k in ("call_count", "total_cputime", "total_time")), default=0)
        found["business"] = max(found.get("business", 0), percent)
    return found


def _buc_entries(response: httpx.Response) -> list[dict]:
    body = _json_header(response, "X-Business-Use-Case-Usage")
    if not isinstance(body, dict):
        return []
    return [entry for entries in body.values() if isinstance(entries, list)
            for entry in entries if isinstance(entry, dict)]


def regain_access_at(response: httpx.Response) -> datetime | None:
    """When X-Business-Use-Case-Usage says access comes back (`estimated_time_to_regain_access`
    is in minutes; 0 means "not throttled", so it is no signal)."""
    minutes = max((_int(e.get("estimated_time_to_regain_access")) or 0
                   for e in _buc_entries(response)), default=0)
    return utcnow() + timedelta(minutes=minutes) if minutes > 0 else None


# --------------------------------------------------------------------------------------
# Error classification


def classify(label: str, response: httpx.Response) -> PlatformError | None:
    """The taxonomy error for a Graph response, or None when it succeeded."""
    status = response.status_code
    body = json_or_empty(response)
    error = body.get("error")
    if not isinstance(error, dict):
        if status < 400:
            return None
        if "error_message" in body:  # api.instagram.com's older {"error_type","code","error_message"}
            error = {"message": body["error_message"], "type": body.get("error_type")}
        else:
            return generic_status_error(label, response, reset=regain_access_at(response))
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    kw = {"code": f"{code}/{subcode}" if subcode else (str(code) if code is not None else None),
          "http_status": status, "detail": _TOKENISH.sub("[redacted]", excerpt(response))}
    said = _said(error)

    if code == AUTH_CODE:
        return AuthExpired(f"{label} says the access token is no longer valid ({said}).", **kw)
    if code in THROTTLE_CODES:
        retry_at = regain_access_at(response) or retry_after(response) or utcnow() + DEFAULT_THROTTLE_WAIT
        return RateLimited(f"{label} {THROTTLE_CODES[code]} rate limit reached; waiting until "
                           f"{retry_at:%H:%M} UTC.", retry_at=retry_at, **kw)
    if code == PUBLISH_CAP_CODE or subcode == PUBLISH_CAP_SUBCODE:
        # Not Permanent: the post is fine and goes through once older posts leave the rolling
        # 24-hour window (§4.2). The engine doesn't count RateLimited as a failure.
        retry_at = regain_access_at(response) or retry_after(response) or utcnow() + PUBLISH_CAP_WAIT
        return RateLimited(f"{label} says this account reached its daily publishing limit; "
                           f"trying again at {retry_at:%H:%M} UTC.", retry_at=retry_at, **kw)
    if code == 10 or (code is not None and 200 <= code <= 299):
        return Permanent(f"{label} says the app isn't allowed to do this ({said}); reconnect the "
                         f"account with the right permissions.", **kw)
    if error.get("is_transient") or status >= 500 or code in TRANSIENT_CODES:
        return Transient(f"{label} had a temporary problem ({said}); will try again.", **kw)
    if status == 429:
        retry_at = regain_access_at(response) or retry_after(response) or utcnow() + DEFAULT_THROTTLE_WAIT
        return RateLimited(f"{label} rate limit reached; waiting until {retry_at:%H:%M} UTC.",
                           retry_at=retry_at, **kw)
    # 100 (invalid parameter) and everything else the network refused for this request.
    return Permanent(f"{label} says: {said}.", **kw)


def refresh_refused(label: str, exc: PlatformError) -> PlatformError:
    """A refresh that fails for anything but a passing reason means the person must reconnect."""
    if isinstance(exc, (AuthExpired, Permanent)) and not isinstance(exc, InvalidGrant):
        return InvalidGrant(f"{label} refused to renew the access token; reconnect the account.",
                            code=exc.code, http_status=exc.http_status, detail=exc.detail)
    return exc


# --------------------------------------------------------------------------------------
# Values


def token_set(body: dict, *, scopes: Iterable[str] = (), refresh_token: str | None = None,
              extra: dict | None = None) -> TokenSet:
    if not body.get("access_token"):
        raise Permanent("The network answered the token request without a token.")
    return TokenSet(access_token=body["access_token"], refresh_token=refresh_token,
                    expires_at=in_seconds(body.get("expires_in")), scopes=tuple(scopes),
                    extra=dict(extra or {}))


def _number(value) -> int:
    """Insight values are numbers, or objects broken down by type (paid/organic, reactions)."""
    if isinstance(value, dict):
        return sum(_number(v) for v in value.values())
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    return _int(value) or 0


def insight_values(body: dict) -> dict[str, int]:
    """{"name": value} from an insights answer: `total_value.value`, else the sum of `values[]`
    (one entry for lifetime metrics, one per day for `period=day`)."""
    found: dict[str, int] = {}
    for item in body.get("data") or []:
        name = item.get("name")
        if not name:
            continue
        total = item.get("total_value")
        if isinstance(total, dict) and "value" in total:
            found[name] = _number(total["value"])
        else:
            found[name] = sum(_number(v.get("value")) for v in item.get("values") or [])
    return found


def make_metrics(values: dict[str, int], names: Iterable[str], offered: Iterable[str],
                 extra: dict | None = None) -> Metrics:
    """Keep the normalised names the network offers; the rest go to `unsupported`, never 0."""
    names, offered = tuple(names), frozenset(offered)
    return Metrics(values={k: int(v) for k, v in values.items() if k in offered and v is not None},
                   unsupported=frozenset(n for n in names if n not in offered), extra=extra or {})


def same_text(a: str | None, b: str | None) -> bool:
    norm = lambda s: " ".join((s or "").split())  # noqa: E731 - whitespace may be re-flowed
    return bool(norm(a)) and norm(a) == norm(b)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


# --------------------------------------------------------------------------------------
# Adapters


class GraphAdapter(Adapter):
    """Graph API plumbing: versioned URLs, the token as `access_token`, envelope errors."""

    api_version = GRAPH_VERSION

    def graph_url(self, path: str) -> str:
        return f"{self.api_url}/{self.api_version}/{path.lstrip('/')}"

    def graph(self, method: str, path: str, token: str, *, params: dict | None = None,
              data: dict | None = None, json: dict | None = None, ambiguous: bool | None = None) -> dict:
        query = {**(params or {}), "access_token": token}
        response = self.http.request(method, self.graph_url(path), params=query, data=data,
                                     json=json, ambiguous=ambiguous)
        return self.parse(response)

    def parse(self, response: httpx.Response) -> dict:
        error = classify(self.label, response)
        if error is not None:
            raise error
        return json_or_empty(response)

    def refresh_with(self, call):
        """Run a token call, turning refusals into InvalidGrant (reconnect needed)."""
        try:
            return call()
        except PlatformError as exc:
            raise refresh_refused(self.label, exc) from None


class ContainerAdapter(GraphAdapter):
    """Instagram and Threads publish in three steps: create a container, wait until its status
    is FINISHED, publish it. Nothing is visible until the publish step, so:

    * container creation is not an ambiguous write (an orphan container is invisible and
      expires in 24 h): a timeout there is Transient;
    * the container id is checkpointed before polling, and a retry resumes from it: a
      PUBLISHED container is never published again and no second container is created;
    * the media id is checkpointed right after publishing, before fetching the permalink.
    """

    status_fields = "status"          # fields asked for when polling a container
    status_key = "status"             # which of them holds FINISHED / PUBLISHED / ERROR …
    container_edge = ""               # media / threads: creates containers, lists posts
    publish_edge = ""                 # media_publish / threads_publish
    text_field = ""                   # caption / text, to match recent posts when reconciling
    recent_fields = ""

    # -- per network ----------------------------------------------------------------------
    @abstractmethod
    def create_container(self, request: PublishRequest, credentials: Credentials, state: dict,
                         checkpoint: Checkpoint, deadline: float) -> str:
        """Create the container to publish (carousels: children first, checkpointed)."""

    def permalink_fields(self) -> str:
        return "id,permalink,timestamp"

    @abstractmethod
    def fallback_url(self, credentials: Credentials) -> str:
        """A public URL for the account when the post's permalink can't be fetched."""

    @abstractmethod
    def container_failed(self, body: dict, status: str) -> str:
        """The reason a container ended in ERROR, in words, from its status body."""

    # -- the flow -------------------------------------------------------------------------
    def publish(self, request: PublishRequest, credentials: Credentials,
                checkpoint: Checkpoint = lambda state: None) -> Published:
        token, user = credentials.access_token, credentials.platform_user_id
        deadline = time.monotonic() + self.config.poll_budget   # one budget per attempt
        state = dict(request.state)
        if state.get("media_id"):      # an earlier attempt published; only its answer was lost
            return self.published(state["media_id"], credentials)
        container = state.get("container_id")
        if not container:
            container = self.create_container(request, credentials, state, checkpoint, deadline)
            state["container_id"] = container
            checkpoint(dict(state))
        if self.wait_for(container, token, deadline) == "PUBLISHED":
            # Containers live 24 h, so the post can't be older than that.
            return self.recover(request, credentials, container, since=utcnow() - timedelta(days=1))
        body = self.graph("POST", f"{user}/{self.publish_edge}", token,
                          params={"creation_id": container})
        media_id = str(body.get("id") or "")
        if not media_id:
            raise Ambiguous(f"{self.label} answered the publish call without a post id.",
                            detail=str(body)[:200])
        state["media_id"] = media_id
        checkpoint(dict(state))
        return self.published(media_id, credentials)

    def carousel(self, request: PublishRequest, credentials: Credentials, state: dict,
                 checkpoint: Checkpoint, deadline: float, caption_param: str) -> str:
        """Carousel: one child container per item, checkpointed one by one (so a retry only
        creates the missing ones), each FINISHED, then the carousel container itself."""
        children = list(state.get("children") or [])
        for item in request.media[len(children):]:
            children.append(self.new_container(credentials, self._item(item, None, child=True)))
            state["children"] = children
            checkpoint(dict(state))
        for child in children:
            self.wait_for(child, credentials.access_token, deadline)
        return self.new_container(credentials, {"media_type": "CAROUSEL",
                                                "children": ",".join(children),
                                                caption_param: request.text})

    def new_container(self, credentials: Credentials, params: dict) -> str:
        body = self.graph("POST", f"{credentials.platform_user_id}/{self.container_edge}",
                          credentials.access_token, data=params, ambiguous=False)
        if not body.get("id"):
            raise Transient(f"{self.label} didn't return a container id; will try again.")
        return str(body["id"])

    def container_status(self, container: str, token: str) -> tuple[str, dict]:
        body = self.graph("GET", container, token, params={"fields": self.status_fields})
        return str(body.get(self.status_key) or "").upper(), body

    def wait_for(self, container: str, token: str, deadline: float) -> str:
        """Poll until FINISHED or PUBLISHED; ERROR/EXPIRED → Permanent; past the deadline →
        Transient (the container id is already checkpointed, so the retry picks up here)."""
        while True:
            status, body = self.container_status(container, token)
            if status in ("FINISHED", "PUBLISHED"):
                return status
            if status in ("ERROR", "EXPIRED"):
                raise Permanent(self.container_failed(body, status), code=status,
                                detail=str(body)[:300])
            if time.monotonic() + self.config.poll_interval > deadline:
                raise Transient(f"{self.label} is still processing the media; will check again.",
                                code=status or "IN_PROGRESS")
            time.sleep(self.config.poll_interval)

    def published(self, media_id: str, credentials: Credentials) -> Published:
        """Published with the permalink. The post is live already: a failed permalink lookup
        must never turn into an error (the engine would retry a post that exists)."""
        try:
            body = self.graph("GET", media_id, credentials.access_token,
                              params={"fields": self.permalink_fields()})
        except PlatformError:
            return Published(media_id, self.fallback_url(credentials))
        return Published(media_id, body.get("permalink") or self.fallback_url(credentials),
                         from_iso(body.get("timestamp")))

    def recent(self, credentials: Credentials, since: datetime | None) -> list[dict]:
        params = {"fields": self.recent_fields, "limit": 25}
        if since is not None:
            params["since"] = epoch(since)
        body = self.graph("GET", f"{credentials.platform_user_id}/{self.container_edge}",
                          credentials.access_token, params=params)
        return body.get("data") or []

    def match_recent(self, request: PublishRequest, credentials: Credentials,
                     since: datetime | None) -> Published | None:
        for item in self.recent(credentials, since):
            when = from_iso(item.get("timestamp"))
            if since is not None and when is not None and when < since - timedelta(minutes=5):
                continue
            if same_text(item.get(self.text_field), request.text):
                return Published(str(item["id"]), item.get("permalink") or
                                 self.fallback_url(credentials), when)
        return None

    def recover(self, request: PublishRequest, credentials: Credentials, container: str,
                since: datetime) -> Published:
        """The container says PUBLISHED but we never saw the media id: find the post by its
        text; failing that, report the container id (the post exists — never publish again)."""
        found = self.match_recent(request, credentials, since)
        return found or Published(container, self.fallback_url(credentials))

    def find_published(self, request: PublishRequest, credentials: Credentials,
                       since: datetime) -> Lookup:
        state = request.state
        if state.get("media_id"):
            return Lookup("found", self.published(state["media_id"], credentials),
                          reason="the publish call had answered")
        container = state.get("container_id")
        if container:
            status, _ = self.container_status(container, credentials.access_token)
            if status == "PUBLISHED":
                return Lookup("found", self.recover(request, credentials, container, since),
                              reason="the container is PUBLISHED")
            # FINISHED / IN_PROGRESS: a retry publishes this same container, which can only
            # ever be published once. ERROR / EXPIRED: it never went out.
            return Lookup("not_found", reason=f"the container is {status or 'unknown'}")
        found = self.match_recent(request, credentials, since)
        if found:
            return Lookup("found", found, reason="a recent post has the same text")
        # We checkpoint the container id before any publish call, so without one nothing
        # could have been published.
        return Lookup("not_found", reason="no container was created")


def media_param(item: Media) -> str:
    return "video_url" if item.kind == "video" else "image_url"
