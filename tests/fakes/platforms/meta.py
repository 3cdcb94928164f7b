"""What the three Meta fakes share (reference §10, §11.5): the Graph error envelope, tokens
(short → long-lived, refresh, expiry and revocation answered with code 190), the usage headers,
throttling on a 4xx with the throttle codes, the container state machine
IN_PROGRESS → FINISHED → PUBLISHED (with an ERROR switch), and an authorize endpoint that sends
the browser back to redirect_uri with `code` and `state`.

Time in the container state machine is counted in status polls, so tests never sleep:
`finish_after=2` means the second status poll sees FINISHED.
"""
from __future__ import annotations

import html
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Flask, Response, redirect, request
from werkzeug.serving import make_server

from platforms.meta import GRAPH_VERSION
from tests.fakes.server import FakeServer

THROTTLE_MESSAGES = {
    4: "(#4) Application request limit reached",
    9: "(#9) The user has reached the limit of posts allowed in 24 hours",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80001: "(#80001) There have been too many calls to this Page account. Wait a bit and try again.",
    80002: "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again.",
}
SHORT_LIFETIME = 3600            # 1 h
LONG_LIFETIME = 5183944          # ~60 d, the value in Meta's long-lived token docs


def envelope(code: int, message: str, *, subcode: int | None = None, is_transient: bool = False,
             type: str = "OAuthException", user_msg: str | None = None) -> dict:
    error = {"message": message, "type": type, "code": code, "is_transient": is_transient,
             "fbtrace_id": "A" + secrets.token_hex(8)}
    if subcode is not None:
        error["error_subcode"] = subcode
    if user_msg:
        error["error_user_title"] = "Error"
        error["error_user_msg"] = user_msg
    return {"error": error}


class GraphError(Exception):
    """Raised in a handler; answered as the Graph error envelope."""

    def __init__(self, code: int, message: str, *, status: int = 400, **kw):
        super().__init__(message)
        self.status = status
        self.body = envelope(code, message, **kw)


def not_found(node: str) -> GraphError:
    return GraphError(100, f"Unsupported request. Object with ID '{node}' does not exist, cannot "
                           "be loaded due to missing permissions, or does not support this "
                           "operation.", subcode=33)


def missing_permission() -> GraphError:
    return GraphError(10, "(#10) Application does not have permission for this action",
                      status=403)


