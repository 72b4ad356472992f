"""Organiser pages: rounds, their strata and subjects, subject import, state changes, accounts.

Views parse a form, call one operation (``evaluation.rounds``, ``round_file``,
``subject_import``, ``accounts``), commit once and redirect with a message. The round's state
is checked by ``rounds.round_in_state`` before a view runs, so a structure edit outside draft is
refused with the 409 page, never ignored. Viewers see their units' rounds; organisers and
admins change them; only admins manage accounts.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, Response, flash, redirect, render_template, send_file, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from werkzeug.routing import BuildError
from wtforms import (
    DateTimeLocalField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.meta import DefaultMeta
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from evaluation import accounts, round_file, rounds, subject_import
from evaluation.accounts import ROLE_LABELS, roles_required, visible_round
from evaluation.anonymity import scrub_dead_rows
from evaluation.ballot_forms import BallotForm, available_forms, parse_fraction
from evaluation.errors import Forbidden, FormError, InputError, NotFound
from evaluation.extensions import db
from evaluation.models import Role, Round, RoundState, Stratum, Subject, Unit
from evaluation.transactions import begin_write
from evaluation.units import SEPARATOR, all_units, can_see, ensure_unit, split_path, subtree_clause

bp = Blueprint("organiser", __name__)

EDITORS = (Role.ORGANISER, Role.ADMIN)
DRAFT = RoundState.DRAFT

P = ParamSpec("P")
T = TypeVar("T")


# --- forms -------------------------------------------------------------------------------------


class ChineseForm(FlaskForm):
    """A FlaskForm whose built-in messages ("不是有效的整数" …) are in Chinese."""

    class Meta:
        locales = ("zh",)

        def get_translations(self, form: Any) -> Any:
            """WTForms' own Chinese catalogue (Flask-WTF's needs Flask-Babel)."""
            return DefaultMeta.get_translations(self, form)  # type: ignore[arg-type]


def _fraction(form: FlaskForm, field: StringField) -> None:
    try:
        parse_fraction(field.data, field.label.text)
    except FormError as exc:
        raise ValidationError(exc.message) from None


class RoundSettingsForm(ChineseForm):
    """测评活动的设置 (everything but the unit, which is fixed once created)."""

    title = StringField(
        "测评活动名称",
        validators=[DataRequired("请填写测评活动名称"), Length(max=300, message="不能超过 300 字")],
    )
    year = IntegerField(
        "年度",
        validators=[
            InputRequired("请填写年度"),
            NumberRange(1990, 2100, "年度应为 1990 到 2100 之间的四位数字"),
        ],
    )
    mode = RadioField(
        "测评方式",
        choices=[
            SelectChoice("集中", "集中（在会场集中测评）"),
            SelectChoice("分散", "分散（各自用手机测评）"),
        ],
        default="集中",
        validators=[InputRequired("请选择测评方式")],
    )
    kind = RadioField(
        "测评类型",
        choices=[SelectChoice(k, k) for k in rounds.KINDS],
        default="本级自测",
        validators=[InputRequired("请选择测评类型")],
    )
    min_turnout = StringField(
        "最低参测率",
        default="2/3",
        validators=[DataRequired("请填写最低参测率，如 2/3"), _fraction],
    )
    opens_at = DateTimeLocalField(
        "计划开始时间（可选）", format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )
    closes_at = DateTimeLocalField(
        "计划结束时间（可选）", format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )


NEW_UNIT = 0


class NewRoundForm(RoundSettingsForm):
    """新建测评活动: the settings plus the unit (admins may type a new unit path)."""

    unit_id = SelectField("所属单位", coerce=int)
    new_unit = StringField(
        "或填写新单位（完整路径，如 甘肃省局/兰州市局）",
        validators=[Optional(), Length(max=1000, message="不能超过 1000 字")],
    )

    def validate_unit_id(self, field: SelectField) -> None:
        """Either an existing unit or, for admins, a new path."""
        if field.data == NEW_UNIT and not (self.new_unit.data or "").strip():
            raise ValidationError("请选择所属单位，或填写新单位")


class RoundFileForm(ChineseForm):
    """从测评文件导入."""

    file = FileField("测评文件（.toml）", validators=[FileRequired("请选择测评文件")])


class StratumForm(ChineseForm):
    """添加测评人员类别."""

    name = StringField(
        "类别名称",
        id="stratum-name",
        validators=[DataRequired("请填写类别名称"), Length(max=100, message="不能超过 100 字")],
    )
    planned = IntegerField(
        "应参加人数",
        id="stratum-planned",
        validators=[InputRequired("请填写应参加人数"), NumberRange(0, 100000, "应为非负整数")],
    )
    weight = StringField(
        "权重（可选，如 0.3 或 1/3）", id="stratum-weight", validators=[Optional(), _fraction]
    )


class SubjectForm(ChineseForm):
    """添加测评对象."""

    name = StringField(
        "测评对象",
        id="subject-name",
        validators=[DataRequired("请填写测评对象"), Length(max=200, message="不能超过 200 字")],
    )
    form_id = SelectField("测评表", id="subject-form", validators=[DataRequired("请选择测评表")])
    post = StringField(
        "职务（干部填写）",
        id="subject-post",
        validators=[Length(max=200, message="不能超过 200 字")],
    )
    staff_no = StringField(
        "工号（可选）", id="subject-staff-no", validators=[Length(max=50, message="不能超过 50 字")]
    )


class ItemsForm(ChineseForm):
    """本次测评内容 (one item a line)."""

    items = TextAreaField(
        "测评内容（每行一项）", validators=[Length(max=20000, message="内容过长")]
    )


class SubjectFileForm(ChineseForm):
    """从 Excel 导入测评对象."""

    file = FileField("Excel 文件（.xlsx）", validators=[FileRequired("请选择 Excel 文件")])


class VoidForm(ChineseForm):
    """作废 (with a reason)."""

    reason = TextAreaField(
        "作废原因",
        id="void-reason",
        validators=[DataRequired("作废必须填写原因"), Length(max=2000, message="不能超过 2000 字")],
    )


class ActionForm(ChineseForm):
    """A button that changes something: nothing but the CSRF token."""


class UserForm(ChineseForm):
    """新建账号."""

    username = StringField(
        "用户名",
        validators=[DataRequired("请填写用户名"), Length(max=80, message="不能超过 80 字")],
    )
    role = SelectField(
        "角色",
        choices=[SelectChoice(r.value, label) for r, label in ROLE_LABELS.items()],
        default=Role.ORGANISER.value,
    )
    unit = StringField(
        "所属单位（完整路径，如 甘肃省局/兰州市局；管理员可不填）",
        validators=[Optional(), Length(max=1000, message="不能超过 1000 字")],
    )
    password = PasswordField(
        "密码",
        validators=[
            DataRequired("请填写密码"),
            Length(min=accounts.MIN_PASSWORD_LENGTH, message="密码至少 8 位"),
        ],
    )
    password2 = PasswordField(
        "再次输入密码",
        validators=[DataRequired("请再次输入密码"), EqualTo("password", "两次输入的密码不一致")],
    )


# --- helpers -----------------------------------------------------------------------------------


def writes(view: Callable[P, T]) -> Callable[P, T]:
    """Run the view's changes in a write transaction (BEGIN IMMEDIATE on SQLite)."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        begin_write()
        return view(*args, **kwargs)

    return wrapper


