"""How long Herald takes to acknowledge Slack, next to a bare Bolt app served the same way.

    .venv/bin/python bench/ack_latency.py                  # fresh SQLite database
    .venv/bin/python bench/ack_latency.py --postgres       # a fresh schema in TEST_DATABASE_URL
    .venv/bin/python bench/ack_latency.py --requests 4000 --clients 64 --workers 2 --threads 4

Each app is served by gunicorn exactly as the Procfile serves Herald (gthread workers) on a free
127.0.0.1 port, with the fake Slack Web API from tests/fakes/slack.py running in this process.
32 client threads (keep-alive connections) fire signed requests, half `/social help` and half a
button click (`herald_home_reconnect`, which Herald only acknowledges). Three servers run in
turn: Herald with one bot token, Herald installable (the bot token comes from the encrypted
installation store, cached per process for 10 s), and a bare Bolt app with no-op listeners.

Figures: "server" is gunicorn's own request time (%(D)s: parsing to response written, the
queue in front of the worker excluded), overall and per kind; "client" is the round trip one
of the 32 clients saw, queueing included; "server CPU per request" is the gunicorn processes'
user+system time over the run divided by the requests (steadier than latency on a shared
machine). All exclude a warm-up. Note the floor: in Bolt's threaded mode the request thread
polls for ack() every 10 ms (slack_bolt/listener/thread_runner.py), so ~11 ms is the least any
Bolt app shows here. The script prints figures, asserts nothing, and stops its servers by
itself. All traffic stays on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-1"
TEAM, ENTERPRISE, USER = "T111", "E111", "U111"
BUTTON = "herald_home_reconnect"          # bot/blocks/ids.py HOME_RECONNECT_ACCOUNT: ack only
WARMUP = 200


# --------------------------------------------------------------------------------------
# The bare Bolt app (gunicorn imports it: 'bench.ack_latency:bare_app()')

def bare_app():
    from flask import Flask, request
    from slack_bolt import App
    from slack_bolt.adapter.flask import SlackRequestHandler
    from slack_sdk import WebClient

    bolt = App(signing_secret=os.environ["SLACK_SIGNING_SECRET"],
               client=WebClient(token=os.environ["BARE_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
               token_verification_enabled=False)

    @bolt.command("/social")
    def command(ack):
        ack()

    @bolt.action(re.compile(".*"))
    def button(ack):
        ack()

    handler = SlackRequestHandler(bolt)
    app = Flask("bare-bolt")

    @app.post("/slack/events")
    def events():
        request.get_data(cache=True)
        return handler.handle(request)

    @app.get("/healthz")
    def healthz():
        return "ok"

    return app


# --------------------------------------------------------------------------------------
# Requests, signed as Slack signs them

def bodies(fake, n: int) -> list[tuple[str, str]]:
    from tests.fakes.slack import load_vector
    command = dict(parse_qsl(load_vector("slash_command.form.txt")))
    command.update(command="/social", text="help", team_id=TEAM, enterprise_id=ENTERPRISE, user_id=USER,
                   response_url=fake.response_url("bench-command"))
    action = json.loads(load_vector("block_actions.json"))
    action["team"] = dict(action["team"], id=TEAM, enterprise_id=ENTERPRISE)
    action["user"] = dict(action["user"], id=USER, team_id=TEAM)
    action["response_url"] = fake.response_url("bench-action")
    action["actions"] = [dict(action["actions"][0], action_id=BUTTON, block_id="bench")]
    out = []
    for i in range(n):
        if i % 2 == 0:
            command["trigger_id"] = f"111.{i}.bench"
            out.append((urlencode(command), "command"))
        else:
            action["trigger_id"] = f"222.{i}.bench"
            out.append(("payload=" + quote(json.dumps(action)), "button"))
    return out


def fire(port: int, requests: list[tuple[str, str]], clients: int, query: str) -> tuple[list[float], dict]:
    import httpx
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(SIGNING_SECRET)
    local = threading.local()
    def one(item):
        body, kind = item
        url = f"http://127.0.0.1:{port}/slack/events?{query}&kind={kind}"
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=30)
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body)}
        started = time.perf_counter()
        response = client.post(url, content=body.encode(), headers=headers)
        elapsed = time.perf_counter() - started
        return elapsed, response.status_code

    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, requests))
    statuses: dict[int, int] = {}
    for _, status in results:
        statuses[status] = statuses.get(status, 0) + 1
    return [r[0] * 1000 for r in results], statuses


# --------------------------------------------------------------------------------------
# Servers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, target: str, env: dict, workers: int, threads: int, log: Path):
        self.port = free_port()
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
             "--access-logfile", str(log), "--access-logformat", "%(D)s %(s)s %(q)s",
             "--log-level", "warning", target],
            cwd=ROOT, env=env)

    def wait_ready(self, timeout: float = 30.0) -> None:
        import httpx
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)   # polling a starting server; nothing else to wait on
        raise SystemExit("gunicorn did not become ready")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the master and its workers (Linux /proc);
        steadier than latency on a shared machine."""
        pids = [self.process.pid]
        try:
            for task in Path(f"/proc/{self.process.pid}/task").iterdir():
                pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            return float("nan")
        ticks = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])          # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def server_times(self, query: str) -> dict[str, list[float]]:
        """{kind: [ms]} from the access log, for requests sent with `query`."""
        times: dict[str, list[float]] = {}
        for line in self.log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].startswith(query + "&kind="):
                kind = parts[2].rsplit("=", 1)[1]
                times.setdefault(kind, []).append(int(parts[0]) / 1000)      # microseconds → ms
        return times


