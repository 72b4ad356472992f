"""Shared fixtures: an app per test on SQLite and (when TEST_DATABASE_URL is set) PostgreSQL.

Every test that asks for ``app`` (or anything built on it) runs once per database engine. The
schema is built by the real migrations (``flask db upgrade``) once per engine and session;
each test then starts from empty tables.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text

from evaluation import create_app
from evaluation.extensions import db

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_DATABASE_URL", "")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL 未设置：跳过 PostgreSQL"),
    ),
]

PASSWORD = "correct-horse-battery"


def _migrate(url: str, tmp: Path) -> None:
    """Build the schema with the project's migrations."""
    from flask_migrate import upgrade

    app = create_app(_config(url, tmp))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


def _config(url: str, tmp: Path) -> dict[str, object]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": url,
        "REPORTS_DIR": str(tmp / "reports"),
        "BALLOTS_DIR": str(ROOT / "ballots"),
        "PUBLIC_BASE_URL": "https://ceping.example.gov.cn",
        "RATELIMIT_STORAGE_URI": "memory://",
        "SQLITE_BUSY_TIMEOUT": 15.0,
    }


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with the migrated, empty schema; each test copies it."""
    tmp = tmp_path_factory.mktemp("sqlite-template")
    path = tmp / "template.db"
    _migrate(f"sqlite:///{path}", tmp)
    return path


def worker_database_url(base: str) -> str:
    """TEST_DATABASE_URL, or a per-xdist-worker database beside it (created if missing)."""
    from sqlalchemy.engine import make_url

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
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{url.database}_{worker}_{purpose}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_schema(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PostgreSQL database emptied and migrated once per session (one per xdist worker)."""
    url = worker_database_url(PG_URL)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    _migrate(url, tmp_path_factory.mktemp("pg"))
    return url


TABLES = [
    "archive_annotation",
    "archive_entry",
    "answer",
    "ballot",
    "receipt",
    "code",
    "code_batch",
    "subject",
    "stratum",
    "round",
    "user_account",
    "person",
    "unit",
    "audit_entry",
]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with an empty migrated schema, on each engine."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_schema")
        yield url
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        engine.dispose()


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The application bound to an empty database."""
    application = create_app(_config(db_url, tmp_path))

    @application.before_request
    def _fresh_request_globals() -> None:
        # This fixture's app context outlives every request, so ``g`` is shared between
        # requests (and clients); without this, Flask-Login's cached user and Flask-WTF's
        # CSRF token would leak from one request or client into the next.
        from flask import g

        g.pop("_login_user", None)
        g.pop("csrf_token", None)

    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client (CSRF stays on: use ``csrf_token``)."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner for ``flask`` commands."""
    return app.test_cli_runner()


def csrf_token(client: FlaskClient, url: str) -> str:
    """GET ``url`` and return the CSRF token from its first form."""
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


class AuthActions:
    """Log in and out through the real pages."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, username: str = "organiser", password: str = PASSWORD):  # type: ignore[no-untyped-def]
        token = csrf_token(self._client, "/login")
        return self._client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )

    def logout(self):  # type: ignore[no-untyped-def]
        token = csrf_token(self._client, "/")
        return self._client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    """Login helper bound to ``client``."""
    return AuthActions(client)


@pytest.fixture
def users(app: Flask) -> dict[str, object]:
    """An admin, an organiser and a viewer of 甘肃省局/兰州市局, and an organiser elsewhere."""
    from evaluation.accounts import create_user

    made = {
        "admin": create_user(actor="test", username="admin", password=PASSWORD, role="admin"),
        "organiser": create_user(
            actor="test",
            username="organiser",
            password=PASSWORD,
            role="organiser",
            unit_path="甘肃省局/兰州市局",
        ),
        "viewer": create_user(
            actor="test",
            username="viewer",
            password=PASSWORD,
            role="viewer",
            unit_path="甘肃省局/兰州市局",
        ),
        "other": create_user(
            actor="test",
            username="other",
            password=PASSWORD,
            role="organiser",
            unit_path="甘肃省局/天水市局",
        ),
    }
    db.session.commit()
    return made


SAMPLE_ROUND = """
title = "2026年度党风廉政建设责任制民主测评"
unit = "甘肃省局/兰州市局"
year = 2026
mode = "集中"
min_turnout = "2/3"

[[strata]]
name = "班子成员"
codes = 7

[[strata]]
name = "中层干部"
codes = 20

[[strata]]
name = "一般干部"
codes = 40

[[subjects]]
name = "市局领导班子"
form = "gansu-team"

[[subjects]]
name = "市局纪检组"
form = "gansu-discipline"

[[subjects]]
name = "张三"
form = "gansu-principal"
post = "局长"
staff_no = "A001"

[[subjects]]
name = "李四"
form = "gansu-member"
post = "副局长"
staff_no = "A002"

[[subjects]]
name = "张三（廉洁自律）"
form = "gansu-integrity"
staff_no = "A001"

[forms.gansu-integrity]
items = ["严格执行中央八项规定精神", "管好配偶子女和身边工作人员"]
"""


@pytest.fixture
def sample_round(app: Flask):  # type: ignore[no-untyped-def]
    """A draft round imported from ``SAMPLE_ROUND`` (five subjects, three strata)."""
    from evaluation.round_file import import_round, parse_round_text

    rnd = import_round(parse_round_text(SAMPLE_ROUND), actor="test")
    db.session.commit()
    return rnd
