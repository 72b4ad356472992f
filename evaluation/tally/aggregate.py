"""The database side of the tally: one GROUP BY over the answers, fed to the pure core; the
seal computed at close over the lines 原始选票 lists; and the sealed result read back.

The answers of a round are never loaded one by one: the database counts them grouped by
(subject, item, stratum, grade) over the covering index ``ix_answer_tally``, so a round of
10⁶ answers tallies in a fraction of a second with memory that does not grow with the number
of ballots (see ``benchmarks/tally.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Any

from flask import current_app
from sqlalchemy import String, cast, func, select

from evaluation import audit
from evaluation.ballot_forms import parse_fraction
from evaluation.codes.turnout import round_turnout
from evaluation.errors import StateError
from evaluation.extensions import db
from evaluation.models import Answer, Ballot, Round, RoundState
from evaluation.paper.counts import paper_counts
from evaluation.rounds.state import min_turnout, round_forms, state_label
from evaluation.tally.core import (
    RESULT_VERSION,
    CountRow,
    PaperFigures,
    StratumInput,
    SubjectInput,
    TallyInput,
    TallyResult,
    from_json,
    tally,
    to_json,
    withhold_recoverable,
)
from evaluation.tally.seal import (
    LEGACY_SEAL_VERSION,
    SEAL_VERSION,
    RawLine,
    legacy_ballot_line,
    legacy_seal_digest,
    raw_line_counts,
    seal_of_counts,
)

RESULT_STATES = (RoundState.CLOSED, RoundState.ARCHIVED)


def paper_figures(paper: dict[str, Any] | None) -> PaperFigures:
    """A stratum's paper counts as the tally carries them (rule labels, not keys)."""
    counts = paper_counts(paper)
    return PaperFigures(
        printed=counts.printed,
        valid=counts.valid,
        invalid_by_rule=tuple(counts.invalid_by_rule.items()),
        abstained_by_rule=tuple(counts.abstained_by_rule.items()),
    )


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
    forms = round_forms(rnd)
    turnout = {t.stratum_id: t for t in round_turnout(rnd).strata}
    strata = tuple(
        StratumInput(
            id=s.id,
            name=s.name,
            weight=parse_fraction(s.weight, f"类别“{s.name}”的权重") if s.weight else None,
            issued=turnout[s.id].issued,
            used=turnout[s.id].used,
            planned=s.planned,
            paper=paper_figures(s.paper),
        )
        for s in rnd.strata
    )
    limited = [s for s in rnd.strata if not s.rates_all]
    subjects = tuple(
        SubjectInput(
            id=s.id,
            name=s.name,
            form=forms[s.form_id],
            post=s.post or "",
            rated_by=(
                frozenset(st.id for st in rnd.strata if st.rates_all or s in st.rated)
                if limited
                else None
            ),
        )
        for s in rnd.subjects
    )
    if min_group_size is None:
        min_group_size = int(current_app.config.get("MIN_GROUP_SIZE", 5))
    return TallyInput(
        strata=strata,
        subjects=subjects,
        rows=count_rows([s.id for s in rnd.subjects]),
        min_turnout=min_turnout(rnd) if rnd.min_turnout else Fraction(2, 3),
        min_group_size=min_group_size,
        ballots=ballot_count(rnd),
    )


def require_results(rnd: Round) -> None:
    """StateError unless the round is closed or archived: nothing about votes before close."""
    if rnd.state not in RESULT_STATES:
        raise StateError(
            f"测评活动“{rnd.title}”当前为{state_label(rnd.state)}状态。"
            "测评结果只在测评结束后提供；测评进行中只能查看参测情况。"
        )


def tally_round(
    rnd: Round,
    *,
    min_group_size: int | None = None,
    pooling: bool = True,
    version: int = RESULT_VERSION,
) -> TallyResult:
    """Tally a closed (or archived) round; results never exist while it is open.

    ``pooling=False`` / an older ``version`` recount under the rules a result was sealed
    with (``flask verify`` of a round sealed before pooling, or before ranking by grade).
    """
    require_results(rnd)
    return tally(tally_input(rnd, min_group_size=min_group_size), pooling=pooling, version=version)


