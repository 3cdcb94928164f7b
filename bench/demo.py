"""`make demo`: one real Herald session, narrated as it happens.

Starts the web (gunicorn, the Procfile's app factory) and the worker (the Procfile's
huey_consumer line) on fresh embedded databases (SQLite for the data and for the queue) with a
fake Slack Web API on loopback, then sends the signed requests Slack would send for a real
session: Ada types /social, fills in the compose modal and submits it for the next minute;
Grace (an approver) presses Approve on the approval message. The worker publishes to the
sandbox network (a JSON-lines file) at the scheduled second and answers in the approval
thread. Every step is printed when it is observed; nothing is shortcut around the endpoints.

    make demo            (or: .venv/bin/python bench/demo.py [--keep])

Everything listens on 127.0.0.1 and stops by itself (about a minute, at most two).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIGNING_SECRET = "demo-signing-secret"
BOT_TOKEN = "xoxb-herald-demo"
CHANNEL = "C0APPROVALS"
ADA, GRACE = "U0ADA", "U0GRACE"
T0 = time.monotonic()


def now() -> datetime:
    return datetime.now(timezone.utc)


def say(text: str) -> None:
    stamp = now()
    print(f"{stamp:%H:%M:%S}.{stamp.microsecond // 100000}  {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(check, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: timed out waiting for {what}")
        time.sleep(interval)


class HttpClient:
    """The shape tests.slack_requests.SlackRequests wants (Flask's test client), over real HTTP."""

    def __init__(self, base: str):
        import httpx
        self.http = httpx.Client(base_url=base, timeout=10)

    def post(self, path: str, data: bytes, headers: dict):
        return self.http.post(path, content=data, headers=headers)


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the instance folder afterwards")
    args = parser.parse_args()

    try:
        from bot.listeners.commands import social  # noqa: F401
        from bot.listeners.views import compose as compose_view  # noqa: F401
        from bot.listeners.actions import approval  # noqa: F401
    except ImportError as missing:
        raise SystemExit(f"demo: the Slack listeners it drives aren't there yet ({missing}).")

    from tests.fakes.slack import FakeSlack
    from tests.slack_requests import SlackRequests

    folder = Path(tempfile.mkdtemp(prefix="herald-demo-"))
    instance = folder / "instance"
    sandbox_log = instance / "sandbox.jsonl"
    port = free_port()
    slack = FakeSlack().start()
    slack.add_bot(BOT_TOKEN, team_id="T111", team="Acme")
    slack.add_user(ADA, name="Ada", tz="UTC")
    slack.add_user(GRACE, name="Grace", tz="UTC")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "QUEUE_URL", "SLACK_", "SANDBOX_", "PUBLISH_", "SWEEP_",
                                "SECRET_KEY", "TOKEN_KEYS", "HERALD_"))}
    env.update(HERALD_INSTANCE_PATH=str(instance), DATABASE_URL=f"sqlite:///{instance / 'herald.db'}",
               QUEUE_URL=f"sqlite:///{instance / 'queue.db'}", PORT=str(port), WEB_CONCURRENCY="1",
               PUBLIC_URL=f"http://127.0.0.1:{port}", SLACK_SIGNING_SECRET=SIGNING_SECRET,
               SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=slack.api_url, SANDBOX_API_URL=sandbox_log.as_uri(),
               LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT),
               PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    processes = []
    try:
        say(f"fresh instance in {instance} (SQLite data + SQLite queue), fake Slack at {slack.api_url}")
        release = subprocess.run(["bash", "-c", procfile()["release"]], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
        if release.returncode:
            raise SystemExit(release.stdout + release.stderr)
        seed(env)
        say("seeded: workspace Acme, project Launches (#approvals, 1 approval), Ada (editor), "
            "Grace (approver), sandbox account @herald_demo")
        gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}",
                    "--workers", "1", "--threads", "4", "web:create_app()"]
        processes.append(start(gunicorn, env, folder / "web.log"))
        processes.append(start(["bash", "-c", procfile()["worker"]], env, folder / "worker.log"))
        import httpx
        wait(lambda: _ok(httpx, f"http://127.0.0.1:{port}/healthz"), 60, "the web to answer /healthz")
        wait(lambda: "consumer started" in (folder / "worker.log").read_text().lower(), 60, "the worker")
        say(f"web up on 127.0.0.1:{port} (gunicorn web:create_app()), worker up (Procfile: huey_consumer)")

        requests = SlackRequests(HttpClient(f"http://127.0.0.1:{port}"), SIGNING_SECRET, slack)
        session(requests, slack, sandbox_log)
    finally:
        for process in processes:
            stop(process)
        slack.stop()
        for name in ("web.log", "worker.log"):
            text = (folder / name).read_text() if (folder / name).exists() else ""
            if "Traceback" in text:
                print(f"\n--- {name} ---\n{text[-4000:]}")
        if not args.keep:
            import shutil
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept {folder}")