# --------------------------------------------------------------------------------------
# Database

def fresh_database(folder: Path, postgres: bool) -> tuple[str, callable]:
    from db import connect
    from db.migrate import migrate
    if not postgres:
        url = f"sqlite:///{folder / 'herald.db'}"
        db = connect(url)
        migrate(db)
        db.close()
        return url, lambda: None
    admin_url = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"herald_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = connect(admin_url)
    admin.execute_sql(f'CREATE SCHEMA "{schema}"')
    admin.close_all()
    joiner = "&" if "?" in admin_url else "?"
    url = f"{admin_url}{joiner}options={quote(f'-c search_path={schema}')}"
    db = connect(url)
    migrate(db)
    db.close_all()

    def drop():
        admin = connect(admin_url)
        admin.execute_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close_all()
    return url, drop


def seed_installation(url: str, token_keys: str, client_id: str) -> None:
    """What an OAuth install leaves behind, so the installable server has a team to authorize."""
    from slack_sdk.oauth.installation_store import Installation

    from bot.store import PeeweeInstallationStore
    from core import crypto
    from db import database, init_database
    crypto.configure(tuple(token_keys.split(",")))
    init_database(url)
    with database.connection_context():
        PeeweeInstallationStore(client_id).save(Installation(
            app_id="A111", enterprise_id=ENTERPRISE, team_id=TEAM, team_name="Bench", user_id=USER,
            bot_id="B111", bot_user_id="UB0T", bot_token=BOT_TOKEN, bot_scopes=["commands", "chat:write"]))


# --------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def everything(by_kind: dict[str, list[float]]) -> list[float]:
    return [v for values in by_kind.values() for v in values]


def summary(values: list[float]) -> str:
    return (f"p50 {percentile(values, 50):6.2f}  p99 {percentile(values, 99):6.2f}  "
            f"mean {statistics.fmean(values):6.2f}  max {max(values):7.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--postgres", action="store_true", help="use a fresh schema in TEST_DATABASE_URL")
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    from tests.fakes.slack import FakeSlack

    results = {}
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp, FakeSlack() as fake:
        folder = Path(tmp)
        fake.add_bot(BOT_TOKEN, team_id=TEAM, enterprise_id=ENTERPRISE)
        url, drop = fresh_database(folder, args.postgres)
        token_keys = Fernet.generate_key().decode()
        client_id = "111.222"
        seed_installation(url, token_keys, client_id)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HERALD_", "DATABASE_"))}
        base.update(HERALD_INSTANCE_PATH=str(folder), DATABASE_URL=url, TOKEN_KEYS=token_keys,
                    SECRET_KEY="bench", QUEUE_URL=f"sqlite:///{folder / 'queue.db'}", LOG_LEVEL="WARNING",
                    PUBLIC_URL="http://127.0.0.1", SLACK_SIGNING_SECRET=SIGNING_SECRET,
                    SLACK_API_URL=fake.api_url)
        servers = [
            ("Herald, one workspace", "web:create_app()", dict(base, SLACK_BOT_TOKEN=BOT_TOKEN)),
            ("Herald, installable", "web:create_app()",
             dict(base, SLACK_CLIENT_ID=client_id, SLACK_CLIENT_SECRET="bench-secret")),
            # Not SLACK_BOT_TOKEN: Bolt would read it too, and warn that `client` wins.
            ("bare Bolt, no-op", "bench.ack_latency:bare_app()", dict(base, BARE_BOT_TOKEN=BOT_TOKEN)),
        ]
        work = bodies(fake, args.requests)
        warm = bodies(fake, WARMUP)
        try:
            for name, target, env in servers:
                server = Gunicorn(target, env, args.workers, args.threads, folder / f"access-{len(results)}.log")
                try:
                    server.wait_ready()
                    fire(server.port, warm, args.clients, "warmup=1")
                    cpu, started = server.cpu_seconds(), time.perf_counter()
                    client_ms, statuses = fire(server.port, work, args.clients, "run=1")
                    wall = time.perf_counter() - started
                    cpu = server.cpu_seconds() - cpu
                finally:
                    server.stop()
                results[name] = (server.server_times("run=1"), client_ms, statuses, wall, cpu)
        finally:
            drop()

    print(f"\nack latency: {args.requests} signed requests (half `/social help`, half a `{BUTTON}` "
          f"button), {args.clients} concurrent clients, gunicorn gthread {args.workers} workers × "
          f"{args.threads} threads, {'PostgreSQL' if args.postgres else 'SQLite'}, {os.cpu_count()} CPUs, "
          "all on 127.0.0.1 (clients share the CPUs)\n")
    for name, (server, client_ms, statuses, wall, cpu) in results.items():
        print(f"{name:24s} server  {summary(everything(server))}   ms")
        for kind, values in sorted(server.items()):
            print(f"{'':24s}  {kind:8s}{summary(values)}   ms")
        print(f"{'':24s} client  {summary(client_ms)}   ms")
        print(f"{'':24s} {len(client_ms) / wall:5.0f} req/s, server CPU {cpu * 1000 / len(client_ms):.2f} ms "
              f"per request, HTTP {dict(sorted(statuses.items()))}")
    bare = everything(results["bare Bolt, no-op"][0])
    print()
    for name in ("Herald, one workspace", "Herald, installable"):
        server_ms = everything(results[name][0])
        print(f"{name} / bare Bolt (server): p50 × {percentile(server_ms, 50) / percentile(bare, 50):.2f}, "
              f"p99 × {percentile(server_ms, 99) / percentile(bare, 99):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
