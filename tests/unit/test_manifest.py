"""The Slack app manifests and the code agree.

- Every command, shortcut and event a listener is registered for is declared in manifest.yml,
  and every one the manifest declares reaches a listener of the built app.
- The bot scopes cover every Web API method the code calls (METHOD_SCOPES below), and no scope
  is asked for that nothing uses. Herald asks for exactly the manifest's scopes when installing.
- manifest.socket.yml is the same app with Socket Mode instead of request URLs.
- `python -m bot` (Socket Mode) explains what is missing instead of starting half-configured.
"""
from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from slack_bolt.listener_matcher.builtins import BuiltinListenerMatcher
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient

from bot.blocks import ids
from core.settings import ROOT, Settings

EVENTS_URL = "${PUBLIC_URL}/slack/events"
REDIRECT_URL = "${PUBLIC_URL}/slack/oauth_redirect"

# Web API method -> the bot scopes it needs (https://api.slack.com/methods/<method>).
# A method the code starts calling must be added here, with its scope added to the manifests.
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "oauth.v2.access": set(),
    "apps.connections.open": set(),       # app-level token, Socket Mode
    "views.open": set(),
    "views.update": set(),
    "views.push": set(),
    "views.publish": set(),
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.getPermalink": set(),
    "conversations.open": {"im:write"},
    "conversations.info": {"channels:read"},
    "users.info": {"users:read"},
    "users.lookupByEmail": {"users:read.email"},
    "files.info": {"files:read"},
    "reactions.add": {"reactions:write"},
    "team.info": {"team:read"},
}
CODE_DIRS = ("bot", "core", "tasks", "web", "platforms")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


@pytest.fixture(scope="module")
def socket_manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.socket.yml").read_text())


@pytest.fixture(scope="module")
def app():
    from bot.app import build_app
    settings = Settings(slack_bot_token="xoxb-manifest-test", slack_signing_secret="s",
                        slack_api_url="http://127.0.0.1:9/")
    return build_app(settings)


def registered(app) -> dict[str, set[str]]:
    """{kind: ids} for every listener of the built App, read from Bolt's builtin matchers
    (kinds: command, shortcut, global_shortcut, message_shortcut, event, action,
    view_submission, view_closed, view, options, ...)."""
    found: dict[str, set[str]] = {}
    for listener in app._listeners:
        for matcher in listener.matchers:
            if not isinstance(matcher, BuiltinListenerMatcher):
                continue
            kind = matcher.func.__qualname__.split(".<locals>")[0]
            for cell in matcher.func.__closure__ or ():
                value = cell.cell_contents
                if isinstance(value, dict):      # app.action({"action_id": ..., "block_id": ...})
                    value = value.get("action_id") or value.get("callback_id") or value.get("type")
                if isinstance(value, re.Pattern):
                    value = value.pattern
                if isinstance(value, str):
                    found.setdefault(kind, set()).add(value)
    return found


def handled(app, body: dict) -> bool:
    """Whether some listener of `app` matches this request body."""
    request = BoltRequest(body=body, mode="socket_mode")
    response = BoltResponse(status=200)
    return any(listener.matches(req=request, resp=response) for listener in app._listeners)


def manifest_commands(manifest) -> set[str]:
    return {c["command"] for c in manifest["features"].get("slash_commands", [])}


def manifest_shortcuts(manifest) -> dict[str, dict]:
    return {s["callback_id"]: s for s in manifest["features"].get("shortcuts", [])}


def manifest_events(manifest) -> set[str]:
    return set(manifest["settings"]["event_subscriptions"]["bot_events"])


# -- listeners ↔ manifest ---------------------------------------------------------------------

def test_registered_commands_shortcuts_and_events_are_declared(app, manifest):
    found = registered(app)
    assert found.get("command", set()) <= manifest_commands(manifest)
    shortcuts = manifest_shortcuts(manifest)
    for kind in ("shortcut", "global_shortcut", "message_shortcut"):
        for callback_id in found.get(kind, set()):
            assert callback_id in shortcuts, f"shortcut {callback_id!r} is not in manifest.yml"
            if kind != "shortcut":
                assert shortcuts[callback_id]["type"] == kind.split("_")[0]
    assert found.get("event", set()) <= manifest_events(manifest)


