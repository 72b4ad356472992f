"""Issue 18 on the archive's own history (tests/helpers/archive.py): what each page shows once it
reads only its own subject's entries — a unit page its own flags (the subtree's one link away),
the flags list in pages with the count, the export streamed from a file and written whole or
not at all — and that the plain columns the rules read agree with the figures they came from.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from evaluation.accounts.units import ensure_unit
from evaluation.archive import export as archive_export
from evaluation.archive import queries
from evaluation.archive import views as archive_views
from evaluation.extensions import db
from evaluation.models import ArchiveEntry, AuditEntry
from evaluation.transactions import in_write_transaction
from tests.helpers.archive import LANZHOU, TIANSHUI, build_history

ROOT = "甘肃省局"


def test_the_rule_columns_agree_with_the_figures(app: Flask) -> None:
    build_history()
    entries = list(db.session.execute(db.select(ArchiveEntry)).scalars())
    assert entries
    for e in entries:
        figures = e.figures
        assert e.satisfaction_rate == figures.get("satisfaction_rate")
        assert e.trust_rate == figures.get("trust_rate")
        assert e.weighted is bool(figures.get("weighted"))
        assert queries.closed_at(e) == queries._aware(e.round.closed_at)


def test_judging_from_columns_is_judging_from_the_entries(app: Flask) -> None:
    """The flags page's judgement (plain columns, subject by subject) and the person and unit
    pages' (whole entries) are the same rules over the same data: same flags, same counted."""
    build_history()
    judged = queries.judge_condition(ArchiveEntry.id.is_not(None)).judgement
    timeline = queries.build_timeline(queries.visible_entries(None))
    assert judged.flags == timeline.flags
    assert judged.counted == timeline.counted
    assert judged.current == timeline.current


def test_a_unit_page_shows_its_own_flags_and_links_the_subtree(
    app: Flask, client: FlaskClient, auth: object, users: object
) -> None:
    build_history()
    root, lanzhou = ensure_unit(ROOT), ensure_unit(LANZHOU)
    db.session.commit()
    auth.login("admin")  # type: ignore[attr-defined]
    page = client.get(f"/archive/unit/{root.id}").get_data(as_text=True)
    # 甘肃省局 itself has no team entries and no cadres: none of 兰州's flags are listed here.
    assert "没有正在生效的预警" in page and "党政纪处理/引咎辞职" not in page
    assert "本单位及其现任干部没有正在生效的预警（下级单位的另行列出，见下）" in page
    assert f"/archive/flags?unit={root.id}" in page
    lanzhou_page = client.get(f"/archive/unit/{lanzhou.id}").get_data(as_text=True)
    assert "党政纪处理/引咎辞职" in lanzhou_page  # its team, three years 不合格
    assert "李四（A002）" in lanzhou_page  # a cadre now in the unit
    # 张三 moved to 天水: his flag is 天水's, on 天水's page.
    assert "张三（A001）" not in lanzhou_page.split('id="team-title"')[0]
    tianshui = ensure_unit(TIANSHUI)
    assert "张三（A001）" in client.get(f"/archive/unit/{tianshui.id}").get_data(as_text=True)
    # The whole tree's flags, on the flags page the link opens.
    tree = client.get(f"/archive/flags?unit={root.id}").get_data(as_text=True)
    assert "共 4 条预警" in tree and "党政纪处理/引咎辞职" in tree
    # A unit without flags still offers its workbook and the way back to its page.
    quiet = ensure_unit("甘肃省局/定西市局")
    db.session.commit()
    none = client.get(f"/archive/flags?unit={quiet.id}").get_data(as_text=True)
    assert "没有正在生效的预警" in none
    assert f"/archive/export.xlsx?unit={quiet.id}" in none
    assert f'href="/archive/unit/{quiet.id}"' in none


def test_the_flags_list_comes_in_pages_with_its_count(
    app: Flask, client: FlaskClient, auth: object, users: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_history()
    db.session.commit()
    monkeypatch.setattr(archive_views, "FLAGS_PER_PAGE", 3)
    auth.login("admin")  # type: ignore[attr-defined]
    first = client.get("/archive/flags").get_data(as_text=True)
    assert "共 4 条预警，本页第 1–3 条（第 1/2 页）" in first
    assert "/archive/flags?page=2" in first and "上一页" not in first
    second = client.get("/archive/flags?page=2").get_data(as_text=True)
    assert "本页第 4–4 条（第 2/2 页）" in second and "/archive/flags?page=1" in second
    shown = [first.count('class="flag-level-'), second.count('class="flag-level-')]
    assert shown == [3, 1]
    # A page past the end shows the last; a page that is not a number, the first.
    assert "第 2/2 页" in client.get("/archive/flags?page=99").get_data(as_text=True)
    assert "第 1/2 页" in client.get("/archive/flags?page=x").get_data(as_text=True)


def test_the_web_export_is_sent_from_a_file_of_its_own_length(
    app: Flask, client: FlaskClient, auth: object, users: object
) -> None:
    build_history()
    db.session.commit()
    auth.login("admin")  # type: ignore[attr-defined]
    response = client.get("/archive/export.xlsx")
    assert response.status_code == 200
    data = response.get_data()
    assert response.content_length == len(data) and data[:2] == b"PK"
    assert response.headers["Cache-Control"] == "private, no-store"


def test_a_failed_cli_export_leaves_no_file(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_history()
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "archive.xlsx"
    real = archive_export.write_workbook

    def half_then_fail(target, contents, **kwargs):  # type: ignore[no-untyped-def]
        target.write(b"PK half a workbook")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("evaluation.archive.cli.write_workbook", half_then_fail)
    result = runner.invoke(args=["archive", "export", "--out", str(out)])
    assert result.exit_code == 1 and "无法写入" in result.output
    assert list(folder.iterdir()) == []  # neither the workbook nor a part of it
    # An earlier export at the same path is kept whole when a later one fails.
    monkeypatch.setattr("evaluation.archive.cli.write_workbook", real)
    assert runner.invoke(args=["archive", "export", "--out", str(out)]).exit_code == 0
    before = out.read_bytes()
    monkeypatch.setattr("evaluation.archive.cli.write_workbook", half_then_fail)
    assert runner.invoke(args=["archive", "export", "--out", str(out)]).exit_code == 1
    assert out.read_bytes() == before and [p.name for p in folder.iterdir()] == [out.name]


def test_the_cli_export_writes_its_workbook_holding_no_write_lock(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export is recorded and committed first; the seconds a province's workbook takes are
    spent outside the write transaction (on SQLite that lock would stall every voter), and the
    workbook carries the head of the log that includes its own export."""
    build_history()
    real = archive_export.write_workbook
    seen: list[tuple[bool, int]] = []

    def watching(target, contents, **kwargs):  # type: ignore[no-untyped-def]
        last = db.session.execute(
            db.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)
        ).scalar_one()
        assert last.action == "archive.export"
        seen.append((in_write_transaction(), kwargs["audit_head"].seq - last.id))
        return real(target, contents, **kwargs)

    monkeypatch.setattr("evaluation.archive.cli.write_workbook", watching)
    result = runner.invoke(args=["archive", "export", "--out", str(tmp_path / "a.xlsx")])
    assert result.exit_code == 0, result.output
    assert seen == [(False, 0)]
