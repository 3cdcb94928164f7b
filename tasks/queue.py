"""The Huey instance, from QUEUE_URL:

    redis://host:6379/0        production: blocking pops, many consumers on many hosts
    sqlite:///path/queue.db    embedded default: one host
    memory://                  unit tests only (tasks run inline)

Huey delivers at most once; the database is the truth and Huey only rings the bell
(DESIGN §4).
"""
from __future__ import annotations

from urllib.parse import urlparse

from huey import MemoryHuey, RedisHuey, SqliteHuey

from core.bootstrap import start
from db import database


def make_huey(queue_url: str, name: str = "herald"):
    parsed = urlparse(queue_url)
    if parsed.scheme in ("redis", "rediss"):
        return RedisHuey(name, url=queue_url, utc=True)
    if parsed.scheme == "sqlite":
        path = parsed.path[1:] if parsed.netloc == "" else parsed.netloc + parsed.path
        from pathlib import Path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=path, utc=True)
    if parsed.scheme == "memory":
        return MemoryHuey(name, immediate=True, utc=True)
    raise ValueError(f"QUEUE_URL must start with redis://, sqlite:/// or memory://, not {queue_url!r}")


settings = start()
huey = make_huey(settings.queue_url)


@huey.on_startup()
def _open_database():
    database.connect(reuse_if_open=True)


@huey.on_shutdown()
def _close_database():
    if not database.is_closed():
        database.close()
