"""Check every request a fake receives against the network's published OpenAPI spec.

A fake that only follows our reading of the docs drifts with our reading. Validating each
request against the spec (shared/reference/specs/) makes the fake refuse exactly what the
spec refuses: the request gets a 400 and a `Violation` is recorded, which the tests assert
is empty.

openapi-core does the heavy lifting (path, parameters, body schema, `basic` security). Three
gaps are filled here:
- multipart text parts reach the schema as strings, so `segment_index=0` would fail
  `type: integer`; OpenAPI 3.0 serialises primitive parts as text, so they are cast first;
- multipart parts the schema doesn't name are dropped before validation, so
  `additionalProperties: false` never fired; they are put back;
- query parameters the operation doesn't declare are ignored; X answers 400 for them, so
  they are a violation here too (this is what catches `tweet.fields` vs `post.fields`).

Endpoints a network documents but its spec omits (X's OAuth token endpoints, the browser
authorize pages, Pinterest's S3 upload URL) are checked by hand-written rules the fake passes
in as `off_spec`.
"""
from __future__ import annotations

import fnmatch
import json
import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

from flask import Response, request
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.deserializing.media_types.util import data_form_loads
from openapi_core.schema.schemas import get_properties
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.validation.request.validators import V30RequestValidator
from werkzeug.datastructures import Headers, ImmutableMultiDict


def specs_dir() -> Path:
    """shared/ sits beside the repository (…/main/tests/fakes/platforms → …/shared)."""
    override = os.environ.get("HERALD_SPECS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[4] / "shared" / "reference" / "specs"


@dataclass
class Violation:
    method: str
    path: str
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.method} {self.path}: " + "; ".join(self.problems)


class _SpecRequest:
    """The request protocol openapi-core expects. The host is the spec's own server URL, so a
    fake on 127.0.0.1 matches the spec's paths (Pinterest's server URL carries `/v5`)."""

    def __init__(self, host_url, method, path, query, headers, body, content_type):
        self.host_url = host_url
        self.path = path
        self.method = method.lower()
        self.body = body or None
        self.content_type = content_type or "application/octet-stream"
        self.parameters = RequestParameters(query=ImmutableMultiDict(query),
                                            header=Headers(headers),
                                            cookie=ImmutableMultiDict())


_CASTS = {"integer": int, "number": float,
          "boolean": lambda s: {"true": True, "false": False}[s.lower()]}


class _Validator(V30RequestValidator):
    def _deserialise_media_type(self, media_type, mimetype, parameters, value):
        data = super()._deserialise_media_type(media_type, mimetype, parameters, value)
        schema = media_type.get("schema")
        if not mimetype.startswith("multipart/") or schema is None or not isinstance(data, dict):
            return data
        data = dict(data)
        properties = get_properties(schema)
        for name, prop in properties.items():
            kind = (prop / "type").read_str("") if "type" in prop else ""
            if isinstance(data.get(name), str) and kind in _CASTS:
                try:
                    data[name] = _CASTS[kind](data[name])
                except (KeyError, ValueError):
                    pass  # leave it a string: the schema check then reports it
        for name, raw in data_form_loads(value, **parameters).items(multi=True):
            if name not in properties:
                data[name] = raw
        return data


@lru_cache(maxsize=None)
def _load(spec_file: str, patch_key: str) -> tuple[OpenAPI, str]:
    path = specs_dir() / spec_file
    if not path.exists():
        raise FileNotFoundError(f"OpenAPI spec {path} is missing (set HERALD_SPECS_DIR)")
    raw = json.loads(path.read_text())
    for patch in (_oauth2_as_bearer, *_PATCHES.get(patch_key, ())):
        patch(raw)
    server = raw["servers"][0]["url"].rstrip("/")
    # The spec was checked when it was saved; re-validating 2 MB of it per test run buys nothing.
    app = OpenAPI.from_dict(raw, config=Config(spec_validator_cls=None,
                                               request_validator_cls=_Validator))
    return app, server


def _oauth2_as_bearer(raw: dict) -> None:
    """openapi-core can't check `oauth2` schemes (it warns and lets anything through). A user
    access token travels as `Authorization: Bearer`, so check that much; the fakes check that
    the token itself is valid and carries the scopes."""
    for scheme in raw.get("components", {}).get("securitySchemes", {}).values():
        if scheme.get("type") == "oauth2":
            scheme.clear()
            scheme.update({"type": "http", "scheme": "bearer"})