def test_every_declared_command_shortcut_and_event_reaches_a_listener(app, manifest):
    for command in manifest_commands(manifest):
        assert handled(app, {"command": command, "text": "", "team_id": "T1", "user_id": "U1"}), command
    for callback_id, shortcut in manifest_shortcuts(manifest).items():
        kind = "shortcut" if shortcut["type"] == "global" else "message_action"
        assert handled(app, {"type": kind, "callback_id": callback_id, "team": {"id": "T1"},
                             "user": {"id": "U1"}}), callback_id
    for event in manifest_events(manifest):
        assert handled(app, {"type": "event_callback", "team_id": "T1",
                             "event": {"type": event}}), event


def test_the_command_and_shortcuts_are_the_ones_in_the_ids_module(manifest):
    assert manifest_commands(manifest) == {ids.COMMAND}
    shortcuts = manifest_shortcuts(manifest)
    assert (shortcuts[ids.SHORTCUT_NEW_POST]["type"], shortcuts[ids.SHORTCUT_NEW_POST]["name"]) == \
        ("global", "New social post")
    assert (shortcuts[ids.SHORTCUT_DRAFT_FROM_MESSAGE]["type"],
            shortcuts[ids.SHORTCUT_DRAFT_FROM_MESSAGE]["name"]) == ("message", "Draft a post from this message")
    for shortcut in shortcuts.values():
        assert len(shortcut["description"]) <= 150


def test_action_and_view_ids_of_listeners_come_from_the_ids_module(app):
    known = {value for name, value in vars(ids).items() if name.isupper() and isinstance(value, str)}
    found = registered(app)
    for kind in ("action", "block_action", "view", "view_submission", "view_closed", "options",
                 "block_suggestion"):
        unknown = found.get(kind, set()) - known
        assert not unknown, f"{kind} listeners for ids not declared in bot/blocks/ids.py: {unknown}"


def test_the_features_listeners_need_are_switched_on(app, manifest):
    found = registered(app)
    settings = manifest["settings"]
    if found.keys() & {"action", "block_action", "view", "view_submission", "shortcut", "global_shortcut",
                       "message_shortcut"}:
        assert settings["interactivity"]["is_enabled"] is True
    if found.keys() & {"options", "block_suggestion"}:
        # external_select options are only requested when an Options Load URL is set.
        assert settings["interactivity"]["message_menu_options_url"] == EVENTS_URL
    if "app_home_opened" in found.get("event", set()):
        assert manifest["features"]["app_home"]["home_tab_enabled"] is True


# -- scopes ----------------------------------------------------------------------------------------

def web_api_methods_called() -> dict[str, set[str]]:
    """Web API methods the code calls through a WebClient, e.g. client.chat_postMessage(...)."""
    called: dict[str, set[str]] = {}
    pattern = re.compile(r"\.([a-z]+(?:_[A-Za-z0-9]+)+)\(")
    literal = re.compile(r"api_call\(\s*[\"']([a-z]+(?:\.[A-Za-z0-9]+)+)[\"']")
    for folder in CODE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text()
            names = [n for n in pattern.findall(text) if n in WebClient.__dict__]
            methods = [n.replace("_", ".") for n in names] + literal.findall(text)
            for method in methods:
                called.setdefault(method, set()).add(str(path.relative_to(ROOT)))
    return called


def test_the_scan_finds_web_api_calls():
    called = web_api_methods_called()
    assert "users.info" in called           # bot/context.py looks people up
    assert "chat.postMessage" in called


def test_bot_scopes_cover_every_web_api_method_the_code_calls(manifest):
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    for method, where in sorted(web_api_methods_called().items()):
        assert method in METHOD_SCOPES, (f"{method} (called in {sorted(where)}) is missing from "
                                         "METHOD_SCOPES: add it with the scope it needs")
        missing = METHOD_SCOPES[method] - scopes
        assert not missing, f"{method} (called in {sorted(where)}) needs {missing} in manifest.yml"


