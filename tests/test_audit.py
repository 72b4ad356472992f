"""The audit log is a hash chain; `flask audit verify` finds the first broken link."""

from __future__ import annotations

from sqlalchemy import text

from evaluation import audit
from evaluation.extensions import db


def _three_entries() -> None:
    audit.record("甲", "round.create", round_id=1, title="测试")
    audit.record("乙", "round.open", round_id=1)
    audit.record("丙", "round.close", round_id=1)
    db.session.commit()


def test_intact_chain_verifies(app, runner) -> None:  # type: ignore[no-untyped-def]
    _three_entries()
    assert audit.verify_chain() == (3, None)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "完好" in result.output


def test_altered_entry_is_named(app, runner) -> None:  # type: ignore[no-untyped-def]
    _three_entries()
    db.session.execute(text("UPDATE audit_entry SET actor = '丁' WHERE id = 2"))
    db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert "第 2 条" in result.output and "修改" in result.output


def test_removed_entry_is_named(app, runner) -> None:  # type: ignore[no-untyped-def]
    _three_entries()
    db.session.execute(text("DELETE FROM audit_entry WHERE id = 2"))
    db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert "第 2 条" in result.output


def test_details_altered_in_json_are_caught(app) -> None:  # type: ignore[no-untyped-def]
    _three_entries()
    db.session.execute(
        text("UPDATE audit_entry SET details = :d WHERE id = 1"), {"d": '{"round_id": 2}'}
    )
    db.session.commit()
    checked, problem = audit.verify_chain()
    assert checked == 0 and problem is not None and problem.entry_id == 1
