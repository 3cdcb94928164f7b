"""Connecting social accounts: pending OAuth connects and Mastodon app registrations."""
from peewee import CharField, ForeignKeyField, TextField

from db.base import BaseModel
from db.checks import one_of
from db.fields import EncryptedTextField, UTCDateTimeField
from db.models.accounts import PLATFORMS, SocialAccount
from db.models.tenancy import Project, User, Workspace


class ConnectState(BaseModel):
    """One "Connect <network>" click, waiting for the network to send the browser back.

    The OAuth `state` is only stored as a SHA-256 hash, and so is the browser-session binding:
    a database reader can't forge a callback. Single use: `used_at` is set by a conditional
    update before the code is exchanged. The PKCE verifier is encrypted like a token.
    """

    workspace = ForeignKeyField(Workspace, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")
    platform = CharField(max_length=16, constraints=[one_of("platform", PLATFORMS)])
    state_hash = CharField(max_length=64, unique=True)
    session_hash = CharField(max_length=64)
    pkce_verifier = EncryptedTextField(null=True)
    redirect_uri = TextField()
    instance_url = TextField(null=True)                # Mastodon: the instance being connected
    project = ForeignKeyField(Project, null=True, on_delete="SET NULL")
    account = ForeignKeyField(SocialAccount, null=True, on_delete="SET NULL")   # reconnect
    expires_at = UTCDateTimeField()
    used_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "connect_states"

    def __repr__(self) -> str:
        return f"<ConnectState {self.platform} expires_at={self.expires_at}>"

    __str__ = __repr__


class MastodonApp(BaseModel):
    """Herald's app registration on one Mastodon instance (POST /api/v1/apps). The secret is as
    sensitive as a token. Registered again when the redirect URI or scopes change."""

    instance_url = CharField(max_length=255, unique=True)
    client_id = CharField(max_length=255)
    client_secret = EncryptedTextField()
    redirect_uri = TextField()
    scopes = TextField(default="")

    class Meta:
        table_name = "mastodon_apps"

    def __repr__(self) -> str:
        return f"<MastodonApp {self.instance_url}>"

    __str__ = __repr__
