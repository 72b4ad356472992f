"""匿名民主测评系统 — the application factory."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

from config import INSTANCE_DIR, Config

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the application."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder="static",
        instance_path=str(INSTANCE_DIR),
    )
    app.config.from_mapping(Config.from_env())
    if config:
        app.config.update(config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    _check_secret_key(app)

    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_security_headers(app)
    register_template_helpers(app)
    from evaluation.serving import trust_proxies

    trust_proxies(app)
    return app


def _check_secret_key(app: Flask) -> None:
    """Refuse to run outside development without a real secret key.

    In development a random key is generated once and kept in ``instance/secret_key``, so
    sessions and issued codes survive a restart and no two installations share a key.
    """
    if app.config.get("SECRET_KEY"):
        return
    if app.config.get("TESTING"):
        app.config["SECRET_KEY"] = "testing-only-not-secret"
        return
    if app.config.get("ENVIRONMENT") == "development":
        app.config["SECRET_KEY"] = _development_key(Path(app.instance_path) / "secret_key")
        return
    raise RuntimeError(
        "生产环境必须设置 SECRET_KEY 环境变量（例如 export SECRET_KEY=$(openssl rand -hex 32)）"
    )


def _development_key(path: Path) -> str:
    import os
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def register_extensions(app: Flask) -> None:
    """Bind every extension to the app."""
    from evaluation import models  # noqa: F401  (registers the tables)
    from evaluation.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = "请先登录。"
    login_manager.login_message_category = "warning"
    with app.app_context():
        _configure_engine(db.engine)


# A pooled connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 1.0


def _configure_engine(engine: Engine) -> None:
    """Every engine: ping idle connections. SQLite: WAL, a busy timeout, foreign keys."""

    @event.listens_for(engine, "checkin")
    def _note_idle(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # SQLAlchemy's own pool_pre_ping pings on every checkout; a connection returned a
        # moment ago by the previous request cannot have gone stale in between, and one that
        # did anyway fails its request with a 503 that invalidates the whole pool.
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # noqa: BLE001 - any failure means: use a new connection
            raise DisconnectionError("an idle pooled connection failed its ping") from exc

    if engine.dialect.name != "sqlite":
        return

    from flask import current_app

    timeout_ms = int(current_app.config["SQLITE_BUSY_TIMEOUT"] * 1000)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Python's sqlite3 opens transactions lazily and lets SQLAlchemy issue BEGIN; we take
        # control so a write transaction can start with BEGIN IMMEDIATE when it must.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Deleted ballot rows are overwritten, not left in free pages (SPEC §5.3).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def register_blueprints(app: Flask) -> None:
    """Attach the page areas."""
    from evaluation.accounts import bp as accounts_bp
    from evaluation.organiser import bp as organiser_bp

    app.register_blueprint(accounts_bp)
    app.register_blueprint(organiser_bp)
    app.register_blueprint(__import__("evaluation.issuing", fromlist=["bp"]).bp)
    for name in ("voting", "results", "archive"):
        try:
            module = __import__(f"evaluation.{name}", fromlist=["bp"])
        except ModuleNotFoundError as exc:
            if exc.name != f"evaluation.{name}":
                raise
            continue
        app.register_blueprint(module.bp)


def register_errorhandlers(app: Flask) -> None:
    """Map domain errors and HTTP errors to Chinese pages."""
    from evaluation.errors import init_app

    init_app(app)


def register_commands(app: Flask) -> None:
    """Add the ``flask`` command groups."""
    from evaluation.cli import init_app

    init_app(app)


def register_template_helpers(app: Flask) -> None:
    """Values every template may use."""
    from evaluation.rounds import state_label

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        return {"url_map_endpoints": set(app.view_functions), "state_label": state_label}


def register_security_headers(app: Flask) -> None:
    """Headers every page gets; voting pages add stricter ones in ``evaluation.voting``."""

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        return response

    logging.getLogger("werkzeug").addFilter(_code_filter())


def _code_filter() -> logging.Filter:
    from evaluation.logfilter import RedactCodes

    return RedactCodes()
