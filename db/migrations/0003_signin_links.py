"""One-time sign-in links for the admin site (`/social admin`). Frozen model copy, like 0001:
later model changes can't rewrite this. Only the token's SHA-256 is stored."""
from peewee import *
from db.fields import UTCDateTimeField
import uuid


def up(migrator, db):
    class Workspace(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        class Meta:
            database = db
            legacy_table_names = False
            table_name = 'workspaces'

    class User(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        class Meta:
            database = db
            legacy_table_names = False
            table_name = 'users'

    class SigninLink(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()
        workspace = ForeignKeyField(Workspace, on_delete='CASCADE')
        user = ForeignKeyField(User, on_delete='CASCADE')
        token_hash = CharField(unique=True, max_length=64)
        expires_at = UTCDateTimeField()
        used_at = UTCDateTimeField(null=True)
        class Meta:
            database = db
            legacy_table_names = False
            table_name = 'signin_links'
    db.create_tables([SigninLink])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('signin_links'))
