"""Multi-workspace installs: Bolt's InstallationStore and OAuthStateStore on Herald's database,
and the OAuthSettings that wire them into Bolt (bot/app.py uses `oauth_settings`).

The store keeps slack-sdk's SQLAlchemy semantics (tables `slack_installations`/`slack_bots`,
same columns): `save()` upserts by `installed_at`, so a token-rotation re-save updates the row it
came from; `find_*` return the newest row; org-wide installs are stored with `team_id = NULL`;
`find_installation(user_id=...)` back-fills the newest bot token (bolt-python#664). Every token
column is an EncryptedTextField: a raw SELECT shows ciphertext, and the values come back as
`Secret`, revealed only when handed to slack-sdk.

A *new* installation with a bot token (a fresh `installed_at`) is also the moment Herald learns
about the workspace: in the same transaction the workspace is created (or restored) and the
installer becomes its owner, and the audit log says so. Token-rotation re-saves change tokens only.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import time
from datetime import timedelta
from logging import Logger
from pathlib import Path
from typing import Optional

from jinja2 import Environment, FileSystemLoader, select_autoescape
from peewee import PeeweeException
from slack_bolt import BoltResponse
from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.error import BoltError
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.state_store import OAuthStateStore

from core import audit, workspaces
from core.settings import ROOT, Settings
from db import database, write_transaction
from db.fields import Secret, utcnow
from db.models import SlackBot, SlackInstallation, SlackOAuthState, Workspace

log = logging.getLogger(__name__)

MANIFEST = ROOT / "manifest.yml"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_EXPIRATION_SECONDS = 600          # Bolt's default: ten minutes from "Add to Slack" to Allow
INSTALLATION_CACHE_SECONDS = 10         # per process; see PeeweeInstallationStore

_INSTALLATION_COLUMNS = (
    "app_id", "enterprise_id", "enterprise_name", "enterprise_url", "team_id", "team_name",
    "bot_token", "bot_id", "bot_user_id", "bot_scopes", "bot_refresh_token", "bot_token_expires_at",
    "user_id", "user_token", "user_scopes", "user_refresh_token", "user_token_expires_at",
    "incoming_webhook_url", "incoming_webhook_channel", "incoming_webhook_channel_id",
    "incoming_webhook_configuration_url", "is_enterprise_install", "token_type", "installed_at",
)
_BOT_COLUMNS = (
    "app_id", "enterprise_id", "enterprise_name", "team_id", "team_name", "bot_token", "bot_id",
    "bot_user_id", "bot_scopes", "bot_refresh_token", "bot_token_expires_at",
    "is_enterprise_install", "installed_at",
)


@contextlib.contextmanager
def _connection():
    """For the rare writes: use the thread's open connection, or open one and hand it back
    afterwards. The per-request reads (find_*) use the thread's connection and leave closing it
    to whoever owns the thread: Flask's teardown for web requests, bot.context.connected for
    listeners. (Opening and closing a SQLite connection costs more than the lookup itself.)"""
    opened = database.is_closed()
    if opened:
        database.connect()
    try:
        yield
    finally:
        if opened:
            database.close()


def _reveal(value):
    return value.reveal() if isinstance(value, Secret) else value


class PeeweeInstallationStore(InstallationStore):
    """`cache_seconds` > 0 keeps found installations in this process for that long, so the
    per-request authorization needs no database round trip. Every save or delete through the
    store empties the cache at once; other processes see a change within `cache_seconds`
    (Slack sends nothing for an uninstalled app, and a reinstall keeps its bot token).
    Installations with refresh tokens are never cached: rotation needs the newest one."""

    def __init__(self, client_id: str, logger: Logger = log, *, cache_seconds: float = 0,
                 clock=time.monotonic):
        self.client_id = client_id
        self._logger = logger
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[tuple, tuple[float, Installation]] = {}

    @property
    def logger(self) -> Logger:
        return self._logger

    # -- writes ---------------------------------------------------------------------------
    def save(self, installation: Installation) -> None:
        self._cache.clear()
        values = installation.to_dict()
        row = {name: values.get(name) for name in _INSTALLATION_COLUMNS}
        row.update(client_id=self.client_id, custom_values=dict(installation.custom_values or {}))
        try:
            with _connection(), write_transaction():
                existing = (SlackInstallation.select(SlackInstallation.id)
                            .where(self._same(SlackInstallation, installation.enterprise_id,
                                              installation.team_id)
                                   & (SlackInstallation.installed_at == row["installed_at"]))
                            .first())
                workspace = _workspace_for(installation.team_id)
                row["workspace"] = workspace
                if existing is None:
                    SlackInstallation.create(**row)
                else:
                    SlackInstallation.update(row).where(SlackInstallation.id == existing.id).execute()
                self.save_bot(installation.to_bot())
                if existing is None and installation.bot_token and _has_own_team(installation):
                    _record_install(installation, self.client_id)
        except PeeweeException as exc:
            self.logger.exception("could not save the Slack installation of team %s", installation.team_id)
            raise BoltError("Herald couldn't save the installation") from exc

    def save_bot(self, bot: Bot) -> None:
        self._cache.clear()
        values = bot.to_dict()
        row = {name: values.get(name) for name in _BOT_COLUMNS}
        row["client_id"] = self.client_id
        try:
            with _connection(), write_transaction():
                existing = (SlackBot.select(SlackBot.id)
                            .where(self._same(SlackBot, bot.enterprise_id, bot.team_id)
                                   & (SlackBot.installed_at == row["installed_at"]))
                            .first())
                row["workspace"] = _workspace_for(bot.team_id)
                if existing is None:
                    SlackBot.create(**row)
                else:
                    SlackBot.update(row).where(SlackBot.id == existing.id).execute()
        except PeeweeException as exc:
            self.logger.exception("could not save the Slack bot of team %s", bot.team_id)
            raise BoltError("Herald couldn't save the bot token") from exc

    # -- reads ----------------------------------------------------------------------------
    def find_bot(self, *, enterprise_id: Optional[str], team_id: Optional[str],
                 is_enterprise_install: Optional[bool] = False) -> Optional[Bot]:
        if is_enterprise_install or team_id is None:
            team_id = None
        row = (SlackBot.select()
               .where(self._same(SlackBot, enterprise_id, team_id)
                      & SlackBot.bot_token.is_null(False))   # the newest one that has a token
               .order_by(SlackBot.installed_at.desc())
               .first())
        return None if row is None else _bot(row)

    def find_installation(self, *, enterprise_id: Optional[str], team_id: Optional[str],
                          user_id: Optional[str] = None,
                          is_enterprise_install: Optional[bool] = False) -> Optional[Installation]:
        if is_enterprise_install or team_id is None:
            team_id = None
        key = (enterprise_id, team_id, user_id, bool(is_enterprise_install))
        if self.cache_seconds > 0:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > self._clock():
                return cached[1] and _copy(cached[1])     # Bolt edits what it gets; keep ours intact
        installation = self._find_installation(enterprise_id, team_id, user_id, is_enterprise_install)
        if self.cache_seconds > 0 and _cacheable(installation, user_id):
            self._cache[key] = (self._clock() + self.cache_seconds, installation and _copy(installation))
        return installation

    def _find_installation(self, enterprise_id, team_id, user_id, is_enterprise_install):
        where = self._same(SlackInstallation, enterprise_id, team_id)
        if user_id is not None:
            where &= SlackInstallation.user_id == user_id
        row = SlackInstallation.select().where(where).order_by(SlackInstallation.installed_at.desc()).first()
        if row is None:
            return None
        installation = _installation(row)
        if user_id is not None or installation.bot_token is None:
            # The newest bot token wins, whoever's installation this is (bolt-python#664).
            latest = self.find_bot(enterprise_id=enterprise_id, team_id=team_id,
                                   is_enterprise_install=is_enterprise_install)
            if latest is not None and installation.bot_token != latest.bot_token:
                installation.bot_id = latest.bot_id
                installation.bot_user_id = latest.bot_user_id
                installation.bot_token = latest.bot_token
                installation.bot_scopes = latest.bot_scopes
                installation.bot_refresh_token = latest.bot_refresh_token
                installation.bot_token_expires_at = latest.bot_token_expires_at
        return installation

    # -- deletes --------------------------------------------------------------------------
    def delete_bot(self, *, enterprise_id: Optional[str], team_id: Optional[str]) -> None:
        self._cache.clear()
        with _connection():
            SlackBot.delete().where(self._same(SlackBot, enterprise_id, team_id)).execute()

    def delete_installation(self, *, enterprise_id: Optional[str], team_id: Optional[str],
                            user_id: Optional[str] = None) -> None:
        self._cache.clear()
        where = self._same(SlackInstallation, enterprise_id, team_id)
        if user_id is not None:
            where &= SlackInstallation.user_id == user_id
        with _connection():
            SlackInstallation.delete().where(where).execute()

    def delete_all(self, *, enterprise_id: Optional[str], team_id: Optional[str]) -> None:
        with _connection(), database.atomic():
            self.delete_bot(enterprise_id=enterprise_id, team_id=team_id)
            self.delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    def _same(self, model, enterprise_id, team_id):
        # `== None` compiles to IS NULL, as in the SQLAlchemy store.
        return ((model.client_id == self.client_id) & (model.enterprise_id == enterprise_id)
                & (model.team_id == team_id))


def _cacheable(installation: Installation | None, user_id: str | None) -> bool:
    if installation is None:
        # "No such user installation" is asked on every request from anyone but the installer;
        # "no such team" is not cached, so a fresh install works at once in every process.
        return user_id is not None
    return not (installation.bot_refresh_token or installation.user_refresh_token)


def _copy(installation: Installation) -> Installation:
    return Installation(**installation.to_dict_for_copying())


def _installation(row: SlackInstallation) -> Installation:
    return Installation(
        app_id=row.app_id, enterprise_id=row.enterprise_id, enterprise_name=row.enterprise_name,
        enterprise_url=row.enterprise_url, team_id=row.team_id, team_name=row.team_name,
        bot_token=_reveal(row.bot_token), bot_id=row.bot_id, bot_user_id=row.bot_user_id,
        bot_scopes=row.bot_scopes or "", bot_refresh_token=_reveal(row.bot_refresh_token),
        bot_token_expires_at=row.bot_token_expires_at,
        user_id=row.user_id, user_token=_reveal(row.user_token), user_scopes=row.user_scopes or "",
        user_refresh_token=_reveal(row.user_refresh_token),
        user_token_expires_at=row.user_token_expires_at,
        incoming_webhook_url=_reveal(row.incoming_webhook_url),
        incoming_webhook_channel=row.incoming_webhook_channel,
        incoming_webhook_channel_id=row.incoming_webhook_channel_id,
        incoming_webhook_configuration_url=row.incoming_webhook_configuration_url,
        is_enterprise_install=row.is_enterprise_install, token_type=row.token_type,
        installed_at=row.installed_at, custom_values=dict(row.custom_values or {}),
    )


def _bot(row: SlackBot) -> Bot:
    return Bot(
        app_id=row.app_id, enterprise_id=row.enterprise_id, enterprise_name=row.enterprise_name,
        team_id=row.team_id, team_name=row.team_name, bot_token=_reveal(row.bot_token),
        bot_id=row.bot_id, bot_user_id=row.bot_user_id, bot_scopes=row.bot_scopes or "",
        bot_refresh_token=_reveal(row.bot_refresh_token),
        bot_token_expires_at=row.bot_token_expires_at,
        is_enterprise_install=row.is_enterprise_install, installed_at=row.installed_at,
    )


# --------------------------------------------------------------------------------------
# Installing and uninstalling: what Herald itself remembers

def _has_own_team(installation: Installation) -> bool:
    # An org-wide install has no team of its own: its workspaces are created when they are used.
    return bool(installation.team_id) and not installation.is_enterprise_install


def _workspace_for(team_id: str | None) -> Workspace | None:
    if not team_id:
        return None
    return Workspace.with_deleted().where(Workspace.team_id == team_id).first()


def _record_install(installation: Installation, client_id: str) -> None:
    """Inside save()'s transaction: the workspace exists (restored if it was uninstalled), the
    installer is its owner, the rows point at it, and the audit log has the install."""
    workspace = workspaces.ensure_workspace(installation.team_id, installation.team_name or "",
                                            installation.enterprise_id, rename=True)
    installer = workspaces.ensure_user(workspace, installation.user_id, role="owner")
    workspaces.make_owner(workspace, installer, reason="installed Herald")
    same_team = ((SlackInstallation.client_id == client_id)
                 & (SlackInstallation.team_id == installation.team_id))
    SlackInstallation.update(workspace=workspace).where(same_team).execute()
    SlackBot.update(workspace=workspace).where(
        (SlackBot.client_id == client_id) & (SlackBot.team_id == installation.team_id)).execute()
    audit.record(installer, "slack.installed", workspace, {
        "team_id": installation.team_id, "enterprise_id": installation.enterprise_id,
        "app_id": installation.app_id, "scopes": list(installation.bot_scopes or []),
    })


def forget_installation(store: InstallationStore | None, *, enterprise_id: str | None,
                        team_id: str | None, is_enterprise_install: bool = False) -> None:
    """app_uninstalled: every token of the team goes, the workspace is soft-deleted (its
    history stays; installing again restores it)."""
    with _connection(), write_transaction():
        if store is not None:
            store.delete_all(enterprise_id=enterprise_id, team_id=None if is_enterprise_install else team_id)
        if is_enterprise_install or not team_id:
            gone = list(Workspace.select().where(Workspace.enterprise_id == enterprise_id)) if enterprise_id else []
        else:
            gone = list(Workspace.select().where(Workspace.team_id == team_id))
        for workspace in gone:
            workspace.soft_delete()
            audit.record("slack", "slack.uninstalled", workspace,
                         {"team_id": workspace.team_id, "enterprise_id": enterprise_id})
        if not gone:
            audit.record("slack", "slack.uninstalled", ("workspaces", team_id or enterprise_id or ""),
                         {"team_id": team_id, "enterprise_id": enterprise_id})


def forget_tokens(store: InstallationStore | None, *, enterprise_id: str | None, team_id: str | None,
                  user_ids: list[str], bot_revoked: bool, is_enterprise_install: bool = False) -> None:
    """tokens_revoked: revoked user tokens go with their installations; a revoked bot token
    leaves Herald nothing to act with in that team, so all of the team's rows go."""
    team_id = None if is_enterprise_install else team_id
    with _connection(), write_transaction():
        if store is not None:
            if bot_revoked:
                store.delete_all(enterprise_id=enterprise_id, team_id=team_id)
            else:
                for user_id in user_ids:
                    store.delete_installation(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)
        workspace = _workspace_for(team_id)
        audit.record("slack", "slack.tokens_revoked",
                     workspace if workspace is not None else ("workspaces", team_id or enterprise_id or ""),
                     {"team_id": team_id, "enterprise_id": enterprise_id, "users": list(user_ids),
                      "bot": bot_revoked}, workspace=workspace)


