"""The audit log's head in every seal, report, backup and archive export (SPEC §10).

``flask audit verify --against FILE`` holds the log to the head recorded in FILE, so cutting
the log's last entries, or deleting one and recomputing the chain after it (as anyone with the
database and ``evaluation/audit.py`` could), is found; every download is itself recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from openpyxl import load_workbook
from sqlalchemy import delete, func, insert, text

from evaluation import audit
from evaluation.extensions import db
from evaluation.models import AuditEntry, Person, Round, Unit
from evaluation.rounds import lifecycle
from tests.helpers.tally import vote
from tests.helpers.web import AuthActions, csrf_token


@pytest.fixture
def closed(sample_round: Round) -> Round:
    """The sample round voted, closed and sealed."""
    vote(sample_round)
    return sample_round


def _entries() -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.execute(db.select(AuditEntry).order_by(AuditEntry.id)).scalars())


def _count() -> int:
    db.session.rollback()
    return int(db.session.execute(db.select(func.count()).select_from(AuditEntry)).scalar_one())


def _cut_tail(from_id: int) -> None:
    """Delete the log's last entries, from ``from_id`` on (plain SQL, as an intruder would)."""
    db.session.execute(text("DELETE FROM audit_entry WHERE id >= :i"), {"i": from_id})
    db.session.commit()


def _rebuild_without(entry_id: int) -> None:
    """Delete one entry, renumber the rest and recompute every digest with audit.py's code."""
    kept = [(e.at, e.actor, e.action, dict(e.details)) for e in _entries() if e.id != entry_id]
    db.session.execute(delete(AuditEntry))
    prev = audit.GENESIS
    rows: list[dict[str, Any]] = []
    for number, (at, actor, action, details) in enumerate(kept, start=1):
        digest = audit.entry_digest(prev, number, at, actor, action, details)
        rows.append(
            {
                "id": number,
                "at": at,
                "actor": actor,
                "action": action,
                "details": details,
                "prev_digest": prev,
                "digest": digest,
            }
        )
        prev = digest
    db.session.execute(insert(AuditEntry), rows)
    db.session.commit()
    assert audit.verify_chain() == (len(kept), None)  # the plain check is fooled


def _records(runner: FlaskCliRunner, closed: Round, tmp_path: Path) -> dict[str, Path]:
    """A backup, a report workbook and an archive export, each made now."""
    backup = tmp_path / "before.jsonl.gz"
    assert runner.invoke(args=["backup", str(backup)]).exit_code == 0
    res = runner.invoke(args=["report", str(closed.id), "--out", str(tmp_path / "report")])
    assert res.exit_code == 0, res.output
    with_archive = tmp_path / "archive.xlsx"
    res = runner.invoke(args=["archive", "export", "--out", str(with_archive)])
    assert res.exit_code == 0, res.output
    return {
        "backup": backup,
        "report": tmp_path / "report" / "测评结果.xlsx",
        "archive": with_archive,
    }


def _against(runner: FlaskCliRunner, path: Path) -> Any:
    return runner.invoke(args=["audit", "verify", "--against", str(path)])


def _archived(closed: Round) -> Round:
    lifecycle.archive_round(closed, actor="test")
    db.session.commit()
    return closed


def test_every_record_carries_the_head(
    runner: FlaskCliRunner, closed: Round, tmp_path: Path
) -> None:
    _archived(closed)
    sealed = audit.head_from_json((closed.sealed_result or {})["audit_head"])
    assert sealed is not None and sealed.seq > 0
    files = _records(runner, closed, tmp_path)
    heads = {name: audit.recorded_head(path) for name, path in files.items()}
    by_action = {e.action: e for e in _entries()}
    # The report and the export carry the head that includes their own entry.
    assert heads["report"] == audit.head_of(by_action["report.write"])
    assert heads["archive"] == audit.head_of(by_action["archive.export"])
    assert heads["backup"].seq == by_action["backup.create"].id - 1
    verification = {
        r[0]: r[1]
        for r in load_workbook(files["report"])["核验"].iter_rows(min_row=2, values_only=True)
    }
    assert verification["审计日志链头"] == str(heads["report"])
    # The untouched log passes against every one of them, and against the seal.
    for path in files.values():
        result = _against(runner, path)
        assert result.exit_code == 0, result.output
        assert "审计日志完好" in result.output and "链头" in result.output
    result = runner.invoke(args=["verify", str(closed.id)])
    assert result.exit_code == 0, result.output


def test_a_cut_tail_is_found(runner: FlaskCliRunner, closed: Round, tmp_path: Path) -> None:
    _archived(closed)
    files = _records(runner, closed, tmp_path)
    sealed = audit.head_from_json((closed.sealed_result or {})["audit_head"])
    assert sealed is not None
    _cut_tail(sealed.seq)  # the last entries, from the one the seal recorded on
    assert audit.verify_chain()[1] is None  # the chain itself still links up
    assert _against(runner, tmp_path / "none.xlsx").exit_code != 0
    for path in files.values():
        result = _against(runner, path)
        assert result.exit_code != 0, path
        assert "截断" in result.output and "\n" not in result.output.strip()
    result = runner.invoke(args=["verify", str(closed.id)])
    assert result.exit_code != 0
    assert "审计日志" in result.output


