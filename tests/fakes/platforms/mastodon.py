"""A fake Mastodon instance following shared/reference/platforms.md §9 (MDOCS, MSRC).

- Apps: POST /api/v1/apps → client_id/secret; OAuth authorize page (a real HTML form a browser
  test can click: "Authorize" redirects to redirect_uri?code=…&state=…), POST /oauth/token with
  PKCE S256 checked, POST /oauth/revoke. Tokens never expire.
- Statuses: Idempotency-Key replays the originally created status for 1 hour per account
  (Redis key idempotency:status:{account_id}:{key}, setex 3600); 422 validation errors with the
  documented bodies; content rendered to HTML the way Mastodon does (links split into
  invisible/ellipsis spans, mentions shown as @user, hashtags linked).
- Media: POST /api/v2/media answers 200 with a url for images and 202 with url null for videos
  (and for images when `async_images`); GET /api/v1/media/:id answers 206 while processing and
  200 once the url is set. `processing_polls` says how many 206s come first.
- X-RateLimit-Limit/Remaining/Reset (Reset as ISO 8601, iso8601(6)) on every API answer.
- `clock`/`advance(seconds)` let tests move time (idempotency expiry) without sleeping.
"""
from __future__ import annotations

import base64
import hashlib
import html
import itertools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlencode

import regex
from flask import Flask, Response, jsonify, request

from tests.fakes.server import FakeServer

IDEMPOTENCY_SECONDS = 3600
SCOPE = re.compile(r"^(read|write|follow|push|profile|admin:(read|write))(:[a-z_]+)?$")
IMAGE_MIMES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
VIDEO_MIMES = {"video/mp4", "video/webm", "video/quicktime"}
_GRAPHEME = regex.compile(r"\X")
_URL = r"https?://[^\s<>\"]+"
_ENTITY = re.compile(rf"(?P<url>{_URL})|(?<![\w/])@(?P<user>\w+)(?:@(?P<domain>[\w.-]+\w))?"
                     rf"|(?<![\w/&#])#(?P<tag>\w+)", re.UNICODE)


def _trim_url(url: str) -> str:
    while url and (url[-1] in ".,;:!?'\"" or (url[-1] == ")" and "(" not in url)):
        url = url[:-1]
    return url


def status_length(text: str, url_length: int = 23) -> int:
    """StatusLengthValidator: each URL counts url_length, a remote mention counts as @user,
    then grapheme clusters."""
    def replace(match: re.Match) -> str:
        if match.group("url"):
            url = _trim_url(match.group("url"))
            return "x" * url_length + match.group("url")[len(url):]
        if match.group("user"):
            return "@" + match.group("user")
        return match.group(0)
    return len(_GRAPHEME.findall(_ENTITY.sub(replace, text)))


