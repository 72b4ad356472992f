"""The official 测评汇总表 (SPEC §8): one print sheet per form, checked cell by cell against the
hand tally of ``tests/helpers/tally.py``, then printed with LibreOffice and read back."""

from __future__ import annotations

import html
import re
import subprocess
from fractions import Fraction as F
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskCliRunner
from openpyxl import load_workbook
from openpyxl.cell.cell import MergedCell
from openpyxl.worksheet.worksheet import Worksheet

from evaluation.extensions import db
from evaluation.models import Round
from evaluation.reports.workbook import SIGNATURE_LINE, print_title
from tests.helpers.office import page_size_points, pdf_pages, pdf_text, render_pdf
from tests.helpers.tally import (
    INTEGRITY,
    MEMBER,
    ORGAN,
    PRINCIPAL,
    PRINT_SHEETS,
    TEAM,
    vote,
    vote_with_small_stratum,
)

# After the print sheets; no 分项: no Gansu form is graded per item.
DATA_SHEETS = ["汇总", "分类别", "参测情况", "原始选票", "核验", "图表"]
TITLE = "兰州市局2026年度党风廉政建设责任制民主测评汇总表（{}）"
HEAD, FIRST_ROW = 5, 7  # the two header rows 5–6, subjects from row 7

# A subject whose name and post wrap: every ballot abstains on him.
LONG_NAME = "欧阳王五（挂职锻炼，兼任机关党委副书记）"
LONG_POST = "党组成员、副局长、机关党委书记兼办公室主任（分管人事教育、财务审计和后勤保障工作）"


