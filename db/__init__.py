"""The database: one proxy every model binds to, initialised from DATABASE_URL.

    sqlite:///path/to/herald.db          embedded default (WAL, foreign keys on)
    postgresql://user@host:5432/name     production, pooled, session pinned to UTC

Query-string values on a Postgres URL are passed to the pool (max_connections,
stale_timeout, timeout) or to libpq (options, sslmode, …).
"""
from __future__ import annotations

import functools
from urllib.parse import parse_qsl, unquote, urlparse

from peewee import DatabaseProxy, SqliteDatabase
from playhouse.pool import PooledPostgresqlDatabase

database = DatabaseProxy()

POOL_ARGS = {"max_connections": int, "stale_timeout": int, "timeout": float}
SQLITE_PRAGMAS = {
    "journal_mode": "wal",        # readers don't block the writer (web + worker share the file)
    "foreign_keys": 1,            # SQLite ignores REFERENCES without this
    "busy_timeout": 10000,        # wait for the writer lock instead of failing at once
    "synchronous": "normal",
}


def connect(url: str):
    """A peewee Database for `url` (not yet connected)."""
    parsed = urlparse(url)
    scheme = parsed.scheme.split("+")[0]
    if scheme == "sqlite":
        path = unquote(parsed.path[1:]) if parsed.netloc == "" else parsed.netloc + parsed.path
        return SqliteDatabase(path or ":memory:", pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    if scheme in ("postgres", "postgresql"):
        query = dict(parse_qsl(parsed.query))
        pool = {k: cast(query.pop(k)) for k, cast in POOL_ARGS.items() if k in query}
        options = " ".join(filter(None, [query.pop("options", ""), "-c timezone=UTC"]))
        return PooledPostgresqlDatabase(
            unquote(parsed.path.lstrip("/")),
            host=parsed.hostname or None, port=parsed.port or None,
            user=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            options=options,
            max_connections=pool.get("max_connections", 20),
            stale_timeout=pool.get("stale_timeout", 300),
            timeout=pool.get("timeout", 10),
            **query)
    raise ValueError(f"DATABASE_URL must start with sqlite:/// or postgresql://, not {scheme!r}")


_by_url: dict[str, object] = {}


def init_database(url: str):
    """Point the proxy at `url` and return the real database. A URL seen before reuses its
    database (and its connection pool) instead of opening another."""
    real = _by_url.get(url)
    if real is None:
        real = _by_url[url] = connect(url)
    database.initialize(real)
    return real


def is_postgres(db=None) -> bool:
    real = (db or database).obj if isinstance(db or database, DatabaseProxy) else db
    return real is not None and not isinstance(real, SqliteDatabase)


def for_update(query, **kw):
    """SELECT … FOR UPDATE [SKIP LOCKED] on Postgres. SQLite has no row locks; use
    write_transaction() there, which holds the single writer lock for the whole block."""
    return query.for_update(**kw) if is_postgres() else query


def write_transaction():
    """A transaction that will write after it reads. On SQLite it begins IMMEDIATE so two
    processes can't both read the old state and then race to write."""
    if is_postgres():
        return database.atomic()
    return database.atomic(lock_type="IMMEDIATE")


def per_call_connection(fn):
    """Hand back, when `fn` returns, the pooled connection its queries took (peewee connects
    on first use). For code on threads Herald doesn't own (Bolt listeners, Huey workers): the
    thread never sits on a connection between calls, and a caller that already held one
    (immediate mode, tests) keeps it."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        was_closed = database.is_closed()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_closed and not database.is_closed() and not database.in_transaction():
                database.close()
    return wrapper
