"""计划任务 inside the server: scheduled opens and closes happen with no cron and no command.

Each server process runs one daemon thread, started on the process's first request (so a
forking server starts one in each worker, never in the master). Every ``SCHEDULE_INTERVAL``
seconds, jittered, the thread asks the database with one cheap query whether any round's
opening or closing time has passed. Only then does it try to become *the* runner:

* on PostgreSQL, a session advisory lock (``pg_try_advisory_lock``) on a connection of its
  own — with several workers and several app servers on one database, one runs the due
  rounds and the others skip this turn;
* on SQLite (one host), an exclusive lock on a file beside the database.

The runner calls ``lifecycle.apply_due_schedules``, the same code ``flask round tick`` runs
(which stays, for cron users): every round moves in a write transaction of its own, read again
under the write lock, so not even two runners at once could open or close a round twice. A
round that cannot move (a paper stack still being entered, its box key with the 监票人) is
reported once per process in the log and left for its organiser.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.engine import make_url

from evaluation.extensions import db
from evaluation.models import Round, RoundState
from evaluation.rounds import lifecycle
from evaluation.rounds.state import SCRUTINEER_CUSTODY

log = logging.getLogger(__name__)

# The advisory lock key of the runner (any constant the application owns).
LOCK_KEY = 0x4D5A_5045  # "MZPE"
_started: dict[int, threading.Thread] = {}
_reported: set[str] = set()


def due_exists(now: datetime | None = None) -> bool:
    """True when some round's scheduled open or close has come (one indexed read)."""
    now = now or datetime.now(UTC)
    query = select(literal(1)).where(
        Round.box_custody != SCRUTINEER_CUSTODY,
        or_(
            and_(Round.state == RoundState.DRAFT, Round.opens_at <= now),
            and_(Round.state == RoundState.OPEN, Round.closes_at <= now),
        ),
    )
    try:
        return db.session.execute(query.limit(1)).first() is not None
    finally:
        db.session.rollback()  # end the read


@contextlib.contextmanager
def runner_lock(app: Flask) -> Iterator[bool]:
    """Hold the one-runner lock for the block; yields False when another process has it."""
    if db.engine.dialect.name == "postgresql":
        # A connection of its own, in autocommit: the lock belongs to its session, not to a
        # transaction, and nothing else runs on it.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            got = bool(conn.execute(select(func.pg_try_advisory_lock(LOCK_KEY))).scalar())
            try:
                yield got
            finally:
                if got:
                    try:
                        conn.execute(select(func.pg_advisory_unlock(LOCK_KEY)))
                    except Exception:
                        # Never back to the pool holding the lock: closing ends the session.
                        conn.invalidate()
                        raise
        return
    with open(_lock_path(app), "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_path(app: Flask) -> Path:
    database = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
    if database and database != ":memory:":
        return Path(f"{database}.scheduler-lock")
    return Path(app.instance_path) / "scheduler-lock"


def run_once(app: Flask, now: datetime | None = None) -> int:
    """One turn of the scheduler: the due rounds moved if this process won the lock; how many."""
    with app.app_context():
        if not due_exists(now):
            return 0
        with runner_lock(app) as runner:
            if not runner:
                return 0
            changed, failures = lifecycle.apply_due_schedules(now)
        for failure in failures:
            if failure not in _reported:
                _reported.add(failure)
                log.warning("计划任务未能完成：%s", failure)
        db.session.remove()
        return changed


def _loop(app: Flask, interval: float) -> None:
    while True:
        # Jitter keeps the workers of several servers from asking at the same instant.
        threading.Event().wait(interval * random.uniform(0.8, 1.2))
        try:
            run_once(app)
        except Exception:  # noqa: BLE001 - a failed turn must not stop the next one
            log.exception("计划任务出错，下一轮将重试")


def start(app: Flask) -> None:
    """Start this process's scheduler thread once (``SCHEDULE_INTERVAL`` 0 turns it off)."""
    interval = float(app.config.get("SCHEDULE_INTERVAL", 0) or 0)
    if interval <= 0:
        return
    pid = os.getpid()
    if pid in _started and _started[pid].is_alive():
        return
    thread = threading.Thread(
        target=_loop, args=(app, interval), name="round-scheduler", daemon=True
    )
    _started[pid] = thread
    thread.start()


def init_app(app: Flask) -> None:
    """Start the scheduler on the first request each process serves."""

    @app.before_request
    def _start_scheduler() -> None:
        if os.getpid() not in _started:
            start(app)
