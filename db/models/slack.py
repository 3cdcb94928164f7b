"""Bolt's installation store tables (the same columns as slack-sdk's SQLAlchemy store),
with every token encrypted."""
from peewee import BooleanField, CharField, ForeignKeyField, JSONField, TextField

from db.base import BaseModel
from db.fields import EncryptedTextField, UTCDateTimeField
from db.models.tenancy import Workspace


class SlackInstallation(BaseModel):
    workspace = ForeignKeyField(Workspace, null=True, backref="installations", on_delete="SET NULL")
    client_id = CharField(max_length=32)
    app_id = CharField(max_length=32)
    enterprise_id = CharField(max_length=32, null=True)
    enterprise_name = CharField(max_length=200, null=True)
    enterprise_url = TextField(null=True)
    team_id = CharField(max_length=32, null=True)
    team_name = CharField(max_length=200, null=True)
    bot_token = EncryptedTextField(null=True)
    bot_id = CharField(max_length=32, null=True)
    bot_user_id = CharField(max_length=32, null=True)
    bot_scopes = TextField(null=True)
    bot_refresh_token = EncryptedTextField(null=True)
    bot_token_expires_at = UTCDateTimeField(null=True)
    user_id = CharField(max_length=32)
    user_token = EncryptedTextField(null=True)
    user_scopes = TextField(null=True)
    user_refresh_token = EncryptedTextField(null=True)
    user_token_expires_at = UTCDateTimeField(null=True)
    incoming_webhook_url = EncryptedTextField(null=True)  # the URL itself is a credential
    incoming_webhook_channel = CharField(max_length=200, null=True)
    incoming_webhook_channel_id = CharField(max_length=32, null=True)
    incoming_webhook_configuration_url = TextField(null=True)
    is_enterprise_install = BooleanField(default=False)
    token_type = CharField(max_length=32, null=True)
    custom_values = JSONField(default=dict)
    installed_at = UTCDateTimeField()

    class Meta:
        table_name = "slack_installations"
        indexes = ((("client_id", "enterprise_id", "team_id", "user_id", "installed_at"), False),)

    def __repr__(self) -> str:
        return f"<SlackInstallation team={self.team_id} installed_at={self.installed_at}>"

    __str__ = __repr__


class SlackBot(BaseModel):
    workspace = ForeignKeyField(Workspace, null=True, backref="bots", on_delete="SET NULL")
    client_id = CharField(max_length=32)
    app_id = CharField(max_length=32)
    enterprise_id = CharField(max_length=32, null=True)
    enterprise_name = CharField(max_length=200, null=True)
    team_id = CharField(max_length=32, null=True)
    team_name = CharField(max_length=200, null=True)
    bot_token = EncryptedTextField(null=True)
    bot_id = CharField(max_length=32, null=True)
    bot_user_id = CharField(max_length=32, null=True)
    bot_scopes = TextField(null=True)
    bot_refresh_token = EncryptedTextField(null=True)
    bot_token_expires_at = UTCDateTimeField(null=True)
    is_enterprise_install = BooleanField(default=False)
    installed_at = UTCDateTimeField()

    class Meta:
        table_name = "slack_bots"
        indexes = ((("client_id", "enterprise_id", "team_id", "installed_at"), False),)

    def __repr__(self) -> str:
        return f"<SlackBot team={self.team_id} installed_at={self.installed_at}>"

    __str__ = __repr__


class SlackOAuthState(BaseModel):
    state = CharField(max_length=200, unique=True)
    expire_at = UTCDateTimeField()

    class Meta:
        table_name = "slack_oauth_states"