# --------------------------------------------------------------------------------------
# OAuth state

class PeeweeOAuthStateStore(OAuthStateStore):
    """Random states, single use, valid for `expiration_seconds`."""

    def __init__(self, expiration_seconds: int = STATE_EXPIRATION_SECONDS, logger: Logger = log):
        self.expiration_seconds = expiration_seconds
        self._logger = logger

    @property
    def logger(self) -> Logger:
        return self._logger

    def issue(self, *args, **kwargs) -> str:
        state = secrets.token_urlsafe(32)
        now = utcnow()
        with _connection(), database.atomic():
            SlackOAuthState.delete().where(SlackOAuthState.expire_at <= now).execute()  # keep it small
            SlackOAuthState.create(state=state, expire_at=now + timedelta(seconds=self.expiration_seconds))
        return state

    def consume(self, state: str) -> bool:
        if not state:
            return False
        with _connection():
            deleted = (SlackOAuthState.delete()
                       .where((SlackOAuthState.state == state) & (SlackOAuthState.expire_at > utcnow()))
                       .execute())
        return deleted == 1


# --------------------------------------------------------------------------------------
# OAuthSettings

@functools.lru_cache(maxsize=None)
def manifest_bot_scopes(path: Path = MANIFEST) -> tuple[str, ...]:
    """The bot scopes Herald asks for are the manifest's, so the two can't drift."""
    import yaml
    manifest = yaml.safe_load(path.read_text())
    return tuple(manifest["oauth_config"]["scopes"]["bot"])


