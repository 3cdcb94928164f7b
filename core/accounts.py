"""Connecting social accounts (DESIGN §2 Accounts, §7): OAuth with state + PKCE, Bluesky app
passwords, Mastodon per-instance apps; disconnecting; token health for display.

No Flask here. The web keeps one random *session binding* per browser session
(`new_session_binding()`) and passes it in: a pending connect only finishes in the browser
session that started it, for the same user, on the same network, once, within 10 minutes.

What is stored for a pending connect (`connect_states`): SHA-256 of the state, SHA-256 of the
session binding, the PKCE verifier (encrypted), the exact redirect URI the authorize URL
carried, and (Mastodon) the instance. Tokens go to `oauth_tokens` encrypted; they are never
logged, audited, rendered or returned by anything here except `credentials_for`, which the
engine uses to call a network.

Mastodon account ids are only unique per instance, so a Mastodon SocialAccount's
`platform_user_id` is `<id>@<instance host>`; the raw id is `extra["account_id"]` and the
instance `extra["instance_url"]`. `credentials_for` turns a row back into the Credentials an
adapter expects (raw id, plus the instance's app registration for revoke).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import NamedTuple
from urllib.parse import urlparse

from peewee import IntegrityError

from core import audit, networks
from core.errors import HeraldError, NotFound, ValidationError
from core.ids import parse_id
from core.permissions import can, require
from core.settings import Settings
from db import database, for_update, write_transaction
from db.fields import Secret, utcnow
from db.models import OAuthToken, Project, SocialAccount, User
from db.models.connect import ConnectState, MastodonApp
from platforms.base import (Adapter, Credentials, Identity, PlatformError, Pkce, TokenSet,
                            Transient)
from platforms.registry import NETWORKS, adapter_class

log = logging.getLogger(__name__)

PENDING_TTL = timedelta(minutes=10)
EXPIRING_SOON = timedelta(days=7)
SELF_RENEWING = frozenset({"instagram", "threads"})
_SECRET_WORDS = ("token", "secret", "password", "jwt", "code_verifier")
# What each network sends back when the person pressed "Cancel"/"Deny".
_CANCELLED = {"access_denied", "user_cancelled_authorize", "user_cancelled_login", "user_denied"}


class ConnectError(HeraldError):
    """A connect that can't finish. `kind` lets the web pick its page:
    cancelled | state | replayed | expired | platform | mismatch."""

    def __init__(self, message: str, kind: str = "platform"):
        super().__init__(message)
        self.kind = kind


class Started(NamedTuple):
    url: str
    pending_id: object


def new_session_binding() -> str:
    """A random value the web keeps in the browser session and passes to start/finish."""
    return secrets.token_urlsafe(32)


def label(platform: str) -> str:
    try:
        return adapter_class(platform).label
    except KeyError:
        return platform


def connect_kind(platform: str) -> str:
    """'oauth', 'app_password' or 'instance_oauth'."""
    return adapter_class(platform).capabilities.connect


# --------------------------------------------------------------------------------------
# Reading (scoped to the user's workspace)


def get_account(user: User, account_id) -> SocialAccount:
    """The account with this id in the user's workspace; NotFound otherwise (the same for an
    id from another workspace as for one that doesn't exist)."""
    uid = parse_id(account_id)
    account = None
    if uid is not None:
        account = (SocialAccount.select()
                   .where((SocialAccount.id == uid)
                          & (SocialAccount.workspace == user.workspace_id))
                   .first())
    if account is None:
        raise NotFound("That account isn't connected in this workspace.")
    return account


@dataclass(frozen=True)
class TokenHealth:
    state: str                       # ok | expiring | needs_reconnect | disconnected
    summary: str                     # "Renews automatically", "Expires in 3 days", …
    needs_reconnect: bool
    expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    last_refreshed_at: datetime | None = None
    last_refresh: str = ""           # "2 hours ago"


