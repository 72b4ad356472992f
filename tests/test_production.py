"""Production behaviour: the database going away and coming back, shared rate-limit counters,
client addresses behind a reverse proxy.

The database outage is real: the app talks to PostgreSQL through a small TCP relay that the test
cuts (every open connection dropped, new ones refused) and restores.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from evaluation import create_app
from evaluation.codes.codes import new_code
from evaluation.extensions import db
from tests.helpers.databases import PG_URL, TABLES, app_config, drop_ballot_boxes
from tests.helpers.web import PASSWORD, csrf_token, failed_logins

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
needs_pg = pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL 未设置：跳过 PostgreSQL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL 未设置：跳过 Redis")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    token = csrf_token(client, "/login")
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def _assert_unavailable_page(response: Any) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "服务暂不可用" in body and "数据库暂时无法连接" in body
    assert "Traceback" not in body and "psycopg" not in body and "sqlite" not in body.lower()
    assert response.headers["Retry-After"]


# --- nothing listening ------------------------------------------------------------------------


def test_database_nowhere_gives_a_chinese_503_not_a_500(tmp_path: Path) -> None:
    """A PostgreSQL address where nothing listens: a clear 503 page, pages without data work."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/nowhere"
    application = create_app(app_config(url, tmp_path))
    client = application.test_client()
    assert client.get("/login").status_code == 200  # needs no database
    _assert_unavailable_page(_login(client, "admin"))
    with application.app_context():
        db.engine.dispose()


# --- a relay that can drop PostgreSQL and bring it back ------------------------------------------


class Relay:
    """A TCP relay 127.0.0.1:port → target; ``cut`` drops everything, ``restore`` resumes."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def restore(self) -> None:
        """Accept connections again on the same port."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and drop every open one (like a database that died)."""
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def relayed_app(postgres_schema: str, tmp_path: Path) -> Iterator[tuple[Flask, Relay]]:
    """An app on this worker's migrated PostgreSQL database, reached through a relay."""
    real = make_url(postgres_schema)
    relay = Relay((real.host or "127.0.0.1", real.port or 5432))
    relay.restore()
    url = real.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    engine = create_engine(postgres_schema)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        drop_ballot_boxes(conn)
    application = create_app(app_config(url, tmp_path))
    with application.app_context():
        from evaluation.accounts.operations import create_user

        create_user(
            actor="test",
            username="organiser",
            password=PASSWORD,
            role="organiser",
            unit_path="甘肃省局/兰州市局",
        )
        db.session.commit()
        db.session.remove()
    try:
        yield application, relay
    finally:
        relay.cut()
        with application.app_context():
            db.engine.dispose()
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
            drop_ballot_boxes(conn)
        engine.dispose()


@needs_pg
def test_postgresql_going_away_gives_503_and_service_returns_with_it(relayed_app) -> None:  # type: ignore[no-untyped-def]
    application, relay = relayed_app
    client = application.test_client()
    assert _login(client, "organiser").status_code == 302
    assert client.get("/").status_code == 200  # pooled connections are now open

    relay.cut()
    # A signed-in page: loading the user fails too, and the error page must not try again.
    _assert_unavailable_page(client.get("/"))
    _assert_unavailable_page(client.get("/"))
    other = application.test_client()
    _assert_unavailable_page(_login(other, "organiser"))
    phone = application.test_client()
    _assert_unavailable_page(phone.get(f"/v/{new_code()}"))  # a voting page, reads only

    relay.restore()
    # The failed requests invalidated the pool: no error after the database returns.
    page = client.get("/")
    assert page.status_code == 200 and "organiser" in page.get_data(as_text=True)
    assert _login(other, "organiser").status_code == 302


