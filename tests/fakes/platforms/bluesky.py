"""A fake Bluesky PDS (+ the AppView reads it proxies), following shared/reference/platforms.md §8
and the lexicons in shared/reference/specs/bluesky-lexicons/.

Every XRPC request whose lexicon is on file is checked against it (required fields, types,
string maxLength in UTF-8 bytes and maxGraphemes, array maxLength, integer minimum, blob
accept/maxSize, closed unions, formats we rely on); a record written with createRecord is
checked against its record lexicon too, plus facet byte ranges inside the text. A request that
fails gets the PDS's 400 InvalidRequest and is recorded in `violations`, which tests assert is
empty.

Behaviour beyond the lexicons, from the reference PDS source:
- sessions are JWT-shaped (exp claim); refreshSession rotates the refreshJwt and the old one is
  refused at once (the real grace period is short and unconfirmed, so the fake has none);
- createRecord on an existing rkey fails the way the reference PDS does: its MST refuses the key
  with a plain Error, which xrpc-server turns into 500 InternalServerError;
- RateLimit-Limit/Remaining/Reset (epoch seconds)/Policy headers on every XRPC answer;
- an feed.post rkey must be a TID (the lexicon's `"key": "tid"`), stricter than the PDS.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import regex
from flask import Flask, Response, jsonify, request

from tests.fakes.server import FakeServer

POST = "app.bsky.feed.post"
ACCESS_SECONDS = 120 * 60
REFRESH_SECONDS = 90 * 24 * 3600
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
RECORD_KEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
HANDLE = re.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
                    r"[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
NSID = re.compile(r"^[a-zA-Z]([a-zA-Z0-9-]*)(\.[a-zA-Z0-9-]+)+$")
_GRAPHEME = regex.compile(r"\X")


def lexicon_dir() -> Path:
    override = os.environ.get("HERALD_SPECS_DIR")
    base = Path(override) if override else Path(__file__).resolve().parents[4] / "shared" / "reference" / "specs"
    return base / "bluesky-lexicons"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def fake_cid(data: bytes, prefix: str = "bafyrei") -> str:
    return prefix + base64.b32encode(hashlib.sha256(data).digest()).decode("ascii").lower().rstrip("=")[:52]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --------------------------------------------------------------------------------------
# Lexicon checking


class Lexicons:
    """Just enough of the lexicon language to check what the adapter sends."""

    def __init__(self, directory: Path):
        if not directory.is_dir():
            raise FileNotFoundError(f"Bluesky lexicons not found at {directory}")
        self.docs = {}
        for path in sorted(directory.glob("*.json")):
            doc = json.loads(path.read_text())
            self.docs[doc["id"]] = doc

    def definition(self, ref: str, context: str) -> tuple[dict | None, str]:
        doc_id, _, name = ref.partition("#")
        doc_id = doc_id or context
        doc = self.docs.get(doc_id)
        return (doc["defs"].get(name or "main") if doc else None), doc_id

    def check(self, schema: dict, value, path: str, context: str, problems: list[str]) -> None:
        kind = schema.get("type")
        if kind in ("object", "params"):
            if not isinstance(value, dict):
                problems.append(f"{path} must be an object")
                return
            for name in schema.get("required", []):
                if name not in value:
                    problems.append(f"{path} must have the property \"{name}\"")
            for name, sub in (schema.get("properties") or {}).items():
                if name in value and value[name] is not None:
                    self.check(sub, value[name], f"{path}/{name}", context, problems)
        elif kind == "record":
            self.check(schema["record"], value, path, context, problems)
        elif kind == "ref":
            target, doc_id = self.definition(schema["ref"], context)
            if target is not None:        # a lexicon we don't keep on file: can't check it
                self.check(target, value, path, doc_id, problems)
        elif kind == "union":
            if not isinstance(value, dict) or not isinstance(value.get("$type"), str):
                problems.append(f"{path} must be an object with a $type")
                return
            full = {self._full(ref, context): ref for ref in schema.get("refs", [])}
            wanted = value["$type"] if "#" in value["$type"] else value["$type"] + "#main"
            if wanted not in full:
                if schema.get("closed"):
                    problems.append(f"{path} $type {value['$type']} is not one of {list(full.values())}")
                return
            target, doc_id = self.definition(full[wanted], context)
            if target is not None:
                self.check(target, value, path, doc_id, problems)
        elif kind == "string":
            self._string(schema, value, path, problems)
        elif kind == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                problems.append(f"{path} must be an integer")
            elif "minimum" in schema and value < schema["minimum"]:
                problems.append(f"{path} can not be less than {schema['minimum']}")
            elif "maximum" in schema and value > schema["maximum"]:
                problems.append(f"{path} can not be greater than {schema['maximum']}")
        elif kind == "boolean":
            if not isinstance(value, bool):
                problems.append(f"{path} must be a boolean")
        elif kind == "array":
            if not isinstance(value, list):
                problems.append(f"{path} must be an array")
                return
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                problems.append(f"{path} must not have more than {schema['maxLength']} elements")
            for index, item in enumerate(value):
                self.check(schema["items"], item, f"{path}/{index}", context, problems)
        elif kind == "blob":
            self._blob(schema, value, path, problems)
        # "unknown" and anything else: no constraint

    @staticmethod
    def _full(ref: str, context: str) -> str:
        doc_id, _, name = ref.partition("#")
        return f"{doc_id or context}#{name or 'main'}"

    @staticmethod
    def _string(schema: dict, value, path: str, problems: list[str]) -> None:
        if not isinstance(value, str):
            problems.append(f"{path} must be a string")
            return
        if "maxLength" in schema and len(value.encode("utf-8")) > schema["maxLength"]:
            problems.append(f"{path} must not be longer than {schema['maxLength']} characters")
        if "maxGraphemes" in schema and len(_GRAPHEME.findall(value)) > schema["maxGraphemes"]:
            problems.append(f"{path} must not be longer than {schema['maxGraphemes']} graphemes")
        fmt = schema.get("format")
        ok = {
            "did": lambda v: re.match(r"^did:[a-z]+:[a-zA-Z0-9._:%-]+$", v),
            "handle": lambda v: HANDLE.match(v),
            "at-identifier": lambda v: v.startswith("did:") or HANDLE.match(v),
            "nsid": lambda v: NSID.match(v),
            "record-key": lambda v: RECORD_KEY.match(v) and v not in (".", ".."),
            "datetime": lambda v: DATETIME.match(v),
            "uri": lambda v: re.match(r"^[a-z][a-z0-9+.-]*:\S+$", v),
            "at-uri": lambda v: v.startswith("at://"),
            "language": lambda v: re.match(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]+)*$", v),
        }.get(fmt)
        if ok is not None and not ok(value):
            problems.append(f"{path} must be a valid {fmt}")

    @staticmethod
    def _blob(schema: dict, value, path: str, problems: list[str]) -> None:
        if not (isinstance(value, dict) and value.get("$type") == "blob"
                and isinstance((value.get("ref") or {}).get("$link"), str)
                and isinstance(value.get("mimeType"), str) and isinstance(value.get("size"), int)):
            problems.append(f"{path} should be a blob ref")
            return
        accept = schema.get("accept")
        if accept and not any(value["mimeType"] == a or (a.endswith("/*") and
                              value["mimeType"].startswith(a[:-1])) for a in accept):
            problems.append(f"{path} mimeType {value['mimeType']} is not accepted")
        if "maxSize" in schema and value["size"] > schema["maxSize"]:
            problems.append(f"{path} is too big (max {schema['maxSize']} bytes)")


# --------------------------------------------------------------------------------------
# The fake


class XrpcError(Exception):
    def __init__(self, status: int, name: str, message: str):
        super().__init__(message)
        self.status, self.name, self.message = status, name, message


@dataclass
class Account:
    did: str
    handle: str
    password: str
    display_name: str = ""
    avatar: str = ""
    followers: int = 0
    follows: int = 0
    email: str = ""


@dataclass
class Session:
    did: str
    exp: float
    kind: str                      # "access" | "refresh"
    session_id: str = ""
    revoked: bool = False          # a refresh token spent by rotation or ended by deleteSession


@dataclass
class Record:
    uri: str
    cid: str
    value: dict
    indexed_at: str
    counts: dict = field(default_factory=dict)


class FakeBluesky(FakeServer):
    name = "bluesky"

    def __init__(self):
        self.lexicons = Lexicons(lexicon_dir())
        self._state_lock = threading.RLock()
        self._clear()
        super().__init__()

    def _clear(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, Session] = {}
        self.records: dict[str, Record] = {}           # at:// uri → record
        self.blobs: dict[str, tuple[bytes, str]] = {}  # cid → (bytes, mime)
        self.violations: list[str] = []
        self.clock = time.time
        self._rate_remaining = 3000

    # -- test helpers ---------------------------------------------------------------------
    def reset(self) -> None:
        """Back to an empty PDS, so one running server can serve a whole test module."""
        with self._state_lock, self._lock:
            self._clear()
            self.calls.clear()
            self.rules.clear()
            self.media.clear()

    def add_account(self, handle: str, password: str, *, display_name: str = "", avatar: str = "",
                    followers: int = 0, follows: int = 0, email: str = "") -> str:
        did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        self.accounts[did] = Account(did, handle, password, display_name, avatar, followers,
                                     follows, email)
        return did

    def posts(self, did: str | None = None) -> list[Record]:
        with self._state_lock:
            return [r for uri, r in self.records.items()
                    if f"/{POST}/" in uri and (did is None or uri.startswith(f"at://{did}/"))]

    def set_counts(self, uri: str, **counts: int) -> None:
        """likeCount=…, repostCount=…, replyCount=…, quoteCount=…, bookmarkCount=…"""
        self.records[uri].counts.update(counts)

    def expire(self, token: str) -> None:
        self.tokens[token].exp = self.clock() - 1

    # -- routes ---------------------------------------------------------------------------
    def build(self, app: Flask) -> None:
        routes = {
            "com.atproto.server.createSession": ("POST", self.create_session),
            "com.atproto.server.refreshSession": ("POST", self.refresh_session),
            "com.atproto.server.deleteSession": ("POST", self.delete_session),
            "com.atproto.identity.resolveHandle": ("GET", self.resolve_handle),
            "com.atproto.repo.uploadBlob": ("POST", self.upload_blob),
            "com.atproto.repo.createRecord": ("POST", self.create_record),
            "com.atproto.repo.getRecord": ("GET", self.get_record),
            "com.atproto.repo.deleteRecord": ("POST", self.delete_record),
            "app.bsky.actor.getProfile": ("GET", self.get_profile),
            "app.bsky.feed.getPosts": ("GET", self.get_posts),
        }
        for nsid, (method, handler) in routes.items():
            app.add_url_rule(f"/xrpc/{nsid}", nsid, self._wrap(nsid, handler), methods=[method])
        app.register_error_handler(XrpcError, self._xrpc_error)
        app.after_request(self._rate_headers)

    def _wrap(self, nsid: str, handler):
        def view():
            self._check_input(nsid)
            with self._state_lock:
                return handler()
        return view

    @staticmethod
    def _xrpc_error(exc: XrpcError):
        return jsonify(error=exc.name, message=exc.message), exc.status

    def _rate_headers(self, response: Response) -> Response:
        if request.path.startswith("/xrpc/"):
            limit, window = (30, 300) if request.path.endswith("createSession") else (3000, 300)
            self._rate_remaining = max(0, self._rate_remaining - 1)
            response.headers.setdefault("RateLimit-Limit", str(limit))
            response.headers.setdefault("RateLimit-Remaining", str(min(limit, self._rate_remaining)))
            response.headers.setdefault("RateLimit-Reset", str(int(self.clock()) + window))
            response.headers.setdefault("RateLimit-Policy", f"{limit};w={window}")
        return response

    # -- lexicon checks -------------------------------------------------------------------
    def _violation(self, message: str) -> None:
        self.violations.append(f"{request.method} {request.path}: {message}")
        raise XrpcError(400, "InvalidRequest", message)

    def _check_input(self, nsid: str) -> None:
        doc = self.lexicons.docs.get(nsid)
        if doc is None:
            return
        main = doc["defs"]["main"]
        problems: list[str] = []
        if main["type"] == "query" and "parameters" in main:
            declared = main["parameters"].get("properties") or {}
            params = {k: (v if (declared.get(k) or {}).get("type") == "array" else v[0])
                      for k, v in request.args.to_dict(flat=False).items()}
            self.lexicons.check(main["parameters"], params, "Params", nsid, problems)
        elif main["type"] == "procedure" and (main.get("input") or {}).get("encoding") == "application/json":
            body = request.get_json(silent=True)
            if not request.is_json or body is None:
                problems.append("Request encoding (Content-Type) required but not provided")
            else:
                self.lexicons.check(main["input"]["schema"], body, "Input", nsid, problems)
        if problems:
            self._violation("; ".join(problems))

    def _check_record(self, collection: str, record: dict) -> None:
        problems: list[str] = []
        if record.get("$type") != collection:
            problems.append(f"Invalid $type: expected {collection}, got {record.get('$type')}")
        target, doc_id = self.lexicons.definition(collection, collection)
        if target is None:
            problems.append(f"Lexicon not found: lex:{collection}")
        else:
            self.lexicons.check(target, record, "Record", doc_id, problems)
        text = record.get("text") if isinstance(record.get("text"), str) else ""
        size = len(text.encode("utf-8"))
        for index, facet in enumerate(record.get("facets") or []):
            span = (facet or {}).get("index") or {}
            start, end = span.get("byteStart"), span.get("byteEnd")
            if isinstance(start, int) and isinstance(end, int) and not 0 <= start < end <= size:
                problems.append(f"Record/facets/{index}/index is outside the text "
                                f"({start}..{end} of {size} bytes)")
        for blob in self._blob_refs(record):
            if blob["ref"]["$link"] not in self.blobs:
                problems.append(f"Could not find blob: {blob['ref']['$link']}")
        if problems:
            self._violation(f"Invalid {collection} record: " + "; ".join(problems))

    def _blob_refs(self, value) -> list[dict]:
        if isinstance(value, dict):
            if value.get("$type") == "blob" and isinstance(value.get("ref"), dict):
                return [value]
            return [b for v in value.values() for b in self._blob_refs(v)]
        if isinstance(value, list):
            return [b for v in value for b in self._blob_refs(v)]
        return []

    # -- auth -----------------------------------------------------------------------------
    def _jwt(self, did: str, kind: str, session_id: str) -> str:
        now = self.clock()
        lifetime = ACCESS_SECONDS if kind == "access" else REFRESH_SECONDS
        scope = "com.atproto.appPass" if kind == "access" else "com.atproto.refresh"
        header = _b64(json.dumps({"typ": "at+jwt" if kind == "access" else "refresh+jwt",
                                  "alg": "ES256K"}).encode())
        payload = _b64(json.dumps({"scope": scope, "sub": did, "iat": int(now),
                                   "exp": int(now + lifetime),
                                   "jti": secrets.token_urlsafe(12)}).encode())
        token = f"{header}.{payload}.{_b64(secrets.token_bytes(32))}"
        self.tokens[token] = Session(did, now + lifetime, kind, session_id)
        return token

    def _session_body(self, did: str, session_id: str | None = None) -> dict:
        account = self.accounts[did]
        session_id = session_id or secrets.token_hex(8)
        return {"accessJwt": self._jwt(did, "access", session_id),
                "refreshJwt": self._jwt(did, "refresh", session_id),
                "handle": account.handle, "did": did, "active": True,
                "didDoc": {"@context": ["https://www.w3.org/ns/did/v1"], "id": did,
                           "alsoKnownAs": [f"at://{account.handle}"],
                           "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                        "serviceEndpoint": request.host_url.rstrip("/")}]}}

    def _bearer(self, kind: str) -> Session:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise XrpcError(401, "AuthMissing", "Authentication Required")
        session = self.tokens.get(header[len("Bearer "):])
        if session is None:
            raise XrpcError(400, "InvalidToken", "Token could not be verified")
        if session.kind != kind:
            raise XrpcError(400, "InvalidToken", "Bad token scope")
        if session.exp <= self.clock():
            raise XrpcError(400, "ExpiredToken", "Token has expired")
        if session.revoked:      # refreshSession.ts: rotateRefreshToken() → null
            raise XrpcError(400, "ExpiredToken", "Token has been revoked")
        return session

    def _did_for(self, actor: str) -> str | None:
        if actor in self.accounts:
            return actor
        return next((a.did for a in self.accounts.values() if a.handle == actor.lower()), None)

    # -- com.atproto.server ---------------------------------------------------------------
    def create_session(self):
        body = request.get_json()
        ident = body["identifier"].lower()
        account = next((a for a in self.accounts.values()
                        if ident in (a.handle, a.did, a.email.lower()) and ident), None)
        if account is None or not secrets.compare_digest(body["password"], account.password):
            raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
        return jsonify(self._session_body(account.did))

    def refresh_session(self):
        session = self._bearer("refresh")
        session.revoked = True        # rotation: the old refreshJwt is spent (no grace here)
        return jsonify(self._session_body(session.did, session.session_id))

    def delete_session(self):
        session = self._bearer("refresh")
        for other in self.tokens.values():
            if other.kind == "refresh" and other.session_id == session.session_id:
                other.revoked = True
        return Response(status=200)

    # -- com.atproto.identity / repo ------------------------------------------------------
    def resolve_handle(self):
        did = self._did_for(request.args.get("handle", ""))
        if did is None:
            raise XrpcError(400, "InvalidRequest", "Unable to resolve handle")
        return jsonify(did=did)

    def upload_blob(self):
        self._bearer("access")
        mime = request.headers.get("Content-Type", "")
        data = request.get_data()
        if not mime or not data:
            raise XrpcError(400, "InvalidRequest", "Request encoding (Content-Type) required but not provided")
        cid = fake_cid(data, "bafkrei")
        self.blobs[cid] = (data, mime)
        return jsonify(blob={"$type": "blob", "ref": {"$link": cid}, "mimeType": mime,
                             "size": len(data)})

    def create_record(self):
        session = self._bearer("access")
        body = request.get_json()
        if self._did_for(body["repo"]) != session.did:
            raise XrpcError(401, "AuthenticationRequired", "Authentication Required")
        collection, record = body["collection"], body["record"]
        if body.get("validate") is not False:
            self._check_record(collection, record)
        rkey = body.get("rkey") or self._tid()
        if collection == POST and not TID.match(rkey):
            self._violation(f"Invalid record key for {collection}: {rkey} is not a TID")
        uri = f"at://{session.did}/{collection}/{rkey}"
        if uri in self.records:
            # Reference PDS: the MST throws "There is already a value at key" (a plain Error).
            raise XrpcError(500, "InternalServerError", "Internal Server Error")
        cid = fake_cid(json.dumps(record, sort_keys=True).encode())
        self.records[uri] = Record(uri, cid, record, iso(self.clock()))
        return jsonify(uri=uri, cid=cid, commit={"cid": fake_cid(uri.encode()), "rev": self._tid()},
                       validationStatus="valid")

    def get_record(self):
        did = self._did_for(request.args.get("repo", ""))
        if did is None:
            raise XrpcError(400, "InvalidRequest", f"Could not find repo: {request.args.get('repo')}")
        uri = f"at://{did}/{request.args.get('collection')}/{request.args.get('rkey')}"
        record = self.records.get(uri)
        if record is None:
            raise XrpcError(400, "RecordNotFound", f"Could not locate record: {uri}")
        return jsonify(uri=uri, cid=record.cid, value=record.value)

    def delete_record(self):
        session = self._bearer("access")
        body = request.get_json()
        if self._did_for(body["repo"]) != session.did:
            raise XrpcError(401, "AuthenticationRequired", "Authentication Required")
        self.records.pop(f"at://{session.did}/{body['collection']}/{body['rkey']}", None)
        return jsonify(commit={"cid": fake_cid(secrets.token_bytes(8)), "rev": self._tid()})

    # -- app.bsky (AppView, proxied by the PDS) -------------------------------------------
    def get_profile(self):
        self._bearer("access")
        did = self._did_for(request.args.get("actor", ""))
        if did is None:
            raise XrpcError(400, "InvalidRequest", "Profile not found")
        account = self.accounts[did]
        profile = {"did": did, "handle": account.handle, "followersCount": account.followers,
                   "followsCount": account.follows, "postsCount": len(self.posts(did)),
                   "indexedAt": iso(self.clock())}
        if account.display_name:
            profile["displayName"] = account.display_name
        if account.avatar:
            profile["avatar"] = account.avatar
        return jsonify(profile)

    def get_posts(self):
        self._bearer("access")
        views = []
        for uri in request.args.getlist("uris"):
            record = self.records.get(uri)
            if record is None:
                continue                  # missing posts are simply left out
            did = uri.split("/")[2]
            counts = {"replyCount": 0, "repostCount": 0, "likeCount": 0, "quoteCount": 0,
                      "bookmarkCount": 0, **record.counts}
            views.append({"uri": uri, "cid": record.cid,
                          "author": {"did": did, "handle": self.accounts[did].handle},
                          "record": record.value, "indexedAt": record.indexed_at, **counts})
        return jsonify(posts=views)

    def _tid(self) -> str:
        number = (int(self.clock() * 1_000_000) << 10) | secrets.randbelow(1024)
        alphabet = "234567abcdefghijklmnopqrstuvwxyz"
        return "".join(alphabet[(number >> (5 * i)) & 31] for i in reversed(range(13)))