def sealed_result(rnd: Round) -> TallyResult:
    """The result sealed at close, as a ``TallyResult``: what every page and report shows.

    A closed round is never recounted to be shown (only ``flask verify`` recounts), so what an
    official reads is exactly what was sealed — less, for results sealed before pooling, the
    cells that subtraction would give back (``withhold_recoverable``).
    """
    require_results(rnd)
    if not rnd.seal or not isinstance(rnd.sealed_result, dict):
        raise StateError(f"测评活动“{rnd.title}”没有封存的计票结果")
    try:
        return withhold_recoverable(from_json(rnd.sealed_result, round_forms(rnd)))
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise StateError(
            f"测评活动“{rnd.title}”封存的计票结果无法读取（{type(exc).__name__}），可能已被改动；"
            f"请在服务器上运行 flask verify {rnd.id} 核查"
        ) from None


# --- the seal over the lines of 原始选票 ---------------------------------------------------------


def raw_lines(rnd: Round, result: TallyResult) -> dict[int, dict[str, dict[RawLine, int]]]:
    """subject → item → line → count: what 原始选票 lists, from the one GROUP BY.

    ``result`` names each subject's pool (the sealed result for a report, the recount for
    ``flask verify``). No whole ballot is ever read for it.
    """
    return raw_line_counts(result, count_rows([s.id for s in rnd.subjects]))


def compute_seal(rnd: Round, result: TallyResult | None = None) -> str:
    """The seal (v2) of the round's answers as they are stored now.

    ``result``: the tally whose pools label the lines (by default a recount).
    """
    if result is None:
        result = tally_round(rnd)
    return seal_of_counts(rnd.id, raw_lines(rnd, result))


StoredAnswer = tuple[int, str, int, str | None]  # subject, item, answer's stratum, grade


def legacy_stored_ballots(rnd: Round) -> Iterator[tuple[int, list[StoredAnswer]]]:
    """Stream the round's ballots whole: (stratum, answers), in the order of their key.

    Only to recompute a v1 seal (rounds sealed before v2) in ``flask verify``; never shown.
    """
    # Core, not the ORM, and the key as plain text: this pass touches every answer.
    stmt = (
        select(
            cast(Ballot.id, String),
            Ballot.stratum_id,
            Answer.subject_id,
            Answer.item,
            Answer.stratum_id,
            Answer.grade,
        )
        .outerjoin(Answer, Answer.ballot_id == Ballot.id)
        .where(Ballot.round_id == rnd.id)
        .order_by(Ballot.id)
    )
    rows = db.session.connection().execute(stmt.execution_options(yield_per=5000))
    current: Any = None
    stratum = 0
    answers: list[StoredAnswer] = []
    for ballot_id, ballot_stratum, subject_id, item, answer_stratum, grade in rows:
        if ballot_id != current:
            if current is not None:
                yield stratum, answers
            current, stratum, answers = ballot_id, ballot_stratum, []
        if subject_id is not None:
            answers.append((subject_id, item, answer_stratum, grade))
    if current is not None:
        yield stratum, answers


def compute_legacy_seal(rnd: Round) -> str:
    """The v1 seal (whole canonical ballots) of the round as stored now."""
    return legacy_seal_digest(
        rnd.id, (legacy_ballot_line(st, answers) for st, answers in legacy_stored_ballots(rnd))
    )


def compute_seal_as(rnd: Round, version: str, result: TallyResult | None = None) -> str:
    """The seal in the format the round was sealed with (``v2`` or ``v1``)."""
    if version == LEGACY_SEAL_VERSION:
        return compute_legacy_seal(rnd)
    return compute_seal(rnd, result)


def seal_round(rnd: Round) -> None:
    """At close: store the seal and the tally (called by ``rounds.lifecycle.close_round``).

    The audit log's head at that moment is kept beside them (``audit_head``), so
    ``flask verify`` can tell whether the log was cut or rebuilt since the close.
    """
    result = tally_round(rnd)
    rnd.seal = compute_seal(rnd, result)
    rnd.sealed_result = {
        **to_json(result),
        "seal_version": SEAL_VERSION,
        "audit_head": audit.chain_head().as_json(),
    }
    db.session.flush()
