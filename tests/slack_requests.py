"""Requests signed exactly as Slack signs them (v0 HMAC over timestamp and raw body), built
from the real payload vectors in ../shared/slack-payloads, sent to Herald's /slack/events."""
from __future__ import annotations

import copy
import json
import threading
import time
from urllib.parse import parse_qsl, quote, urlencode

from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack import load_vector

TEAM = {"id": "T111", "domain": "acme"}


def wait_for(check, timeout: float = 5.0, what: str = "condition"):
    """Poll `check` until it returns something truthy (listener threads finish after ack)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def idle(herald, timeout: float = 10.0) -> None:
    """Wait until every listener that started before now has finished: fill all of Bolt's
    worker threads with tasks that meet at a barrier — they can only all be running once the
    tasks queued before them are done. (A join, not a sleep.)"""
    executor = herald.extensions["bolt"].listener_runner.listener_executor
    workers = executor._max_workers
    barrier = threading.Barrier(workers + 1, timeout=timeout)
    for _ in range(workers):
        executor.submit(barrier.wait)
    barrier.wait()


class SlackRequests:
    def __init__(self, client, signing_secret: str, fake):
        self.client = client
        self.verifier = SignatureVerifier(signing_secret)
        self.fake = fake
        self._trigger = 0

    # -- wire -----------------------------------------------------------------------------
    def post(self, body: str, content_type: str, *, timestamp: int | None = None,
             signature: str | None = None, headers: dict | None = None):
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sent = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": signature or self.verifier.generate_signature(timestamp=ts, body=body)}
        sent.update(headers or {})
        return self.client.post("/slack/events", data=body.encode(), headers=sent)

    def trigger_id(self) -> str:
        self._trigger += 1
        return f"13345224609.738474920.{self._trigger:08x}"

    # -- payload kinds --------------------------------------------------------------------
    def command(self, text: str = "", *, user_id: str = "U111", team_id: str = "T111",
                channel_id: str = "C111", command: str = "/social", **kw):
        form = dict(parse_qsl(load_vector("slash_command.form.txt")))
        form.update(command=command, text=text, user_id=user_id, team_id=team_id,
                    channel_id=channel_id, trigger_id=self.trigger_id(),
                    response_url=self.fake.response_url(f"cmd-{self._trigger}"))
        form.update(kw)
        return self.post(urlencode(form), "application/x-www-form-urlencoded")

    def interactive(self, payload: dict, **kw):
        body = "payload=" + quote(json.dumps(payload))
        return self.post(body, "application/x-www-form-urlencoded", **kw)

    def block_action(self, action_id: str, value: str = "", *, user_id: str = "U111",
                     team_id: str = "T111", channel_id: str = "C111", message_ts: str | None = None,
                     view: dict | None = None, **kw):
        payload = json.loads(load_vector("block_actions.json"))
        payload["user"] = dict(payload.get("user", {}), id=user_id, team_id=team_id)
        payload["team"] = dict(TEAM, id=team_id)
        payload["trigger_id"] = self.trigger_id()
        payload["response_url"] = self.fake.response_url(f"act-{self._trigger}")
        action = dict(payload["actions"][0], action_id=action_id, value=value,
                      block_id=kw.pop("block_id", payload["actions"][0].get("block_id")))
        payload["actions"] = [action]
        if message_ts or channel_id:
            payload["container"] = {"type": "message", "message_ts": message_ts or "1.000001",
                                    "channel_id": channel_id, "is_ephemeral": False}
            payload["channel"] = {"id": channel_id, "name": "approvals"}
            payload["message"] = {"ts": message_ts or "1.000001", "text": "", "blocks": []}
        if view is not None:
            payload["view"] = view
            payload["container"] = {"type": "view", "view_id": view.get("id")}
        payload.update(kw)
        return self.interactive(payload)

    def view_submission(self, view: dict, values: dict, *, user_id: str = "U111",
                        team_id: str = "T111", **kw):
        """`view` as Herald opened it (from the fake); `values` in Slack's state shape:
        {block_id: {action_id: {...}}}."""
        payload = json.loads(load_vector("view_submission.json"))
        payload["user"] = dict(payload.get("user", {}), id=user_id, team_id=team_id)
        payload["team"] = dict(TEAM, id=team_id)
        submitted = copy.deepcopy(view)
        submitted["state"] = {"values": values}
        submitted.setdefault("id", "V0000001")
        submitted.setdefault("hash", "1.h")
        payload["view"] = submitted
        payload.update(kw)
        return self.interactive(payload)

    def event(self, event: dict, *, team_id: str = "T111", event_id: str = "Ev111", **headers):
        envelope = json.loads(load_vector("app_home_opened_home_tab.event.json"))
        envelope.update(team_id=team_id, event_id=event_id, event=event, event_time=int(time.time()))
        envelope["authorizations"] = [{"enterprise_id": None, "team_id": team_id, "user_id": "UB0T",
                                       "is_bot": True, "is_enterprise_install": False}]
        return self.post(json.dumps(envelope), "application/json", headers=headers or None)
