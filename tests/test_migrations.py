"""Upgrading a database: the sealed ballot box's migration refuses to strand an open round."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, text

from evaluation import create_app
from evaluation.extensions import db
from tests.helpers.databases import BACKENDS, ROOT, app_config, fresh_side_database

BEFORE_BOX = "a073e0891a4c"


def _database_at(revision: str, engine: str, tmp_path: Path) -> tuple[Flask, Engine]:
    """A database migrated up to ``revision`` holding one unit (id 1, 某局), its app, and a
    plain engine on it for writing rows as they stood then."""
    from flask_migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    if engine == "postgresql":
        url = fresh_side_database("migrations")
    app = create_app(app_config(url, tmp_path))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision=revision)
        db.engine.dispose()
    raw = create_engine(url)
    with raw.begin() as conn:
        conn.execute(text("INSERT INTO unit (id, name, path) VALUES (1, '某局', '某局')"))
    return app, raw


@pytest.mark.parametrize("engine", BACKENDS)
def test_upgrade_with_a_round_open_is_refused_and_changes_nothing(
    engine: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from flask_migrate import upgrade

    app, raw = _database_at(BEFORE_BOX, engine, tmp_path)
    with raw.begin() as conn:
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


BEFORE_RULE_COLUMNS = "f6c8d0e2a4b6"


@pytest.mark.parametrize("engine", BACKENDS)
def test_archive_entries_get_their_rule_columns_from_their_figures(
    engine: str, tmp_path: Path
) -> None:
    """Issue 18's columns are filled for entries archived before them: the shares and the
    weighting from the figures, the close time from the figures or, where older figures lack
    it, from the round."""
    from flask_migrate import upgrade

    app, raw = _database_at(BEFORE_RULE_COLUMNS, engine, tmp_path)
    with raw.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO round (id, title, unit_id, year, mode, kind, min_turnout, state, "
                "forms, created_at, closed_at) VALUES (7, '年度测评', 1, 2024, '集中', '本级自测', "
                "'2/3', 'archived', '{}', CURRENT_TIMESTAMP, '2024-12-20 08:00:00+00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO subject (id, round_id, name, form_id, unit_id, post, position) "
                "VALUES (1, 7, '班子', 'gansu-team', 1, '', 0), (2, 7, '张三', 'gansu-member', "
                "1, '', 1)"
            )
        )
        figures = [
            '{"satisfaction_rate": "2/3", "trust_rate": "1/2", "weighted": true, '
            '"closed_at": "2024-12-21T09:30:00+00:00"}',
            '{"satisfaction_rate": "1/3", "trust_rate": null, "weighted": false}',
        ]
        for entry_id, subject_id, data in ((1, 1, figures[0]), (2, 2, figures[1])):
            conn.execute(
                text(
                    "INSERT INTO archive_entry (id, round_id, subject_id, unit_id, year, "
                    "subject_name, form_id, figures, valid_round, seal, created_at) VALUES "
                    "(:id, 7, :subject, 1, 2024, '某', 'gansu-team', :figures, true, 'x', "
                    "CURRENT_TIMESTAMP)"
                ),
                {"id": entry_id, "subject": subject_id, "figures": data},
            )
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        rows = db.session.execute(
            text(
                "SELECT id, closed_at, satisfaction_rate, trust_rate, weighted "
                "FROM archive_entry ORDER BY id"
            )
        ).all()
        db.session.remove()
        db.engine.dispose()
    raw.dispose()
    (first, second) = rows
    assert first[2:] == ("2/3", "1/2", True)
    assert second[2:] == ("1/3", None, False)
    closed = [str(r[1])[:19] for r in rows]
    assert closed == ["2024-12-21 09:30:00", "2024-12-20 08:00:00"]
