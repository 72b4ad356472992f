"""备份与恢复: `flask backup OUT` / `flask restore IN` round-trip a whole database.

Every source engine is restored into every target engine (SQLite → SQLite, PostgreSQL →
PostgreSQL, SQLite → PostgreSQL, PostgreSQL → SQLite): the same rows with exact values, ballots
in their stored (random) order, the audit chain intact, sequences moved on. A non-empty target,
a damaged file or a row the database rejects leaves the target exactly as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import JSON, DateTime, func, literal_column, select

from evaluation import audit, create_app
from evaluation.extensions import db
from evaluation.models import (
    Answer,
    ArchiveAnnotation,
    ArchiveEntry,
    AuditEntry,
    Ballot,
    Code,
    CodeBatch,
    CodeState,
    Receipt,
    Round,
    RoundState,
    User,
)
from evaluation.rounds import lifecycle, operations
from evaluation.transactions import write_transaction
from tests.helpers.databases import BACKENDS, app_config, fresh_side_database, migrate

# --- a populated source database --------------------------------------------------------------


def _populate(sample_round: Round) -> list[str]:
    """Codes, ballots, receipts, a closed round, an archive entry with an annotation.

    Returns the plaintext codes, which exist only here (the database keeps keyed hashes).
    """
    rnd = sample_round
    plaintexts: list[str] = []
    for stratum in rnd.strata:
        batch = CodeBatch(round_id=rnd.id, stratum_id=stratum.id, count=4, issued_by="test")
        db.session.add(batch)
        db.session.flush()
        for _ in range(4):
            plain = secrets.token_urlsafe(9)
            plaintexts.append(plain)
            db.session.add(
                Code(
                    round_id=rnd.id,
                    stratum_id=stratum.id,
                    batch_id=batch.id,
                    digest=hashlib.sha256(b"k" + plain.encode()).hexdigest(),
                )
            )
    # The last stratum rates the first two subjects only (a row in ``stratum_subject``).
    limited = rnd.strata[-1]
    operations.set_stratum_subjects(rnd, limited, [s.id for s in rnd.subjects[:2]], actor="test")
    lifecycle.open_round(rnd, actor="test")
    db.session.commit()
    grades = {"gansu-team": "excellent", "gansu-discipline": "pass"}
    codes = db.session.execute(select(Code).order_by(Code.id)).scalars().all()
    for number, code in enumerate(codes[:9]):
        code.state = CodeState.USED
        ballot = Ballot(round_id=rnd.id, stratum_id=code.stratum_id)
        db.session.add(ballot)
        db.session.flush()
        for subject in rnd.subjects:
            if code.stratum_id == limited.id and subject not in limited.rated:
                continue
            grade = grades.get(subject.form_id) if number % 3 else None
            db.session.add(
                Answer(
                    ballot_id=ballot.id,
                    subject_id=subject.id,
                    item="",
                    stratum_id=code.stratum_id,
                    grade=grade,
                )
            )
        db.session.add(
            Receipt(digest=hashlib.sha256(f"r{number}".encode()).hexdigest(), round_id=rnd.id)
        )
    db.session.commit()
    with write_transaction():
        lifecycle.close_round(rnd, actor="test")
    rnd.sealed_result = {"subjects": {"市局领导班子": {"满意率": "2/3"}}, "备注": "中文"}
    rnd.seal = "a" * 64
    entry = ArchiveEntry(
        round_id=rnd.id,
        subject_id=rnd.subjects[0].id,
        person_id=None,
        unit_id=rnd.unit_id,
        year=rnd.year,
        subject_name=rnd.subjects[0].name,
        form_id=rnd.subjects[0].form_id,
        figures={"satisfaction": "2/3", "turnout": {"班子成员": [3, 7]}},
        grade="excellent",
        rank=1,
        valid_round=True,
        seal=rnd.seal,
    )
    db.session.add(entry)
    db.session.flush()
    db.session.add(ArchiveAnnotation(entry_id=entry.id, author="organiser", reason="更正：笔误"))
    audit.record("organiser", "archive.annotate", entry_id=entry.id)
    db.session.commit()
    return plaintexts


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if hasattr(value, "value") and isinstance(value.value, str):
        return value.value
    return value


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (by primary key), with SQL NULL and JSON null told apart."""
    result: dict[str, list[tuple[Any, ...]]] = {}
    for table in db.metadata.sorted_tables:
        nulls = [c.is_(None) for c in table.columns if isinstance(c.type, JSON)]
        rows = db.session.execute(select(table, *nulls).order_by(*table.primary_key.columns)).all()
        result[table.name] = [tuple(_normal(v) for v in row) for row in rows]
    return result


