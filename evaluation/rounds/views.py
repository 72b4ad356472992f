"""Organiser pages: rounds, their strata and subjects, subject import, and state changes.

Views parse a form, call one operation (``evaluation.rounds.operations``, ``lifecycle``,
``round_file``, ``subject_import``) inside the one commit point (``evaluation.transactions``)
and redirect with a message. Who may see a round and whether its state allows the change are
checked by ``evaluation.accounts.access`` before a view runs, so a structure edit outside draft
is refused with the 409 page, never ignored. Viewers see their units' rounds; organisers and
admins change them.
"""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from typing import Any

import qrcode
from flask import Blueprint, make_response, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from markupsafe import Markup
from qrcode.image.svg import SvgPathImage
from werkzeug.routing import BuildError
from wtforms import SelectChoice

from evaluation import audit
from evaluation.accounts.access import (
    acting_scope,
    check_new_unit,
    chosen_unit,
    roles_required,
    round_in_state,
    unit_allowed,
    visible_round,
    visible_units,
)
from evaluation.accounts.operations import ROLE_LABELS
from evaluation.accounts.units import find_unit
from evaluation.archive.accountability import unit_choice
from evaluation.archive.rules import INTEGRITY, TEAM, TRUST
from evaluation.ballot_forms import BallotForm, form_order, in_form_order
from evaluation.codes.turnout import round_turnout
from evaluation.errors import DomainError, InputError, NotFound, StateError
from evaluation.extensions import db
from evaluation.forms import ActionForm
from evaluation.models import Person, Role, Round, RoundState, Stratum, Subject
from evaluation.reports.wording import validity_text
from evaluation.rounds import (
    copying,
    dashboard,
    lifecycle,
    operations,
    round_file,
    subject_import,
)
from evaluation.rounds.forms import (
    CloseForm,
    CopyRoundForm,
    ItemsForm,
    NewRoundForm,
    OpenForm,
    RoundFileForm,
    RoundSettingsForm,
    RuleSetForm,
    StratumForm,
    SubjectEditForm,
    SubjectFileForm,
    SubjectForm,
    VoidForm,
)
from evaluation.rounds.operations import available_forms, available_rule_sets
from evaluation.rounds.state import STATE_LABELS, min_turnout, round_forms, round_rule_set
from evaluation.rule_sets import RuleSet, describe_rule, fraction_words, rule_lead
from evaluation.tally.aggregate import sealed_result
from evaluation.tally.core import percent
from evaluation.transactions import write_transaction, writes
from evaluation.voting import box
from evaluation.web import done, refused

bp = Blueprint("rounds", __name__)

EDITORS = (Role.ORGANISER, Role.ADMIN)
DRAFT = RoundState.DRAFT

# --- helpers -----------------------------------------------------------------------------------


def _detail(rnd: Round, anchor: str = "") -> str:
    return url_for("rounds.round_detail", round_id=rnd.id, _anchor=anchor or None)


def _to_utc(local: datetime | None) -> datetime | None:
    return local.replace(tzinfo=operations.LOCAL_TZ).astimezone(UTC) if local else None