@needs_pg
def test_postgresql_restarted_while_idle_costs_no_request(relayed_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Nobody used the app while the database was away: its dead pooled connections are pinged
    and replaced before use, so the first request afterwards succeeds."""
    import evaluation.app

    monkeypatch.setattr(evaluation.app, "PING_AFTER_IDLE_SECONDS", 0.2)
    application, relay = relayed_app
    client = application.test_client()
    assert _login(client, "organiser").status_code == 302
    assert client.get("/").status_code == 200  # a pooled connection is now open
    relay.cut()  # the pooled connection dies with no request in flight
    relay.restore()
    time.sleep(0.3)
    page = client.get("/")
    assert page.status_code == 200 and "organiser" in page.get_data(as_text=True)


def test_sqlite_lock_wait_running_out_is_a_503_and_passes(tmp_path: Path, sqlite_template) -> None:  # type: ignore[no-untyped-def]
    """A writer that cannot get SQLite's lock in time sees 503, and succeeds once it is free."""
    import shutil
    import sqlite3

    from evaluation.transactions import begin_write

    path = tmp_path / "locked.db"
    shutil.copy(sqlite_template, path)
    application = create_app(
        dict(app_config(f"sqlite:///{path}", tmp_path), SQLITE_BUSY_TIMEOUT=0.2)
    )

    @application.post("/_write")
    def _write() -> str:
        begin_write()
        db.session.execute(
            text("INSERT INTO unit (name, path) VALUES ('测试', :p)"), {"p": uuid.uuid4().hex}
        )
        db.session.commit()
        return "ok"

    application.config["WTF_CSRF_ENABLED"] = False  # a test-only route without a form
    client = application.test_client()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        _assert_unavailable_page(client.post("/_write"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert client.post("/_write").status_code == 200
    with application.app_context():
        db.engine.dispose()


# --- rate limits shared through Redis -----------------------------------------------------------


def _limited_config(
    tmp_path: Path, sqlite_template: Path, storage: str, prefix: str, **extra: Any
) -> dict[str, Any]:
    import shutil

    path = tmp_path / f"{uuid.uuid4().hex}.db"
    shutil.copy(sqlite_template, path)
    return dict(
        app_config(f"sqlite:///{path}", tmp_path),
        RATELIMIT_STORAGE_URI=storage,
        RATELIMIT_KEY_PREFIX=prefix,
        LOGIN_RATE_LIMIT="3 per minute",
        **extra,
    )


def _limited_app(
    tmp_path: Path, sqlite_template: Path, storage: str, prefix: str, **extra: Any
) -> Flask:
    return create_app(_limited_config(tmp_path, sqlite_template, storage, prefix, **extra))


OTHER_SERVER = """
import json, sys
from evaluation import create_app
from tests.helpers.web import failed_logins
app = create_app(json.loads(sys.argv[1]))
print(json.dumps(failed_logins(app.test_client(), int(sys.argv[2]))))
"""


def _failed_logins_in_another_process(config: dict[str, Any], attempts: int) -> list[int]:
    """Another app server: a separate process, sharing nothing with this one but the stores."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", OTHER_SERVER, json.dumps(config), str(attempts)],
        cwd=root,
        env=dict(os.environ, PYTHONPATH=str(root)),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@needs_redis
def test_login_limit_is_shared_by_app_servers_through_redis(
    tmp_path: Path, sqlite_template
) -> None:  # type: ignore[no-untyped-def]
    prefix = f"test-{uuid.uuid4().hex}"
    config = _limited_config(tmp_path, sqlite_template, REDIS_URL, prefix)
    application = create_app(config)
    client = application.test_client()
    try:
        # Two failures here and one on the other server use up the one limit of three …
        assert failed_logins(client, 2) == [401, 401]
        assert _failed_logins_in_another_process(config, 2) == [401, 429]
        # … and this server refuses too, with the Chinese page.
        refused = _login(client, "nobody", "wrong-password")
        assert refused.status_code == 429 and "操作过于频繁" in refused.get_data(as_text=True)
    finally:
        import redis

        store = redis.Redis.from_url(REDIS_URL)
        keys = list(store.scan_iter(f"*{prefix}*"))
        for key in keys:
            store.delete(key)
        store.close()
        with application.app_context():
            db.engine.dispose()
    assert keys, "the counters were not kept in Redis"


def test_in_memory_counters_are_per_server(tmp_path: Path, sqlite_template) -> None:  # type: ignore[no-untyped-def]
    """Why production needs Redis: with memory:// each server process counts on its own."""
    config = _limited_config(tmp_path, sqlite_template, "memory://", f"m-{uuid.uuid4().hex}")
    application = create_app(config)
    assert failed_logins(application.test_client(), 3) == [401, 401, 401]
    assert _failed_logins_in_another_process(config, 3) == [401, 401, 401]
    with application.app_context():
        db.engine.dispose()


# --- client addresses behind a reverse proxy -----------------------------------------------------


def _attempts_from(client: FlaskClient, forwarded_for: str, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        token = csrf_token(client, "/login")
        response = client.post(
            "/login",
            data={"username": "nobody", "password": "wrong-password", "csrf_token": token},
            headers={"X-Forwarded-For": forwarded_for},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        statuses.append(response.status_code)
    return statuses


def test_behind_a_proxy_each_client_address_has_its_own_limit(
    tmp_path: Path, sqlite_template
) -> None:  # type: ignore[no-untyped-def]
    application = _limited_app(
        tmp_path, sqlite_template, "memory://", uuid.uuid4().hex, TRUSTED_PROXIES=1
    )
    client = application.test_client()
    assert _attempts_from(client, "10.0.0.1", 4) == [401, 401, 401, 429]
    assert _attempts_from(client, "10.0.0.2", 1) == [401]
    with application.app_context():
        db.engine.dispose()


def test_without_a_proxy_a_forged_header_changes_nothing(tmp_path: Path, sqlite_template) -> None:  # type: ignore[no-untyped-def]
    application = _limited_app(tmp_path, sqlite_template, "memory://", uuid.uuid4().hex)
    client = application.test_client()
    statuses = _attempts_from(client, "10.0.0.1", 3) + _attempts_from(client, "10.9.9.9", 1)
    assert statuses == [401, 401, 401, 429]
    with application.app_context():
        db.engine.dispose()


def test_serve_settings_keep_codes_out_of_the_access_log() -> None:
    """gunicorn.conf.py: the redacting logger, sane timeouts, workers from the CPU count."""
    import runpy

    settings = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    assert settings["logger_class"] == "evaluation.serving.RedactingLogger"
    assert settings["workers"] >= 2 and settings["timeout"] > 0

    from gunicorn.config import Config

    from evaluation.serving import RedactingLogger

    logger = RedactingLogger(Config())

    class Response:
        status = "302 FOUND"
        sent = 0
        headers: list[tuple[str, str]] = []
        response_length = 0

    class Request:
        headers: list[tuple[str, str]] = []

    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/v/SECRETCODE123",
        "PATH_INFO": "/v/SECRETCODE123",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.5",
        "HTTP_REFERER": "https://x/v/SECRETCODE123",
    }
    from datetime import timedelta

    atoms = logger.atoms(Response(), Request(), environ, timedelta(milliseconds=3))
    line = " ".join(str(v) for v in atoms.values())
    assert "SECRETCODE123" not in line and "/v/[已隐藏]" in line
    assert re.search(r"10\.0\.0\.5", line)


def test_redis_down_limits_still_count_and_nothing_fails(tmp_path: Path, sqlite_template) -> None:  # type: ignore[no-untyped-def]
    """With the counter store unreachable, each process counts on its own: no 500, limits hold."""
    nowhere = f"redis://127.0.0.1:{_free_port()}/0"
    config = _limited_config(
        tmp_path, sqlite_template, nowhere, uuid.uuid4().hex, CODE_ENTRY_RATE_LIMIT="3 per minute"
    )
    application = create_app(config)
    client = application.test_client()
    address = {"REMOTE_ADDR": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"}
    statuses = [client.get("/v/not-a-code", environ_base=address).status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    token = csrf_token(client, "/login")
    response = client.post(
        "/login",
        data={"username": "nobody", "password": "wrong-password", "csrf_token": token},
        environ_base=address,
    )
    assert response.status_code == 401
    with application.app_context():
        db.engine.dispose()


def test_the_entry_point_hides_the_built_application_from_the_collector(tmp_path: Path) -> None:
    """``wsgi`` freezes the objects of the application it built (gc.freeze): later full
    collections, and the shutdown of every ``flask`` command, no longer walk them."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", "import gc, wsgi; print(gc.get_freeze_count())"],
        cwd=root,
        env=dict(
            os.environ,
            PYTHONPATH=str(root),
            DATABASE_URL=f"sqlite:///{tmp_path / 'frozen.db'}",
            INSTANCE_DIR=str(tmp_path / "instance"),
            EVALUATION_ENV="development",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip().splitlines()[-1]) > 50_000