def iso6(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso3(ts: float) -> str:
    return iso6(ts)[:-4] + "Z"


class ApiError(Exception):
    def __init__(self, status: int, error: str, description: str | None = None):
        super().__init__(error)
        self.status, self.error, self.description = status, error, description


@dataclass
class App:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: list[str]
    scopes: list[str]
    website: str | None = None


@dataclass
class Account:
    id: str
    username: str
    display_name: str = ""
    avatar: str = ""
    followers: int = 0
    following: int = 0


@dataclass
class Token:
    client_id: str
    account_id: str | None
    scopes: list[str]


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    account_id: str
    scopes: list[str]
    challenge: str | None
    method: str | None


@dataclass
class MediaItem:
    id: str
    account_id: str
    kind: str
    mime: str
    size: int
    description: str | None
    polls_left: int
    url: str | None = None
    status_id: str | None = None


@dataclass
class StatusItem:
    id: str
    account_id: str
    text: str
    body: dict
    deleted: bool = False
    counts: dict = field(default_factory=dict)


class FakeMastodon(FakeServer):
    name = "mastodon"

    def __init__(self, *, max_characters: int = 500, processing_polls: int = 2,
                 async_images: bool = False):
        self._settings = (max_characters, processing_polls, async_images)
        self._state_lock = threading.RLock()
        self._clear()
        super().__init__()

    def _clear(self) -> None:
        self.max_characters, self.processing_polls, self.async_images = self._settings
        self.max_media = 4
        self.url_length = 23
        self.apps: dict[str, App] = {}
        self.accounts: dict[str, Account] = {}
        self.signed_in: str | None = None          # who approves on the authorize page
        self.grants: dict[str, Grant] = {}
        self.tokens: dict[str, Token] = {}
        self.media_items: dict[str, MediaItem] = {}
        self.statuses: dict[str, StatusItem] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, float]] = {}
        self._offset = 0.0
        self._ids = itertools.count(110_000_000_000_000_000)

    # -- test helpers ---------------------------------------------------------------------
    def reset(self) -> None:
        """Back to an empty instance, so one running server can serve a whole test module."""
        with self._state_lock, self._lock:
            self._clear()
            self.calls.clear()
            self.rules.clear()
            self.media.clear()

    def clock(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def add_account(self, username: str, *, display_name: str = "", avatar: str = "",
                    followers: int = 0, following: int = 0) -> str:
        account_id = str(next(self._ids))
        self.accounts[account_id] = Account(account_id, username, display_name, avatar,
                                            followers, following)
        self.signed_in = self.signed_in or account_id
        return account_id

    def issue_token(self, account_id: str, scopes: str = "read write") -> str:
        """A token as if the OAuth dance had happened (for tests that aren't about connect)."""
        client_id = "test-client"
        self.apps.setdefault(client_id, App(client_id, "test-secret", "test", ["urn:ietf:wg:oauth:2.0:oob"],
                                            scopes.split()))
        token = secrets.token_urlsafe(32)
        self.tokens[token] = Token(client_id, account_id, scopes.split())
        return token

    def live_statuses(self, account_id: str | None = None) -> list[StatusItem]:
        return [s for s in self.statuses.values()
                if not s.deleted and (account_id is None or s.account_id == account_id)]

    def set_counts(self, status_id: str, **counts: int) -> None:
        """replies_count=…, reblogs_count=…, favourites_count=…, quotes_count=…"""
        self.statuses[status_id].counts.update(counts)

    def finish_processing(self) -> None:
        for item in self.media_items.values():
            item.polls_left = 0

    # -- routes ---------------------------------------------------------------------------
    def build(self, app: Flask) -> None:
        rules = [
            ("/api/v1/apps", ["POST"], self.create_app),
            ("/oauth/authorize", ["GET"], self.authorize_page),
            ("/oauth/authorize", ["POST"], self.authorize_decision),
            ("/oauth/token", ["POST"], self.token),
            ("/oauth/revoke", ["POST"], self.revoke),
            ("/api/v1/accounts/verify_credentials", ["GET"], self.verify_credentials),
            ("/api/v1/accounts/<account_id>/statuses", ["GET"], self.account_statuses),
            ("/api/v2/media", ["POST"], self.create_media),
            ("/api/v1/media/<media_id>", ["GET"], self.get_media),
            ("/api/v1/statuses", ["POST"], self.create_status),
            ("/api/v1/statuses/<status_id>", ["GET"], self.get_status),
            ("/api/v1/statuses/<status_id>", ["DELETE"], self.delete_status),
            ("/api/v2/instance", ["GET"], self.instance),
        ]
        for path, methods, handler in rules:
            app.add_url_rule(path, f"{handler.__name__}_{methods[0]}", self._locked(handler),
                             methods=methods)
        app.register_error_handler(ApiError, self._api_error)
        app.after_request(self._rate_headers)

    def _locked(self, handler):
        def view(**kw):
            with self._state_lock:
                return handler(**kw)
        view.__name__ = handler.__name__
        return view

    @staticmethod
    def _api_error(exc: ApiError):
        body = {"error": exc.error}
        if exc.description:
            body["error_description"] = exc.description
        return jsonify(body), exc.status

    def _rate_headers(self, response: Response) -> Response:
        if request.path.startswith("/api/"):
            window = 300
            reset = (int(self.clock()) // window + 1) * window
            response.headers.setdefault("X-RateLimit-Limit", "300")
            response.headers.setdefault("X-RateLimit-Remaining", "299")
            response.headers.setdefault("X-RateLimit-Reset", iso6(reset))
        return response

    def _base(self) -> str:
        return request.host_url.rstrip("/")

    def _params(self) -> dict:
        """Mastodon takes form or JSON bodies; `media_ids[]` is the form spelling of a list."""
        body = request.get_json(silent=True) if request.is_json else None
        if isinstance(body, dict):
            return body
        params = request.form.to_dict(flat=True)
        if "media_ids[]" in request.form:
            params["media_ids"] = request.form.getlist("media_ids[]")
        return params

    # -- auth -----------------------------------------------------------------------------
    def _client(self, params: dict) -> App:
        client_id, secret = params.get("client_id"), params.get("client_secret")
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            client_id, secret = auth.username, auth.password
        app = self.apps.get(client_id or "")
        if app is None or not secrets.compare_digest(secret or "", app.client_secret):
            raise ApiError(401, "invalid_client",
                           "Client authentication failed due to unknown client, no client "
                           "authentication included, or unsupported authentication method.")
        return app

    def _user(self, scope: str) -> Account:
        header = request.headers.get("Authorization", "")
        token = self.tokens.get(header[len("Bearer "):]) if header.startswith("Bearer ") else None
        if token is None:
            raise ApiError(401, "The access token is invalid")
        family = scope.split(":")[0]
        if not ({scope, family} & set(token.scopes)
                or (scope == "read:accounts" and "profile" in token.scopes)):
            raise ApiError(403, "This action is outside the authorized scopes")
        if token.account_id is None:
            raise ApiError(422, "This method requires an authenticated user")
        return self.accounts[token.account_id]

    # -- apps and OAuth -------------------------------------------------------------------
    def create_app(self):
        params = self._params()
        uris = params.get("redirect_uris")
        uris = uris if isinstance(uris, list) else str(uris or "").split()
        scopes = str(params.get("scopes") or "read").split()
        if not params.get("client_name"):
            raise ApiError(422, "Validation failed: Application name can't be blank")
        if not uris:
            raise ApiError(422, "Validation failed: Redirect URI can't be blank")
        if not all(SCOPE.match(s) for s in scopes):
            raise ApiError(422, "Validation failed: Scopes must be valid OAuth scopes")
        app = App(secrets.token_urlsafe(32), secrets.token_urlsafe(32), params["client_name"],
                  uris, scopes, params.get("website"))
        self.apps[app.client_id] = app
        return jsonify(id=str(next(self._ids)), name=app.name, website=app.website,
                       scopes=app.scopes, redirect_uri="\n".join(app.redirect_uris),
                       redirect_uris=app.redirect_uris, client_id=app.client_id,
                       client_secret=app.client_secret, client_secret_expires_at=0)

    def _check_authorize(self, params: dict) -> tuple[App, list[str]]:
        app = self.apps.get(params.get("client_id", ""))
        if app is None or params.get("redirect_uri") not in app.redirect_uris:
            raise ApiError(400, "invalid_client", "Unknown client or redirect URI.")
        if params.get("response_type") != "code":
            raise ApiError(400, "unsupported_response_type")
        scopes = str(params.get("scope") or " ".join(app.scopes)).split()
        if not set(scopes) <= set(app.scopes):
            raise ApiError(400, "invalid_scope", "The requested scope is invalid, unknown, or malformed.")
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            raise ApiError(400, "invalid_request", "Only S256 code challenges are supported.")
        return app, scopes

    def authorize_page(self):
        params = request.args.to_dict(flat=True)
        app, scopes = self._check_authorize(params)
        account = self.accounts[self.signed_in]
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in params.items())
        page = (f"<!doctype html><html><head><title>Authorize {html.escape(app.name)}</title></head>"
                f"<body><h1>Authorize {html.escape(app.name)}?</h1>"
                f"<p>Signed in as @{html.escape(account.username)}. Scopes: "
                f"{html.escape(' '.join(scopes))}</p>"
                f'<form method="post" action="/oauth/authorize">{hidden}'
                f'<button type="submit" name="decision" value="approve" id="authorize">Authorize</button>'
                f'<button type="submit" name="decision" value="deny" id="deny">Deny</button>'
                f"</form></body></html>")
        return Response(page, content_type="text/html; charset=utf-8")

    def authorize_decision(self):
        params = request.form.to_dict(flat=True)
        decision = params.pop("decision", "")
        app, scopes = self._check_authorize(params)
        answer = {"state": params["state"]} if params.get("state") else {}
        if decision != "approve":
            answer = {"error": "access_denied", **answer}
        else:
            code = secrets.token_urlsafe(24)
            self.grants[code] = Grant(app.client_id, params["redirect_uri"], self.signed_in, scopes,
                                      params.get("code_challenge"), params.get("code_challenge_method"))
            answer = {"code": code, **answer}
        sep = "&" if "?" in params["redirect_uri"] else "?"
        return Response(status=302, headers={"Location": params["redirect_uri"] + sep + urlencode(answer)})

    def token(self):
        params = self._params()
        app = self._client(params)
        grant_type = params.get("grant_type")
        if grant_type == "client_credentials":
            account_id, scopes = None, str(params.get("scope") or "read").split()
        elif grant_type == "authorization_code":
            grant = self.grants.pop(params.get("code", ""), None)   # single use
            invalid = ApiError(400, "invalid_grant",
                               "The provided authorization grant is invalid, expired, revoked, does "
                               "not match the redirection URI used in the authorization request, or "
                               "was issued to another client.")
            if grant is None or grant.client_id != app.client_id \
                    or grant.redirect_uri != params.get("redirect_uri"):
                raise invalid
            if grant.challenge:
                verifier = params.get("code_verifier") or ""
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                if digest.rstrip(b"=").decode() != grant.challenge:
                    raise invalid
            account_id, scopes = grant.account_id, grant.scopes
        else:
            raise ApiError(400, "unsupported_grant_type")
        access = secrets.token_urlsafe(32)
        self.tokens[access] = Token(app.client_id, account_id, scopes)
        return jsonify(access_token=access, token_type="Bearer", scope=" ".join(scopes),
                       created_at=int(self.clock()))

    def revoke(self):
        params = self._params()
        app = self._client(params)
        token = self.tokens.get(params.get("token", ""))
        if token is not None:
            if token.client_id != app.client_id:
                raise ApiError(403, "unauthorized_client",
                               "You are not authorized to revoke this token")
            del self.tokens[params["token"]]
        return jsonify({})

    # -- accounts -------------------------------------------------------------------------
    def _account_json(self, account: Account) -> dict:
        base = self._base()
        return {"id": account.id, "username": account.username, "acct": account.username,
                "display_name": account.display_name, "locked": False, "bot": False,
                "url": f"{base}/@{account.username}", "avatar": account.avatar,
                "avatar_static": account.avatar, "followers_count": account.followers,
                "following_count": account.following,
                "statuses_count": len(self.live_statuses(account.id)), "emojis": [], "fields": []}

    def verify_credentials(self):
        return jsonify(self._account_json(self._user("read:accounts")))

    def account_statuses(self, account_id: str):
        self._user("read:statuses")
        if account_id not in self.accounts:
            raise ApiError(404, "Record not found")
        limit = min(int(request.args.get("limit", 20)), 40)
        max_id = request.args.get("max_id")
        mine = sorted((s for s in self.live_statuses(account_id)
                       if max_id is None or int(s.id) < int(max_id)),
                      key=lambda s: int(s.id), reverse=True)[:limit]
        response = jsonify([self._status_json(s) for s in mine])
        if len(mine) == limit:
            response.headers["Link"] = (f'<{self._base()}{request.path}?limit={limit}&max_id='
                                        f'{mine[-1].id}>; rel="next"')
        return response

    # -- media ----------------------------------------------------------------------------
    def _media_json(self, item: MediaItem) -> dict:
        return {"id": item.id, "type": item.kind, "url": item.url,
                "preview_url": item.url, "remote_url": None, "meta": {},
                "description": item.description, "blurhash": None}

    def create_media(self):
        account = self._user("write:media")
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(422, "Validation failed: File can't be blank")
        mime = upload.mimetype
        if mime not in IMAGE_MIMES | VIDEO_MIMES:
            raise ApiError(422, "Validation failed: File content type is invalid")
        data = upload.read()
        kind = "gifv" if mime == "image/gif" else ("video" if mime in VIDEO_MIMES else "image")
        slow = kind != "image" or self.async_images
        item = MediaItem(str(next(self._ids)), account.id, kind, mime, len(data),
                         request.form.get("description"), self.processing_polls if slow else 0)
        if not slow:
            item.url = f"{self._base()}/system/media/{item.id}"
        self.media_items[item.id] = item
        return jsonify(self._media_json(item)), (202 if slow else 200)

    def get_media(self, media_id: str):
        account = self._user("write:media")
        item = self.media_items.get(media_id)
        if item is None or item.account_id != account.id:
            raise ApiError(404, "Record not found")
        if item.url is None:
            if item.polls_left > 0:
                item.polls_left -= 1
                return jsonify(self._media_json(item)), 206
            item.url = f"{self._base()}/system/media/{item.id}"
        return jsonify(self._media_json(item))

    # -- statuses -------------------------------------------------------------------------
    def _render(self, text: str) -> str:
        base = self._base()

        def entity(match: re.Match) -> str:
            if match.group("url"):
                url = _trim_url(match.group("url"))
                tail = match.group("url")[len(url):]
                scheme, _, rest = url.partition("://")
                shown, hidden = rest[:30], rest[30:]
                return (f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener '
                        f'noreferrer" translate="no"><span class="invisible">{scheme}://</span>'
                        f'<span class="{"ellipsis" if hidden else ""}">{html.escape(shown)}</span>'
                        f'<span class="invisible">{html.escape(hidden)}</span></a>{html.escape(tail)}')
            if match.group("user"):
                user = match.group("user")
                return (f'<span class="h-card" translate="no"><a href="{base}/@{user}" '
                        f'class="u-url mention">@<span>{html.escape(user)}</span></a></span>')
            tag = match.group("tag")
            return (f'<a href="{base}/tags/{tag.lower()}" class="mention hashtag" rel="tag">'
                    f'#<span>{html.escape(tag)}</span></a>')

        def line(text_line: str) -> str:
            out, last = [], 0
            for match in _ENTITY.finditer(text_line):
                out += [html.escape(text_line[last:match.start()]), entity(match)]
                last = match.end()
            out.append(html.escape(text_line[last:]))
            return "".join(out)

        paragraphs = [p for p in re.split(r"\n{2,}", text.strip()) if p]
        return "".join("<p>" + "<br />".join(line(l) for l in p.split("\n")) + "</p>"
                       for p in paragraphs)

    def _status_json(self, status: StatusItem) -> dict:
        counts = {"replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
                  "quotes_count": 0, **status.counts}
        return {**status.body, **counts, "account": self._account_json(self.accounts[status.account_id])}

    def create_status(self):
        account = self._user("write:statuses")
        key = request.headers.get("Idempotency-Key")
        if key:
            seen = self.idempotency.get((account.id, key))
            if seen and self.clock() - seen[1] < IDEMPOTENCY_SECONDS:
                return jsonify(self._status_json(self.statuses[seen[0]]))
        params = self._params()
        text = str(params.get("status") or "")
        wanted = [str(i) for i in params.get("media_ids") or []]
        # PostStatusService: only this account's unattached media count; unknown ids drop out.
        media = [self.media_items[i] for i in wanted if i in self.media_items
                 and self.media_items[i].account_id == account.id
                 and self.media_items[i].status_id is None]
        if not text.strip() and not media:
            raise ApiError(422, "Validation failed: Text can't be blank")
        if len(wanted) > self.max_media:
            raise ApiError(422, f"Cannot attach more than {self.max_media} files")
        if any(m.url is None for m in media):
            raise ApiError(422, "Cannot attach files that have not finished processing. "
                                "Try again in a moment!")
        if len(media) > 1 and any(m.kind in ("video", "gifv") for m in media):
            raise ApiError(422, "Cannot attach a video to a post that already contains images")
        if status_length(text, self.url_length) > self.max_characters:
            raise ApiError(422, f"Validation failed: Text character limit of "
                                f"{self.max_characters} exceeded")
        visibility = params.get("visibility") or "public"
        if visibility not in ("public", "unlisted", "private", "direct"):
            raise ApiError(422, "Validation failed: Visibility is not included in the list")
        status_id = str(next(self._ids))
        base = self._base()
        for item in media:
            item.status_id = status_id
        body = {"id": status_id, "created_at": iso3(self.clock()), "in_reply_to_id": None,
                "sensitive": bool(params.get("sensitive")),
                "spoiler_text": params.get("spoiler_text") or "", "visibility": visibility,
                "language": params.get("language"),
                "uri": f"{base}/users/{account.username}/statuses/{status_id}",
                "url": f"{base}/@{account.username}/{status_id}",
                "content": self._render(text),
                "media_attachments": [self._media_json(m) for m in media],
                "mentions": [], "tags": [], "emojis": []}
        self.statuses[status_id] = StatusItem(status_id, account.id, text, body)
        if key:
            self.idempotency[(account.id, key)] = (status_id, self.clock())
        return jsonify(self._status_json(self.statuses[status_id]))

    def _find_status(self, status_id: str) -> StatusItem:
        status = self.statuses.get(status_id)
        if status is None or status.deleted:
            raise ApiError(404, "Record not found")
        return status

    def get_status(self, status_id: str):
        self._user("read:statuses")
        return jsonify(self._status_json(self._find_status(status_id)))

    def delete_status(self, status_id: str):
        account = self._user("write:statuses")
        status = self._find_status(status_id)
        if status.account_id != account.id:
            raise ApiError(403, "This action is not allowed")
        status.deleted = True
        return jsonify({**self._status_json(status), "text": status.text})

    def instance(self):
        return jsonify({
            "domain": request.host, "title": "Fake Mastodon", "version": "4.3.0",
            "configuration": {
                "statuses": {"max_characters": self.max_characters,
                             "max_media_attachments": self.max_media,
                             "characters_reserved_per_url": self.url_length},
                "media_attachments": {"supported_mime_types": sorted(IMAGE_MIMES | VIDEO_MIMES),
                                      "image_size_limit": 16_777_216,
                                      "video_size_limit": 103_809_024},
            },
        })
