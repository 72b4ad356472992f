"""One lifecycle: every path closes a round through ``rounds.lifecycle``, under the write lock,
and the close leaves no pre-close row version behind (SPEC §5.3, the ``round tick`` fix)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import text

from evaluation.extensions import db
from evaluation.models import Round, RoundState
from evaluation.rounds import lifecycle
from evaluation.transactions import in_write_transaction, write_transaction
from tests.helpers.databases import BACKENDS
from tests.helpers.voters import Voter, full_answers, open_with_codes
from tests.helpers.web import AuthActions, csrf_token

# PostgreSQL keeps a deleted row version until VACUUM; SQLite overwrites it (secure_delete).
POSTGRESQL = BACKENDS[1]
# PostgreSQL's tuple header bits (htup_details.h).
XMAX_LOCK_ONLY = 0x0080
XMAX_INVALID = 0x0800


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every close, with what held while it ran and whether the scrub followed its commit."""
    seen: list[dict[str, Any]] = []
    real_close, real_scrub = lifecycle.close_round, lifecycle.scrub_dead_rows

    def close(rnd: Round, *, actor: str, key: bytes | None = None) -> None:
        options = db.session.connection().get_execution_options()
        seen.append(
            {
                "actor": actor,
                "in_transaction": in_write_transaction(),
                "write_lock": options.get("write", False),
                "scrubbed": False,
            }
        )
        real_close(rnd, actor=actor, key=key)

    def scrub() -> None:
        seen[-1]["scrubbed"] = not in_write_transaction()
        real_scrub()

    monkeypatch.setattr(lifecycle, "close_round", close)
    monkeypatch.setattr(lifecycle, "scrub_dead_rows", scrub)
    return seen


def _due(rnd: Round) -> None:
    rnd.closes_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()


def _vote_some(client: Any, rnd: Round, count: int = 4) -> list[str]:
    """Open the round, vote with ``count`` 一般干部 codes; return the 中层干部 codes left."""
    issued = open_with_codes(rnd, count)
    for code in issued["一般干部"]:
        Voter(client).vote(code, full_answers(rnd))
    return issued["中层干部"]


def _close_from_page(client: Any, auth: AuthActions, rnd: Round) -> None:
    auth.login()
    token = csrf_token(client, f"/rounds/{rnd.id}/close")
    response = client.post(f"/rounds/{rnd.id}/close", data={"csrf_token": token})
    assert response.status_code == 303


def _close_from_cli(runner: FlaskCliRunner, rnd: Round) -> None:
    result = runner.invoke(args=["round", "close", str(rnd.id)])
    assert result.exit_code == 0, result.output


def _tick(runner: FlaskCliRunner, rnd: Round) -> None:
    _due(rnd)
    result = runner.invoke(args=["round", "tick"])
    assert result.exit_code == 0, result.output
    assert "按计划变更了 1 个测评活动" in result.output


def _voter_arrives(client: Any, rnd: Round, code: str) -> None:
    _due(rnd)
    assert client.get(f"/v/{code}").status_code == 403  # 测评已结束


@pytest.mark.parametrize("path", ["page", "command", "tick", "voter"])
def test_every_path_closes_through_the_lifecycle_under_the_write_lock(
    app: Flask, client, runner, auth, users, sample_round, closes, path: str
) -> None:
    unused = _vote_some(client, sample_round)
    if path == "page":
        _close_from_page(client, auth, sample_round)
    elif path == "command":
        _close_from_cli(runner, sample_round)
    elif path == "tick":
        _tick(runner, sample_round)
    else:
        _voter_arrives(client, sample_round, unused[0])
    assert closes == [
        {
            "actor": {"page": "organiser", "command": "命令行"}.get(path, "计划任务"),
            "in_transaction": True,
            "write_lock": True,
            "scrubbed": True,
        }
    ]
    db.session.expire_all()
    rnd = db.session.get_one(Round, sample_round.id)
    assert rnd.state == RoundState.CLOSED and rnd.seal and rnd.sealed_result


def test_a_close_outside_the_commit_point_is_refused(app: Flask, sample_round) -> None:
    with write_transaction():
        lifecycle.open_round(sample_round, actor="test")
    with pytest.raises(RuntimeError, match="write_transaction"):
        lifecycle.close_round(sample_round, actor="test")
    db.session.rollback()
    assert db.session.get_one(Round, sample_round.id).state == RoundState.OPEN


def test_a_failed_close_rolls_back_and_does_not_scrub(
    app: Flask, client, sample_round, closes, monkeypatch: pytest.MonkeyPatch
) -> None:
    _vote_some(client, sample_round)

    def broken_seal(_rnd: Round) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(lifecycle, "seal_round", broken_seal)
    with pytest.raises(OSError), write_transaction():
        lifecycle.close_round(sample_round, actor="test")
    assert closes[0]["scrubbed"] is False
    db.session.expire_all()
    assert db.session.get_one(Round, sample_round.id).state == RoundState.OPEN


@pytest.mark.parametrize("db_url", [POSTGRESQL], indirect=True)
def test_round_tick_leaves_no_pre_close_row_version_on_postgresql(
    app: Flask, client, runner, sample_round
) -> None:
    _vote_some(client, sample_round, 6)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
    _tick(runner, sample_round)
    with db.engine.connect() as conn:
        for table in ("ballot", "answer", "receipt"):
            pages = conn.execute(
                text(f"SELECT pg_relation_size('{table}') / current_setting('block_size')::int")
            ).scalar_one()
            versions = dead = 0
            for page in range(pages):
                rows = conn.execute(
                    text(
                        "SELECT lp_flags, t_xmax, t_infomask"
                        " FROM heap_page_items(get_raw_page(:t, :p))"
                    ),
                    {"t": table, "p": page},
                ).all()
                normal = [r for r in rows if r.lp_flags == 1]
                versions += len(normal)
                # deleted (xmax set, valid, and not just a row lock taken by a foreign key check)
                dead += sum(
                    1
                    for r in normal
                    if int(r.t_xmax or 0) != 0
                    and not r.t_infomask & (XMAX_LOCK_ONLY | XMAX_INVALID)
                )
            live = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            assert live > 0
            assert (versions, dead) == (live, 0), f"{table}: pre-close row versions remain"
