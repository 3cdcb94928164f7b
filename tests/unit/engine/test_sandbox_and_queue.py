"""The sandbox network (file and HTTP modes), the queue module's import-time promise, and
several sweepers on Postgres never taking the same expired lease."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from core import publishing, reconcile
from db import database
from db.fields import utcnow
from db.models import PostTarget
from platforms.base import Ambiguous, Credentials, InvalidGrant, PlatformConfig, PublishRequest, \
    RateLimited, Transient
from platforms.sandbox import SandboxAdapter

ROOT = Path(__file__).resolve().parents[3]


def request(key="k-1", text="Hello"):
    return PublishRequest(target_id="t-1", text=text, idempotency_key=key)


CREDS = Credentials(access_token="a", platform_user_id="acct")


def test_file_mode_honours_keys_and_finds_posts(tmp_path):
    adapter = SandboxAdapter(PlatformConfig(api_url=f"file://{tmp_path}/log.jsonl"))
    first = adapter.publish(request(), CREDS)
    again = adapter.publish(request(), CREDS)
    assert first.platform_post_id == again.platform_post_id and len(adapter.records()) == 1
    assert adapter.find_published(request(), CREDS, utcnow()).status == "found"
    assert adapter.find_published(request("other"), CREDS, utcnow()).status == "not_found"
    line = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])
    assert line["key"] == "k-1" and line["text"] == "Hello" and len(line["id"]) == 32


def test_file_mode_failure_injection(tmp_path):
    adapter = SandboxAdapter(PlatformConfig(api_url=f"file://{tmp_path}/log.jsonl?fail=ambiguous:1"))
    with pytest.raises(Ambiguous):
        adapter.publish(request(), CREDS)
    assert adapter.find_published(request(), CREDS, utcnow()).status == "found"   # it did land
    limited = SandboxAdapter(PlatformConfig(api_url=f"file://{tmp_path}/l2.jsonl?fail=rate_limited:1"))
    with pytest.raises(RateLimited) as caught:
        limited.publish(request(), CREDS)
    assert caught.value.retry_at > utcnow()
    with pytest.raises(ValueError):
        SandboxAdapter(PlatformConfig(api_url=f"file://{tmp_path}/l3.jsonl?fail=nope:1"))


def test_http_mode_against_the_fake(fake):
    access, refresh = fake.issue_tokens("acct")
    adapter = SandboxAdapter(PlatformConfig(api_url=fake.api_url(timeout=1)))
    creds = Credentials(access_token=access, platform_user_id="acct", refresh_token=refresh)
    published = adapter.publish(request(), creds)
    assert published.platform_post_id == fake.live_posts()[0].id
    assert adapter.publish(request(), creds).platform_post_id == published.platform_post_id
    assert fake.stats.replays == 1 and fake.duplicates() == {"keys": {}, "targets": {}}
    fake.fail("/v1/posts", method="POST", status=503, json={"error": "down"})
    with pytest.raises(Transient):
        adapter.publish(request("k-2"), creds)
    reset = fake.rate_limit(5)
    with pytest.raises(RateLimited) as caught:
        adapter.publish(request("k-3"), creds)
    assert abs(caught.value.retry_at.timestamp() - reset) < 0.01
    fake.rate_limited_until = 0
    fresh = adapter.refresh(creds)
    assert fresh.refresh_token != refresh and fake.stats.refreshes == 1
    with pytest.raises(InvalidGrant):            # the old refresh token was spent by rotation
        adapter.refresh(creds)
    fake.fail("/v1/posts", method="POST", hang_after=2)
    with pytest.raises(Ambiguous):
        adapter.publish(request("k-4"), Credentials(access_token=fresh.access_token, platform_user_id="acct"))


def test_http_mode_options_set_the_capabilities(fake):
    plain = SandboxAdapter(PlatformConfig(api_url=fake.api_url()))
    assert plain.capabilities.idempotency and plain.capabilities.reconcile
    bare = SandboxAdapter(PlatformConfig(api_url=fake.api_url(idempotency=0, reconcile=0, timeout=3)))
    assert not bare.capabilities.idempotency and not bare.capabilities.reconcile
    assert bare.config.timeout == 3
    assert SandboxAdapter.capabilities.idempotency          # the class default is untouched


def test_importing_tasks_builds_the_queue_but_touches_no_database(tmp_path):
    code = ("import tasks, db; from huey.consumer import Scheduler; "
            "print(db.database.obj is None, type(tasks.huey).__name__, Scheduler.periodic_task_seconds)")
    env = {"PATH": "/usr/bin:/bin", "HERALD_INSTANCE_PATH": str(tmp_path), "PYTHONPATH": str(ROOT),
           "QUEUE_URL": f"sqlite:///{tmp_path}/q.db", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
           "SWEEP_INTERVAL": "2"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "SqliteHuey", "2"]


def test_concurrent_sweepers_never_take_the_same_lease(engine, backend):
    if backend.name != "postgres":
        pytest.skip("SKIP LOCKED is Postgres; SQLite serialises sweepers with its write lock")
    past = utcnow() - timedelta(seconds=5)
    ids = set()
    for _ in range(40):
        target = engine.target()
        PostTarget.update(status="publishing", lease_until=past).where(PostTarget.id == target.id).execute()
        ids.add(str(target.id))
    database.close()
    taken, barrier = [], threading.Barrier(4, timeout=30)

    def sweeper():
        with database.connection_context():
            barrier.wait()
            taken.append([t for t, _ in reconcile.expire_leases(utcnow(), engine.cfg, limit=15)])

    threads = [threading.Thread(target=sweeper) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = [t for batch in taken for t in batch]
    assert len(flat) == len(set(flat)), "two sweepers took the same target"
    assert set(flat) <= ids and len(flat) >= 15
    assert publishing.config() is not None
