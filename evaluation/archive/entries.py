"""廉政档案: archive entries appended when a round is archived, annotations, timelines, flags.

Archiving a closed round appends one entry per subject to its person's or unit's archive, with
the figures read from the tally sealed at close (``Round.sealed_result``): the archive says
exactly what was sealed. It happens once per round; entries are never edited or deleted
(the ORM refuses to), and a correction is an annotation with its author and reason, recorded
in the audit log.

A person keeps their archive when they move (跟踪追究): entries hang on the ``Person`` row and
keep the unit the subject belonged to at the time. Scoping: an entry is visible to a user when
it was made in one of the user's units or belongs to a cadre now in one of them.

Reading the archive (scopes, timelines, flags, search) is ``evaluation.archive.queries``; the
pages live in ``evaluation.archive.views``; the accountability rules in
``evaluation.archive.rules`` (pure), the rule set of each unit in
``evaluation.archive.accountability``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, func

from evaluation import audit
from evaluation.errors import DomainError, InputError, StateError
from evaluation.extensions import db
from evaluation.models import ArchiveAnnotation, ArchiveEntry, Round, RoundState
from evaluation.reports.paper import rater_ids, subject_paper
from evaluation.rounds.state import round_rule_set
from evaluation.tally.aggregate import sealed_result
from evaluation.tally.core import POOL_NAME, SubjectResult, TallyResult, fraction_text

MAX_REASON = 2000


# --- entries are append-only -------------------------------------------------------------------


class ArchiveImmutable(DomainError):
    """Someone tried to change or delete an archive entry."""

    status = 409
    title = "档案记录不可修改"


@event.listens_for(ArchiveEntry, "before_update")
def _refuse_update(_mapper: Any, _connection: Any, entry: ArchiveEntry) -> None:
    raise ArchiveImmutable("档案记录一经归档不可修改；如需更正，请添加更正说明。")


@event.listens_for(ArchiveEntry, "before_delete")
def _refuse_delete(_mapper: Any, _connection: Any, entry: ArchiveEntry) -> None:
    raise ArchiveImmutable("档案记录不可删除；如需更正，请添加更正说明。")


# --- appending ---------------------------------------------------------------------------------


def entry_figures(rnd: Round, result: TallyResult, subject: SubjectResult) -> dict[str, Any]:
    """The figures an archive entry keeps for one subject, read from the sealed tally.

    Besides the overall figures: the strata the subject pooled into 其他类别 (named, as in
    every output; in a weighted round the pool weighs as one stratum), in a weighted round
    the unweighted shares of the same counts, to stand beside the weighted rates, and, when
    the strata that rate the subject had paper ballots, ``paper``: their 实参评, paper ballots
    entered and 废票 (by rule label).
    """
    form = subject.form
    figures = subject.figures
    raw = subject.raw_figures
    closed = rnd.closed_at
    pool = subject.pool
    extra: dict[str, Any] = {
        "pooled_strata": list(pool.members) if pool is not None else [],
        "pool_label": pool.name if pool is not None else None,
    }
    # 纸质票 of the strata that rate the subject: kept only when there was paper, so entries
    # of rounds without it keep exactly the keys they always had.
    paper = subject_paper(result, rater_ids(rnd, subject.subject_id))
    if paper is not None:
        extra["paper"] = paper.to_json()
    if result.weighted:
        extra.update(
            {
                "raw_excellent_rate": fraction_text(raw.excellent_rate),
                "raw_satisfaction_rate": fraction_text(raw.satisfaction_rate),
                "raw_trust_rate": fraction_text(raw.trust_rate),
                "raw_score": fraction_text(raw.score),
            }
        )
    return {
        "round_title": rnd.title,
        "round_kind": rnd.kind,
        "round_mode": rnd.mode,
        "closed_at": _iso(closed) if closed else None,
        "form_title": form.title,
        "rule_set": round_rule_set(rnd).title,
        "grade_labels": [g.label for g in form.grades],
        "counts": {g.label: figures.counts.get(g.key, 0) for g in form.grades},
        "abstentions": figures.abstentions,
        "valid": figures.valid,
        "excellent_rate": fraction_text(figures.excellent_rate),
        "satisfaction_rate": fraction_text(figures.satisfaction_rate),
        "trust_rate": fraction_text(figures.trust_rate),
        "score": fraction_text(figures.score),
        "weighted": result.weighted,
        "turnout": fraction_text(result.turnout_rate),
        "turnout_valid": result.valid,
        **extra,
    }


def rule_columns(figures: dict[str, Any], round_closed_at: datetime | None) -> dict[str, Any]:
    """The columns the accountability rules read, from an entry's figures (and, for figures
    that predate ``closed_at``, the round's close)."""
    text = figures.get("closed_at")
    closed = datetime.fromisoformat(text) if text else round_closed_at
    if closed is not None and closed.tzinfo is None:
        closed = closed.replace(tzinfo=UTC)
    return {
        "closed_at": closed,
        "satisfaction_rate": figures.get("satisfaction_rate"),
        "trust_rate": figures.get("trust_rate"),
        "weighted": bool(figures.get("weighted")),
    }


