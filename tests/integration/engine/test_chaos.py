"""Workers killed with SIGKILL at random moments while 200 targets go out, restarted each time.

What must hold afterwards: every target ended published, failed or needs_review (nothing
silently lost); the network saw no duplicate; nothing is left scheduled in the past or
publishing without a lease; no journal row is left in `sending`.
"""
from __future__ import annotations

import random
import signal
import time
from collections import Counter
from datetime import timedelta

import pytest

from db.fields import utcnow
from db.models import PublishAttempt
from tests.integration.engine.conftest import wait_until

END_STATES = {"published", "failed", "needs_review"}


def run_chaos(world, *, posts: int, accounts: int, kills: int, seed: int) -> Counter:
    rng = random.Random(seed)
    world.fake.latency = 0.2           # a wide in-flight window for the kills to land in
    people = [world.team["account"]] + [world.account(f"acct-{i}") for i in range(2, accounts + 1)]
    consumer = world.consumer(8).start().wait_ready()
    start = utcnow() + timedelta(seconds=3)
    for i in range(posts):
        world.schedule(start + timedelta(seconds=i * 0.15), accounts=people, thread=False)
    total = posts * accounts
    killed = 0
    deadline = time.monotonic() + 60
    while killed < kills and time.monotonic() < deadline:
        consumer.wait_ready()                    # kill a working consumer, not a starting one
        time.sleep(rng.uniform(0.1, 1.5))
        consumer.kill(signal.SIGKILL)
        killed += 1
        consumer.start()
        if all(t.status in END_STATES for t in world.targets()):
            break
    consumer.wait_ready()
    wait_until(lambda: all(t.status in END_STATES for t in world.targets()), 120,
               "every target to settle after the kills", interval=0.25)
    targets = world.targets()
    assert len(targets) == total
    now = utcnow()
    assert not [t for t in targets if t.status == "scheduled" and t.next_attempt_at < now]
    assert not [t for t in targets if t.status == "publishing" and t.lease_until is None]
    assert PublishAttempt.select().where(PublishAttempt.state == "sending").count() == 0
    assert world.fake.duplicates() == {"keys": {}, "targets": {}}, "the network saw a duplicate"
    live = Counter(p.target for p in world.fake.live_posts())
    for target in targets:
        if target.status == "published":
            assert live[str(target.id)] == 1
            assert PublishAttempt.select().where((PublishAttempt.target == target.id)
                                                 & (PublishAttempt.state == "accepted")).count() >= 1
        else:
            assert live[str(target.id)] <= 1
    found = PublishAttempt.select().where(PublishAttempt.error_message.startswith("Confirmed by")).count()
    doubted = (PublishAttempt.select().where(PublishAttempt.error_kind == "ambiguous").count())
    print(f"\nchaos: {killed} SIGKILLs, {consumer.starts} starts, statuses "
          f"{dict(Counter(t.status for t in targets))}, requests {world.fake.stats.publish_requests}, "
          f"replays by key {world.fake.stats.replays}, attempts in doubt {doubted}, "
          f"found by lookup {found}")
    return Counter(t.status for t in targets)


def test_sigkill_at_random_points_over_200_publishes(world):
    statuses = run_chaos(world, posts=50, accounts=4, kills=12, seed=20261121)
    assert set(statuses) <= END_STATES


def test_sigkill_on_a_network_without_idempotency_keys(world, backend):
    if backend.name == "sqlite":
        pytest.skip("the same protocol; one backend is enough for this variant")
    world.fake.honour_keys = False
    world.env["SANDBOX_API_URL"] = world.fake.api_url(timeout=1, idempotency=0)
    statuses = run_chaos(world, posts=25, accounts=4, kills=8, seed=7)
    # Without keys, an attempt that can't be confirmed is never replayed: people decide.
    assert set(statuses) <= END_STATES
