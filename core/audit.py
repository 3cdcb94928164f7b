"""The audit trail: who did what to which thing, from where. Append-only at the database."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from db.models import AuditLog, User, Workspace

_SECRET_WORDS = ("token", "secret", "password", "jwt")


def record(actor, action: str, entity=None, changes: dict | None = None, ip: str | None = None,
           user_agent: str | None = None, workspace: Workspace | None = None) -> AuditLog:
    """Append one entry.

    actor: a User, or a label for a non-person ("system", "scheduler").
    entity: a model instance, or a (type, id) pair.
    changes: what changed, e.g. {"role": ["editor", "approver"]}; secrets are redacted.
    """
    entity_type, entity_id = _entity(entity)
    if workspace is None:
        workspace = _workspace_of(actor) or _workspace_of(entity)
    return AuditLog.create(
        workspace=workspace,
        actor_id=actor.id if isinstance(actor, User) else None,
        actor_label=_label(actor),
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        changes=_clean(changes or {}),
        ip=ip,
        user_agent=(user_agent or "")[:500] or None,
    )


def _label(actor) -> str:
    if isinstance(actor, User):
        return actor.real_name or actor.slack_user_id
    return str(actor or "system")


def _entity(entity) -> tuple[str, str]:
    if entity is None:
        return "", ""
    if isinstance(entity, tuple):
        return str(entity[0]), str(entity[1])
    return entity._meta.table_name, str(entity.id)


def _workspace_of(thing):
    if isinstance(thing, Workspace):
        return thing
    workspace_id = getattr(thing, "workspace_id", None)
    return workspace_id


def _clean(value, key: str = ""):
    if any(word in key.lower() for word in _SECRET_WORDS):
        return "[redacted]"
    if isinstance(value, dict):
        return {str(k): _clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, key) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
