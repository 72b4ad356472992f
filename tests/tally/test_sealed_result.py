"""One source of truth for a closed round's figures: the result sealed at close.

The sealed JSON round-trips to the typed ``TallyResult`` exactly; pages, workbooks and the
archive show it; only ``flask verify`` recounts the stored ballots.
"""

from __future__ import annotations

import io
from fractions import Fraction as F
from pathlib import Path

from openpyxl import load_workbook

from evaluation.ballot_forms import BallotForm
from evaluation.extensions import db
from evaluation.models import Round
from evaluation.rounds.state import round_forms
from evaluation.rule_sets import load_graded_forms
from evaluation.tally.aggregate import sealed_result, tally_round
from evaluation.tally.core import (
    CountRow,
    StratumInput,
    SubjectInput,
    TallyInput,
    from_json,
    tally,
    to_json,
)
from tests.helpers import tally as th
from tests.helpers.tally import PRINCIPAL
from tests.helpers.web import AuthActions

FORMS = load_graded_forms(Path(__file__).resolve().parents[2] / "ballots")


def test_json_round_trips_a_weighted_per_item_tally_exactly() -> None:
    team = BallotForm(**{**FORMS["gansu-team"].__dict__, "per_item": True})
    integrity = FORMS["gansu-integrity"].with_items(["八项规定", "管好身边人"])
    forms = {team.id: team, integrity.id: integrity}
    strata = (
        StratumInput(1, "班子成员", weight=F(3, 10), issued=7, used=3, planned=7),
        StratumInput(2, "一般干部", weight=F(7, 10), issued=40, used=30, planned=40),
    )
    rows = (
        CountRow(10, "", 1, "excellent", 3),
        CountRow(10, "", 2, "qualified", 20),
        CountRow(10, "", 2, None, 10),
        CountRow(10, "1", 2, "unqualified", 8),
        CountRow(11, "", 2, "good", 25),
        CountRow(11, "", 1, "poor", 3),
        CountRow(12, "", 2, "fair", 30),
    )
    subjects = (
        SubjectInput(10, "局领导班子", team),
        SubjectInput(11, "张三（廉洁自律）", integrity, post="局长"),
        SubjectInput(12, "李四（廉洁自律）", integrity, post="副局长"),
    )
    result = tally(TallyInput(strata, subjects, rows, ballots=33))
    data = to_json(result)
    assert from_json(data, forms) == result
    assert to_json(from_json(data, forms)) == data
    assert result.subjects[1].post == "局长" and result.subjects[1].ranked_in_form == 2


def test_a_closed_rounds_sealed_result_is_its_recount(app, sample_round: Round) -> None:  # type: ignore[no-untyped-def]
    th.vote(sample_round)
    assert sealed_result(sample_round) == tally_round(sample_round)
    assert from_json(sample_round.sealed_result, round_forms(sample_round)) == tally_round(
        sample_round
    )


def test_pages_and_workbook_show_the_sealed_figures_not_a_recount(
    app, client, users, sample_round: Round
) -> None:  # type: ignore[no-untyped-def]
    th.vote(sample_round)
    principal = th.subject(sample_round, PRINCIPAL)
    # After close, someone with the database changes a stored answer: every output still shows
    # what was sealed (29/43 满意), and only flask verify notices the change.
    th.change_one_answer(sample_round, PRINCIPAL, "basic", to="excellent")
    assert tally_round(sample_round).subject(principal.id).figures.satisfaction_rate == F(30, 43)
    AuthActions(client).login()
    page = client.get(f"/rounds/{sample_round.id}/results/{principal.id}").get_data(as_text=True)
    assert "67.44%" in page and "69.77%" not in page  # 29/43 sealed, 30/43 recounted
    book = load_workbook(io.BytesIO(client.get(f"/rounds/{sample_round.id}/report.xlsx").data))
    summary = book["汇总"]
    header = [c.value for c in summary[1]]
    row = next(r for r in summary.iter_rows(min_row=2, values_only=True) if r[0] == PRINCIPAL)
    assert row[header.index("满意率")] == float(F(29, 43))
    checks = {r[0]: r[1] for r in book["核验"].iter_rows(min_row=2, values_only=True)}
    assert "封存的计票结果" in checks["数字来源"]


def test_a_garbled_sealed_result_is_refused_in_words_not_a_traceback(
    app, client, runner, users, sample_round: Round
) -> None:  # type: ignore[no-untyped-def]
    th.vote(sample_round)
    sealed = dict(sample_round.sealed_result or {})
    sealed["subjects"] = [
        {**s, "satisfaction_rate": "三分之二"} if s["name"] == PRINCIPAL else s
        for s in sealed["subjects"]
    ]
    sample_round.sealed_result = sealed
    db.session.commit()
    AuthActions(client).login()
    response = client.get(f"/rounds/{sample_round.id}/results")
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "封存的计票结果无法读取" in page and f"flask verify {sample_round.id}" in page
    archived = runner.invoke(args=["round", "archive", str(sample_round.id)])
    assert archived.exit_code == 1 and "封存的计票结果无法读取" in archived.output
    assert "Traceback" not in archived.output
    db.session.expire_all()
    assert db.session.get_one(Round, sample_round.id).state.value == "closed"  # nothing half-done
    verified = runner.invoke(args=["verify", str(sample_round.id)])
    assert verified.exit_code == 1 and "封存值 三分之二" in verified.output