def _done(message: str, target: str) -> Response:
    """Commit the request's one transaction and go back with a message."""
    db.session.commit()
    flash(message, "success")
    return redirect(target, 303)  # type: ignore[return-value]


def _refused(error: InputError, target: str) -> Response:
    """Nothing is stored; show every problem above the page the user came from."""
    db.session.rollback()
    for text in [error.message, *error.problems]:
        flash(text, "error")
    return redirect(target, 303)  # type: ignore[return-value]


def _detail(rnd: Round, anchor: str = "") -> str:
    return url_for("organiser.round_detail", round_id=rnd.id, _anchor=anchor or None)


def _to_utc(local: datetime | None) -> datetime | None:
    return local.replace(tzinfo=rounds.LOCAL_TZ).astimezone(UTC) if local else None


def _to_local(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(rounds.LOCAL_TZ).replace(tzinfo=None)


def _in_scope(path: str) -> bool:
    """True when the unit path is the user's unit or beneath it."""
    if current_user.unit is None:
        return bool(current_user.role == Role.ADMIN)
    full = SEPARATOR.join(split_path(path))
    mine = current_user.unit.path
    return full == mine or full.startswith(mine + SEPARATOR)


def _visible_units() -> list[Unit]:
    return [u for u in all_units() if can_see(current_user, u)]


def _visible_rounds() -> list[Round]:
    query = db.select(Round).join(Unit, Round.unit_id == Unit.id)
    if current_user.unit is not None:
        query = query.where(subtree_clause(Unit.path, current_user.unit))
    elif current_user.role != Role.ADMIN:
        return []
    return list(db.session.execute(query.order_by(Round.year.desc(), Round.id.desc())).scalars())


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
        SelectChoice(f.id, f.title) for f in sorted(forms.values(), key=lambda f: f.id)
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
    """The rounds of the user's units, newest first."""
    return render_template("organiser/index.html", rounds=_visible_rounds())


@bp.route("/rounds/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def new_round() -> Any:
    """新建测评活动."""
    form = NewRoundForm()
    units = _visible_units()
    choices = [SelectChoice(u.id, u.path) for u in units]
    if current_user.role == Role.ADMIN:
        choices.insert(0, SelectChoice(NEW_UNIT, "— 新单位（在下面填写）—"))
    form.unit_id.choices = choices  # type: ignore[assignment]
    if not form.is_submitted():
        form.year.data = datetime.now(rounds.LOCAL_TZ).year
        if current_user.unit is not None:
            form.unit_id.data = current_user.unit.id
    problems: list[str] = []
    if form.validate_on_submit():
        begin_write()
        try:
            rnd = rounds.create_round(
                actor=current_user.username,
                unit=_chosen_unit(form),
                title=form.title.data or "",
                year=int(form.year.data or 0),
                mode=form.mode.data or "",
                kind=form.kind.data or "",
                min_turnout=form.min_turnout.data or "",
                opens_at=_to_utc(form.opens_at.data),
                closes_at=_to_utc(form.closes_at.data),
            )
        except InputError as exc:
            db.session.rollback()
            problems = [exc.message, *exc.problems]
        else:
            return _done(
                f"已创建测评活动“{rnd.title}”。请添加测评人员类别和测评对象。", _detail(rnd)
            )
    status = 400 if form.is_submitted() else 200
    return render_template("organiser/round_form.html", form=form, problems=problems), status


def _chosen_unit(form: NewRoundForm) -> Unit:
    """The unit picked in the form (a new path only for admins)."""
    typed = (form.new_unit.data or "").strip()
    if typed:
        if current_user.role != Role.ADMIN:
            raise Forbidden("只有管理员可以新建单位；请从列表中选择所属单位。")
        return ensure_unit(typed)
    unit = db.session.get(Unit, form.unit_id.data)
    if unit is None or not can_see(current_user, unit):
        raise NotFound("所选单位不存在或不在您的管辖范围内")
    return unit


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
        begin_write()
        try:
            data = round_file.parse_round_text(_utf8(upload.read(), name), name)
            _check_round_file_scope(data)
            rnd = round_file.import_round(data, actor=current_user.username, source=name)
        except InputError as exc:
            db.session.rollback()
            message, problems = exc.message, exc.problems
        else:
            return _done(
                f"已从“{name}”导入测评活动“{rnd.title}”：{len(rnd.strata)} 个类别，"
                f"{len(rnd.subjects)} 个测评对象。",
                _detail(rnd),
            )
    status = 400 if form.is_submitted() else 200
    return render_template(
        "organiser/round_import.html", form=form, message=message, problems=problems
    ), status


def _utf8(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"“{name}”不是 UTF-8 编码的文本文件") from None


def _check_round_file_scope(data: dict[str, Any]) -> None:
    """Organisers may import rounds only for their own units (and beneath)."""
    paths = [data.get("unit")]
    subjects = data.get("subjects")
    if isinstance(subjects, list):
        paths += [s.get("unit") for s in subjects if isinstance(s, dict)]
    for path in paths:
        if isinstance(path, str) and path.strip() and not _in_scope(path):
            raise InputError(f"测评文件中的单位“{path}”不在您的管辖范围内，未导入任何内容。")


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
    for form_id, snapshot in sorted(rnd.forms.items()):
        if snapshot.get("items_per_round"):
            f = form(ItemsForm, prefix=form_id + "-")
            if f is not failed:
                f.items.data = "\n".join(i["text"] for i in snapshot["items"])
            item_forms[form_id] = f
    return render_template(
        "organiser/round_detail.html",
        rnd=rnd,
        is_draft=rnd.state == DRAFT,
        stratum_form=form(StratumForm),
        subject_form=subject_form,
        item_forms=item_forms,
        void_form=form(VoidForm),
        action_form=ActionForm(formdata=None),
        total_planned=sum(s.planned for s in rnd.strata),
        section_problems={section: list(problems)} if section else {},
    ), status


def _refused_form(rnd: Round, form: FlaskForm, section: str, error: InputError | None) -> Any:
    """Nothing is stored; the page comes back with the form's input and every problem."""
    db.session.rollback()
    problems = (error.message, *error.problems) if error else ("填写有误，未保存。请按提示修改。",)
    return _render_detail(rnd, 400, failed=form, section=section, problems=problems)


@bp.route("/rounds/<int:round_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
@rounds.round_in_state(DRAFT, action="修改设置")
def edit_round(rnd: Round) -> Any:
    """修改草稿测评活动的设置."""
    form = RoundSettingsForm(obj=rnd)
    if not form.is_submitted():
        form.opens_at.data = _to_local(rnd.opens_at)
        form.closes_at.data = _to_local(rnd.closes_at)
    problems: list[str] = []
    if form.validate_on_submit():
        begin_write()
        try:
            rounds.update_round(
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
            db.session.rollback()
            problems = [exc.message, *exc.problems]
        else:
            return _done("已保存设置。", _detail(rnd))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "organiser/round_form.html", form=form, rnd=rnd, problems=problems
    ), status


@bp.route("/rounds/<int:round_id>/strata", methods=["POST"])
@roles_required(*EDITORS)
@rounds.round_in_state(DRAFT, action="修改测评人员类别")
@writes
def add_stratum(rnd: Round) -> Any:
    """添加测评人员类别."""
    form = StratumForm()
    if not form.validate_on_submit():
        return _refused_form(rnd, form, "strata", None)
    try:
        stratum = rounds.add_stratum(
            rnd,
            actor=current_user.username,
            name=form.name.data or "",
            planned=int(form.planned.data or 0),
            weight=(form.weight.data or "").strip() or None,
        )
    except InputError as exc:
        return _refused_form(rnd, form, "strata", exc)
    return _done(f"已添加测评人员类别“{stratum.name}”。", _detail(rnd, "strata"))


@bp.route("/rounds/<int:round_id>/strata/<int:stratum_id>/remove", methods=["POST"])
@roles_required(*EDITORS)
@rounds.round_in_state(DRAFT, action="修改测评人员类别")
@writes
def remove_stratum(rnd: Round, stratum_id: int) -> Any:
    """删除测评人员类别."""
    stratum = _stratum(rnd, stratum_id)
    rounds.remove_stratum(rnd, stratum, actor=current_user.username)
    return _done(f"已删除测评人员类别“{stratum.name}”。", _detail(rnd, "strata"))


@bp.route("/rounds/<int:round_id>/subjects", methods=["POST"])
@roles_required(*EDITORS)
@rounds.round_in_state(DRAFT, action="修改测评对象")
@writes
def add_subject(rnd: Round) -> Any:
    """添加测评对象."""
    form = SubjectForm()
    form.form_id.choices = _form_choices(available_forms())
    if not form.validate_on_submit():
        return _refused_form(rnd, form, "subjects", None)
    try:
        subject = rounds.add_subject(
            rnd,
            actor=current_user.username,
            name=form.name.data or "",
            form_id=form.form_id.data or "",
            post=(form.post.data or "").strip(),
            staff_no=(form.staff_no.data or "").strip() or None,
        )
    except InputError as exc:
        return _refused_form(rnd, form, "subjects", exc)
    return _done(f"已添加测评对象“{subject.name}”。", _detail(rnd, "subjects"))


@bp.route("/rounds/<int:round_id>/subjects/<int:subject_id>/remove", methods=["POST"])
@roles_required(*EDITORS)
@rounds.round_in_state(DRAFT, action="修改测评对象")
@writes
def remove_subject(rnd: Round, subject_id: int) -> Any:
    """删除测评对象."""
    subject = _subject(rnd, subject_id)
    rounds.remove_subject(rnd, subject, actor=current_user.username)
    return _done(f"已删除测评对象“{subject.name}”。", _detail(rnd, "subjects"))


@bp.route("/rounds/<int:round_id>/forms/<form_id>/items", methods=["POST"])
@roles_required(*EDITORS)
@rounds.round_in_state(DRAFT, action="修改测评内容")
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
        rounds.set_form_items(
            rnd, form_id, (form.items.data or "").splitlines(), actor=current_user.username
        )
    except InputError as exc:
        return _refused_form(rnd, form, section, exc)
    count = len(rnd.forms[form_id]["items"])
    return _done(f"已保存“{snapshot['title']}”的测评内容（{count} 项）。", _detail(rnd, section))


# --- Excel import of subjects ------------------------------------------------------------------


@bp.route("/rounds/<int:round_id>/subjects/template.xlsx")
@roles_required(*EDITORS)
def subjects_template(round_id: int) -> Any:
    """The blank Excel template for importing subjects."""
    rnd = visible_round(round_id)
    data = subject_import.template_workbook(available_forms())
    return send_file(
        io.BytesIO(data),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=f"测评对象导入模板-{rnd.id}.xlsx",
    )


@bp.route("/rounds/<int:round_id>/subjects/import", methods=["GET", "POST"])
@roles_required(*EDITORS)
@rounds.round_in_state(DRAFT, action="导入测评对象")
def import_subjects(rnd: Round) -> Any:
    """从 Excel 导入测评对象: every row or none."""
    form = SubjectFileForm()
    message = ""
    problems: list[str] = []
    if form.validate_on_submit():
        upload = form.file.data
        name = upload.filename or ""
        begin_write()
        try:
            added = subject_import.import_subjects(
                rnd,
                upload.read(),
                actor=current_user.username,
                filename=name,
                unit_allowed=_in_scope,
            )
        except InputError as exc:
            db.session.rollback()
            message, problems = exc.message, exc.problems
        else:
            return _done(f"已从“{name}”导入 {len(added)} 个测评对象。", _detail(rnd, "subjects"))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "organiser/subject_import.html", rnd=rnd, form=form, message=message, problems=problems
    ), status


@bp.route("/rounds/<int:round_id>/export.toml")
@login_required
def export_round(round_id: int) -> Any:
    """The round as a round file (edit the year and import it to copy the round)."""
    rnd = visible_round(round_id)
    return send_file(
        io.BytesIO(round_file.export_round(rnd).encode("utf-8")),
        mimetype="application/toml",
        as_attachment=True,
        download_name=f"测评活动-{rnd.year}-{rnd.id}.toml",
    )


# --- moving through the states -----------------------------------------------------------------


@bp.route("/rounds/<int:round_id>/open", methods=["POST"])
@roles_required(*EDITORS)
@rounds.round_in_state(DRAFT, action="开始测评")
@writes
def open_round(rnd: Round) -> Any:
    """开始测评."""
    try:
        rounds.open_round(rnd, actor=current_user.username)
    except InputError as exc:
        return _refused(exc, _detail(rnd))
    return _done(f"测评活动“{rnd.title}”已开始，测评人现在可以投票。", _detail(rnd))


@bp.route("/rounds/<int:round_id>/close", methods=["GET", "POST"])
@roles_required(*EDITORS)
@rounds.round_in_state(RoundState.OPEN, action="结束测评")
def close_round(rnd: Round) -> Any:
    """结束测评: a confirmation page, then the close (final) and the scrub of old rows."""
    form = ActionForm()
    if not form.validate_on_submit():
        return render_template("organiser/close_confirm.html", rnd=rnd, form=form)
    begin_write()
    rounds.close_round(rnd, actor=current_user.username)
    response = _done(f"测评活动“{rnd.title}”已结束，选票已封存。", _detail(rnd))
    scrub_dead_rows()
    return response


@bp.route("/rounds/<int:round_id>/archive", methods=["POST"])
@roles_required(*EDITORS)
@rounds.round_in_state(RoundState.CLOSED, action="归档")
@writes
def archive_round(rnd: Round) -> Any:
    """归档: the round's results join the 廉政档案."""
    rounds.archive_round(rnd, actor=current_user.username)
    return _done(f"测评活动“{rnd.title}”已归档，结果已记入廉政档案。", _detail(rnd))


@bp.route("/rounds/<int:round_id>/void", methods=["POST"])
@roles_required(*EDITORS)
@rounds.round_in_state(DRAFT, RoundState.OPEN, RoundState.CLOSED, action="作废")
@writes
def void_round(rnd: Round) -> Any:
    """作废 with a required reason."""
    form = VoidForm()
    if not form.validate_on_submit():
        return _refused_form(rnd, form, "void", None)
    try:
        rounds.void_round(rnd, actor=current_user.username, reason=form.reason.data or "")
    except InputError as exc:
        return _refused_form(rnd, form, "void", exc)
    return _done(f"测评活动“{rnd.title}”已作废。", _detail(rnd))


# --- accounts (admins) -------------------------------------------------------------------------


@bp.route("/users", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def users() -> Any:
    """账号: every account, a form to create one, and (de)activation buttons."""
    form = UserForm()
    problems: list[str] = []
    if form.validate_on_submit():
        begin_write()
        try:
            user = accounts.create_user(
                actor=current_user.username,
                username=form.username.data or "",
                password=form.password.data or "",
                role=form.role.data or "",
                unit_path=(form.unit.data or "").strip() or None,
            )
        except InputError as exc:
            db.session.rollback()
            problems = [exc.message, *exc.problems]
        else:
            return _done(f"已创建账号“{user.username}”。", url_for("organiser.users"))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "accounts/users.html",
        form=form,
        problems=problems,
        users=accounts.list_users(),
        units=all_units(),
        action_form=ActionForm(),
    ), status


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
@roles_required(Role.ADMIN)
@writes
def deactivate_user(user_id: int) -> Any:
    """停用账号: it can no longer log in, and its open sessions end."""
    user = accounts.get_user(user_id)
    try:
        accounts.set_user_active(user, False, actor=current_user)
    except InputError as exc:
        return _refused(exc, url_for("organiser.users"))
    return _done(f"已停用账号“{user.username}”。", url_for("organiser.users"))


@bp.route("/users/<int:user_id>/reactivate", methods=["POST"])
@roles_required(Role.ADMIN)
@writes
def reactivate_user(user_id: int) -> Any:
    """恢复账号."""
    user = accounts.get_user(user_id)
    accounts.set_user_active(user, True, actor=current_user)
    return _done(f"已恢复账号“{user.username}”。", url_for("organiser.users"))
