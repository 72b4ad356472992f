"""Accountability rule sets per unit (SPEC §9): chosen on the 单位 page, inherited down the tree,
applied by each subject's current unit; every flag shows its measured value, set and source —
on the pages and in the print-ready export (rendered with LibreOffice and read back).

The history is ``tests/helpers/archive.py`` (see ``tests/archive/test_archive.py``): 兰州 has
the team 不合格 three years, 李四 (trust 1/3 in 2024), 王五, 赵六 (integrity exactly 1/3 in
2026); 张三 moved to 天水 before 2026.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from evaluation.accounts.units import ensure_unit
from evaluation.archive import accountability, queries
from evaluation.archive import export as archive_export
from evaluation.archive.rules import RuleConfigError
from evaluation.errors import InputError
from evaluation.extensions import db
from evaluation.models import ArchiveEntry, AuditEntry, Round
from evaluation.rounds import lifecycle
from tests.helpers.archive import LANZHOU, STRICT, TIANSHUI, build_history, with_strict_set
from tests.helpers.office import page_size_points, pdf_text, render_pdf
from tests.helpers.tally import vote
from tests.helpers.web import AuthActions


@pytest.fixture
def strict_set(app: Flask, tmp_path: Path) -> Path:
    """A copy of the ballots folder holding a second, stricter set (``strict``)."""
    return with_strict_set(app, tmp_path)


def _flags(person: Any) -> list[tuple[str, int, str, str]]:
    return [
        (f.rule, f.year, f.label, f.rule_set) for f in queries.person_timeline(person, None).flags
    ]


def test_the_default_applies_until_a_unit_chooses(app: Flask) -> None:
    people = build_history()["people"]
    lanzhou = ensure_unit(LANZHOU)
    choice = accountability.unit_choice(lanzhou)
    assert choice.chosen_by is None and choice.rules.id == "000-county"
    assert accountability.available_sets()["000-county"] == choice.rules
    assert {f[3] for f in _flags(people["A002"])} == {"某县责任追究办法（000 §五）"}


def test_a_set_chosen_by_a_unit_is_inherited_and_judges_by_the_current_unit(
    app: Flask, strict_set: Path
) -> None:
    people = build_history()["people"]
    province = ensure_unit("甘肃省局")
    lanzhou, tianshui = ensure_unit(LANZHOU), ensure_unit(TIANSHUI)
    default_zhao = _flags(people["A004"])
    assert default_zhao == []  # exactly 1/3 is not below 1/3
    assert accountability.choose_set(province, "strict", actor="test")
    db.session.commit()
    # both cities inherit the province's choice
    for unit in (lanzhou, tianshui):
        choice = accountability.unit_choice(unit)
        assert choice.rules.id == "strict" and choice.chosen_by is not None
        assert choice.chosen_by.id == province.id
    # 赵六's 1/3 is below 1/2; his member form's trust 3/5 is not below 3/5
    assert _flags(people["A004"]) == [("integrity", 2026, "提醒谈话", "测试用从严规则集")]
    # the team: the first rung needs two years now
    team = queries.unit_timeline(lanzhou, None)
    assert [(f.year, f.label, f.source) for f in team.flags] == [
        (2025, "通报批评", "测试规则 第二条"),
        (2026, "通报批评", "测试规则 第二条"),
    ]
    # 天水 chooses the county set again: 张三 (now in 天水) is judged by it, for all his years,
    # while 兰州's cadres stay on the strict set
    assert accountability.choose_set(tianshui, "000-county", actor="test")
    db.session.commit()
    zhang = _flags(people["A001"])
    assert {f[3] for f in zhang} == {"某县责任追究办法（000 §五）"}
    assert [f[2] for f in zhang if f[0] == "integrity"] == [
        "基本称职",
        "不称职",
        "警示训诫/组织处理/纪律处分",
    ]
    assert {f[3] for f in _flags(people["A002"])} == {"测试用从严规则集"}
    overview = {(f.subject_name, f.rule_set) for f, _ in queries.flags_overview(None)}
    assert ("张三（A001）", "某县责任追究办法（000 §五）") in overview
    assert ("赵六（A004）", "测试用从严规则集") in overview
    # back to inheriting
    assert accountability.choose_set(lanzhou, None, actor="test") is False
    assert accountability.choose_set(province, "", actor="test")
    assert accountability.unit_choice(lanzhou).chosen_by is None
    audits = db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "unit.accountability_rules")
    ).scalars()
    assert len(list(audits)) == 3


def test_an_unknown_set_is_refused(app: Flask) -> None:
    unit = ensure_unit(LANZHOU)
    with pytest.raises(InputError, match="不存在"):
        accountability.choose_set(unit, "nope", actor="test")
    unit.accountability_rules = "removed"  # a set whose file was deleted since
    with pytest.raises(InputError, match="兰州市局.*removed.*不存在"):
        accountability.unit_choice(unit)


def test_an_invalid_set_file_is_refused_in_chinese(app: Flask, strict_set: Path) -> None:
    bad = strict_set / "accountability" / "bad.toml"
    bad.write_text(STRICT.replace('id = "strict"', 'id = "bad"').replace('"1/2"', '"一半"'))
    with pytest.raises(RuleConfigError) as info:
        accountability.load_sets(strict_set)
    assert str(info.value).startswith("accountability/bad.toml [integrity] below")
    assert "不是有效的比例" in str(info.value)
    bad.write_text(STRICT.replace('grade = "不合格"', 'grade = "很差"'))
    with pytest.raises(RuleConfigError, match="bad.toml.*gansu-team 没有等次“很差”"):
        accountability.load_sets(strict_set)
    bad.write_text(STRICT)  # id strict in bad.toml
    with pytest.raises(RuleConfigError, match="应与文件名 bad 一致"):
        accountability.load_sets(strict_set)
    bad.write_text("id = ")
    with pytest.raises(RuleConfigError, match="bad.toml：TOML 格式错误"):
        accountability.load_sets(strict_set)
    with pytest.raises(InputError, match="^责任追究规则集文件有误：accountability/bad.toml"):
        accountability.available_sets()


# --- pages -------------------------------------------------------------------------------------


def _basis(flag: Any) -> list[str]:
    return [flag.measured, flag.threshold, flag.rule_set, flag.source]


def test_every_flag_shows_value_set_and_source_on_the_pages(
    app: Flask, client: FlaskClient, auth: AuthActions, users: dict[str, Any]
) -> None:
    people = build_history()["people"]
    lanzhou = ensure_unit(LANZHOU)
    db.session.commit()
    auth.login("viewer")
    li = people["A002"]
    page = client.get(f"/archive/person/{li.id}").get_data(as_text=True)
    flags = queries.person_timeline(li, None).flags
    assert flags
    for flag in flags:
        for text in _basis(flag):
            assert text in page, text
    assert "满意率 25.00%（年度 2024）" in page and "信任率 33.33%（年度 2024）" in page
    assert "责任追究规则集：<strong>某县责任追究办法（000 §五）</strong>（默认）" in page
    assert "000 §五：一个县（乡镇、部门）的党风廉政建设责任制责任追究规定，仅为示例" in page
    unit_page = client.get(f"/archive/unit/{lanzhou.id}").get_data(as_text=True)
    listing = client.get(f"/archive/flags?unit={lanzhou.id}").get_data(as_text=True)
    overview = queries.flags_overview(None, lanzhou)
    assert overview
    for flag, _ in overview:
        for text in _basis(flag):
            assert text in unit_page and text in listing, text
    assert "测评等次 不合格（年度 2026）" in listing and "000 §五 其次" in listing


# --- archiving keeps the organiser's words -----------------------------------------------------


def test_opinion_and_rectification_are_copied_when_archived(
    app: Flask, sample_round: Round
) -> None:
    vote(sample_round)
    first, second = sample_round.subjects[0], sample_round.subjects[1]
    first.opinion = "班子团结，廉洁自律情况较好。"
    first.rectification = "加强对下属单位的监督检查。"
    db.session.commit()
    lifecycle.archive_round(sample_round, actor="test")
    db.session.commit()
    entries = {
        e.subject_id: e
        for e in db.session.execute(
            db.select(ArchiveEntry).where(ArchiveEntry.round_id == sample_round.id)
        ).scalars()
    }
    assert entries[first.id].opinion == "班子团结，廉洁自律情况较好。"
    assert entries[first.id].rectification == "加强对下属单位的监督检查。"
    assert entries[second.id].opinion == "" and entries[second.id].rectification == ""
    rows = archive_export.entry_rows([entries[first.id]])
    assert rows[0][16:18] == ["班子团结，廉洁自律情况较好。", "加强对下属单位的监督检查。"]
    # later edits of the subject do not change the archive
    first.opinion = "改过的意见"
    db.session.commit()
    db.session.expire_all()
    assert (
        db.session.get(ArchiveEntry, entries[first.id].id).opinion == "班子团结，廉洁自律情况较好。"
    )


# --- the print-ready export --------------------------------------------------------------------


def test_export_columns_and_values_against_the_history(app: Flask, tmp_path: Path) -> None:
    build_history()
    lanzhou = ensure_unit(LANZHOU)
    entries = queries.visible_entries(None, tree=lanzhou)
    data = archive_export.workbook_bytes(
        entries, scope=archive_export.scope_text(None, lanzhou), today=_today()
    )
    path = tmp_path / "lanzhou.xlsx"
    path.write_bytes(data)
    book = load_workbook(path)
    sheet = book["档案记录"]
    assert sheet["A1"].value == "廉政档案测评记录"
    assert "A1:S1" in {str(r) for r in sheet.merged_cells.ranges}
    assert sheet["A2"].value.splitlines()[0] == (
        "范围：甘肃省局/兰州市局（含下级单位及现属干部）　　导出日期：2026年11月30日（北京时间）"
    )
    assert sheet.print_title_rows == "$3:$3"
    setup = sheet.page_setup
    assert setup.orientation == "landscape" and str(setup.paperSize) == sheet.PAPERSIZE_A4
    # One page wide (1 is the file format's default, which a writer may leave out), as tall
    # as it takes.
    assert (setup.fitToWidth or 1) == 1 and setup.fitToHeight == 0
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    header = [c.value for c in sheet[3]]
    assert "姓名" not in header and header[:2] == ["工号", "测评对象"]
    rows = {(r[1].value, r[4].value, r[6].value): r for r in sheet.iter_rows(min_row=4)}
    team = rows[("市局领导班子", 2024, "领导班子执行党风廉政建设责任制情况民主测评表")]
    assert team[0].value is None and team[2].value is None  # a team has no 工号, no 职务
    assert [c.value for c in team[7:9]] == [3, 3]  # FAILING_TEAM: 3 valid, 3 弃权
    assert team[9].value == pytest.approx(1 / 3) and team[9].number_format == "0.00%"
    assert team[10].value == pytest.approx(2 / 3)  # 优秀 + 合格
    assert team[14].value == "不合格" and team[12].value == "不加权"
    assert team[13].value  # the round's grading rule set name
    li = rows[("李四", 2024, "领导班子成员履行党风廉政建设责任制情况民主测评表")]
    assert [c.value for c in li[:3]] == ["A002", "李四", "副局长"]
    assert li[11].value == pytest.approx(1 / 3) and li[11].data_type == "n"
    invalid = [r for r in sheet.iter_rows(min_row=4) if "参测不足" in (r[5].value or "")]
    assert invalid and all("无效" in r[5].value for r in invalid)
    for row in sheet.iter_rows(min_row=3):
        for cell in row:
            assert cell.border.left.style == "thin" and cell.border.bottom.style == "thin"
    for index in range(4, sheet.max_row + 1):
        assert sheet.row_dimensions[index].height >= 19
    flags = book["预警"]
    assert flags["A1"].value == "廉政档案责任追究预警"
    assert any(
        "规则集“某县责任追究办法（000 §五）”：000 §五：一个县" in line
        for line in flags["A2"].value.splitlines()
    )
    head = [c.value for c in flags[3]]
    for column in ("规则集", "依据", "实测值", "阈值"):
        assert column in head
    flag_rows = list(flags.iter_rows(min_row=4, values_only=True))
    timeline = queries.build_timeline(entries)
    expected = timeline.flags
    assert len(flag_rows) == len(expected) > 0
    # Every year's flags, each marked whether it is one the 预警 page lists (in force).
    assert 0 < len(timeline.current) < len(expected)
    assert (
        f"共 {len(expected)} 条；其中“正在生效”的 {len(timeline.current)} 条" in flags["A2"].value
    )
    for row, flag in zip(flag_rows, expected, strict=True):
        in_force = any(flag is f for f in timeline.current)
        assert row[head.index("状态")] == ("正在生效" if in_force else "历年")
        assert row[head.index("实测值")] == flag.measured and flag.measured
        assert row[head.index("阈值")] == flag.threshold and flag.threshold
        assert row[head.index("规则集")] == "某县责任追究办法（000 §五）"
        assert row[head.index("依据")] == flag.source and flag.source
    li_trust = [r for r in flag_rows if r[0] == "李四（A002）" and r[2] == "责任追究"]
    assert li_trust and li_trust[0][3] == "信任率 33.33%（年度 2024）"
    assert li_trust[0][7] == "004 §五.3（省实施办法未提供，1/2 为本系统默认）"


def _today() -> Any:
    from datetime import datetime

    from evaluation.rounds.operations import LOCAL_TZ

    return datetime(2026, 11, 30, 10, 0, tzinfo=LOCAL_TZ)


LONG_OPINION = (
    "该同志能够认真履行党风廉政建设“一岗双责”，带头遵守廉洁自律各项规定，"
    "分管领域未发生违规违纪问题；群众评价总体较好，但对分管科室日常监督还不够经常。"
)
LONG_RECTIFICATION = (
    "一、每季度听取一次分管科室廉政情况汇报；二、年底前完成廉政风险点排查并建立台账；"
    "三、整改情况书面报告上级纪检组。"
)


def _chinese(texts: list[str]) -> Counter[str]:
    return Counter(ch for t in texts for ch in t if "\u4e00" <= ch <= "\u9fff")


def test_the_export_prints_whole_and_landscape(
    app: Flask, sample_round: Round, tmp_path: Path
) -> None:
    build_history()
    vote(sample_round)
    for subject in sample_round.subjects:
        subject.opinion, subject.rectification = LONG_OPINION, LONG_RECTIFICATION
    db.session.commit()
    lifecycle.archive_round(sample_round, actor="test")
    db.session.commit()
    entries = queries.visible_entries(None)
    path = tmp_path / "archive.xlsx"
    path.write_bytes(archive_export.workbook_bytes(entries, scope="全部单位", today=_today()))
    book = load_workbook(path)
    for name in ("核验", "审计日志"):  # print the two print-ready sheets
        del book[name]
    book.save(path)
    pdf = render_pdf(path, tmp_path / "pdf")
    text = pdf_text(pdf)
    flat = re.sub(r"\s+", "", text)
    assert "廉政档案测评记录" in text and "廉政档案责任追究预警" in text
    assert "2026年11月30日" in flat
    names = {e.person.name if e.person else e.subject_name for e in entries}
    assert "市局领导班子" in names and "=SUM(1,2)" in names
    for name in names:
        assert name in text, name  # whole on one line: not cut, not wrapped mid-name
    # nothing is cut: every Chinese character of every cell is printed (at least as often)
    cells = [
        c.value
        for sheet in book
        for row in sheet.iter_rows()
        for c in row
        if isinstance(c.value, str)
    ]
    assert sum(LONG_OPINION in c for c in cells) == len(sample_round.subjects)
    wanted, printed = _chinese(cells), _chinese([text])
    missing = {ch: n - printed[ch] for ch, n in wanted.items() if printed[ch] < n}
    assert not missing
    timeline = queries.build_timeline(entries)
    assert timeline.flags
    for flag in timeline.flags:
        for value in re.findall(r"\d+\.\d\d%", flag.measured):
            assert value in text
    width, height = page_size_points(pdf)
    assert width > height
