"""The Huey instance, from QUEUE_URL:

    redis://host:6379/0        production: blocking pops, many consumers on many hosts
    sqlite:///path/queue.db    embedded default: one host (run the worker with --max-delay 1)
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
from db import database, per_call_connection


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
_settings: Settings | None = None


def use(queue_url: str) -> None:
    """Point this process's Huey at another queue (tests and benchmarks that enqueue into a
    queue a separate consumer reads). The registered tasks stay as they are."""
    other = make_huey(queue_url, huey.name)
    huey.storage_class, huey.storage_kwargs = other.storage_class, other.storage_kwargs
    huey._immediate = other._immediate
    huey.storage = other.storage


def settings() -> Settings:
    """The settings this worker bootstrapped with (the environment's when not bootstrapped)."""
    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return _settings


@huey.on_startup()
def _start_worker():
    """Runs in each consumer worker thread: bootstrap once per process."""
    global _boot_done, _settings
    with _booted:
        if not _boot_done:
            from core.bootstrap import start
            _settings = start()
            _boot_done = True


@huey.on_shutdown()
def _close_database():
    if not database.is_closed():
        database.close()


# Tasks open their own connection and hand it back when they finish.
with_database = per_call_connection
