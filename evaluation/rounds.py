"""测评活动: the round's state machine and every operation that changes a round's structure.

The state machine lives here and nowhere else: views and commands call ``require_state`` (or
the ``round_in_state`` view decorator) before doing anything. Operations change state and
``flush()``; the request or command commits once.

    draft ──open──▶ open ──close──▶ closed ──archive──▶ archived
      └──────────────┴──────────────────┴──void(reason)──▶ void

Structure (strata, subjects, forms) is editable only in draft; close is final.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any, ParamSpec, Protocol, TypeVar

from evaluation import audit
from evaluation.ballot_forms import BallotForm, available_forms, parse_fraction
from evaluation.errors import FormError, InputError, NotFound, StateError
from evaluation.extensions import db
from evaluation.models import Person, Round, RoundState, Stratum, Subject, Unit, utcnow
from evaluation.units import ensure_unit

# Times people type (pages, round files) are Beijing time (no daylight saving); stored in UTC.
LOCAL_TZ = timezone(timedelta(hours=8), "北京时间")

MODES = ("集中", "分散")
KINDS = ("本级自测", "上级抽测")

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


def _transition(rnd: Round, target: RoundState, action: str) -> None:
    if target not in TRANSITIONS[RoundState(rnd.state)]:
        raise StateError(f"测评活动“{rnd.title}”当前为{state_label(rnd.state)}状态，不能{action}。")
    rnd.state = target


P = ParamSpec("P")
T = TypeVar("T")


def round_in_state(*states: RoundState, action: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """View decorator: load ``round_id`` (scoped to the user) and check its state first.

    The view receives the round as ``rnd`` instead of ``round_id``.
    """

    def decorator(view: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            from evaluation.accounts import visible_round

            rnd = visible_round(int(kwargs.pop("round_id")))  # type: ignore[call-overload]
            require_state(rnd, *states, action=action)
            kwargs["rnd"] = rnd
            return view(*args, **kwargs)

        return wrapper

    return decorator


# --- reading -----------------------------------------------------------------------------------


def get_round(round_id: int) -> Round:
    """The round with this id; NotFound otherwise."""
    rnd = db.session.get(Round, round_id)
    if rnd is None:
        raise NotFound(f"测评活动 {round_id} 不存在")
    return rnd


def round_forms(rnd: Round) -> dict[str, BallotForm]:
    """The forms snapshotted on the round, validated."""
    return {fid: BallotForm.from_dict(data) for fid, data in rnd.forms.items()}


def subject_form(rnd: Round, subject: Subject) -> BallotForm:
    """The snapshot of the subject's form."""
    return BallotForm.from_dict(rnd.forms[subject.form_id])


def has_weights(rnd: Round) -> bool:
    """True when any stratum of the round carries a weight."""
    return any(s.weight is not None for s in rnd.strata)


def min_turnout(rnd: Round) -> Fraction:
    """The minimum turnout as an exact fraction."""
    return parse_fraction(rnd.min_turnout, "最低参测率")


# --- creating and editing (draft only) ---------------------------------------------------------


def _check_mode_kind(mode: str, kind: str) -> None:
    if mode not in MODES:
        raise InputError(f"测评方式应为“集中”或“分散”，而不是“{mode}”")
    if kind not in KINDS:
        raise InputError(f"测评类型应为“本级自测”或“上级抽测”，而不是“{kind}”")


def _check_year(year: Any) -> int:
    if isinstance(year, bool) or not isinstance(year, int) or not 1990 <= year <= 2100:
        raise InputError(f"年度“{year}”不正确，应为四位数字年份")
    return year


def _check_schedule(opens_at: datetime | None, closes_at: datetime | None) -> None:
    if opens_at and closes_at and closes_at <= opens_at:
        raise InputError("计划结束时间应晚于计划开始时间")


