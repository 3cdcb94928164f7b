"""A real HTTP server on loopback for services we can't reach (Slack, the networks).

Each fake is a small Flask app served by werkzeug in a background thread. It records every
request and can inject the documented failures:

    fake.fail("/2/tweets", status=429, headers={"x-rate-limit-reset": "..."}, json={...})
    fake.fail("/2/tweets", hang_after=2.0)   # handler runs (post created), then the reply stalls
    fake.fail("/2/tweets", hang_before=2.0)  # stalls before the handler: nothing is created

A rule matches by method (optional) and path (exact, or a prefix ending in '*'), fires
`times` times (default 1) and is then spent.
"""
from __future__ import annotations

import fnmatch
import json
import logging
import threading
import time
from dataclasses import dataclass, field

from flask import Flask, Response, request
from werkzeug.serving import make_server

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request drowns test output


@dataclass
class Call:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    form: dict
    json: object

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Rule:
    path: str
    method: str | None = None
    status: int | None = None
    json: object = None
    body: str | bytes | None = None
    headers: dict = field(default_factory=dict)
    hang_before: float = 0.0
    hang_after: float = 0.0
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return fnmatch.fnmatchcase(path, self.path)


class FakeServer:
    name = "fake"

    def __init__(self):
        self.app = Flask(f"fake-{self.name}")
        self.calls: list[Call] = []
        self.rules: list[Rule] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self.app.before_request(self._before)
        self.app.after_request(self._after)
        self.media: dict[str, tuple[bytes, str]] = {}
        self.app.add_url_rule("/_media/<name>", "fake_media", self._serve_media)
        self.build(self.app)
        self._server = None
        self._thread = None

    # -- for subclasses -------------------------------------------------------------------
    def build(self, app: Flask) -> None:
        """Register the routes of the service being faked."""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "FakeServer":
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        # A short poll interval: shutdown() waits up to one interval, on every test teardown.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                                        name=f"fake-{self.name}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()               # wake any hanging handler
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- failure injection ----------------------------------------------------------------
    def fail(self, path: str, **kw) -> Rule:
        rule = Rule(path=path, **kw)
        with self._lock:
            self.rules.append(rule)
        return rule

    def reset_failures(self) -> None:
        with self._lock:
            self.rules.clear()

    def _take_rule(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.times > 0 and rule.matches(method, path):
                    rule.times -= 1
                    return rule
        return None

    def _before(self):
        body = request.get_data(cache=True)
        try:
            parsed = json.loads(body) if body and request.is_json else None
        except ValueError:
            parsed = None
        call = Call(request.method, request.path, request.args.to_dict(flat=True),
                    dict(request.headers), body, request.form.to_dict(flat=True), parsed)
        with self._lock:
            self.calls.append(call)
        rule = self._take_rule(request.method, request.path)
        request.environ["fake.rule"] = rule
        if rule is None:
            return None
        if rule.hang_before:
            self._stop.wait(rule.hang_before)
        if rule.status is not None:
            payload = rule.body if rule.json is None else json.dumps(rule.json)
            return Response(payload or "", status=rule.status, headers=rule.headers,
                            content_type="application/json" if rule.json is not None else None)
        return None

    def _after(self, response):
        rule = request.environ.get("fake.rule")
        if rule is not None:
            for key, value in rule.headers.items():
                response.headers[key] = value
            if rule.hang_after:
                self._stop.wait(rule.hang_after)
        return response

    # -- media hosting (networks pull media from a public URL) -----------------------------
    def add_media(self, name: str, data: bytes, mime: str) -> str:
        """Host bytes at a URL on this server and return the URL."""
        self.media[name] = (data, mime)
        return f"{self.url}/_media/{name}"

    def _serve_media(self, name):
        data, mime = self.media.get(name, (None, None))
        if data is None:
            return Response("not found", status=404)
        return Response(data, content_type=mime)

    # -- assertions helpers ---------------------------------------------------------------
    def calls_to(self, path: str, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls
                    if fnmatch.fnmatchcase(c.path, path) and (method is None or c.method == method)]
