"""廉政档案 on both engines: three years of rounds built through the real operations.

Each round is imported, codes are issued (Code rows), ballots are cast (Ballot and Answer
rows), the round is closed (shuffled and sealed) and archived. The history:

| round | unit | year | what it holds |
|---|---|---|---|
| R1 | 兰州 | 2024 | team 不合格; 张三 principal trust exactly 1/2; 李四 member trust 1/3; |
| | | | 张三, 李四, 王五 integrity below 1/3 |
| R2 | 兰州 | 2025 | team 不合格; 张三, 王五 integrity below 1/3 (closed first) |
| R2x | 兰州 | 2025 | invalid (turnout 3/10): team 合格, 李四 integrity below 1/3 |
| R3 | 兰州 | 2025 | 王五 integrity 3/4 (closed after R2: counts for 2025) |
| — | | | 张三 moves to 天水 |
| R4 | 兰州 | 2026 | team 不合格; 李四, 王五 integrity below; 赵六 integrity exactly 1/3; |
| | | | a cadre named "=SUM(1,2)" |
| R5 | 天水 | 2026 | 张三 integrity below 1/3 |
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from evaluation.accounts.units import ensure_unit
from evaluation.archive import entries as archive
from evaluation.archive import queries
from evaluation.archive.entries import ArchiveImmutable
from evaluation.errors import StateError
from evaluation.extensions import db
from evaluation.models import (
    ArchiveAnnotation,
    ArchiveEntry,
    AuditEntry,
    Person,
    Round,
    RoundState,
)
from evaluation.rounds import lifecycle
from tests.helpers.archive import (
    LANZHOU,
    TIANSHUI,
    F,
    G,
    build_history,
    run_round,
    subject,
)
from tests.helpers.web import csrf_token


def flags_of(person: Person) -> list[tuple[str, int, int, str]]:
    """(rule, year, level, label) of every flag over the person's whole archive."""
    timeline = queries.person_timeline(person, None)
    return [(f.rule, f.year, f.level, f.label) for f in timeline.flags]


# --- archiving ---------------------------------------------------------------------------------


def test_archive_entries_carry_the_sealed_figures(app) -> None:  # type: ignore[no-untyped-def]
    history = build_history()
    r1 = history["rounds"][0]
    entries = {
        e.subject_name: e
        for e in db.session.execute(
            db.select(ArchiveEntry).where(ArchiveEntry.round_id == r1.id)
        ).scalars()
    }
    assert len(entries) == 7
    team = entries["市局领导班子"]
    assert team.person_id is None and team.unit.path == LANZHOU and team.year == 2024
    assert team.grade == "不合格" and team.valid_round is True and team.seal == r1.seal
    figures = team.figures
    assert figures["counts"] == {"优秀": 1, "合格": 1, "不合格": 1}
    assert figures["grade_labels"] == ["优秀", "合格", "不合格"]
    assert (figures["valid"], figures["abstentions"]) == (3, 3)
    assert figures["satisfaction_rate"] == "2/3"
    assert figures["excellent_rate"] == "1/3"
    assert figures["trust_rate"] == "2/3"
    assert Fraction(figures["score"]) == Fraction(180, 3)
    assert figures["turnout"] == "1/1" and figures["turnout_valid"] is True
    assert figures["weighted"] is False
    assert figures["round_title"] == r1.title
    assert figures["form_title"] == "领导班子执行党风廉政建设责任制情况民主测评表"
    integrity = entries["张三（廉洁自律）"]
    assert integrity.person is not None and integrity.person.staff_no == "A001"
    assert integrity.figures["satisfaction_rate"] == "1/4"
    assert integrity.grade == "中"
    invalid = db.session.execute(
        db.select(ArchiveEntry).where(ArchiveEntry.round_id == history["rounds"][2].id)
    ).scalars()
    for entry in invalid:
        assert entry.valid_round is False and entry.figures["turnout"] == "3/10"