def create_round(
    *,
    actor: str,
    title: str,
    unit: Unit,
    year: int,
    mode: str = "集中",
    kind: str = "本级自测",
    min_turnout: str = "2/3",
    opens_at: datetime | None = None,
    closes_at: datetime | None = None,
) -> Round:
    """Create a round in draft."""
    title = (title or "").strip()
    if not title:
        raise InputError("测评活动名称不能为空")
    _check_mode_kind(mode, kind)
    _check_schedule(opens_at, closes_at)
    turnout = str(_fraction_input(min_turnout, "最低参测率"))
    rnd = Round(
        title=title,
        unit=unit,
        year=_check_year(year),
        mode=mode,
        kind=kind,
        min_turnout=turnout,
        opens_at=opens_at,
        closes_at=closes_at,
        state=RoundState.DRAFT,
        forms={},
    )
    db.session.add(rnd)
    db.session.flush()
    audit.record(actor, "round.create", round_id=rnd.id, title=title, unit=unit.path)
    return rnd


def _fraction_input(value: Any, what: str) -> Fraction:
    try:
        return parse_fraction(value, what)
    except FormError as exc:
        raise InputError(exc.message) from None


def update_round(
    rnd: Round,
    *,
    actor: str,
    title: str,
    year: int,
    mode: str,
    kind: str,
    min_turnout: str,
    opens_at: datetime | None,
    closes_at: datetime | None,
) -> None:
    """Edit a draft round's settings."""
    require_state(rnd, RoundState.DRAFT, action="修改")
    title = (title or "").strip()
    if not title:
        raise InputError("测评活动名称不能为空")
    _check_mode_kind(mode, kind)
    _check_schedule(opens_at, closes_at)
    rnd.title = title
    rnd.year = _check_year(year)
    rnd.mode = mode
    rnd.kind = kind
    rnd.min_turnout = str(_fraction_input(min_turnout, "最低参测率"))
    rnd.opens_at = opens_at
    rnd.closes_at = closes_at
    db.session.flush()
    audit.record(actor, "round.update", round_id=rnd.id, title=title)


def _parse_weight(weight: Any) -> str | None:
    if weight is None or weight == "":
        return None
    frac = _fraction_input(weight, "权重")
    if frac == 0:
        raise InputError("权重应大于 0")
    return str(frac)


def add_stratum(rnd: Round, *, actor: str, name: str, planned: int, weight: Any = None) -> Stratum:
    """Add a stratum (who votes) to a draft round."""
    require_state(rnd, RoundState.DRAFT, action="修改测评人员类别")
    name = (name or "").strip()
    if not name:
        raise InputError("测评人员类别名称不能为空")
    if any(s.name == name for s in rnd.strata):
        raise InputError(f"测评人员类别“{name}”已存在")
    if isinstance(planned, bool) or not isinstance(planned, int) or planned < 0:
        raise InputError(f"类别“{name}”的应参加人数应为非负整数")
    stratum = Stratum(
        name=name, planned=planned, weight=_parse_weight(weight), position=len(rnd.strata)
    )
    rnd.strata.append(stratum)
    db.session.flush()
    audit.record(actor, "stratum.add", round_id=rnd.id, name=name, planned=planned)
    return stratum


def remove_stratum(rnd: Round, stratum: Stratum, *, actor: str) -> None:
    """Remove a stratum from a draft round (with any codes issued for it)."""
    require_state(rnd, RoundState.DRAFT, action="修改测评人员类别")
    rnd.strata.remove(stratum)
    db.session.flush()
    audit.record(actor, "stratum.remove", round_id=rnd.id, name=stratum.name)


def snapshot_form(rnd: Round, form: BallotForm) -> None:
    """Freeze ``form`` on the round (editing the file later never changes this round)."""
    forms = dict(rnd.forms or {})
    forms[form.id] = form.to_dict()
    rnd.forms = forms


