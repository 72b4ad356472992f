"""The database side of the tally: one GROUP BY over the answers, fed to the pure core.

The answers of a round are never loaded one by one: the database counts them grouped by
(subject, item, stratum, grade) over the covering index ``ix_answer_tally``, so a round of
10⁶ answers tallies in a fraction of a second with memory that does not grow with the number
of ballots (see ``benchmarks/tally.py``).
"""

from __future__ import annotations

from fractions import Fraction

from flask import current_app
from sqlalchemy import func

from evaluation import rounds
from evaluation.ballot_forms import parse_fraction
from evaluation.errors import StateError
from evaluation.extensions import db
from evaluation.models import Answer, Ballot, Round, RoundState
from evaluation.tally import CountRow, StratumInput, SubjectInput, TallyInput, TallyResult, tally
from evaluation.turnout import round_turnout

RESULT_STATES = (RoundState.CLOSED, RoundState.ARCHIVED)


def count_rows(subject_ids: list[int]) -> tuple[CountRow, ...]:
    """The one GROUP BY: answers counted per subject, item, stratum and grade."""
    if not subject_ids:
        return ()
    rows = db.session.execute(
        db.select(Answer.subject_id, Answer.item, Answer.stratum_id, Answer.grade, func.count())
        .where(Answer.subject_id.in_(subject_ids))
        .group_by(Answer.subject_id, Answer.item, Answer.stratum_id, Answer.grade)
    )
    return tuple(CountRow(r[0], r[1], r[2], r[3], int(r[4])) for r in rows)


def ballot_count(rnd: Round) -> int:
    """Ballots stored for the round."""
    return int(
        db.session.execute(
            db.select(func.count()).select_from(Ballot).where(Ballot.round_id == rnd.id)
        ).scalar_one()
    )


def tally_input(rnd: Round, *, min_group_size: int | None = None) -> TallyInput:
    """Gather the round's strata, subjects, turnout and aggregated answers."""
    forms = rounds.round_forms(rnd)
    turnout = {t.stratum_id: t for t in round_turnout(rnd).strata}
    strata = tuple(
        StratumInput(
            id=s.id,
            name=s.name,
            weight=parse_fraction(s.weight, f"类别“{s.name}”的权重") if s.weight else None,
            issued=turnout[s.id].issued,
            used=turnout[s.id].used,
            planned=s.planned,
        )
        for s in rnd.strata
    )
    subjects = tuple(
        SubjectInput(id=s.id, name=s.name, form=forms[s.form_id], post=s.post or "")
        for s in rnd.subjects
    )
    if min_group_size is None:
        min_group_size = int(current_app.config.get("MIN_GROUP_SIZE", 5))
    return TallyInput(
        strata=strata,
        subjects=subjects,
        rows=count_rows([s.id for s in rnd.subjects]),
        min_turnout=rounds.min_turnout(rnd) if rnd.min_turnout else Fraction(2, 3),
        min_group_size=min_group_size,
        ballots=ballot_count(rnd),
    )


def require_results(rnd: Round) -> None:
    """StateError unless the round is closed or archived: nothing about votes before close."""
    if rnd.state not in RESULT_STATES:
        raise StateError(
            f"测评活动“{rnd.title}”当前为{rounds.state_label(rnd.state)}状态。"
            "测评结果只在测评结束后提供；测评进行中只能查看参测情况。"
        )


def tally_round(rnd: Round, *, min_group_size: int | None = None) -> TallyResult:
    """Tally a closed (or archived) round; results never exist while it is open."""
    require_results(rnd)
    return tally(tally_input(rnd, min_group_size=min_group_size))
