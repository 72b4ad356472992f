"""Test databases: the engines every database test runs on, and building their schema.

Every test that asks for ``app`` runs once per engine in ``BACKENDS``: SQLite always, and
PostgreSQL when ``TEST_DATABASE_URL`` is set. The schema is built by the real migrations.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url

from evaluation import create_app
from evaluation.extensions import db

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("TEST_DATABASE_URL", "")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL 未设置：跳过 PostgreSQL"),
    ),
]


def migrate(url: str, tmp: Path) -> None:
    """Build the schema with the project's migrations."""
    from flask_migrate import upgrade  # Flask-Migrate's own entry point

    app = create_app(app_config(url, tmp))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


def app_config(url: str, tmp: Path) -> dict[str, object]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": url,
        "REPORTS_DIR": str(tmp / "reports"),
        "BALLOTS_DIR": str(ROOT / "ballots"),
        "PUBLIC_BASE_URL": "https://ceping.example.gov.cn",
        "RATELIMIT_STORAGE_URI": "memory://",
        "SQLITE_BUSY_TIMEOUT": 15.0,
        # No scheduler thread in tests: tests/rounds/test_scheduler.py starts its own.
        "SCHEDULE_INTERVAL": 0,
    }


def worker_database_url(base: str) -> str:
    """TEST_DATABASE_URL, or a per-xdist-worker database beside it (created if missing)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return base
    url = make_url(base)
    name = f"{url.database}_{worker}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def fresh_side_database(purpose: str) -> str:
    """An empty PostgreSQL database beside TEST_DATABASE_URL for one purpose, recreated.

    One per xdist worker: two workers must never drop each other's database.
    """
    url = make_url(PG_URL)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{url.database}_{worker}_{purpose}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


TABLES = [
    "archive_annotation",
    "archive_entry",
    "answer",
    "ballot",
    "receipt",
    "code",
    "code_batch",
    "paper_entry",
    "paper_batch",
    "paper_issue",
    "subject",
    "stratum",
    "round",
    "user_account",
    "person",
    "unit",
    "audit_entry",
]


def drop_ballot_boxes(conn: Connection) -> None:
    """Drop the sealed ballot boxes rounds left open (tables of their own, not in TABLES)."""
    names = conn.execute(
        text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'ballot\\_box\\_%'")
    ).scalars()
    for name in list(names):
        conn.execute(text(f'DROP TABLE "{name}"'))
