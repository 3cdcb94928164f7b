"""The engine's hot queries on 1,000,000 post_targets in Postgres: p50/p99 over many runs and the
EXPLAIN plans, which must show the partial indexes (post_targets_due, post_targets_leased).

    .venv/bin/python bench/due_query.py [--rows 1000000] [--runs 500]

The table looks like a busy Herald's: nearly everything published long ago, ~2% scheduled over
the next 30 days, a few hundred due right now, a few dozen publishing. Goal: p99 ≤ 5 ms.
A throwaway schema in BENCH_DATABASE_URL (default the test database), dropped afterwards.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.publish_burst import percentile, postgres_schema  # noqa: E402

FILL = """
INSERT INTO workspaces (id, created_at, updated_at, team_id, name, timezone)
VALUES ('00000000-0000-0000-0000-000000000001', now(), now(), 'TDUE', 'Due', 'UTC');
INSERT INTO users (id, created_at, updated_at, workspace_id, slack_user_id, real_name)
VALUES ('00000000-0000-0000-0000-000000000002', now(), now(), '00000000-0000-0000-0000-000000000001', 'U1', 'x');
INSERT INTO projects (id, created_at, updated_at, workspace_id, name, approval_policy, approvals_required,
                      timezone, tags, description)
VALUES ('00000000-0000-0000-0000-000000000003', now(), now(), '00000000-0000-0000-0000-000000000001', 'P',
        'none', 1, 'UTC', '[]', '');
INSERT INTO social_accounts (id, created_at, updated_at, workspace_id, project_id, platform,
                             platform_user_id, handle, display_name, avatar_url, status, status_detail, extra)
SELECT md5('acct' || a)::uuid, now(), now(), '00000000-0000-0000-0000-000000000001',
       '00000000-0000-0000-0000-000000000003', 'sandbox', 'a' || a, '@a' || a, '', '',
       CASE WHEN a %% 50 = 0 THEN 'needs_reauth' ELSE 'active' END, '', '{}'
FROM generate_series(1, %(accounts)s) a;
INSERT INTO posts (id, created_at, updated_at, workspace_id, project_id, author_id, body, status,
                   scheduled_at, timezone, tags, content_hash)
SELECT md5('post' || p)::uuid, now(), now(), '00000000-0000-0000-0000-000000000001',
       '00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-000000000002', 'post ' || p,
       'published', now() - (p || ' minutes')::interval, 'UTC', '[]', ''
FROM generate_series(1, %(posts)s) p;
INSERT INTO post_targets (id, created_at, updated_at, post_id, account_id, options, status,
                          next_attempt_at, lease_until, attempts, idempotency_key, state)
SELECT md5('target' || t)::uuid, now(), now(), md5('post' || (t / %(per_post)s))::uuid,
       md5('acct' || (1 + (t %% %(accounts)s)))::uuid, '{}',
       CASE WHEN t %% 1000 < 975 THEN 'published'
            WHEN t %% 1000 < 995 THEN 'scheduled'
            WHEN t %% 1000 < 998 THEN 'failed'
            ELSE 'publishing' END,
       CASE WHEN t %% 1000 BETWEEN 975 AND 994
            THEN now() + ((t %% 43200) - 600 || ' minutes')::interval END,
       CASE WHEN t %% 1000 >= 998 THEN now() + ((t %% 20) - 10 || ' minutes')::interval END,
       1, md5('key' || t)::uuid, '{}'
FROM generate_series(%(per_post)s, %(rows)s + %(per_post)s - 1) t;
ANALYZE;
"""

QUERIES = {
    # The sweep's "lost bells": due scheduled targets of active accounts (core.reconcile.lost_rings).
    "due (sweep ring)": lambda: _lost_rings(),
    # The claim's own condition, on one due row (core.publishing.claim_target's UPDATE … WHERE).
    "due (partial index scan)": lambda: _due_only(),
    # Expired leases (core.reconcile.expire_leases), with FOR UPDATE SKIP LOCKED.
    "expired leases": lambda: _expired(),
    "due (raw SQL, psycopg2)": lambda: _raw_sql(),
}


def _lost_rings():
    from core import publishing, reconcile
    from db.fields import utcnow
    return reconcile.lost_rings(utcnow(), publishing.EngineConfig())


def _due_only():
    from db.fields import utcnow
    from db.models import PostTarget
    return list(PostTarget.select(PostTarget.id, PostTarget.next_attempt_at)
                .where((PostTarget.status == "scheduled") & (PostTarget.next_attempt_at <= utcnow()))
                .order_by(PostTarget.next_attempt_at).limit(500).tuples())


def _raw_sql():
    """The same due query as plain SQL through psycopg2: the database's share of the time."""
    from db import database
    return database.execute_sql(
        "SELECT id, next_attempt_at FROM post_targets WHERE status = 'scheduled' "
        "AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 500").fetchall()


def _expired():
    from db import database, for_update
    from db.fields import utcnow
    from db.models import PostTarget
    with database.atomic():
        return list(for_update(PostTarget.select(PostTarget.id)
                               .where((PostTarget.status == "publishing") & (PostTarget.lease_until <= utcnow()))
                               .order_by(PostTarget.lease_until).limit(500), skip_locked=True))


def explain(db, query_fn) -> str:
    """EXPLAIN ANALYZE of the SQL the function runs (captured from peewee)."""
    captured = []
    original = db.execute_sql

    def capture(sql, params=None, *a, **kw):
        if sql.lstrip().upper().startswith("SELECT"):
            captured.append((sql, params))
        return original(sql, params, *a, **kw)

    db.execute_sql = capture
    try:
        query_fn()
    finally:
        db.execute_sql = original
    sql, params = captured[0]
    rows = db.execute_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params).fetchall()
    return "\n".join("    " + r[0] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    per_post = 10
    with postgres_schema("herald_due") as (_url, db):
        started = time.monotonic()
        params = {"rows": args.rows, "posts": args.rows // per_post + 1, "per_post": per_post,
                  "accounts": 2000}
        sql = FILL
        for key, value in params.items():
            sql = sql.replace(f"%({key})s", str(value))
        for statement in filter(str.strip, sql.split(";\n")):   # psycopg2 reads %% as %
            db.execute_sql(statement)
        counts = dict(db.execute_sql("SELECT status, count(*) FROM post_targets GROUP BY status").fetchall())
        due_now = db.execute_sql("SELECT count(*) FROM post_targets WHERE status='scheduled' "
                                 "AND next_attempt_at <= now()").fetchone()[0]
        print(f"filled {sum(counts.values()):,} post_targets in {time.monotonic() - started:.0f} s: "
              f"{counts}; due now: {due_now}")
        print()
        print(f"due_query — {args.runs} runs each, Postgres, warm cache")
        for name, fn in QUERIES.items():
            fn()                                         # warm
            times, rows = [], 0
            for _ in range(args.runs):
                t0 = time.perf_counter()
                rows = len(fn())
                times.append((time.perf_counter() - t0) * 1000)
            print(f"  {name:>24}: {rows:4d} rows  p50 {percentile(times, 50):5.2f} ms  "
                  f"p99 {percentile(times, 99):5.2f} ms  max {max(times):5.2f} ms  (goal p99 ≤ 5 ms)")
        for name in ("due (sweep ring)", "expired leases"):
            print(f"\n  EXPLAIN ANALYZE — {name}:")
            print(explain(db, QUERIES[name]))


if __name__ == "__main__":
    main()