def test_every_entry_says_exactly_what_was_sealed(app) -> None:  # type: ignore[no-untyped-def]
    for rnd in build_history()["rounds"]:
        sealed = {row["subject_id"]: row for row in rnd.sealed_result["subjects"]}
        entries = list(
            db.session.execute(
                db.select(ArchiveEntry).where(ArchiveEntry.round_id == rnd.id)
            ).scalars()
        )
        assert len(entries) == len(rnd.subjects)
        for entry in entries:
            row = sealed[entry.subject_id]
            for key in ("excellent_rate", "satisfaction_rate", "trust_rate", "score"):
                assert entry.figures[key] == row[key]
            assert (entry.grade, entry.rank) == (row["grade_label"], row["rank"])
            assert entry.figures["valid"] == row["valid"]
            assert entry.figures["abstentions"] == row["abstentions"]
            assert entry.figures["turnout"] == rnd.sealed_result["turnout"]["rate"]
            assert entry.valid_round is rnd.sealed_result["valid"]
            assert entry.seal == rnd.seal


def test_weighted_figures_are_archived_and_judged(app) -> None:  # type: ignore[no-untyped-def]
    # 班子成员 (weight 1/4) all say 好, 一般干部 (weight 3/4) all say 中, 5 ballots each (no
    # pooling): unweighted 满意率 would be 5/10 = 1/2; weighted it is 1/4, below 1/3.
    rnd = run_round(
        title="2026年度加权测评",
        unit=LANZHOU,
        year=2026,
        closed_at=datetime(2026, 12, 1, tzinfo=UTC),
        strata=[("班子成员", "1/4", 5), ("一般干部", "3/4", 5)],
        subjects=[subject("孙七（廉洁自律）", "gansu-integrity", "A007")],
        votes={"孙七（廉洁自律）": [G, G, G, G, G, F, F, F, F, F]},
    )
    entry = db.session.execute(
        db.select(ArchiveEntry).where(ArchiveEntry.round_id == rnd.id)
    ).scalar_one()
    assert entry.figures["weighted"] is True
    assert entry.figures["satisfaction_rate"] == "1/4"
    assert entry.figures["counts"] == {"好": 5, "中": 5, "差": 0}
    assert entry.figures["raw_satisfaction_rate"] == "1/2"  # beside the weighted rate
    assert entry.figures["pooled_strata"] == []
    assert flags_of(entry.person) == [("integrity", 2026, 1, "基本称职")]  # type: ignore[arg-type]