def set_form_items(rnd: Round, form_id: str, items: list[str], *, actor: str) -> None:
    """Set the per-round items of a form (e.g. this year's 廉洁自律 priorities)."""
    require_state(rnd, RoundState.DRAFT, action="修改测评内容")
    forms = available_forms()
    if form_id not in forms:
        raise InputError(f"测评表“{form_id}”不存在")
    texts = [t.strip() for t in items if t and t.strip()]
    snapshot_form(rnd, forms[form_id].with_items(texts))
    db.session.flush()
    audit.record(actor, "form.items", round_id=rnd.id, form=form_id, items=len(texts))


# "张三（廉洁自律）": a subject name may qualify the cadre's name for a second form.
# Only the full-width brackets Chinese text uses: "=SUM(1,2)" stays a (strange) name as typed.
_QUALIFIER = re.compile(r"\s*（[^（）]*）\s*$")


def person_name(subject_name: str) -> str:
    """The cadre's own name in a subject name: "张三（廉洁自律）" → "张三"."""
    return _QUALIFIER.sub("", subject_name).strip() or subject_name.strip()


def resolve_person(*, name: str, unit: Unit, staff_no: str | None = None, post: str = "") -> Person:
    """Find the cadre by staff number, else by name within the unit, else create them."""
    staff_no = (staff_no or "").strip() or None
    name = person_name(name)
    person: Person | None = None
    if staff_no:
        person = db.session.execute(
            db.select(Person).where(Person.staff_no == staff_no)
        ).scalar_one_or_none()
        if person is not None and person.name != name:
            raise InputError(f"工号 {staff_no} 已属于“{person.name}”，与“{name}”不符，请核对工号")
    if person is None:
        matches = list(
            db.session.execute(
                db.select(Person).where(Person.name == name, Person.unit_id == unit.id)
            ).scalars()
        )
        if len(matches) > 1:
            raise InputError(f"单位“{unit.path}”有多名“{name}”，请填写工号以区分")
        person = matches[0] if matches else None
        if person is not None and staff_no and person.staff_no and person.staff_no != staff_no:
            person = None
    if person is None:
        person = Person(name=name, unit=unit, staff_no=staff_no, post=post)
        db.session.add(person)
        db.session.flush()
    else:
        if staff_no and not person.staff_no:
            person.staff_no = staff_no
        if post:
            person.post = post
    return person


def add_subject(
    rnd: Round,
    *,
    actor: str,
    name: str,
    form_id: str,
    post: str = "",
    staff_no: str | None = None,
    unit_path: str | None = None,
    forms: dict[str, BallotForm] | None = None,
    audit_it: bool = True,
) -> Subject:
    """Add a subject to a draft round, snapshotting its form on first use."""
    require_state(rnd, RoundState.DRAFT, action="修改测评对象")
    name = (name or "").strip()
    if not name:
        raise InputError("测评对象名称不能为空")
    if any(s.name == name for s in rnd.subjects):
        raise InputError(f"测评对象“{name}”重复（同一测评活动内名称必须唯一）")
    forms = forms if forms is not None else available_forms()
    form_id = (form_id or "").strip()
    if form_id in rnd.forms:
        form = BallotForm.from_dict(rnd.forms[form_id])
    elif form_id in forms:
        form = forms[form_id]
        snapshot_form(rnd, form)
    else:
        known = "、".join(sorted(forms))
        raise InputError(f"测评表“{form_id}”不存在（可用：{known}）")
    unit = ensure_unit(unit_path) if unit_path else rnd.unit
    person = None
    if form.subject_kind == "person":
        person = resolve_person(name=name, unit=unit, staff_no=staff_no, post=post)
    subject = Subject(
        name=name,
        form_id=form.id,
        person=person,
        unit=person.unit if person else unit,
        post=(post or "").strip(),
        position=len(rnd.subjects),
    )
    rnd.subjects.append(subject)
    db.session.flush()
    if audit_it:
        audit.record(actor, "subject.add", round_id=rnd.id, name=name, form=form.id)
    return subject


