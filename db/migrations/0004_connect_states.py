"""Connecting social accounts: pending OAuth connects (state and session binding stored hashed,
PKCE verifier encrypted, single use) and Herald's app registration per Mastodon instance
(client secret encrypted). Frozen model copies, as in 0001."""
from peewee import *
from db.fields import EncryptedTextField
from db.fields import UTCDateTimeField
import uuid

PLATFORM_CHECK = ('"platform" IN (\'x\', \'linkedin\', \'instagram\', \'facebook\', \'threads\', '
                  '\'tiktok\', \'pinterest\', \'bluesky\', \'mastodon\', \'sandbox\')')


def up(migrator, db):
    # Stand-ins for tables 0001 created; only their keys are referenced here.
    class Workspace(Model):
        id = UUIDField(primary_key=True)
        class Meta:
            database = db
            table_name = 'workspaces'

    class User(Model):
        id = UUIDField(primary_key=True)
        class Meta:
            database = db
            table_name = 'users'

    class Project(Model):
        id = UUIDField(primary_key=True)
        class Meta:
            database = db
            table_name = 'projects'

    class SocialAccount(Model):
        id = UUIDField(primary_key=True)
        class Meta:
            database = db
            table_name = 'social_accounts'

    class ConnectState(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        workspace = ForeignKeyField(Workspace, on_delete='CASCADE')
        user = ForeignKeyField(User, on_delete='CASCADE')
        platform = CharField(max_length=16, constraints=[Check(PLATFORM_CHECK)])
        state_hash = CharField(unique=True, max_length=64)
        session_hash = CharField(max_length=64)
        pkce_verifier = EncryptedTextField(null=True)
        redirect_uri = TextField()
        instance_url = TextField(null=True)
        project = ForeignKeyField(Project, null=True, on_delete='SET NULL')
        account = ForeignKeyField(SocialAccount, null=True, on_delete='SET NULL')
        expires_at = UTCDateTimeField()
        used_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            legacy_table_names = False
            table_name = 'connect_states'
    db.create_tables([ConnectState])

    class MastodonApp(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        instance_url = CharField(unique=True, max_length=255)
        client_id = CharField(max_length=255)
        client_secret = EncryptedTextField()
        redirect_uri = TextField()
        scopes = TextField(default='')
        class Meta:
            database = db
            legacy_table_names = False
            table_name = 'mastodon_apps'
    db.create_tables([MastodonApp])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('mastodon_apps'))
    migrator.migrate(migrator.drop_table('connect_states'))
