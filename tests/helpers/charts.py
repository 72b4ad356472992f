"""A fixed tally for the chart tests: four subjects of four forms, weighted or not."""

from __future__ import annotations

from fractions import Fraction as F
from pathlib import Path

from evaluation.ballot_forms import BallotForm
from evaluation.rule_sets import load_graded_forms
from evaluation.tally.core import (
    CountRow,
    StratumInput,
    SubjectInput,
    TallyInput,
    TallyResult,
    tally,
)

FORMS = load_graded_forms(Path(__file__).resolve().parents[2] / "ballots")


def chart_result(weighted: bool = False, used: int = 30) -> TallyResult:
    per_item = BallotForm(**{**FORMS["gansu-member"].__dict__, "per_item": True})
    strata = (
        StratumInput(1, "班子成员", F(1, 3) if weighted else None, issued=7, used=3),
        StratumInput(2, "一般干部", F(2, 3) if weighted else None, issued=40, used=used),
    )
    subjects = (
        SubjectInput(1, "市局领导班子", FORMS["gansu-team"]),
        SubjectInput(2, "张三", FORMS["gansu-principal"], "局长"),
        SubjectInput(3, "李四", per_item, "副局长"),
        SubjectInput(4, "张三（廉洁自律）", FORMS["gansu-integrity"].with_items(["八项规定"])),
    )
    rows = [
        CountRow(1, "", 1, "excellent", 3),
        CountRow(1, "", 2, "qualified", 20),
        CountRow(1, "", 2, "unqualified", 10),
        CountRow(2, "", 2, "basic", 30),
        CountRow(2, "", 1, None, 3),
        CountRow(3, "", 2, "excellent", 30),
        CountRow(3, "1", 2, "competent", 30),
        CountRow(3, "2", 2, "incompetent", 30),
        CountRow(4, "", 2, "poor", 30),
    ]
    return tally(TallyInput(strata, subjects, tuple(rows), ballots=33))
