"""The workbook of SPEC §8, feedback sheets and ``flask report``: every figure checked."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from fractions import Fraction as F
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from evaluation.extensions import db
from evaluation.models import Round
from evaluation.reports.workbook import RAW_RATE_COLUMNS, grade_columns
from evaluation.tally.aggregate import tally_round
from evaluation.tally.core import TallyResult
from tests.helpers import tally as th
from tests.helpers.tally import (
    INTEGRITY,
    MEMBER,
    ORGAN,
    POOL,
    PRINCIPAL,
    PRINT_SHEETS,
    TEAM,
    vote,
    vote_with_small_stratum,
)

# No 分项: no Gansu form is graded per item.
SHEETS = [*PRINT_SHEETS, "汇总", "分类别", "参测情况", "原始选票", "核验", "图表"]


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
    raw = list(RAW_RATE_COLUMNS) if result.weighted else []
    assert header[6:] == [
        *labels,
        *("优秀率", "满意率", "信任率", "综合得分", "测评等次", "排名"),
        *raw,
    ]
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
        if result.weighted:
            r = s.raw_figures
            assert row["满意率（未加权）"] == float(r.satisfaction_rate or 0)
            assert row["优秀率（未加权）"] == float(r.excellent_rate or 0)


def _raw_lines(ws: Worksheet) -> list[tuple[str, str, str, str]]:
    """The lines of 原始选票, up to the notes under them."""
    header, *rows = _rows(ws)
    assert header == ["测评对象", "测评内容", "测评人员类别", "等次"]
    lines = []
    for r in rows:
        if all(v is None for v in r):
            break
        assert len([v for v in r if v is not None]) == 4  # one answer per row, never a ballot
        lines.append((str(r[0]), str(r[1]), str(r[2]), str(r[3])))
    return lines


def _recount(ws: Worksheet, turnout: Worksheet, result: TallyResult) -> dict[str, dict]:
    """Recount every subject from 原始选票 alone (weights from 参测情况)."""
    lines = _raw_lines(ws)
    weights = {
        r[0]: F(str(r[5]))
        for r in _rows(turnout)[1:]
        if r[0] not in (None, "合计") and r[5] not in (None, "")
    }

    def weight(label: str) -> F:
        # "其他类别（含：A、B）" weighs the sum of its members' weights
        if label.startswith("其他类别（含："):
            return sum((weights[m] for m in label[len("其他类别（含：") : -1].split("、")), F(0))
        return weights[label]

    forms = {s.name: s.form for s in result.subjects}
    out: dict[str, dict] = {}
    for name, form in forms.items():
        per_stratum: dict[str, Counter[str]] = defaultdict(Counter)
        for subject, item, stratum, grade in lines:
            if subject == name and item == "总体":
                per_stratum[stratum][grade] += 1
        total: Counter[str] = Counter()
        for c in per_stratum.values():
            total.update(c)
        valid = sum(total[g.label] for g in form.grades)
        if weights:
            voted = {st: c for st, c in per_stratum.items() if sum(c[g.label] for g in form.grades)}
            norm = sum(weight(st) for st in voted)
            shares = {
                g.label: sum(
                    weight(st) / norm * F(c[g.label], sum(c[x.label] for x in form.grades))
                    for st, c in voted.items()
                )
                for g in form.grades
            }
        else:
            shares = {g.label: F(total[g.label], valid) for g in form.grades}
        raw = {g.label: F(total[g.label], valid) for g in form.grades}
        out[name] = {
            "有效票": valid,
            "弃权": total["弃权"],
            **{g.label: total[g.label] for g in form.grades},
            "优秀率": float(shares[form.grades[0].label]),
            "满意率": float(sum(shares[g.label] for g in form.grades if g.satisfied)),
            "信任率": float(sum(shares[g.label] for g in form.grades[:-1])),
            "综合得分": float(sum(g.score * shares[g.label] for g in form.grades)),
        }
        if weights:
            out[name].update(
                {
                    "优秀率（未加权）": float(raw[form.grades[0].label]),
                    "满意率（未加权）": float(
                        sum(raw[g.label] for g in form.grades if g.satisfied)
                    ),
                    "信任率（未加权）": float(sum(raw[g.label] for g in form.grades[:-1])),
                    "综合得分（未加权）": float(sum(g.score * raw[g.label] for g in form.grades)),
                }
            )
    return out


def _seal_from_sheet(book: Any) -> str:
    """The seal recomputed by hand from 原始选票 and the round id on 核验 (SPEC §10)."""
    round_id = {r[0]: r[1] for r in _rows(book["核验"])[1:]}["活动编号"]
    lines = sorted(
        json.dumps(list(line), ensure_ascii=False, separators=(",", ":"))
        for line in _raw_lines(book["原始选票"])
    )
    text = "\n".join([f"民主测评封存 v2 round={round_id} lines={len(lines)}", *lines])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    for name in ("汇总", "分类别", "参测情况", "原始选票", "核验"):
        ws = wb[name]
        assert ws.freeze_panes == "A2", name
        assert str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4, name
        assert ws.column_dimensions["A"].width > 5, name
    text = "\n".join(str(v) for r in _rows(summary) for v in r if v is not None)
    assert voted.seal is not None and voted.seal in text
    assert "测评有效" in text
    assert len(wb["图表"]._images) == 3 + len(result.subjects)

    # 分类别: 班子成员 cast 3 ballots → pooled with 中层干部 (10) as 其他类别, named
    _, strata = _table(wb["分类别"])
    assert {r["测评人员类别"] for r in strata} == {"一般干部", POOL}
    team_pool = next(r for r in strata if r["测评对象"] == TEAM and r["测评人员类别"] == POOL)
    assert team_pool["参评票"] == 13 and team_pool["优秀"] == 9
    assert team_pool["满意率"] == float(F(9, 13))
    assert all(r["满意率"] != "—" for r in strata)
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
    lines = _raw_lines(wb["原始选票"])
    assert len(lines) == 43 * 5  # one line per answer: 43 ballots, 5 subjects, no items
    # 班子成员 cast 3 ballots: labelled with its pool, never on its own
    assert Counter(line[2] for line in lines if line[0] == TEAM) == {POOL: 13, "一般干部": 30}
    assert all(line[2] != "班子成员" for line in lines)
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
    # 班子成员 casts 4 ballots: its weight 1/5 joins 中层干部's 2/5 in the pool
    vote_with_small_stratum(sample_round, weights=("1/5", "2/5", "2/5"))
    _report(runner, sample_round, tmp_path)
    wb = load_workbook(tmp_path / "测评结果.xlsx")
    result = tally_round(sample_round)
    assert result.weighted and all(s.pool is not None for s in result.subjects)
    _check_summary_against_tally(wb["汇总"], result)
    recount = _recount(wb["原始选票"], wb["参测情况"], result)
    _, summary = _table(wb["汇总"])
    assert len(summary) == len(recount) == 5
    for row in summary:
        expected = recount[str(row["测评对象"])]
        assert "满意率（未加权）" in expected
        for column, value in expected.items():
            assert row[column] == pytest.approx(value, rel=0, abs=1e-12), column
    text = "\n".join(str(r[0]) for r in _rows(wb["汇总"]) if r[0])
    assert "加权说明" in text and "测评有效" in text and "未加权" in text
    notes = "\n".join(str(r[0]) for r in _rows(wb["原始选票"]) if r[0])
    assert "“参测情况”表“权重”列" in notes
    assert _seal_from_sheet(wb) == sample_round.seal


def test_seal_recomputed_from_the_raw_sheet(
    runner: FlaskCliRunner, voted: Round, tmp_path: Path
) -> None:
    _report(runner, voted, tmp_path)
    wb = load_workbook(tmp_path / "测评结果.xlsx")
    assert voted.seal is not None and _seal_from_sheet(wb) == voted.seal
    checks = {r[0]: r[1] for r in _rows(wb["核验"])[1:]}
    assert checks["封存格式"] == "v2" and "原始选票" in str(checks["规范化方法"])
    # a changed answer changes the sheet, and the sheet's seal no longer matches
    th.change_one_answer(voted, PRINCIPAL, "basic", to="excellent")
    _report(runner, voted, tmp_path / "after")
    after = load_workbook(tmp_path / "after" / "测评结果.xlsx")
    assert _seal_from_sheet(after) != voted.seal


def test_raw_sheet_order_is_drawn_per_subject(
    runner: FlaskCliRunner, voted: Round, tmp_path: Path
) -> None:
    """No ballot can be rebuilt: each subject's lines are listed in their own random order."""
    orders = []
    for attempt in range(2):
        _report(runner, voted, tmp_path / str(attempt))
        lines = _raw_lines(load_workbook(tmp_path / str(attempt) / "测评结果.xlsx")["原始选票"])
        orders.append(lines)
        subjects = [line[0] for line in lines]
        # each subject's lines form one block: a row never holds two subjects' grades
        assert subjects == sorted(subjects, key=[TEAM, ORGAN, PRINCIPAL, MEMBER, INTEGRITY].index)
    assert sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]


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
            sample_round,
            actor="test",
            name=name,
            form_id="gansu-team",
            post="=1+1" if i else "",
            scope=None,
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
    raw_names = [c for row in wb["原始选票"].iter_rows() for c in row[:1] if c.value in nasty]
    assert {c.value for c in raw_names} == set(nasty)
    assert all(c.data_type == "s" and c.quotePrefix for c in raw_names)
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
