"""Lateness of sparse single posts: one post at a time, a few seconds apart, each approved well
before its time — how late after its scheduled instant does the request leave, and when does the
network say it was published?

    .venv/bin/python bench/lateness.py [--count 30] [--queue redis|sqlite] [--latency-ms 0]

Goal: p99 ≤ 1.5 s on Redis. Real Postgres, real Redis (or the embedded SQLite queue), a real
`huey_consumer`, a loopback fake network; bounded in count and time.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.publish_burst import Consumer, base_env, percentile, postgres_schema, prepare_process, \
    redis_queue, ring, seed_accounts, seed_burst, wait_published  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--queue", choices=("redis", "sqlite"), default="redis")
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--gap", type=float, nargs=2, default=(1.0, 4.0), help="seconds between posts")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from contextlib import nullcontext
    from db.fields import utcnow
    from db.models import PostTarget, PublishAttempt
    from tests.fakes.platforms.engine import FakeSandbox

    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="herald-lateness-"))
    fake = FakeSandbox(latency=args.latency_ms / 1000).start()
    queue = redis_queue() if args.queue == "redis" else nullcontext(f"sqlite:///{folder / 'queue.db'}")
    try:
        with postgres_schema() as (database_url, _db), queue as queue_url:
            env = base_env(database_url, queue_url, folder, SANDBOX_API_URL=fake.api_url(timeout=10))
            prepare_process(env, fake.url)
            ws, author, project, accounts = seed_accounts(fake, 5)
            consumer = Consumer(env, 4, folder / "consumer.log")
            try:
                due = utcnow() + timedelta(seconds=3)
                plan = []
                for i in range(args.count):
                    # Schedules are arbitrary instants (not whole seconds), like a retry's or a
                    # person's "in 5 minutes"; the engine shouldn't depend on Huey's 1 s tick.
                    due += timedelta(seconds=rng.uniform(*args.gap))
                    [target] = seed_burst(ws, author, project, [accounts[i % len(accounts)]], 1, 1, due,
                                          f"Sparse {i}")
                    plan.append((target, due))
                ring([t for t, _ in plan])
                last = plan[-1][1]
                print(f"{args.count} posts over {(last - utcnow()).total_seconds():.0f} s "
                      f"({args.queue} queue)…", flush=True)
                wait_published([t for t, _ in plan], (last - utcnow()).total_seconds() + 60, "sparse")
            finally:
                consumer.stop()
            sent, published = [], []
            for target_id, due in plan:
                attempt = PublishAttempt.get(PublishAttempt.target == target_id)
                sent.append((attempt.started_at - due).total_seconds())
                published.append((PostTarget.get_by_id(target_id).published_at - due).total_seconds())
    finally:
        fake.stop()

    print()
    print(f"lateness — {args.count} sparse posts, {args.queue} queue, network latency {args.latency_ms:.0f} ms")
    for label, values in (("request sent − due", sent), ("published − due", published)):
        print(f"  {label:>20}: p50 {percentile(values, 50) * 1000:6.0f} ms  p90 "
              f"{percentile(values, 90) * 1000:6.0f} ms  p99 {percentile(values, 99) * 1000:6.0f} ms  "
              f"max {max(values) * 1000:6.0f} ms  min {min(values) * 1000:6.0f} ms")
    print(f"  goal p99 ≤ 1500 ms: {'met' if percentile(published, 99) <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
