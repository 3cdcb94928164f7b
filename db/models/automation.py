"""Automations, the consents they need, and raw ingested events."""
from peewee import BooleanField, CharField, ForeignKeyField, JSONField, TextField

from db.base import BaseModel
from db.fields import UTCDateTimeField
from db.models.tenancy import Project, User, Workspace


class Automation(BaseModel):
    workspace = ForeignKeyField(Workspace, backref="automations", on_delete="CASCADE")
    project = ForeignKeyField(Project, null=True, on_delete="SET NULL")
    name = CharField(max_length=120)
    trigger = JSONField(default=dict)
    actions = JSONField(default=list)
    enabled = BooleanField(default=False)
    consent_required = BooleanField(default=True)

    class Meta:
        table_name = "automations"


class Consent(BaseModel):
    workspace = ForeignKeyField(Workspace, backref="consents", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="consents", on_delete="CASCADE")
    automation = ForeignKeyField(Automation, null=True, backref="consents", on_delete="CASCADE")
    scope = CharField(max_length=64)
    granted_at = UTCDateTimeField()
    revoked_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "consents"


class Event(BaseModel):
    """Raw webhook/polling ingest, kept as received; (source, external_id) de-duplicates."""

    workspace = ForeignKeyField(Workspace, null=True, backref="events", on_delete="SET NULL")
    source = CharField(max_length=32)
    kind = CharField(max_length=64)
    external_id = CharField(max_length=255)
    payload = JSONField(default=dict)
    received_at = UTCDateTimeField()
    processed_at = UTCDateTimeField(null=True)
    error = TextField(null=True)

    class Meta:
        table_name = "events"
        indexes = ((("source", "external_id"), True),)
