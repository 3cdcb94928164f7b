"""The engine with everything real: `huey_consumer` processes (started, SIGKILLed, restarted),
Redis as the queue (a database number reserved for this run, flushed before and after),
Postgres or SQLite (the `backend` fixture), a loopback fake network and a fake Slack.

The test process plays the web process: it schedules posts through core (compose → submit →
approve), and its ringer enqueues into the same Redis database the consumers read.
Nothing sleeps to wait for work: `wait_until` polls with a deadline.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from core import compose, networks, posts, publishing
from core.approvals import decide
from core.settings import Settings
from db.fields import utcnow
from db.models import OAuthToken, Post, PostTarget
from tests.conftest import TEST_TOKEN_KEYS, SIGNING_SECRET
from tests.fakes.platforms.engine import FakeSandbox

ROOT = Path(__file__).resolve().parents[3]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
CHANNEL = "C0APPROVE"


def wait_until(check, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------
# Redis: one database number per test session, reserved with a key in db 0


@pytest.fixture(scope="session")
def redis_db():
    admin = redis.Redis.from_url(f"{REDIS_URL}/0")
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    for number in range(15, 0, -1):
        if admin.set(f"herald:test-redis-db:{number}", token, nx=True, ex=3600):
            break
    else:
        pytest.skip("no free Redis database number (1-15) for the engine tests")
    yield number
    if admin.get(f"herald:test-redis-db:{number}") == token.encode():
        redis.Redis.from_url(f"{REDIS_URL}/{number}").flushdb()
        admin.delete(f"herald:test-redis-db:{number}")


@pytest.fixture
def queue_url(redis_db):
    url = f"{REDIS_URL}/{redis_db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    import tasks
    from tasks import queue
    before = tasks.huey.storage, tasks.huey.storage_class, tasks.huey.storage_kwargs, tasks.huey._immediate
    queue.use(url)
    yield url
    client.flushdb()
    tasks.huey.storage, tasks.huey.storage_class, tasks.huey.storage_kwargs, tasks.huey._immediate = before


# --------------------------------------------------------------------------------------
# Consumers


@dataclass
class Consumer:
    env: dict
    log_dir: Path
    workers: int = 4
    extra: tuple = ()
    process: subprocess.Popen | None = None
    starts: int = 0
    logs: list = field(default_factory=list)

    def start(self) -> "Consumer":
        self.starts += 1
        log = self.log_dir / f"consumer-{id(self)}-{self.starts}.log"
        self.logs.append(log)
        command = [str(Path(sys.executable).parent / "huey_consumer"), "tasks.huey",
                   "--workers", str(self.workers), "--max-delay", "1", "--flush-locks", *self.extra]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log.open("w"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 30) -> "Consumer":
        wait_until(lambda: "consumer started" in self.logs[-1].read_text().lower()
                   or self.process.poll() is not None, timeout, "the consumer to start")
        assert self.process.poll() is None, self.logs[-1].read_text()
        return self

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        return "\n".join(p.read_text() for p in self.logs if p.exists())


# --------------------------------------------------------------------------------------
# The world: fake network, fake Slack, settings shared by this process and the consumers


@dataclass
class World:
    backend: object
    fake: FakeSandbox
    slack: object
    env: dict
    tmp: Path
    make: object
    team: dict = field(default_factory=dict)
    consumers: list = field(default_factory=list)

    def consumer(self, workers: int = 4, *extra: str, **env) -> Consumer:
        consumer = Consumer({**self.env, **{k: str(v) for k, v in env.items()}}, self.tmp,
                            workers=workers, extra=extra)
        self.consumers.append(consumer)
        return consumer

    def account(self, name: str):
        account = self.make.account(self.team["ws"], platform="sandbox", project=self.team["project"],
                                    platform_user_id=name, handle=f"@{name}")
        access, refresh = self.fake.issue_tokens(name)
        OAuthToken.create(account=account, access_token=access, refresh_token=refresh,
                          expires_at=utcnow() + timedelta(hours=2))
        return account

    def schedule(self, at, accounts=None, text: str | None = None, thread: bool = True) -> Post:
        """A post through the real workflow: draft → submit → approved by a second person.
        The approval rings the engine after commit (this process plays the web)."""
        accounts = accounts or [self.team["account"]]
        draft = compose.DraftInput(project_id=str(self.team["project"].id),
                                   account_ids=[str(a.id) for a in accounts],
                                   body=text or f"Post {uuid.uuid4().hex[:10]}", scheduled_at=at)
        post = compose.save_draft(self.team["author"], draft)
        if thread:  # the approval message whose thread gets the results
            ts = self.slack_client().chat_postMessage(channel=CHANNEL, text="approval")["ts"]
            Post.update(approval_message_ts=ts).where(Post.id == post.id).execute()
        posts.submit(self.team["author"], post.id)
        outcome = decide(self.team["approver"], post.id, "approved")
        assert outcome.changed and Post.get_by_id(post.id).status == "scheduled"
        return Post.get_by_id(post.id)

    def targets(self, post=None) -> list:
        query = PostTarget.select()
        if post is not None:
            query = query.where(PostTarget.post == post.id)
        return list(query)

    def slack_client(self):
        from bot.app import web_client
        return web_client(Settings.from_env(self.env), "xoxb-herald-test")

    def dump(self) -> str:
        return "\n".join(c.output()[-20000:] for c in self.consumers)


ENGINE_ENV = {
    "SWEEP_INTERVAL": "1", "PUBLISH_LEASE": "3s", "RECONCILE_AFTER": "1s", "PUBLISH_BACKOFF": "1s",
    "PUBLISH_BACKOFF_CAP": "4s", "PUBLISH_MAX_ATTEMPTS": "4", "MISSED_AFTER": "10m",
}


@pytest.fixture
def world(db, backend, make, queue_url, fake_slack, tmp_path):
    fake = FakeSandbox(latency=0.0).start()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "QUEUE_URL", "SLACK_", "SANDBOX_", "PUBLISH_"))}
    env.update(ENGINE_ENV, DATABASE_URL=backend.url, QUEUE_URL=queue_url,
               TOKEN_KEYS=",".join(TEST_TOKEN_KEYS), SECRET_KEY="test",
               HERALD_INSTANCE_PATH=str(tmp_path / "instance"),
               SANDBOX_API_URL=fake.api_url(timeout=1), PUBLIC_URL="http://herald.test",
               SLACK_BOT_TOKEN="xoxb-herald-test", SLACK_API_URL=fake_slack.api_url,
               SLACK_SIGNING_SECRET=SIGNING_SECRET, LOG_LEVEL="INFO",
               PYTHONPATH=str(ROOT), PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    settings = Settings.from_env(env)
    before = networks._settings, publishing._config
    networks.configure(settings)
    publishing.configure(publishing.EngineConfig.from_env(env))
    world = World(backend, fake, fake_slack, env, tmp_path, make)
    ws = make.workspace("T111", name="acme")
    project = make.project(ws, name="Launches", approval_policy="required", approvals_required=1,
                           approval_channel_id=CHANNEL)
    world.team = {"ws": ws, "project": project, "author": make.user(ws, role="editor"),
                  "approver": make.user(ws, role="approver")}
    world.team["account"] = world.account("acct-1")
    try:
        yield world
    finally:
        for consumer in world.consumers:
            consumer.kill()
        fake.stop()
        networks._settings, publishing._config = before
