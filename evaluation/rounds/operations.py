"""测评活动的结构: creating a round and editing it while in draft (strata, subjects, forms).

Operations change objects and ``flush()``; the caller commits (``evaluation.transactions``).
Moving a round between states is ``evaluation.rounds.lifecycle``'s job.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy.orm import joinedload

from evaluation import audit
from evaluation.accounts.units import ensure_unit, in_tree
from evaluation.ballot_forms import BallotForm, parse_fraction
from evaluation.errors import DomainError, FormError, InputError
from evaluation.extensions import db
from evaluation.models import ArchiveEntry, Person, Round, RoundState, Stratum, Subject, Unit
from evaluation.rounds.state import require_state, round_forms, round_rule_set
from evaluation.rule_sets import (
    DEFAULT_ID,
    RuleSet,
    describe_rule,
    load_graded_forms,
    load_rule_sets,
)

# Times people type (pages, round files) are Beijing time (no daylight saving); stored in UTC.
LOCAL_TZ = timezone(timedelta(hours=8), "北京时间")

MODES = ("集中", "分散")
KINDS = ("本级自测", "上级抽测")
# Subjects in one round (every import path refuses more before taking the write lock).
MAX_SUBJECTS = 2000


def available_forms() -> dict[str, BallotForm]:
    """The forms an organiser may choose: the files in the configured ``BALLOTS_DIR``."""
    return load_graded_forms(current_app.config["BALLOTS_DIR"])


def available_rule_sets() -> dict[str, RuleSet]:
    """The grading rule sets a round may choose: ``BALLOTS_DIR/rule-sets/*.toml``, default first."""
    try:
        return load_rule_sets(current_app.config["BALLOTS_DIR"])
    except FormError as exc:
        raise InputError(exc.message) from None


def _rule_set(set_id: str | None) -> RuleSet:
    sets = available_rule_sets()
    chosen = (set_id or "").strip() or DEFAULT_ID
    if chosen not in sets:
        known = "、".join(f"{s.id}（{s.name}）" for s in sets.values()) or "无"
        raise InputError(f"等次规则集“{chosen}”不存在（可用：{known}）")
    return sets[chosen]


def _install_rule_set(rnd: Round, rule_set: RuleSet) -> None:
    """Store the set on the round and copy its rules into every form snapshot."""
    forms = {}
    for fid, data in (rnd.forms or {}).items():
        forms[fid] = _graded(rule_set, BallotForm.from_dict(data)).to_dict()
    rnd.rule_set = rule_set.to_dict()
    rnd.forms = forms


def _graded(rule_set: RuleSet, form: BallotForm) -> BallotForm:
    try:
        return rule_set.apply(form)
    except FormError as exc:
        raise InputError(exc.message) from None


def choose_rule_set(rnd: Round, set_id: str, *, actor: str) -> RuleSet:
    """Give a draft round another grading rule set (its thresholds and minimum turnout)."""
    require_state(rnd, RoundState.DRAFT, action="更换等次规则")
    rule_set = _rule_set(set_id)
    _install_rule_set(rnd, rule_set)
    rnd.min_turnout = str(rule_set.min_turnout)
    db.session.flush()
    audit.record(actor, "round.rule_set", round_id=rnd.id, rule_set=rule_set.id)
    return rule_set


def set_rule_thresholds(
    rnd: Round, changes: dict[tuple[str, int], str], *, actor: str
) -> list[str]:
    """Edit thresholds of a draft round's rule set; returns what changed, in words.

    ``changes`` maps (form id, rule index) to the typed value ("1/3", "0.5", "60%"). Nothing
    is changed when any value is bad.
    """
    require_state(rnd, RoundState.DRAFT, action="修改等次规则")
    rule_set = round_rule_set(rnd)
    forms = round_forms(rnd)
    changed: list[str] = []
    for (form_id, index), typed in sorted(changes.items()):
        rules = rule_set.rules.get(form_id)
        if rules is None or not 0 <= index < len(rules) or rules[index].unconditional:
            raise InputError(f"测评表 {form_id} 没有第 {index + 1} 条有比例的规则")
        value = _fraction_input(_percent_text(typed), "等次规则的比例")
        current = rules[index].at_least if rules[index].at_least is not None else rules[index].below
        if value == current:
            continue
        rule_set = rule_set.with_threshold(form_id, index, value)
        form = forms.get(form_id)
        if form is not None:
            changed.append(describe_rule(form, rule_set.rules[form_id][index]))
    if changed:
        _install_rule_set(rnd, rule_set)
        db.session.flush()
        audit.record(actor, "round.rule_thresholds", round_id=rnd.id, rules=changed)
    return changed


def _percent_text(typed: str) -> str:
    """ "60%" → "3/5"; anything else as typed."""
    text = (typed or "").strip().replace("％", "%")
    if text.endswith("%"):
        try:
            return str(Fraction(text[:-1].strip()) / 100)
        except (ValueError, ZeroDivisionError):
            return text
    return text


# --- creating and editing (draft only) ---------------------------------------------------------


def _check_mode_kind(mode: str, kind: str) -> None:
    if mode not in MODES:
        raise InputError(f"测评方式应为“集中”或“分散”，而不是“{mode}”")
    if kind not in KINDS:
        raise InputError(f"测评类型应为“本级自测”或“上级抽测”，而不是“{kind}”")


def check_year(year: Any) -> int:
    """The year as an int; InputError unless a four-digit year 1990–2100."""
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
    min_turnout: str | None = None,
    opens_at: datetime | None = None,
    closes_at: datetime | None = None,
    rule_set: str | None = None,
) -> Round:
    """Create a round in draft, graded by ``rule_set`` (default: 本系统默认规则).

    ``min_turnout`` overrides the rule set's minimum turnout when given.
    """
    title = (title or "").strip()
    if not title:
        raise InputError("测评活动名称不能为空")
    _check_mode_kind(mode, kind)
    _check_schedule(opens_at, closes_at)
    rules = _rule_set(rule_set)
    turnout = (
        str(_fraction_input(min_turnout, "最低参测率"))
        if min_turnout not in (None, "")
        else str(rules.min_turnout)
    )
    rnd = Round(
        title=title,
        unit=unit,
        year=check_year(year),
        mode=mode,
        kind=kind,
        min_turnout=turnout,
        opens_at=opens_at,
        closes_at=closes_at,
        state=RoundState.DRAFT,
        forms={},
        rule_set=rules.to_dict(),
    )
    db.session.add(rnd)
    db.session.flush()
    audit.record(
        actor, "round.create", round_id=rnd.id, title=title, unit=unit.path, rule_set=rules.id
    )
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
    rnd.year = check_year(year)
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


def set_stratum_subjects(
    rnd: Round, stratum: Stratum, subject_ids: Collection[int] | None, *, actor: str
) -> list[Subject]:
    """Choose the subjects a draft round's stratum rates; returns them (empty: all).

    ``None``, or every subject of the round, means all (subjects added later included). An
    empty choice, or a subject of another round, is refused.
    """
    require_state(rnd, RoundState.DRAFT, action="修改测评人员类别")
    chosen: list[Subject] = []
    if subject_ids is not None:
        by_id = {s.id: s for s in rnd.subjects}
        unknown = [i for i in subject_ids if i not in by_id]
        if unknown:
            raise InputError(f"测评对象 {unknown[0]} 不在此测评活动中")
        wanted = set(subject_ids)
        chosen = [s for s in rnd.subjects if s.id in wanted]
        if not chosen:
            raise InputError(f"类别“{stratum.name}”至少要评价一个测评对象（全部都评价时请全选）")
        if len(chosen) == len(rnd.subjects):
            chosen = []
    stratum.rates_all = not chosen
    stratum.rated = chosen
    db.session.flush()
    audit.record(
        actor,
        "stratum.subjects",
        round_id=rnd.id,
        name=stratum.name,
        subjects=[s.name for s in chosen] or "全部",
    )
    return chosen


def edit_stratum(
    rnd: Round, stratum: Stratum, *, actor: str, name: str, planned: int, weight: Any = None
) -> list[str]:
    """Change a draft round's stratum in place (its place, codes and subjects stay); returns
    what changed, in words (empty: nothing)."""
    require_state(rnd, RoundState.DRAFT, action="修改测评人员类别")
    name = (name or "").strip()
    if not name:
        raise InputError("测评人员类别名称不能为空")
    if any(s.name == name and s is not stratum for s in rnd.strata):
        raise InputError(f"测评人员类别“{name}”已存在")
    if isinstance(planned, bool) or not isinstance(planned, int) or planned < 0:
        raise InputError(f"类别“{name}”的应参加人数应为非负整数")
    new_weight = _parse_weight(weight)
    changed = _changes(
        ("名称", stratum.name, name),
        ("应参加人数", str(stratum.planned), str(planned)),
        ("权重", stratum.weight or "—", new_weight or "—"),
    )
    if not changed:
        return []
    before = {"name": stratum.name, "planned": stratum.planned, "weight": stratum.weight}
    stratum.name, stratum.planned, stratum.weight = name, planned, new_weight
    db.session.flush()
    audit.record(
        actor,
        "stratum.edit",
        round_id=rnd.id,
        name=name,
        before=before,
        after={"name": name, "planned": planned, "weight": new_weight},
    )
    return changed


def _changes(*fields: tuple[str, str, str]) -> list[str]:
    """ "职务：副局长 → 局长" for each (label, before, after) that differs."""
    return [f"{label}：{old} → {new}" for label, old, new in fields if old != new]


def rated_subjects(rnd: Round, stratum: Stratum) -> list[Subject]:
    """The subjects the stratum's voters grade, in ballot order."""
    if stratum.rates_all:
        return list(rnd.subjects)
    return [s for s in rnd.subjects if s in stratum.rated]


def unrated_problems(rnd: Round) -> list[str]:
    """Why the round cannot open as its strata stand: a stratum rating nothing, a subject
    rated by no stratum (empty when every stratum and subject is covered)."""
    problems = [
        f"测评人员类别“{s.name}”没有要评价的测评对象（所选对象已被删除），"
        "请在“测评人员类别”中重新选择它评价的测评对象"
        for s in rnd.strata
        if not rated_subjects(rnd, s)
    ]
    if rnd.strata and not problems:
        rated = {sub.id for st in rnd.strata for sub in rated_subjects(rnd, st)}
        problems += [
            f"测评对象“{sub.name}”没有任何测评人员类别评价，请在“测评人员类别”中选择评价它的类别"
            for sub in rnd.subjects
            if sub.id not in rated
        ]
    return problems


def remove_stratum(rnd: Round, stratum: Stratum, *, actor: str) -> None:
    """Remove a stratum from a draft round (with any codes issued for it)."""
    require_state(rnd, RoundState.DRAFT, action="修改测评人员类别")
    rnd.strata.remove(stratum)
    db.session.flush()
    audit.record(actor, "stratum.remove", round_id=rnd.id, name=stratum.name)


def snapshot_form(rnd: Round, form: BallotForm) -> BallotForm:
    """Freeze ``form`` on the round, graded by the round's rule set (editing the files later
    never changes this round); InputError when the rule set has no rules for it."""
    graded = _graded(round_rule_set(rnd), form)
    forms = dict(rnd.forms or {})
    forms[form.id] = graded.to_dict()
    rnd.forms = forms
    return graded


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


class Cadres:
    """The cadres an import may match, read at once and kept current as it adds more.

    ``resolve`` decides exactly as one lookup per subject would, without a query or a flush
    per subject: the persons it creates and the staff numbers it fills in are seen by the
    subjects after them.
    """

    def __init__(self, *, names: Iterable[str], staff_nos: Iterable[str | None]) -> None:
        wanted_names = {person_name(n) for n in names}
        wanted_staff = {no for no in ((s or "").strip() for s in staff_nos) if no}
        self._by_staff: dict[str, Person] = {}
        self._by_name: dict[tuple[str, int], list[Person]] = {}
        for person in self._load(wanted_names, wanted_staff):
            self._remember(person, person.unit_id)

    @staticmethod
    def _load(names: set[str], staff_nos: set[str]) -> list[Person]:
        """The persons with one of these names or staff numbers, with their units."""
        found: dict[int, Person] = {}
        for column, values in ((Person.name, names), (Person.staff_no, staff_nos)):
            ordered = sorted(values)
            for i in range(0, len(ordered), _LOOKUP_CHUNK):
                query = (
                    db.select(Person)
                    .where(column.in_(ordered[i : i + _LOOKUP_CHUNK]))
                    .options(joinedload(Person.unit))
                )
                for person in db.session.execute(query).scalars():
                    found[person.id] = person
        return list(found.values())

    def _remember(self, person: Person, unit_id: int) -> None:
        if person.staff_no:
            self._by_staff[person.staff_no] = person
        self._by_name.setdefault((person.name, unit_id), []).append(person)

    def resolve(
        self, *, name: str, unit: Unit, scope: Unit | None, staff_no: str | None, post: str
    ) -> Person:
        """Find the cadre by staff number, else by name within the unit, else create them.

        Only cadres now in ``scope`` (the acting account's tree; None: everywhere) are
        matched: a staff number held by someone outside it is refused without saying whose
        it is. A match is never changed beyond a missing staff number: the post typed for
        this round is the subject's (``Subject.post``); the cadre's own post and unit stay.
        """
        staff_no = (staff_no or "").strip() or None
        name = person_name(name)
        person: Person | None = None
        if staff_no:
            person = self._by_staff.get(staff_no)
            if person is not None and not in_tree(person.unit, scope):
                raise InputError(f"工号 {staff_no} 已在其他单位使用，不可用，请核对工号")
            if person is not None and person.name != name:
                raise InputError(
                    f"工号 {staff_no} 已属于“{person.name}”，与“{name}”不符，请核对工号"
                )
        if person is None:
            matches = self._by_name.get((name, unit.id), [])
            if len(matches) > 1:
                raise InputError(f"单位“{unit.path}”有多名“{name}”，请填写工号以区分")
            person = matches[0] if matches else None
            if person is not None and staff_no and person.staff_no and person.staff_no != staff_no:
                person = None
        if person is None:
            person = Person(name=name, unit=unit, staff_no=staff_no, post=(post or "").strip())
            db.session.add(person)
            self._remember(person, unit.id)
        elif staff_no and not person.staff_no:
            person.staff_no = staff_no
            self._by_staff[staff_no] = person
        return person


# Values per IN (...) list: well under any database's limit on bound parameters.
_LOOKUP_CHUNK = 500


def resolve_person(
    *, name: str, unit: Unit, scope: Unit | None, staff_no: str | None = None, post: str = ""
) -> Person:
    """Find the cadre by staff number, else by name within the unit, else create them.

    The rules are ``Cadres.resolve``'s; this is the lookup of a single subject.
    """
    cadres = Cadres(names=[name], staff_nos=[staff_no])
    person = cadres.resolve(name=name, unit=unit, scope=scope, staff_no=staff_no, post=post)
    db.session.flush()
    return person


@dataclass(frozen=True)
class NewSubject:
    """One subject to add, as typed (page, round file or sheet row)."""

    name: str
    form_id: str
    post: str = ""
    staff_no: str | None = None
    unit_path: str | None = None


class Added(NamedTuple):
    """What ``add_subjects`` did: the subjects added, and each refused one's index and error."""

    subjects: list[Subject]
    problems: list[tuple[int, DomainError]]


def add_subjects(
    rnd: Round,
    new: Sequence[NewSubject],
    *,
    forms: dict[str, BallotForm] | None = None,
    scope: Unit | None,
) -> Added:
    """Add subjects to a draft round in one go: one query for the cadres, one flush.

    Each subject is checked and its cadre resolved in order, exactly as ``add_subject`` would
    one by one; a refused subject is skipped and reported (by its index in ``new``), and the
    caller then rolls back, so nothing is half-added. ``scope`` as for ``add_subject``.
    Records no audit entry: the caller records the import as a whole.
    """
    require_state(rnd, RoundState.DRAFT, action="修改测评对象")
    forms = forms if forms is not None else available_forms()
    subjects = rnd.subjects
    taken = {s.name for s in subjects}
    count = len(subjects)
    units: dict[str, Unit] = {}
    chosen: dict[str, BallotForm] = {}
    added: list[Subject] = []
    problems: list[tuple[int, DomainError]] = []
    with db.session.no_autoflush:
        cadres = Cadres(
            names=(n.name.strip() for n in new if n.name), staff_nos=(n.staff_no for n in new)
        )
        for index, item in enumerate(new):
            try:
                name = (item.name or "").strip()
                if not name:
                    raise InputError("测评对象名称不能为空")
                if name in taken:
                    raise InputError(f"测评对象“{name}”重复（同一测评活动内名称必须唯一）")
                if count >= MAX_SUBJECTS:
                    raise InputError(f"每个测评活动最多 {MAX_SUBJECTS} 个测评对象")
                form = _subject_form(rnd, (item.form_id or "").strip(), forms, chosen)
                unit = rnd.unit
                if item.unit_path:
                    if item.unit_path not in units:
                        units[item.unit_path] = ensure_unit(item.unit_path)
                    unit = units[item.unit_path]
                person = None
                if form.subject_kind == "person":
                    person = cadres.resolve(
                        name=name, unit=unit, scope=scope, staff_no=item.staff_no, post=item.post
                    )
            except DomainError as exc:
                problems.append((index, exc))
                continue
            subject = Subject(
                name=name,
                form_id=form.id,
                person=person,
                unit=person.unit if person else unit,
                post=(item.post or "").strip(),
                position=count,
            )
            subjects.append(subject)
            added.append(subject)
            taken.add(name)
            count += 1
    if not problems:
        db.session.flush()
    return Added(added, problems)


def _subject_form(
    rnd: Round, form_id: str, forms: dict[str, BallotForm], chosen: dict[str, BallotForm]
) -> BallotForm:
    """The form a subject is graded with, snapshotting it on the round on first use."""
    if form_id in chosen:
        return chosen[form_id]
    if form_id in rnd.forms:
        form = BallotForm.from_dict(rnd.forms[form_id])
    elif form_id in forms:
        form = snapshot_form(rnd, forms[form_id])
    else:
        known = "、".join(sorted(forms))
        raise InputError(f"测评表“{form_id}”不存在（可用：{known}）")
    chosen[form_id] = form
    return form


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
    scope: Unit | None,
) -> Subject:
    """Add a subject to a draft round, snapshotting its form on first use.

    ``scope`` is the acting account's tree (``evaluation.accounts.access.acting_scope``; None
    for the command line): a cadre is matched by 工号 only within it.
    """
    item = NewSubject(name, form_id, post, staff_no, unit_path)
    added = add_subjects(rnd, [item], forms=forms, scope=scope)
    if added.problems:
        raise added.problems[0][1]
    subject = added.subjects[0]
    if audit_it:
        audit.record(actor, "subject.add", round_id=rnd.id, name=subject.name, form=subject.form_id)
    return subject


def remove_subject(rnd: Round, subject: Subject, *, actor: str) -> None:
    """Remove a subject from a draft round."""
    require_state(rnd, RoundState.DRAFT, action="修改测评对象")
    subject.rated_by.clear()  # a stratum limited to it no longer rates it
    rnd.subjects.remove(subject)
    if not any(s.form_id == subject.form_id for s in rnd.subjects):
        forms = dict(rnd.forms)
        forms.pop(subject.form_id, None)
        rnd.forms = forms
    db.session.flush()
    audit.record(actor, "subject.remove", round_id=rnd.id, name=subject.name)


def edit_subject(
    rnd: Round,
    subject: Subject,
    *,
    actor: str,
    name: str,
    form_id: str,
    post: str = "",
    staff_no: str | None = None,
    unit: Unit | None = None,
    scope: Unit | None,
    forms: dict[str, BallotForm] | None = None,
) -> list[str]:
    """Change a draft round's subject in place (its place on the ballot stays); returns what
    changed, in words (empty: nothing).

    The cadre is looked up again (as ``add_subject`` does, within ``scope``) only when the
    name, 工号 or unit now point elsewhere; a blank 工号 keeps the cadre's. A cadre no round and
    no archive entry names any more (a typo just corrected) is removed. ``unit``: the unit a
    cadre is looked up in, or a team's unit (None: the subject's own).
    """
    require_state(rnd, RoundState.DRAFT, action="修改测评对象")
    name = (name or "").strip()
    post = (post or "").strip()
    staff_no = (staff_no or "").strip() or None
    if not name:
        raise InputError("测评对象名称不能为空")
    if any(s.name == name and s is not subject for s in rnd.subjects):
        raise InputError(f"测评对象“{name}”重复（同一测评活动内名称必须唯一）")
    forms = forms if forms is not None else available_forms()
    unit = unit or subject.unit
    old_person = subject.person
    before = _subject_facts(rnd, subject)
    old_form = subject.form_id
    with db.session.no_autoflush:
        form = _subject_form(rnd, (form_id or "").strip(), forms, {})
        person: Person | None = None
        if form.subject_kind == "person":
            person = old_person
            if not (
                old_person is not None
                and old_person.name == person_name(name)
                and unit.id == subject.unit_id
                and staff_no in (None, old_person.staff_no)
            ):
                person = Cadres(names=[name], staff_nos=[staff_no]).resolve(
                    name=name, unit=unit, scope=scope, staff_no=staff_no, post=post
                )
        subject.name = name
        subject.form_id = form.id
        subject.post = post
        subject.person = person
        subject.unit = person.unit if person is not None else unit
    if old_form != form.id and not any(s.form_id == old_form for s in rnd.subjects):
        kept = dict(rnd.forms)
        kept.pop(old_form, None)
        rnd.forms = kept
    db.session.flush()
    after = _subject_facts(rnd, subject)
    labels = {"name": "名称", "form": "测评表", "post": "职务", "staff_no": "工号", "unit": "单位"}
    changed = _changes(*((labels[k], before[k] or "—", after[k] or "—") for k in labels))
    if old_person is not None and old_person is not person:
        drop_unused_people([old_person.id])
    if changed:
        audit.record(actor, "subject.edit", round_id=rnd.id, name=name, before=before, after=after)
    return changed


def _subject_facts(rnd: Round, subject: Subject) -> dict[str, str]:
    form = rnd.forms.get(subject.form_id)
    return {
        "name": subject.name,
        "form": form["title"] if form else subject.form_id,
        "post": subject.post or "",
        "staff_no": (subject.person.staff_no or "") if subject.person else "",
        "unit": subject.unit.path if subject.unit else "",
    }


def drop_unused_people(person_ids: Iterable[int]) -> int:
    """Remove the cadres among ``person_ids`` that no subject and no archive entry names (a
    typo corrected, a test round deleted); returns how many. A cadre with a history stays."""
    ids = set(person_ids)
    if not ids:
        return 0
    db.session.flush()
    used = set(
        db.session.execute(db.select(Subject.person_id).where(Subject.person_id.in_(ids))).scalars()
    ) | set(
        db.session.execute(
            db.select(ArchiveEntry.person_id).where(ArchiveEntry.person_id.in_(ids))
        ).scalars()
    )
    unused = ids - used
    for person_id in sorted(unused):
        person = db.session.get(Person, person_id)
        if person is not None:
            db.session.delete(person)
    db.session.flush()
    return len(unused)


def delete_round(rnd: Round, *, actor: str) -> None:
    """Delete a draft round with its strata, subjects and any codes issued for it; audited.

    Only a draft: from open on a round is part of the record (void it instead). Cadres the
    round alone named go with it.
    """
    require_state(rnd, RoundState.DRAFT, action="删除")
    people = {s.person_id for s in rnd.subjects if s.person_id is not None}
    details = {
        "round_id": rnd.id,
        "title": rnd.title,
        "year": rnd.year,
        "unit": rnd.unit.path,
        "strata": len(rnd.strata),
        "subjects": len(rnd.subjects),
    }
    db.session.delete(rnd)
    db.session.flush()
    drop_unused_people(people)
    audit.record(actor, "round.delete", **details)


def as_utc(moment: datetime) -> datetime:
    """A typed time in UTC: naive times are Beijing time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.astimezone(UTC)


def change_person(person: Person, *, post: str, unit: Unit, actor: str) -> bool:
    """The explicit, audited change of a cadre's 职务 or unit (调动); True if anything changed.

    Adding a subject never changes a cadre; this is the only way (the caller has checked the
    actor's scope with ``accounts.access.check_person_change``).
    """
    post = (post or "").strip()
    if len(post) > 200:
        raise InputError("职务不能超过 200 字")
    before = {"post": person.post or "", "unit": person.unit.path}
    if before == {"post": post, "unit": unit.path}:
        return False
    person.post = post
    person.unit_id = unit.id
    person.unit = unit
    db.session.flush()
    audit.record(
        actor,
        "person.change",
        person_id=person.id,
        before=before,
        after={"post": post, "unit": unit.path},
    )
    return True
