"""The tally of a round whose 服务对象 rates only the team, weighted, counted by hand.

干部 (weight 0.6) rates both subjects, 服务对象 (weight 0.4) only 市局领导班子; every voter
goes through the real phone pages and the round is closed as usual.

Votes (10 codes per stratum):
    干部 × 6        市局领导班子: 优秀 4, 合格 2     市局纪检组: 合格 4, 不合格 2
    服务对象 × 5    市局领导班子: 优秀 1, 合格 4     (市局纪检组: not on their ballot)

By hand:
    turnout: 干部 6/10, 服务对象 5/10, overall 11/20 (each voter once).
    市局领导班子: 11 valid votes; 优秀率 = 0.6 × 4/6 + 0.4 × 1/5 = 2/5 + 2/25 = 12/25
        (unweighted 5/11); 满意率 = 1; grade 合格 (优秀 12/25 < 1/2); cells 干部 (3/5) and
        服务对象 (2/5).
    市局纪检组: 6 valid votes, 0 弃权 (服务对象 cast none); only 干部 rated it, so its weight
        renormalises to 1: 满意率 = 4/6 = 2/3, 不合格 share 1/3 → 不合格 (≥ 1/3); one cell, 干部.
Outputs (results pages, workbook 分类别, feedback sheet) list no 服务对象 row for 纪检组.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from evaluation.extensions import db
from evaluation.models import Round
from evaluation.rounds import lifecycle
from evaluation.rule_sets import load_graded_forms
from evaluation.tally.aggregate import sealed_result, tally_round
from evaluation.tally.core import (
    CountRow,
    StratumInput,
    SubjectInput,
    TallyInput,
    choose_pool,
    tally,
)
from evaluation.transactions import write_transaction
from tests.helpers.strata import CADRES, ORGAN, SERVED, TEAM, limited_round, vote_as
from tests.helpers.voters import issue
from tests.helpers.web import AuthActions


@pytest.fixture
def counted(app: Flask) -> Round:
    """The round above, voted and closed."""
    rnd = limited_round()
    cadres, served = issue(rnd, CADRES, 10), issue(rnd, SERVED, 10)
    lifecycle.open_round(rnd, actor="test")
    db.session.commit()
    for i, code in enumerate(cadres[:6]):
        team, organ = ("优秀", "合格") if i < 4 else ("合格", "不合格")
        vote_as(app, rnd, code, CADRES, {TEAM: team, ORGAN: organ})
    for i, code in enumerate(served[:5]):
        vote_as(app, rnd, code, SERVED, {TEAM: "优秀" if i < 1 else "合格"})
    with write_transaction():
        lifecycle.close_round(rnd, actor="test")
    db.session.commit()
    return rnd


def test_the_tally_by_hand_with_weights(counted: Round) -> None:
    result = sealed_result(counted)
    assert result == tally_round(counted)  # the sealed result is the recount
    assert result.weighted and not result.anomalies
    assert [(t.name, t.used, t.issued) for t in result.turnout] == [
        (CADRES, 6, 10),
        (SERVED, 5, 10),
    ]
    assert (result.used, result.issued, result.ballots) == (11, 20, 11)

    team = result.subjects[0]
    assert team.name == TEAM
    assert team.figures.counts == {"excellent": 5, "qualified": 6, "unqualified": 0}
    assert team.figures.excellent_rate == Fraction(12, 25)
    assert team.raw_figures.excellent_rate == Fraction(5, 11)
    assert team.figures.satisfaction_rate == 1
    assert team.grade_label == "合格"
    assert [(c.name, c.ballots, c.weight) for c in team.strata] == [
        (CADRES, 6, Fraction(3, 5)),
        (SERVED, 5, Fraction(2, 5)),
    ]

    organ = result.subjects[1]
    assert organ.name == ORGAN
    assert organ.figures.counts == {"excellent": 0, "qualified": 4, "unqualified": 2}
    assert (organ.figures.valid, organ.figures.abstentions) == (6, 0)
    assert organ.figures.satisfaction_rate == Fraction(2, 3)
    assert organ.grade_label == "不合格"
    assert [(c.name, c.ballots, c.weight) for c in organ.strata] == [(CADRES, 6, Fraction(1))]


def test_pooling_and_weights_consider_only_the_strata_that_rate_a_subject() -> None:
    """Pure core: a stratum that does not rate a subject is no group of it at all."""
    form = load_graded_forms(Path(__file__).resolve().parents[2] / "ballots")["gansu-team"]
    strata = (
        StratumInput(1, "干部", Fraction(1, 2), 10, 6),
        StratumInput(2, "服务对象", Fraction(1, 2), 10, 3),
        StratumInput(3, "群众", Fraction(0), 10, 8),
    )
    rated = SubjectInput(1, "班子", form, rated_by=frozenset({1, 2}))
    rows = (
        CountRow(1, "", 1, "excellent", 6),
        CountRow(1, "", 2, "qualified", 3),
        CountRow(1, "", 3, "unqualified", 2),  # a stratum that does not rate it: not counted
    )
    result = tally(TallyInput(strata, (rated,), rows, min_group_size=5))
    [subject] = result.subjects
    # 服务对象 (3 < 5) pools with 干部, the only other stratum rating it; 群众 stays out.
    assert [(c.name, c.ballots, c.member_ids) for c in subject.strata] == [
        ("其他类别（含：干部、服务对象）", 9, (1, 2))
    ]
    assert subject.figures.counts == {"excellent": 6, "qualified": 3, "unqualified": 0}
    assert any("不评价它的类别" in a for a in result.anomalies)
    assert choose_pool(strata[:2], {1: 6, 2: 3}, 5) == (1, 2)


def _table(ws: Any) -> list[dict[str, Any]]:
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    header = [str(h) for h in rows[0]]
    out = []
    for r in rows[1:]:
        if all(v is None for v in r):
            break
        out.append(dict(zip(header, r, strict=False)))
    return out


def _pdftotext(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext (poppler-utils) is needed to read the feedback sheet")
    path = tmp_path / "feedback.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    return re.sub(r"\s+", "", out.stdout.decode("utf-8"))


def test_outputs_list_no_row_for_a_stratum_that_does_not_rate_the_subject(
    client: FlaskClient, auth: AuthActions, users: Any, counted: Round, tmp_path: Path
) -> None:
    assert auth.login("viewer").status_code == 302
    team, organ = counted.subjects
    book = load_workbook(io.BytesIO(client.get(f"/rounds/{counted.id}/report.xlsx").data))
    rows = [(r["测评对象"], r["测评人员类别"]) for r in _table(book["分类别"])]
    assert (TEAM, CADRES) in rows and (TEAM, SERVED) in rows
    assert (ORGAN, CADRES) in rows and (ORGAN, SERVED) not in rows

    page = client.get(f"/rounds/{counted.id}/results/{organ.id}").get_data(as_text=True)
    breakdown = page.split("<h2>分类别</h2>", 1)[1].split("</table>", 1)[0]
    assert f"<td>{CADRES}</td>" in breakdown and SERVED not in breakdown
    page = client.get(f"/rounds/{counted.id}/results/{team.id}").get_data(as_text=True)
    breakdown = page.split("<h2>分类别</h2>", 1)[1].split("</table>", 1)[0]
    assert f"<td>{SERVED}</td>" in breakdown

    pdf = client.get(f"/rounds/{counted.id}/results/{organ.id}/feedback.pdf").data
    _pdftotext(pdf, tmp_path)  # written to tmp_path/feedback.pdf; read again laid out
    laid_out = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "feedback.pdf"), "-"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    breakdown = laid_out.split("权重（归一后）", 1)[1].split("等次规则", 1)[0]
    first_row = next(line.split() for line in breakdown.splitlines() if line.strip())
    assert first_row[:3] == [CADRES, "6", "6"] and SERVED not in breakdown
