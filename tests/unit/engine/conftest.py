"""Engine unit tests: core.publishing / reconcile / tokens / notify driven directly, against a
real loopback fake network (tests/fakes/platforms/engine.py), on Postgres and SQLite. Huey is
an in-memory queue that only records what was enqueued (nothing runs by itself)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from huey.storage import MemoryStorage

from core import networks, notify, publishing, scheduling
from core.settings import Settings
from db.fields import utcnow
from db.models import OAuthToken, Post, PostTarget
from tests.conftest import TEST_TOKEN_KEYS
from tests.fakes.platforms.engine import FakeSandbox

FAST = publishing.EngineConfig(lease=timedelta(seconds=30), max_attempts=3,
                               backoff=timedelta(seconds=10), backoff_cap=timedelta(seconds=60),
                               reconcile_after=timedelta(seconds=5), missed_after=timedelta(hours=1))


@dataclass
class Engine:
    settings: Settings
    fake: FakeSandbox
    cfg: publishing.EngineConfig
    team: dict
    announced: list = field(default_factory=list)

    def target(self, *, due=None, text: str = "Hello from Herald", account=None, **kw) -> PostTarget:
        """A scheduled post with one target on the sandbox account, due at `due` (default now)."""
        due = due or utcnow()
        post = Post.create(workspace=self.team["ws"], project=self.team["project"],
                           author=self.team["author"], body=text, status="scheduled", scheduled_at=due,
                           approval_channel_id="C0APPROVE", approval_message_ts="1700000000.000100")
        fields = {"status": "scheduled", "next_attempt_at": due, **kw}
        return PostTarget.create(post=post, account=account or self.team["account"], **fields)

    def reload(self, target) -> PostTarget:
        return PostTarget.get_by_id(target.id)

    def account(self, name: str = "acct-2"):
        account = self._make.account(self.team["ws"], platform="sandbox", project=self.team["project"],
                                     platform_user_id=name, handle=f"@{name}")
        access, refresh = self.fake.issue_tokens(name)
        OAuthToken.create(account=account, access_token=access, refresh_token=refresh,
                          expires_at=utcnow() + timedelta(hours=2))
        return account

    _make: object = None


@pytest.fixture
def fake():
    with FakeSandbox() as server:
        yield server


@pytest.fixture
def queue():
    """tasks.huey recording into memory (not immediate): `queue.pending()` shows the bells."""
    import tasks
    huey = tasks.huey
    saved = (huey.storage, huey._immediate)
    huey.storage, huey._immediate = MemoryStorage(huey.name), False
    yield huey
    huey.storage, huey._immediate = saved


@pytest.fixture
def engine(db, make, fake, tmp_path, queue):
    settings = Settings.from_env({
        "HERALD_INSTANCE_PATH": str(tmp_path), "TOKEN_KEYS": ",".join(TEST_TOKEN_KEYS),
        "SECRET_KEY": "test", "SANDBOX_API_URL": fake.api_url(timeout=1),
        "PUBLIC_URL": "http://herald.test", "MISSED_AFTER": "1h"})
    before_settings, before_config = networks._settings, publishing._config
    networks.configure(settings)
    publishing.configure(FAST)
    ws = make.workspace()
    project = make.project(ws, approval_channel_id="C0APPROVE")
    account = make.account(ws, platform="sandbox", project=project, platform_user_id="acct-1",
                           handle="@acct-1")
    access, refresh = fake.issue_tokens("acct-1")
    OAuthToken.create(account=account, access_token=access, refresh_token=refresh,
                      expires_at=utcnow() + timedelta(hours=2))
    team = {"ws": ws, "project": project, "account": account,
            "author": make.user(ws, role="editor"), "approver": make.user(ws, role="approver"),
            "other": make.user(ws, role="editor")}
    state = Engine(settings, fake, FAST, team)
    state._make = make
    recorder = lambda kind, ids: state.announced.extend((kind, i) for i in ids)  # noqa: E731
    notify.register_notifier(recorder)
    yield state
    notify._notifiers.remove(recorder)
    networks.configure(before_settings) if before_settings else None
    networks._settings = before_settings
    publishing.configure(before_config)


@pytest.fixture
def rung():
    calls: list = []
    ringer = calls.extend
    scheduling.register_ringer(ringer)
    yield calls
    scheduling._ringers.remove(ringer)
