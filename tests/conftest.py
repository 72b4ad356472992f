"""Fixtures: an app per test on SQLite and (when TEST_DATABASE_URL is set) PostgreSQL.

Helpers the tests share live in ``tests/helpers/``; no test module imports another.

Every test that asks for ``app`` (or anything built on it) runs once per database engine. The
schema is built by the real migrations (``flask db upgrade``) once per engine and session;
each test then starts from empty tables.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text

from evaluation import create_app
from evaluation.extensions import db
from tests.helpers.databases import (
    BACKENDS,
    PG_URL,
    TABLES,
    app_config,
    drop_ballot_boxes,
    migrate,
    worker_database_url,
)
from tests.helpers.web import PASSWORD, SAMPLE_ROUND, AuthActions


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with the migrated, empty schema; each test copies it."""
    tmp = tmp_path_factory.mktemp("sqlite-template")
    path = tmp / "template.db"
    migrate(f"sqlite:///{path}", tmp)
    return path


@pytest.fixture(scope="session")
def postgres_schema(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PostgreSQL database emptied and migrated once per session (one per xdist worker)."""
    url = worker_database_url(PG_URL)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate(url, tmp_path_factory.mktemp("pg"))
    return url


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
            drop_ballot_boxes(conn)
        engine.dispose()


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The application bound to an empty database."""
    application = create_app(app_config(db_url, tmp_path))

    def _fresh_request_globals() -> None:
        # This fixture's app context outlives every request, so ``g`` is shared between
        # requests (and clients); without this, Flask-Login's cached user and Flask-WTF's
        # CSRF token would leak from one request or client into the next.
        from flask import g

        g.pop("_login_user", None)
        g.pop("csrf_token", None)

    # First of all: the app's own hooks (a 计票员 is kept to paper entry) read the user too.
    application.before_request_funcs.setdefault(None, []).insert(0, _fresh_request_globals)

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


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    """Login helper bound to ``client``."""
    return AuthActions(client)


@pytest.fixture
def users(app: Flask) -> dict[str, object]:
    """An admin, an organiser and a viewer of 甘肃省局/兰州市局, and an organiser elsewhere."""
    from evaluation.accounts.operations import create_user

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


@pytest.fixture
def sample_round(app: Flask):  # type: ignore[no-untyped-def]
    """A draft round imported from ``SAMPLE_ROUND`` (five subjects, three strata)."""
    from evaluation.rounds.round_file import import_round, parse_round_text

    rnd = import_round(parse_round_text(SAMPLE_ROUND), actor="test")
    db.session.commit()
    return rnd