def entry_remarks(figures: dict[str, Any]) -> str:
    """How an entry's figures were computed, in words: weighting and pooled strata."""
    parts = []
    if figures.get("weighted"):
        parts.append("加权计算（票数为实际票数）")
    pooled = figures.get("pooled_strata") or []
    if pooled:
        parts.append(f"{'、'.join(pooled)} 选票较少，合并为“{POOL_NAME}”计算")
    paper = paper_text(figures)
    if paper:
        parts.append(paper)
    return "；".join(parts)


def paper_text(figures: dict[str, Any]) -> str:
    """ "参评 22 人含纸质票 9 张，其中废票 1 张（空白票 1），废票不计入票数" for an entry whose
    strata had paper ballots, else "" (the 计算说明 of the export, the archive pages)."""
    paper = figures.get("paper")
    if not paper:
        return ""
    rules = "、".join(f"{k} {n}" for k, n in dict(paper.get("invalid_by_rule", {})).items() if n)
    return (
        f"参评 {int(paper.get('used', 0))} 人含纸质票 {int(paper.get('ballots', 0))} 张，"
        f"其中废票 {int(paper.get('invalid', 0))} 张"
        + (f"（{rules}）" if rules else "")
        + "，废票不计入票数"
    )


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def append_round(rnd: Round, *, actor: str) -> list[ArchiveEntry]:
    """Append each subject's sealed figures to its archive; once per round, never again."""
    if rnd.state != RoundState.ARCHIVED:
        raise StateError(f"测评活动“{rnd.title}”尚未归档，不能写入廉政档案")
    already = db.session.execute(
        db.select(func.count()).select_from(ArchiveEntry).where(ArchiveEntry.round_id == rnd.id)
    ).scalar_one()
    if already:
        raise StateError(f"测评活动“{rnd.title}”已写入廉政档案（每个测评活动只归档一次）")
    result = sealed_result(rnd)
    entries = []
    for subject in rnd.subjects:
        try:
            sealed = result.subject(subject.id)
        except KeyError:
            raise StateError(f"封存的计票结果中没有测评对象“{subject.name}”，不能归档") from None
        figures = entry_figures(rnd, result, sealed)
        entry = ArchiveEntry(
            round_id=rnd.id,
            subject_id=subject.id,
            person_id=subject.person_id,
            unit_id=subject.unit_id,
            year=rnd.year,
            subject_name=subject.name,
            form_id=subject.form_id,
            figures=figures,
            **rule_columns(figures, rnd.closed_at),
            grade=sealed.grade_label,
            rank=sealed.rank,
            valid_round=result.valid,
            seal=rnd.seal,
            # the organiser's 评价意见 and 整改要求, as typed when the round was archived
            opinion=subject.opinion or "",
            rectification=subject.rectification or "",
        )
        db.session.add(entry)
        entries.append(entry)
    db.session.flush()
    audit.record(actor, "archive.append", round_id=rnd.id, title=rnd.title, entries=len(entries))
    return entries


def annotate(entry: ArchiveEntry, *, author: str, reason: str) -> ArchiveAnnotation:
    """Append a correction or remark to an entry (the entry itself is never changed)."""
    reason = (reason or "").strip()
    if not reason:
        raise InputError("更正说明不能为空：请写明更正的内容和理由")
    if len(reason) > MAX_REASON:
        raise InputError(f"更正说明不能超过 {MAX_REASON} 字")
    note = ArchiveAnnotation(entry_id=entry.id, author=author, reason=reason)
    db.session.add(note)
    db.session.flush()
    audit.record(
        author,
        "archive.annotate",
        entry_id=entry.id,
        round_id=entry.round_id,
        subject=entry.subject_name,
        year=entry.year,
        reason=reason,
    )
    return note