def oauth_settings(settings: Settings) -> OAuthSettings:
    from bot.app import web_client

    store = PeeweeInstallationStore(settings.slack_client_id, cache_seconds=INSTALLATION_CACHE_SECONDS)
    oauth = OAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(manifest_bot_scopes()),
        user_scopes=[],
        redirect_uri=settings.public_url + REDIRECT_PATH,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        installation_store=store,
        state_store=PeeweeOAuthStateStore(STATE_EXPIRATION_SECONDS),
        state_expiration_seconds=STATE_EXPIRATION_SECONDS,
        callback_options=CallbackOptions(success=functools.partial(_installed_page, settings),
                                         failure=_failed_page),
        logger=log,
    )
    # The default authorize rotates tokens with a WebClient of its own aimed at slack.com;
    # this one honours SLACK_API_URL. auth.test answers are cached per token and found
    # installations for 10 s per process, so a busy team costs about one query per 10 s.
    oauth.authorize = InstallationStoreAuthorize(
        logger=log, installation_store=store,
        client_id=settings.slack_client_id, client_secret=settings.slack_client_secret,
        token_rotation_expiration_minutes=oauth.token_rotation_expiration_minutes,
        cache_enabled=True, client=web_client(settings),
    )
    return oauth


# --------------------------------------------------------------------------------------
# The pages people see at the end of an install

