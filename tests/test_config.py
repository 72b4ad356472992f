"""Configuration: the secret key rule, SQLite's WAL mode and busy timeout, security headers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from evaluation import create_app
from evaluation.extensions import db


def test_production_refuses_to_start_without_secret_key(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(
            {
                "ENVIRONMENT": "production",
                "SECRET_KEY": None,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
            }
        )


def test_development_key_is_random_and_kept(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from evaluation.app import _development_key

    first = _development_key(tmp_path / "secret_key")
    assert len(first) == 64 and first == _development_key(tmp_path / "secret_key")
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert first != _development_key(tmp_path / "other_key")


def test_sqlite_runs_in_wal_mode_with_busy_timeout(app) -> None:  # type: ignore[no-untyped-def]
    if db.engine.dialect.name != "sqlite":
        assert db.engine.dialect.name == "postgresql"
        return
    assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert db.session.execute(text("PRAGMA busy_timeout")).scalar() == 15000
    assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert db.session.execute(text("PRAGMA secure_delete")).scalar() == 1


def test_pages_carry_security_headers(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/login")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "http" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"


def test_chinese_json_is_stored_readable(app, sample_round) -> None:  # type: ignore[no-untyped-def]
    raw = db.session.execute(
        text("SELECT forms FROM round WHERE id = :i"), {"i": sample_round.id}
    ).scalar()
    stored = raw if isinstance(raw, str) else __import__("json").dumps(raw, ensure_ascii=False)
    assert "优秀" in stored and "\\u" not in stored