def _report(runner: FlaskCliRunner, rnd: Round, out: Path) -> Path:
    res = runner.invoke(args=["report", str(rnd.id), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return next(Path(line) for line in res.output.splitlines() if line.endswith(".xlsx"))


def _rows(ws: Worksheet) -> list[list[Any]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def _text(ws: Worksheet) -> str:
    return "\n".join(str(v) for r in _rows(ws) for v in r if v is not None)


def _merged(ws: Worksheet) -> set[str]:
    return {str(r) for r in ws.merged_cells.ranges}


def _table(ws: Worksheet) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names (grade columns as "优秀 票数" / "优秀 百分比") and the subject rows."""
    upper = [c.value for c in ws[HEAD]]
    lower = [c.value for c in ws[HEAD + 1]]
    names: list[str] = []
    current = ""
    for top, sub in zip(upper, lower, strict=True):
        if top is not None:
            current = str(top).replace("\n", "")
        names.append(f"{current} {sub}" if sub else current)
    rows = []
    for r in ws.iter_rows(min_row=FIRST_ROW):
        if r[0].value is None:
            break
        rows.append({name: cell for name, cell in zip(names, r, strict=False)})
    return names, rows


def _check_grades(row: dict[str, Any], counts: dict[str, int], valid: int) -> None:
    for label, n in counts.items():
        assert row[f"{label} 票数"].value == n, label
        share = row[f"{label} 百分比"]
        assert isinstance(share.value, int | float)  # a number, never text
        assert share.value == pytest.approx(float(F(n, valid)))
        assert share.number_format == "0.00%", label


@pytest.fixture
def voted(sample_round: Round) -> Round:
    vote(sample_round)
    return sample_round


def test_print_sheets_cell_by_cell(runner: FlaskCliRunner, voted: Round, tmp_path: Path) -> None:
    wb = load_workbook(_report(runner, voted, tmp_path))
    assert wb.sheetnames == PRINT_SHEETS + DATA_SHEETS

    team = wb["汇总表-领导班子"]
    assert team["A1"].value == TITLE.format("领导班子")
    assert "A1:O1" in _merged(team)  # the title across the table: 3 + 2×3 + 6 columns
    assert team["A2"].value == "测评表：领导班子执行党风廉政建设责任制情况民主测评表"
    info = str(team["A3"].value)
    assert "测评时间：" in info and re.search(r"\d{4}年\d{1,2}月\d{1,2}日", info)
    assert "测评有效" in info
    planned = str(team["A4"].value)
    assert "应参评：班子成员 7 人、中层干部 20 人、一般干部 40 人，合计 67 人" in planned
    assert "实参评：班子成员 3 人、中层干部 10 人、一般干部 30 人，合计 43 人" in planned

    # two header rows: 序号 / 测评对象 / 职务 over both, each grade over 票数 and 百分比
    names, rows = _table(team)
    assert names == [
        "序号",
        "测评对象",
        "职务",
        "优秀 票数",
        "优秀 百分比",
        "合格 票数",
        "合格 百分比",
        "不合格 票数",
        "不合格 百分比",
        "弃权",
        "有效票",
        "优秀率",
        "满意率",
        "信任率",
        "测评等次",
    ]  # no 排名: the form has one subject
    assert {"A5:A6", "B5:B6", "C5:C6", "D5:E5", "F5:G5", "H5:I5", "J5:J6", "O5:O6"} <= (
        _merged(team)
    )
    assert [c.value for c in team[6]][3:9] == ["票数", "百分比"] * 3
    assert all(c.alignment.wrap_text for c in (*team[5], *team[6]) if c.value is not None)
    # hand count: 优秀 3+6, 合格 20, 不合格 4, 弃权 10
    (row,) = rows
    assert row["序号"].value == 1 and row["测评对象"].value == TEAM
    assert row["职务"].value in (None, "")  # a team has no 职务
    _check_grades(row, {"优秀": 9, "合格": 20, "不合格": 4}, 33)
    assert (row["弃权"].value, row["有效票"].value) == (10, 33)
    for column, value in (("优秀率", F(9, 33)), ("满意率", F(29, 33)), ("信任率", F(29, 33))):
        assert row[column].value == pytest.approx(float(value)) and row[column].number_format == (
            "0.00%"
        )
    assert row["测评等次"].value == "合格"
    # thin borders on every table cell, header cells included (openpyxl reads a merged range's
    # covered cells back without their own style: the range's first cell stands for them)
    for r in team.iter_rows(min_row=HEAD, max_row=FIRST_ROW, max_col=len(names)):
        for cell in (c for c in r if not isinstance(c, MergedCell)):
            assert all(
                getattr(cell.border, side).style == "thin"
                for side in ("left", "right", "top", "bottom")
            ), cell.coordinate

    principal = _table(wb["汇总表-班子正职"])[1][0]
    assert principal["职务"].value == "局长"
    _check_grades(principal, {"优秀": 23, "称职": 6, "基本称职": 10, "不称职": 4}, 43)
    assert principal["满意率"].value == pytest.approx(float(F(29, 43)))
    assert principal["测评等次"].value == "优秀"
    member = _table(wb["汇总表-班子成员"])[1][0]
    _check_grades(member, {"优秀": 20, "称职": 7, "基本称职": 6, "不称职": 0}, 33)
    assert (member["弃权"].value, member["信任率"].value) == (10, 1)
    organ = _table(wb["汇总表-纪检监察"])[1][0]
    _check_grades(organ, {"优秀": 26, "合格": 7, "不合格": 10}, 43)
    integrity = _table(wb["汇总表-廉洁自律"])[1][0]
    assert integrity["测评对象"].value == INTEGRITY
    _check_grades(integrity, {"好": 19, "中": 20, "差": 4}, 43)
    assert integrity["测评等次"].value == "中"

    own_labels = {
        "汇总表-领导班子": {"优秀", "合格", "不合格"},
        "汇总表-班子正职": {"优秀", "称职", "基本称职", "不称职"},
        "汇总表-班子成员": {"优秀", "称职", "基本称职", "不称职"},
        "汇总表-纪检监察": {"优秀", "合格", "不合格"},
        "汇总表-廉洁自律": {"好", "中", "差"},
    }
    all_labels = set().union(*own_labels.values())
    for name, short in zip(PRINT_SHEETS, own_labels, strict=True):
        ws = wb[name]
        assert ws["A1"].value == TITLE.format(short.removeprefix("汇总表-"))
        header = {c.value for c in ws[HEAD]} | {c.value for c in ws[HEAD + 1]}
        assert header & all_labels == own_labels[name], name  # this form's grades only
        assert None not in {c.value for c in ws[HEAD][: len(_table(ws)[0])] if c.value} - {None}
        text = _text(ws)
        # the rule set: its name and true source, and this form's thresholds only
        assert "等次规则：本系统默认规则（可修改）（来源：本系统默认规则" in text
        lines = text.splitlines()
        short_name = name.removeprefix("汇总表-")
        assert any(line.startswith(f"{short_name}：") for line in lines)
        others = [n.removeprefix("汇总表-") for n in PRINT_SHEETS if n != name]
        assert not any(line.startswith(f"{o}：") for o in others for line in lines)
        assert SIGNATURE_LINE in lines and "（盖章）" in lines
        assert voted.seal is not None and voted.seal not in text  # no whole digest
        assert voted.seal[:12] in ws.oddFooter.left.text
        assert "不加权" in text or "各比例均未加权" in text
        # print setup: A4 landscape, one page wide, the header rows on every page
        setup = ws.page_setup
        assert setup.orientation == "landscape" and str(setup.paperSize) == "9"
        assert (setup.fitToWidth, setup.fitToHeight) == (1, 0)
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.print_title_rows == "$5:$6"
        assert ws.print_options.horizontalCentered
        assert 0.2 <= ws.page_margins.left <= 1 and 0.2 <= ws.page_margins.top <= 1

    # 核验: the close time in Beijing time, named
    checks = {r[0]: r[1] for r in _rows(wb["核验"])[1:]}
    assert str(checks["结束时间"]).endswith("（北京时间）") and "UTC" not in str(checks["结束时间"])
    assert "本系统默认规则" in str(checks["等次规则"])


def test_weighted_print_sheet(runner: FlaskCliRunner, sample_round: Round, tmp_path: Path) -> None:
    vote_with_small_stratum(sample_round, weights=("1/5", "2/5", "2/5"))
    wb = load_workbook(_report(runner, sample_round, tmp_path))
    # the team's form is graded per item here: 分项 is back, after 汇总
    assert wb.sheetnames == [*PRINT_SHEETS, "汇总", "分项", *DATA_SHEETS[1:]]
    ws = wb["汇总表-班子正职"]
    names, (row,) = _table(ws)
    assert names[11:] == [
        "弃权",
        "有效票",
        "优秀率（加权）",
        "满意率（加权）",
        "信任率（加权）",
        "优秀率（未加权）",
        "满意率（未加权）",
        "测评等次",
    ]
    # 张三: 班子成员 4× 不称职; 中层干部 5× 称职, 2× 基本称职; 一般干部 14× 优秀, 6× 弃权
    _check_grades(row, {"优秀": 14, "称职": 5, "基本称职": 2, "不称职": 4}, 25)
    assert (row["弃权"].value, row["有效票"].value) == (6, 25)
    # weighted: 一般干部 2/5 (all 优秀); the pool 1/5 + 2/5 = 3/5 (称职 5 of 11)
    assert row["优秀率（加权）"].value == pytest.approx(float(F(2, 5)))
    assert row["满意率（加权）"].value == pytest.approx(float(F(37, 55)))
    assert row["优秀率（未加权）"].value == pytest.approx(float(F(14, 25)))
    assert row["满意率（未加权）"].value == pytest.approx(float(F(19, 25)))
    assert all(row[n].number_format == "0.00%" for n in names[13:18])
    text = _text(ws)
    assert "加权说明" in text and "其他类别" in text
    assert "“加权”" in text and "“未加权”" in text


# --- printed with LibreOffice -------------------------------------------------------------------


def _words(pdf: Path) -> list[list[tuple[float, float, float, float, str]]]:
    """Each page's words with their boxes (pdftotext -bbox)."""
    out = subprocess.run(
        ["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    pages = []
    for page in out.split("<page ")[1:]:
        pages.append(
            [
                (float(a), float(b), float(c), float(d), html.unescape(w))
                for a, b, c, d, w in re.findall(
                    r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">'
                    r"(.*?)</word>",
                    page,
                )
            ]
        )
    return pages


def _overprinted(words: list[tuple[float, float, float, float, str]]) -> list[tuple[str, str]]:
    """Pairs of words printed over each other (boxes overlapping by much of their height)."""
    bad = []
    for i, a in enumerate(words):
        for b in words[i + 1 :]:
            dx = min(a[2], b[2]) - max(a[0], b[0])
            dy = min(a[3], b[3]) - max(a[1], b[1])
            height = min(a[3] - a[1], b[3] - b[1])
            if dx > 1 and dy > 0.4 * height:
                bad.append((a[4], b[4]))
    return bad


# Rendered once per database engine for the module's tests (LibreOffice takes seconds).
_PRINTED: dict[str, tuple[str, Path]] = {}


@pytest.fixture
def printed(
    request: pytest.FixtureRequest, db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """The voted round with a subject whose name and post wrap, printed to PDF: (seal, PDF)."""
    from evaluation.rounds import operations as rounds

    engine = db_url.split(":", 1)[0]
    if engine not in _PRINTED:
        rnd: Round = request.getfixturevalue("sample_round")
        runner: FlaskCliRunner = request.getfixturevalue("runner")
        rounds.add_subject(
            rnd, actor="test", name=LONG_NAME, form_id="gansu-member", post=LONG_POST, scope=None
        )
        db.session.commit()
        vote(rnd)  # every ballot abstains on him
        tmp = tmp_path_factory.mktemp("printed")
        xlsx = _report(runner, rnd, tmp / "out")
        assert rnd.seal is not None
        _PRINTED[engine] = (rnd.seal, render_pdf(xlsx, tmp / "pdf"))
    return _PRINTED[engine]


@pytest.mark.slow
def test_printed_with_libreoffice(printed: tuple[str, Path]) -> None:
    seal, pdf = printed
    width, height = page_size_points(pdf)
    assert abs(width - 842) < 2 and abs(height - 595) < 2  # A4 landscape
    # each print sheet is one page (one page wide, and short): pages 1–5, then 汇总
    assert pdf_pages(pdf) > len(PRINT_SHEETS)
    for page, name in enumerate(PRINT_SHEETS, 1):
        text = re.sub(r"\s+", "", pdf_text(pdf, first=page, last=page))
        assert TITLE.format(name.removeprefix("汇总表-")) in text, page
        assert SIGNATURE_LINE.replace(" ", "") in text, page
        assert "（盖章）" in text and "等次规则：本系统默认规则" in text
        assert seal[:12] in text
    after = pdf_text(pdf, first=len(PRINT_SHEETS) + 1, last=len(PRINT_SHEETS) + 1)
    assert "测评汇总表" not in after and "测评对象" in after  # 汇总 starts on page 6
    # every subject and every form, whole, on the print sheets
    sheets = pdf_text(pdf, first=1, last=len(PRINT_SHEETS))
    for name in (TEAM, ORGAN, PRINCIPAL, MEMBER, INTEGRITY, "局长", "副局长"):
        assert name in sheets, name
    flat = re.sub(r"\s+", "", sheets)
    for title in (
        "领导班子执行党风廉政建设责任制情况民主测评表",
        "领导班子正职履行党风廉政建设责任制情况民主测评表",
        "领导班子成员履行党风廉政建设责任制情况民主测评表",
        "纪检监察机关履行职责情况民主测评表",
        "领导干部遵守廉洁自律规定情况民主测评表",
    ):
        assert f"测评表：{title}" in sheets.replace(" ", "") or title in flat, title
    # the long name and post wrap inside their cells: every character printed, in order
    member_page = re.sub(r"\s+", "", pdf_text(pdf, first=3, last=3))
    assert all(ch in member_page for ch in LONG_NAME + LONG_POST)
    # readable type: the subject names print at 7 pt or more (fit to width, not to a page)
    words = _words(pdf)
    for page in words[: len(PRINT_SHEETS)]:
        names = [w for w in page if w[4] in (TEAM, ORGAN, PRINCIPAL, MEMBER, INTEGRITY)]
        assert names and all(w[3] - w[1] >= 7 for w in names)
    # The data sheets print readably too: 汇总's twenty columns go over pages at 80 %, not
    # squeezed onto one page at half size (5 pt).
    summary = words[len(PRINT_SHEETS)]
    assert any(w[4] == "测评对象" for w in summary)
    assert min(w[3] - w[1] for w in summary) >= 7
    # 核验 gives the close time in Beijing time
    full = pdf_text(pdf)
    assert "（北京时间）" in full and " UTC" not in full


@pytest.mark.slow
def test_no_text_printed_over_another(printed: tuple[str, Path]) -> None:
    """Wrapped cells (the long name and post, 核验's long texts, notes) get rows high enough:
    no two words of the printed workbook overlap."""
    _, pdf = printed
    for number, page in enumerate(_words(pdf), 1):
        assert not _overprinted(page), (number, _overprinted(page)[:3])


@pytest.mark.parametrize(
    ("title", "printed"),
    [
        (
            "2026年度党风廉政建设责任制民主测评",
            "兰州市局2026年度党风廉政建设责任制民主测评汇总表（领导班子）",
        ),
        (
            "示例：2026年度党风廉政建设责任制民主测评",
            "兰州市局示例：2026年度党风廉政建设责任制民主测评汇总表（领导班子）",
        ),
        ("党风廉政建设专项民主测评", "兰州市局2026年度党风廉政建设专项民主测评汇总表（领导班子）"),
        ("年中廉政谈话满意度", "兰州市局2026年度年中廉政谈话满意度测评汇总表（领导班子）"),
        (
            "2026年度兰州市局党风廉政建设责任制民主测评",
            "2026年度兰州市局党风廉政建设责任制民主测评汇总表（领导班子）",
        ),
    ],
)
def test_the_print_title_says_the_year_once(title: str, printed: str) -> None:
    from types import SimpleNamespace

    rnd = SimpleNamespace(title=title, year=2026, unit=SimpleNamespace(name="兰州市局"))
    form = SimpleNamespace(id="gansu-team", title="领导班子执行党风廉政建设责任制情况民主测评表")
    assert print_title(rnd, form) == printed  # type: ignore[arg-type]


def test_no_chart_is_cut_by_a_printed_page(
    runner: FlaskCliRunner, voted: Round, tmp_path: Path
) -> None:
    """图表 holds a dozen charts, several pages printed: a chart that would run over a page's
    foot starts the next page (a manual page break), so none is printed in two halves."""
    from evaluation.reports.workbook import CHART_ROWS_PER_PAGE, ROW_PX

    ws = load_workbook(_report(runner, voted, tmp_path / "out"))["图表"]
    charts = sorted(
        (image.anchor._from.row + 1, image.anchor.ext.height / 9525) for image in ws._images
    )
    breaks = sorted(b.id for b in ws.row_breaks.brk)
    assert len(charts) > 6 and breaks  # more than one page of charts
    page_tops = [1] + [b + 1 for b in breaks]
    for top, height in charts:
        bottom = top + height / ROW_PX  # the row the chart ends in
        page = max(t for t in page_tops if t <= top)
        following = [t for t in page_tops if t > page]
        assert not following or bottom < following[0], (top, bottom, breaks)
        assert bottom - page <= CHART_ROWS_PER_PAGE, (top, bottom, page)


def test_a_wide_data_sheet_prints_over_pages_at_a_readable_scale(
    runner: FlaskCliRunner, voted: Round, tmp_path: Path
) -> None:
    """汇总 has some twenty columns: printed at 80 %, broken between columns, its 测评对象
    column on every page, and its notes within the first page; a narrow sheet stays one page
    wide."""
    book = load_workbook(_report(runner, voted, tmp_path / "out"))
    summary = book["汇总"]
    breaks = [b.id for b in summary.col_breaks.brk]
    assert summary.page_setup.scale == 80 and breaks
    assert summary.print_title_cols == "$A:$A"
    notes = [r for r in summary.merged_cells.ranges if r.min_col == 1 and r.max_col > 1]
    assert notes and all(r.max_col <= breaks[0] for r in notes)
    turnout = book["参测情况"]
    assert not turnout.col_breaks.brk and turnout.sheet_properties.pageSetUpPr.fitToPage