def token_health(account: SocialAccount, token: OAuthToken | None = None,
                 now: datetime | None = None) -> TokenHealth:
    """What a person needs to know about an account's connection — never the token."""
    now = now or utcnow()
    if token is None:
        token = OAuthToken.get_or_none(OAuthToken.account == account.id)
    if account.status == "disconnected":
        return TokenHealth("disconnected", "Disconnected", False)
    if account.status in ("needs_reauth", "error") or token is None:
        detail = account.status_detail or "Herald can no longer use this connection."
        return TokenHealth("needs_reconnect", f"Needs reconnecting: {detail}", True,
                           last_refreshed_at=token.last_refreshed_at if token else None,
                           last_refresh=ago(token.last_refreshed_at, now) if token else "")
    try:
        refreshes = adapter_class(account.platform).capabilities.refresh
    except KeyError:
        refreshes = False
    # Renewed by the worker: with a refresh token, or (Instagram, Threads) by refreshing the
    # long-lived access token itself. LinkedIn without programmatic refresh can't renew.
    renewable = refreshes and bool(token.refresh_token or account.platform in SELF_RENEWING)
    common = dict(expires_at=token.expires_at, refresh_expires_at=token.refresh_expires_at,
                  last_refreshed_at=token.last_refreshed_at,
                  last_refresh=ago(token.last_refreshed_at, now))
    if renewable and token.refresh_token:
        deadline = token.refresh_expires_at         # access renews; the refresh token may not
    else:
        deadline = token.expires_at
    if deadline is None:
        summary = "Renews automatically" if renewable else "Doesn't expire"
        return TokenHealth("ok", summary, False, **common)
    if deadline <= now:
        return TokenHealth("needs_reconnect", f"Expired {ago(deadline, now)} — reconnect it",
                           True, **common)
    soon = deadline - now <= EXPIRING_SOON
    if renewable and token.refresh_token:
        # Access renews by itself; only a new sign-in extends the refresh token.
        if soon:
            return TokenHealth("expiring", f"Reconnect {until(deadline, now)}", False, **common)
        return TokenHealth("ok", f"Renews automatically (reconnect needed {until(deadline, now)})",
                           False, **common)
    if renewable:                      # the worker refreshes the access token itself
        return TokenHealth("ok", f"Renews automatically (expires {until(deadline, now)})",
                           False, **common)
    return TokenHealth("expiring" if soon else "ok", f"Expires {until(deadline, now)}", False,
                       **common)


