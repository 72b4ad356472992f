"""The tally from the database: one GROUP BY, the seal at close, hand-computed figures."""

from __future__ import annotations

from fractions import Fraction as F

import pytest
from sqlalchemy import event

from evaluation.errors import StateError
from evaluation.extensions import db
from evaluation.models import Round
from evaluation.tally.aggregate import tally_round
from evaluation.tally.core import to_json
from evaluation.tally.verify import verify_round
from tests.helpers import tally as th
from tests.helpers.tally import INTEGRITY, MEMBER, ORGAN, PRINCIPAL, TEAM, vote


@pytest.fixture
def voted(sample_round: Round) -> Round:
    """The sample round with 43 ballots, closed and sealed."""
    vote(sample_round)
    return sample_round


def test_figures_match_hand_count(voted: Round) -> None:
    result = tally_round(voted)
    team = result.subject(th.subject(voted, TEAM).id)
    # 优秀 3+6, 合格 20, 不合格 4, 弃权 10
    assert team.figures.counts == {"excellent": 9, "qualified": 20, "unqualified": 4}
    assert (team.figures.valid, team.figures.abstentions) == (33, 10)
    assert team.figures.excellent_rate == F(9, 33)
    assert team.figures.satisfaction_rate == F(29, 33)
    assert team.figures.trust_rate == F(29, 33)
    assert team.figures.score == F(2500, 33)
    assert team.grade_label == "合格" and team.rank is None  # alone in its form

    organ = result.subject(th.subject(voted, ORGAN).id)
    assert organ.figures.counts == {"excellent": 26, "qualified": 7, "unqualified": 10}
    assert organ.grade_label == "优秀"  # 26/43 ≥ 1/2, 10/43 < 1/3

    principal = result.subject(th.subject(voted, PRINCIPAL).id)
    assert principal.figures.counts == {
        "excellent": 23,
        "competent": 6,
        "basic": 10,
        "incompetent": 4,
    }
    assert principal.figures.satisfaction_rate == F(29, 43)  # ≥ 2/3 → not 基本称职
    assert principal.grade_label == "优秀"

    member = result.subject(th.subject(voted, MEMBER).id)
    assert member.figures.satisfaction_rate == F(27, 33)
    assert member.figures.trust_rate == F(1)
    assert member.grade_label == "优秀"

    integrity = result.subject(th.subject(voted, INTEGRITY).id)
    assert integrity.figures.counts == {"good": 19, "fair": 20, "poor": 4}
    assert integrity.grade_label == "中"

    # 班子成员 cast 3 ballots: below MIN_GROUP_SIZE 5, pooled with the next smallest, 中层干部
    general, pool = team.strata
    assert pool.name == "其他类别（含：班子成员、中层干部）" and pool.ballots == 13
    assert pool.figures is not None and pool.figures.satisfaction_rate == F(9, 13)
    assert general.figures is not None and general.figures.abstentions == 10

    assert result.ballots == 43 and (result.used, result.issued) == (43, 62)
    assert result.turnout_rate == F(43, 62) and result.valid  # 43/62 ≥ 2/3


def test_below_minimum_turnout_is_invalid(sample_round: Round) -> None:
    vote(sample_round, unused_general=10)
    result = tally_round(sample_round)
    assert result.turnout_rate == F(43, 67) and not result.valid
    assert sample_round.sealed_result is not None
    assert sample_round.sealed_result["valid"] is False


def test_weighted_round(sample_round: Round) -> None:
    for name, weight in (("班子成员", "1/5"), ("中层干部", "2/5"), ("一般干部", "2/5")):
        th.stratum(sample_round, name).weight = weight
    db.session.commit()
    vote(sample_round)
    result = tally_round(sample_round)
    assert result.weighted
    team = result.subject(th.subject(sample_round, TEAM).id)
    # 班子成员 (3 ballots) and 中层干部 (10) are pooled: weight 1/5 + 2/5, shares of the 13.
    # 优秀 = 3/5·9/13 ; 不合格 = 3/5·4/13 ; 合格 = 2/5·1
    assert team.figures.shares == {
        "excellent": F(27, 65),
        "qualified": F(2, 5),
        "unqualified": F(12, 65),
    }
    assert team.figures.counts == {"excellent": 9, "qualified": 20, "unqualified": 4}
    assert team.pool is not None and team.pool.base_weight == F(3, 5)
    member = result.subject(th.subject(sample_round, MEMBER).id)
    # 优秀 2/5, 称职 3/5·7/13, 基本称职 3/5·6/13 → 满意率 47/65, 优秀 < 1/2 → 称职
    assert member.figures.satisfaction_rate == F(47, 65)
    assert member.grade_label == "称职"  # unweighted it would be 优秀 (20/33)


def test_results_do_not_exist_while_open(sample_round: Round) -> None:
    th.open_round(sample_round)
    th.cast(sample_round, "中层干部", {TEAM: "优秀"}, times=2)
    db.session.commit()
    with pytest.raises(StateError, match="测评结束后"):
        tally_round(sample_round)


def test_close_seals_the_tally(voted: Round) -> None:
    assert voted.seal is not None and len(voted.seal) == 64
    sealed = dict(voted.sealed_result or {})
    assert sealed.pop("audit_head")["seq"] > 0  # the audit log's head at the close
    assert sealed == {**to_json(tally_round(voted)), "seal_version": "v2"}
    team = next(s for s in voted.sealed_result["subjects"] if s["name"] == TEAM)
    assert team["satisfaction_rate"] == "29/33" and team["grade_label"] == "合格"
    assert verify_round(voted).ok


def test_tally_is_one_group_by_over_answers(voted: Round) -> None:
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        tally_round(voted)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    on_answers = [s for s in statements if "FROM answer" in s]
    assert len(on_answers) == 1
    assert "GROUP BY" in on_answers[0] and "count(" in on_answers[0].lower()