def test_the_last_entry_alone_cut_is_found_by_the_report(
    runner: FlaskCliRunner, closed: Round, tmp_path: Path
) -> None:
    files = _records(runner, closed, tmp_path)
    last = _entries()[-1]
    assert last.action == "archive.export"
    _cut_tail(last.id)
    assert _against(runner, files["archive"]).exit_code != 0
    assert _against(runner, files["report"]).exit_code == 0  # made before that entry


def test_a_rebuilt_chain_is_found(runner: FlaskCliRunner, closed: Round, tmp_path: Path) -> None:
    _archived(closed)
    files = _records(runner, closed, tmp_path)
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    _rebuild_without(2)
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    for path in files.values():
        result = _against(runner, path)
        assert result.exit_code != 0, path
        assert "重新计算" in result.output or "截断" in result.output
    result = runner.invoke(args=["verify", str(closed.id)])
    assert result.exit_code != 0
    assert "审计日志" in result.output


def test_against_refuses_a_file_without_a_head(
    runner: FlaskCliRunner, app: Any, tmp_path: Path
) -> None:
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"format": "evaluation-backup", "version": 1}) + "\n")
    result = _against(runner, old)
    assert result.exit_code != 0 and "没有记录审计日志链头" in result.output
    other = tmp_path / "other.jsonl"
    other.write_text("hello\n")
    result = _against(runner, other)
    assert result.exit_code != 0 and "Traceback" not in result.output


# --- every download is recorded -----------------------------------------------------------------


def _download_urls(rnd: Round) -> list[str]:
    def subject_id(name: str) -> int:
        return next(s.id for s in rnd.subjects if s.name == name)

    person = db.session.execute(db.select(Person).where(Person.staff_no == "A001")).scalar_one()
    unit = db.session.execute(db.select(Unit).where(Unit.path == "甘肃省局/兰州市局")).scalar_one()
    zhang = subject_id("张三")
    return [
        f"/rounds/{rnd.id}/report.xlsx",
        f"/rounds/{rnd.id}/feedback.pdf",
        f"/rounds/{rnd.id}/results/{zhang}/feedback.pdf",
        f"/rounds/{rnd.id}/results/charts/grades.png",
        f"/rounds/{rnd.id}/results/{zhang}/chart.png",
        f"/rounds/{rnd.id}/export.toml",
        f"/rounds/{rnd.id}/subjects/template.xlsx",
        "/archive/export.xlsx",
        f"/archive/unit/{unit.id}/feedback/{rnd.year}",
        f"/archive/person/{person.id}/trend.png",
        f"/archive/unit/{unit.id}/trend.png",
    ]


def test_each_download_writes_one_audit_entry(
    client: FlaskClient, auth: AuthActions, users: Any, closed: Round
) -> None:
    _archived(closed)
    auth.login("organiser")
    for url in _download_urls(closed):
        before = _count()
        response = client.get(url)
        assert response.status_code == 200, url
        assert _count() == before + 1, url
        entry = _entries()[-1]
        assert entry.actor == "organiser", url
        if url.startswith("/rounds/"):
            assert entry.details["round_id"] == closed.id, url
    assert audit.verify_chain()[1] is None


def test_downloaded_workbook_carries_its_own_entry(
    client: FlaskClient, auth: AuthActions, users: Any, closed: Round, tmp_path: Path
) -> None:
    auth.login("viewer")
    path = tmp_path / "report.xlsx"
    path.write_bytes(client.get(f"/rounds/{closed.id}/report.xlsx").data)
    entry = _entries()[-1]
    assert entry.action == "report.workbook" and entry.details == {"round_id": closed.id}
    assert audit.recorded_head(path) == audit.head_of(entry)


def test_refused_download_is_not_recorded(
    client: FlaskClient, auth: AuthActions, users: Any, closed: Round
) -> None:
    auth.login("organiser")
    before = _count()
    assert client.get(f"/rounds/{closed.id}/results/charts/nothing.png").status_code == 404
    assert client.get(f"/rounds/{closed.id}/results/99999/feedback.pdf").status_code == 404
    team = next(s.id for s in closed.subjects if s.name == "市局领导班子")
    assert client.get(f"/rounds/{closed.id}/results/{team}/items.png").status_code == 404
    assert _count() == before


def test_issuing_codes_is_one_entry_without_codes(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    auth.login("organiser")
    stratum = sample_round.strata[0]
    before = _count()
    token = csrf_token(client, f"/rounds/{sample_round.id}/codes")
    response = client.post(
        f"/rounds/{sample_round.id}/codes/issue",
        data={"stratum": stratum.id, "count": "3", "format": "csv", "csrf_token": token},
    )
    assert response.status_code == 200
    assert _count() == before + 1
    entry = _entries()[-1]
    assert entry.action == "codes.issue" and entry.details["round_id"] == sample_round.id
    logged = json.dumps(entry.details, ensure_ascii=False)
    for line in response.get_data(as_text=True).splitlines()[1:]:
        assert line.split(",")[0] not in logged
