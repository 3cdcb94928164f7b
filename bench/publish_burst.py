"""Burst: 10,000 targets across 1,000 accounts due at the same moment (social teams schedule on
the minute), published by one host's consumer through a fake network with 100 ms latency.

Prints posts/s, lateness p50/p99 (request sent − due, and the network's own publish time −
due), duplicates, and the ratio to the ideal (workers ÷ latency). Then the same burst with 0 ms
latency against bare Huey no-op tasks in the same consumer: the engine's overhead per task.

    .venv/bin/python bench/publish_burst.py [--targets 10000] [--accounts 1000] [--workers 32]

Real Postgres (a throwaway schema in BENCH_DATABASE_URL, default the test database), real
Redis (a reserved database number, flushed), a real `huey_consumer` process. Everything is
on 127.0.0.1; the run stops by itself (bounded counts, deadlines) and cleans up.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tasks import huey  # noqa: E402  (the consumer imports this module to find `noop`)

BENCH_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")


@huey.task()
def noop() -> None:
    """Bare Huey: what a task costs with no engine behind it."""


# --------------------------------------------------------------------------------------
# Shared harness (bench/lateness.py and bench/demo.py use it too)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@contextmanager
def postgres_schema(prefix: str = "herald_bench"):
    """A migrated throwaway schema; yields (DATABASE_URL for processes, peewee db)."""
    from db import connect, init_database
    from db.migrate import migrate
    schema = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = connect(BENCH_DATABASE_URL)
    admin.execute_sql(f'CREATE SCHEMA "{schema}"')
    admin.close_all()
    joiner = "&" if "?" in BENCH_DATABASE_URL else "?"
    url = f"{BENCH_DATABASE_URL}{joiner}max_connections=48&options={quote(f'-c search_path={schema}')}"
    db = init_database(url)
    migrate(db)
    try:
        yield url, db
    finally:
        db.close_all()
        admin = connect(BENCH_DATABASE_URL)
        admin.execute_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close_all()


@contextmanager
def sqlite_file(folder: Path):
    from db import init_database
    from db.migrate import migrate
    url = f"sqlite:///{folder / 'bench.db'}"
    db = init_database(url)
    migrate(db)
    try:
        yield url, db
    finally:
        db.close()


@contextmanager
def redis_queue():
    """A Redis database number reserved like the tests do (key in db 0), flushed before/after."""
    import redis
    admin = redis.Redis.from_url(f"{REDIS_URL}/0")
    token = f"bench-{os.getpid()}"
    for number in range(15, 0, -1):
        if admin.set(f"herald:test-redis-db:{number}", token, nx=True, ex=3600):
            break
    else:
        raise SystemExit("no free Redis database number (1-15)")
    url = f"{REDIS_URL}/{number}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        admin.delete(f"herald:test-redis-db:{number}")


def base_env(database_url: str, queue_url: str, folder: Path, **extra) -> dict:
    from cryptography.fernet import Fernet
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "QUEUE_URL", "SLACK_", "SANDBOX_", "PUBLISH_", "SWEEP_"))}
    env.update(DATABASE_URL=database_url, QUEUE_URL=queue_url,
               TOKEN_KEYS=env.get("TOKEN_KEYS") or Fernet.generate_key().decode(),
               SECRET_KEY="bench", HERALD_INSTANCE_PATH=str(folder / "instance"),
               PUBLIC_URL="http://herald.bench", LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT),
               PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Consumer:
    def __init__(self, env: dict, workers: int, log: Path, module: str = "tasks.huey", *extra: str):
        self.log = log
        command = [str(Path(sys.executable).parent / "huey_consumer"), module, "--workers", str(workers),
                   "--max-delay", "1", "--flush-locks", *extra]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while "consumer started" not in log.read_text().lower():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the consumer didn't start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def prepare_process(env: dict, fake_url: str) -> None:
    """This process plays the web: same keys, same queue, same network URL."""
    from core import crypto, networks, publishing
    from core.settings import Settings
    from tasks import queue
    settings = Settings.from_env(env)
    crypto.configure(settings.token_keys)
    networks.configure(settings)
    publishing.configure(publishing.EngineConfig.from_env(env))
    queue.use(env["QUEUE_URL"])
    del fake_url


def seed_accounts(fake, count: int):
    """A workspace, a project and `count` sandbox accounts with tokens the fake knows."""
    from core import workspaces
    from db.fields import utcnow
    from db.models import OAuthToken, Project, SocialAccount
    ws = workspaces.ensure_workspace(f"TBENCH{uuid.uuid4().hex[:6]}", "Bench")
    author = workspaces.ensure_user(ws, "UBENCH", real_name="Bench", role="owner")
    project = Project.create(workspace=ws, name=f"Bench {uuid.uuid4().hex[:6]}")
    accounts, tokens = [], []
    for i in range(count):
        name = f"bench-{i}"
        account_id = uuid.uuid4()
        accounts.append({"id": account_id, "workspace": ws.id, "project": project.id,
                         "platform": "sandbox", "platform_user_id": name, "handle": f"@{name}"})
        access, refresh = fake.issue_tokens(name)
        tokens.append({"id": uuid.uuid4(), "account": account_id, "access_token": access,
                       "refresh_token": refresh, "expires_at": utcnow() + timedelta(hours=2)})
    for chunk in range(0, count, 500):
        SocialAccount.insert_many(accounts[chunk:chunk + 500]).execute()
        OAuthToken.insert_many(tokens[chunk:chunk + 500]).execute()
    return ws, author, project, [a["id"] for a in accounts]


def seed_burst(ws, author, project, accounts: list, targets: int, per_post: int, due, text: str):
    """`targets` scheduled targets, `per_post` accounts per post, all due at `due`."""
    from db.models import Post, PostTarget
    posts_rows, target_rows = [], []
    for p in range(targets // per_post):
        post_id = uuid.uuid4()
        posts_rows.append({"id": post_id, "workspace": ws.id, "project": project.id, "author": author.id,
                           "body": f"{text} #{p}", "status": "scheduled", "scheduled_at": due})
        for k in range(per_post):
            target_rows.append({"id": uuid.uuid4(), "post": post_id,
                                "account": accounts[(p * per_post + k) % len(accounts)],
                                "status": "scheduled", "next_attempt_at": due,
                                "idempotency_key": uuid.uuid4()})
    for chunk in range(0, len(posts_rows), 500):
        Post.insert_many(posts_rows[chunk:chunk + 500]).execute()
    for chunk in range(0, len(target_rows), 1000):
        PostTarget.insert_many(target_rows[chunk:chunk + 1000]).execute()
    return [str(r["id"]) for r in target_rows]


def ring(ids: list[str]) -> float:
    """Enqueue the bells the way the web does after an approval; returns seconds taken."""
    from tasks.publish import ring as engine_ring
    started = time.monotonic()
    for chunk in range(0, len(ids), 1000):
        engine_ring(ids[chunk:chunk + 1000])
    return time.monotonic() - started


def wait_published(ids: list[str], deadline_s: float, label: str) -> None:
    from db.models import PostTarget
    deadline = time.monotonic() + deadline_s
    last = -1
    while time.monotonic() < deadline:
        done = 0
        for chunk in range(0, len(ids), 5000):
            done += (PostTarget.select().where(PostTarget.id.in_(ids[chunk:chunk + 5000])
                                               & (PostTarget.status == "published")).count())
        if done == len(ids):
            return
        if done != last:
            print(f"  {label}: {done}/{len(ids)} published", flush=True)
            last = done
        time.sleep(2)
    raise SystemExit(f"{label}: gave up waiting ({last}/{len(ids)} published)")


def measure(ids: list[str], due) -> dict:
    from db.models import PostTarget, PublishAttempt
    sent, published, attempts = [], [], 0
    for chunk in range(0, len(ids), 5000):
        part = ids[chunk:chunk + 5000]
        for t in PostTarget.select(PostTarget.published_at).where(PostTarget.id.in_(part)):
            published.append((t.published_at - due).total_seconds())
        for a in PublishAttempt.select(PublishAttempt.started_at).where(PublishAttempt.target.in_(part)):
            sent.append((a.started_at - due).total_seconds())
            attempts += 1
    span = max(published)
    return {"n": len(ids), "attempts": attempts, "span": span, "rate": len(ids) / span,
            "sent_p50": percentile(sent, 50), "sent_p99": percentile(sent, 99),
            "pub_p50": percentile(published, 50), "pub_p99": percentile(published, 99)}


# --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--per-post", type=int, default=10)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--lead", type=float, default=20, help="seconds between ringing and due")
    parser.add_argument("--worker-type", choices=("thread", "process"), default="thread")
    args = parser.parse_args()

    import tempfile
    from db.fields import utcnow
    from tests.fakes.platforms.engine import FakeSandbox

    folder = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    fake = FakeSandbox(latency=args.latency_ms / 1000).start()
    try:
        with postgres_schema() as (database_url, _db), redis_queue() as queue_url:
            env = base_env(database_url, queue_url, folder, SANDBOX_API_URL=fake.api_url(timeout=10))
            prepare_process(env, fake.url)
            ws, author, project, accounts = seed_accounts(fake, args.accounts)
            consumer = Consumer(env, args.workers, folder / "consumer.log", "bench.publish_burst.huey",
                                "--worker-type", args.worker_type)
            try:
                results = {}
                for label, latency in ((f"{args.latency_ms:.0f} ms", args.latency_ms / 1000), ("0 ms", 0.0)):
                    fake.latency = latency
                    due = utcnow().replace(microsecond=0) + timedelta(seconds=args.lead)
                    ids = seed_burst(ws, author, project, accounts, args.targets, args.per_post, due,
                                     f"Burst {label}")
                    took = ring(ids)
                    print(f"{label}: {len(ids)} targets due at {due:%H:%M:%S}, rung in {took:.1f} s", flush=True)
                    wait_published(ids, 600, label)
                    results[label] = measure(ids, due)
                # Bare Huey: the same consumer draining no-op tasks. (Enqueued under the name the
                # consumer knows: this file runs as __main__ here, as bench.publish_burst there.)
                from bench.publish_burst import noop as bare_noop
                started = time.monotonic()
                for _ in range(args.targets):
                    bare_noop()
                enqueued = time.monotonic() - started
                started = time.monotonic()
                deadline = started + 300
                while huey.pending_count() and time.monotonic() < deadline:
                    time.sleep(0.01)
                noop_rate = args.targets / (time.monotonic() - started)
            finally:
                consumer.stop()
            duplicates = fake.duplicates()
            extra_posts = len(fake.live_posts()) - 2 * (args.targets // args.per_post * args.per_post)
    finally:
        fake.stop()

    ideal = args.workers / (args.latency_ms / 1000)
    slow, fast = results[f"{args.latency_ms:.0f} ms"], results["0 ms"]
    print()
    print(f"publish_burst — {args.targets} targets, {args.accounts} accounts, {args.workers} "
          f"{args.worker_type} workers, "
          f"one host ({os.cpu_count()} cores), Postgres + Redis")
    for label, r in results.items():
        print(f"  {label:>7} latency: {r['rate']:7.1f} posts/s over {r['span']:.1f} s; lateness "
              f"request-sent p50 {r['sent_p50']:.2f} s p99 {r['sent_p99']:.2f} s, published p50 "
              f"{r['pub_p50']:.2f} s p99 {r['pub_p99']:.2f} s; attempts {r['attempts']}")
    print(f"  ideal at {args.latency_ms:.0f} ms: {args.workers} / {args.latency_ms / 1000:.3f} s = {ideal:.0f} posts/s;"
          f" achieved {slow['rate'] / ideal:.0%} (goal ≥ 70%)")
    print(f"  bare Huey no-op tasks: {noop_rate:.0f} tasks/s (enqueued at {args.targets / enqueued:.0f}/s); "
          f"engine at 0 ms: {fast['rate']:.0f} posts/s → overhead ×{noop_rate / fast['rate']:.1f} per task")
    print(f"  duplicates at the network: {len(duplicates['keys']) + len(duplicates['targets'])} "
          f"(extra posts beyond one per target: {extra_posts})")


if __name__ == "__main__":
    main()