_templates = Environment(loader=FileSystemLoader(str(ROOT / "web" / "templates")),
                         autoescape=select_autoescape(["html"]))

_FAILURES = {
    "access_denied": ("Installation cancelled",
                      "Herald was not installed. You can install it any time."),
    "invalid_browser": ("Please start again",
                        "This install link was opened in a different browser, or cookies are "
                        "blocked. Start again from the same browser."),
    "invalid_state": ("This link has expired",
                      "Install links work once and for ten minutes. Start again to get a new one."),
    "storage_error": ("Something went wrong on our side",
                      "Herald couldn't finish the installation. Nothing was changed in Slack; "
                      "please try again in a minute."),
}
_DEFAULT_FAILURE = ("Slack didn't confirm the installation",
                    "The installation wasn't completed. Please start again.")


def _page(template: str, status: int, state_utils, **context) -> BoltResponse:
    return BoltResponse(status=status, body=_templates.get_template(template).render(**context),
                        headers={"Content-Type": "text/html; charset=utf-8",
                                 "Set-Cookie": state_utils.build_set_cookie_for_deletion()})


def _installed_page(settings: Settings, args: SuccessArgs) -> BoltResponse:
    installation = args.installation
    if _has_own_team(installation) and installation.bot_token:
        _learn_installer(settings, installation)
    open_url = f"https://slack.com/app_redirect?app={installation.app_id}"
    if installation.team_id:
        open_url += f"&team={installation.team_id}"
    return _page("slack/installed.html", 200, args.settings.state_utils,
                 team_name=installation.team_name or installation.enterprise_name or "your workspace",
                 open_url=open_url, owner=_has_own_team(installation))


def _learn_installer(settings: Settings, installation: Installation) -> None:
    """The owner's name and time zone, so pages and the audit log show a person. Nice to have:
    a failure here never fails the install."""
    from bot.app import web_client
    try:
        user = web_client(settings, installation.bot_token).users_info(user=installation.user_id)["user"]
        with _connection():
            workspace = workspaces.get_workspace(installation.team_id)
            workspaces.ensure_user(workspace, installation.user_id, tz=user.get("tz"),
                                   real_name=user.get("real_name") or user.get("name") or "")
    except Exception as exc:  # noqa: BLE001 - logged, and the install already succeeded
        log.warning("couldn't read the installer's Slack profile (%s)", type(exc).__name__)


def _failed_page(args: FailureArgs) -> BoltResponse:
    title, message = _FAILURES.get(args.reason, _DEFAULT_FAILURE)
    log.info("Slack install refused: %s", args.reason)
    return _page("slack/install_failed.html", args.suggested_status_code, args.settings.state_utils,
                 title=title, message=message, install_url=args.settings.install_path)
