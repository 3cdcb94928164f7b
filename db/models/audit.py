"""The audit log: append-only, enforced by database triggers (see the 0001 migration)."""
import uuid

from peewee import CharField, ForeignKeyField, JSONField, Model, TextField, UUIDField

from db import database
from db.fields import UTCDateTimeField, utcnow
from db.models.tenancy import Workspace


class AuditLog(Model):
    # Not a BaseModel: an append-only row has no updated_at.
    id = UUIDField(primary_key=True, default=uuid.uuid4)
    created_at = UTCDateTimeField(default=utcnow)
    # RESTRICT: a workspace with history is soft-deleted, never removed under its audit trail.
    workspace = ForeignKeyField(Workspace, null=True, backref="audit", on_delete="RESTRICT")
    actor_id = UUIDField(null=True)                     # a users.id; no FK so history outlives it
    actor_label = CharField(max_length=255, default="system")
    action = CharField(max_length=64)
    entity_type = CharField(max_length=64, default="")
    entity_id = CharField(max_length=64, default="")
    changes = JSONField(default=dict)
    ip = CharField(max_length=64, null=True)
    user_agent = TextField(null=True)

    class Meta:
        database = database
        legacy_table_names = False
        table_name = "audit_log"
        indexes = (
            (("workspace", "created_at"), False),
            (("entity_type", "entity_id"), False),
        )
