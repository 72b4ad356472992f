"""The workbook of SPEC §8, feedback sheets and ``flask report``: every figure checked."""

from __future__ import annotations

from collections import Counter, defaultdict
from fractions import Fraction as F
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from evaluation.extensions import db
from evaluation.models import Round
from evaluation.reports.workbook import grade_columns
from evaluation.tally.aggregate import tally_round
from evaluation.tally.core import TallyResult
from tests.helpers import tally as th
from tests.helpers.tally import INTEGRITY, MEMBER, ORGAN, PRINCIPAL, TEAM, vote

SHEETS = ["汇总", "分项", "分类别", "参测情况", "原始选票", "核验", "图表"]


def _report(runner: FlaskCliRunner, rnd: Round, out: Path) -> list[Path]:
    res = runner.invoke(args=["report", str(rnd.id), "--out", str(out)])
    assert res.exit_code == 0, res.output
    paths = [Path(line) for line in res.output.splitlines() if line.strip()]
    assert all(p.is_file() for p in paths)
    return paths


def _rows(ws: Worksheet) -> list[list[object]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def _table(ws: Worksheet) -> tuple[list[str], list[dict[str, object]]]:
    """The header and the data rows up to the first blank row."""
    rows = _rows(ws)
    header = [str(h) for h in rows[0]]
    data = []
    for r in rows[1:]:
        if all(v is None for v in r):
            break
        data.append(dict(zip(header, r, strict=False)))
    return header, data


def _check_summary_against_tally(ws: Worksheet, result: TallyResult) -> None:
    header, rows = _table(ws)
    labels = grade_columns(result)
    assert header[:6] == ["测评对象", "职务", "测评表", "参评票", "有效票", "弃权"]
    assert header[6:] == [*labels, "优秀率", "满意率", "信任率", "综合得分", "测评等次", "排名"]
    assert len(rows) == len(result.subjects)
    for row, s in zip(rows, result.subjects, strict=True):
        f = s.figures
        assert row["测评对象"] == s.name and row["测评表"] == s.form.title
        assert row["有效票"] == f.valid and row["弃权"] == f.abstentions
        assert row["参评票"] == f.ballots
        own = {g.label: f.counts[g.key] for g in s.form.grades}
        for label in labels:
            assert row[label] == own.get(label)  # blank where the form lacks the grade
        for column, value in (
            ("优秀率", f.excellent_rate),
            ("满意率", f.satisfaction_rate),
            ("信任率", f.trust_rate),
            ("综合得分", f.score),
        ):
            assert row[column] == (float(value) if value is not None else None), column
        assert row["测评等次"] == (s.grade_label or None)
        assert row["排名"] == s.rank


def _recount(ws: Worksheet, turnout: Worksheet, result: TallyResult) -> dict[str, dict]:
    """Recount every subject from 原始选票 alone (weights from 参测情况)."""
    header, *rows = _rows(ws)
    weights = {
        r[0]: F(str(r[5]))
        for r in _rows(turnout)[1:]
        if r[0] not in (None, "合计") and r[5] not in (None, "")
    }
    forms = {s.name: s.form for s in result.subjects}
    out: dict[str, dict] = {}
    for column, name in enumerate(header):
        if name not in forms:
            continue
        form = forms[name]
        per_stratum: dict[str, Counter[str]] = defaultdict(Counter)
        for r in rows:
            per_stratum[str(r[1])][str(r[column])] += 1
        total: Counter[str] = Counter()
        for c in per_stratum.values():
            total.update(c)
        valid = sum(total[g.label] for g in form.grades)
        if weights:
            voted = {st: c for st, c in per_stratum.items() if sum(c[g.label] for g in form.grades)}
            norm = sum(weights[st] for st in voted)
            shares = {
                g.label: sum(
                    weights[st] / norm * F(c[g.label], sum(c[x.label] for x in form.grades))
                    for st, c in voted.items()
                )
                for g in form.grades
            }
        else:
            shares = {g.label: F(total[g.label], valid) for g in form.grades}
        out[str(name)] = {
            "有效票": valid,
            "弃权": total["弃权"],
            **{g.label: total[g.label] for g in form.grades},
            "优秀率": float(shares[form.grades[0].label]),
            "满意率": float(sum(shares[g.label] for g in form.grades if g.satisfied)),
            "信任率": float(sum(shares[g.label] for g in form.grades[:-1])),
            "综合得分": float(sum(g.score * shares[g.label] for g in form.grades)),
        }
    return out


@pytest.fixture
def voted(sample_round: Round) -> Round:
    """The round of test_tally_db, closed and sealed."""
    vote(sample_round)
    return sample_round


def test_flask_report_writes_every_output(
    app: Flask, runner: FlaskCliRunner, voted: Round, tmp_path: Path
) -> None:
    paths = _report(runner, voted, tmp_path / "out")
    names = {p.name for p in paths}
    assert "测评结果.xlsx" in names and "反馈单-全部.pdf" in names
    assert {f"反馈单-{n}.pdf" for n in (TEAM, ORGAN, PRINCIPAL, MEMBER, INTEGRITY)} <= names
    assert {"图表-等次分布.png", "图表-满意率排名.png", "图表-参测情况.png"} <= names
    for pdf in (p for p in paths if p.suffix == ".pdf"):
        assert pdf.read_bytes().startswith(b"%PDF")
    combined = (tmp_path / "out" / "反馈单-全部.pdf").read_bytes()
    assert combined.count(b"/Type /Page\n") + combined.count(b"/Type /Page ") >= 5
    # default folder: REPORTS_DIR/<round id>/
    res = runner.invoke(args=["report", str(voted.id)])
    assert res.exit_code == 0, res.output
    assert Path(res.output.splitlines()[0]).parent == Path(app.config["REPORTS_DIR"]) / str(
        voted.id
    )


def test_workbook_figures_equal_the_tally(
    runner: FlaskCliRunner, voted: Round, tmp_path: Path
) -> None:
    _report(runner, voted, tmp_path)
    wb = load_workbook(tmp_path / "测评结果.xlsx")
    assert wb.sheetnames == SHEETS
    result = tally_round(voted)
    summary = wb["汇总"]
    _check_summary_against_tally(summary, result)
    # numeric rates in percent format, frozen header, widths, A4
    header = [c.value for c in summary[1]]
    rate_cell = summary.cell(row=2, column=header.index("满意率") + 1)
    assert isinstance(rate_cell.value, float) and rate_cell.number_format == "0.00%"
    for name in ("汇总", "分项", "分类别", "参测情况", "原始选票", "核验"):
        ws = wb[name]
        assert ws.freeze_panes == "A2", name
        assert str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4, name
        assert ws.column_dimensions["A"].width > 5, name
    text = "\n".join(str(v) for r in _rows(summary) for v in r if v is not None)
    assert voted.seal is not None and voted.seal in text
    assert "测评有效" in text
    assert len(wb["图表"]._images) == 3 + len(result.subjects)

    # 分类别: 班子成员 cast 3 ballots → "—"; 中层干部 shown
    _, strata = _table(wb["分类别"])
    small = [r for r in strata if r["测评人员类别"] == "班子成员"]
    assert small and all(r["满意率"] == "—" and r["有效票"] == "—" for r in small)
    team_middle = next(
        r for r in strata if r["测评对象"] == TEAM and r["测评人员类别"] == "中层干部"
    )
    assert team_middle["满意率"] == 0.6 and team_middle["优秀"] == 6
    assert any("少于 5 张" in str(r[0]) for r in _rows(wb["分类别"]) if r[0])

    # 参测情况
    _, turnout = _table(wb["参测情况"])
    assert [r["已参测"] for r in turnout[:3]] == [3, 10, 30]
    assert turnout[3]["测评人员类别"] == "合计" and turnout[3]["参测率"] == float(F(43, 62))

    # 核验
    verification = {r[0]: r[1] for r in _rows(wb["核验"])[1:]}
    assert verification["封存码"] == voted.seal
    assert verification["封存算法"] == "SHA-256"
    assert "封存的计票结果" in verification["数字来源"]
    assert f"flask verify {voted.id}" in verification["核验方法"]


def test_summary_recounted_from_raw_ballots(
    runner: FlaskCliRunner, voted: Round, tmp_path: Path
) -> None:
    _report(runner, voted, tmp_path)
    wb = load_workbook(tmp_path / "测评结果.xlsx")
    raw = _rows(wb["原始选票"])
    assert len(raw) - 1 == 43
    # 班子成员 cast 3 ballots: "—" would single them out, so no stratum is named at all
    assert Counter(r[1] for r in raw[1:]) == {"—": 43}
    recount = _recount(wb["原始选票"], wb["参测情况"], tally_round(voted))
    _, summary = _table(wb["汇总"])
    assert len(recount) == len(summary) == 5
    for row in summary:
        expected = recount[str(row["测评对象"])]
        for column, value in expected.items():
            assert row[column] == value, (row["测评对象"], column)


def test_weighted_summary_recounted_from_raw_ballots(
    runner: FlaskCliRunner, sample_round: Round, tmp_path: Path
) -> None:
    for name, weight in (("班子成员", "1/5"), ("中层干部", "2/5"), ("一般干部", "2/5")):
        th.stratum(sample_round, name).weight = weight
    db.session.commit()
    th.open_round(sample_round)
    # every stratum at least 5 ballots, so the raw sheet names them all
    grades = {TEAM: "优秀", ORGAN: "合格", PRINCIPAL: "称职", MEMBER: "优秀", INTEGRITY: "好"}
    th.cast(sample_round, "班子成员", grades, times=5)
    th.cast(sample_round, "中层干部", {**grades, TEAM: "不合格", MEMBER: None}, times=6)
    th.cast(sample_round, "一般干部", {**grades, TEAM: "合格", PRINCIPAL: "不称职"}, times=9)
    th.cast(sample_round, "一般干部", {TEAM: None, ORGAN: "优秀"}, times=3)
    db.session.commit()
    th.close_round(sample_round)
    _report(runner, sample_round, tmp_path)
    wb = load_workbook(tmp_path / "测评结果.xlsx")
    result = tally_round(sample_round)
    _check_summary_against_tally(wb["汇总"], result)
    recount = _recount(wb["原始选票"], wb["参测情况"], result)
    _, summary = _table(wb["汇总"])
    for row in summary:
        for column, value in recount[str(row["测评对象"])].items():
            assert row[column] == pytest.approx(value, rel=0, abs=1e-12), column
    text = "\n".join(str(r[0]) for r in _rows(wb["汇总"]) if r[0])
    assert "加权" in text and "测评有效" in text


def test_raw_sheet_hides_small_strata() -> None:
    from evaluation.reports.workbook import raw_stratum_labels
    from evaluation.tally.core import StratumInput, TallyInput, tally

    def labels(*used: int) -> list[str]:
        strata = tuple(StratumInput(i, f"类别{i}", issued=50, used=n) for i, n in enumerate(used))
        return list(raw_stratum_labels(tally(TallyInput(strata, (), ()))).values())

    assert labels(3, 2, 10) == ["—", "—", "类别2"]  # the hidden ones hold 5 ballots together
    assert labels(3, 10, 10) == ["—", "—", "—"]  # "—" alone would be the 3
    assert labels(5, 10) == ["类别0", "类别1"]


def test_invalid_round_says_so(runner: FlaskCliRunner, sample_round: Round, tmp_path: Path) -> None:
    vote(sample_round, unused_general=10)  # 43 of 67 < 2/3
    _report(runner, sample_round, tmp_path)
    wb = load_workbook(tmp_path / "测评结果.xlsx")
    summary = [str(r[0]) for r in _rows(wb["汇总"]) if r[0]]
    assert any(line.startswith("测评无效") for line in summary)
    verification = {r[0]: r[1] for r in _rows(wb["核验"])[1:]}
    assert str(verification["结果有效性"]).startswith("测评无效")
    assert [r[1] for r in _rows(wb["参测情况"]) if r[0] == "结果"] == ["无效"]


def test_user_text_never_becomes_a_formula(
    runner: FlaskCliRunner, sample_round: Round, tmp_path: Path
) -> None:
    from evaluation.rounds import operations as rounds

    nasty = ['=HYPERLINK("http://evil.example","点我")', "+1+2", "-3", "@SUM(A1:A9)"]
    for i, name in enumerate(nasty):
        rounds.add_subject(
            sample_round, actor="test", name=name, form_id="gansu-team", post="=1+1" if i else ""
        )
    sample_round.title = "=cmd|' /C calc'!A0"
    db.session.commit()
    vote(sample_round)
    _report(runner, sample_round, tmp_path)
    wb = load_workbook(tmp_path / "测评结果.xlsx")
    cells = {c.value: c for row in wb["汇总"].iter_rows() for c in row if c.value in nasty}
    assert set(cells) == set(nasty)
    for value, cell in cells.items():
        assert cell.data_type == "s", value
        assert cell.quotePrefix, value
    posts = [c for row in wb["汇总"].iter_rows() for c in row if c.value == "=1+1"]
    assert posts and all(c.data_type == "s" for c in posts)
    raw_header = [c for c in wb["原始选票"][1] if c.value in nasty]
    assert len(raw_header) == len(nasty) and all(c.data_type == "s" for c in raw_header)
    title = {r[0].value: r[1] for r in wb["核验"].iter_rows(min_row=2)}["测评活动"]
    assert title.value == "=cmd|' /C calc'!A0" and title.data_type == "s"
    # nothing in the file is stored as a formula
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)


def test_writer_neutralises_tab_and_carriage_return(tmp_path: Path) -> None:
    from evaluation.spreadsheets import Sheet, is_formula_like, new_workbook

    assert all(is_formula_like(t) for t in ("=1", "+1", "-1", "@x", "\t=1", "\r=1"))
    assert not is_formula_like("张三") and not is_formula_like("1=1")
    wb = new_workbook()
    sheet = Sheet(wb, "测试")
    sheet.row(["\t=1+1", "\r=2", 0.5])
    wb.save(tmp_path / "t.xlsx")
    row = next(load_workbook(tmp_path / "t.xlsx")["测试"].iter_rows())
    assert [c.data_type for c in row] == ["s", "s", "n"]
    assert row[0].quotePrefix and row[1].quotePrefix


def test_report_refused_while_open(runner: FlaskCliRunner, sample_round: Round) -> None:
    th.open_round(sample_round)
    res = runner.invoke(args=["report", str(sample_round.id)])
    assert res.exit_code != 0
    assert "测评结束后" in res.output and "Traceback" not in res.output
    res = runner.invoke(args=["report", "9999"])
    assert res.exit_code != 0 and "不存在" in res.output