def _pinterest_metric_types_any_of(raw: dict) -> None:
    """PSPEC bug: `metric_types` items are a oneOf of two enums that share IMPRESSION, SAVE, …,
    so every common metric is "valid under each of" and fails. The intent is anyOf."""
    param = raw["components"]["parameters"].get("query_pin_analytics_metric_types")
    if param and "oneOf" in param["schema"]["items"]:
        param["schema"]["items"]["anyOf"] = param["schema"]["items"].pop("oneOf")


_PATCHES: dict[str, tuple[Callable[[dict], None], ...]] = {
    "pinterest": (_pinterest_metric_types_any_of,),
}


OffSpecCheck = Callable[[], list[str]] | None


class SpecCheck:
    """Validates Flask requests against one spec and records violations on a fake."""

    def __init__(self, spec_file: str, *, patches: str = "", path_prefix: str = ""):
        self.openapi, self.server_url = _load(spec_file, patches)
        # Pinterest's spec paths are relative to `https://api.pinterest.com/v5`; the fake
        # serves them at `/v5/...` so the adapter's URLs look like production.
        self.path_prefix = path_prefix
        self._finder = APICallPathFinder(self.openapi.spec)
        self._host = self.server_url[: len(self.server_url) - len(path_prefix)] if path_prefix else self.server_url

    def problems(self, method: str, path: str, query, headers, body: bytes,
                 content_type: str | None) -> list[str]:
        spec_request = _SpecRequest(self._host, method, path, query, headers, body, content_type)
        try:
            found = self._finder.find(method.lower(), self._host + path)
        except PathError as exc:
            return [f"not an operation in the spec ({type(exc).__name__})"]
        problems = [self._describe(exc) for exc in self.openapi.request_validator.iter_errors(spec_request)]
        declared = self._declared_query(found)
        for name in sorted(set(query.keys()) - declared):
            problems.append(f"query parameter {name!r} is not declared for this operation")
        if body and "requestBody" not in found.operation:
            problems.append("a body was sent to an operation that takes none")
        return problems

    @staticmethod
    def _declared_query(found) -> set[str]:
        names = set()
        for holder in (found.path, found.operation):
            if "parameters" in holder:
                for param in holder / "parameters":
                    if (param / "in").read_str("") == "query":
                        names.add((param / "name").read_str())
        return names

    @staticmethod
    def _describe(exc: Exception) -> str:
        cause = exc.__cause__
        details = getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None)
        text = f"{type(exc).__name__}: {exc}"
        if details:
            text += " — " + "; ".join(getattr(e, "message", str(e)) for e in details)
        elif cause is not None and str(cause) not in text:
            text += f" — {cause}"
        return text[:600]

    # -- wiring into a FakeServer ---------------------------------------------------------
    def install(self, fake, off_spec: dict[tuple[str, str], OffSpecCheck] | None = None) -> None:
        """Validate before the fake's own hooks run; answer 400 after they ran (so the call is
        still recorded and counted). `off_spec` maps (METHOD, path glob) to a hand-written
        check for endpoints the spec doesn't describe, or None for test plumbing."""
        off_spec = off_spec or {}
        fake.violations = getattr(fake, "violations", [])
        lock = threading.Lock()

        def validate():
            method, path = request.method, request.path
            if method in ("HEAD", "OPTIONS"):
                return None
            for (rule_method, pattern), check in off_spec.items():
                if rule_method == method and fnmatch.fnmatchcase(path, pattern):
                    found = check() if check is not None else []
                    break
            else:
                if not path.startswith(self.path_prefix or "/"):
                    found = ["outside the API's base path"]
                else:
                    found = self.problems(method, path, request.args, dict(request.headers),
                                          request.get_data(cache=True), request.content_type)
            if found:
                with lock:
                    fake.violations.append(Violation(method, path, found))
                request.environ["fake.violation"] = found
            return None

        def refuse():
            found = request.environ.get("fake.violation")
            if found:
                return Response(json.dumps({"title": "Invalid Request", "status": 400,
                                            "detail": "; ".join(found)[:1000],
                                            "type": "about:blank"}),
                                status=400, content_type="application/json")
            return None

        funcs = fake.app.before_request_funcs.setdefault(None, [])
        funcs.insert(0, validate)
        funcs.append(refuse)

