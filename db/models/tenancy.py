"""Who: Slack workspaces, their people and roles, and projects (brands)."""
from peewee import SQL, CharField, ForeignKeyField, IntegerField, JSONField, TextField

from db.base import BaseModel, SoftDeleteModel
from db.checks import at_least, one_of

ROLES = ("owner", "approver", "editor", "analyst")
APPROVAL_POLICIES = ("none", "required", "multi_step")


class Workspace(SoftDeleteModel):
    team_id = CharField(max_length=32, unique=True)
    enterprise_id = CharField(max_length=32, null=True)
    name = CharField(max_length=255, default="")
    timezone = CharField(max_length=64, default="UTC")

    class Meta:
        table_name = "workspaces"


class User(BaseModel):
    workspace = ForeignKeyField(Workspace, backref="users", on_delete="CASCADE")
    slack_user_id = CharField(max_length=32)
    email = CharField(max_length=320, null=True)
    real_name = CharField(max_length=255, default="")
    tz = CharField(max_length=64, null=True)          # IANA name from users.info

    class Meta:
        table_name = "users"
        indexes = ((("workspace", "slack_user_id"), True),)


class Membership(BaseModel):
    workspace = ForeignKeyField(Workspace, backref="memberships", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="memberships", on_delete="CASCADE")
    role = CharField(max_length=16, default="editor", constraints=[one_of("role", ROLES)])

    class Meta:
        table_name = "memberships"
        indexes = ((("workspace", "user"), True),)


class Project(SoftDeleteModel):
    workspace = ForeignKeyField(Workspace, backref="projects", on_delete="CASCADE")
    name = CharField(max_length=120)
    approval_channel_id = CharField(max_length=32, null=True)
    approval_policy = CharField(max_length=16, default="required",
                                constraints=[one_of("approval_policy", APPROVAL_POLICIES)])
    approvals_required = IntegerField(default=1, constraints=[at_least("approvals_required", 1)])
    timezone = CharField(max_length=64, default="UTC")
    tags = JSONField(default=list)
    description = TextField(default="")

    class Meta:
        table_name = "projects"


# A name is unique among a workspace's live projects; a deleted one frees its name.
Project.add_index(Project.index(Project.workspace, Project.name, unique=True,
                                where=SQL('"deleted_at" IS NULL')))
