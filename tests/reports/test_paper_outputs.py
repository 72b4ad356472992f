"""Issue 16 item 5: 测评汇总表, feedback sheets and results pages count paper and phone ballots
together and show 废票 — printed (LibreOffice, pdftotext) and read back; a round without paper
prints none of these words."""

from __future__ import annotations

import re
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from flask.testing import FlaskClient, FlaskCliRunner
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from evaluation.models import Round
from evaluation.reports import paper
from evaluation.reports.feedback import feedback_pdf
from evaluation.reports.workbook import PAPER_TURNOUT_COLUMNS, SUMMARY_FIXED
from evaluation.tally.aggregate import sealed_result
from evaluation.tally.core import PaperFigures, StratumTurnoutResult, TallyResult
from tests.helpers import tally as th
from tests.helpers.office import pdf_pages, pdf_text, render_pdf
from tests.helpers.paper_round import EXPECTED, paper_round
from tests.helpers.tally import PRINCIPAL, PRINT_SHEETS, TEAM, vote
from tests.helpers.web import AuthActions

PAPER_WORDS = ("纸质", "废票")


def _report(runner: FlaskCliRunner, rnd: Round, out: Path) -> Path:
    res = runner.invoke(args=["report", str(rnd.id), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return next(Path(line) for line in res.output.splitlines() if line.endswith(".xlsx"))


def _rows(ws: Worksheet) -> list[list[object]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def _text(ws: Worksheet) -> str:
    return "\n".join(str(v) for r in _rows(ws) for v in r if v is not None)


def _flat(text: str) -> str:
    """Printed text without the spaces and line breaks a wrapped line adds."""
    return re.sub(r"\s+", "", text)


def _used_text() -> str:
    return "实参评：" + "、".join(f"{n} {u} 人{note}" for n, u, note in EXPECTED.used)


def test_print_sheets_count_paper_and_show_invalid_ballots(
    runner: FlaskCliRunner, sample_round: Round, tmp_path: Path
) -> None:
    rnd = paper_round(sample_round)
    path = _report(runner, rnd, tmp_path)
    wb = load_workbook(path)
    for name in PRINT_SHEETS:
        ws = wb[name]
        line = str(ws["A4"].value)
        assert f"{_used_text()}，合计 {EXPECTED.total_used} 人" in line, line
        assert "班子成员 3 人、" in line  # no paper there: nothing beside it
        assert ws["A5"].value == EXPECTED.rules
        # the table starts one row lower, and that is the row repeated on every page
        assert ws["A6"].value == "序号" and ws["B6"].value == "测评对象"
        assert ws.print_title_rows == "$6:$7"
        assert "印制的纸质选票计入发放数" in _text(ws)

    # 汇总 (for tools): the same columns, nothing about paper
    summary = wb["汇总"]
    header = [c.value for c in summary[1]]
    assert tuple(header[: len(SUMMARY_FIXED)]) == SUMMARY_FIXED
    assert not any(w in _text(summary) for w in PAPER_WORDS)

    # 参测情况: the first table as before, the 纸质票 table after it
    turnout = _rows(wb["参测情况"])
    assert turnout[0][:6] == [
        "测评人员类别",
        "应参加人数",
        "发放测评码",
        "已参测",
        "参测率",
        "权重",
    ]
    assert turnout[1][:4] == ["班子成员", 7, 3, 3]
    assert turnout[2][:4] == ["中层干部", 20, 13, 12]
    assert turnout[3][:4] == ["一般干部", 40, 8, 7]
    assert turnout[4][:4] == ["合计", 67, 24, 22]
    start = next(i for i, r in enumerate(turnout) if tuple(r[:6]) == PAPER_TURNOUT_COLUMNS)
    assert start > 4
    assert turnout[start + 1][:6] == ["中层干部", 3, 2, 1, 1, "空白票 1"]
    assert turnout[start + 2][:6] == ["一般干部", 8, 7, 5, 2, "方框外有标记 1、空白票 1"]
    assert turnout[start + 3][:5] == ["合计", 11, 9, 6, 3]
    assert EXPECTED.rules in _text(wb["参测情况"])

    # printed as an official prints it
    pdf = render_pdf(path, tmp_path / "pdf")
    printed = _flat(pdf_text(pdf))
    assert printed.count(_flat(EXPECTED.rules)) >= len(PRINT_SHEETS)
    assert printed.count("中层干部12人（含纸质票2张，其中废票1张）") >= len(PRINT_SHEETS)
    assert printed.count("一般干部7人（含纸质票7张，其中废票2张）") >= len(PRINT_SHEETS)


def test_feedback_sheets_count_paper_of_the_strata_that_rate_the_subject(
    app: object, sample_round: Round, tmp_path: Path
) -> None:
    rnd = paper_round(sample_round)
    result = sealed_result(rnd)
    team = th.subject(rnd, TEAM).id
    principal = th.subject(rnd, PRINCIPAL).id

    def printed(subject_id: int) -> str:
        path = tmp_path / f"{subject_id}.pdf"
        path.write_bytes(feedback_pdf(rnd, result, [subject_id]))
        assert pdf_pages(path) == 1  # still one page
        return _flat(pdf_text(path))

    text = printed(team)
    assert _flat(EXPECTED.team_line) in text
    assert "废票认定：空白票2张、方框外有标记1张。" in text
    assert "废票计入参测率，不计入任何测评对象的票数" in text
    # 一般干部 does not rate 张三: its 7 paper ballots are not his
    text = printed(principal)
    assert _flat(EXPECTED.principal_line) in text
    assert "废票认定：空白票1张。" in text and "方框外有标记" not in text


def test_results_pages_show_paper_and_invalid_ballots(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    rnd = paper_round(sample_round)
    auth.login("viewer")
    page = client.get(f"/rounds/{rnd.id}/results").get_data(as_text=True)
    assert '<th class="num">其中纸质票</th><th class="num">其中废票</th>' in page
    row = page.split("<td>一般干部</td>", 1)[1].split("</tr>", 1)[0]
    assert '<td class="num paper-ballots">7</td><td class="num paper-invalid">2</td>' in row
    row = page.split("<td>班子成员</td>", 1)[1].split("</tr>", 1)[0]
    assert '<td class="num paper-ballots">0</td><td class="num paper-invalid">0</td>' in row
    total = page.split('<tr class="total"><th>合计</th>', 1)[1].split("</tr>", 1)[0]
    assert '<th class="num">9</th><th class="num">3</th>' in total
    assert EXPECTED.rules in page
    assert "实参评 22 人中含纸质票 9 张，其中废票 3 张" in page

    team = th.subject(rnd, TEAM).id
    principal = th.subject(rnd, PRINCIPAL).id
    page = client.get(f"/rounds/{rnd.id}/results/{team}").get_data(as_text=True)
    assert EXPECTED.team_line in page
    page = client.get(f"/rounds/{rnd.id}/results/{principal}").get_data(as_text=True)
    assert EXPECTED.principal_line in page


def test_a_round_without_paper_prints_no_paper_words(
    runner: FlaskCliRunner,
    client: FlaskClient,
    auth: AuthActions,
    users: dict,
    sample_round: Round,
    tmp_path: Path,
) -> None:
    vote(sample_round)
    path = _report(runner, sample_round, tmp_path)
    wb = load_workbook(path)
    for ws in wb.worksheets:
        assert not any(w in _text(ws) for w in PAPER_WORDS), ws.title
    for name in PRINT_SHEETS:
        assert wb[name]["A5"].value == "序号" and wb[name].print_title_rows == "$5:$6"
    for pdf in tmp_path.glob("*.pdf"):  # the feedback sheets `flask report` wrote
        text = pdf_text(pdf)
        assert not any(w in text for w in PAPER_WORDS), pdf.name
    assert list(tmp_path.glob("*.pdf"))
    auth.login("viewer")
    pages = [f"/rounds/{sample_round.id}/results"] + [
        f"/rounds/{sample_round.id}/results/{s.id}" for s in sample_round.subjects
    ]
    for url in pages:
        page = client.get(url).get_data(as_text=True)
        assert "纸质" not in page and "废票" not in page, url


def _turnout(sid: int, name: str, used: int, paper: PaperFigures) -> StratumTurnoutResult:
    return StratumTurnoutResult(sid, name, 10, 10, used, None, paper)


def test_paper_wording_without_a_database() -> None:
    phone = _turnout(1, "服务对象", 8, PaperFigures())
    hall = _turnout(
        2,
        "一般干部",
        9,
        PaperFigures(
            printed=6,
            valid=4,
            invalid_by_rule=(("空白票", 1), ("方框外有标记", 0)),
            abstained_by_rule=(("多选", 2), ("未勾选", 1)),
        ),
    )
    printed_only = _turnout(3, "中层干部", 5, PaperFigures(printed=2))
    assert paper.stratum_used_note(phone) == ""
    assert paper.stratum_used_note(hall) == "（含纸质票 5 张，其中废票 1 张）"
    assert paper.stratum_used_note(printed_only) == "（含纸质票 0 张，其中废票 0 张）"
    # rules with no ballot are left out; marks counted 弃权 listed, or left out for one subject
    assert paper.invalid_rules_text([phone, hall]) == (
        "废票认定：空白票 1 张；按弃权计 3 处（多选 2 处、未勾选 1 处）。"
    )
    assert paper.invalid_rules_text([hall], abstained_marks=False) == "废票认定：空白票 1 张。"
    assert paper.invalid_rules_text([phone, printed_only]) == ""
    only_marks = _turnout(4, "x", 3, PaperFigures(valid=3, abstained_by_rule=(("多选", 1),)))
    assert (
        paper.invalid_rules_text([only_marks]) == "废票认定：无废票；按弃权计 1 处（多选 1 处）。"
    )

    result = TallyResult(
        weighted=False,
        min_turnout=Fraction(2, 3),
        min_group_size=5,
        ballots=0,
        turnout=(phone, hall),
        subjects=(),
    )
    assert paper.subject_paper(result, {1}) is None  # a subject only 服务对象 rates
    every = paper.subject_paper(result, None)
    assert every is not None and every.all_strata
    assert every.line().startswith("实参评 17 人，含纸质票 5 张，其中废票 1 张；")
    assert every.line().endswith("废票认定：空白票 1 张。")
    limited = paper.subject_paper(result, {2})
    assert limited is not None and not limited.all_strata
    assert limited.line().startswith("评价本对象的类别（一般干部）实参评 9 人，含纸质票 5 张")
    assert limited.to_json() == {
        "strata": ["一般干部"],
        "used": 9,
        "ballots": 5,
        "invalid": 1,
        "invalid_by_rule": {"空白票": 1},
    }
    assert paper.round_paper_lines(replace(result, turnout=(phone,))) == []
    assert paper.round_paper_lines(result)[0] == (
        "纸质票：实参评 17 人中含纸质票 5 张，其中废票 1 张（一般干部 5 张、废票 1 张）。"
    )
