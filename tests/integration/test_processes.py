"""The Procfile's own commands start on a fresh machine with nothing configured, and the web
answers /healthz — what `make run` promises a newcomer."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


@pytest.fixture
def fresh_env(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "QUEUE_URL", "SECRET_KEY", "TOKEN_KEYS", "SLACK_"))}
    env.update(HERALD_INSTANCE_PATH=str(tmp_path / "instance"), PORT=str(free_port()),
               PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}", WEB_CONCURRENCY="1")
    return env


def start(command: str, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_release_web_and_worker_start_with_nothing_configured(fresh_env, tmp_path):
    commands = procfile()
    assert set(commands) == {"release", "web", "worker"}
    release = subprocess.run(["bash", "-c", commands["release"]], cwd=ROOT, env=fresh_env,
                             capture_output=True, text=True, timeout=120)
    assert release.returncode == 0, release.stdout + release.stderr
    assert "0001_initial" in release.stdout
    # Web and worker start at the same moment, as honcho starts them.
    web = start(commands["web"], fresh_env, tmp_path / "web.log")
    worker = start(commands["worker"], fresh_env, tmp_path / "worker.log")
    try:
        url = f"http://127.0.0.1:{fresh_env['PORT']}/healthz"
        response = wait_for(lambda: httpx.get(url, timeout=2), 60, "web /healthz")
        assert response.status_code == 200 and response.json()["database"] == "ok"
        wait_for(lambda: "huey consumer started" in (tmp_path / "worker.log").read_text().lower()
                 or "consumer" in (tmp_path / "worker.log").read_text().lower(), 30, "worker start")
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
    finally:
        stop(web)
        stop(worker)
    instance = Path(fresh_env["HERALD_INSTANCE_PATH"])
    assert (instance / "secret_key").read_text().strip()
    assert (instance / "token_key").read_text().strip()
    logs = (tmp_path / "web.log").read_text() + (tmp_path / "worker.log").read_text()
    assert "Traceback" not in logs, logs
