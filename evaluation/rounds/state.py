"""The round's state machine, and reading a round's snapshot.

    draft ──open──▶ open ──close──▶ closed ──archive──▶ archived
      └──────────────┴──────────────────┴──void(reason)──▶ void

This module says which moves exist and checks them (``require_state``, ``transition``); the
moves themselves, with what each one does, are in ``evaluation.rounds.lifecycle``. Structure
(strata, subjects, forms) is editable only in draft; close is final.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction
from typing import Protocol

from evaluation.ballot_forms import BallotForm, parse_fraction
from evaluation.errors import NotFound, StateError
from evaluation.extensions import db
from evaluation.models import Round, RoundState, Subject, is_row_id
from evaluation.rule_sets import DEFAULT_ID, RuleSet

STATE_LABELS = {
    RoundState.DRAFT: "草稿",
    RoundState.OPEN: "进行中",
    RoundState.CLOSED: "已结束",
    RoundState.ARCHIVED: "已归档",
    RoundState.VOID: "已作废",
}

TRANSITIONS: dict[RoundState, frozenset[RoundState]] = {
    RoundState.DRAFT: frozenset({RoundState.OPEN, RoundState.VOID}),
    RoundState.OPEN: frozenset({RoundState.CLOSED, RoundState.VOID}),
    RoundState.CLOSED: frozenset({RoundState.ARCHIVED, RoundState.VOID}),
    RoundState.ARCHIVED: frozenset(),
    RoundState.VOID: frozenset(),
}


def state_label(state: RoundState | str) -> str:
    """Chinese name of a state."""
    return STATE_LABELS[RoundState(state)]


def require_state(rnd: Round, *states: RoundState, action: str) -> None:
    """Raise StateError unless the round is in one of ``states``."""
    if rnd.state not in states:
        allowed = "、".join(state_label(s) for s in states)
        raise StateError(
            f"测评活动“{rnd.title}”当前为{state_label(rnd.state)}状态，不能{action}"
            f"（仅{allowed}状态可以）。"
        )


def transition(rnd: Round, target: RoundState, action: str) -> None:
    if target not in TRANSITIONS[RoundState(rnd.state)]:
        raise StateError(f"测评活动“{rnd.title}”当前为{state_label(rnd.state)}状态，不能{action}。")
    rnd.state = target


# What a round made before rule sets existed was graded by (the same thresholds as ``default``).
LEGACY_NAME = "本系统默认规则（可修改）"
LEGACY_SOURCE = "本系统默认规则，非004原文（004只规定等次名称，未规定比例）"


# --- reading the snapshot -------------------------------------------------------------------------


def get_round(round_id: int) -> Round:
    """The round with this id; NotFound otherwise."""
    rnd = db.session.get(Round, round_id) if is_row_id(round_id) else None
    if rnd is None:
        raise NotFound(f"测评活动 {round_id} 不存在")
    return rnd


def round_forms(rnd: Round) -> dict[str, BallotForm]:
    """The forms snapshotted on the round, validated."""
    return {fid: BallotForm.from_dict(data) for fid, data in rnd.forms.items()}


def subject_form(rnd: Round, subject: Subject) -> BallotForm:
    """The snapshot of the subject's form."""
    return BallotForm.from_dict(rnd.forms[subject.form_id])


def round_rule_set(rnd: Round) -> RuleSet:
    """The round's grading rule set (SPEC §4).

    Rounds made before rule sets have none stored: they were graded by 本系统默认规则, whose
    rules their form snapshots carry, so that is what they read as.
    """
    if rnd.rule_set:
        # The round's own minimum turnout (a round file or the settings may override the set's).
        stored = RuleSet.from_dict(rnd.rule_set)
        return replace(
            stored, min_turnout=min_turnout(rnd) if rnd.min_turnout else stored.min_turnout
        )
    forms = round_forms(rnd)
    return RuleSet(
        id=DEFAULT_ID,
        name=LEGACY_NAME,
        source=LEGACY_SOURCE,
        min_turnout=min_turnout(rnd) if rnd.min_turnout else Fraction(2, 3),
        rules={fid: f.rules for fid, f in forms.items()},
    )


def has_weights(rnd: Round) -> bool:
    """True when any stratum of the round carries a weight."""
    return any(s.weight is not None for s in rnd.strata)


def min_turnout(rnd: Round) -> Fraction:
    """The minimum turnout as an exact fraction."""
    return parse_fraction(rnd.min_turnout, "最低参测率")


# --- schedules ------------------------------------------------------------------------------------


def _passed(moment: datetime | None, now: datetime) -> bool:
    if moment is None:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment <= now


class Scheduled(Protocol):
    """A round's state and schedule: a ``Round``, or a voting request's snapshot of one."""

    @property
    def state(self) -> RoundState: ...
    @property
    def opens_at(self) -> datetime | None: ...
    @property
    def closes_at(self) -> datetime | None: ...
    @property
    def box_custody(self) -> str: ...


# Under 监票人保管 the box's private key is handed over at open and presented at close, so
# neither can happen on a schedule: the round opens and closes when its organiser says, and at
# its closing time it only stops taking votes (``voting_time_over``).
SCRUTINEER_CUSTODY = "scrutineer"


def schedule_due(rnd: Scheduled, now: datetime | None = None) -> bool:
    """True when a scheduled open or close of the round has come (reads only)."""
    if rnd.box_custody == SCRUTINEER_CUSTODY:
        return False
    now = now or datetime.now(UTC)
    return (rnd.state == RoundState.DRAFT and _passed(rnd.opens_at, now)) or (
        rnd.state == RoundState.OPEN and _passed(rnd.closes_at, now)
    )


def voting_time_over(rnd: Scheduled, now: datetime | None = None) -> bool:
    """True once an open round's closing time has passed, closed or not yet."""
    return _passed(rnd.closes_at, now or datetime.now(UTC))
