"""A fake Slack Web API on loopback, speaking the documented wire format.

Herald's WebClient is pointed here with SLACK_API_URL (= fake.api_url, trailing slash
included). Methods answer like Slack: HTTP 200 with {"ok": true, ...} or {"ok": false,
"error": "..."}; tokens are checked (`invalid_auth` for unknown ones); 429 carries
Retry-After. Failures are injected with the FakeServer rules, e.g.

    slack.fail("/api/views.open", status=200, json={"ok": False, "error": "expired_trigger_id"})
    slack.fail("/api/chat.postMessage", status=429, headers={"Retry-After": "1"},
               json={"ok": False, "error": "ratelimited"})

`response_url`s in payloads should point at `slack.response_url(...)`: what Herald posts
there is recorded in `slack.responses`.
"""
from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

from flask import Flask, request

from tests.fakes.server import FakeServer

PAYLOADS = Path(__file__).resolve().parents[3] / "shared" / "slack-payloads"


def load_vector(name: str) -> str:
    """A payload from ../shared/slack-payloads (the part after the header block)."""
    return (PAYLOADS / name).read_text().split("\n\n", 1)[1].strip()


class FakeSlack(FakeServer):
    name = "slack"

    def __init__(self):
        self.tokens: dict[str, dict] = {}          # token -> auth.test identity
        self.users: dict[str, dict] = {}           # user id -> users.info "user"
        self.files: dict[str, dict] = {}           # file id -> files.info "file"
        self.channels: set[str] | None = None      # None: every channel exists
        self.messages: dict[tuple[str, str], dict] = {}   # (channel, ts) -> message
        self.views: dict[str, dict] = {}           # view id -> view (modals and homes)
        self.home: dict[str, dict] = {}            # user id -> last published home view
        self.responses: list[dict] = []            # bodies POSTed to response_urls
        self.oauth_codes: dict[str, dict] = {}     # code -> oauth.v2.access answer
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        super().__init__()

    # -- set-up helpers -------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def add_bot(self, token: str, team_id: str = "T111", bot_user_id: str = "UB0T",
                team: str = "Acme", enterprise_id: str | None = None) -> str:
        self.tokens[token] = {"url": f"https://{team.lower()}.slack.com/", "team": team,
                              "user": "herald", "team_id": team_id, "user_id": bot_user_id,
                              "bot_id": "B111", "enterprise_id": enterprise_id,
                              "is_enterprise_install": False}
        return token

    def add_user(self, user_id: str, name: str = "", tz: str | None = "Europe/Berlin",
                 team_id: str = "T111", email: str | None = None) -> None:
        self.users[user_id] = {"id": user_id, "team_id": team_id, "name": name or user_id.lower(),
                               "real_name": name or user_id, "tz": tz,
                               "tz_offset": 3600 if tz else 0,
                               "profile": {"real_name": name or user_id, "email": email,
                                           "display_name": name}}

    def add_oauth_code(self, code: str, answer: dict) -> None:
        self.oauth_codes[code] = answer

    def add_file(self, file_id: str, data: bytes, mime: str, name: str = "photo.png") -> dict:
        """A file shared in Slack: files.info describes it, and its private URL answers only
        with a valid token (as Slack's do)."""
        self.file_bytes = getattr(self, "file_bytes", {})
        self.file_bytes[file_id] = (data, mime)
        self.files[file_id] = {"id": file_id, "name": name, "mimetype": mime, "size": len(data),
                               "pretty_type": mime.split("/")[-1].upper(),
                               "url_private": f"{self.url}/files-pri/{file_id}/{name}",
                               "url_private_download": f"{self.url}/files-pri/{file_id}/{name}"}
        return self.files[file_id]

    def _file_download(self, file_id, name):
        if self._token() not in self.tokens or file_id not in getattr(self, "file_bytes", {}):
            return "<html>Sign in to Slack</html>", 302, {"Location": f"{self.url}/signin"}
        data, mime = self.file_bytes[file_id]
        return data, 200, {"Content-Type": mime}

    def response_url(self, name: str = "r") -> str:
        return f"{self.url}/webhook/{name}"

    def calls_for(self, method: str) -> list:
        return self.calls_to(f"/api/{method}")

    def params(self, call) -> dict:
        """A Web API call's arguments, whatever encoding the client chose."""
        if call.json is not None:
            return dict(call.json)
        if call.form:
            return {k: _maybe_json(v) for k, v in call.form.items()}
        return {k: _maybe_json(v) for k, v in call.query.items()}

    # -- the API --------------------------------------------------------------------------
    def build(self, app: Flask) -> None:
        app.add_url_rule("/api/<method>", "api", self._api, methods=["GET", "POST"])
        app.add_url_rule("/webhook/<name>", "webhook", self._webhook, methods=["POST"])
        app.add_url_rule("/files-pri/<file_id>/<name>", "file", self._file_download)

    def _args(self) -> dict:
        if request.is_json:
            return request.get_json(silent=True) or {}
        args = {k: _maybe_json(v) for k, v in request.values.items()}
        return args

    def _token(self) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[len("Bearer "):]
        return self._args().get("token")

    def _api(self, method: str):
        args = self._args()
        if method == "oauth.v2.access":
            return self._oauth_access(args)
        token = self._token()
        if token not in self.tokens:
            return _error("not_authed" if not token else "invalid_auth")
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": True}
        return handler(args, self.tokens[token])

    def _auth_test(self, args, identity):
        return dict(ok=True, **identity)

    def _oauth_access(self, args):
        code = args.get("code")
        if code not in self.oauth_codes:
            return _error("invalid_code")
        return self.oauth_codes.pop(code)   # codes are single-use

    def _users_info(self, args, identity):
        user = self.users.get(args.get("user"))
        return {"ok": True, "user": user} if user else _error("user_not_found")

    def _files_info(self, args, identity):
        file = self.files.get(args.get("file"))
        return {"ok": True, "file": file} if file else _error("file_not_found")

    def _conversations_open(self, args, identity):
        users = args.get("users", "")
        return {"ok": True, "channel": {"id": "D" + users.replace(",", "")[:10]}}

    def _channel_ok(self, channel: str | None) -> bool:
        return bool(channel) and (self.channels is None or channel in self.channels
                                  or channel.startswith("D"))

    def _chat_postMessage(self, args, identity):
        channel = args.get("channel")
        if not self._channel_ok(channel):
            return _error("channel_not_found")
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        message = {"ts": ts, "text": args.get("text", ""), "blocks": args.get("blocks", []),
                   "thread_ts": args.get("thread_ts"), "user": identity["user_id"]}
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, args, identity):
        key = (args.get("channel"), args.get("ts"))
        if key not in self.messages:
            return _error("message_not_found")
        self.messages[key].update(text=args.get("text", ""), blocks=args.get("blocks", []))
        return {"ok": True, "channel": key[0], "ts": key[1], "text": args.get("text", "")}

    def _chat_postEphemeral(self, args, identity):
        if not self._channel_ok(args.get("channel")):
            return _error("channel_not_found")
        return {"ok": True, "message_ts": f"{int(time.time())}.{next(self._ts):06d}"}

    def _views_open(self, args, identity):
        if not args.get("trigger_id"):
            return _error("invalid_trigger_id")
        return self._store_view(args.get("view"), None)

    def _views_push(self, args, identity):
        return self._views_open(args, identity)

    def _views_update(self, args, identity):
        view_id = args.get("view_id")
        if view_id not in self.views:
            return _error("not_found")
        if args.get("hash") and args["hash"] != self.views[view_id]["hash"]:
            return _error("hash_conflict")
        return self._store_view(args.get("view"), view_id)

    def _views_publish(self, args, identity):
        answer = self._store_view(args.get("view"), None)
        self.home[args.get("user_id")] = answer["view"]
        return answer

    def _store_view(self, view, view_id):
        view = _maybe_json(view) if isinstance(view, str) else dict(view or {})
        view_id = view_id or f"V{next(self._ids):08d}"
        view.update(id=view_id, hash=f"{next(self._ts)}.h")
        self.views[view_id] = view
        return {"ok": True, "view": view}

    def _webhook(self, name):
        body = request.get_json(silent=True) or {}
        self.responses.append(dict(body, _url=name))
        return "ok"


def _maybe_json(value):
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _error(code: str) -> dict:
    return {"ok": False, "error": code}