def _span(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "less than a minute"


def until(when: datetime, now: datetime | None = None) -> str:
    return f"in {_span(when - (now or utcnow()))}"


def ago(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return ""
    return f"{_span((now or utcnow()) - when)} ago"


@dataclass(frozen=True)
class AccountRow:
    account: SocialAccount
    label: str
    health: TokenHealth


@dataclass(frozen=True)
class ProjectGroup:
    project: Project | None
    name: str
    accounts: list


def list_accounts(user: User, now: datetime | None = None) -> list[ProjectGroup]:
    """The workspace's accounts grouped by project (named projects first, then "No project")."""
    require(user, "view")
    accounts = list(SocialAccount.select()
                    .where((SocialAccount.workspace == user.workspace_id)
                           & (SocialAccount.platform != "sandbox"))
                    .order_by(SocialAccount.platform, SocialAccount.handle))
    tokens = {t.account_id: t for t in
              OAuthToken.select().where(OAuthToken.account.in_([a.id for a in accounts]))} \
        if accounts else {}
    projects = {p.id: p for p in Project.select().where(Project.workspace == user.workspace_id)}
    groups: dict = {}
    for account in accounts:
        project = projects.get(account.project_id)
        key = project.id if project else None
        if key not in groups:
            groups[key] = ProjectGroup(project, project.name if project else "No project", [])
        groups[key].accounts.append(AccountRow(account, label(account.platform),
                                               token_health(account, tokens.get(account.id), now)))
    return sorted(groups.values(), key=lambda g: (g.project is None, g.name.lower()))


# --------------------------------------------------------------------------------------
# Mastodon instances


def validate_instance_url(raw: str, *, allow_loopback: bool = False,
                          resolve=socket.getaddrinfo) -> str:
    """'mastodon.social' → 'https://mastodon.social'. Refuses userinfo, paths, other schemes and
    (unless `allow_loopback`, for development against local fakes) addresses that resolve to
    loopback, private, link-local or reserved networks — Herald would POST to it."""
    from platforms.mastodon import normalize_instance
    text = (raw or "").strip()
    if not text:
        raise ValidationError({"instance_url": "Enter your Mastodon instance, e.g. mastodon.social."})
    if len(text) > 200 or any(c.isspace() for c in text):
        raise ValidationError({"instance_url": "That doesn't look like an instance address."})
    parsed = urlparse(text if "://" in text else "https://" + text)
    host = parsed.hostname or ""
    if parsed.username is not None or parsed.password is not None or "@" in parsed.netloc:
        raise ValidationError({"instance_url": "Leave out any user name or password: just the "
                                               "instance address, e.g. mastodon.social."})
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise ValidationError({"instance_url": "Just the instance address, without a path "
                                               "(e.g. mastodon.social)."})
    try:
        port = parsed.port
    except ValueError:
        raise ValidationError({"instance_url": "That address has an invalid port."}) from None
    if not host:
        raise ValidationError({"instance_url": "That doesn't look like an instance address."})
    loopback = _is_loopback_host(host)
    if parsed.scheme != "https" and not (allow_loopback and parsed.scheme == "http" and loopback):
        raise ValidationError({"instance_url": "The instance must be reached over https://."})
    if not allow_loopback:
        try:
            addresses = {info[4][0] for info in resolve(host, port or 443, type=socket.SOCK_STREAM)}
        except (socket.gaierror, UnicodeError, OSError):
            raise ValidationError({"instance_url": f"Herald can't find {host}."}) from None
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not ip.is_global or ip.is_multicast:
                raise ValidationError({"instance_url": f"{host} is not a public address."})
    netloc = f"[{host}]" if ":" in host else host
    return normalize_instance(f"{parsed.scheme}://{netloc}{f':{port}' if port else ''}")


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mastodon_app(adapter, instance: str, redirect_uri: str) -> MastodonApp:
    """Herald's registration on this instance, registering (again) when there is none or it was
    made for another redirect URI or scope set."""
    scopes = " ".join(adapter.scopes)
    app = MastodonApp.get_or_none(MastodonApp.instance_url == instance)
    if app is not None and app.redirect_uri == redirect_uri and app.scopes == scopes:
        return app
    client_id, client_secret = adapter.register_app(instance, redirect_uri)
    with database.atomic():
        if app is None:
            try:
                with database.atomic():
                    return MastodonApp.create(instance_url=instance, client_id=client_id,
                                              client_secret=client_secret,
                                              redirect_uri=redirect_uri, scopes=scopes)
            except IntegrityError:      # registered by a concurrent connect a moment ago
                app = MastodonApp.get(MastodonApp.instance_url == instance)
        app.client_id, app.client_secret = client_id, client_secret
        app.redirect_uri, app.scopes = redirect_uri, scopes
        app.save()
    log.info("registered Herald on Mastodon instance %s", instance)
    return app


# --------------------------------------------------------------------------------------
# Connect


def _reveal(value) -> str:
    return value.reveal() if isinstance(value, Secret) else value


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _settings_of(settings: Settings | None) -> Settings:
    # The settings core.networks was configured with at start-up.
    return settings or networks.current_settings()


def _adapter(platform: str, settings: Settings | None, redirect_uri: str | None = None) -> Adapter:
    if platform not in NETWORKS:
        raise NotFound("Herald doesn't connect to that network.")
    adapter = networks.adapter(platform, settings)
    if redirect_uri and adapter.config.redirect_uri != redirect_uri:
        adapter = type(adapter)(replace(adapter.config, redirect_uri=redirect_uri))
    return adapter


def start_connect(user: User, platform: str, session_binding: str, *,
                  instance_url: str | None = None, project=None, account=None,
                  settings: Settings | None = None) -> Started:
    """Begin an OAuth connect: returns the network's authorize URL (send the browser there) and
    the pending connect's id. `account` reconnects that row; `project` files a new account.
    Mastodon needs `instance_url` (validated here: public https hosts only; loopback and
    http are allowed in development, for local fakes) unless reconnecting."""
    require(user, "connect_accounts")
    if not session_binding:
        raise ConnectError("Your browser session isn't set up; reload the page and try again.",
                           "state")
    if account is not None:
        account = get_account(user, getattr(account, "id", account))
        platform = account.platform
    adapter = _adapter(platform, settings)
    kind = adapter.capabilities.connect
    if kind == "app_password":
        raise ValidationError(f"{adapter.label} connects with a handle and an app password.")
    project_row = _project(user, project)
    state = secrets.token_urlsafe(32)
    pkce = Pkce.generate() if adapter.capabilities.pkce else None
    redirect_uri = adapter.config.redirect_uri
    instance = None
    if kind == "instance_oauth":
        if account is not None:
            from platforms.mastodon import normalize_instance
            instance = normalize_instance((account.extra or {}).get("instance_url", ""))
        else:        # Herald is about to POST to this address: only public https hosts
            conf = _settings_of(settings)
            instance = validate_instance_url(instance_url or "",
                                             allow_loopback=not conf.production)
        if not instance:
            raise ValidationError({"instance_url": "Enter your Mastodon instance."})
        try:
            app = _mastodon_app(adapter, instance, redirect_uri)
        except PlatformError as exc:
            raise ConnectError(_platform_message(adapter.label, exc), "platform") from None
        adapter = adapter.for_instance(instance, app.client_id, _reveal(app.client_secret),
                                       redirect_uri=redirect_uri)
    url = adapter.authorize_url(state, pkce)
    now = utcnow()
    with database.atomic():
        # Housekeeping: this user's finished or long-expired attempts.
        ConnectState.delete().where((ConnectState.user == user.id)
                                    & (ConnectState.expires_at < now - timedelta(days=1))).execute()
        pending = ConnectState.create(
            workspace=user.workspace_id, user=user.id, platform=platform,
            state_hash=_hash(state), session_hash=_hash(session_binding),
            pkce_verifier=pkce.verifier if pkce else None, redirect_uri=redirect_uri,
            instance_url=instance, project=project_row, account=account,
            expires_at=now + PENDING_TTL)
    return Started(url, pending.id)


def finish_connect(user: User, platform: str, state: str | None, code: str | None,
                   error: str | None, session_binding: str | None, *,
                   error_description: str | None = None, settings: Settings | None = None,
                   ip: str | None = None, user_agent: str | None = None) -> SocialAccount:
    """Handle the network's redirect back. Refuses an unknown, replayed or expired state, one
    started in another browser session, by another user or for another network, and reports a
    cancel or a network error in plain words. Returns the connected account."""
    require(user, "connect_accounts")
    network = label(platform) if platform in NETWORKS else "the network"
    if not state:
        if error:
            raise _callback_error(network, error, error_description)
        raise ConnectError(f"{network} sent you back without the sign-in check Herald needs. "
                           "Start again from Accounts.", "state")
    pending = ConnectState.get_or_none(ConnectState.state_hash == _hash(state))
    if (pending is None or pending.workspace_id != user.workspace_id
            or pending.user_id != user.id or not session_binding
            or not hmac.compare_digest(pending.session_hash, _hash(session_binding))):
        raise ConnectError("Herald can't match this sign-in to one you started in this browser "
                           "session, so it was ignored. Start again from Accounts.", "state")
    if pending.platform != platform:
        raise ConnectError(f"This sign-in was started for {label(pending.platform)}, not "
                           f"{network}. Start again from Accounts.", "state")
    now = utcnow()
    if pending.used_at is not None:
        raise ConnectError("This sign-in link was already used. Start again from Accounts.",
                           "replayed")
    if pending.expires_at <= now:
        raise ConnectError("This sign-in took longer than 10 minutes and expired. "
                           "Start again from Accounts.", "expired")
    claimed = (ConnectState.update(used_at=now)
               .where((ConnectState.id == pending.id) & ConnectState.used_at.is_null()
                      & (ConnectState.expires_at > now))
               .execute())
    if claimed != 1:
        raise ConnectError("This sign-in link was already used. Start again from Accounts.",
                           "replayed")
    if error:
        raise _callback_error(network, error, error_description)
    if not code:
        raise ConnectError(f"{network} sent you back without a sign-in code. "
                           "Start again from Accounts.", "platform")
    adapter = _adapter(platform, settings, pending.redirect_uri)
    if adapter.capabilities.connect == "instance_oauth":
        app = MastodonApp.get_or_none(MastodonApp.instance_url == pending.instance_url)
        if app is None:
            raise ConnectError("Herald's registration on that instance is gone. Start again.",
                               "platform")
        adapter = adapter.for_instance(pending.instance_url, app.client_id,
                                       _reveal(app.client_secret),
                                       redirect_uri=pending.redirect_uri)
    verifier = pending.pkce_verifier.reveal() if pending.pkce_verifier else None
    pkce = _pkce(verifier) if verifier else None
    try:
        tokens = adapter.exchange_code(code, pkce)
        identity = adapter.identity(tokens)
    except PlatformError as exc:
        if exc.code == "invalid_client" and pending.instance_url:
            # The instance forgot Herald's app: drop ours so the next attempt registers anew.
            MastodonApp.delete().where(MastodonApp.instance_url == pending.instance_url).execute()
        raise ConnectError(_platform_message(adapter.label, exc), "platform") from None
    return _save(user, platform, tokens, identity, project_id=pending.project_id,
                 reconnecting_id=pending.account_id, ip=ip, user_agent=user_agent)


def connect_app_password(user: User, identifier: str, app_password: str, *,
                         platform: str = "bluesky", project=None, account=None,
                         settings: Settings | None = None, ip: str | None = None,
                         user_agent: str | None = None) -> SocialAccount:
    """Bluesky: sign in once with a handle and an app password. Only the session tokens are
    kept; the password is used for this call and dropped."""
    require(user, "connect_accounts")
    if account is not None:
        account = get_account(user, getattr(account, "id", account))
        platform = account.platform
    adapter = _adapter(platform, settings)
    if adapter.capabilities.connect != "app_password":
        raise ValidationError(f"{adapter.label} doesn't connect with an app password.")
    errors = {}
    if not (identifier or "").strip():
        errors["handle"] = "Enter the account's handle, e.g. brand.bsky.social."
    if not app_password:
        errors["app_password"] = "Enter an app password (Settings → Privacy and security → App passwords)."
    if errors:
        raise ValidationError(errors)
    project_row = _project(user, project)
    try:
        tokens = adapter.create_session(identifier.strip(), app_password)
        identity = adapter.identity(tokens)
    except PlatformError as exc:
        raise ConnectError(_platform_message(adapter.label, exc), "platform") from None
    return _save(user, platform, tokens, identity,
                 project_id=project_row.id if project_row else None,
                 reconnecting_id=account.id if account else None, ip=ip, user_agent=user_agent)


def _pkce(verifier: str) -> Pkce:
    import base64
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return Pkce(verifier=verifier,
                challenge=base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


def _project(user: User, project):
    if project in (None, ""):
        return None
    uid = parse_id(getattr(project, "id", project))
    row = (Project.select().where((Project.id == uid) & (Project.workspace == user.workspace_id))
           .first()) if uid else None
    if row is None:
        raise NotFound("That project isn't in this workspace.")
    return row


def _callback_error(network: str, error: str, description: str | None) -> ConnectError:
    if error in _CANCELLED:
        return ConnectError(f"You cancelled on {network}, so nothing was connected. "
                            "You can try again whenever you like.", "cancelled")
    detail = " ".join(str(description or "").split())[:200]
    return ConnectError(f"{network} didn't connect the account ({error[:64]}"
                        f"{': ' + detail if detail else ''}). Try again, or check the app's "
                        "settings on the network.", "platform")


def _platform_message(network: str, exc: PlatformError) -> str:
    if isinstance(exc, Transient):
        return f"Herald couldn't reach {network} just now. Try again in a minute."
    return exc.message


def _clean_extra(extra: dict) -> dict:
    """Network ids for API calls (page id, did, instance…) — never anything secret."""
    clean = {}
    for key, value in (extra or {}).items():
        if any(word in str(key).lower() for word in _SECRET_WORDS):
            continue
        clean[str(key)] = value
    return clean


def _account_key(platform: str, identity: Identity, tokens: TokenSet) -> tuple[str, dict]:
    """The row's platform_user_id and extra."""
    extra = {**_clean_extra(tokens.extra), **_clean_extra(identity.extra)}
    user_id = str(identity.platform_user_id)
    if platform == "mastodon":
        instance = extra.get("instance_url") or ""
        host = urlparse(instance).netloc
        extra["account_id"] = user_id
        user_id = f"{user_id}@{host}"
    return user_id, extra


def _save(user: User, platform: str, tokens: TokenSet, identity: Identity, *,
          project_id=None, reconnecting_id=None, ip=None, user_agent=None) -> SocialAccount:
    if not identity.platform_user_id:
        raise ConnectError(f"{label(platform)} didn't say which account you signed in as.",
                           "platform")
    user_id, extra = _account_key(platform, identity, tokens)
    now = utcnow()
    with write_transaction():
        account = for_update(SocialAccount.select()
                             .where((SocialAccount.workspace == user.workspace_id)
                                    & (SocialAccount.platform == platform)
                                    & (SocialAccount.platform_user_id == user_id))).first()
        if reconnecting_id is not None and (account is None or account.id != reconnecting_id):
            old = SocialAccount.get_or_none(SocialAccount.id == reconnecting_id)
            raise ConnectError(
                f"You signed in to {label(platform)} as {identity.handle or 'another account'}, "
                f"but you were reconnecting {old.handle if old else 'a different account'}. "
                "Sign in as that account and try again.", "mismatch")
        fields = dict(handle=identity.handle[:255], display_name=identity.display_name[:255],
                      avatar_url=identity.avatar_url or "", status="active", status_detail="",
                      connected_by=user.id)
        if account is None:
            reconnect = False
            account = SocialAccount.create(workspace=user.workspace_id, platform=platform,
                                           platform_user_id=user_id, project=project_id,
                                           extra=extra, **fields)
        else:
            reconnect = True
            for name, value in fields.items():
                setattr(account, name, value)
            account.extra = {**(account.extra or {}), **extra}
            if project_id is not None:
                account.project = project_id
            account.save()
        token_fields = dict(access_token=tokens.access_token, refresh_token=tokens.refresh_token,
                            token_type="bearer", scopes=" ".join(tokens.scopes),
                            expires_at=tokens.expires_at,
                            refresh_expires_at=tokens.refresh_expires_at, last_refreshed_at=now)
        token = OAuthToken.get_or_none(OAuthToken.account == account.id)
        if token is None:
            OAuthToken.create(account=account.id, **token_fields)
        else:
            OAuthToken.update(**token_fields).where(OAuthToken.id == token.id).execute()
        audit.record(user, "account.reconnected" if reconnect else "account.connected", account,
                     {"platform": platform, "handle": account.handle,
                      "scopes": list(tokens.scopes)},
                     ip=ip, user_agent=user_agent, workspace=user.workspace_id)
    log.info("%s %s account %s", "reconnected" if reconnect else "connected", platform, account.id)
    return account


# --------------------------------------------------------------------------------------
# Disconnect and credentials


def credentials_for(account: SocialAccount, token: OAuthToken | None = None) -> Credentials:
    """The Credentials an adapter needs for this account (decrypted; keep them in memory only).
    Mastodon: the raw account id from extra, plus the instance's app registration for revoke."""
    token = token or OAuthToken.get(OAuthToken.account == account.id)
    extra = dict(account.extra or {})
    user_id = account.platform_user_id
    if account.platform == "mastodon":
        user_id = str(extra.get("account_id") or user_id.split("@", 1)[0])
        app = MastodonApp.get_or_none(MastodonApp.instance_url == extra.get("instance_url", ""))
        if app is not None:
            extra.update(client_id=app.client_id, client_secret=_reveal(app.client_secret))
    return Credentials(access_token=token.access_token.reveal(), platform_user_id=user_id,
                       refresh_token=token.refresh_token.reveal() if token.refresh_token else None,
                       extra=extra)


def disconnect(user: User, account, *, settings: Settings | None = None, ip: str | None = None,
               user_agent: str | None = None) -> SocialAccount:
    """Revoke at the network where it can (a failure there doesn't stop the disconnect), delete
    the tokens, mark the account disconnected. The row and its posts stay."""
    require(user, "connect_accounts")
    account = get_account(user, getattr(account, "id", account))
    token = OAuthToken.get_or_none(OAuthToken.account == account.id)
    revoked = None
    if token is not None and account.platform in NETWORKS:
        try:
            adapter = networks.adapter(account.platform, settings)
            adapter.revoke(credentials_for(account, token))
            revoked = True
        except PlatformError as exc:
            revoked = False
            log.warning("revoking %s account %s failed: %s", account.platform, account.id,
                        exc.message)
        except Exception as exc:        # never let the network stop a disconnect
            revoked = False
            log.warning("revoking %s account %s failed (%s)", account.platform, account.id,
                        type(exc).__name__)
    with database.atomic():
        OAuthToken.delete().where(OAuthToken.account == account.id).execute()
        changed = account.status != "disconnected"
        account.status, account.status_detail = "disconnected", ""
        account.save()
        audit.record(user, "account.disconnected", account,
                     {"platform": account.platform, "handle": account.handle,
                      "revoked_at_network": revoked, "was_connected": changed},
                     ip=ip, user_agent=user_agent, workspace=user.workspace_id)
    return account


def can_connect(user: User) -> bool:
    return can(user, "connect_accounts")