def stamp(epoch: float) -> str:
    """Meta's timestamp format: 2026-11-21T23:00:00+0000."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def split_fields(fields: str | None) -> list[str]:
    """`a,b.summary(total_count),c{d,e}` → ["a", "b", "c"] (top-level names only)."""
    names, depth, current = [], 0, ""
    for char in fields or "":
        if char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
        if char == "," and depth == 0:
            names.append(current)
            current = ""
        else:
            current += char
    names.append(current)
    return [n.split(".")[0].split("{")[0].split("(")[0].strip() for n in names if n.strip()]


def pick(obj: dict, fields: str | None, always: tuple = ("id",)) -> dict:
    wanted = split_fields(fields) or list(obj)
    return {k: obj[k] for k in (*always, *wanted) if k in obj}


@dataclass
class Token:
    value: str
    user: str                      # the account the token acts for
    kind: str                      # short | long | page
    scopes: frozenset
    expires_at: float | None
    person: str = ""               # the person behind a page token
    revoked: bool = False
    issued_at: float = field(default_factory=time.time)

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and time.time() >= self.expires_at


@dataclass
class Grant:
    redirect_uri: str
    scopes: frozenset
    user: str


@dataclass
class Container:
    id: str
    owner: str
    params: dict
    finish_after: int              # status polls before FINISHED
    polls: int = 0
    status: str = "IN_PROGRESS"
    error: str = ""                # set → the next poll answers ERROR
    media_id: str | None = None
    created_at: float = field(default_factory=time.time)


class GraphFake(FakeServer):
    """Base for the Instagram, Facebook and Threads fakes. Subclasses add routes in `routes`."""

    name = "graph"
    version = GRAPH_VERSION          # the adapters' constant, so paths can't drift apart
    authorize_path = "/oauth/authorize"
    buc_type = "pages"               # the `type` in X-Business-Use-Case-Usage entries
    client_id = "meta-app-id"
    client_secret = "meta-app-secret"
    id_base = 17_000_000_000_000_000
    token_prefix = "EAA"
    default_scopes: tuple = ()       # what token_for() grants

    def __init__(self):
        self.tokens: dict[str, Token] = {}
        self.codes: dict[str, Grant] = {}
        self.containers: dict[str, Container] = {}
        self.posts: dict[str, dict] = {}           # published posts, in creation order
        self._ids = itertools.count(1)
        self.finish_after = 2                      # polls until an image/text container is ready
        self.video_finish_after = 3
        self.next_container_error: str | None = None
        self.interactive = False                   # True: the authorize page waits for a click
        self.authorizing_user = ""                 # set by subclasses
        self.usage = {"call_count": 3, "total_cputime": 1, "total_time": 2}
        super().__init__()

    # -- wiring ---------------------------------------------------------------------------
    def start(self) -> "GraphFake":
        # As FakeServer.start, but serve_forever polls for shutdown every 20 ms instead of
        # 500 ms, so stopping a fake (once per test) doesn't cost half a second.
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True,
                                        name=f"fake-{self.name}")
        self._thread.start()
        return self

    def build(self, app: Flask) -> None:
        app.register_error_handler(GraphError, self._answer_error)
        app.after_request(self._usage_headers)
        app.add_url_rule(self.authorize_path, "authorize", self._authorize, methods=["GET", "POST"])
        self.routes(app)

    def routes(self, app: Flask) -> None:
        raise NotImplementedError

    @staticmethod
    def _answer_error(exc: GraphError):
        return Response(json.dumps(exc.body), status=exc.status, content_type="application/json")

    def business_id(self) -> str:
        return self.authorizing_user

    def _usage_headers(self, response):
        """Usage headers on every Graph answer; failure rules may override them (§10)."""
        if request.path.startswith(f"/{self.version}/"):
            response.headers.setdefault("X-App-Usage", json.dumps(self.usage))
            response.headers.setdefault("X-Business-Use-Case-Usage", json.dumps({
                self.business_id(): [{"type": self.buc_type, **self.usage,
                                      "estimated_time_to_regain_access": 0}]}))
        return response

    def new_id(self) -> str:
        return str(self.id_base + next(self._ids))

    @staticmethod
    def params() -> dict:
        """Graph takes parameters in the query, a form body or a JSON body alike."""
        values = request.args.to_dict(flat=True)
        values.update(request.form.to_dict(flat=True))
        if request.is_json and isinstance(request.get_json(silent=True), dict):
            values.update(request.get_json(silent=True))
        return values

    # -- failure injection ----------------------------------------------------------------
    def graph_fail(self, path: str, code: int, message: str | None = None, *, status: int = 400,
                   subcode: int | None = None, is_transient: bool = False, method: str | None = None,
                   headers: dict | None = None, times: int = 1, **kw):
        body = envelope(code, message or THROTTLE_MESSAGES.get(code, f"(#{code}) Error"),
                        subcode=subcode, is_transient=is_transient)
        return self.fail(path, method=method, status=status, json=body, headers=headers or {},
                         times=times, **kw)

    def throttle(self, path: str, *, code: int = 4, regain_minutes: int | None = None,
                 retry_after: int | None = None, status: int = 400, method: str | None = None,
                 subcode: int | None = None, times: int = 1):
        """Answer `path` like a throttled Graph call: a 4xx (not 429) with a throttling code,
        usage at 100 %, and — when given — the minutes until access returns."""
        headers = {"X-App-Usage": json.dumps({"call_count": 100, "total_cputime": 41,
                                              "total_time": 63})}
        if regain_minutes is not None:
            headers["X-Business-Use-Case-Usage"] = json.dumps({self.business_id(): [{
                "type": self.buc_type, "call_count": 100, "total_cputime": 12, "total_time": 20,
                "estimated_time_to_regain_access": regain_minutes}]})
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return self.graph_fail(path, code, status=status, subcode=subcode, method=method,
                               is_transient=code in (4, 17), headers=headers, times=times)

    # -- OAuth ----------------------------------------------------------------------------
    def _authorize(self, **_route):
        """The consent dialog. Unknown client or no redirect_uri → an error page (Meta doesn't
        redirect then); otherwise back to redirect_uri with code and state."""
        args = request.values
        client_id, redirect_uri = args.get("client_id"), args.get("redirect_uri")
        if client_id != self.client_id or not redirect_uri:
            return Response("Invalid App ID or redirect_uri", status=400, content_type="text/html")
        state = args.get("state", "")
        if self.interactive and request.method == "GET":
            hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                             for k, v in args.items())
            return Response(
                f"<!doctype html><title>Allow access</title><form method='post'>{hidden}"
                "<button id='allow' name='decision' value='allow'>Allow</button>"
                "<button id='deny' name='decision' value='deny'>Cancel</button></form>",
                content_type="text/html")
        if request.form.get("decision") == "deny":
            return redirect(with_query(redirect_uri, error="access_denied",
                                       error_reason="user_denied",
                                       error_description="Permissions error", state=state), 302)
        code = secrets.token_urlsafe(24)
        scopes = frozenset(s for s in args.get("scope", "").replace(" ", ",").split(",") if s)
        self.codes[code] = Grant(redirect_uri, scopes, self.authorizing_user)
        return redirect(with_query(redirect_uri, code=code, state=state), 302)

    def redeem(self, values: dict) -> Grant:
        """Code → grant, checking the app secret and that redirect_uri matches the dialog's."""
        if values.get("client_id") != self.client_id or values.get("client_secret") != self.client_secret:
            raise GraphError(101, "Error validating client secret.")
        grant = self.codes.pop(values.get("code", ""), None)
        if grant is None:
            raise GraphError(100, "This authorization code has been used.", subcode=36009)
        if grant.redirect_uri != values.get("redirect_uri"):
            raise GraphError(100, "Error validating verification code. Please make sure your "
                                  "redirect_uri is identical to the one you used in the OAuth "
                                  "dialog request", subcode=36008)
        return grant

    def issue(self, user: str, kind: str, scopes, lifetime: float | None, person: str = "") -> Token:
        value = f"{self.token_prefix}{kind[0].upper()}{secrets.token_urlsafe(24)}"
        token = Token(value, user, kind, frozenset(scopes),
                      time.time() + lifetime if lifetime else None, person or user)
        self.tokens[value] = token
        return token

    def token_answer(self, token: Token, **extra) -> dict:
        body = {"access_token": token.value, "token_type": "bearer", **extra}
        if token.expires_at is not None:
            body["expires_in"] = int(token.expires_at - time.time())
        return body

    def authenticate(self, *, kinds: tuple[str, ...] | None = None) -> Token:
        value = request.values.get("access_token") or ""
        auth = request.headers.get("Authorization", "")
        if not value and auth.lower().startswith(("bearer ", "oauth ")):
            value = auth.split(" ", 1)[1]
        token = self.tokens.get(value)
        if token is None:
            raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
        if token.revoked:
            raise GraphError(190, "Error validating access token: The user has not authorized "
                                  "application.", subcode=458)
        if token.expired:
            raise GraphError(190, "Error validating access token: Session has expired.",
                             subcode=463)
        if kinds and token.kind not in kinds:
            raise GraphError(190, "Invalid OAuth access token for this call.")
        return token

    def exchange(self, token_value: str, *, user_kinds=("short", "long")) -> Token:
        """Short-lived (or long-lived) token → a fresh long-lived one."""
        old = self.tokens.get(token_value or "")
        if old is None or old.revoked or old.expired or old.kind not in user_kinds:
            raise GraphError(190, "Error validating access token: Session has expired.",
                             subcode=463)
        return self.issue(old.user, "long", old.scopes, LONG_LIFETIME)

    def expire(self, token_value: str) -> None:
        self.tokens[token_value].expires_at = time.time() - 1

    def revoke_person(self, person: str) -> None:
        for token in self.tokens.values():
            if token.person == person:
                token.revoked = True

    def token_for(self, user: str, kind: str = "long", scopes=()) -> str:
        """A ready-made token for tests that start already connected."""
        return self.issue(user, kind, scopes or self.default_scopes,
                          None if kind == "page" else LONG_LIFETIME).value

    @staticmethod
    def require_scope(token: Token, scope: str) -> None:
        if scope not in token.scopes:
            raise missing_permission()

    # -- containers (Instagram, Threads) --------------------------------------------------
    def new_container(self, owner: str, params: dict, *, video: bool = False) -> Container:
        container = Container(self.new_id(), owner, dict(params),
                              self.video_finish_after if video else self.finish_after)
        if self.next_container_error:
            container.error, self.next_container_error = self.next_container_error, None
        for key in ("image_url", "video_url"):
            if params.get(key) and not self.media_reachable(params[key]):
                container.error = "Media download has failed. The media URI doesn't meet our requirements."
        self.containers[container.id] = container
        return container

    def fail_next_container(self, message: str = "The video could not be processed.") -> None:
        """The ERROR switch: the next container created goes to ERROR on its first poll."""
        self.next_container_error = message

    def media_reachable(self, url: str) -> bool:
        """Meta fetches media itself; our own /_media/ URLs must exist, others are trusted."""
        prefix = f"{self.url}/_media/"
        return not url.startswith(prefix) or url[len(prefix):] in self.media

    def poll(self, container: Container) -> Container:
        """One status poll advances the state machine."""
        if container.status == "IN_PROGRESS":
            container.polls += 1
            if container.error:
                container.status = "ERROR"
            elif container.polls >= container.finish_after:
                container.status = "FINISHED"
        return container

    def take_for_publish(self, owner: str, creation_id: str) -> Container:
        container = self.containers.get(creation_id or "")
        if container is None or container.owner != owner:
            raise not_found(creation_id)
        if container.status == "PUBLISHED":
            raise GraphError(100, "The media has already been published.", subcode=2207006)
        if container.status != "FINISHED":
            raise GraphError(9007, "Media ID is not available", subcode=2207027,
                             user_msg="The media is not ready for publishing, please wait for a moment")
        return container


def with_query(url: str, **params) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def insight(owner: str, name: str, value, *, period: str = "lifetime", total: bool = False,
            days: int = 1) -> dict:
    """One insights entry, in the total_value or the values[] shape."""
    item = {"name": name, "period": period, "title": name.replace("_", " ").title(),
            "description": f"The {name.replace('_', ' ')}.", "id": f"{owner}/insights/{name}/{period}"}
    if total:
        item["total_value"] = {"value": value}
    else:
        item["values"] = [{"value": value, "end_time": stamp(time.time())}] * days
    return item


def metric_names(allowed: set[str]) -> list[str]:
    names = [m for m in request.args.get("metric", "").split(",") if m]
    if not names:
        raise GraphError(100, "(#100) The parameter metric is required")
    for index, name in enumerate(names):
        if name not in allowed:
            raise GraphError(100, f"(#100) metric[{index}] must be one of the following values: "
                                  f"{', '.join(sorted(allowed))}")
    return names

