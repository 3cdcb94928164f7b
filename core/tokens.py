"""OAuth tokens for publishing: credentials for a call, refresh before expiry, needs_reauth.

Refresh tokens rotate on X, TikTok, Pinterest and Bluesky: a refresh spends the old one, so two
workers refreshing the same account at once would revoke each other (the loser gets
invalid_grant and the account looks disconnected). Every refresh therefore runs under a lock
on the token row and re-checks, once it holds the lock, whether it is still needed:

- Postgres: `SELECT … FOR UPDATE` on the oauth_tokens row, held across the refresh call.
- SQLite (one host by design): an exclusive file lock per account beside the database file,
  so the single SQLite writer lock isn't held during a network call.

A refresh the network refuses for good (InvalidGrant) marks the account `needs_reauth`,
records it in the audit log and announces it (the project channel gets a reconnect link);
its scheduled targets wait instead of failing.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
from datetime import datetime, timedelta
from pathlib import Path

from core import audit, notify
from db import database, is_postgres, write_transaction
from db.fields import Secret, utcnow
from db.models import OAuthToken, SocialAccount
from platforms.base import Adapter, Credentials, InvalidGrant, PlatformError, TokenSet

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)     # before a publish: refresh a token this close to expiry
MIN_HORIZON = timedelta(minutes=15)


def credentials(account: SocialAccount, adapter: Adapter, *, now: datetime | None = None,
                token: OAuthToken | None = None) -> Credentials:
    """What a call needs, refreshing first when the token is about to expire. `token` is the
    row when the caller already read it."""
    now = now or utcnow()
    token = token or OAuthToken.get_or_none(OAuthToken.account == account.id)
    if token is None:
        reason = "Herald has no token for this account; connect it again."
        mark_needs_reauth(account.id, reason)
        raise InvalidGrant(reason)
    if adapter.capabilities.refresh and token.expires_at is not None \
            and token.expires_at <= now + REFRESH_MARGIN:
        token, _ = refresh(account, adapter, horizon=REFRESH_MARGIN)
    return _credentials(account, token)


def _credentials(account: SocialAccount, token: OAuthToken) -> Credentials:
    return Credentials(access_token=token.access_token.reveal(),
                       platform_user_id=account.platform_user_id,
                       refresh_token=token.refresh_token.reveal() if token.refresh_token else None,
                       extra=dict(account.extra or {}))


def refresh(account: SocialAccount, adapter: Adapter, *, force: bool = False,
            seen_access: str | None = None, horizon: timedelta = REFRESH_MARGIN) -> tuple[OAuthToken, bool]:
    """Refresh the account's token under a lock on its row. Returns (token, refreshed).

    Without `force`, a token that (re-read under the lock) no longer expires within `horizon`
    is left alone: someone else refreshed it while we waited. With `force` (after a 401),
    the refresh is skipped when the stored access token is no longer the one that was
    refused (`seen_access`): again, someone else already refreshed.
    """
    failure: Exception | None = None
    with _token_lock(account.id):
        token = _read_locked(account.id)
        if token is None:
            raise InvalidGrant("Herald has no token for this account; connect it again.")
        now = utcnow()
        if force:
            if seen_access is not None and not token.access_token == seen_access:
                return token, False
        elif token.expires_at is None or token.expires_at > now + horizon:
            return token, False
        try:
            fresh = adapter.refresh(_credentials(account, token))
        except InvalidGrant as refused:
            reason = refused.message or "The network refused the refresh token."
            _finish(lambda: mark_needs_reauth(account.id, reason))
            failure = refused          # raised after the lock's transaction commits
        else:
            _finish(lambda: _store(token, fresh, now))
    if failure is not None:
        raise failure
    log.info("refreshed the %s token of account %s (expires %s)", account.platform, account.id,
             token.expires_at)
    return token, True


def _store(token: OAuthToken, fresh: TokenSet, now: datetime) -> None:
    token.access_token = Secret(fresh.access_token)
    if fresh.refresh_token:
        token.refresh_token = Secret(fresh.refresh_token)     # rotation: always keep the newest
    token.expires_at = fresh.expires_at
    if fresh.refresh_expires_at is not None:
        token.refresh_expires_at = fresh.refresh_expires_at
    if fresh.scopes:
        token.scopes = " ".join(fresh.scopes)
    token.last_refreshed_at = now
    token.save()


# -- the lock -------------------------------------------------------------------------------
# On Postgres the lock is a transaction holding the row; the write happens inside it. On
# SQLite the lock is a file; the write is a short transaction of its own.

@contextlib.contextmanager
def _token_lock(account_id):
    if is_postgres():
        with database.atomic():
            yield
        return
    folder = Path(str(database.obj.database) + ".locks")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"token-{account_id}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_locked(account_id) -> OAuthToken | None:
    query = OAuthToken.select().where(OAuthToken.account == account_id)
    if is_postgres():
        query = query.for_update()
    return query.first()


def _finish(write) -> None:
    """Run the write inside the lock: on Postgres we are already in the locking transaction."""
    if is_postgres():
        write()
    else:
        with write_transaction():
            write()


# -- needs_reauth ---------------------------------------------------------------------------


def mark_needs_reauth(account_id, reason: str) -> bool:
    """active → needs_reauth, audited and announced once. Returns whether it changed."""
    with write_transaction():
        changed = (SocialAccount.update(status="needs_reauth", status_detail=reason[:500])
                   .where((SocialAccount.id == account_id) & (SocialAccount.status == "active"))
                   .execute())
        if changed:
            account = SocialAccount.get_by_id(account_id)
            audit.record("Herald", "account.needs_reauth", account, {"reason": reason},
                         workspace=account.workspace_id)
            notify.announce("account", [str(account_id)])
    return bool(changed)


# -- the periodic refresh -------------------------------------------------------------------


def refresh_horizon(token: OAuthToken, ahead: timedelta) -> timedelta:
    """How long before expiry to refresh: a quarter of the token's lifetime, at least 15 min
    and at most TOKEN_REFRESH_AHEAD (a 2 h X token: 30 min; a 60-day LinkedIn token: 6 h)."""
    if token.expires_at is None:
        return MIN_HORIZON
    issued = token.last_refreshed_at or token.created_at
    lifetime = token.expires_at - issued if issued else ahead
    return max(MIN_HORIZON, min(lifetime / 4, ahead))


def due_for_refresh(now: datetime, ahead: timedelta, limit: int = 500) -> list[str]:
    """Accounts whose token expires within its refresh horizon (the periodic sweep's list)."""
    from core import networks
    rows = (OAuthToken.select(OAuthToken, SocialAccount)
            .join(SocialAccount)
            .where((SocialAccount.status == "active") & OAuthToken.expires_at.is_null(False)
                   & (OAuthToken.expires_at <= now + ahead))
            .order_by(OAuthToken.expires_at).limit(limit))
    due = []
    for token in rows:
        try:
            refreshable = networks.adapter(token.account.platform).capabilities.refresh
        except Exception:  # an adapter that can't even be built: nothing to refresh here
            refreshable = False
        if refreshable and token.expires_at <= now + refresh_horizon(token, ahead):
            due.append(str(token.account_id))
    return due


def refresh_account(account_id, ahead: timedelta) -> str:
    """The periodic refresh of one account: refreshed | fresh | needs_reauth | failed | skipped."""
    from core import networks
    account = SocialAccount.get_or_none(SocialAccount.id == account_id)
    if account is None or account.status != "active":
        return "skipped"
    adapter = networks.adapter(account.platform)
    token = OAuthToken.get_or_none(OAuthToken.account == account.id)
    if token is None or not adapter.capabilities.refresh:
        return "skipped"
    try:
        _, refreshed = refresh(account, adapter, horizon=refresh_horizon(token, ahead))
    except InvalidGrant:
        return "needs_reauth"
    except PlatformError as exc:
        log.warning("refreshing the %s token of account %s failed (%s); the next sweep tries again",
                    account.platform, account.id, exc.message)
        return "failed"
    return "refreshed" if refreshed else "fresh"


__all__ = ["credentials", "refresh", "mark_needs_reauth", "refresh_horizon", "due_for_refresh",
           "refresh_account", "REFRESH_MARGIN"]
