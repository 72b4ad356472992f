"""计划任务 inside the server (evaluation/rounds/scheduler.py): due rounds open and close with no
cron, one runner at a time through the database, exactly once with several servers."""

from __future__ import annotations

import fcntl
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from benchmarks import harness
from evaluation.codes import codes
from evaluation.extensions import db
from evaluation.models import AuditEntry, Round, RoundState
from evaluation.rounds import scheduler
from evaluation.rounds.lifecycle import SCHEDULE_ACTOR


def _schedule(round_id: int, *, opens_in: float | None, closes_in: float | None) -> None:
    now = datetime.now(UTC)
    rnd = db.session.get_one(Round, round_id)
    rnd.opens_at = now + timedelta(seconds=opens_in) if opens_in is not None else None
    rnd.closes_at = now + timedelta(seconds=closes_in) if closes_in is not None else None
    db.session.commit()


def _state(round_id: int) -> RoundState:
    db.session.expire_all()
    state = db.session.execute(select(Round.state).where(Round.id == round_id)).scalar_one()
    db.session.rollback()
    return state


def _scheduled_moves(round_id: int) -> list[str]:
    rows = db.session.execute(
        select(AuditEntry.action).where(
            AuditEntry.actor == SCHEDULE_ACTOR,
            AuditEntry.action.in_(["round.open", "round.close"]),
        )
    ).scalars()
    moves = list(rows)
    db.session.rollback()
    return moves


def test_a_turn_opens_and_closes_due_rounds_and_nothing_else(app: Flask, sample_round) -> None:  # type: ignore[no-untyped-def]
    round_id = sample_round.id
    codes.issue_batch(sample_round, sample_round.strata[0], 3, actor="test")
    db.session.commit()
    _schedule(round_id, opens_in=3600, closes_in=7200)
    assert scheduler.run_once(app) == 0  # nothing due: not even the lock is taken
    assert _state(round_id) == RoundState.DRAFT

    _schedule(round_id, opens_in=-1, closes_in=3600)
    assert scheduler.run_once(app) == 1
    assert _state(round_id) == RoundState.OPEN
    assert scheduler.run_once(app) == 0

    _schedule(round_id, opens_in=-10, closes_in=-1)
    assert scheduler.run_once(app) == 1
    assert _state(round_id) == RoundState.CLOSED
    assert _scheduled_moves(round_id) == ["round.open", "round.close"]


def test_while_another_process_runs_a_turn_this_one_skips(app: Flask, sample_round) -> None:  # type: ignore[no-untyped-def]
    round_id = sample_round.id
    _schedule(round_id, opens_in=-1, closes_in=3600)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgresql"):
        other = create_engine(url)
        holder = other.connect()
        assert holder.execute(select(func.pg_try_advisory_lock(scheduler.LOCK_KEY))).scalar()

        def release() -> None:  # closed for real, not back to a pool still holding the lock
            holder.close()
            other.dispose()

    else:
        handle = open(scheduler._lock_path(app), "a+b")  # noqa: SIM115 - held across the turn
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        release = handle.close
    try:
        assert scheduler.run_once(app) == 0
        assert _state(round_id) == RoundState.DRAFT
    finally:
        release()
    assert scheduler.run_once(app) == 1
    assert _state(round_id) == RoundState.OPEN


def test_turned_off_by_setting_starts_no_thread(app: Flask) -> None:
    before = dict(scheduler._started)
    app.config["SCHEDULE_INTERVAL"] = 0
    scheduler.start(app)
    assert scheduler._started == before


@pytest.mark.slow
def test_two_servers_open_and_close_a_round_exactly_once_with_no_cron(
    app: Flask, sample_round, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Two app servers of two workers each on one database, no cron and no request: the
    round opens and closes on time, once each."""
    round_id = sample_round.id
    codes.issue_batch(sample_round, sample_round.strata[0], 3, actor="test")
    db.session.commit()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    env = {
        "SECRET_KEY": app.config["SECRET_KEY"],
        "BALLOTS_DIR": app.config["BALLOTS_DIR"],
        "SCHEDULE_INTERVAL": "0.3",
    }
    servers = [harness.Server(url, tmp_path, workers=2, env=env) for _ in range(2)]
    try:
        for server in servers:
            server.start()
        # Scheduled after both servers are up, so all four workers race for each move.
        _schedule(round_id, opens_in=1, closes_in=4)
        deadline = time.monotonic() + 120
        while _state(round_id) != RoundState.CLOSED and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        logs = "\n".join(s.log_text() for s in servers if s.process is not None)
        for server in servers:
            if server.process is not None:
                server.stop()
    assert _state(round_id) == RoundState.CLOSED, logs
    assert _scheduled_moves(round_id) == ["round.open", "round.close"], logs
    rnd = db.session.get_one(Round, round_id)
    assert rnd.seal
    if url.startswith("postgresql"):
        with db.engine.connect() as conn:
            boxes = conn.execute(
                text("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'ballot_box_%'")
            )
            assert boxes.scalar() == 0
