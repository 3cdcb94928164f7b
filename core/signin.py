"""One-time sign-in links for the admin site, sent by `/social admin` in Slack.

    url = issue_link(user, settings)      # -> "https://herald.example/signin/<token>"
    user = consume(token, settings)       # -> the User; raises LinkUsed / LinkExpired / LinkInvalid

A token is 32 random bytes plus an HMAC (keyed with SECRET_KEY) over those bytes, the
workspace's Slack team id and the person's Slack user id: a token is bound to one person in
one workspace, and a made-up or altered token is refused before the database is asked.
Only the token's SHA-256 is stored (`signin_links.token_hash`), so a database dump holds no
usable link. A link lives LINK_LIFETIME (10 minutes) and works once: `consume` marks it used
with one conditional UPDATE (… WHERE used_at IS NULL AND expires_at > now), so two clicks
racing each other can't both sign in.

The Slack command (bot/listeners/commands/social.py, `/social admin`) calls `issue_link` and
sends the URL ephemerally to the person who asked; it must never be logged.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta

from core.errors import HeraldError
from db.fields import utcnow
from db.models import Membership, SigninLink, User, Workspace

LINK_LIFETIME = timedelta(minutes=10)
_HOW_TO_GET_ONE = "Type /social admin in Slack to get a new one."


class SigninError(HeraldError):
    """The link can't sign anyone in; `message` says why and how to get a new one."""

    reason = "invalid"


class LinkInvalid(SigninError):
    reason = "invalid"

    def __init__(self):
        super().__init__("This sign-in link isn't valid. It may have been copied incompletely. "
                         + _HOW_TO_GET_ONE)


class LinkUsed(SigninError):
    reason = "used"

    def __init__(self):
        super().__init__("This sign-in link has already been used (each link works once). "
                         + _HOW_TO_GET_ONE)


class LinkExpired(SigninError):
    reason = "expired"

    def __init__(self):
        minutes = int(LINK_LIFETIME.total_seconds() // 60)
        super().__init__(f"This sign-in link has expired (links work for {minutes} minutes). "
                         + _HOW_TO_GET_ONE)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _signature(secret_key: str, nonce: str, team_id: str, slack_user_id: str) -> str:
    message = f"herald-signin|{nonce}|{team_id}|{slack_user_id}".encode()
    return _b64(hmac.new(secret_key.encode(), message, hashlib.sha256).digest()[:18])


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def issue_link(user: User, settings) -> str:
    """A fresh one-time sign-in URL for `user` (valid LINK_LIFETIME, single use)."""
    workspace = Workspace.get_by_id(user.workspace_id)
    nonce = _b64(secrets.token_bytes(32))
    token = f"{nonce}.{_signature(settings.secret_key, nonce, workspace.team_id, user.slack_user_id)}"
    now = utcnow()
    SigninLink.create(workspace=workspace, user=user, token_hash=token_hash(token),
                      expires_at=now + LINK_LIFETIME)
    # Housekeeping: links dead for a day are of no further use.
    SigninLink.delete().where((SigninLink.user == user)
                              & (SigninLink.expires_at < now - timedelta(days=1))).execute()
    return f"{settings.public_url.rstrip('/')}/signin/{token}"


def _well_formed(token) -> bool:
    if not isinstance(token, str) or len(token) > 200 or token.count(".") != 1:
        return False
    return all(part and all(c.isalnum() or c in "-_" for c in part) for part in token.split("."))


def _find(token: str, settings) -> SigninLink:
    """The stored link for `token`, checked against its signature; LinkInvalid otherwise."""
    if not _well_formed(token):
        raise LinkInvalid()
    link = SigninLink.select().where(SigninLink.token_hash == token_hash(token)).first()
    if link is None:
        raise LinkInvalid()
    if settings is not None:
        user = User.get_or_none(User.id == link.user_id)
        workspace = Workspace.get_or_none(Workspace.id == link.workspace_id)
        if user is None or workspace is None:
            raise LinkInvalid()
        nonce, signature = token.split(".")
        expected = _signature(settings.secret_key, nonce, workspace.team_id, user.slack_user_id)
        if not hmac.compare_digest(signature, expected):
            raise LinkInvalid()
    return link


def check(token: str, settings=None) -> None:
    """Raise the SigninError `consume` would raise, without using the link up (for the
    confirmation page, which a link scanner may fetch)."""
    link = _find(token, settings)
    if link.used_at is not None:
        raise LinkUsed()
    if link.expires_at <= utcnow():
        raise LinkExpired()


def consume(token: str, settings=None) -> User:
    """Use the link up and return its User. Pass `settings` to verify the signature too (the
    web does); without it the stored hash alone decides (it is 256 random bits)."""
    link = _find(token, settings)
    now = utcnow()
    claimed = (SigninLink
               .update(used_at=now)
               .where((SigninLink.id == link.id) & SigninLink.used_at.is_null()
                      & (SigninLink.expires_at > now))
               .execute())
    if claimed != 1:
        fresh = SigninLink.get_by_id(link.id)
        if fresh.used_at is not None:
            raise LinkUsed()
        raise LinkExpired()
    user = (User.select().join(Workspace)
            .where((User.id == link.user_id) & (User.workspace == link.workspace_id)
                   & Workspace.deleted_at.is_null())
            .first())
    member = user and Membership.select().where((Membership.user == user)
                                                & (Membership.workspace == link.workspace_id)).exists()
    if not member:
        raise LinkInvalid()
    return user


__all__ = ["LINK_LIFETIME", "SigninError", "LinkInvalid", "LinkUsed", "LinkExpired",
           "issue_link", "check", "consume", "token_hash"]