def remove_subject(rnd: Round, subject: Subject, *, actor: str) -> None:
    """Remove a subject from a draft round."""
    require_state(rnd, RoundState.DRAFT, action="修改测评对象")
    rnd.subjects.remove(subject)
    if not any(s.form_id == subject.form_id for s in rnd.subjects):
        forms = dict(rnd.forms)
        forms.pop(subject.form_id, None)
        rnd.forms = forms
    db.session.flush()
    audit.record(actor, "subject.remove", round_id=rnd.id, name=subject.name)


# --- moving through the states -----------------------------------------------------------------


def open_round(rnd: Round, *, actor: str) -> None:
    """Open a draft round for voting."""
    require_state(rnd, RoundState.DRAFT, action="开始测评")
    if not rnd.strata:
        raise InputError("请先添加至少一个测评人员类别，再开始测评")
    if not rnd.subjects:
        raise InputError("请先添加至少一个测评对象，再开始测评")
    for form in round_forms(rnd).values():
        if form.items_per_round and not form.items:
            raise InputError(
                f"“{form.title}”的测评内容由每次测评活动设定（当年的重点任务），"
                "请先在测评活动页面填写测评内容，再开始测评"
            )
    _transition(rnd, RoundState.OPEN, "开始测评")
    db.session.flush()
    audit.record(actor, "round.open", round_id=rnd.id)


def close_round(rnd: Round, *, actor: str) -> None:
    """Close an open round: final. Ballots are rewritten in random order and sealed."""
    from evaluation.anonymity import rewrite_in_random_order
    from evaluation.seal import seal_round

    require_state(rnd, RoundState.OPEN, action="结束测评")
    _transition(rnd, RoundState.CLOSED, "结束测评")
    rnd.closed_at = utcnow()
    db.session.flush()
    rewrite_in_random_order(rnd)
    seal_round(rnd)
    audit.record(actor, "round.close", round_id=rnd.id)


def archive_round(rnd: Round, *, actor: str) -> None:
    """Move a closed round to archived and append its sealed figures to the 廉政档案."""
    from evaluation.archive import append_round

    require_state(rnd, RoundState.CLOSED, action="归档")
    _transition(rnd, RoundState.ARCHIVED, "归档")
    db.session.flush()
    audit.record(actor, "round.archive", round_id=rnd.id)
    append_round(rnd, actor=actor)


def void_round(rnd: Round, *, actor: str, reason: str) -> None:
    """Void a round that has not been archived, with a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise InputError("作废测评活动必须填写原因")
    _transition(rnd, RoundState.VOID, "作废")
    rnd.void_reason = reason
    db.session.flush()
    audit.record(actor, "round.void", round_id=rnd.id, reason=reason)


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


def schedule_due(rnd: Scheduled, now: datetime | None = None) -> bool:
    """True when a scheduled open or close of the round has come (reads only)."""
    now = now or datetime.now(UTC)
    return (rnd.state == RoundState.DRAFT and _passed(rnd.opens_at, now)) or (
        rnd.state == RoundState.OPEN and _passed(rnd.closes_at, now)
    )


def apply_schedule(rnd: Round, now: datetime | None = None) -> bool:
    """Open or close the round if its scheduled time has passed; True if it changed."""
    now = now or datetime.now(UTC)
    changed = False
    if rnd.state == RoundState.DRAFT and _passed(rnd.opens_at, now) and rnd.strata and rnd.subjects:
        open_round(rnd, actor="计划任务")
        changed = True
    if rnd.state == RoundState.OPEN and _passed(rnd.closes_at, now):
        close_round(rnd, actor="计划任务")
        changed = True
    return changed


def as_utc(moment: datetime) -> datetime:
    """A typed time in UTC: naive times are Beijing time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.astimezone(UTC)
