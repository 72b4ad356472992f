"""The application factory, in flaskr's manner: extensions, blueprints, commands, pages.

Every package registers plainly here: its blueprint (``views.bp``) and its command group
(``cli``). Nothing is looked up by name or imported late.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import click
from flask import Flask, abort, current_app, request
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from werkzeug.routing import IntegerConverter, Map

from config import INSTANCE_DIR, Config
from evaluation import backup, cli, web
from evaluation.accounts import cli as accounts_cli
from evaluation.accounts import views as accounts_views
from evaluation.accounts.access import counter_may_open
from evaluation.archive import cli as archive_cli
from evaluation.archive import views as archive_views
from evaluation.codes import cli as codes_cli
from evaluation.codes import views as codes_views
from evaluation.errors import Forbidden
from evaluation.extensions import csrf, db, limiter, login_manager, migrate
from evaluation.models import MAX_ID, Role
from evaluation.paper import views as paper_views
from evaluation.reports import cli as reports_cli
from evaluation.reports import views as reports_views
from evaluation.rounds import cli as rounds_cli
from evaluation.rounds import scheduler
from evaluation.rounds import views as rounds_views
from evaluation.serving import trust_proxies
from evaluation.voting import views as voting_views

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
    register_commands(app)
    web.init_app(app)
    trust_proxies(app)
    scheduler.init_app(app)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def register_extensions(app: Flask) -> None:
    """Bind every extension to the app."""
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

    timeout_ms = int(current_app.config["SQLITE_BUSY_TIMEOUT"] * 1000)
    database = engine.url.database or ""
    private_file = database not in ("", ":memory:") and not database.startswith("file:")
    if private_file:
        _create_private(Path(database))

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
        if private_file:
            _make_private(Path(database))

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _create_private(path: Path) -> None:
    """Create a new SQLite file readable by its owner only (it holds codes' hashes, votes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    _make_private(path)


def _make_private(path: Path) -> None:
    """Mode 0600 for the database and its -wal/-shm files (SQLite copies the file's mode)."""
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)
        except OSError:  # missing yet, or owned by another account: leave it
            continue


class RowIdConverter(IntegerConverter):
    """``<int:…>`` in every route: a number past the largest id (``MAX_ID``) matches no route.

    So ``/rounds/2147483648`` is a 404 on every engine instead of an integer overflow in
    PostgreSQL (SQLite would answer "not found" anyway).
    """

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def refuse_nul_bytes(app: Flask) -> None:
    """400 for a NUL character anywhere in the address, query or form fields.

    No text this product stores or searches holds one, and PostgreSQL refuses it in text, so
    it would otherwise fail deep inside a query. Uploaded files are not looked at.
    """

    @app.before_request
    def _no_nul() -> None:
        values = [request.path, *request.args.keys(), *request.args.values()]
        if request.method not in ("GET", "HEAD") and request.mimetype in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            values += [*request.form.keys(), *request.form.values()]
        if any("\x00" in value for value in values):
            abort(400, "提交的内容含有不允许的控制字符（NUL），请检查后重试。")


def restrict_counters(app: Flask) -> None:
    """A 计票员 account opens paper entry and its own account only (``access.counter_may_open``)."""

    @app.before_request
    def _counters_enter_paper_only() -> None:
        if (
            current_user.is_authenticated
            and current_user.role == Role.COUNTER
            and not counter_may_open(request.endpoint)
        ):
            raise Forbidden("计票员账号只能录入纸质票。")


def register_blueprints(app: Flask) -> None:
    """Attach the page areas (``<int:…>`` converters know the largest id first)."""
    app.url_map.converters["int"] = RowIdConverter
    refuse_nul_bytes(app)
    restrict_counters(app)
    for views in (
        accounts_views,
        rounds_views,
        codes_views,
        voting_views,
        reports_views,
        archive_views,
        paper_views,
    ):
        app.register_blueprint(views.bp)


# The ``flask`` commands (SPEC §11).
COMMANDS: tuple[click.Command, ...] = (
    cli.setup_command,
    cli.demo_command,
    cli.audit_cli,
    accounts_cli.user_cli,
    rounds_cli.round_cli,
    codes_cli.codes_cli,
    reports_cli.report_command,
    reports_cli.verify_command,
    archive_cli.archive_cli,
    backup.backup_command,
    backup.restore_command,
)


def register_commands(app: Flask) -> None:
    """Add the ``flask`` commands (SPEC §11)."""
    for command in COMMANDS:
        app.cli.add_command(command)
