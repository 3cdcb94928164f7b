"""/audit: the workspace's audit trail, filtered, paginated, exported as CSV (owners only)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, render_template, request, stream_with_context, url_for
from urllib.parse import urlencode

from core.ids import parse_id
from db.models import AuditLog, User
from web.security import signed_in

bp = Blueprint("audit", __name__)

PAGE_SIZE = 50
CSV_COLUMNS = ("time_utc", "actor", "actor_id", "action", "entity_type", "entity_id", "changes",
               "ip", "user_agent")


@bp.get("/audit")
@signed_in("view_audit")
def index():
    filters, errors = _filters()
    query = _query(filters)
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    rows = list(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    has_next = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    link = lambda p: url_for("audit.index") + "?" + urlencode({**args, "page": p})
    return render_template(
        "audit.html", rows=rows, filters=filters, errors=errors, zone=_zone(),
        actors=_actors(), actions=_distinct(AuditLog.action),
        entity_types=_distinct(AuditLog.entity_type), page=page,
        next_url=link(page + 1) if has_next else None,
        prev_url=link(page - 1) if page > 1 else None,
        export_url=url_for("audit.export") + ("?" + urlencode(args) if args else ""))


@bp.get("/audit.csv")
@signed_in("view_audit")
def export():
    filters, _ = _filters()
    query = _query(filters)

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for row in query.iterator():
            writer.writerow([safe_cell(v) for v in (
                row.created_at.isoformat(), row.actor_label, row.actor_id or "", row.action,
                row.entity_type, row.entity_id, _json(row.changes), row.ip or "",
                row.user_agent or "")])
            if buffer.tell() > 16384:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="herald-audit-{stamp}.csv"'})


@bp.app_template_filter("audit_changes")
def audit_changes(changes) -> list[tuple[str, str]]:
    """{"role": ["editor", "approver"]} -> [("role", "editor → approver")] for the table
    (autoescaped by the template)."""
    if not isinstance(changes, dict):
        return [("", _json(changes))] if changes else []
    out = []
    for key, value in changes.items():
        if isinstance(value, list) and len(value) == 2 and not any(isinstance(v, (dict, list)) for v in value):
            text = f"{_plain(value[0])} → {_plain(value[1])}"
        else:
            text = _plain(value)
        out.append((key, text))
    return out


def _plain(value) -> str:
    if isinstance(value, str):
        return value
    import json
    return json.dumps(value, ensure_ascii=False, default=str)


def safe_cell(value) -> str:
    """A spreadsheet must not run a cell as a formula (CSV injection): cells starting with
    = + - @ (or a tab/carriage return) get a leading apostrophe."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def _json(value) -> str:
    import json
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str) if value else ""


def _zone() -> ZoneInfo:
    """The zone filter inputs are read in: the person's Slack zone, else the workspace's."""
    for name in (g.user.tz, g.workspace.timezone):
        if name:
            try:
                return ZoneInfo(name)
            except (ValueError, KeyError, OSError):
                continue
    return ZoneInfo("UTC")


def _filters() -> tuple[dict, dict]:
    a = request.args
    filters = {"actor": a.get("actor", "").strip(), "action": a.get("action", "").strip(),
               "entity_type": a.get("entity_type", "").strip(),
               "entity_id": a.get("entity_id", "").strip(),
               "since": a.get("since", "").strip(), "until": a.get("until", "").strip(),
               "since_utc": None, "until_utc": None}
    errors = {}
    zone = _zone()
    for key in ("since", "until"):
        if filters[key]:
            try:
                local = datetime.fromisoformat(filters[key])
            except ValueError:
                errors[key] = "Use a date and time like 2026-05-01T09:00."
                continue
            if local.tzinfo is None:
                local = local.replace(tzinfo=zone)
            filters[key + "_utc"] = local.astimezone(timezone.utc)
    return filters, errors


def _query(filters):
    query = (AuditLog.select().where(AuditLog.workspace == g.workspace)
             .order_by(AuditLog.created_at.desc(), AuditLog.id.desc()))
    if filters["actor"]:
        actor_id = parse_id(filters["actor"])
        query = query.where(AuditLog.actor_id == actor_id if actor_id
                            else AuditLog.actor_label == filters["actor"])
    if filters["action"]:
        query = query.where(AuditLog.action == filters["action"])
    if filters["entity_type"]:
        query = query.where(AuditLog.entity_type == filters["entity_type"])
    if filters["entity_id"]:
        query = query.where(AuditLog.entity_id == filters["entity_id"])
    if filters["since_utc"]:
        query = query.where(AuditLog.created_at >= filters["since_utc"])
    if filters["until_utc"]:
        query = query.where(AuditLog.created_at < filters["until_utc"])
    return query


def _actors() -> list[tuple[str, str]]:
    """(value, label): the workspace's people, then non-person actors seen in the log."""
    people = [(str(u.id), u.real_name or u.slack_user_id)
              for u in User.select().where(User.workspace == g.workspace)
              .order_by(User.real_name)]
    labels = [(r.actor_label, r.actor_label) for r in
              AuditLog.select(AuditLog.actor_label).where((AuditLog.workspace == g.workspace)
                                                          & AuditLog.actor_id.is_null())
              .distinct().order_by(AuditLog.actor_label)]
    return people + labels


def _distinct(column) -> list[str]:
    return [getattr(r, column.name) for r in
            AuditLog.select(column).where((AuditLog.workspace == g.workspace) & (column != ""))
            .distinct().order_by(column)]