def test_no_bot_scope_is_asked_for_that_nothing_uses(manifest):
    called = web_api_methods_called()
    needed = set().union(*(METHOD_SCOPES.get(m, set()) for m in called))
    if manifest["features"].get("slash_commands") or manifest["features"].get("shortcuts"):
        needed.add("commands")
    if "chat.postMessage" in called:
        needed.add("chat:write.public")      # approval channels Herald was not invited to
    unused = set(manifest["oauth_config"]["scopes"]["bot"]) - needed
    assert not unused, f"manifest.yml asks for scopes no code uses: {unused}"


def test_installs_ask_for_exactly_the_manifest_scopes(manifest):
    from bot.store import oauth_settings
    settings = Settings(slack_client_id="1.2", slack_client_secret="s", public_url="https://h.example",
                        slack_api_url="http://127.0.0.1:9/api/")
    oauth = oauth_settings(settings)
    assert list(oauth.scopes) == manifest["oauth_config"]["scopes"]["bot"]
    assert oauth.user_scopes == []
    assert oauth.redirect_uri == "https://h.example/slack/oauth_redirect"
    assert (oauth.install_path, oauth.redirect_uri_path) == ("/slack/install", "/slack/oauth_redirect")
    # Token rotation goes through SLACK_API_URL, not slack.com (the default rotator's own client).
    assert oauth.authorize.token_rotator.client.base_url == "http://127.0.0.1:9/api/"


# -- the two manifests -------------------------------------------------------------------------

def urls(node) -> list[str]:
    if isinstance(node, dict):
        return [u for key, value in node.items() for u in
                ([value] if key.endswith("url") and isinstance(value, str) else urls(value))]
    if isinstance(node, list):
        return [u for item in node for u in urls(item)]
    return []


def test_every_http_url_is_the_one_bolt_endpoint(manifest):
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert manifest["settings"]["event_subscriptions"]["request_url"] == EVENTS_URL
    assert manifest["settings"]["interactivity"]["request_url"] == EVENTS_URL
    assert manifest["oauth_config"]["redirect_urls"] == [REDIRECT_URL]
    assert set(urls(manifest)) == {EVENTS_URL}
    assert all(c["url"] == EVENTS_URL for c in manifest["features"]["slash_commands"])


def test_the_socket_manifest_is_the_same_app_without_urls(manifest, socket_manifest):
    assert socket_manifest["settings"]["socket_mode_enabled"] is True
    assert urls(socket_manifest) == [] and "redirect_urls" not in socket_manifest["oauth_config"]
    expected = copy.deepcopy(manifest)
    expected["settings"]["socket_mode_enabled"] = True
    expected["settings"]["event_subscriptions"].pop("request_url")
    expected["settings"]["interactivity"] = {"is_enabled": True}
    expected["oauth_config"].pop("redirect_urls")
    for command in expected["features"]["slash_commands"]:
        command.pop("url")
    expected["display_information"]["name"] = socket_manifest["display_information"]["name"]
    assert socket_manifest == expected


# -- python -m bot -----------------------------------------------------------------------------

def run_bot(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HERALD_", "DATABASE_"))}
    clean.update(HERALD_INSTANCE_PATH=str(tmp_path), **env)
    return subprocess.run([sys.executable, "-m", "bot"], cwd=ROOT, env=clean, capture_output=True,
                          text=True, timeout=60)


def test_socket_mode_without_an_app_token_says_what_to_set(tmp_path):
    result = run_bot(tmp_path)
    assert result.returncode == 2
    assert "SLACK_APP_TOKEN" in result.stderr and "xapp-" in result.stderr
    assert "manifest.socket.yml" in result.stderr
    assert "Traceback" not in result.stderr


def test_socket_mode_refuses_a_bot_token_in_place_of_the_app_token(tmp_path):
    result = run_bot(tmp_path, SLACK_APP_TOKEN="xoxb-not-an-app-token")
    assert result.returncode == 2
    assert "app-level token" in result.stderr
    assert "xoxb-not-an-app-token" not in result.stderr + result.stdout


def test_socket_mode_needs_a_workspace_to_answer(tmp_path):
    result = run_bot(tmp_path, SLACK_APP_TOKEN="xapp-1-A111-1-abc")
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr and "SLACK_CLIENT_ID" in result.stderr
