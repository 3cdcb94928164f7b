"""/healthz: is this process up, and can it reach its database?"""
from flask import Blueprint, jsonify

from db import database

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        database.execute_sql("SELECT 1").fetchone()
    except Exception:  # any driver error means "not healthy"; details go to the log only
        import logging
        logging.getLogger(__name__).exception("health check: database unreachable")
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
