"""Base models: UUID keys, created/updated stamps, workspace scoping, soft delete."""
from __future__ import annotations

import uuid

from peewee import Model, UUIDField

from db import database
from db.fields import UTCDateTimeField, utcnow


class BaseModel(Model):
    id = UUIDField(primary_key=True, default=uuid.uuid4)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        database = database
        legacy_table_names = False

    def save(self, force_insert=False, only=None):
        # UUID keys mean inserts go through create()/force_insert; any other save is an update.
        if not force_insert:
            self.updated_at = utcnow()
            if only is not None:
                only = [*only, type(self).updated_at]
        return super().save(force_insert=force_insert, only=only)

    @classmethod
    def update(cls, __data=None, **update):
        # Conditional updates (claims, status moves) keep updated_at honest too.
        data = dict(__data or {}, **update)
        if not any(getattr(k, "name", k) == "updated_at" for k in data):
            data[cls.updated_at] = utcnow()
        return super().update(data)


class SoftDeleteModel(BaseModel):
    """Rows are hidden, not removed. `select()` hides deleted rows; `with_deleted()` shows all.

    The scope applies to queries that start from this model; a join from another model
    filters on `deleted_at` itself where it matters.
    """

    deleted_at = UTCDateTimeField(null=True)

    @classmethod
    def select(cls, *fields):
        return super().select(*fields).where(cls.deleted_at.is_null())

    @classmethod
    def with_deleted(cls, *fields):
        return super().select(*fields)

    def soft_delete(self) -> None:
        self.deleted_at = utcnow()
        self.save(only=[type(self).deleted_at])

    def restore(self) -> None:
        self.deleted_at = None
        self.save(only=[type(self).deleted_at])
