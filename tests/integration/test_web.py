"""The web app factory: health, and no trace when the database is away."""
from __future__ import annotations

from core.settings import Settings
from web import create_app


def test_healthz_answers_when_the_database_does(db, backend, tmp_path):
    app = create_app(Settings.from_env({"DATABASE_URL": backend.url,
                                        "HERALD_INSTANCE_PATH": str(tmp_path)}))
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_healthz_says_unavailable_without_a_trace(tmp_path, caplog):
    app = create_app(Settings.from_env({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                                        "HERALD_INSTANCE_PATH": str(tmp_path)}))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "unreachable"}
    assert b"Traceback" not in response.data
