"""Connected social accounts and their (encrypted) tokens."""
from peewee import CharField, ForeignKeyField, JSONField, TextField

from db.base import BaseModel
from db.checks import one_of
from db.fields import EncryptedTextField, UTCDateTimeField
from db.models.tenancy import Project, User, Workspace

PLATFORMS = ("x", "linkedin", "instagram", "facebook", "threads", "tiktok", "pinterest",
             "bluesky", "mastodon", "sandbox")
ACCOUNT_STATUSES = ("active", "needs_reauth", "disconnected", "error")


class SocialAccount(BaseModel):
    """Never deleted: disconnecting sets a status, and reconnecting reuses the row (history stays)."""

    workspace = ForeignKeyField(Workspace, backref="accounts", on_delete="CASCADE")
    # Removing a project keeps its accounts (and their history); they just lose the grouping.
    project = ForeignKeyField(Project, backref="accounts", null=True, on_delete="SET NULL")
    platform = CharField(max_length=16, constraints=[one_of("platform", PLATFORMS)])
    platform_user_id = CharField(max_length=255)
    handle = CharField(max_length=255, default="")
    display_name = CharField(max_length=255, default="")
    avatar_url = TextField(default="")
    status = CharField(max_length=16, default="active",
                       constraints=[one_of("status", ACCOUNT_STATUSES)])
    status_detail = TextField(default="")
    extra = JSONField(default=dict)                    # instance URL, page id, did, …
    connected_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

    class Meta:
        table_name = "social_accounts"
        indexes = ((("workspace", "platform", "platform_user_id"), True),)


class OAuthToken(BaseModel):
    account = ForeignKeyField(SocialAccount, backref="tokens", unique=True, on_delete="CASCADE")
    access_token = EncryptedTextField()
    refresh_token = EncryptedTextField(null=True)
    token_type = CharField(max_length=32, default="bearer")
    scopes = TextField(default="")
    expires_at = UTCDateTimeField(null=True)
    refresh_expires_at = UTCDateTimeField(null=True)
    last_refreshed_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "oauth_tokens"

    def __repr__(self) -> str:  # never the tokens
        return f"<OAuthToken account={self.account_id} expires_at={self.expires_at}>"

    __str__ = __repr__