def stored_ballot_order() -> list[uuid.UUID]:
    """Ballot ids in the order the database stores them (rowid / ctid)."""
    order = literal_column("ctid" if db.engine.dialect.name == "postgresql" else "rowid")
    return list(db.session.execute(select(Ballot.id).order_by(order)).scalars())


# --- targets: an empty migrated database on each engine -----------------------------------


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty migrated database of each engine, to restore into."""
    base = tmp_path / "target"
    base.mkdir()
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        shutil.copy(template, base / "restored.db")
        url = f"sqlite:///{base / 'restored.db'}"
    else:
        url = fresh_side_database("restore")
        migrate(url, base)
    application = create_app(app_config(url, base))
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def _invoke(application: Flask, *args: str) -> Any:
    """Run a ``flask`` command against ``application`` (the CLI uses the current app)."""
    with application.app_context():
        return application.test_cli_runner().invoke(args=list(args))


def _backup(app: Flask, path: Path) -> None:
    result = _invoke(app, "backup", str(path))
    assert result.exit_code == 0, result.output
    assert "已备份" in result.output


def _restore(app: Flask, path: Path) -> Any:
    return _invoke(app, "restore", str(path))


# --- the round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["whole.jsonl", "whole.jsonl.gz"])
def test_round_trip_keeps_every_row_and_the_audit_chain(  # type: ignore[no-untyped-def]
    app, users, sample_round, target, tmp_path, name
) -> None:
    _populate(sample_round)
    before = snapshot()
    order = stored_ballot_order()
    path = tmp_path / name
    _backup(app, path)

    result = _restore(target, path)
    assert result.exit_code == 0, result.output
    assert "已从" in result.output

    with target.app_context():
        after = snapshot()
        # The restore itself is the one new audit entry, chained after the restored ones.
        restored_audit = after.pop("audit_entry")
        assert restored_audit[:-1] == before.pop("audit_entry")
        last = db.session.execute(select(AuditEntry).order_by(AuditEntry.id.desc())).scalar()
        assert last is not None and last.action == "backup.restore"
        assert after == before
        assert stored_ballot_order() == order
        checked, problem = audit.verify_chain()
        assert problem is None and checked == len(restored_audit)
    verify = _invoke(target, "audit", "verify")
    assert verify.exit_code == 0, verify.output


def test_restored_database_keeps_working(app, users, sample_round, target, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """New rows get fresh ids after a restore (PostgreSQL sequences are moved on)."""
    _populate(sample_round)
    highest = db.session.execute(select(func.max(AuditEntry.id))).scalar()
    path = tmp_path / "b.jsonl"
    _backup(app, path)
    assert _restore(target, path).exit_code == 0
    with target.app_context():
        from evaluation.accounts.operations import create_user
        from tests.helpers.web import SAMPLE_ROUND

        user = create_user(actor="test", username="newcomer", password="x" * 12, role="admin")
        from evaluation.rounds.round_file import import_round, parse_round_text

        rnd = import_round(
            parse_round_text(SAMPLE_ROUND.replace("2026年度", "2027年度")), actor="t"
        )
        db.session.commit()
        assert user.id == 5 and rnd.id == 2
        assert db.session.execute(select(func.max(AuditEntry.id))).scalar() > highest + 1
        assert audit.verify_chain()[1] is None


def test_backup_holds_exactly_what_the_database_holds(app, users, sample_round, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plaintexts = _populate(sample_round)
    path = tmp_path / "b.jsonl"
    _backup(app, path)
    content = path.read_text(encoding="utf-8")
    assert not any(plain in content for plain in plaintexts)
    lines = [json.loads(line) for line in content.splitlines()]
    header, trailer = lines[0], lines[-1]
    assert header["format"] == "evaluation-backup" and header["schema"]
    ballot_section = lines.index({"table": "ballot", "columns": ["id", "round_id", "stratum_id"]})
    assert trailer["counts"]["ballot"] == 9 and trailer["counts"]["code"] == 12
    assert trailer["counts"]["stratum_subject"] == 2
    # Exact values: datetimes with microseconds in UTC, JSON kept as JSON.
    audit_columns = next(
        x for x in lines if isinstance(x, dict) and x.get("table") == "audit_entry"
    )
    at = lines[lines.index(audit_columns) + 1][audit_columns["columns"].index("at")]
    assert at.endswith("+00:00") and "." in at
    assert ballot_section > 0
    # Backing up is itself an audited action (after the snapshot it took).
    last = db.session.execute(select(AuditEntry).order_by(AuditEntry.id.desc())).scalar()
    assert last is not None and last.action == "backup.create"


# --- refusals: nothing half-restored ------------------------------------------------------


def test_restore_refuses_a_database_that_has_data(app, users, sample_round, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _populate(sample_round)
    path = tmp_path / "b.jsonl"
    _backup(app, path)
    before = snapshot()
    result = app.test_cli_runner().invoke(args=["restore", str(path)])
    assert result.exit_code == 1
    assert "只能恢复到空数据库" in result.output and "Traceback" not in result.output
    db.session.rollback()
    assert snapshot() == before


def _rewrite(path: Path, change: Any) -> None:
    """Apply ``change`` to the parsed lines and write them back with a valid digest."""
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    body = change(lines[:-1])
    digest = hashlib.sha256()
    out = []
    for obj in body:
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
        digest.update(data.encode("utf-8"))
        out.append(data)
    trailer = dict(lines[-1], sha256=digest.hexdigest())
    out.append(json.dumps(trailer, ensure_ascii=False) + "\n")
    path.write_text("".join(out), encoding="utf-8")


def _empty(application: Flask) -> bool:
    with application.app_context():
        return all(not rows for rows in snapshot().values())


def test_damaged_files_are_refused_before_anything_is_written(  # type: ignore[no-untyped-def]
    app, users, sample_round, target, tmp_path
) -> None:
    _populate(sample_round)
    good = tmp_path / "good.jsonl"
    _backup(app, good)
    text_lines = good.read_text(encoding="utf-8").splitlines(keepends=True)

    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("".join(text_lines[: len(text_lines) // 2]), encoding="utf-8")
    edited = tmp_path / "edited.jsonl"
    edited.write_text(
        good.read_text(encoding="utf-8").replace("更正：笔误", "更正：改过"), encoding="utf-8"
    )
    cut_gzip = tmp_path / "cut.jsonl.gz"
    cut_gzip.write_bytes(gzip.compress(good.read_bytes())[:-40])
    stranger = tmp_path / "stranger.jsonl"
    stranger.write_text('{"hello": 1}\n', encoding="utf-8")

    cases = {
        truncated: "不完整",
        edited: "校验和不符",
        cut_gzip: "不完整",
        stranger: "不是本系统的备份文件",
        tmp_path / "missing.jsonl": "找不到备份文件",
    }
    for path, reason in cases.items():
        result = _restore(target, path)
        assert result.exit_code == 1, path
        assert reason in result.output and "Traceback" not in result.output, result.output
        assert _empty(target)


def test_other_schema_version_is_refused(app, users, sample_round, target, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _populate(sample_round)
    path = tmp_path / "b.jsonl"
    _backup(app, path)
    _rewrite(path, lambda body: [dict(body[0], schema="0000old")] + body[1:])
    result = _restore(target, path)
    assert result.exit_code == 1 and "结构版本" in result.output
    assert _empty(target)


def test_a_row_the_database_rejects_rolls_back_the_whole_restore(  # type: ignore[no-untyped-def]
    app, users, sample_round, target, tmp_path
) -> None:
    """An answer pointing at no subject fails late; the tables loaded before it are undone."""
    _populate(sample_round)
    path = tmp_path / "b.jsonl"
    _backup(app, path)

    def break_last_answer(body: list[Any]) -> list[Any]:
        start = body.index(
            next(x for x in body if isinstance(x, dict) and x.get("table") == "answer")
        )
        columns = body[start]["columns"]
        row = start + 1
        while isinstance(body[row + 1], list):
            row += 1
        body[row][columns.index("subject_id")] = 987654
        return body

    _rewrite(path, break_last_answer)
    result = _restore(target, path)
    assert result.exit_code == 1
    assert "恢复失败" in result.output and "未作任何改动" in result.output
    assert _empty(target)


def test_restore_into_an_unmigrated_database_says_what_to_do(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "b.jsonl"
    _backup(app, path)
    bare = create_app(app_config(f"sqlite:///{tmp_path / 'bare.db'}", tmp_path))
    result = _invoke(bare, "restore", str(path))
    assert result.exit_code == 1 and "flask db upgrade" in result.output
    with bare.app_context():
        db.engine.dispose()


def test_backup_to_a_missing_folder_is_a_clear_refusal(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "nope" / "b.jsonl")])
    assert result.exit_code == 1 and "不存在" in result.output
    assert not list(tmp_path.glob("**/*.partial"))


def test_datetimes_round_trip_to_the_microsecond(app, users, target, tmp_path) -> None:  # type: ignore[no-untyped-def]
    moment = datetime(2026, 3, 1, 8, 9, 10, 123456, tzinfo=UTC)
    user = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
    user.created_at = moment
    db.session.commit()
    path = tmp_path / "b.jsonl"
    _backup(app, path)
    assert _restore(target, path).exit_code == 0
    with target.app_context():
        restored = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        assert _normal(restored.created_at) == moment
        assert isinstance(User.__table__.c.created_at.type, DateTime)


def test_open_rounds_box_is_written_shuffled_and_restored_whole(  # type: ignore[no-untyped-def]
    app, users, sample_round, target, tmp_path
) -> None:
    """An open round's sealed box goes into the backup in random order, never submission
    order (a backup outlives the close that drops the box), and a restore makes it again:
    the restored server closes the round and counts every ballot."""
    from evaluation.codes import codes as code_ops
    from evaluation.voting import box
    from evaluation.voting.ballot import ballot_layout
    from evaluation.voting.views import cast_ballot

    rnd = sample_round
    issued = code_ops.issue_batch(rnd, rnd.strata[0], 40, actor="test")
    lifecycle.open_round(rnd, actor="test")
    db.session.commit()
    layout = ballot_layout(rnd)
    grades = {"gansu-team": "excellent", "gansu-discipline": "pass"}
    answers = [(s.id, "", grades.get(s.form_id)) for s in rnd.subjects]
    submitted = []
    for code in issued.codes:
        cast_ballot(code_ops.code_digest(code), rnd, rnd.strata[0].id, layout, answers)
        submitted.append(code_ops.code_digest(code))
    path = tmp_path / "open.jsonl"
    _backup(app, path)

    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    start = lines.index(
        {"table": box.table_name(rnd.id), "columns": ["digest", "stratum_id", "sealed", "receipt"]}
    )
    written = [row[0] for row in lines[start + 1 : start + 42] if row[0] != box.KEY_ROW]
    assert sorted(written) == sorted(submitted) and written != submitted
    for table in ("ballot", "answer", "receipt"):  # nothing is in clear before close
        section = lines.index(
            next(x for x in lines if isinstance(x, dict) and x.get("table") == table)
        )
        assert not isinstance(lines[section + 1], list)

    assert _restore(target, path).exit_code == 0
    with target.app_context():
        restored = db.session.get_one(Round, rnd.id)
        assert box.box_exists(rnd.id)
        with write_transaction():
            lifecycle.close_round(restored, actor="test")
        db.session.commit()
        assert restored.state == RoundState.CLOSED
        assert restored.sealed_result["ballots"] == 40
        assert restored.sealed_result["turnout"]["used"] == 40
