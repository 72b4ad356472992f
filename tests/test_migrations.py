"""Upgrading a database: the sealed ballot box's migration refuses to strand an open round."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from evaluation import create_app
from evaluation.extensions import db
from tests.helpers.databases import BACKENDS, PG_URL, ROOT, app_config, fresh_side_database

BEFORE_BOX = "a073e0891a4c"


@pytest.mark.parametrize("engine", BACKENDS)
def test_upgrade_with_a_round_open_is_refused_and_changes_nothing(
    engine: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from flask_migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}" if engine == "sqlite" else PG_URL
    if engine == "postgresql":
        url = fresh_side_database("migrations")
    app = create_app(app_config(url, tmp_path))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision=BEFORE_BOX)
        db.engine.dispose()
    raw = create_engine(url)
    with raw.begin() as conn:
        conn.execute(text("INSERT INTO unit (id, name, path) VALUES (1, '某局', '某局')"))
        conn.execute(
            text(
                "INSERT INTO round (id, title, unit_id, year, mode, kind, min_turnout, state, "
                "forms, created_at) VALUES (7, '年度测评', 1, 2026, '集中', '本级自测', '2/3', "
                "'open', '{}', CURRENT_TIMESTAMP)"
            )
        )
    with app.app_context():
        try:
            # Flask-Migrate prints the reason on one line and exits 1, as `flask db upgrade` does.
            with pytest.raises(SystemExit):
                upgrade(directory=str(ROOT / "migrations"))
        finally:
            db.session.remove()
            db.engine.dispose()
    printed = capfd.readouterr().err
    assert "7“年度测评” 正在进行中" in printed and "数据库未作任何改动" in printed
    with raw.begin() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == BEFORE_BOX
        conn.execute(text("UPDATE round SET state = 'closed'"))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))  # once it is closed, the upgrade goes on
        db.engine.dispose()
    with raw.begin() as conn:
        assert conn.execute(text("SELECT box_custody FROM round")).scalar() == "server"
    raw.dispose()