def _to_local(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(operations.LOCAL_TZ).replace(tzinfo=None)


def _stratum(rnd: Round, stratum_id: int) -> Stratum:
    for s in rnd.strata:
        if s.id == stratum_id:
            return s
    raise NotFound(f"测评人员类别 {stratum_id} 不在此测评活动中")


def _subject(rnd: Round, subject_id: int) -> Subject:
    for s in rnd.subjects:
        if s.id == subject_id:
            return s
    raise NotFound(f"测评对象 {subject_id} 不在此测评活动中")


def _form_choices(forms: dict[str, BallotForm]) -> list[SelectChoice]:
    return [SelectChoice("", "— 请选择 —")] + [
        SelectChoice(f.id, f.title) for f in sorted(forms.values(), key=lambda f: form_order(f.id))
    ]


@bp.app_template_filter("local_time")
def local_time(moment: datetime | None) -> str:
    """A stored time as Beijing time, "2026-12-01 09:00"; "" for none."""
    local = _to_local(moment)
    return local.strftime("%Y-%m-%d %H:%M") if local else ""


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    def round_link(endpoints: str | list[str], rnd: Round) -> str | None:
        """A page another area provides for a round (first endpoint installed), or None."""
        for endpoint in [endpoints] if isinstance(endpoints, str) else endpoints:
            try:
                return url_for(endpoint, round_id=rnd.id)
            except BuildError:
                continue
        return None

    may_edit = bool(current_user.is_authenticated and current_user.role in EDITORS)
    return {"may_edit": may_edit, "round_link": round_link, "role_labels": ROLE_LABELS}


# --- round list, new round, round file ---------------------------------------------------------


@bp.route("/")
@login_required
def index() -> Any:
    """The dashboard: the rounds of the user's units, filtered, searched and paginated, newest
    first, each with its turnout, dates and next step."""
    filters = dashboard.Filters.from_args(request.args)
    return render_template(
        "rounds/index.html",
        board=dashboard.dashboard(current_user, filters),
        filters=filters,
        units=visible_units(current_user),
        states=STATE_LABELS,
        page_links=dashboard.page_links,
    )


@bp.route("/rounds/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def new_round() -> Any:
    """新建测评活动."""
    form = NewRoundForm()
    units = visible_units(current_user)
    form.unit_id.choices = [SelectChoice(u.id, u.path) for u in units]  # type: ignore[assignment]
    form.rule_set.choices = _rule_set_choices()  # type: ignore[assignment]
    if not form.is_submitted():
        form.year.data = datetime.now(operations.LOCAL_TZ).year
        if current_user.unit is not None:
            form.unit_id.data = current_user.unit.id
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            with write_transaction():
                rnd = operations.create_round(
                    actor=current_user.username,
                    unit=chosen_unit(current_user, form.unit_id.data),
                    title=form.title.data or "",
                    year=int(form.year.data or 0),
                    mode=form.mode.data or "",
                    kind=form.kind.data or "",
                    min_turnout=form.min_turnout.data or None,
                    opens_at=_to_utc(form.opens_at.data),
                    closes_at=_to_utc(form.closes_at.data),
                    rule_set=form.rule_set.data or None,
                )
        except InputError as exc:
            problems = [exc.message, *exc.problems]
        else:
            return done(
                f"已创建测评活动“{rnd.title}”。请添加测评人员类别和测评对象。", _detail(rnd)
            )
    status = 400 if form.is_submitted() else 200
    return render_template("rounds/round_form.html", form=form, problems=problems), status


@bp.route("/rounds/import", methods=["GET", "POST"])
@roles_required(*EDITORS)
def import_round() -> Any:
    """从测评文件（TOML）导入测评活动, like ``flask round import``."""
    form = RoundFileForm()
    problems: list[str] = []
    message = ""
    if form.validate_on_submit():
        upload = form.file.data
        name = upload.filename or "测评文件"
        try:
            # Parsed and checked before the write lock is taken; the lock covers the writes.
            data = round_file.parse_round_text(_utf8(upload.read(), name), name)
            _check_round_file_scope(data)
            round_file.check_round_data(data, name)
            with write_transaction():
                rnd = round_file.import_round(
                    data,
                    actor=current_user.username,
                    source=name,
                    scope=acting_scope(current_user),
                )
        except InputError as exc:
            message, problems = exc.message, exc.problems
        else:
            return done(
                f"已从“{name}”导入测评活动“{rnd.title}”：{len(rnd.strata)} 个类别，"
                f"{len(rnd.subjects)} 个测评对象。",
                _detail(rnd),
            )
    status = 400 if form.is_submitted() else 200
    return render_template(
        "rounds/round_import.html", form=form, message=message, problems=problems
    ), status


def _utf8(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"“{name}”不是 UTF-8 编码的文本文件") from None


def _check_round_file_scope(data: dict[str, Any]) -> None:
    """Organisers may import rounds only for their own units (and beneath).

    A unit the file names that does not exist yet is created only for an admin whose tree
    covers it (SPEC §11); anyone else is refused with the path named.
    """
    allowed = unit_allowed(current_user)
    paths = [data.get("unit")]
    subjects = data.get("subjects")
    if isinstance(subjects, list):
        paths += [s.get("unit") for s in subjects if isinstance(s, dict)]
    for path in paths:
        if isinstance(path, str) and path.strip() and not allowed(path):
            raise InputError(f"测评文件中的单位“{path}”不在您的管辖范围内，未导入任何内容。")
    for path in paths:
        if isinstance(path, str) and path.strip() and _missing_unit(path):
            check_new_unit(current_user, path)


def _missing_unit(path: str) -> bool:
    try:
        return find_unit(path) is None
    except InputError:
        return False  # a malformed path is reported by the file's own checks


# --- one round ---------------------------------------------------------------------------------


@bp.route("/rounds/<int:round_id>")
@login_required
def round_detail(round_id: int) -> Any:
    """A round: settings, strata, subjects, per-round items, links and state buttons."""
    return _render_detail(visible_round(round_id))


def _render_detail(
    rnd: Round,
    status: int = 200,
    *,
    failed: FlaskForm | None = None,
    section: str = "",
    problems: tuple[str, ...] = (),
) -> Any:
    """The round page; after a refused form, that form keeps its input and shows why."""

    def form(cls: type[FlaskForm], **kwargs: Any) -> Any:
        if (
            failed is not None
            and type(failed) is cls
            and failed._prefix == kwargs.get("prefix", "")
        ):
            return failed
        return cls(formdata=None, **kwargs)  # the other forms must not read this POST

    subject_form = form(SubjectForm)
    subject_form.form_id.choices = _form_choices(available_forms() if rnd.state == DRAFT else {})
    item_forms = {}
    for form_id, snapshot in in_form_order(rnd.forms):
        if snapshot.get("items_per_round"):
            f = form(ItemsForm, prefix=form_id + "-")
            if f is not failed:
                f.items.data = "\n".join(i["text"] for i in snapshot["items"])
            item_forms[form_id] = f
    rule_set_form = form(RuleSetForm)
    rule_set_form.rule_set.choices = _rule_set_choices() if rnd.state == DRAFT else []
    rule_set = round_rule_set(rnd)
    if rule_set_form is not failed:
        rule_set_form.rule_set.data = rule_set.id
    # The cadres of the subjects in one query (the page shows each one's staff number).
    people = db.session.execute(
        db.select(Person).where(Person.id.in_({s.person_id for s in rnd.subjects if s.person_id}))
    ).scalars()
    return render_template(
        "rounds/round_detail.html",
        rnd=rnd,
        people=list(people),  # held while the page renders: the session keeps them weakly
        is_draft=rnd.state == DRAFT,
        rule_set=rule_set,
        rule_rows=_rule_rows(rnd, rule_set),
        rule_set_form=rule_set_form,
        stratum_form=form(StratumForm),
        subject_form=subject_form,
        item_forms=item_forms,
        void_form=form(VoidForm),
        action_form=ActionForm(formdata=None),
        open_form=OpenForm(formdata=None),
        box_fingerprint=box.fingerprint(bytes(rnd.box_public_key or b"")),
        total_planned=sum(s.planned for s in rnd.strata),
        rated_subjects=operations.rated_subjects,
        section_problems={section: list(problems)} if section else {},
    ), status


def _rule_set_choices() -> list[SelectChoice]:
    return [SelectChoice(s.id, s.name) for s in available_rule_sets().values()]


def _threshold_text(value: Any) -> str:
    """A threshold as one would type it: "90%" when a whole percent, else "1/3"."""
    percent = value * 100
    return f"{percent.numerator}%" if percent.denominator == 1 else str(value)


def _rule_rows(rnd: Round, rule_set: RuleSet) -> list[dict[str, Any]]:
    """Per form of the round (or of the set, before any subject): its rules, in words."""
    forms = round_forms(rnd)
    if not forms:
        try:
            forms = {
                fid: rule_set.apply(f)
                for fid, f in available_forms().items()
                if rule_set.covers(fid)
            }
        except DomainError:
            forms = {}
    rows = []
    for form_id, form in forms.items():
        rules = []
        for index, rule in enumerate(form.rules):
            value = rule.at_least if rule.at_least is not None else rule.below
            rules.append(
                {
                    "index": index,
                    "text": describe_rule(form, rule),
                    "lead": rule_lead(form, rule),
                    "value": _threshold_text(value) if value is not None else None,
                    "sign": "≥" if rule.at_least is not None else "<",
                    "grade": form.label(rule.grade),
                }
            )
        rows.append({"form_id": form_id, "title": form.title, "rules": rules})
    return rows


@bp.route("/rounds/<int:round_id>/rule-set", methods=["POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="更换等次规则集")
@writes
def choose_rule_set(rnd: Round) -> Any:
    """选用另一个等次规则集（草稿）: its thresholds and minimum turnout replace the round's."""
    form = RuleSetForm()
    form.rule_set.choices = _rule_set_choices()  # type: ignore[assignment]
    if not form.validate_on_submit():
        return _refused_form(rnd, form, "rules", None)
    try:
        chosen = operations.choose_rule_set(
            rnd, form.rule_set.data or "", actor=current_user.username
        )
    except InputError as exc:
        return _refused_form(rnd, form, "rules", exc)
    return done(
        f"已选用等次规则集“{chosen.name}”，最低参测率改为 {_threshold_text(chosen.min_turnout)}。",
        _detail(rnd, "rules"),
    )


@bp.route("/rounds/<int:round_id>/rule-thresholds", methods=["POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="修改等次规则")
@writes
def set_rule_thresholds(rnd: Round) -> Any:
    """修改等次规则的比例（草稿）: fields ``t-<form id>-<rule index>``."""
    action = ActionForm()
    if not action.validate_on_submit():
        return _refused_form(rnd, action, "rules", None)
    changes: dict[tuple[str, int], str] = {}
    for key, value in request.form.items():
        if not key.startswith("t-"):
            continue
        form_id, _, index = key[2:].rpartition("-")
        if not form_id or not index.isdigit():
            continue
        changes[(form_id, int(index))] = value
    try:
        changed = operations.set_rule_thresholds(rnd, changes, actor=current_user.username)
    except InputError as exc:
        return _refused_form(rnd, action, "rules", exc)
    if not changed:
        return done("比例没有变化。", _detail(rnd, "rules"))
    return done("已修改等次规则：" + "；".join(changed) + "。", _detail(rnd, "rules"))


def _refused_form(rnd: Round, form: FlaskForm, section: str, error: InputError | None) -> Any:
    """Nothing is stored; the page comes back with the form's input and every problem."""
    db.session.rollback()
    problems = (error.message, *error.problems) if error else ("填写有误，未保存。请按提示修改。",)
    return _render_detail(rnd, 400, failed=form, section=section, problems=problems)


@bp.route("/rounds/<int:round_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="修改设置")
def edit_round(rnd: Round) -> Any:
    """修改草稿测评活动的设置."""
    form = RoundSettingsForm(obj=rnd)
    if not form.is_submitted():
        form.opens_at.data = _to_local(rnd.opens_at)
        form.closes_at.data = _to_local(rnd.closes_at)
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            with write_transaction():
                operations.update_round(
                    rnd,
                    actor=current_user.username,
                    title=form.title.data or "",
                    year=int(form.year.data or 0),
                    mode=form.mode.data or "",
                    kind=form.kind.data or "",
                    min_turnout=form.min_turnout.data or "",
                    opens_at=_to_utc(form.opens_at.data),
                    closes_at=_to_utc(form.closes_at.data),
                )
        except InputError as exc:
            problems = [exc.message, *exc.problems]
        else:
            return done("已保存设置。", _detail(rnd))
    status = 400 if form.is_submitted() else 200
    return render_template("rounds/round_form.html", form=form, rnd=rnd, problems=problems), status


@bp.route("/rounds/<int:round_id>/strata", methods=["POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="修改测评人员类别")
@writes
def add_stratum(rnd: Round) -> Any:
    """添加测评人员类别."""
    form = StratumForm()
    if not form.validate_on_submit():
        return _refused_form(rnd, form, "strata", None)
    try:
        rated = _chosen_subjects(rnd)
        stratum = operations.add_stratum(
            rnd,
            actor=current_user.username,
            name=form.name.data or "",
            planned=int(form.planned.data or 0),
            weight=(form.weight.data or "").strip() or None,
        )
        if rated is not None:
            operations.set_stratum_subjects(rnd, stratum, rated, actor=current_user.username)
    except InputError as exc:
        return _refused_form(rnd, form, "strata", exc)
    return done(f"已添加测评人员类别“{stratum.name}”。", _detail(rnd, "strata"))


def _chosen_subjects(rnd: Round) -> list[int] | None:
    """The subjects ticked in a stratum form (``subjects`` checkboxes); None: all of them,
    or the form showed none (the round had no subjects yet)."""
    if not request.form.get("subjects_shown"):
        return None
    chosen: list[int] = []
    for value in request.form.getlist("subjects"):
        if not value.isdigit():
            raise InputError("所选测评对象不正确，请刷新页面后重新选择")
        chosen.append(int(value))
    if not chosen:
        raise InputError("请至少选择一个要评价的测评对象（全部都评价时请全选）")
    if set(chosen) == {s.id for s in rnd.subjects}:
        return None
    return chosen


@bp.route("/rounds/<int:round_id>/strata/<int:stratum_id>/subjects", methods=["POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="修改测评人员类别")
@writes
def stratum_subjects(rnd: Round, stratum_id: int) -> Any:
    """选择测评人员类别评价的测评对象（草稿）: checkboxes ``subjects``, all = 全部."""
    stratum = _stratum(rnd, stratum_id)
    action = ActionForm()
    if not action.validate_on_submit():
        return _refused_form(rnd, action, "strata", None)
    try:
        rated = _chosen_subjects(rnd)
        chosen = operations.set_stratum_subjects(rnd, stratum, rated, actor=current_user.username)
    except InputError as exc:
        return _refused_form(rnd, action, "strata", exc)
    what = "、".join(s.name for s in chosen) if chosen else "全部测评对象"
    return done(f"类别“{stratum.name}”评价：{what}。", _detail(rnd, "strata"))


@bp.route("/rounds/<int:round_id>/strata/<int:stratum_id>/remove", methods=["POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="修改测评人员类别")
@writes
def remove_stratum(rnd: Round, stratum_id: int) -> Any:
    """删除测评人员类别."""
    stratum = _stratum(rnd, stratum_id)
    operations.remove_stratum(rnd, stratum, actor=current_user.username)
    return done(f"已删除测评人员类别“{stratum.name}”。", _detail(rnd, "strata"))


@bp.route("/rounds/<int:round_id>/strata/<int:stratum_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="修改测评人员类别")
def edit_stratum(rnd: Round, stratum_id: int) -> Any:
    """修改测评人员类别（草稿）: name, planned number and weight, in its place."""
    stratum = _stratum(rnd, stratum_id)
    form = StratumForm(obj=stratum)
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            with write_transaction():
                changed = operations.edit_stratum(
                    rnd,
                    stratum,
                    actor=current_user.username,
                    name=form.name.data or "",
                    planned=int(form.planned.data or 0),
                    weight=(form.weight.data or "").strip() or None,
                )
        except InputError as exc:
            problems = [exc.message, *exc.problems]
        else:
            what = "；".join(changed) if changed else "没有变化"
            return done(f"类别“{stratum.name}”：{what}。", _detail(rnd, "strata"))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "rounds/stratum_edit.html", rnd=rnd, stratum=stratum, form=form, problems=problems
    ), status


@bp.route("/rounds/<int:round_id>/subjects", methods=["POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="修改测评对象")
@writes
def add_subject(rnd: Round) -> Any:
    """添加测评对象."""
    form = SubjectForm()
    form.form_id.choices = _form_choices(available_forms())
    if not form.validate_on_submit():
        return _refused_form(rnd, form, "subjects", None)
    try:
        subject = operations.add_subject(
            rnd,
            actor=current_user.username,
            name=form.name.data or "",
            form_id=form.form_id.data or "",
            post=(form.post.data or "").strip(),
            staff_no=(form.staff_no.data or "").strip() or None,
            scope=acting_scope(current_user),
        )
    except InputError as exc:
        return _refused_form(rnd, form, "subjects", exc)
    return done(f"已添加测评对象“{subject.name}”。", _detail(rnd, "subjects"))


@bp.route("/rounds/<int:round_id>/subjects/<int:subject_id>/remove", methods=["POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="修改测评对象")
@writes
def remove_subject(rnd: Round, subject_id: int) -> Any:
    """删除测评对象."""
    subject = _subject(rnd, subject_id)
    operations.remove_subject(rnd, subject, actor=current_user.username)
    return done(f"已删除测评对象“{subject.name}”。", _detail(rnd, "subjects"))


@bp.route("/rounds/<int:round_id>/subjects/<int:subject_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="修改测评对象")
def edit_subject(rnd: Round, subject_id: int) -> Any:
    """修改测评对象（草稿）: name, form, 职务, 工号 and unit, in its place on the ballot."""
    subject = _subject(rnd, subject_id)
    form = SubjectEditForm()
    forms = available_forms()
    form.form_id.choices = _form_choices(forms)
    units = visible_units(current_user)
    if subject.unit not in units:
        units.insert(0, subject.unit)
    form.unit_id.choices = [SelectChoice(u.id, u.path) for u in units]  # type: ignore[assignment]
    if not form.is_submitted():
        form.name.data = subject.name
        form.form_id.data = subject.form_id
        form.post.data = subject.post
        form.staff_no.data = subject.person.staff_no if subject.person else ""
        form.unit_id.data = subject.unit_id
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            unit = (
                subject.unit
                if form.unit_id.data == subject.unit_id
                else chosen_unit(current_user, form.unit_id.data)
            )
            with write_transaction():
                changed = operations.edit_subject(
                    rnd,
                    subject,
                    actor=current_user.username,
                    name=form.name.data or "",
                    form_id=form.form_id.data or "",
                    post=form.post.data or "",
                    staff_no=form.staff_no.data or None,
                    unit=unit,
                    scope=acting_scope(current_user),
                    forms=forms,
                )
        except InputError as exc:
            problems = [exc.message, *exc.problems]
        else:
            what = "；".join(changed) if changed else "没有变化"
            return done(f"测评对象“{subject.name}”：{what}。", _detail(rnd, "subjects"))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "rounds/subject_edit.html", rnd=rnd, subject=subject, form=form, problems=problems
    ), status


@bp.route("/rounds/<int:round_id>/forms/<form_id>/items", methods=["POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="修改测评内容")
@writes
def set_items(rnd: Round, form_id: str) -> Any:
    """本次测评内容 of a form whose items are set per round (one a line)."""
    snapshot = rnd.forms.get(form_id)
    if snapshot is None or not snapshot.get("items_per_round"):
        raise NotFound(f"此测评活动没有需要自定内容的测评表“{form_id}”")
    form = ItemsForm(prefix=form_id + "-")
    section = f"items-{form_id}"
    if not form.validate_on_submit():
        return _refused_form(rnd, form, section, None)
    try:
        operations.set_form_items(
            rnd, form_id, (form.items.data or "").splitlines(), actor=current_user.username
        )
    except InputError as exc:
        return _refused_form(rnd, form, section, exc)
    count = len(rnd.forms[form_id]["items"])
    return done(f"已保存“{snapshot['title']}”的测评内容（{count} 项）。", _detail(rnd, section))


# --- Excel import of subjects ------------------------------------------------------------------


@bp.route("/rounds/<int:round_id>/subjects/template.xlsx")
@roles_required(*EDITORS)
def subjects_template(round_id: int) -> Any:
    """The blank Excel template for importing subjects."""
    rnd = visible_round(round_id)
    data = subject_import.template_workbook(available_forms())
    audit.record_download(current_user.username, "round.subjects_template", round_id=rnd.id)
    return send_file(
        io.BytesIO(data),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=f"测评对象导入模板-{rnd.id}.xlsx",
    )


@bp.route("/rounds/<int:round_id>/subjects/import", methods=["GET", "POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="导入测评对象")
def import_subjects(rnd: Round) -> Any:
    """从 Excel 导入测评对象: every row or none."""
    form = SubjectFileForm()
    message = ""
    problems: list[str] = []
    if form.validate_on_submit():
        upload = form.file.data
        name = upload.filename or ""
        allowed = unit_allowed(current_user)
        try:
            # The workbook is read before the write lock is taken; the lock covers the writes.
            rows = subject_import.prepare_rows(
                rnd, upload.read(), filename=name, unit_allowed=allowed
            )
            with write_transaction():
                added = subject_import.add_rows(
                    rnd,
                    rows,
                    actor=current_user.username,
                    filename=name,
                    unit_allowed=allowed,
                    scope=acting_scope(current_user),
                )
        except InputError as exc:
            message, problems = exc.message, exc.problems
        else:
            return done(f"已从“{name}”导入 {len(added)} 个测评对象。", _detail(rnd, "subjects"))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "rounds/subject_import.html", rnd=rnd, form=form, message=message, problems=problems
    ), status


@bp.route("/rounds/<int:round_id>/export.toml")
@login_required
def export_round(round_id: int) -> Any:
    """The round as a round file (edit the year and import it to copy the round)."""
    rnd = visible_round(round_id)
    data = round_file.export_round(rnd).encode("utf-8")
    audit.record_download(current_user.username, "round.export", round_id=rnd.id)
    return send_file(
        io.BytesIO(data),
        mimetype="application/toml",
        as_attachment=True,
        download_name=f"测评活动-{rnd.year}-{rnd.id}.toml",
    )


# --- moving through the states -----------------------------------------------------------------


def _presented_key(form: Any) -> bytes | None:
    """The box's private key from an uploaded key file or pasted text, if any was given."""
    upload = form.key_file.data
    raw = upload.read(8192).decode("utf-8", errors="replace") if upload else ""
    typed = form.key_text.data or ""
    if not (raw.strip() or typed.strip()):
        return None
    return box.parse_key(raw + "\n" + typed)


@bp.route("/rounds/<int:round_id>/open", methods=["GET", "POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="开始测评")
def open_round(rnd: Round) -> Any:
    """开始测评: a confirmation page saying what becomes fixed (GET), then the open (POST).

    服务器保管: opens. 监票人保管 without a key: makes the key pair and answers with the key page
    (the round stays a draft); with the key presented back from that page: opens.
    """
    if request.method == "GET":
        custody = request.args.get("custody")
        if custody not in (box.CUSTODY_SERVER, box.CUSTODY_SCRUTINEER):
            custody = box.CUSTODY_SERVER
        return render_template(
            "rounds/open_confirm.html",
            rnd=rnd,
            form=OpenForm(formdata=None, custody=custody),
            rule_set=round_rule_set(rnd),
            total_planned=sum(s.planned for s in rnd.strata),
            min_turnout=fraction_words(min_turnout(rnd)),
            not_ready=lifecycle.open_problems(rnd),
        )
    with write_transaction():
        return _open(rnd)


def _open(rnd: Round) -> Any:
    form = OpenForm()
    custody = form.custody.data if form.validate_on_submit() else box.CUSTODY_SERVER
    try:
        if custody != box.CUSTODY_SCRUTINEER:
            rnd.box_custody = box.CUSTODY_SERVER
            lifecycle.open_round(rnd, actor=current_user.username)
            return done(f"测评活动“{rnd.title}”已开始，测评人现在可以投票。", _detail(rnd))
        key = _presented_key(form)
        if key is None:
            private_key = lifecycle.prepare_scrutineer_key(rnd, actor=current_user.username)
            return _key_page(rnd, private_key)
        if rnd.box_custody != box.CUSTODY_SCRUTINEER:
            raise InputError(
                "本测评活动还没有生成监票人保管的投票箱密钥，请先选择监票人保管生成密钥"
            )
        lifecycle.open_round(rnd, actor=current_user.username, key=key)
    except InputError as exc:
        return refused(exc, _detail(rnd))
    return done(
        f"测评活动“{rnd.title}”已开始，测评人现在可以投票。投票箱私钥由监票人保管，"
        "结束测评时须提交。",
        _detail(rnd),
    )


def _key_page(rnd: Round, private_key: bytes) -> Any:
    """The key handover page (served once, never cached), with the form that opens the round."""
    key_file = box.key_file_text(rnd, private_key)
    page = render_template(
        "rounds/box_key.html",
        rnd=rnd,
        form=OpenForm(formdata=None, custody=box.CUSTODY_SCRUTINEER),
        key=box.key_text(private_key),
        fingerprint=box.fingerprint(bytes(rnd.box_public_key or b"")),
        key_file_b64=base64.b64encode(key_file.encode("utf-8")).decode("ascii"),
        key_file_name=f"测评活动{rnd.id}-投票箱私钥.txt",
        qr_svg=Markup(
            qrcode.make(box.key_text(private_key), image_factory=SvgPathImage).to_string(
                encoding="unicode"
            )
        ),
    )
    response = make_response(page)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/rounds/<int:round_id>/close", methods=["GET", "POST"])
@roles_required(*EDITORS)
@round_in_state(RoundState.OPEN, action="结束测评")
def close_round(rnd: Round) -> Any:
    """结束测评: a confirmation page, then the close (final; the lifecycle scrubs old rows).

    Under 监票人保管 the page asks for the box's private key; a close without it, or with
    another round's, is refused with the page shown again and nothing changed.
    """
    form = CloseForm()
    custody = rnd.box_custody
    if not form.validate_on_submit():
        return _close_page(rnd, form, None)
    key = None
    round_id = rnd.id
    try:
        if custody == box.CUSTODY_SCRUTINEER:
            key = _presented_key(form)
        with write_transaction():
            lifecycle.close_round(rnd, actor=current_user.username, key=key)
    except (InputError, StateError) as exc:
        rnd = db.session.get_one(Round, round_id)
        return _close_page(rnd, form, exc.message), 400
    return done(f"测评活动“{rnd.title}”已结束，选票已开箱计票并封存。", _detail(rnd))


def _close_page(rnd: Round, form: CloseForm, error: str | None) -> str:
    """The close confirmation: turnout per stratum and overall against the round's minimum."""
    turnout = round_turnout(rnd)
    minimum = min_turnout(rnd)
    return render_template(
        "rounds/close_confirm.html",
        rnd=rnd,
        form=form,
        error=error,
        turnout=turnout,
        rate_text=percent,
        minimum=minimum,
        minimum_text=fraction_words(minimum),
        meets=turnout.meets(minimum),
    )


@bp.route("/rounds/<int:round_id>/archive", methods=["GET", "POST"])
@roles_required(*EDITORS)
@round_in_state(RoundState.CLOSED, action="归档")
def archive_round(rnd: Round) -> Any:
    """归档: a confirmation page (GET), then the round's results join the 廉政档案 (POST)."""
    if request.method == "GET":
        # 评价意见 are frozen by the archive: name the subjects still without one.
        unwritten = [s.name for s in rnd.subjects if not (s.opinion or s.rectification)]
        result = sealed_result(rnd)
        return render_template(
            "rounds/archive_confirm.html",
            rnd=rnd,
            form=ActionForm(formdata=None),
            unwritten=unwritten,
            invalid=None if result.valid else validity_text(result),
            **_flags(rnd),
        )
    action = ActionForm()
    if not action.validate_on_submit():
        return refused(InputError("页面已过期，请重新确认归档。"), _detail(rnd))
    with write_transaction():
        lifecycle.archive_round(rnd, actor=current_user.username)
    return done(f"测评活动“{rnd.title}”已归档，结果已记入廉政档案。", _detail(rnd))


def _flags(rnd: Round) -> dict[str, Any]:
    """The 责任追究 rules the archive applies to the round's unit, in words, for the page."""
    try:
        choice = unit_choice(rnd.unit)
    except InputError as exc:
        return {"flag_rules": [], "flag_set": None, "flag_problem": exc.message}
    rules = choice.rules
    lines = [
        (rules.threshold(rule), "、".join(step.label for step in rules.ladder(rule)))
        for rule in (INTEGRITY, TEAM, TRUST)
    ]
    return {"flag_rules": lines, "flag_set": rules, "flag_problem": None}


# --- deleting and copying a round --------------------------------------------------------------


@bp.route("/rounds/<int:round_id>/delete", methods=["GET", "POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, action="删除")
def delete_round(rnd: Round) -> Any:
    """删除草稿测评活动: a confirmation page, then the round is gone from the list (audited)."""
    if request.method == "GET":
        return render_template(
            "rounds/delete_confirm.html", rnd=rnd, form=ActionForm(formdata=None)
        )
    action = ActionForm()
    if not action.validate_on_submit():
        return refused(InputError("页面已过期，请重新确认删除。"), _detail(rnd))
    title = rnd.title
    with write_transaction():
        operations.delete_round(rnd, actor=current_user.username)
    return done(f"已删除草稿测评活动“{title}”。", url_for("rounds.index"))


@bp.route("/rounds/<int:round_id>/copy", methods=["GET", "POST"])
@roles_required(*EDITORS)
def copy_round(round_id: int) -> Any:
    """复制为新活动: the round's structure into a new draft, year and title in one form;
    cadres moved since are confirmed one by one (take the current 职务/unit or keep the old)."""
    rnd = visible_round(round_id)
    scope = acting_scope(current_user)
    moved = copying.moved_people(rnd, scope)
    form = CopyRoundForm()
    if not form.is_submitted():
        form.year.data = rnd.year + 1
        form.title.data = copying.default_title(rnd.title, rnd.year, rnd.year + 1)
    taken = {m.person_id for m in moved if m.may_take}
    problems: list[str] = []
    if form.is_submitted():
        taken = {int(v) for v in request.form.getlist("take_current") if v.isdigit()}
        listed = {int(v) for v in request.form.getlist("listed") if v.isdigit()}
        if {m.person_id for m in moved} - listed:
            problems = ["干部的职务或单位刚有变动，名单已更新，请重新确认后再复制。"]
    if form.validate_on_submit() and not problems:
        try:
            with write_transaction():
                copy = copying.copy_round(
                    db.session.get_one(Round, round_id),
                    actor=current_user.username,
                    year=int(form.year.data or 0),
                    title=form.title.data or "",
                    take_current=taken,
                    scope=scope,
                )
        except InputError as exc:
            problems = [exc.message, *exc.problems]
        else:
            return done(
                f"已复制为新活动“{copy.title}”（{copy.year} 年度，草稿）："
                f"{len(copy.strata)} 个类别，{len(copy.subjects)} 个测评对象。请核对后开始测评。",
                _detail(copy),
            )
    status = 400 if form.is_submitted() else 200
    return render_template(
        "rounds/copy_round.html",
        rnd=rnd,
        form=form,
        moved=moved,
        taken=taken,
        problems=problems,
        rule_set=round_rule_set(rnd),
        item_forms=[f for f in rnd.forms.values() if f.get("items_per_round")],
    ), status


@bp.route("/rounds/<int:round_id>/void", methods=["POST"])
@roles_required(*EDITORS)
@round_in_state(DRAFT, RoundState.OPEN, RoundState.CLOSED, action="作废")
@writes
def void_round(rnd: Round) -> Any:
    """作废 with a required reason."""
    form = VoidForm()
    if not form.validate_on_submit():
        return _refused_form(rnd, form, "void", None)
    try:
        lifecycle.void_round(rnd, actor=current_user.username, reason=form.reason.data or "")
    except InputError as exc:
        return _refused_form(rnd, form, "void", exc)
    return done(f"测评活动“{rnd.title}”已作废。", _detail(rnd))
