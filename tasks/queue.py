"""The Huey instance, from QUEUE_URL:

    redis://host:6379/0        production: blocking pops, many consumers on many hosts
    sqlite:///path/queue.db    embedded default: one host
    memory://                  unit tests only (tasks run inline)

Huey delivers at most once; the database is the truth and Huey only rings the bell
(DESIGN §4). Importing this module only builds the queue: the consumer bootstraps settings
and the database when it starts, and a web process has done so already.
"""
from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import urlparse

from huey import MemoryHuey, RedisHuey, SqliteHuey

from core.settings import Settings
from db import database


def make_huey(queue_url: str, name: str = "herald"):
    parsed = urlparse(queue_url)
    if parsed.scheme in ("redis", "rediss"):
        return RedisHuey(name, url=queue_url, utc=True)
    if parsed.scheme == "sqlite":
        path = parsed.path[1:] if parsed.netloc == "" else parsed.netloc + parsed.path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=path, utc=True)
    if parsed.scheme == "memory":
        return MemoryHuey(name, immediate=True, utc=True)
    raise ValueError(f"QUEUE_URL must start with redis://, sqlite:/// or memory://, not {queue_url!r}")


huey = make_huey(Settings.from_env().queue_url)
_booted = threading.Lock()
_boot_done = False


@huey.on_startup()
def _start_worker():
    """Runs in each consumer worker thread: bootstrap once per process, then connect."""
    global _boot_done
    with _booted:
        if not _boot_done:
            from core.bootstrap import start
            start()
            _boot_done = True
    database.connect(reuse_if_open=True)


@huey.on_shutdown()
def _close_database():
    if not database.is_closed():
        database.close()