def test_a_round_is_archived_once_and_entries_never_change(app, runner) -> None:  # type: ignore[no-untyped-def]
    history = build_history()
    r1 = history["rounds"][0]
    before = db.session.execute(db.select(db.func.count()).select_from(ArchiveEntry)).scalar()
    with pytest.raises(StateError):
        lifecycle.archive_round(r1, actor="test")
    db.session.rollback()
    with pytest.raises(StateError, match="只归档一次"):
        archive.append_round(r1, actor="test")
    db.session.rollback()
    result = runner.invoke(args=["round", "archive", str(r1.id)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    after = db.session.execute(db.select(db.func.count()).select_from(ArchiveEntry)).scalar()
    assert before == after
    entry = db.session.execute(db.select(ArchiveEntry).limit(1)).scalar_one()
    entry.grade = "优秀"
    with pytest.raises(ArchiveImmutable):
        db.session.flush()
    db.session.rollback()
    entry = db.session.execute(db.select(ArchiveEntry).limit(1)).scalar_one()
    db.session.delete(entry)
    with pytest.raises(ArchiveImmutable):
        db.session.flush()
    db.session.rollback()


def test_archiving_needs_a_sealed_round(app, sample_round) -> None:  # type: ignore[no-untyped-def]
    lifecycle.open_round(sample_round, actor="test")
    with pytest.raises(StateError):
        lifecycle.archive_round(sample_round, actor="test")  # still open
    db.session.rollback()


def test_cli_archive_appends_entries(app, runner, sample_round) -> None:  # type: ignore[no-untyped-def]
    lifecycle.open_round(sample_round, actor="test")
    db.session.commit()
    assert runner.invoke(args=["round", "close", str(sample_round.id)]).exit_code == 0
    result = runner.invoke(args=["round", "archive", str(sample_round.id)])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    rnd = db.session.get(Round, sample_round.id)
    assert rnd is not None and rnd.state == RoundState.ARCHIVED
    entries = list(
        db.session.execute(db.select(ArchiveEntry).where(ArchiveEntry.round_id == rnd.id)).scalars()
    )
    assert len(entries) == 5
    # no votes: no rates, no grade, and the round is invalid (nothing issued)
    assert all(e.grade is None and e.figures["satisfaction_rate"] is None for e in entries)
    assert all(e.valid_round is False for e in entries)
    actions = [a.action for a in db.session.execute(db.select(AuditEntry)).scalars()]
    assert actions[-2:] == ["round.archive", "archive.append"]


# --- rules over three years --------------------------------------------------------------------


def test_every_flag_over_three_years(app) -> None:  # type: ignore[no-untyped-def]
    people = build_history()["people"]
    # 张三: below 1/3 in 2024 and 2025 at 兰州, and in 2026 at 天水 after the move (跟踪追究);
    # his principal form's trust is exactly 1/2, which is not below 1/2.
    assert flags_of(people["A001"]) == [
        ("integrity", 2024, 1, "基本称职"),
        ("integrity", 2025, 2, "不称职"),
        ("integrity", 2026, 3, "警示训诫/组织处理/纪律处分"),
    ]
    # 李四: 2025 had only an invalid round, so 2024 and 2026 are not consecutive;
    # his member form's trust 1/3 in 2024 asks for a review.
    assert flags_of(people["A002"]) == [
        ("integrity", 2024, 1, "基本称职"),
        ("trust", 2024, 1, "责任追究"),
        ("integrity", 2026, 1, "基本称职"),
    ]
    # 王五: two valid rounds in 2025; the later one (3/4) counts, so the streak breaks.
    assert flags_of(people["A003"]) == [
        ("integrity", 2024, 1, "基本称职"),
        ("integrity", 2026, 1, "基本称职"),
    ]
    # 赵六: exactly 1/3 is not below 1/3.
    assert flags_of(people["A004"]) == []
    lanzhou = ensure_unit(LANZHOU)
    team = queries.unit_timeline(lanzhou, None)
    # the invalid 2025 round graded the team 合格, but invalid rounds never count
    assert [(f.year, f.level, f.label, f.years) for f in team.flags] == [
        (2024, 1, "黄牌管理", (2024,)),
        (2025, 2, "警示训诫谈话", (2024, 2025)),
        (2026, 3, "党政纪处理/引咎辞职", (2024, 2025, 2026)),
    ]


def test_current_flags_overview_for_a_unit_tree(app) -> None:  # type: ignore[no-untyped-def]
    build_history()
    overview = queries.flags_overview(None)
    current = sorted((f.subject_name, f.rule, f.year, f.level) for f, _ in overview)
    assert current == [
        ("张三（A001）", "integrity", 2026, 3),
        ("李四（A002）", "integrity", 2026, 1),
        ("王五（A003）", "integrity", 2026, 1),
        ("甘肃省局/兰州市局", "team", 2026, 3),
    ]
    tianshui = queries.flags_overview(None, ensure_unit(TIANSHUI))
    assert [(f.subject_name, f.level) for f, _ in tianshui] == [("张三（A001）", 3)]
    # 张三 moved away: 兰州's overview leaves him to 天水, also for a user scoped to 兰州
    lanzhou = ensure_unit(LANZHOU)
    for root, tree in ((None, lanzhou), (lanzhou, None)):
        names = {f.subject_name for f, _ in queries.flags_overview(root, tree)}
        assert names == {"李四（A002）", "王五（A003）", LANZHOU}


def test_a_person_keeps_their_archive_across_units(app) -> None:  # type: ignore[no-untyped-def]
    zhang = build_history()["people"]["A001"]
    assert zhang.unit.path == TIANSHUI
    timeline = queries.person_timeline(zhang, None)
    assert [(e.year, e.unit.path, e.form_id) for e in timeline.entries] == [
        (2024, LANZHOU, "gansu-principal"),
        (2024, LANZHOU, "gansu-integrity"),
        (2025, LANZHOU, "gansu-integrity"),
        (2026, TIANSHUI, "gansu-integrity"),
    ]
    # the old unit sees the years he served there; the new unit sees the whole history
    lanzhou_view = queries.person_timeline(zhang, ensure_unit(LANZHOU))
    assert lanzhou_view.restricted and {e.year for e in lanzhou_view.entries} == {2024, 2025}
    assert [f.level for f in lanzhou_view.flags] == [1, 2]
    tianshui_view = queries.person_timeline(zhang, ensure_unit(TIANSHUI))
    assert not tianshui_view.restricted and len(tianshui_view.entries) == 4
    assert max(f.level for f in tianshui_view.flags) == 3
    cadres = queries.unit_cadres(ensure_unit(LANZHOU), None)
    moved = [c for c in cadres if c.person.id == zhang.id][0]
    assert not moved.current and moved.years == (2024, 2025)


# --- annotations -------------------------------------------------------------------------------


def test_annotations_are_appended_and_audited(app, client, auth, users) -> None:  # type: ignore[no-untyped-def]
    people = build_history()["people"]
    li = people["A002"]
    entry = queries.person_timeline(li, None).entries[0]
    grade_before = entry.grade
    auth.login("organiser")
    url = f"/archive/person/{li.id}"
    token = csrf_token(client, url)
    reason = "2024年度测评中一名测评人误投，经复核不影响等次（纪检组2025年1月复核意见）"
    response = client.post(
        f"{url}/annotate", data={"csrf_token": token, "entry_id": entry.id, "reason": reason}
    )
    assert response.status_code == 302
    db.session.expire_all()
    entry = db.session.get(ArchiveEntry, entry.id)
    assert entry is not None and entry.grade == grade_before
    assert [(n.author, n.reason) for n in entry.annotations] == [("organiser", reason)]
    last = (
        db.session.execute(db.select(AuditEntry).order_by(AuditEntry.id.desc())).scalars().first()
    )
    assert last is not None and last.action == "archive.annotate"
    assert last.actor == "organiser" and last.details["reason"] == reason
    page = client.get(url).get_data(as_text=True)
    assert reason in page and "更正说明" in page
    # an empty reason is refused with the page shown again, nothing stored
    bad = client.post(
        f"{url}/annotate", data={"csrf_token": token, "entry_id": entry.id, "reason": " "}
    )
    assert bad.status_code == 400 and "请填写更正说明" in bad.get_data(as_text=True)
    assert len(db.session.get(ArchiveEntry, entry.id).annotations) == 1  # type: ignore[union-attr]
    # an entry that is not this person's is refused in Chinese
    other_entry = queries.person_timeline(people["A003"], None).entries[0]
    for value, message in ((other_entry.id, "请选择本页列出的档案记录"), ("x", "请选择档案记录")):
        wrong = client.post(
            f"{url}/annotate", data={"csrf_token": token, "entry_id": value, "reason": "更正"}
        )
        assert wrong.status_code == 400 and message in wrong.get_data(as_text=True)
    # a unit's team entry is annotated from the unit page
    lanzhou = ensure_unit(LANZHOU)
    team_entry = queries.unit_timeline(lanzhou, None).entries[0]
    unit_url = f"/archive/unit/{lanzhou.id}"
    response = client.post(
        f"{unit_url}/annotate",
        data={"csrf_token": token, "entry_id": team_entry.id, "reason": "班子测评表版本说明"},
    )
    assert response.status_code == 302
    assert "班子测评表版本说明" in client.get(unit_url).get_data(as_text=True)
    assert (
        db.session.execute(db.select(db.func.count()).select_from(ArchiveAnnotation)).scalar() == 2
    )


def test_viewers_cannot_annotate(app, client, auth, users) -> None:  # type: ignore[no-untyped-def]
    li = build_history()["people"]["A002"]
    auth.login("viewer")
    url = f"/archive/person/{li.id}"
    page = client.get(url).get_data(as_text=True)
    assert "添加更正说明" not in page
    token = csrf_token(client, "/archive")
    entry = queries.person_timeline(li, None).entries[0]
    response = client.post(
        f"{url}/annotate", data={"csrf_token": token, "entry_id": entry.id, "reason": "x"}
    )
    assert response.status_code == 403


# --- pages -------------------------------------------------------------------------------------


def test_search_by_name_staff_number_and_unit(app, client, auth, users) -> None:  # type: ignore[no-untyped-def]
    build_history()
    auth.login("viewer")
    by_name = client.get("/archive?q=李四").get_data(as_text=True)
    assert "李四" in by_name and "A002" in by_name
    by_number = client.get("/archive?q=a003").get_data(as_text=True)
    assert "王五" in by_number
    by_unit = client.get("/archive?q=兰州").get_data(as_text=True)
    assert LANZHOU in by_unit
    # a viewer of 兰州 does not find 天水's units, only 张三 who served in 兰州 before he moved
    tianshui = ensure_unit(TIANSHUI)
    found = client.get("/archive?q=天水").get_data(as_text=True)
    assert f"/archive/unit/{tianshui.id}" not in found and "张三" in found
    assert "没有找到" in client.get("/archive?q=%25").get_data(as_text=True)


def test_viewers_see_only_their_units(app, client, auth, users) -> None:  # type: ignore[no-untyped-def]
    people = build_history()["people"]
    tianshui = ensure_unit(TIANSHUI)
    lanzhou = ensure_unit(LANZHOU)
    db.session.commit()
    auth.login("other")  # organiser of 天水
    assert client.get(f"/archive/unit/{lanzhou.id}").status_code == 404
    assert client.get(f"/archive/person/{people['A002'].id}").status_code == 404
    page = client.get(f"/archive/person/{people['A001'].id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "警示训诫/组织处理/纪律处分" in text and LANZHOU in text  # full history after the move
    assert client.get(f"/archive/unit/{tianshui.id}").status_code == 200
    flags = client.get("/archive/flags").get_data(as_text=True)
    assert "张三" in flags and "李四" not in flags


def test_timeline_pages_and_trend_chart(app, client, auth, users) -> None:  # type: ignore[no-untyped-def]
    people = build_history()["people"]
    lanzhou = ensure_unit(LANZHOU)
    db.session.commit()
    auth.login("viewer")
    wang = client.get(f"/archive/person/{people['A003'].id}").get_data(as_text=True)
    assert "同年有更晚的有效测评，不计入" in wang
    assert "25.00%" in wang and "75.00%" in wang
    li = client.get(f"/archive/person/{people['A002'].id}").get_data(as_text=True)
    assert "无效" in li and "责任追究" in li
    chart = client.get(f"/archive/person/{people['A002'].id}/trend.png")
    assert chart.status_code == 200 and chart.data[:8] == b"\x89PNG\r\n\x1a\n"
    unit_page = client.get(f"/archive/unit/{lanzhou.id}").get_data(as_text=True)
    assert "党政纪处理/引咎辞职" in unit_page and "已调至" in unit_page
    assert client.get(f"/archive/unit/{lanzhou.id}/trend.png").data[:4] == b"\x89PNG"
    flags = client.get(f"/archive/flags?unit={lanzhou.id}").get_data(as_text=True)
    assert "黄牌管理" not in flags and "党政纪处理/引咎辞职" in flags
    assert client.get("/archive/person/999999").status_code == 404
    assert client.get("/archive/flags?unit=abc").status_code == 404
    # A scope that names nothing is a 404 — never the whole archive exported or listed.
    downloads = db.session.execute(
        db.select(db.func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == "archive.export")
    ).scalar_one()
    for query in ("unit=abc", "person=x", "unit=99999999999999999999999", "unit=0", "person=-1"):
        for path in ("/archive/export.xlsx", "/archive/flags"):
            if path == "/archive/flags" and query.startswith("person"):
                continue
            response = client.get(f"{path}?{query}")
            text = response.get_data(as_text=True)
            assert response.status_code == 404, (path, query)
            assert ("干部不存在" if query.startswith("person") else "单位不存在") in text
    assert (
        db.session.execute(
            db.select(db.func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "archive.export")
        ).scalar_one()
        == downloads
    )


# --- exports -----------------------------------------------------------------------------------


def _sheet_rows(path_or_bytes: Path | bytes, name: str) -> list[list[Any]]:
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    book = load_workbook(source)
    return [[c.value for c in row] for row in book[name].iter_rows()]


def test_cli_export_cells(app, runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    build_history()
    out = tmp_path / "zhang.xlsx"
    result = runner.invoke(args=["archive", "export", "--person", "A001", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(out)
    book = load_workbook(out)
    assert book.sheetnames[:2] == ["档案记录", "预警"]
    # 核验's twelve columns print at 80 % over two pages across, 测评对象 on each (at one
    # page's width they printed at 5 pt); the print-ready sheets stay one page wide.
    check = book["核验"]
    assert check.page_setup.scale == 80 and [b.id for b in check.col_breaks.brk]
    assert check.print_title_cols == "$A:$A"
    assert book["档案记录"].sheet_properties.pageSetUpPr.fitToPage
    sheet = book["档案记录"]
    assert sheet["A1"].value == "廉政档案测评记录"
    assert sheet["A2"].value.startswith("范围：干部 张三（工号 A001）")
    header = [c.value for c in sheet[3]]
    assert header == [
        "工号",
        "测评对象",
        "职务",
        "单位",
        "年度",
        "测评活动",
        "测评表",
        "有效票",
        "弃权",
        "优秀率",
        "满意率",
        "信任率",
        "计算方式",
        "等次规则集",
        "测评等次",
        "排名",
        "评价意见",
        "整改要求",
        "计算说明",
    ]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=4)]
    assert [(r[0], r[1], r[3], r[4], r[7], r[8], r[14]) for r in rows] == [
        ("A001", "张三", LANZHOU, 2024, 4, 2, "不称职"),
        ("A001", "张三", LANZHOU, 2024, 4, 2, "中"),
        ("A001", "张三", LANZHOU, 2025, 4, 2, "中"),
        ("A001", "张三", TIANSHUI, 2026, 5, 1, "中"),
    ]
    assert rows[0][2] == "局长"
    assert rows[0][5] == "2024年度党风廉政建设责任制民主测评"
    assert rows[0][6] == "领导班子正职履行党风廉政建设责任制情况民主测评表"
    assert {r[12] for r in rows} == {"不加权"}
    satisfaction = sheet.cell(row=5, column=11)
    assert satisfaction.value == pytest.approx(0.25) and satisfaction.data_type == "n"
    assert "%" in satisfaction.number_format
    assert sheet.cell(row=4, column=12).value == pytest.approx(0.5)
    assert sheet.cell(row=7, column=11).value == pytest.approx(0.2)
    flags = [[c.value for c in row] for row in book["预警"].iter_rows(min_row=3)]
    assert flags[0] == [
        "对象",
        "规则",
        "处理",
        "实测值",
        "阈值",
        "涉及年度",
        "规则集",
        "依据",
        "处理建议",
        "状态",
    ]
    assert [r[:8] for r in flags[1:]] == [
        [
            "张三（A001）",
            "廉洁自律测评满意率当年低于 1/3",
            "基本称职",
            "满意率 25.00%（年度 2024）",
            "廉洁自律测评满意率低于 1/3（33.3%）",
            "2024",
            "某县责任追究办法（000 §五）",
            "000 §五 第三",
        ],
        [
            "张三（A001）",
            "廉洁自律测评满意率连续 2 年低于 1/3",
            "不称职",
            "满意率 25.00%（年度 2024）；满意率 25.00%（年度 2025）",
            "廉洁自律测评满意率低于 1/3（33.3%）",
            "2024、2025",
            "某县责任追究办法（000 §五）",
            "000 §五 第三",
        ],
        [
            "张三（A001）",
            "廉洁自律测评满意率连续 3 年低于 1/3",
            "警示训诫/组织处理/纪律处分",
            "满意率 25.00%（年度 2024）；满意率 25.00%（年度 2025）；满意率 20.00%（年度 2026）",
            "廉洁自律测评满意率低于 1/3（33.3%）",
            "2024、2025、2026",
            "某县责任追究办法（000 §五）",
            "000 §五 第三",
        ],
    ]
    assert [r[8] for r in flags[1:]] == [
        "公务员年度考核定为基本称职等次",
        "公务员年度考核定为不称职等次",
        "给予警示训诫、组织处理或纪律处分",
    ]
    actions = [a.action for a in db.session.execute(db.select(AuditEntry)).scalars()]
    assert actions[-1] == "archive.export"


def test_cli_export_of_a_unit_keeps_user_text_as_text(app, runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    build_history()
    out = tmp_path / "lanzhou.xlsx"
    result = runner.invoke(args=["archive", "export", "--unit", LANZHOU, "--out", str(out)])
    assert result.exit_code == 0, result.output
    book = load_workbook(out)
    sheet = book["档案记录"]
    names = [sheet.cell(row=r, column=2) for r in range(4, sheet.max_row + 1)]
    formula_like = [c for c in names if "SUM(1,2)" in str(c.value)]
    assert formula_like and all(c.data_type != "f" for c in formula_like)
    # 张三 is now at 天水, but his 兰州 years belong to 兰州's archive
    years = sorted(r[4] for r in _sheet_rows(out, "档案记录")[3:] if r[1] == "张三")
    assert years == [2024, 2024, 2025]
    team_flags = [r for r in _sheet_rows(out, "预警")[3:] if r[0] == LANZHOU]
    assert [r[5] for r in team_flags] == ["2024", "2024、2025", "2024、2025、2026"]
    assert [r[3] for r in team_flags][-1] == (
        "测评等次 不合格（年度 2024）；测评等次 不合格（年度 2025）；测评等次 不合格（年度 2026）"
    )
    assert {r[7] for r in team_flags} == {"000 §五 其次"}


def test_cli_export_refuses_bad_input(app, runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "x.xlsx")
    for args in (
        ["archive", "export", "--person", "NOPE", "--out", out],
        ["archive", "export", "--unit", "不存在的局", "--out", out],
        ["archive", "export", "--out", str(tmp_path / "x.csv")],
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.xlsx").exists()


def test_web_export_is_scoped(app, client, auth, users) -> None:  # type: ignore[no-untyped-def]
    build_history()
    auth.login("other")  # 天水: 张三's whole history (he is theirs now), nothing else of 兰州
    response = client.get("/archive/export.xlsx")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    rows = _sheet_rows(response.data, "档案记录")[3:]
    assert {r[1] for r in rows} == {"张三"} and len(rows) == 4
    last = (
        db.session.execute(db.select(AuditEntry).order_by(AuditEntry.id.desc())).scalars().first()
    )
    assert last is not None and (last.actor, last.action) == ("other", "archive.export")


# --- feedback to the first responsible person --------------------------------------------------


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page[^s]", pdf))


def test_unit_feedback_file_holds_every_cadre_of_the_year(app, client, auth, users) -> None:  # type: ignore[no-untyped-def]
    build_history()
    lanzhou = ensure_unit(LANZHOU)
    db.session.commit()
    auth.login("viewer")
    page = client.get(f"/archive/unit/{lanzhou.id}").get_data(as_text=True)
    for year in (2024, 2025, 2026):
        assert f"/archive/unit/{lanzhou.id}/feedback/{year}" in page
    response = client.get(f"/archive/unit/{lanzhou.id}/feedback/2024")
    assert response.status_code == 200 and response.data[:5] == b"%PDF-"
    assert response.mimetype == "application/pdf"
    # a summary page, then 张三 ×2, 李四 ×2, 王五 ×2 (the team's sheet is not a cadre's)
    assert _pages(response.data) == 1 + 6
    # 2025: 张三 was still in 兰州 then; the invalid round's sheet is included (marked 无效)
    assert _pages(client.get(f"/archive/unit/{lanzhou.id}/feedback/2025").data) == 1 + 4
    assert client.get(f"/archive/unit/{lanzhou.id}/feedback/2019").status_code == 404
    auth.logout()
    auth.login("other")
    assert client.get(f"/archive/unit/{lanzhou.id}/feedback/2024").status_code == 404
