"""Hardening: production cookie and HSTS defaults, no-store pages, a private SQLite file, safe
download and ZIP entry names."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Config
from evaluation import create_app
from evaluation.extensions import db
from evaluation.rounds import lifecycle, operations
from evaluation.transactions import write_transaction
from evaluation.web import safe_filename
from tests.helpers.databases import app_config
from tests.helpers.voters import open_with_codes
from tests.helpers.web import AuthActions, csrf_token

# --- production defaults -----------------------------------------------------------------------


def test_production_sends_secure_cookies_unless_told_otherwise(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    monkeypatch.delenv("REMEMBER_COOKIE_SECURE", raising=False)
    monkeypatch.setenv("EVALUATION_ENV", "production")
    values = Config.from_env()
    assert values["ENVIRONMENT"] == "production"
    assert values["SESSION_COOKIE_SECURE"] is True and values["REMEMBER_COOKIE_SECURE"] is True
    # A plain-HTTP intranet turns it off explicitly.
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")
    monkeypatch.setenv("REMEMBER_COOKIE_SECURE", "0")
    values = Config.from_env()
    assert values["SESSION_COOKIE_SECURE"] is False and values["REMEMBER_COOKIE_SECURE"] is False
    monkeypatch.setenv("EVALUATION_ENV", "development")
    monkeypatch.delenv("SESSION_COOKIE_SECURE")
    assert Config.from_env()["SESSION_COOKIE_SECURE"] is False


def test_production_pages_carry_hsts_and_a_secure_session_cookie(
    monkeypatch, tmp_path: Path, sqlite_template: Path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    monkeypatch.setenv("EVALUATION_ENV", "production")
    path = tmp_path / "prod.db"
    path.write_bytes(sqlite_template.read_bytes())
    config = {**app_config(f"sqlite:///{path}", tmp_path), "TESTING": False}
    config.pop("SESSION_COOKIE_SECURE", None)
    app = create_app(config)
    assert app.config["ENVIRONMENT"] == "production"
    client = app.test_client()
    page = client.get("/login", base_url="https://ceping.example.gov.cn")
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    # Behind a TLS-terminating proxy the app may see plain HTTP: production still says HSTS.
    assert "Strict-Transport-Security" in client.get("/login").headers
    cookies = [v for k, v in page.headers.items() if k == "Set-Cookie"]
    assert cookies and all("Secure" in c for c in cookies)
    with app.app_context():
        db.engine.dispose()


def test_development_over_http_sends_no_hsts(client: FlaskClient) -> None:
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = client.get("/login", base_url="https://localhost")
    assert "Strict-Transport-Security" in secure.headers


# --- no-store ----------------------------------------------------------------------------------


def _closed(rnd: Any) -> None:
    open_with_codes(rnd, 2)
    with write_transaction():
        lifecycle.close_round(rnd, actor="test")
    db.session.commit()


def test_organiser_pages_and_downloads_are_never_stored(
    app: Flask, client: FlaskClient, auth: AuthActions, users: Any, sample_round: Any
) -> None:
    _closed(sample_round)
    unit_id = sample_round.unit_id
    auth.login("admin")
    rid = sample_round.id
    urls = [
        f"/rounds/{rid}",
        f"/rounds/{rid}/results",
        f"/rounds/{rid}/codes",
        f"/rounds/{rid}/turnout",
        f"/rounds/{rid}/report.xlsx",
        f"/rounds/{rid}/export.toml",
        "/archive",
        "/archive/flags",
        "/archive/export.xlsx",
        f"/archive/unit/{unit_id}",
        "/users",
        "/",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response.headers["Cache-Control"], url


def test_static_files_may_be_cached(client: FlaskClient) -> None:
    static = Path(__file__).resolve().parent.parent / "evaluation" / "static"
    name = next(p.name for p in static.iterdir() if p.is_file())
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert "no-store" not in (response.headers.get("Cache-Control") or "")
    response.close()


# --- the SQLite file ---------------------------------------------------------------------------


def test_new_sqlite_database_is_private(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "evaluation.db"
    app = create_app(app_config(f"sqlite:///{path}", tmp_path))
    with app.app_context():
        db.create_all()
        db.session.execute(db.text("CREATE TABLE IF NOT EXISTS t (x)"))
        db.session.commit()
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if name.exists():
                assert stat.S_IMODE(name.stat().st_mode) == 0o600, name
        assert path.exists()
        db.engine.dispose()


def test_existing_world_readable_sqlite_database_is_made_private(
    tmp_path: Path, sqlite_template: Path
) -> None:
    path = tmp_path / "old.db"
    path.write_bytes(sqlite_template.read_bytes())
    path.chmod(0o644)
    app = create_app(app_config(f"sqlite:///{path}", tmp_path))
    with app.app_context():
        db.session.execute(db.text("SELECT 1"))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        db.session.remove()
        db.engine.dispose()


# --- file names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../x", "x"),
        ("测评码-1-../../x-第1批.zip", "测评码-1-____x-第1批.zip"),
        ("a\x00b\nc.pdf", "a_b_c.pdf"),
        ("..", "download"),
        ("C:\\evil\\x.pdf", "C_evil_x.pdf"),
        ("2026年度兰州/市局干部.pdf", "2026年度兰州_市局干部.pdf"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_zip_entries_are_safe_with_a_hostile_stratum_name(
    app: Flask, client: FlaskClient, auth: AuthActions, users: Any, sample_round: Any
) -> None:
    with write_transaction():
        hostile = operations.add_stratum(sample_round, actor="test", name="../../x", planned=3)
    rid = sample_round.id
    auth.login("organiser")
    token = csrf_token(client, f"/rounds/{rid}/codes")
    response = client.post(
        f"/rounds/{rid}/codes/issue",
        data={"csrf_token": token, "stratum": str(hostile.id), "count": "3", "format": "zip"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    disposition = response.headers["Content-Disposition"]
    assert ".." not in disposition and "%2F" not in disposition.upper()
    names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    assert len(names) == 2
    for name in names:
        assert "/" not in name and "\\" not in name and ".." not in name
        assert name.startswith(f"测评码-{rid}-")