def _ok(httpx, url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def seed(env: dict) -> None:
    """What an owner would have set up on the web first: roles, a project, a connected account."""
    from core import crypto, workspaces
    from core.settings import Settings
    from db import database, init_database
    from db.fields import utcnow
    from db.models import OAuthToken, Project, SocialAccount
    settings = Settings.from_env(env)
    crypto.configure(settings.token_keys)
    init_database(settings.database_url)
    with database.connection_context():
        ws = workspaces.ensure_workspace("T111", "acme")
        workspaces.ensure_user(ws, ADA, real_name="Ada", tz="UTC", role="editor")
        workspaces.ensure_user(ws, GRACE, real_name="Grace", tz="UTC", role="approver")
        project = Project.create(workspace=ws, name="Launches", approval_channel_id=CHANNEL,
                                 approval_policy="required", approvals_required=1, timezone="UTC")
        account = SocialAccount.create(workspace=ws, project=project, platform="sandbox",
                                       platform_user_id="herald_demo", handle="herald_demo",
                                       display_name="Herald demo")
        OAuthToken.create(account=account, access_token="sandbox-demo-token", refresh_token="sandbox-demo-refresh",
                          expires_at=utcnow() + timedelta(hours=2))
    database.close()


def session(requests, slack, sandbox_log: Path) -> None:
    from bot.blocks import ids

    # 1. /social
    response = requests.command("", user_id=ADA, channel_id="C0GENERAL")
    assert response.status_code == 200, response.text
    view = wait(lambda: _compose_view(slack), 10, "the compose modal")
    say("Ada types /social → Herald acks and opens the compose modal (views.open, then views.update)")
    project = _option(view, ids.COMPOSE_PROJECT_BLOCK)
    account = _option(view, ids.COMPOSE_ACCOUNTS_BLOCK)

    # 2. the modal, for the next whole minute at least 20 s away
    due = (now() + timedelta(seconds=80)).replace(second=0, microsecond=0)
    if (due - now()).total_seconds() > 75:
        due -= timedelta(minutes=1)
    body = "Herald is live: posts go out at their minute, exactly once."
    values = modal_state(project=project, account=account, body=body, date=due.date().isoformat(),
                         time=due.strftime("%H:%M"))
    response = requests.view_submission(view, values, user_id=ADA)
    assert response.status_code == 200 and not response.content.strip(), response.text
    approval = wait(lambda: _approval_message(slack), 10, "the approval message")
    say(f"Ada submits “{body}” for {due:%H:%M} UTC → pending approval; the approval message "
        f"is in #approvals (ts {approval['ts']})")

    # 3. Grace approves
    value = next(e["value"] for b in approval["blocks"] if b.get("type") == "actions"
                 for e in b["elements"] if e["action_id"] == ids.APPROVE)
    response = requests.block_action(ids.APPROVE, value, user_id=GRACE, channel_id=CHANNEL,
                                     message_ts=approval["ts"])
    assert response.status_code == 200, response.text
    wait(lambda: any(c.path == "/api/chat.update" for c in slack.calls), 10, "the approval message update")
    say(f"Grace presses Approve → scheduled; the engine is rung for {due:%H:%M:%S} "
        f"(in {(due - now()).total_seconds():.0f} s)")

    # 4. the worker publishes at the minute
    record = wait(lambda: _published(sandbox_log), (due - now()).total_seconds() + 30,
                  "the post on the sandbox network")
    at = datetime.fromisoformat(record["at"])
    late = (at - due).total_seconds()
    say(f"published to sandbox at {at:%H:%M:%S}.{at.microsecond // 100000} ({late:.3f} s late) — "
        f"id {record['id'][:12]}…, idempotency key {record['key'][:8]}…")

    # 5. the result in the approval thread
    result = wait(lambda: _thread_reply(slack, approval["ts"]), 15, "the result in the thread")
    say(f"the approval thread says: {result['text']}")
    lines = [json.loads(line) for line in sandbox_log.read_text().splitlines() if line.strip()]
    say(f"done: {len(lines)} post on the sandbox network, {len(slack.calls)} Slack API calls")


def modal_state(*, project: str, account: str, body: str, date: str, time: str) -> dict:
    """view.state.values as Slack sends them when Ada presses Submit."""
    from bot.blocks import ids

    def opt(value: str) -> dict:
        return {"text": {"type": "plain_text", "text": value}, "value": value}

    return {
        ids.COMPOSE_PROJECT_BLOCK: {ids.COMPOSE_PROJECT: {"type": "static_select",
                                                          "selected_option": opt(project)}},
        ids.COMPOSE_ACCOUNTS_BLOCK: {ids.COMPOSE_ACCOUNTS: {"type": "multi_static_select",
                                                            "selected_options": [opt(account)]}},
        ids.COMPOSE_BODY_BLOCK: {ids.COMPOSE_BODY: {"type": "plain_text_input", "value": body}},
        ids.COMPOSE_MEDIA_URL_BLOCK: {ids.COMPOSE_MEDIA_URL: {"type": "url_text_input", "value": None}},
        ids.COMPOSE_MEDIA_FILE_BLOCK: {ids.COMPOSE_MEDIA_FILE: {"type": "file_input", "files": []}},
        ids.COMPOSE_ALT_TEXT_BLOCK: {ids.COMPOSE_ALT_TEXT: {"type": "plain_text_input", "value": None}},
        ids.COMPOSE_DATE_BLOCK: {ids.COMPOSE_DATE: {"type": "datepicker", "selected_date": date}},
        ids.COMPOSE_TIME_BLOCK: {ids.COMPOSE_TIME: {"type": "timepicker", "selected_time": time}},
        ids.COMPOSE_TAGS_BLOCK: {ids.COMPOSE_TAGS: {"type": "plain_text_input", "value": None}},
        ids.COMPOSE_INTENT_BLOCK: {ids.COMPOSE_INTENT: {"type": "radio_buttons",
                                                        "selected_option": opt(ids.INTENT_SUBMIT)}},
    }


def _compose_view(slack):
    from bot.blocks import ids
    views = [v for v in slack.views.values() if v.get("callback_id") == ids.COMPOSE_VIEW
             and any(b.get("block_id") == ids.COMPOSE_BODY_BLOCK for b in v.get("blocks", []))]
    return views[-1] if views else None


def _option(view: dict, block_id: str) -> str:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    element = block.get("element") or {}
    chosen = element.get("initial_option") or (element.get("initial_options") or [None])[0]
    if chosen is None:
        chosen = (element.get("options") or [])[0]
    return chosen["value"]


def _approval_message(slack):
    for (channel, ts), message in list(slack.messages.items()):
        if channel == CHANNEL and not message.get("thread_ts") and "approve" in json.dumps(message["blocks"]).lower():
            return dict(message, ts=ts)
    return None


def _published(log: Path):
    if not log.exists():
        return None
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return next((r for r in lines if r.get("op") == "publish"), None)


def _thread_reply(slack, thread_ts: str):
    for (channel, _), message in list(slack.messages.items()):
        if channel == CHANNEL and message.get("thread_ts") == thread_ts:
            return message
    return None


if __name__ == "__main__":
    main()
